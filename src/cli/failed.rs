//! `payrun failed`: a batch's FAILED rows in input format, ready to correct and run as a new file.
//!
//! ```text
//! payrun failed BATCH --out RETRY.csv [--state DIR] [--include-invalid]
//! ```
//!
//! The file has the input's header and cells, and a trailing `last_error` column with each row's
//! reason (`CODE: message`), which payrun ignores when the file is run (an unknown column). A row's
//! own reference gets a `-R1` suffix (the gateway has already seen the original, so it would be
//! refused as a duplicate). Only FAILED rows (proven unpaid): PENDING, HELD, NOT_SENT, CANCELLED
//! and in-doubt rows are never included: they may still be paid, and running them again could pay
//! twice.

use std::path::PathBuf;

use payrun::config::ConfigFile;
use payrun::report;
use payrun::say;

use super::{Exit, StateArgs};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Batch id (or unique prefix) or the input file's path.
    batch: String,
    /// Where to write the rows.
    #[arg(long, value_name = "RETRY.csv")]
    out: PathBuf,
    #[command(flatten)]
    state: StateArgs,
    /// Also include the rows that failed validation (INVALID).
    #[arg(long)]
    include_invalid: bool,
}

pub fn run(args: Args, _config: &ConfigFile, operator: &str) -> anyhow::Result<Exit> {
    let session = args.state.session(operator, false)?;
    let journal = &session.journal;
    let batch = session.find_batch(&args.batch)?;
    let (n, renamed) = report::write_failed(journal, &batch, &args.out, args.include_invalid)?;
    say!(
        "{} written to {}{}",
        report::plural(n, "row"),
        args.out.display(),
        match renamed {
            0 => String::new(),
            1 => "; 1 reference given a -R suffix, since the gateway has seen the original".to_string(),
            r => format!("; {r} references given a -R suffix, since the gateway has seen the originals"),
        }
    );
    let open = journal.counts(&batch.id)?.open();
    if open > 0 {
        say!(
            "note: {} of batch {} {} not final yet, and not in this file: they may still be paid. Where they stand:",
            report::plural(open, "row"),
            batch.id,
            if open == 1 { "is" } else { "are" },
        );
        super::run::print_command(&session.command(&format!("status {}", batch.id)), 2);
    }
    Ok(Exit::Ok)
}
