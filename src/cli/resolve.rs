//! `payrun resolve`: record a person's finding on a row payrun cannot decide (SPEC 3 rule 9):
//! `PAYEE_MISMATCH`, `AMOUNT_MISMATCH`, `REF_ALREADY_USED`, or `IN_DOUBT` after the maximum
//! attempts. `--as paid` makes it SUCCESS, `--as unpaid` FAILED (and `payrun failed` then offers it
//! for paying again), each with the reason, the operator and the time. It never sends anything.
//!
//! ```text
//! payrun resolve BATCH --row LINE --as paid|unpaid --reason TEXT [--utr UTR] [--state DIR]
//! ```

use payrun::config::ConfigFile;

use payrun::say;

use super::{Exit, StateArgs};

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    /// The money reached the payee (the bank statement or the gateway shows it).
    Paid,
    /// The money did not move.
    Unpaid,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Batch id (or unique prefix) or the input file's path.
    batch: String,
    /// The row's line in the input file.
    #[arg(long, value_name = "LINE")]
    row: u64,
    /// What you found.
    #[arg(long = "as", value_enum, value_name = "paid|unpaid")]
    verdict: Verdict,
    /// How you know (recorded with your name and the time).
    #[arg(long, value_name = "TEXT")]
    reason: String,
    /// The bank's reference of the payment, when paid.
    #[arg(long, value_name = "UTR")]
    utr: Option<String>,
    #[command(flatten)]
    state: StateArgs,
}

pub fn run(args: Args, config: &ConfigFile, operator: &str) -> anyhow::Result<Exit> {
    if args.reason.trim().is_empty() {
        anyhow::bail!("--reason must say how you know");
    }
    let session = args.state.session(config, operator, true)?;
    let batch = session.find_batch(&args.batch)?;
    let paid = args.verdict == Verdict::Paid;
    let utr = args.utr.as_deref().map(str::trim).filter(|u| !u.is_empty());
    let (row, to) = payrun::batch::resolve(&session, &batch, args.row, paid, utr, args.reason.trim())?;
    say!(
        "line {} ({}) is now {}: {}",
        row.line,
        row.name,
        to.state().result_status(),
        to.message.as_deref().unwrap_or("")
    );
    if !paid {
        say!("to pay it again, corrected:");
        super::run::print_command(&session.command(&format!("failed {} --out retry.csv", batch.id)), 2);
    }
    Ok(Exit::Ok)
}
