//! `payrun run`: validate a file and pay every valid row exactly once.
//!
//! ```text
//! payrun run FILE [--gateway embedded|URL] [--out RESULT.csv] [--state DIR]
//!                 [--rate N] [--burst N] [--concurrency N] [--poll-timeout DUR]
//!                 [--skip-invalid] [--mode-auto] [--allow-duplicates] [--allow-unknown-ifsc]
//!                 [--new-batch] [--allow-repeat] [--yes | --confirm-total AMOUNT] [--json]
//! ```
//!
//! The batch id comes from the file's bytes: running the same file again resumes its batch, and a
//! file whose batch finished is refused (`--new-batch` pays it again, with new references). Rows
//! that repeat another batch's payment, or pay a payee id to a new bank account, are HELD until
//! approved. The embedded sandbox is the default gateway; any other gateway first has its
//! credentials checked, then shows the control totals and asks for confirmation (or needs `--yes`
//! / `--confirm-total` without a terminal). The steps themselves live in [`payrun::batch`].

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::time::Duration;

use payrun::batch::{self, BatchError, Confirm, Driven, FileOptions, GatewayChoice, Opened, Overrides, Plan, Session};
use payrun::config::ConfigFile;
use payrun::engine::Stop;
use payrun::journal::holds::HoldReport;
use payrun::journal::{Batch, RowState};
use payrun::money::Amount;
use payrun::report::{plural, plural_of};
use payrun::sandbox::Profile;
use payrun::shutdown::Shutdown;
use payrun::{err, errln, outln, say};

use super::validate::{RuleArgs, encoding_note};
use super::{Exit, StateArgs};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The payout file (CSV with a header row).
    file: PathBuf,
    #[command(flatten)]
    pub drive: DriveArgs,
    /// Send the valid rows of a file that has invalid ones (reported as INVALID).
    #[arg(long)]
    skip_invalid: bool,
    #[command(flatten)]
    rules: RuleArgs,
    /// Pay a file whose batch already finished again, as a new batch with new references.
    #[arg(long)]
    new_batch: bool,
    /// Send rows that repeat another batch's payment to the same payee (recorded as approved by
    /// the operator). Never releases a changed bank account.
    #[arg(long)]
    allow_repeat: bool,
}

/// Options `run` and `resume` share.
#[derive(clap::Args, Debug, Clone)]
pub struct DriveArgs {
    /// `embedded` (the built-in sandbox: no money moves) or the gateway's base URL.
    #[arg(long, value_name = "embedded|URL")]
    pub gateway: Option<String>,
    /// Where to write the result file, CSV or .xlsx (default: <state>/results/<file>-<batch>.csv).
    #[arg(long, value_name = "RESULT.csv|RESULT.xlsx")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub state: StateArgs,
    /// Gateway requests per second, all calls counted (default 10).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub rate: Option<u32>,
    /// Requests allowed at once above the rate (default: rate/10, at least 1).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub burst: Option<u32>,
    /// Requests in flight at most, not counting requests presumed stalled (default: derived from
    /// the rate and the gateway's observed latency).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub concurrency: Option<u32>,
    /// How long to keep polling pending payouts once all are sent (default 10m).
    #[arg(long, value_name = "DUR", value_parser = humantime::parse_duration)]
    pub poll_timeout: Option<Duration>,
    /// Confirm sending to a non-embedded gateway without asking.
    #[arg(long, conflicts_with = "confirm_total")]
    pub yes: bool,
    /// Confirm by stating the total about to be sent (must match exactly).
    #[arg(long, value_name = "AMOUNT")]
    pub confirm_total: Option<String>,
    /// Print one JSON summary on stdout.
    #[arg(long)]
    pub json: bool,
    /// Profile of the embedded sandbox (default: realistic; on resume, the one the batch ran with).
    #[arg(long, value_enum)]
    pub sandbox_profile: Option<Profile>,
}

impl DriveArgs {
    pub fn overrides(&self) -> Overrides {
        Overrides {
            rate: self.rate,
            burst: self.burst,
            concurrency: self.concurrency,
            poll_timeout: self.poll_timeout,
            sandbox_profile: self.sandbox_profile,
        }
    }
}

/// How many row problems `run` prints before pointing at `payrun validate`.
const SHOWN_PROBLEMS: usize = 20;

pub async fn run(args: Args, config: &ConfigFile, operator: &str) -> anyhow::Result<Exit> {
    let rules = args.rules.options(config)?;
    let session = args.drive.state.session(config, operator, true)?;
    let opts = FileOptions {
        rules,
        switches: batch::ReadSwitches {
            mode_auto: args.rules.mode_auto,
            skip_invalid: args.skip_invalid,
            allow_duplicates: args.rules.allow_duplicates,
            allow_unknown_ifsc: args.rules.allow_unknown_ifsc,
        },
        new_batch: args.new_batch,
        allow_repeat: args.allow_repeat,
        gateway: GatewayChoice::resolve(args.drive.gateway.as_deref(), config),
        overrides: args.drive.overrides(),
    };
    let mut shown = 0usize;
    let opened = batch::open_file(&session, &args.file, &opts, config, encoding_note, |p| {
        if shown < SHOWN_PROBLEMS {
            say!("{p}");
        }
        shown += 1;
    })?;
    if shown > SHOWN_PROBLEMS {
        say!("... and {} more; all of them:", shown - SHOWN_PROBLEMS);
        print_command(&validate_command(&args), 2);
    }
    let batch = match opened {
        Opened::Refused(r) => return Ok(refuse(&args, &r, &session)),
        Opened::Unfinished(b) => {
            let counts = session.journal.counts(&b.id)?;
            let untouched = counts.open() == counts.state(RowState::Ready).count + counts.state(RowState::Held).count
                && counts.state(RowState::Success).count + counts.state(RowState::Failed).count == 0;
            if untouched {
                say!("batch {} of this file is stored but nothing was sent yet: continuing it", b.id);
            } else {
                say!("batch {} of this file is not finished: resuming it (nothing already sent is sent again)", b.id);
            }
            b
        }
        Opened::Stored { batch, holds, allowed } => {
            let invalid = batch.total_rows - batch.valid.count;
            say!(
                "batch {}: {}, {} valid (₹{}){}",
                batch.id,
                plural(batch.total_rows, "row"),
                batch.valid.count,
                batch.valid.amount.to_indian(),
                if invalid > 0 { format!(", {invalid} invalid (skipped)") } else { String::new() }
            );
            print_holds(&session, &batch, &holds)?;
            if let Some(a) = allowed.filter(|a| !a.released.is_empty()) {
                say!(
                    "--allow-repeat: {} released, recorded as approved by {}",
                    plural(a.released.len() as u64, "repeat payment"),
                    session.operator
                );
            }
            batch
        }
    };
    drive(&session, batch, &args.drive, config).await
}

/// How many held lines the approve command printed after a run names; past that, the first ones
/// and where to see them all.
const LISTED_LINES: usize = 30;

/// Line numbers as `approve --rows` takes them, runs shortened: `3,7,12-15`.
pub use payrun::report::attention::line_list;

/// Prints a command the operator is to type, on lines of its own continued with ` \`.
pub fn print_command(command: &str, indent: usize) {
    payrun::out::Stream::Stderr.command(command, indent);
}

/// `payrun validate FILE` with the switches of this run that change what validate reports.
fn validate_command(args: &Args) -> String {
    let mut c = format!("payrun validate {}", batch::shell_quote(&args.file.display().to_string()));
    let r = &args.rules;
    if let Some(sheet) = &r.sheet {
        c.push_str(&format!(" --sheet {}", batch::shell_quote(sheet)));
    }
    for (on, flag) in [
        (r.mode_auto, " --mode-auto"),
        (r.allow_duplicates, " --allow-duplicates"),
        (r.allow_unknown_ifsc, " --allow-unknown-ifsc"),
    ] {
        if on {
            c.push_str(flag);
        }
    }
    c
}

/// The command that lists every row that needs someone: the workbook's "Needs attention" sheet.
pub fn needs_command(session: &Session, batch: &str) -> String {
    session.command(&format!("report {batch} --out needs.xlsx"))
}

/// Tells the operator which rows are held and the commands that release them, naming the lines.
fn print_holds(session: &Session, batch: &Batch, holds: &HoldReport) -> anyhow::Result<()> {
    if holds.total() == 0 {
        return Ok(());
    }
    say!(
        "{} HELD, not sent until approved ({}, {}):",
        plural(holds.total(), "row"),
        plural(holds.repeat_payment, "repeat payment"),
        plural(holds.payee_changed, "changed bank account"),
    );
    for h in &holds.examples {
        say!("  line {}: {} {}", h.line, h.code, h.message);
    }
    let lines: Vec<u64> =
        session.journal.rows_in_state(&batch.id, RowState::Held, 0, LISTED_LINES + 1)?.iter().map(|r| r.line).collect();
    let all_listed = lines.len() <= LISTED_LINES && holds.examples.len() as u64 >= holds.total();
    if !all_listed {
        say!("  ... all {} of them, with the next step for each, on the sheet \"Needs attention\" of:", holds.total());
        print_command(&needs_command(session, &batch.id), 4);
    }
    let shown = &lines[..lines.len().min(LISTED_LINES)];
    if shown.len() as u64 == holds.total() {
        say!("  to pay them, once each is checked (a changed account with the payee, by phone):");
    } else {
        say!("  to pay the first {} of them, once each is checked:", shown.len());
    }
    print_command(&session.command(&format!("approve {} --rows {} --reason '...'", batch.id, line_list(shown))), 4);
    if holds.repeat_payment > 0 {
        say!("  or, if this batch is the mistake, drop it:");
        print_command(&session.command(&format!("cancel {} --reason '...'", batch.id)), 4);
    }
    Ok(())
}

/// Refuses the file: the reason on stderr, and with `--json` one JSON document on stdout too. Exit 1:
/// nothing was sent.
fn refuse(args: &Args, refusal: &batch::Refusal, session: &Session) -> Exit {
    let (prose, commands) = refusal.explain(&args.file, session);
    say!("error: {prose}");
    for c in &commands {
        print_command(c, 2);
    }
    let message = refusal.message(&args.file, session);
    if args.drive.json {
        let doc =
            serde_json::json!({"file": args.file.display().to_string(), "error": message, "exit": Exit::Input as u8});
        outln!("{doc}");
    }
    Exit::Input
}

/// Confirmation on the terminal, or by `--yes` / `--confirm-total`.
struct CliConfirm<'a> {
    args: &'a DriveArgs,
    session: &'a Session,
}

impl CliConfirm<'_> {
    /// Where the money goes: the gateway, what is sent (and what of it needs this confirmation),
    /// what is followed, what stays held.
    fn describe(&self, plan: &Plan) {
        let modes: Vec<String> =
            plan.by_mode.iter().map(|(m, t)| format!("{m} {} ₹{}", t.count, t.amount.to_indian())).collect();
        say!("about to pay through {}:", plan.gateway);
        if plan.to_send.count > 0 {
            let new = if plan.reconfirm { " not confirmed before (released since)" } else { "" };
            say!(
                "  {}{new}, ₹{} ({})",
                plural(plan.to_send.count, "row"),
                plan.to_send.amount.to_indian(),
                modes.join(", ")
            );
        }
        if plan.confirmed.count > 0 {
            say!("  {} confirmed before, ₹{}", plural(plan.confirmed.count, "row"), plan.confirmed.amount.to_indian());
        }
        if plan.in_flight > 0 {
            say!("  and follow {} already sent", plural(plan.in_flight, "row"));
        }
        if plan.held > 0 {
            say!("  {} not sent until approved", plural_of(plan.held, "held row is", "held rows are"));
        }
        say!(
            "  at {} requests/s this takes at least {} (2 gateway calls per payout)",
            plan.rate,
            payrun::engine::progress::short_duration(plan.least_duration())
        );
        if plan.first_in_state {
            let (journal, elsewhere) = if self.session.is_team() {
                (format!("the team journal at {}", self.session.journal.place().describe()), "another journal")
            } else {
                (self.session.state.path.display().to_string(), "another state directory or machine")
            };
            say!(
                "  note: {journal} holds no earlier batch. payrun knows what was paid only from its journal: if this file (or part of it) was run from {elsewhere}, stop and use that one."
            );
        }
    }
}

impl Confirm for CliConfirm<'_> {
    fn show(&mut self, plan: &Plan) {
        self.describe(plan);
    }

    fn confirm(&mut self, plan: &Plan) -> anyhow::Result<bool> {
        self.describe(plan);
        let a = self.args;
        if a.yes {
            return Ok(true);
        }
        if let Some(stated) = &a.confirm_total {
            let stated = Amount::parse_cell(stated.trim()).map_err(|e| anyhow::anyhow!("--confirm-total: {e}"))?;
            if stated == plan.to_send.amount {
                return Ok(true);
            }
            say!(
                "error: --confirm-total ₹{} does not match the total about to be sent, ₹{}",
                stated.to_indian(),
                plan.to_send.amount.to_indian()
            );
            return Ok(false);
        }
        if !std::io::stdin().is_terminal() {
            say!("error: not a terminal: confirm with --yes or --confirm-total {}", plan.to_send.amount);
            return Ok(false);
        }
        err!("Send these payouts? [y/N] ");
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
    }
}

/// Runs (or resumes) a stored batch to the end, writes its result and prints the summary. The
/// session holds the state directory's lock.
pub async fn drive(session: &Session, batch: Batch, a: &DriveArgs, config: &ConfigFile) -> anyhow::Result<Exit> {
    let settings = batch::settings_for(&a.overrides(), config, batch::ReadSwitches::default(), Some(&batch.settings));
    if batch.gateway == "embedded" && a.gateway.as_deref().is_none_or(|g| g == "embedded") {
        say!(
            "gateway: embedded sandbox ({:?} profile) — simulated, NO REAL MONEY MOVES",
            batch::embedded_profile(&settings)
        );
        // A real gateway's confirmation says this too.
        let counts = session.journal.counts(&batch.id)?;
        let to_send = counts.state(RowState::Ready).count;
        if to_send > 0 {
            let least = batch::least_duration(to_send, counts.open() - to_send, settings.rate);
            say!(
                "{} to send at {} requests/s: at least {} (2 calls per payout)",
                plural(to_send, "row"),
                settings.rate,
                payrun::engine::progress::short_duration(least)
            );
        }
    }
    let shutdown = Shutdown::new();
    shutdown.on_signals(|| {
        errln!();
        say!("stopping: no new payouts; waiting for the requests in flight (Ctrl-C again to exit at once)");
    });
    let poll_timeout = Duration::from_millis(settings.poll_timeout_ms);
    let mut progress = payrun::engine::progress::for_stderr(a.json, Some(poll_timeout));
    let mut confirm = CliConfirm { args: a, session };
    let resume = session.command(&format!("resume {}", batch.id));
    let driven = batch::drive(
        session,
        &batch,
        a.gateway.as_deref(),
        &a.overrides(),
        config,
        &mut confirm,
        progress.as_mut(),
        shutdown,
    )
    .await;
    let outcome = match driven {
        Ok(Driven::Ran(o)) => o,
        Ok(Driven::Declined) => {
            say!("nothing sent. The batch is stored; to continue it:");
            print_command(&resume, 2);
            return Ok(stopped(a, &batch.id, "declined", Exit::Input));
        }
        Ok(Driven::AwaitingApproval(state)) => {
            say!(
                "batch {} is stored and AWAITING_APPROVAL: approved by {} of the {} checker{} its policy requires{}. Nothing sent.",
                batch.id,
                state.approvers.len(),
                state.required,
                if state.required == 1 { "" } else { "s" },
                if state.approvers.is_empty() { String::new() } else { format!(" ({})", state.approvers.join(", ")) }
            );
            if let Some((by, at)) = &state.rejected {
                say!("it was rejected by {by} at {}: it will not be sent", payrun::report::local_time(at));
                return Ok(stopped(a, &batch.id, "rejected", Exit::Partial));
            }
            say!("a checker (not {}, who stored it) looks at its totals and approves it with:", state.maker);
            print_command(&session.command(&format!("approve {} --batch --reason '...'", batch.id)), 2);
            say!("then a sender sends it with:");
            print_command(&resume, 2);
            return Ok(stopped(a, &batch.id, "awaiting_approval", Exit::Partial));
        }
        Ok(Driven::NotSender(role)) => {
            say!(
                "batch {} is approved, but {role} is not a sender (payrun_sender): a sender continues it with:",
                batch.id
            );
            print_command(&resume, 2);
            return Ok(stopped(a, &batch.id, "not_sender", Exit::Input));
        }
        Ok(Driven::Busy(h)) => {
            say!(
                "error: batch {} is being driven by {} on {} (process {}) since {}: it is not driven twice. Wait for it to finish; if that process died, its lease expires and the batch can be continued with:",
                batch.id,
                h.role,
                h.host,
                h.pid,
                payrun::report::local_time(&h.since)
            );
            print_command(&resume, 2);
            return Ok(stopped(a, &batch.id, "busy", Exit::Input));
        }
        Ok(Driven::CredentialsRefused(why)) => {
            say!("stopped before anything was sent: the gateway refused the credentials: {why}");
            say!("check the ATMOON_* variables, then:");
            print_command(&resume, 2);
            return Ok(stopped(a, &batch.id, "credentials_refused", Exit::Aborted));
        }
        Ok(Driven::JournalStopped(e)) => {
            // Payouts may already have gone out: this is an abort, not "nothing sent".
            say!("error: the run stopped on a journal error, and sent nothing after it: {e}");
            say!("to continue once the cause is fixed:");
            print_command(&resume, 2);
            return Ok(stopped(a, &batch.id, "journal_stopped", Exit::Aborted));
        }
        Err(e @ BatchError::OtherGateway { .. }) => {
            say!("error: {e}");
            return Ok(stopped(a, &batch.id, "other_gateway", Exit::Input));
        }
        Err(e) => return Err(e.into()),
    };
    finish(session, &batch, a, Some(&outcome.stop), Some(&outcome.stats))
}

/// A drive that stopped before it sent anything (or, for a journal error, before the result file):
/// the prose is on stderr already; with `--json`, one JSON document on stdout names the batch, why
/// it stopped and the exit code, as a finished run's summary does.
fn stopped(a: &DriveArgs, batch: &str, why: &str, exit: Exit) -> Exit {
    if a.json {
        outln!("{}", serde_json::json!({"batch": batch, "stop": why, "exit": exit as u8}));
    }
    exit
}

/// Writes the result file, prints the summary; the exit code.
pub fn finish(
    session: &Session,
    batch: &Batch,
    a: &DriveArgs,
    stop: Option<&Stop>,
    stats: Option<&payrun::engine::Snapshot>,
) -> anyhow::Result<Exit> {
    let done = batch::finish(session, batch, a.out.as_deref(), stop)?;
    let exit = match done.verdict {
        // Rows skipped as INVALID need someone too (SPEC 5): not "every valid row reached SUCCESS".
        batch::Verdict::Complete if done.summary.count("INVALID") > 0 => Exit::Partial,
        batch::Verdict::Complete => Exit::Ok,
        batch::Verdict::Partial => Exit::Partial,
        batch::Verdict::Aborted => Exit::Aborted,
    };
    if a.json {
        let mut v = serde_json::to_value(&done.summary)?;
        v["stop"] = serde_json::json!(stop.map(stop_word));
        v["exit"] = serde_json::json!(exit as u8);
        if let Some(s) = stats {
            v["stats"] = serde_json::json!({
                "sends": s.sends_started, "postings_received": s.postings_received(), "inquiries": s.inquiries,
                "resends": s.resends, "lost_answers": s.lost_answers, "not_sent": s.not_sent,
                "doubt_inquiries": s.doubt_inquiries, "max_in_flight": s.max_in_flight, "stalled": s.stalled,
                "elapsed_s": s.elapsed.as_secs_f64(),
            });
        }
        outln!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        done.summary.print(&mut payrun::out::stdout())?;
        if let Some(s) = stats {
            let parts = [
                format!("{},", plural(s.postings_received(), "posting")),
                format!("{},", plural_of(s.inquiries, "status inquiry", "status inquiries")),
                format!("{},", plural(s.resends, "resend")),
                format!("{} resolved,", plural(s.lost_answers, "lost answer")),
                format!("in {:.1}s", s.elapsed.as_secs_f64()),
            ];
            let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
            let width = payrun::out::Stream::Stdout.width();
            for l in payrun::out::wrap_units(&parts, " ", "", width, "  ", "    ") {
                outln!("{l}");
            }
        }
    }
    let open = done.open;
    match stop {
        Some(Stop::CredentialsRefused(m)) => say!("stopped: the gateway refused the credentials: {m}"),
        Some(Stop::Unreachable(m)) => say!("stopped: the gateway could not be reached: {m}"),
        Some(Stop::Interrupted) => say!("stopped by the operator."),
        Some(Stop::PollTimeout) => {
            say!(
                "poll timeout: {} still pending {} written as PENDING.",
                plural(open, "row"),
                if open == 1 { "is" } else { "are" }
            )
        }
        _ => {}
    }
    if open > 0 {
        say!("to continue:");
        print_command(&session.command(&format!("resume {}", batch.id)), 2);
    }
    Ok(exit)
}

fn stop_word(s: &Stop) -> &'static str {
    match s {
        Stop::Finished => "finished",
        Stop::PollTimeout => "poll_timeout",
        Stop::Interrupted => "interrupted",
        Stop::CredentialsRefused(_) => "credentials_refused",
        Stop::Unreachable(_) => "unreachable",
        Stop::Refreshed => "refreshed",
    }
}

#[cfg(test)]
mod tests {
    use super::line_list;

    #[test]
    fn lines_as_approve_takes_them() {
        assert_eq!(line_list(&[3, 7, 12, 13, 14, 15]), "3,7,12-15");
        assert_eq!(line_list(&[2, 3]), "2,3");
        assert_eq!(line_list(&[5]), "5");
        assert_eq!(line_list(&[]), "");
        let parsed =
            payrun::journal::actions::parse_lines(&line_list(&[3, 7, 12, 13, 14, 15, 40, 41, 42])).expect("parses");
        assert_eq!(parsed, [3, 7, 12, 13, 14, 15, 40, 41, 42]);
    }
}
