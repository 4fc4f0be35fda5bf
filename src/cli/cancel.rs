//! `payrun cancel`: abandon a batch (SPEC 3.2). Its rows not yet sent become CANCELLED (final,
//! never sent); rows the gateway may have are still followed by `resume` and `status --refresh`. A
//! cancelled batch's unsent rows no longer hold other batches' rows.
//!
//! ```text
//! payrun cancel BATCH --reason TEXT [--state DIR]
//! ```

use payrun::config::ConfigFile;

use payrun::report::plural;
use payrun::say;

use super::run::print_command;
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

pub fn run(args: Args, config: &ConfigFile, operator: &str) -> anyhow::Result<Exit> {
    if args.reason.trim().is_empty() {
        anyhow::bail!("--reason must say why the batch is abandoned");
    }
    let session = args.state.session(config, operator, true)?;
    let batch = session.find_batch(&args.batch)?;
    if batch.finished_at.is_some() && batch.cancelled_at.is_none() {
        say!("batch {} is finished: every row is final, nothing to cancel", batch.id);
        return Ok(Exit::Input);
    }
    let c = payrun::batch::cancel(&session, &batch, args.reason.trim(), config)?;
    match c.rows {
        0 => say!("batch {} cancelled by {}: no row was waiting to be sent", batch.id, session.operator),
        n => say!(
            "batch {} cancelled by {}: {} not sent will never be sent",
            batch.id,
            session.operator,
            plural(n, "row")
        ),
    }
    say_released(&c.released);
    if c.still_followed > 0 {
        say!(
            "{} the gateway may have {} still followed:",
            plural(c.still_followed, "row"),
            if c.still_followed == 1 { "is" } else { "are" },
        );
        print_command(&session.command(&format!("resume {}", batch.id)), 2);
    }
    Ok(Exit::Ok)
}

/// Says which rows of other batches a cancel (or a rejection) released (team mode).
pub fn say_released(released: &[(String, u64)]) {
    for (batch, line) in released {
        say!("batch {batch} line {line}: released, the payment that held it will not be made");
    }
}
