//! `payrun failed`: a batch's rows proven unpaid, in input format, ready to correct and run as a
//! new file.
//!
//! ```text
//! payrun failed BATCH --out RETRY.csv [--state DIR] [--only-failed]
//! ```
//!
//! FAILED rows and INVALID rows (never sent; `--only-failed` leaves them out), with the input's
//! header and cells and two trailing columns: `last_error`, each row's reason (`CODE: message`),
//! and `retry_of`, the original obligation the row pays (`<batch id>:<line>`, SPEC 3.2b), which
//! `run` links the retry rows to: a retry of a line already paid again is held. A row's own
//! reference gets a `-R1` suffix (the gateway has already seen the original, so it would be refused
//! as a duplicate). Never PENDING, HELD, NOT_SENT, CANCELLED or in-doubt rows (they may still be
//! paid), nor rows another batch pays again (said, with the batch). Each export is recorded in the
//! journal and the batch's evidence log.

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
    /// Only the FAILED rows: leave out the rows that failed validation (INVALID).
    #[arg(long)]
    only_failed: bool,
}

pub fn run(args: Args, config: &ConfigFile, operator: &str) -> anyhow::Result<Exit> {
    let session = args.state.session(config, operator, false)?;
    let journal = &session.journal;
    let batch = session.find_batch(&args.batch)?;
    let done = report::write_failed(journal, &batch, &args.out, args.only_failed)?;
    journal.record_export(&batch.id, &session.operator, &args.out.display().to_string(), &done.lines)?;
    let n = done.lines.len() as u64;
    say!(
        "{} written to {}{}",
        report::plural(n, "row"),
        args.out.display(),
        match done.renamed {
            0 => String::new(),
            1 => "; 1 reference given a -R suffix, since the gateway has seen the original".to_string(),
            r => format!("; {r} references given a -R suffix, since the gateway has seen the originals"),
        }
    );
    for (other, k) in &done.paid_again.by_batch {
        say!(
            "{} {} paid again in batch {other}, or may be: not exported. Where they stand:",
            report::plural(*k, "row"),
            if *k == 1 { "was" } else { "were" },
        );
        super::run::print_command(&session.command(&format!("status {other}")), 2);
    }
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
