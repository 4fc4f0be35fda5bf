//! `payrun approve`: release held rows of a batch (SPEC 3.2, 3.3), recorded with the operator, the
//! time and the reason. Sends nothing: `payrun resume` sends the released rows.
//!
//! ```text
//! payrun approve BATCH (--rows LIST | --all-held) --reason TEXT [--state DIR]
//! ```
//!
//! `LIST` is line numbers of the input file: `12,15-18`. `--all-held` releases every repeat payment
//! (`REPEAT_PAYMENT`), never a changed bank account (`PAYEE_CHANGED`): those are approved one by
//! one, naming their line.

use payrun::config::ConfigFile;
use payrun::journal::actions::{Selection, parse_lines};

use super::run::plural;
use super::{Exit, StateArgs};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Batch id (or unique prefix) or the input file's path.
    batch: String,
    /// Lines of the input file to release, e.g. 12,15-18 (any hold).
    #[arg(long, value_name = "LIST", required_unless_present = "all_held", conflicts_with = "all_held")]
    rows: Option<String>,
    /// Release every REPEAT_PAYMENT row (not PAYEE_CHANGED ones).
    #[arg(long)]
    all_held: bool,
    /// Why these rows may be paid (recorded with your name and the time).
    #[arg(long, value_name = "TEXT")]
    reason: String,
    #[command(flatten)]
    state: StateArgs,
}

pub fn run(args: Args, config: &ConfigFile, operator: &str) -> anyhow::Result<Exit> {
    if args.reason.trim().is_empty() {
        anyhow::bail!("--reason must say why these rows may be paid");
    }
    let which = match &args.rows {
        Some(list) => Selection::Lines(parse_lines(list).map_err(|e| anyhow::anyhow!("--rows: {e}"))?),
        None => Selection::AllRepeats,
    };
    let session = args.state.session(operator, true)?;
    let batch = session.find_batch(&args.batch)?;
    let done = payrun::batch::approve(&session, &batch, &which, args.reason.trim(), config)?;
    for (line, status) in &done.not_held {
        eprintln!("line {line} is {status}, not held: nothing to approve");
    }
    for line in &done.unknown {
        eprintln!("line {line} is not a row of batch {}", batch.id);
    }
    if !done.payee_changed_left.is_empty() {
        let left = done.payee_changed_left.len() as u64;
        eprintln!(
            "{} changed bank {} left held: approve each by its line (--rows), after checking the new account with the payee",
            left,
            plural(left, "account", "accounts")
        );
    }
    for (line, why) in &done.held_as_repeat {
        eprintln!("line {line}: bank change approved, and held again as REPEAT_PAYMENT: {why}");
    }
    if !done.held_as_repeat.is_empty() {
        eprintln!(
            "  if it is really a second payment: {}",
            session.command(&format!("approve {} --rows {} --reason '...'", batch.id, lines_of(&done.held_as_repeat)))
        );
    }
    let n = done.released.len() as u64;
    if n == 0 && !done.held_as_repeat.is_empty() {
        return Ok(Exit::Ok);
    }
    if n == 0 {
        eprintln!("no row released");
        return Ok(Exit::Input);
    }
    eprintln!(
        "{n} {} released by {}; to send: {}",
        plural(n, "row", "rows"),
        session.operator,
        session.command(&format!("resume {}", batch.id))
    );
    Ok(Exit::Ok)
}

/// `3,7,12`.
fn lines_of(rows: &[(u64, String)]) -> String {
    rows.iter().map(|(l, _)| l.to_string()).collect::<Vec<_>>().join(",")
}
