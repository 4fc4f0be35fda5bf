//! `payrun report`: write a batch's result file from the journal (SPEC section 5): CSV, or an Excel
//! workbook when `--out` ends in `.xlsx`.
//!
//! ```text
//! payrun report BATCH --out RESULT.csv|RESULT.xlsx [--state DIR] [--json]
//! ```

use std::path::PathBuf;

use anyhow::Context;
use payrun::config::ConfigFile;
use payrun::report::{self, Summary};
use payrun::{outln, say};

use super::{Exit, StateArgs};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Batch id (or unique prefix) or the input file's path.
    batch: String,
    /// Where to write the result file: CSV, or an Excel workbook when it ends in .xlsx.
    #[arg(long, value_name = "RESULT.csv|RESULT.xlsx")]
    out: PathBuf,
    #[command(flatten)]
    state: StateArgs,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args, config: &ConfigFile, operator: &str) -> anyhow::Result<Exit> {
    let session = args.state.session(config, operator, false)?;
    let journal = &session.journal;
    let batch = session.find_batch(&args.batch)?;
    let state_arg = session.state.arg();
    let n = report::write_result_with(journal, &batch, &args.out, &state_arg)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    let summary = Summary::new(&batch, &journal.counts(&batch.id)?, Some(&args.out))
        .with_attention(journal, &batch, &state_arg)?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        summary.print(&mut payrun::out::stdout())?;
        say!("{} written to {}", report::plural(n, "row"), args.out.display());
    }
    Ok(Exit::Ok)
}
