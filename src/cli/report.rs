//! `payrun report`: write a batch's result file from the journal (SPEC section 5).
//!
//! ```text
//! payrun report BATCH --out RESULT.csv [--state DIR] [--json]
//! ```

use std::path::PathBuf;

use anyhow::Context;
use payrun::config::ConfigFile;
use payrun::report::{self, Summary};

use super::{Exit, StateArgs};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Batch id (or unique prefix) or the input file's path.
    batch: String,
    /// Where to write the result file.
    #[arg(long, value_name = "RESULT.csv")]
    out: PathBuf,
    #[command(flatten)]
    state: StateArgs,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args, _config: &ConfigFile, operator: &str) -> anyhow::Result<Exit> {
    let session = args.state.session(operator, false)?;
    let journal = &session.journal;
    let batch = session.find_batch(&args.batch)?;
    let n = report::write_result(journal, &batch, &args.out)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    let summary = Summary::new(&batch, &journal.counts(&batch.id)?, Some(&args.out));
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        summary.print(&mut std::io::stdout().lock())?;
        eprintln!("{n} rows written to {}", args.out.display());
    }
    Ok(Exit::Ok)
}
