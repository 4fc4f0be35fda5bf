//! `payrun resume`: continue a batch that was interrupted, or follow its pending payouts.
//!
//! ```text
//! payrun resume BATCH [--gateway ...] [--out RESULT.csv] [--state DIR] [--rate N] [--burst N]
//!               [--concurrency N] [--poll-timeout DUR] [--yes | --confirm-total AMOUNT] [--json]
//! ```
//!
//! `BATCH` is a batch id (or a unique prefix) or the input file's path. Settings default to the
//! batch's own, from the journal. Held rows whose reason is gone (the batch that held them was
//! cancelled) are released first; rows left `sending` are resolved by status inquiry before anything
//! is sent again; nothing the gateway has is ever sent twice.

use payrun::config::ConfigFile;
use payrun::say;

use super::Exit;
use super::run::{DriveArgs, drive, finish};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Batch id (or unique prefix) or the input file's path.
    batch: String,
    #[command(flatten)]
    drive: DriveArgs,
}

pub async fn run(args: Args, config: &ConfigFile, operator: &str) -> anyhow::Result<Exit> {
    let session = args.drive.state.session(config, operator, true)?;
    let batch = session.find_batch(&args.batch)?;
    if batch.finished_at.is_some() {
        say!(
            "batch {} is finished ({}); nothing to send or follow.",
            batch.id,
            payrun::report::local_time(batch.finished_at.as_deref().unwrap_or(""))
        );
        return finish(&session, &batch, &args.drive, None, None);
    }
    for r in payrun::batch::recheck_holds(&session, &batch, config)? {
        say!("line {}: {}", r.line, r.message);
    }
    say!("resuming batch {} ({})", batch.id, batch.file_path);
    drive(&session, batch, &args.drive, config).await
}
