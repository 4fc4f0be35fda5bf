//! `payrun resume`: continue a batch that was interrupted, or follow its pending payouts.
//!
//! ```text
//! payrun resume BATCH [--gateway ...] [--out RESULT.csv] [--state DIR] [--rate N] [--burst N]
//!               [--concurrency N] [--poll-timeout DUR] [--json]
//! ```
//!
//! `BATCH` is a batch id (or a unique prefix) or the input file's path. Settings default to the
//! batch's own, from the journal. Rows left `sending` are resolved by status inquiry before anything
//! is sent again; nothing the gateway has is ever sent twice.

use payrun::config::ConfigFile;
use payrun::journal::Journal;

use super::Exit;
use super::run::{DriveArgs, drive, find_batch};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Batch id (or unique prefix) or the input file's path.
    batch: String,
    #[command(flatten)]
    drive: DriveArgs,
}

pub async fn run(args: Args, config: &ConfigFile) -> anyhow::Result<Exit> {
    let journal = Journal::open(&args.drive.state)?;
    let _lock = journal.lock()?;
    let batch = find_batch(&journal, &args.batch)?;
    if batch.finished_at.is_some() {
        eprintln!(
            "batch {} is finished ({}); nothing to send or follow.",
            batch.id,
            batch.finished_at.as_deref().unwrap_or("")
        );
        return super::run::finish(&journal, &batch, &args.drive, &args.drive.state, None, None);
    }
    eprintln!("resuming batch {} ({})", batch.id, batch.file_path);
    drive(&journal, batch, &args.drive, config).await
}
