//! `payrun reject`: a checker ends a stored batch unsent (team mode, SPEC 8.2): its rows not sent
//! are cancelled, never sent; the rejection is recorded with the role, the time and the reason.
//!
//! ```text
//! payrun reject BATCH --reason TEXT [--journal URL]
//! ```

use payrun::config::ConfigFile;
use payrun::say;

use super::{Exit, StateArgs};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Batch id (or unique prefix) or the input file's path.
    batch: String,
    /// Why the batch is rejected (recorded with your role and the time).
    #[arg(long, value_name = "TEXT")]
    reason: String,
    #[command(flatten)]
    state: StateArgs,
}

pub fn run(args: Args, config: &ConfigFile, operator: &str) -> anyhow::Result<Exit> {
    if args.reason.trim().is_empty() {
        anyhow::bail!("--reason must say why the batch is rejected");
    }
    let session = args.state.session(config, operator, false)?;
    if !session.is_team() {
        anyhow::bail!("reject is for a team journal (--journal URL); with SQLite, `payrun cancel` abandons a batch");
    }
    let batch = session.find_batch(&args.batch)?;
    let done = session.journal.reject_batch(&batch, args.reason.trim(), &payrun::batch::hold_rules(config))?;
    say!(
        "batch {} rejected by {}: {} will never be sent",
        batch.id,
        session.operator,
        payrun::report::plural(done.rows, "row")
    );
    super::cancel::say_released(&done.released);
    Ok(Exit::Ok)
}
