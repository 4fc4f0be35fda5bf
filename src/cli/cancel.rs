//! `payrun cancel`: abandon a batch (SPEC 3.2). Its rows not yet sent become CANCELLED (final,
//! never sent); rows the gateway may have are still followed by `resume` and `status --refresh`. A
//! cancelled batch's unsent rows no longer hold other batches' rows.
//!
//! ```text
//! payrun cancel BATCH --reason TEXT [--state DIR]
//! ```

use payrun::config::ConfigFile;

use super::run::plural;
use super::{Exit, StateArgs};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Batch id (or unique prefix) or the input file's path.
    batch: String,
    /// Why the batch is abandoned (recorded with your name and the time).
    #[arg(long, value_name = "TEXT")]
    reason: String,
    #[command(flatten)]
    state: StateArgs,
}

pub fn run(args: Args, _config: &ConfigFile, operator: &str) -> anyhow::Result<Exit> {
    if args.reason.trim().is_empty() {
        anyhow::bail!("--reason must say why the batch is abandoned");
    }
    let session = args.state.session(operator, true)?;
    let batch = session.find_batch(&args.batch)?;
    if batch.finished_at.is_some() && batch.cancelled_at.is_none() {
        eprintln!("batch {} is finished: every row is final, nothing to cancel", batch.id);
        return Ok(Exit::Input);
    }
    let c = payrun::batch::cancel(&session, &batch, args.reason.trim())?;
    eprintln!(
        "batch {} cancelled by {}: {} {} not sent will never be sent",
        batch.id,
        session.operator,
        c.rows,
        plural(c.rows, "row", "rows")
    );
    if c.still_followed > 0 {
        eprintln!(
            "{} {} the gateway may have {} still followed: {}",
            c.still_followed,
            plural(c.still_followed, "row", "rows"),
            plural(c.still_followed, "is", "are"),
            session.command(&format!("resume {}", batch.id))
        );
    }
    Ok(Exit::Ok)
}
