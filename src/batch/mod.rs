//! A batch's life, in the library so that every command is wiring over it (and a future shared
//! journal or service can drive a batch without the command line):
//!
//! ```text
//!   open (state directory, lock, operator)
//!     → ingest (read + validate the file, store it as a batch, in one transaction with its holds)
//!     → guards (same bytes again, same rows again, repeats across batches, changed bank accounts)
//!     → confirm (credentials checked first; control totals shown; y/N, --yes or --confirm-total)
//!     → drive (the engine: send, resolve in-doubt rows, poll)
//!     → finish (result file, summary, verdict)
//! ```
//!
//! and the actions a person takes between runs: approve held rows, cancel a batch, resolve a row.
//! This module owns the order of those steps and the guards between them. It never reads a
//! terminal or prints: confirmation is a [`Confirm`] the caller supplies, messages are returned.

pub mod connect;
pub mod settings;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::ConfigFile;
use crate::engine::{self, Outcome, Progress, Stop};
use crate::input::{InputError, Mode, Problem, RuleOptions, Scanner};
use crate::journal::actions::{Approved, Cancelled, Selection};
use crate::journal::holds::{HeldRow, HoldReport};
use crate::journal::ingest::{IngestError, IngestOptions, Ingested, ingest};
use crate::journal::scratch::DiskIndex;
use crate::journal::{Batch, Journal, JournalError, Row, RowState, RowStatus};
use crate::money::{Amount, Tally};
use crate::report::{self, Summary};
use crate::shutdown::Shutdown;

pub use connect::{Connection, GatewayChoice, connect, gateway_label, same_gateway};
pub use settings::{Overrides, ReadSwitches, embedded_profile, engine_config, hold_rules, settings_for};

/// Failures of a batch step that callers branch on.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Input(#[from] InputError),
    #[error(
        "batch {batch} ran against {was}; it cannot continue against {now}. Finish it there, or pay the file as a new batch (--new-batch) once it is finished."
    )]
    OtherGateway { batch: String, was: String, now: String },
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Connect(String),
    #[error("{0}")]
    Confirm(String),
    #[error("cannot write the result file: {0}")]
    Report(String),
    #[error("cannot find the user's data directory for the journal: set PAYRUN_STATE or use --state DIR")]
    NoDataDir,
    #[error("{0}")]
    Operator(String),
}

/// Where the journal lives, and whether that is the default place (commands printed for the
/// operator to type next carry `--state` whenever it is not).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateDir {
    pub path: PathBuf,
    pub is_default: bool,
}

impl StateDir {
    /// The default: the user's data directory (`$XDG_DATA_HOME/payrun`, i.e.
    /// `~/.local/share/payrun` on Linux), never the working directory: whether a file was already
    /// paid must not depend on the folder the operator happens to stand in.
    pub fn default_path() -> Option<PathBuf> {
        directories::ProjectDirs::from("", "", "payrun").map(|d| d.data_dir().to_path_buf())
    }

    /// `--state DIR` (clap fills it from `$PAYRUN_STATE` too), else the default.
    pub fn resolve(flag: Option<PathBuf>) -> Result<StateDir, BatchError> {
        let default = StateDir::default_path();
        match flag.filter(|p| !p.as_os_str().is_empty()) {
            Some(path) => {
                let is_default = default.as_deref() == Some(path.as_path());
                Ok(StateDir { path, is_default })
            }
            None => Ok(StateDir { path: default.ok_or(BatchError::NoDataDir)?, is_default: true }),
        }
    }

    /// ` --state DIR` (quoted for a shell) when not the default, else nothing.
    pub fn arg(&self) -> String {
        if self.is_default {
            String::new()
        } else {
            format!(" --state {}", shell_quote(&self.path.display().to_string()))
        }
    }
}

/// `text` as one shell word: as it is when it is plain, else in single quotes.
pub fn shell_quote(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '-' | '+' | ':' | '=' | ','));
    if plain { text.to_string() } else { format!("'{}'", text.replace('\'', "'\\''")) }
}

/// The operator's name recorded with every action: `--operator` / `$PAYRUN_OPERATOR` (given by
/// the caller), else the login name, else `unknown`.
pub fn operator_name(given: Option<&str>) -> String {
    given
        .map(str::to_string)
        .or_else(|| std::env::var("USER").ok())
        .or_else(|| std::env::var("LOGNAME").ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// An open journal: the journal, the lock that keeps other processes from moving its rows (when
/// taken, SQLite), and who is at the keyboard.
pub struct Session {
    pub journal: Journal,
    pub state: StateDir,
    pub operator: String,
    /// ` --journal URL` (without a password) when the team journal was named by the flag, so
    /// printed commands work when pasted; empty otherwise.
    journal_arg: String,
    _lock: Option<File>,
}

impl Session {
    /// Opens the journal of `state`, taking the directory's lock when `lock` (every command that
    /// sends or changes rows does; reading commands do not).
    pub fn open(state: StateDir, operator: String, lock: bool) -> Result<Session, BatchError> {
        let journal = Journal::open(&state.path)?;
        let lock = if lock { Some(journal.lock()?) } else { None };
        Ok(Session { journal, state, operator, journal_arg: String::new(), _lock: lock })
    }

    /// Opens the team journal at `url` (SPEC 8). The operator is the database role PostgreSQL
    /// authenticated (`current_user`); an operator named otherwise (`--operator`,
    /// `$PAYRUN_OPERATOR`) is refused. `flag`: the URL came from `--journal` (printed commands then
    /// carry it).
    pub fn open_team(
        url: &crate::journal::store::pgurl::JournalUrl,
        state: StateDir,
        operator_given: Option<&str>,
        flag: bool,
    ) -> Result<Session, BatchError> {
        let journal = Journal::open_postgres(url, &state.path)?;
        let role = journal.role().unwrap_or_default().to_string();
        if let Some(named) = operator_given.map(str::trim).filter(|n| !n.is_empty() && *n != role) {
            return Err(BatchError::Operator(format!(
                "--operator / PAYRUN_OPERATOR names {named}, but in team mode the operator is the database role that signed in: {role}. Leave --operator out, or sign in to the database as {named}"
            )));
        }
        let journal_arg =
            if flag { format!(" --journal {}", shell_quote(&url.display_without_user())) } else { String::new() };
        Ok(Session { journal, state, operator: role, journal_arg, _lock: None })
    }

    /// A whole `payrun` command for the operator to type next, `--state` and `--journal` included
    /// when needed.
    pub fn command(&self, verb_and_args: &str) -> String {
        format!("payrun {verb_and_args}{}", self.where_args())
    }

    /// What a printed command needs to find this journal (SPEC 1: the whole command): ` --state
    /// DIR` when not the default, and in team mode ` --journal URL` when the URL was a flag
    /// (without a user: whoever pastes it signs in as themselves).
    pub fn where_args(&self) -> String {
        format!("{}{}", self.state.arg(), self.journal_arg)
    }

    /// Team mode: the journal is a shared PostgreSQL database.
    pub fn is_team(&self) -> bool {
        self.journal.place().is_team()
    }

    /// Finds a batch by id (or a unique prefix of 4 or more characters) or by the path of its input
    /// file (its latest batch).
    pub fn find_batch(&self, key: &str) -> Result<Batch, BatchError> {
        let path = Path::new(key);
        if path.is_file() {
            let sniffed = crate::input::reader::sniff(path, true)?;
            let sha = sniffed.sha256.map(hex::encode).unwrap_or_default();
            if let Some(b) = self.journal.latest_batch_for(&sha)? {
                return Ok(b);
            }
            return Err(BatchError::NotFound(format!(
                "no batch of {key} in {} (`{}` lists them)",
                self.state.path.display(),
                self.command("status")
            )));
        }
        if let Some(b) = self.journal.batch(key)? {
            return Ok(b);
        }
        let short = key.trim().len() < 4;
        Err(BatchError::NotFound(format!(
            "no batch '{key}' in {}{} (`{}` lists them)",
            self.state.path.display(),
            if short { ": a batch id prefix needs at least 4 characters" } else { "" },
            self.command("status")
        )))
    }
}

/// How a file becomes (or finds) its batch.
#[derive(Clone, Debug)]
pub struct FileOptions {
    pub rules: RuleOptions,
    pub switches: ReadSwitches,
    /// Pay a file whose batch finished again, as a new batch with new references.
    pub new_batch: bool,
    /// Release every `REPEAT_PAYMENT` hold at once (recorded as the operator's).
    pub allow_repeat: bool,
    pub gateway: GatewayChoice,
    pub overrides: Overrides,
}

/// Why a file was not stored (nothing sent).
#[derive(Debug)]
pub enum Refusal {
    /// The same bytes were paid as this batch, which finished.
    AlreadyPaid(Batch),
    /// `--new-batch` while this batch of the same bytes is not finished.
    Unfinished(Batch),
    /// Rows with errors and no `--skip-invalid`.
    HasErrors { invalid_rows: u64, total: u64, valid: Tally },
    /// The same rows as this earlier batch, in a file with other bytes.
    SameRows(Batch),
    /// A header and no data rows.
    NoRows,
    /// No valid row.
    NoValidRows,
    /// The file cannot be read.
    Unreadable(InputError),
}

impl Refusal {
    /// The message for the operator, with the whole commands to type next (in one text, for
    /// `--json`).
    pub fn message(&self, file: &Path, session: &Session) -> String {
        let (prose, commands) = self.explain(file, session);
        commands.iter().fold(prose, |text, c| format!("{text} {c}"))
    }

    /// The message in words, and the whole commands it points to, each to be printed on a line of
    /// its own so that it pastes.
    pub fn explain(&self, file: &Path, session: &Session) -> (String, Vec<String>) {
        let f = file.display();
        let quoted = shell_quote(&f.to_string());
        match self {
            Refusal::AlreadyPaid(b) if b.cancelled_at.is_some() => (
                format!(
                    "{f} was cancelled as batch {} ({}); payouts sent before the cancel may still be paid. Nothing sent. Where its rows stand, and to pay the file after all as a new batch with new references (rows that may already be paid are held):",
                    b.id,
                    report::local_time(b.cancelled_at.as_deref().unwrap_or("?")),
                ),
                vec![
                    session.command(&format!("status {}", b.id)),
                    session.command(&format!("run {quoted} --new-batch")),
                ],
            ),
            Refusal::AlreadyPaid(b) => (
                format!(
                    "{f} was already paid as batch {} (finished {}; result: {}). Nothing sent. To pay the same file again as a new batch with new references:",
                    b.id,
                    report::local_time(b.finished_at.as_deref().unwrap_or("?")),
                    b.result_path
                        .clone()
                        .unwrap_or_else(|| session.command(&format!("report {} --out result.csv", b.id)))
                ),
                vec![session.command(&format!("run {quoted} --new-batch"))],
            ),
            Refusal::Unfinished(b) => (
                format!(
                    "batch {} of this file is not finished: finish it first, or cancel it, then pay the file again with --new-batch:",
                    b.id
                ),
                vec![
                    session.command(&format!("resume {}", b.id)),
                    session.command(&format!("cancel {} --reason '...'", b.id)),
                ],
            ),
            Refusal::HasErrors { invalid_rows, total, valid } => (
                format!(
                    "{invalid_rows} of {} {} errors; nothing sent. Fix them, or use --skip-invalid to send the {}. Every problem:",
                    report::plural(*total, "row"),
                    if *invalid_rows == 1 { "has" } else { "have" },
                    if valid.count == 1 { "1 valid row".to_string() } else { format!("{} valid rows", valid.count) }
                ),
                vec![format!("payrun validate {quoted}")],
            ),
            Refusal::SameRows(earlier) => (
                format!(
                    "{f} pays the same rows as batch {} ({}, created {}), though its bytes differ (saved again?). Nothing sent. If this is a new payment of the same rows:",
                    earlier.id,
                    earlier.file_path,
                    report::local_time(&earlier.created_at)
                ),
                vec![session.command(&format!("run {quoted} --new-batch"))],
            ),
            Refusal::NoRows => (InputError::NoRows { path: file.to_path_buf() }.to_string(), vec![]),
            Refusal::NoValidRows => (format!("no valid rows in {f}; nothing to send"), vec![]),
            Refusal::Unreadable(e) => (e.to_string(), vec![]),
        }
    }
}

/// What opening a file gave.
#[derive(Debug)]
pub enum Opened {
    /// Stored as a new batch, with the rows it holds.
    Stored {
        batch: Batch,
        holds: HoldReport,
        allowed: Option<Approved>,
    },
    /// The same bytes as a batch that is not finished: continue it.
    Unfinished(Batch),
    Refused(Refusal),
}

/// Reads `file` and stores it as a batch (or finds its unfinished batch). `on_problem` sees every
/// row problem as it is found, `on_opened` the scanner once the file is open (to say how it was
/// read). Duplicates are remembered in a scratch file on disk: memory stays flat however long the
/// file.
pub fn open_file(
    session: &Session,
    file: &Path,
    opts: &FileOptions,
    config: &ConfigFile,
    on_opened: impl FnOnce(&Scanner),
    on_problem: impl FnMut(&Problem),
) -> Result<Opened, BatchError> {
    let journal = &session.journal;
    let index = DiskIndex::create(&session.state.path)?;
    let mut scanner = match Scanner::open_with(file, true, opts.rules.clone(), |_, _| Box::new(index)) {
        Ok(s) => s,
        Err(e) => return Ok(Opened::Refused(Refusal::Unreadable(e))),
    };
    on_opened(&scanner);
    let sha = scanner.source().sniffed.sha256.ok_or_else(|| JournalError::Corrupt("file hash missing".into()))?;
    let previous = journal.latest_batch_for(&hex::encode(sha))?;
    let generation = match (&previous, opts.new_batch) {
        // A cancelled batch is refused like a finished one (SPEC 3 rule 11), whatever its rows: a
        // person stopped it, and some of its payouts may have gone out before. `--new-batch` pays
        // the file again, its rows held against the cancelled batch's rows that may be paid.
        (Some(b), false) if b.cancelled_at.is_some() => return Ok(Opened::Refused(Refusal::AlreadyPaid(b.clone()))),
        // Every row of that batch is proven unpaid or was never sent: paying the file is a retry,
        // as a new batch with new references (the gateway has seen the old ones).
        (Some(b), false) if b.finished_at.is_some() && !journal.batch_paid_anything(&b.id)? => b.generation + 1,
        (Some(b), false) if b.finished_at.is_some() => return Ok(Opened::Refused(Refusal::AlreadyPaid(b.clone()))),
        (Some(b), false) => return Ok(Opened::Unfinished(b.clone())),
        (Some(b), true) if b.finished_at.is_none() && b.cancelled_at.is_none() => {
            return Ok(Opened::Refused(Refusal::Unfinished(b.clone())));
        }
        (Some(b), true) => b.generation + 1,
        (None, _) => 1,
    };
    let settings = settings_for(&opts.overrides, config, opts.switches, None);
    let ingest_opts = IngestOptions {
        generation,
        gateway: gateway_label(&opts.gateway),
        settings,
        skip_invalid: opts.switches.skip_invalid,
        allow_same_rows: opts.new_batch,
        holds: hold_rules(config),
        allow_repeat: opts.allow_repeat.then(|| session.operator.clone()),
    };
    let ingested = ingest(journal, &mut scanner, ingest_opts, on_problem);
    // The scanner (and its duplicate index) is done: free it before the long part.
    drop(scanner);
    Ok(match ingested {
        Ok(Ingested::Stored { batch, holds, allowed }) => Opened::Stored { batch, holds, allowed },
        Ok(Ingested::HasErrors { invalid_rows, total, valid }) => {
            Opened::Refused(Refusal::HasErrors { invalid_rows, total, valid })
        }
        Ok(Ingested::SameRowsAs(earlier)) => Opened::Refused(Refusal::SameRows(earlier)),
        Ok(Ingested::NothingToSend { total: 0 }) => Opened::Refused(Refusal::NoRows),
        Ok(Ingested::NothingToSend { .. }) => Opened::Refused(Refusal::NoValidRows),
        Err(IngestError::Input(e)) => Opened::Refused(Refusal::Unreadable(e)),
        Err(IngestError::Journal(e)) => return Err(e.into()),
    })
}

/// `resume` checks a batch's held rows again (SPEC 3.2): the rows released because their reason is
/// gone.
/// In team mode a held row is released only by a checker (SPEC 8.2: the database refuses anyone
/// else): a sender's `resume` leaves them for a checker's `approve`.
pub fn recheck_holds(session: &Session, batch: &Batch, config: &ConfigFile) -> Result<Vec<HeldRow>, BatchError> {
    if session.is_team() && !session.journal.roles()?.checker {
        return Ok(Vec::new());
    }
    Ok(session.journal.release_gone_holds(batch, &hold_rules(config))?)
}

/// What is about to be sent, shown before the operator confirms (and, against a real gateway,
/// whenever a batch is driven: SPEC 3.2c).
#[derive(Clone, Debug)]
pub struct Plan {
    pub batch: String,
    pub gateway: String,
    /// Rows about to be sent that no confirmation covers yet (what the operator is asked about),
    /// in total and per mode.
    pub to_send: Tally,
    pub by_mode: Vec<(Mode, Tally)>,
    /// Rows about to be sent that an earlier confirmation covers.
    pub confirmed: Tally,
    /// The batch was confirmed before: the rows asked about were released (or stored) since.
    pub reconfirm: bool,
    /// Rows already sent that will be followed.
    pub in_flight: u64,
    /// Rows held for a person (not sent).
    pub held: u64,
    /// The state directory holds no other batch: payrun cannot know what an earlier run from
    /// another state directory paid (SPEC 3 rule 10).
    pub first_in_state: bool,
    /// Gateway requests per second.
    pub rate: u32,
}

impl Plan {
    /// The least time the sending takes at the rate (see [`least_duration`]).
    pub fn least_duration(&self) -> std::time::Duration {
        least_duration(self.to_send.count, self.in_flight, self.rate)
    }
}

/// The least time sending `to_send` rows and following `in_flight` more takes at `rate` requests
/// per second: every payout needs at least two gateway calls (the posting and a status inquiry),
/// a row already sent at least one, plus one token request.
pub fn least_duration(to_send: u64, in_flight: u64, rate: u32) -> std::time::Duration {
    let calls = 2 * to_send + in_flight + 1;
    std::time::Duration::from_secs_f64(calls as f64 / f64::from(rate.max(1))).max(std::time::Duration::from_secs(1))
}

/// Asks the operator (or checks `--yes` / `--confirm-total`) before rows no confirmation covers
/// are sent to a gateway that is not the embedded sandbox (SPEC 1, 3.2c), and shows where the money
/// goes when nothing needs asking.
pub trait Confirm {
    /// Shows `plan` and asks; true when confirmed.
    fn confirm(&mut self, plan: &Plan) -> anyhow::Result<bool>;
    /// Shows `plan` (every row about to be sent is covered by an earlier confirmation).
    fn show(&mut self, plan: &Plan);
}

/// What driving a batch came to.
#[derive(Debug)]
pub enum Driven {
    /// The operator did not confirm: nothing sent, the batch stays stored.
    Declined,
    /// The gateway refused the credentials before anything was sent (checked before asking).
    CredentialsRefused(String),
    /// The engine ran.
    Ran(Outcome),
    /// The journal failed (or was deleted or replaced) mid-run: payouts may have gone out before;
    /// nothing was sent after it.
    JournalStopped(String),
    /// Team mode: the batch is stored and waits for its checkers (SPEC 8.2); nothing sent.
    AwaitingApproval(crate::journal::team::approvals::ApprovalState),
    /// Team mode: this role may not send (it is not a payrun_sender); nothing sent.
    NotSender(String),
    /// Team mode: another process drives the batch (SPEC 8.1); nothing sent.
    Busy(crate::journal::team::lease::Holder),
}

/// Team mode (SPEC 8): a batch is driven only once its approvals meet the policy, only by a
/// sender, and only by the one process holding its lease. The database refuses a claim otherwise
/// (its triggers); these checks only say so first, before anything is asked or sent. Returns the
/// lease (given back when dropped), or why the batch cannot be driven here.
pub fn team_driver(
    session: &Session,
    batch: &Batch,
    config: &ConfigFile,
) -> Result<std::result::Result<Option<crate::journal::team::lease::Lease>, Driven>, BatchError> {
    let journal = &session.journal;
    if !session.is_team() {
        return Ok(Ok(None));
    }
    let state = journal.approval_state(&batch.id)?;
    if !state.approved() {
        return Ok(Err(Driven::AwaitingApproval(state)));
    }
    if !journal.roles()?.sender {
        return Ok(Err(Driven::NotSender(session.operator.clone())));
    }
    let duration = config.journal.lease.unwrap_or(crate::journal::team::lease::LEASE);
    Ok(match journal.take_lease(&batch.id, duration)? {
        Ok(lease) => Ok(lease),
        Err(holder) => Err(Driven::Busy(holder)),
    })
}

/// Runs (or resumes) a stored batch against its gateway: checks the gateway is the batch's own,
/// checks the credentials, asks for confirmation when needed, then lets the engine work the batch.
#[allow(clippy::too_many_arguments)]
pub async fn drive(
    session: &Session,
    batch: &Batch,
    gateway_flag: Option<&str>,
    overrides: &Overrides,
    config: &ConfigFile,
    confirm: &mut dyn Confirm,
    progress: &mut dyn Progress,
    shutdown: Shutdown,
) -> Result<Driven, BatchError> {
    let journal = &session.journal;
    let choice = GatewayChoice::resolve(Some(gateway_flag.unwrap_or(&batch.gateway)), config);
    same_gateway(batch, &choice)?;
    let _lease = match team_driver(session, batch, config)? {
        Ok(lease) => lease,
        Err(refused) => return Ok(refused),
    };
    let settings = settings_for(overrides, config, ReadSwitches::default(), Some(&batch.settings));
    if settings != batch.settings {
        journal.update_settings(&batch.id, &settings)?;
    }
    let conn = connect::connect_with_budget(
        &choice,
        config,
        &session.state.path,
        Some((settings.rate, settings.burst)),
        engine_config(&settings, config).flights().cap(),
        embedded_profile(&settings),
        connect::SharedBudgetSpec::of(journal.place()).as_ref(),
    )
    .await
    .map_err(|e| BatchError::Connect(format!("{e:#}")))?;
    match confirm_rows(session, batch, &conn, settings.rate, confirm).await {
        Ok(None) => {}
        Ok(Some(refused)) => {
            conn.close().await;
            return Ok(refused);
        }
        Err(e) => {
            conn.close().await;
            return Err(e);
        }
    }
    let cfg = engine_config(&settings, config);
    let outcome = engine::run(journal, batch, Arc::clone(&conn.client), cfg, shutdown, progress).await;
    conn.close().await;
    match outcome {
        Ok(o) => {
            // A confirmation counts only for a batch that then started sending.
            if matches!(o.stop, Stop::CredentialsRefused(_)) && o.stats.postings_received() == 0 {
                journal.clear_confirmed(&batch.id)?;
            }
            Ok(Driven::Ran(o))
        }
        Err(e) => Ok(Driven::JournalStopped(e.to_string())),
    }
}

/// SPEC 3.2c: every rupee sent was confirmed. Before the engine sends, the ready rows no
/// confirmation covers yet (a new batch, rows released since, a batch stored by one operator and
/// sent by another) are shown with their control totals and confirmed (`--yes`, `--confirm-total`,
/// or y at the prompt), and the confirmation is recorded in the evidence log. Against the embedded
/// sandbox no money moves: they are confirmed without asking, and the log says so. Against a real
/// gateway the plan is shown even when nothing needs asking. `Some` when nothing may be sent.
async fn confirm_rows(
    session: &Session,
    batch: &Batch,
    conn: &Connection,
    rate: u32,
    confirm: &mut dyn Confirm,
) -> Result<Option<Driven>, BatchError> {
    let journal = &session.journal;
    let counts = journal.counts(&batch.id)?;
    let uncovered = journal.unconfirmed(&batch.id)?;
    let mut to_send = Tally::default();
    uncovered.iter().for_each(|(_, t)| to_send += *t);
    if conn.sandbox.is_some() {
        if to_send.count > 0 {
            journal.confirm(
                &batch.id,
                &session.operator,
                &format!(
                    "{} rows, ₹{}: embedded sandbox, no money moves (confirmed without asking)",
                    to_send.count,
                    to_send.amount.to_indian()
                ),
            )?;
        }
        return Ok(None);
    }
    let ready = counts.state(RowState::Ready);
    let held = counts.state(RowState::Held).count;
    let plan = Plan {
        batch: batch.id.clone(),
        gateway: batch.gateway.clone(),
        to_send,
        by_mode: uncovered,
        confirmed: Tally {
            count: ready.count.saturating_sub(to_send.count),
            amount: Amount::from_paise(i64::try_from(ready.amount.paise() - to_send.amount.paise()).unwrap_or(0)),
        },
        reconfirm: batch.confirmed_at.is_some(),
        in_flight: counts.open() - ready.count - held,
        held,
        first_in_state: !journal.has_other_batches(&batch.id)?,
        rate,
    };
    if to_send.count == 0 {
        confirm.show(&plan);
        return Ok(None);
    }
    // Credentials first: a confirmation is asked for only when sending can start.
    if let Err(why) = conn.client.check_credentials().await {
        return Ok(Some(Driven::CredentialsRefused(why)));
    }
    let yes = confirm.confirm(&plan).map_err(|e| BatchError::Confirm(format!("{e:#}")))?;
    if !yes {
        return Ok(Some(Driven::Declined));
    }
    let modes: Vec<String> =
        plan.by_mode.iter().map(|(m, t)| format!("{m} {} ₹{}", t.count, t.amount.to_indian())).collect();
    journal.confirm(
        &batch.id,
        &session.operator,
        &format!("{} rows, ₹{} ({}) to {}", to_send.count, to_send.amount.to_indian(), modes.join(", "), batch.gateway),
    )?;
    Ok(None)
}

/// How a batch stands after a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every valid row is final, and none FAILED.
    Complete,
    /// The batch ran, but some rows are FAILED, PENDING or HELD.
    Partial,
    /// Stopped (credentials refused, operator stop, unreachable): unsent rows stay resumable.
    Aborted,
}

/// A batch's result, written.
#[derive(Debug)]
pub struct Finished {
    pub summary: Summary,
    pub verdict: Verdict,
    /// Rows not final.
    pub open: u64,
    pub result: PathBuf,
}

/// Writes the result file (to `out`, else `<state>/results/<file>-<batch>.csv`), marks the batch
/// finished when every row is final, and gives the summary and verdict.
pub fn finish(
    session: &Session,
    batch: &Batch,
    out: Option<&Path>,
    stop: Option<&Stop>,
) -> Result<Finished, BatchError> {
    let journal = &session.journal;
    let out = out.map(Path::to_path_buf).unwrap_or_else(|| report::default_result_path(&session.state.path, batch));
    let state_arg = session.where_args();
    report::write_result_with(journal, batch, &out, &state_arg).map_err(|e| BatchError::Report(format!("{e:#}")))?;
    journal.set_result_path(&batch.id, &out.display().to_string())?;
    let counts = journal.counts(&batch.id)?;
    let open = counts.open();
    if open == 0 {
        journal.set_finished(&batch.id)?;
    }
    let summary = Summary::new(batch, &counts, Some(&out))
        .with_attention(journal, batch, &state_arg)
        .map_err(|e| BatchError::Report(format!("{e:#}")))?;
    let aborted = matches!(stop, Some(Stop::Interrupted | Stop::CredentialsRefused(_) | Stop::Unreachable(_)));
    let verdict = if aborted {
        Verdict::Aborted
    } else if open > 0 || summary.count("FAILED") > 0 {
        Verdict::Partial
    } else {
        Verdict::Complete
    };
    Ok(Finished { summary, verdict, open, result: out })
}

/// Releases held rows (`payrun approve`).
pub fn approve(
    session: &Session,
    batch: &Batch,
    which: &Selection,
    reason: &str,
    config: &ConfigFile,
) -> Result<Approved, BatchError> {
    Ok(session.journal.approve(batch, which, &session.operator, reason, &hold_rules(config))?)
}

/// Abandons a batch (`payrun cancel`): rows not sent become CANCELLED.
pub fn cancel(session: &Session, batch: &Batch, reason: &str, config: &ConfigFile) -> Result<Cancelled, BatchError> {
    let c = session.journal.cancel(batch, &session.operator, reason, &hold_rules(config))?;
    if session.journal.counts(&batch.id)?.open() == 0 {
        session.journal.set_finished(&batch.id)?;
    }
    Ok(c)
}

/// Records a person's finding on a row (`payrun resolve`).
pub fn resolve(
    session: &Session,
    batch: &Batch,
    line: u64,
    paid: bool,
    utr: Option<&str>,
    reason: &str,
) -> Result<(Row, RowStatus), BatchError> {
    let done = session.journal.resolve(batch, line, paid, utr, &session.operator, reason)?;
    if session.journal.counts(&batch.id)?.open() == 0 {
        session.journal.set_finished(&batch.id)?;
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_for_a_shell() {
        assert_eq!(shell_quote("/srv/payroll/state-1"), "/srv/payroll/state-1");
        assert_eq!(shell_quote("my state"), "'my state'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn the_state_arg_is_given_unless_default() {
        let s = StateDir { path: PathBuf::from("/x/y z"), is_default: false };
        assert_eq!(s.arg(), " --state '/x/y z'");
        let d = StateDir { path: PathBuf::from("/home/u/.local/share/payrun"), is_default: true };
        assert_eq!(d.arg(), "");
    }
}
