//! `payrun failed`: a batch's FAILED rows in input format, ready to correct and run as a new file.
//!
//! ```text
//! payrun failed BATCH --out RETRY.csv [--state DIR] [--include-invalid]
//! ```
//!
//! The file has the input's header and cells. A row's own reference gets a `-R1` suffix (the gateway
//! has already seen the original, so it would be refused as a duplicate). PENDING and NOT_SENT rows
//! are never included: they may still be paid, and running them again could pay twice.

use std::path::PathBuf;

use payrun::config::ConfigFile;
use payrun::journal::Journal;
use payrun::report;

use super::Exit;
use super::run::find_batch;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Batch id (or unique prefix) or the input file's path.
    batch: String,
    /// Where to write the rows.
    #[arg(long, value_name = "RETRY.csv")]
    out: PathBuf,
    #[arg(long, default_value = ".payrun", value_name = "DIR")]
    state: PathBuf,
    /// Also include the rows that failed validation (INVALID).
    #[arg(long)]
    include_invalid: bool,
}

pub fn run(args: Args, _config: &ConfigFile) -> anyhow::Result<Exit> {
    let journal = Journal::open(&args.state)?;
    let batch = find_batch(&journal, &args.batch)?;
    let (n, renamed) = report::write_failed(&journal, &batch, &args.out, args.include_invalid)?;
    eprintln!(
        "{n} row(s) written to {}{}",
        args.out.display(),
        if renamed > 0 {
            format!("; {renamed} reference(s) given a -R suffix, since the gateway has seen the originals")
        } else {
            String::new()
        }
    );
    let pending = journal.counts(&batch.id)?.open();
    if pending > 0 {
        eprintln!(
            "note: {pending} row(s) of batch {} are not final yet and are not in this file (payrun resume {})",
            batch.id, batch.id
        );
    }
    Ok(Exit::Ok)
}
