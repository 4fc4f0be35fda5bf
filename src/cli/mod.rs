//! The command-line surface: the clap definitions, the exit codes, and what the commands share
//! (the state directory and operator flags, loading the configuration). One file per command, each
//! opening with its usage; each is wiring over [`payrun::batch`] and the other library modules.

mod approve;
mod audit;
mod cancel;
mod failed;
mod journal;
mod payin;
mod pg;
mod policy;
mod reject;
mod report;
mod resolve;
mod resume;
mod run;
mod sandbox;
mod status;
mod validate;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use payrun::batch::{Connection, Session, StateDir};
use payrun::config::ConfigFile;
use payrun::journal::store::pgurl::JournalUrl;

/// The exit codes and what each means: the one table `payrun --help`, `run --help` and
/// `resume --help` print ([`exit_codes_help`]). A panic's 101 is never one of them (SPEC 5).
pub const EXIT_CODES: [(Exit, &str); 4] = [
    (Exit::Ok, "every valid row reached SUCCESS (validate: no row has an error)"),
    (Exit::Input, "usage or input error (a mistyped flag included): nothing was sent"),
    (
        Exit::Partial,
        "the batch ran, but some rows need someone: FAILED, PENDING, HELD, or INVALID and skipped by --skip-invalid",
    ),
    (
        Exit::Aborted,
        "aborted (credentials refused, gateway unreachable, journal lost, Ctrl-C): rows not sent stay resumable",
    ),
];

/// The exit-code table as `--help` shows it, in 80 columns.
pub fn exit_codes_help() -> String {
    let mut text = String::from("Exit codes:\n");
    for (code, meaning) in EXIT_CODES {
        for l in payrun::out::wrap(meaning, payrun::out::WIDTH, &format!("  {}  ", code as u8), "     ") {
            text.push_str(&l);
            text.push('\n');
        }
    }
    text
}

/// payrun: pay a salary or vendor file through the AT MOON DPS payout API, exactly once.
#[derive(Parser, Debug)]
#[command(name = "payrun", version, about, long_about = None, propagate_version = true, after_help = exit_codes_help())]
pub struct Cli {
    /// Configuration file (default: $PAYRUN_CONFIG, else ./payrun.toml when present).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// More log output on stderr (-v info, -vv debug). Secrets are never logged.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Who is at the keyboard, recorded with every action (default: $PAYRUN_OPERATOR, else the
    /// login name).
    #[arg(long, global = true, env = "PAYRUN_OPERATOR", value_name = "NAME")]
    pub operator: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Check a payout file (CSV or .xlsx) against every rule, without sending anything.
    #[command(after_help = validate::after_help(false))]
    Validate(validate::Args),
    /// Validate a file (CSV or .xlsx) and pay every valid row exactly once.
    #[command(after_help = validate::after_help(true))]
    Run(run::Args),
    /// Continue a batch that was interrupted, or follow its pending payouts.
    #[command(after_help = exit_codes_help())]
    Resume(resume::Args),
    /// Show batches and their progress.
    Status(status::Args),
    /// Write a batch's result file.
    Report(report::Args),
    /// Write a batch's FAILED rows in input format, ready to correct and run as a new file.
    Failed(failed::Args),
    /// Release held rows of a batch (possible repeats, changed bank accounts) so resume sends them.
    Approve(approve::Args),
    /// Abandon a batch: rows not sent are never sent.
    Cancel(cancel::Args),
    /// Team mode: a checker ends a stored batch unsent.
    Reject(reject::Args),
    /// Team mode: create or upgrade the journal's schema in PostgreSQL, or import a SQLite journal.
    #[command(subcommand)]
    Journal(journal::Command),
    /// Team mode: the approval policy (how many checkers a batch needs).
    #[command(subcommand)]
    Policy(policy::Command),
    /// Record a person's finding on a row payrun cannot decide (paid or not); sends nothing.
    Resolve(resolve::Args),
    /// Verify a batch's evidence log, or tell one row's story from it.
    Audit(audit::Args),
    /// Serve the simulated AT MOON DPS gateway (no real money moves).
    #[command(after_help = payrun::sandbox::profile::magic_help())]
    Sandbox(sandbox::Args),
    /// One PAYIN call (UPI intent, collect or QR).
    Payin(payin::Args),
    /// PG payment calls: initiate and verify.
    #[command(subcommand)]
    Pg(pg::Command),
}

/// Where the journal is, the flags every command that uses it shares.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct StateArgs {
    /// State directory holding the journal, the memory of what was paid (default: $PAYRUN_STATE,
    /// else the user's data directory, e.g. ~/.local/share/payrun). In team mode it keeps only
    /// this machine's result files.
    #[arg(long, env = "PAYRUN_STATE", value_name = "DIR")]
    pub state: Option<PathBuf>,
    /// Team mode: the journal in a PostgreSQL database shared by the team (libpq URL,
    /// postgres://user@host/db?sslmode=verify-full; default: $PAYRUN_JOURNAL, else journal.url in
    /// payrun.toml, else SQLite in the state directory). The password comes from PGPASSWORD or
    /// ~/.pgpass and is never shown.
    #[arg(long, env = "PAYRUN_JOURNAL", value_name = "URL")]
    pub journal: Option<String>,
    /// Team mode: how long to wait for a lost database before stopping (exit 3, resumable).
    #[arg(long, value_name = "DUR", value_parser = humantime::parse_duration)]
    pub db_timeout: Option<std::time::Duration>,
}

/// `--operator` or `$PAYRUN_OPERATOR` as given (none: the login name was used): team mode refuses
/// a name that is not the database role (SPEC 8.2).
static OPERATOR_GIVEN: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();

impl StateArgs {
    pub fn dir(&self) -> anyhow::Result<StateDir> {
        Ok(StateDir::resolve(self.state.clone())?)
    }

    /// The team journal's URL, when there is one: `--journal`, `$PAYRUN_JOURNAL`, or `journal.url`.
    pub fn journal_url(&self, config: &ConfigFile) -> anyhow::Result<Option<JournalUrl>> {
        let text = self.journal.clone().or_else(|| config.journal.url.clone()).filter(|t| !t.trim().is_empty());
        let Some(text) = text else { return Ok(None) };
        let url = JournalUrl::parse(text.trim()).map_err(|e| anyhow::anyhow!("--journal: {e}"))?;
        for w in url.warnings() {
            payrun::say!("warning: {w}");
        }
        Ok(Some(url))
    }

    /// Opens the journal, for `operator`: SQLite in the state directory (taking the directory's
    /// lock when `lock`), or the team's PostgreSQL database (where the operator is the database
    /// role, and drivers take a lease on their batch instead of a lock).
    pub fn session(&self, config: &ConfigFile, operator: &str, lock: bool) -> anyhow::Result<Session> {
        let dir = self.dir()?;
        if let Some(url) = self.journal_url(config)? {
            let given = OPERATOR_GIVEN.get().cloned().flatten();
            let session = Session::open_team(&url, dir, given.as_deref(), self.journal.is_some())
                .with_context(|| format!("cannot open the journal at {}", url.display()))?;
            session
                .journal
                .set_db_timeout(self.db_timeout.or(config.journal.db_timeout).unwrap_or(payrun::journal::DB_TIMEOUT));
            return Ok(session);
        }
        let shown = dir.path.display().to_string();
        Session::open(dir, operator.to_string(), lock).with_context(|| format!("cannot open the journal in {shown}"))
    }
}

/// Process exit codes (SPEC section 1; their meanings for `--help` in [`EXIT_CODES`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Every valid row reached SUCCESS (or: validation found no error).
    Ok = 0,
    /// Usage or input error; nothing sent.
    Input = 1,
    /// The batch ran, but some rows need someone: FAILED, PENDING, HELD, or INVALID and skipped.
    Partial = 2,
    /// Aborted (credentials refused, gateway unreachable, journal lost, Ctrl-C); unsent rows stay
    /// resumable.
    Aborted = 3,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e as u8)
    }
}

pub fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("PAYRUN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("payrun={default},warn")));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Never a panic on a closed stderr (the sink drops what cannot be written); each event
        // wrapped at word boundaries to the width, its time in the operator's zone.
        .with_writer(payrun::out::log_line)
        .log_internal_errors(false)
        .with_timer(LocalTime)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// `PAYRUN_CLOCK_OFFSET` (a duration, `25d`): moves payrun's clock forward, for tests of the
/// time windows of SPEC 3.2 only (a month of operator actions in seconds). Said on every run.
fn clock_offset() -> anyhow::Result<()> {
    let Some(text) = std::env::var("PAYRUN_CLOCK_OFFSET").ok().filter(|t| !t.trim().is_empty()) else {
        return Ok(());
    };
    let by = humantime::parse_duration(text.trim())
        .map_err(|e| anyhow::anyhow!("PAYRUN_CLOCK_OFFSET '{text}' is not a duration: {e}"))?;
    payrun::journal::clock::advance(by);
    payrun::errln!("warning: PAYRUN_CLOCK_OFFSET moves payrun's clock {text} ahead (for tests only)");
    Ok(())
}

/// Log times as every time payrun prints: in the operator's time zone, with the zone named.
struct LocalTime;

impl tracing_subscriber::fmt::time::FormatTime for LocalTime {
    fn format_time(&self, w: &mut tracing_subscriber::fmt::format::Writer<'_>) -> std::fmt::Result {
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        write!(w, "{}", payrun::report::local_time_secs(&now))
    }
}

pub fn dispatch(cli: Cli) -> anyhow::Result<Exit> {
    clock_offset()?;
    let (config, _) = ConfigFile::load(cli.config.as_deref())?;
    let _ = OPERATOR_GIVEN.set(cli.operator.clone());
    let operator = payrun::batch::operator_name(cli.operator.as_deref());
    let op = operator.as_str();
    payrun::report::set_time_zone(config.report.time_zone()?);
    match cli.command {
        Command::Validate(a) => validate::run(a, &config),
        Command::Run(a) => runtime()?.block_on(run::run(a, &config, op)),
        Command::Resume(a) => runtime()?.block_on(resume::run(a, &config, op)),
        Command::Status(a) => runtime()?.block_on(status::run(a, &config, op)),
        Command::Report(a) => report::run(a, &config, op),
        Command::Failed(a) => failed::run(a, &config, op),
        Command::Approve(a) => approve::run(a, &config, op),
        Command::Cancel(a) => cancel::run(a, &config, op),
        Command::Reject(a) => reject::run(a, &config, op),
        Command::Journal(c) => journal::run(c, &config, op),
        Command::Policy(c) => policy::run(c, &config, op),
        Command::Resolve(a) => resolve::run(a, &config, op),
        Command::Audit(a) => audit::run(a, &config, op),
        Command::Sandbox(a) => runtime()?.block_on(sandbox::run(a, &config)),
        Command::Payin(a) => runtime()?.block_on(payin::run(a, &config)),
        Command::Pg(c) => runtime()?.block_on(pg::run(c, &config)),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")
}

/// The banner printed whenever the embedded sandbox is in use.
pub fn embedded_banner(conn: &Connection) {
    if let Some(s) = &conn.sandbox {
        payrun::say!("gateway: embedded sandbox at {} (simulated: NO REAL MONEY MOVES)", s.url());
    }
}
