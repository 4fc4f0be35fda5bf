//! `payrun report`: write a batch's result file from the journal (SPEC section 5): CSV, or an Excel
//! workbook when `--out` ends in `.xlsx`.
//!
//! ```text
//! payrun report BATCH --out RESULT.csv|RESULT.xlsx [--state DIR] [--json]
//! ```

use std::path::{Path, PathBuf};

use anyhow::Context;
use payrun::config::ConfigFile;
use payrun::journal::Journal;
use payrun::report::{self, Summary};

use super::Exit;
use super::run::find_batch;

/// The state directory when `--state` is not given (the clap default of the commands).
pub const DEFAULT_STATE: &str = ".payrun";

/// ` --state DIR` for a command shown to the operator, empty when `state` is the default.
pub fn state_arg(state: &Path) -> String {
    report::attention::state_arg(state, state == Path::new(DEFAULT_STATE))
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Batch id (or unique prefix) or the input file's path.
    batch: String,
    /// Where to write the result file: CSV, or an Excel workbook when it ends in .xlsx.
    #[arg(long, value_name = "RESULT.csv|RESULT.xlsx")]
    out: PathBuf,
    #[arg(long, default_value = DEFAULT_STATE, value_name = "DIR")]
    state: PathBuf,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args, _config: &ConfigFile) -> anyhow::Result<Exit> {
    let journal = Journal::open(&args.state)?;
    let batch = find_batch(&journal, &args.batch)?;
    let state_arg = state_arg(&args.state);
    let n = report::write_result_with(&journal, &batch, &args.out, &state_arg)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    let summary = Summary::new(&batch, &journal.counts(&batch.id)?, Some(&args.out))
        .with_attention(&journal, &batch, &state_arg)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        summary.print(&mut std::io::stdout().lock())?;
        eprintln!("{} written to {}", report::plural(n, "row"), args.out.display());
    }
    Ok(Exit::Ok)
}
