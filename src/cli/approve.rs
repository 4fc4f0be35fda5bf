//! `payrun approve`: release held rows of a batch (SPEC 3.2, 3.3), recorded with the operator, the
//! time and the reason. Sends nothing: `payrun resume` sends the released rows.
//!
//! ```text
//! payrun approve BATCH (--rows LIST | --all-held) --reason TEXT [--state DIR]
//! ```
//!
//! `LIST` is line numbers of the input file: `12,15-18`. `--all-held` releases every repeat payment
//! (`REPEAT_PAYMENT`), never a changed bank account (`PAYEE_CHANGED`) or a second payment of an
//! obligation (`ALREADY_RETRIED`, SPEC 3.2b): those are approved one by one, naming their line.

use payrun::config::ConfigFile;
use payrun::journal::actions::{Selection, parse_lines};

use payrun::report::plural;
use payrun::say;

use super::run::{line_list, needs_command, print_command};
use super::{Exit, StateArgs};

/// How many changed bank accounts left held get a command each.
const LISTED: usize = 10;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Batch id (or unique prefix) or the input file's path.
    batch: String,
    /// Lines of the input file to release, e.g. 12,15-18 (any hold).
    #[arg(long, value_name = "LIST", required_unless_present_any = ["all_held", "whole_batch"], conflicts_with_all = ["all_held", "whole_batch"])]
    rows: Option<String>,
    /// Release every REPEAT_PAYMENT row (not PAYEE_CHANGED or ALREADY_RETRIED ones).
    #[arg(long, conflicts_with = "whole_batch")]
    all_held: bool,
    /// Team mode: approve the whole stored batch as a checker (SPEC 8.2), after its control totals
    /// (rows, amount by mode, held rows, payee changes), which the approval records.
    #[arg(long = "batch")]
    whole_batch: bool,
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
    if args.whole_batch {
        return approve_batch(&args, config, operator);
    }
    let which = match &args.rows {
        Some(list) => Selection::Lines(parse_lines(list).map_err(|e| anyhow::anyhow!("--rows: {e}"))?),
        None => Selection::AllRepeats,
    };
    let session = args.state.session(config, operator, true)?;
    let batch = session.find_batch(&args.batch)?;
    let done = payrun::batch::approve(&session, &batch, &which, args.reason.trim(), config)?;
    for (line, status) in &done.not_held {
        say!("line {line} is {status}, not held: nothing to approve");
    }
    for line in &done.unknown {
        say!("line {line} is not a row of batch {}", batch.id);
    }
    let left = &done.left_held;
    if !left.is_empty() {
        for code in ["PAYEE_CHANGED", "ALREADY_RETRIED"] {
            let lines: Vec<u64> = left.iter().filter(|(_, c)| *c == code).map(|(l, _)| *l).collect();
            if lines.is_empty() {
                continue;
            }
            let (what, how) = match code {
                "PAYEE_CHANGED" => (
                    "changed bank account",
                    "a change of bank account is approved line by line, once the new account is confirmed with the payee by phone",
                ),
                _ => (
                    "line already paid again",
                    "a second payment of a line (ALREADY_RETRIED) is approved line by line, once it is checked not to be paid twice",
                ),
            };
            say!(
                "{} left held ({code}): {} {}. {how}:",
                plural(lines.len() as u64, what),
                if lines.len() == 1 { "line" } else { "lines" },
                line_list(&lines)
            );
            for line in lines.iter().take(LISTED) {
                print_command(&session.command(&format!("approve {} --rows {line} --reason '...'", batch.id)), 2);
            }
            if lines.len() > LISTED {
                say!(
                    "  ... and {} more; all of them, with the next step for each, on the sheet \"Needs attention\" of:",
                    lines.len() - LISTED
                );
                print_command(&needs_command(&session, &batch.id), 4);
            }
        }
    }
    for (line, code, why) in &done.held_again {
        say!("line {line}: approved, and held again as {code}: {why}");
    }
    if !done.held_again.is_empty() {
        say!("  if it is really a second payment:");
        let lines: Vec<u64> = done.held_again.iter().map(|(l, _, _)| *l).collect();
        print_command(
            &session.command(&format!("approve {} --rows {} --reason '...'", batch.id, line_list(&lines))),
            4,
        );
    }
    let n = done.released.len() as u64;
    if n == 0 && !done.held_again.is_empty() {
        return Ok(Exit::Ok);
    }
    if n == 0 {
        say!("no row released");
        return Ok(Exit::Input);
    }
    say!("{} released by {}; to send:", plural(n, "row"), session.operator);
    print_command(&session.command(&format!("resume {}", batch.id)), 2);
    Ok(Exit::Ok)
}

/// `approve BATCH --batch`: a checker approves a stored batch (team mode). Shows the control totals
/// the approval records; the database refuses the batch's maker, a second approval by the same
/// checker, and a role that is not a checker.
fn approve_batch(args: &Args, config: &ConfigFile, operator: &str) -> anyhow::Result<Exit> {
    let session = args.state.session(config, operator, false)?;
    if !session.is_team() {
        anyhow::bail!(
            "--batch approves a batch in a team journal (--journal URL); with SQLite the operator's confirmation at run is the approval"
        );
    }
    let journal = &session.journal;
    let batch = session.find_batch(&args.batch)?;
    // The holds as payrun makes them, checked again now (a row stored without them, or a payee
    // paid by another batch since): held rows are in the totals below, and sent only if released.
    let again = journal.hold_again_before_approval(&batch, &payrun::batch::hold_rules(config))?;
    for h in &again.examples {
        say!("held now, line {}: {} {}", h.line, h.code, h.message);
    }
    let totals = journal.control_totals(&batch)?;
    say!("batch {} ({}), stored by {}:", batch.id, batch.file_path, journal.approval_state(&batch.id)?.maker);
    say!("  {} valid of {}, ₹{}", plural(totals.valid.count, "row"), totals.rows, totals.valid.amount.to_indian());
    for (mode, t) in &totals.by_mode {
        say!("  {mode:<5} {:>6}  ₹{}", t.count, t.amount.to_indian());
    }
    say!(
        "  held (not sent until a checker releases them): {}, ₹{}; of them changed bank accounts: {}",
        plural(totals.held.count, "row"),
        totals.held.amount.to_indian(),
        totals.payee_changes
    );
    journal.approve_batch(&batch, &totals, args.reason.trim())?;
    let state = journal.approval_state(&batch.id)?;
    if state.approved() {
        say!(
            "approved by {} ({} of {} required): a sender sends it with:",
            state.approvers.join(", "),
            state.approvers.len(),
            state.required
        );
        print_command(&session.command(&format!("resume {}", batch.id)), 2);
    } else {
        say!(
            "approved by {} ({} of {} required): it waits for another checker:",
            state.approvers.join(", "),
            state.approvers.len(),
            state.required
        );
        print_command(&session.command(&format!("approve {} --batch --reason '...'", batch.id)), 2);
    }
    Ok(Exit::Ok)
}
