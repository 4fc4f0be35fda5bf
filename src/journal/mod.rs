//! The journal: the database that holds every batch and every row's lifecycle (SPEC section 3).
//! It is what makes a payout exactly-once across crashes: a row's intent is committed (SQLite: WAL,
//! `synchronous=FULL`, it survives a power cut; PostgreSQL: a committed transaction) before its
//! request leaves the process.
//!
//! Where it lives is a [`store::Store`]: SQLite in the state directory (`--state DIR`, the embedded
//! default) or PostgreSQL for a team (`--journal URL`, SPEC 8). This module and its children own
//! what the journal *means* — every query and every write, written once in SQL both backends run —
//! and never know which backend they have. Every state change is checked against what is in the
//! database (a row must be in the state the change starts from) and refused otherwise. It never
//! stores a credential or a token, and creates its directory and files readable by the owner only.
//!
//! Writes during a run go through the [`writer::Writer`] thread, which commits changes in groups:
//! many rows' intents share one fsync, which is what lets payrun go far beyond the ~1,800 payouts/s
//! that one fsync per row allows on a small machine.

pub mod actions;
pub mod clock;
pub mod holds;
pub mod ingest;
pub mod lifecycle;
pub mod lineage;
pub mod schema;
pub mod scratch;
pub mod store;
pub mod team;
pub mod writer;

use std::cell::Cell;
use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

pub use clock::now;
pub use lifecycle::{Event, Illegal, RowState, RowStatus};
pub use schema::SCHEMA_VERSION;
use store::{Store, StoreError, Value, first};

use crate::vals;

use crate::input::{Mode, Problem, RowView, Severity};
use crate::money::{Amount, Tally};

/// Journal failures callers branch on.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The scratch duplicate index (a SQLite file of its own, not the journal).
    #[error("scratch index: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error(
        "the journal at {what} has schema version {found}; this payrun understands version {SCHEMA_VERSION}: use a newer payrun"
    )]
    Schema { what: String, found: i64 },
    #[error("the journal disagrees: batch {batch} row {seq} is not in state {expected} ({what})")]
    Mismatch { batch: String, seq: u64, expected: RowState, what: String },
    #[error("{0}")]
    Illegal(#[from] Illegal),
    #[error("the journal writer stopped: {0}")]
    Writer(String),
    #[error("corrupt journal row: {0}")]
    Corrupt(String),
    #[error(
        "another payrun is working in {0} (a run, resume or status --refresh): wait for it to finish, or use another --state"
    )]
    Busy(PathBuf),
    #[error(
        "the journal file {0} was deleted or replaced while payrun was using it: nothing more is sent (the journal is the memory of what was paid)"
    )]
    Replaced(PathBuf),
    #[error("{0}")]
    Refused(String),
}

pub type Result<T> = std::result::Result<T, JournalError>;

/// Settings a batch was run with; `resume` uses them unless told otherwise.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct BatchSettings {
    pub rate: u32,
    pub burst: u32,
    /// `--concurrency` when the operator chose one; none: derived by the engine from the rate and
    /// the observed latency (journals of earlier versions hold the old default, 8).
    #[serde(default)]
    pub concurrency: Option<u32>,
    pub poll_timeout_ms: u64,
    pub mode_auto: bool,
    pub skip_invalid: bool,
    pub allow_duplicates: bool,
    pub allow_unknown_ifsc: bool,
    pub latitude: String,
    pub longitude: String,
    pub payee_list_id: String,
    /// The embedded sandbox's profile, when the batch runs against it (so a resumed batch meets
    /// the same simulated gateway it left).
    #[serde(default)]
    pub sandbox_profile: Option<String>,
}

/// One batch: one input file paid once.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    pub id: String,
    pub file_sha256: String,
    pub generation: u32,
    pub file_path: String,
    pub encoding: String,
    pub delimiter: String,
    /// The input's header, as written.
    pub header: Vec<String>,
    pub created_at: String,
    /// `embedded` or the gateway's base URL (never with credentials in it).
    pub gateway: String,
    pub settings: BatchSettings,
    pub confirmed_at: Option<String>,
    pub finished_at: Option<String>,
    /// Set by `payrun cancel`: rows not sent are never sent.
    pub cancelled_at: Option<String>,
    pub result_path: Option<String>,
    /// Control totals taken when the file was read: every row, and the valid rows with their amount.
    pub total_rows: u64,
    pub valid: Tally,
}

impl Batch {
    /// The input file's name without directories and extension (for the default result path).
    pub fn file_stem(&self) -> String {
        Path::new(&self.file_path)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "batch".into())
    }

    /// Whether the batch runs against the embedded sandbox (no money moves, nothing to confirm).
    pub fn is_embedded(&self) -> bool {
        self.gateway == "embedded"
    }
}

/// The batch id of a file: the first 12 hex digits of its SHA-256; for a repeat payment of the same
/// bytes (`--new-batch`, generation 2, 3, ...) the first 12 hex digits of SHA-256(sha256 ‖ generation).
pub fn batch_id(sha256: &[u8; 32], generation: u32) -> String {
    use sha2::{Digest, Sha256};
    if generation <= 1 {
        return hex::encode(&sha256[..6]);
    }
    let mut h = Sha256::new();
    h.update(sha256);
    h.update(generation.to_be_bytes());
    hex::encode(&h.finalize()[..6])
}

/// The reference payrun derives for a row without one: `PR` + batch id + row number (7 digits).
/// The same row of the same batch always gets the same reference.
pub fn derived_reference(batch: &str, seq: u64) -> String {
    format!("PR{batch}{seq:07}")
}

/// A row's reference in a batch: its own when it has one, else [`derived_reference`]. A repeat
/// payment of the same file (`--new-batch`, generation 2, 3, ...) gets new references (SPEC 1): its
/// own ones with `-N<generation>` appended (derived when that would pass 35 characters).
pub fn row_reference(own: Option<&str>, batch: &str, generation: u32, seq: u64) -> String {
    match own {
        Some(r) if generation <= 1 => r.to_string(),
        Some(r) if r.len() + 2 + generation.to_string().len() <= 35 => format!("{r}-N{generation}"),
        _ => derived_reference(batch, seq),
    }
}

/// The key two rows share when they pay the same payee (SPEC 3.2): the account's digits without
/// leading zeros, and the bank (the IFSC's first four letters, upper case). Banks credit by account
/// number, so the same account at another branch of the same bank is the same payee: a "corrected"
/// branch code must not make a paid salary payable again. The journal's `payee` column holds it;
/// the full IFSC stays in `ifsc` (a change of branch is still a PAYEE_CHANGED, SPEC 3.3).
pub fn payee_key(account: &str, ifsc: &str) -> String {
    let bank: String = ifsc.trim().chars().take(4).collect();
    format!("{}:{}", account.trim().trim_start_matches('0'), bank.to_ascii_uppercase())
}

/// A gateway order id as the journal compares it across rows (SPEC 3 rule 12; the `order_key`
/// column): trimmed, lower case, an all-digit id without leading zeros (a JSON number loses them).
pub fn order_key(id: &str) -> String {
    let t = id.trim();
    let t = if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) { t.trim_start_matches('0') } else { t };
    t.to_ascii_lowercase()
}

/// A payee id as compared across batches (SPEC 3.3): trimmed, upper case.
pub fn payee_id_key(id: &str) -> String {
    crate::input::reader::trim(id).to_uppercase()
}

/// The obligation of a row (SPEC 3.2b): `<batch id>:<line>` of the line of the original file that
/// owed the payment. A retry row carries its original's (`retry_of`); any other row its own.
pub fn obligation_of(batch: &str, line: u64) -> String {
    format!("{batch}:{line}")
}

/// A row as the engine and the report need it.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub seq: u64,
    pub line: u64,
    pub name: String,
    pub account: String,
    pub ifsc: String,
    pub amount: Option<Amount>,
    pub mode: Option<Mode>,
    pub remarks: String,
    pub payee_list_id: String,
    /// The organisation's id of the payee (SPEC 3.3), upper case; empty when the file has none.
    pub payee_id: String,
    pub external_ref: Option<String>,
    /// The obligation this row pays ([`obligation_of`]): its own line, or its original's.
    pub obligation: String,
    /// For a FAILED or INVALID row: the row of another batch that pays its obligation again, or may
    /// (SPEC 3.2b). Such a row is not offered by `payrun failed` and needs nobody any more.
    pub repaid: Option<Repaid>,
    pub status: RowStatus,
}

/// The row that pays an unpaid row's obligation again (SPEC 3.2b).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Repaid {
    pub batch: String,
    pub line: u64,
    pub state: RowState,
}

impl Repaid {
    /// `batch:line:state`, as [`ROW_COLUMNS`]' subquery gives it.
    fn parse(text: &str) -> Option<Repaid> {
        let mut parts = text.rsplitn(3, ':');
        let state = RowState::parse(parts.next()?)?;
        let line = parts.next()?.parse().ok()?;
        Some(Repaid { batch: parts.next()?.to_string(), line, state })
    }

    /// `paid again in batch 5d2c1e0a9b7f line 12 (SUCCESS)`.
    pub fn describe(&self) -> String {
        format!("paid again in batch {} line {} ({})", self.batch, self.line, self.state.result_status())
    }
}

/// SQL: the states of a row that pays an obligation, or may, or is about to (SPEC 3.2b).
pub(crate) const PAYS_OBLIGATION: &str = "('success', 'pending', 'in_doubt', 'accepted', 'sending', 'ready', 'held')";

/// Counts and amounts per (state, mode).
#[derive(Clone, Debug, Default)]
pub struct Counts {
    pub cells: Vec<(RowState, Option<Mode>, Tally)>,
}

impl Counts {
    pub fn state(&self, s: RowState) -> Tally {
        let mut t = Tally::default();
        for (st, _, tally) in &self.cells {
            if *st == s {
                t += *tally;
            }
        }
        t
    }

    pub fn total(&self) -> Tally {
        let mut t = Tally::default();
        for (_, _, tally) in &self.cells {
            t += *tally;
        }
        t
    }

    /// Rows that are not final (held, ready, sending, accepted, in doubt, pending).
    pub fn open(&self) -> u64 {
        self.cells.iter().filter(|(s, _, _)| !s.is_final()).map(|(_, _, t)| t.count).sum()
    }
}

/// A value in the journal that payrun cannot read: an error, never a default.
fn corrupt(column: &str, why: impl std::fmt::Display) -> JournalError {
    JournalError::Corrupt(format!("journal column {column}: {why}"))
}

/// Fails with [`JournalError::Replaced`] when the file at `path` is gone or is another file than
/// the one of `identity` (device, inode).
pub(crate) fn check_identity(path: &Path, identity: Option<(u64, u64)>) -> Result<()> {
    match (identity, file_identity(path)) {
        (Some(then), Some(now)) if then == now => Ok(()),
        (None, _) => Ok(()),
        _ => Err(JournalError::Replaced(path.to_path_buf())),
    }
}

/// The (device, inode) of a file, if it exists.
pub fn file_identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// Row changes written per statement (and evidence records inserted per statement) where many rows
/// per statement pay ([`Store::rows_per_statement`]): against PostgreSQL every statement is a round
/// of the server's work, and a group of a few hundred changes per commit is common (measured: one
/// statement per change held a PostgreSQL journal near 500 payouts/s; a hundred per statement,
/// 1,200-1,700/s). SQLite runs a prepared statement per row faster (measured: 6× faster for 3,000
/// changes on a 50,000-row batch, whose planner otherwise walks the batch for each chunk): the two
/// forms below say the same thing, and the store's answer picks one.
const CHUNK: usize = 100;

/// One row change, checking the state in the database: [`change_values`] after the batch and the
/// time.
const WRITE_CHANGE: &str = "UPDATE rows SET state = $5, attempts = $6, gateway_ref = $7, code = $8, message = $9,
        utr = $10, submitted_at = $11, completed_at = $12, updated_at = $2, sent_at = $13, order_key = $14,
        confirmed = $15
     WHERE batch_id = $1 AND seq = $3 AND state = $4";

/// The values of one row change, in [`CHANGE_COLUMNS`]' order.
fn change_values(c: &writer::Change) -> Vec<Value> {
    let s = &c.to;
    vals![
        c.seq,
        c.from.as_str(),
        s.state().as_str(),
        s.attempts,
        s.gateway_ref.as_deref(),
        s.code.as_deref(),
        s.message.as_deref(),
        s.utr.as_deref(),
        s.submitted_at.as_deref(),
        s.completed_at.as_deref(),
        s.sent_at.as_deref(),
        s.gateway_ref.as_deref().map(order_key),
        s.confirmed,
    ]
}

/// The columns of [`change_values`] with their types (casts PostgreSQL needs for parameters in a
/// `VALUES` list).
const CHANGE_COLUMNS: [(&str, &str); 13] = [
    ("seq", "BIGINT"),
    ("from_state", "TEXT"),
    ("state", "TEXT"),
    ("attempts", "BIGINT"),
    ("gateway_ref", "TEXT"),
    ("code", "TEXT"),
    ("message", "TEXT"),
    ("utr", "TEXT"),
    ("submitted_at", "TEXT"),
    ("completed_at", "TEXT"),
    ("sent_at", "TEXT"),
    ("order_key", "TEXT"),
    ("confirmed", "BIGINT"),
];

/// Writes row changes in order, each checked against the state in the database (a row must be in
/// the state the change starts from), many rows per statement: a chunk never holds two changes of
/// one row (the second starts from the state the first leaves). A change whose row is not in its
/// starting state fails the whole write, naming the row.
fn write_changes(db: &mut dyn Store, batch: &str, changes: &[writer::Change]) -> Result<()> {
    let at = now();
    if !db.rows_per_statement() {
        let params: Vec<Vec<Value>> = changes
            .iter()
            .map(|c| {
                let mut p = vals![batch, &at];
                p.extend(change_values(c));
                p
            })
            .collect();
        let counts = db.execute_many(WRITE_CHANGE, &params)?;
        if let Some((c, _)) = changes.iter().zip(&counts).find(|(_, n)| **n != 1) {
            return Err(JournalError::Mismatch {
                batch: batch.to_string(),
                seq: c.seq,
                expected: c.from,
                what: format!("while moving it to {}", c.to.state()),
            });
        }
        return Ok(());
    }
    let names: Vec<&str> = CHANGE_COLUMNS.iter().map(|(n, _)| *n).collect();
    let mut start = 0;
    while start < changes.len() {
        let mut seen = std::collections::HashSet::new();
        let mut end = start;
        while end < changes.len() && end - start < CHUNK && seen.insert(changes[end].seq) {
            end += 1;
        }
        let chunk = &changes[start..end];
        let mut params = vals![batch, &at];
        let mut tuples = Vec::with_capacity(chunk.len());
        for c in chunk {
            let first = params.len() + 1;
            let casts: Vec<String> =
                CHANGE_COLUMNS.iter().enumerate().map(|(i, (_, ty))| format!("CAST(${} AS {ty})", first + i)).collect();
            tuples.push(format!("({})", casts.join(", ")));
            params.extend(change_values(c));
        }
        let sql = format!(
            "WITH c({}) AS (VALUES {})
             UPDATE rows SET state = c.state, attempts = c.attempts, gateway_ref = c.gateway_ref, code = c.code,
                 message = c.message, utr = c.utr, submitted_at = c.submitted_at, completed_at = c.completed_at,
                 updated_at = $2, sent_at = c.sent_at, order_key = c.order_key, confirmed = c.confirmed
             FROM c WHERE rows.batch_id = $1 AND rows.seq = c.seq AND rows.state = c.from_state",
            names.join(", "),
            tuples.join(", ")
        );
        let n = db.execute(&sql, &params)?;
        if n != chunk.len() as u64 {
            // Which one: the row whose state is not the one its change leads to.
            for c in chunk {
                let state =
                    first(db.query("SELECT state FROM rows WHERE batch_id = $1 AND seq = $2", &vals![batch, c.seq])?)
                        .map(|r| r.get::<String>("state"))
                        .transpose()?;
                if state.as_deref() != Some(c.to.state().as_str()) {
                    return Err(JournalError::Mismatch {
                        batch: batch.to_string(),
                        seq: c.seq,
                        expected: c.from,
                        what: format!("while moving it to {}", c.to.state()),
                    });
                }
            }
            return Err(JournalError::Corrupt(format!(
                "{n} of {} row changes of batch {batch} were written",
                chunk.len()
            )));
        }
        start = end;
    }
    Ok(())
}

/// Writes `changes` (each checked against the state in the database) and moves the batch's
/// evidence-log anchor to `head`, inside the caller's transaction. The records explaining the
/// changes must already be durable in the log.
pub(crate) fn write_anchored(
    db: &mut dyn Store,
    batch: &str,
    changes: &[writer::Change],
    head: &crate::audit::Head,
) -> Result<()> {
    write_changes(db, batch, changes)?;
    db.execute(
        "UPDATE batches SET audit_n = $2, audit_head = $3 WHERE id = $1",
        &vals![batch, head.n, head.hash.as_str()],
    )?;
    Ok(())
}

/// Writes `changes` to the journal after `records` (which explain them) are durable in the batch's
/// evidence log, and moves the batch's anchor to the log's new head; all inside the caller's
/// transaction (SPEC 3.4: the log is durable no later than the journal change it explains).
pub(crate) fn write_audited(
    db: &mut dyn Store,
    log: &mut crate::audit::Log,
    batch: &str,
    records: &mut [crate::audit::Record],
    changes: &[writer::Change],
) -> Result<()> {
    if log.path().is_none() {
        append_in_db(db, log, batch, records)?;
    } else {
        log.append(records)?;
    }
    write_anchored(db, batch, changes, log.head())
}

/// Team mode: appends `records` to the batch's evidence log in the database, inside the caller's
/// transaction. The batch's row is locked first and the chain continued from the head the database
/// holds: several processes may write one batch's log (a checker's action while a sender drives
/// it), and they take turns here, never both numbering from the same head.
pub(crate) fn append_in_db(
    db: &mut dyn Store,
    log: &mut crate::audit::Log,
    batch: &str,
    records: &mut [crate::audit::Record],
) -> Result<()> {
    if records.is_empty() {
        return Ok(());
    }
    let locked = first(db.query("SELECT audit_n, audit_head FROM batches WHERE id = $1 FOR UPDATE", &vals![batch])?)
        .ok_or_else(|| JournalError::Corrupt(format!("no batch {batch}")))?;
    let (n, hash): (u64, Option<String>) = (locked.get("audit_n")?, locked.get("audit_head")?);
    log.continue_from(match hash {
        Some(hash) if n > 0 => crate::audit::Head { n, hash },
        _ => crate::audit::Head { n: 0, hash: crate::audit::genesis(batch) },
    });
    log.append(records)?;
    insert_evidence(db, batch, &log.take_pending())
}

/// Inserts evidence records kept in the database (team mode), inside the caller's transaction.
pub(crate) fn insert_evidence(db: &mut dyn Store, batch: &str, lines: &[crate::audit::EvidenceLine]) -> Result<()> {
    if !db.rows_per_statement() {
        let params: Vec<Vec<Value>> =
            lines.iter().map(|l| vals![batch, l.n, l.line.as_str(), l.hash.as_str()]).collect();
        db.execute_many("INSERT INTO evidence (batch_id, n, line, hash) VALUES ($1, $2, $3, $4)", &params)?;
        return Ok(());
    }
    for chunk in lines.chunks(CHUNK) {
        let mut params = Vec::with_capacity(chunk.len() * 4);
        let mut tuples = Vec::with_capacity(chunk.len());
        for l in chunk {
            let k = params.len();
            tuples.push(format!("(${}, ${}, ${}, ${})", k + 1, k + 2, k + 3, k + 4));
            params.extend(vals![batch, l.n, l.line.as_str(), l.hash.as_str()]);
        }
        db.execute(&format!("INSERT INTO evidence (batch_id, n, line, hash) VALUES {}", tuples.join(", ")), &params)?;
    }
    Ok(())
}

/// The batch's last committed evidence-log record, read on `db`.
pub(crate) fn anchor_in(db: &mut dyn Store, batch: &str) -> Result<Option<crate::audit::Head>> {
    let rows = db.query("SELECT audit_n, audit_head FROM batches WHERE id = $1", &vals![batch])?;
    let Some(r) = first(rows) else { return Ok(None) };
    let (n, hash): (u64, Option<String>) = (r.get("audit_n")?, r.get("audit_head")?);
    Ok(match hash {
        Some(hash) if n > 0 => Some(crate::audit::Head { n, hash }),
        _ => None,
    })
}

/// Where a journal lives.
#[derive(Clone, Debug)]
pub enum Place {
    /// `<state>/journal.sqlite3`, with the file's identity (device, inode) when it was opened: a
    /// file deleted or replaced under a run is noticed before anything more is sent (SPEC 3
    /// rule 10).
    Sqlite { path: PathBuf, identity: Option<(u64, u64)> },
    /// A PostgreSQL database shared by a team (SPEC 8), and the database role this process works
    /// as (`current_user`: the operator recorded with every action).
    Postgres { url: store::pgurl::JournalUrl, role: String },
}

impl Place {
    /// Whether the journal is still the one opened (SPEC 3 rule 10): the same file, for SQLite.
    pub fn check(&self) -> Result<()> {
        match self {
            Place::Sqlite { path, identity } => check_identity(path, *identity),
            Place::Postgres { .. } => Ok(()),
        }
    }

    /// Team mode: the journal is a shared PostgreSQL database.
    pub fn is_team(&self) -> bool {
        matches!(self, Place::Postgres { .. })
    }

    /// Where the journal is, for the operator (a database URL without its password).
    pub fn describe(&self) -> String {
        match self {
            Place::Sqlite { path, .. } => path.display().to_string(),
            Place::Postgres { url, .. } => url.display(),
        }
    }
}

/// A handle on a journal: one connection to its database, and the state directory beside it
/// (results, the embedded sandbox's world, the evidence logs of the SQLite journal).
pub struct Journal {
    db: Mutex<Box<dyn Store>>,
    place: Place,
    dir: PathBuf,
    /// Transactions open on this handle: 0 none, 1 a transaction, more: savepoints inside it.
    depth: Cell<u32>,
    /// Team mode: how long to wait for a lost database before giving up (SPEC 8.1 `--db-timeout`).
    db_timeout: Cell<std::time::Duration>,
    /// Team mode: the lease tokens this process holds, by batch (its writer claims rows with it).
    leases: std::cell::RefCell<std::collections::HashMap<String, String>>,
}

/// SQL (after `gateway_ref IS NULL AND attempts > 0`): a row whose posting may have been applied
/// under an order id payrun never learned: sent, not refused before any processing (TE0003/7/8),
/// not proven never applied (TE0020 then unknown twice, REF_CONFLICT). Its index is
/// `rows_unknown_order`.
const UNKNOWN_ORDER_ID: &str = "AND state IN ('sending', 'accepted', 'in_doubt', 'pending', 'success', 'failed')
    AND NOT (state = 'failed' AND code IN ('TE0003', 'TE0007', 'TE0008', 'TE0020', 'REF_CONFLICT'))";

/// How long a lost team database is waited for by default (SPEC 8.1).
pub const DB_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Columns of `rows` that [`Journal::row_from`] reads (everything but the original cells), and for
/// an unpaid row the row of another batch that pays its obligation again ([`Repaid`]): one probe of
/// the obligation index, for FAILED and INVALID rows only.
static ROW_COLUMNS: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "seq, line, name, account, ifsc, amount_paise, mode, remarks, payee_list_id, payee_id,
         external_ref, obligation, state, attempts, gateway_ref, code, message, utr, submitted_at, completed_at,
         sent_at, confirmed,
         CASE WHEN rows.state IN ('failed', 'invalid') THEN
             (SELECT o.batch_id || ':' || o.line || ':' || o.state FROM rows o
              WHERE o.obligation = rows.obligation AND o.batch_id <> rows.batch_id AND o.state IN {PAYS_OBLIGATION}
              ORDER BY CASE o.state WHEN 'success' THEN 0 ELSE 1 END, o.batch_id, o.seq LIMIT 1)
         END AS repaid"
    )
});

impl Journal {
    /// Opens (creating when needed) `<dir>/journal.sqlite3`. The directory is created 0700 and the
    /// database 0600 (SQLite gives its WAL files the same mode).
    pub fn open(dir: &Path) -> Result<Journal> {
        crate::files::create_private_dir(dir)?;
        let path = dir.join("journal.sqlite3");
        if !path.exists() {
            OpenOptions::new().write(true).create(true).truncate(false).mode(0o600).open(&path)?;
        }
        let mut db = store::sqlite::SqliteStore::open(&path)?;
        let identity = file_identity(&path);
        schema::prepare(&mut db, &path.display().to_string())?;
        Ok(Journal {
            db: Mutex::new(Box::new(db)),
            place: Place::Sqlite { path, identity },
            dir: dir.to_path_buf(),
            depth: Cell::new(0),
            db_timeout: Cell::new(DB_TIMEOUT),
            leases: Default::default(),
        })
    }

    /// Opens the team journal in the PostgreSQL database at `url` (SPEC 8.1), with `dir` as the
    /// state directory for what stays on this machine (result files, the embedded sandbox's world).
    /// The database's schema must be this binary's (`payrun journal init` makes or upgrades it).
    pub fn open_postgres(url: &store::pgurl::JournalUrl, dir: &Path) -> Result<Journal> {
        crate::files::create_private_dir(dir)?;
        let mut db = store::postgres::PgStore::connect(url)?;
        team::schema::check(&mut db, &url.display())?;
        let role = first(db.query("SELECT CAST(current_user AS TEXT) AS role", &[])?)
            .map(|r| r.get::<String>("role"))
            .transpose()?
            .ok_or_else(|| JournalError::Corrupt("the database names no current user".into()))?;
        Ok(Journal {
            db: Mutex::new(Box::new(db)),
            place: Place::Postgres { url: url.clone(), role },
            dir: dir.to_path_buf(),
            depth: Cell::new(0),
            db_timeout: Cell::new(DB_TIMEOUT),
            leases: Default::default(),
        })
    }

    /// A second connection to the same journal (the group-commit writer's).
    pub(crate) fn connect_again(&self) -> Result<Box<dyn Store>> {
        match &self.place {
            Place::Sqlite { path, identity } => {
                check_identity(path, *identity)?;
                Ok(Box::new(store::sqlite::SqliteStore::open(path)?))
            }
            Place::Postgres { url, .. } => Ok(Box::new(store::postgres::PgStore::connect(url)?)),
        }
    }

    /// How long a lost team database is waited for (`--db-timeout`).
    pub fn set_db_timeout(&self, d: std::time::Duration) {
        self.db_timeout.set(d);
    }

    pub fn db_timeout(&self) -> std::time::Duration {
        self.db_timeout.get()
    }

    /// Records that this process holds the lease of `batch` under `token` (its writer's claims carry
    /// it: a process whose lease expired claims nothing more, SPEC 8.1).
    pub fn hold_lease(&self, batch: &str, token: &str) {
        self.leases.borrow_mut().insert(batch.to_string(), token.to_string());
    }

    /// The lease token this process holds on `batch` (team mode), if any.
    pub(crate) fn lease_token(&self, batch: &str) -> Option<String> {
        self.leases.borrow().get(batch).cloned()
    }

    /// Team mode: the database role this process works as (SPEC 8.2), none with SQLite.
    pub fn role(&self) -> Option<&str> {
        match &self.place {
            Place::Postgres { role, .. } => Some(role),
            Place::Sqlite { .. } => None,
        }
    }

    pub fn place(&self) -> &Place {
        &self.place
    }

    /// The journal's connection, for one statement or a few (never held across a call that takes
    /// it again).
    pub(crate) fn db(&self) -> MutexGuard<'_, Box<dyn Store>> {
        self.db.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs a query. In team mode, outside a transaction, a lost database is waited for (up to
    /// `--db-timeout`) and the query asked again: a read changes nothing, so asking twice is safe.
    pub(crate) fn q(&self, sql: &str, params: &[Value]) -> Result<Vec<store::Row>> {
        let started = std::time::Instant::now();
        let mut wait = std::time::Duration::from_millis(200);
        loop {
            match self.db().query(sql, params) {
                Err(StoreError::ConnectionLost(why))
                    if self.place.is_team() && self.depth.get() == 0 && started.elapsed() < self.db_timeout.get() =>
                {
                    tracing::warn!("lost the journal database ({why}): waiting for it");
                    std::thread::sleep(wait);
                    wait = (wait * 2).min(std::time::Duration::from_secs(2));
                }
                other => return Ok(other?),
            }
        }
    }

    /// Runs a statement; the rows it changed.
    pub(crate) fn x(&self, sql: &str, params: &[Value]) -> Result<u64> {
        Ok(self.db().execute(sql, params)?)
    }

    /// Runs `f` atomically: in a transaction of its own, or in a savepoint of the caller's
    /// transaction (a batch being stored). Rolled back when `f` fails.
    pub(crate) fn atomic<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let depth = self.depth.get();
        if depth == 0 {
            self.db().begin()?;
        } else {
            self.db().execute_batch(&format!("SAVEPOINT sp{depth}"))?;
        }
        self.depth.set(depth + 1);
        let result = f();
        self.depth.set(depth);
        match result {
            Ok(v) => {
                let end = if depth == 0 { "COMMIT".to_string() } else { format!("RELEASE sp{depth}") };
                if let Err(e) = self.db().execute_batch(&end) {
                    if depth == 0 {
                        let _ = self.db().execute_batch("ROLLBACK");
                    }
                    return Err(e.into());
                }
                Ok(v)
            }
            Err(e) => {
                let undo = if depth == 0 {
                    "ROLLBACK".to_string()
                } else {
                    format!("ROLLBACK TO sp{depth}; RELEASE sp{depth}")
                };
                let _ = self.db().execute_batch(&undo);
                Err(e)
            }
        }
    }

    /// Takes the state directory for this process alone (released when the returned file is
    /// dropped, also when the process dies). Everything that sends or changes row states holds it:
    /// two processes working one journal could otherwise both resolve the same in-doubt row.
    pub fn lock(&self) -> Result<std::fs::File> {
        let f = OpenOptions::new().write(true).create(true).truncate(false).mode(0o600).open(self.dir.join("lock"))?;
        match f.try_lock() {
            Ok(()) => Ok(f),
            Err(std::fs::TryLockError::WouldBlock) => Err(JournalError::Busy(self.dir.clone())),
            Err(std::fs::TryLockError::Error(e)) => Err(e.into()),
        }
    }

    /// Whether the journal is still the one this handle opened. A run checks it before every group
    /// of writes: a deleted or replaced journal file would forget what was paid.
    pub fn check_same_file(&self) -> Result<()> {
        self.place.check()
    }

    /// The state directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether any batch other than `except` is in the journal (the cross-batch checks have nothing
    /// to compare with otherwise).
    pub fn has_other_batches(&self, except: &str) -> Result<bool> {
        let rows = self.q("SELECT EXISTS (SELECT 1 FROM batches WHERE id <> $1) AS found", &vals![except])?;
        Ok(first(rows).map(|r| r.get::<bool>("found")).transpose()?.unwrap_or(false))
    }

    fn batch_from(r: &store::Row) -> Result<Batch> {
        let header: String = r.get("header")?;
        let settings: String = r.get("settings")?;
        Ok(Batch {
            id: r.get("id")?,
            file_sha256: r.get("file_sha256")?,
            generation: r.get("generation")?,
            file_path: r.get("file_path")?,
            encoding: r.get("encoding")?,
            delimiter: r.get("delimiter")?,
            header: serde_json::from_str(&header).map_err(|e| corrupt("header", e))?,
            created_at: r.get("created_at")?,
            gateway: r.get("gateway")?,
            settings: serde_json::from_str(&settings).map_err(|e| corrupt("settings", e))?,
            confirmed_at: r.get("confirmed_at")?,
            finished_at: r.get("finished_at")?,
            cancelled_at: r.get("cancelled_at")?,
            result_path: r.get("result_path")?,
            total_rows: r.get("total_rows")?,
            valid: Tally { count: r.get("valid_rows")?, amount: Amount::from_paise(r.get("valid_paise")?) },
        })
    }

    fn batches_where(&self, condition: &str, params: &[Value]) -> Result<Vec<Batch>> {
        let sql = format!(
            "SELECT id, file_sha256, generation, file_path, encoding, delimiter, header, created_at, gateway, settings,
                    confirmed_at, finished_at, cancelled_at, result_path, total_rows, valid_rows, valid_paise
             FROM batches {condition}"
        );
        self.q(&sql, params)?.iter().map(Self::batch_from).collect()
    }

    /// A batch by its id, or by a unique prefix of at least 4 characters.
    pub fn batch(&self, id: &str) -> Result<Option<Batch>> {
        let id = id.trim().to_ascii_lowercase();
        if id.len() < 4 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        let found =
            self.batches_where("WHERE id LIKE CAST($1 AS TEXT) || '%' ORDER BY created_at LIMIT 2", &vals![&id])?;
        Ok(if found.len() == 1 { found.into_iter().next() } else { found.into_iter().find(|b| b.id == id) })
    }

    /// The latest batch (highest generation) of a file's bytes.
    pub fn latest_batch_for(&self, sha256: &str) -> Result<Option<Batch>> {
        Ok(self
            .batches_where("WHERE file_sha256 = $1 ORDER BY generation DESC LIMIT 1", &vals![sha256])?
            .into_iter()
            .next())
    }

    /// The batch (other than `except`) that already gave a row this reference, if any.
    pub fn batch_using_reference(&self, reference: &str, except: &str) -> Result<Option<String>> {
        let rows = self.q(
            "SELECT batch_id FROM rows WHERE external_ref = $1 AND batch_id <> $2 LIMIT 1",
            &vals![reference, except],
        )?;
        Ok(first(rows).map(|r| r.get("batch_id")).transpose()?)
    }

    /// The latest batch (other than `except`) whose valid rows had this fingerprint.
    pub fn batch_with_rows(&self, rows_hash: &str, except: &str) -> Result<Option<Batch>> {
        Ok(self
            .batches_where(
                "WHERE rows_hash = $1 AND id <> $2 ORDER BY created_at DESC LIMIT 1",
                &vals![rows_hash, except],
            )?
            .into_iter()
            .next())
    }

    /// Every batch, oldest first.
    pub fn batches(&self) -> Result<Vec<Batch>> {
        self.batches_where("ORDER BY created_at", &[])
    }

    /// Starts storing a new batch: the batch and all its rows land in one transaction, so a crash
    /// while reading the file leaves no half batch.
    pub fn begin_batch(&self, batch: &Batch) -> Result<Ingest<'_>> {
        if self.depth.get() != 0 {
            return Err(JournalError::Corrupt("a batch is stored inside another transaction".into()));
        }
        self.db().begin()?;
        self.depth.set(1);
        // SPEC 8.1: two batches stored at the same moment (two machines, one payee) must not both
        // pass the guards of 3.2, 3.2b and 3.3. The check and the storing of rows are serialized by
        // one lock for every batch being stored, held to the end of this transaction: coarser than a
        // lock per payee, but a batch is stored in seconds, a few times a day, and a lock per payee
        // would be a lock per row (a 50,000-row batch would exhaust PostgreSQL's lock table). Under
        // it the batch stored second sees the first one's rows and is held. (SQLite needs nothing:
        // its write transactions are serialized already.)
        let locked = self.db().lock("payrun: store a batch");
        if let Err(e) = locked {
            let _ = self.db().execute_batch("ROLLBACK");
            self.depth.set(0);
            return Err(e.into());
        }
        let ingest = Ingest {
            journal: self,
            batch_id: batch.id.clone(),
            generation: batch.generation,
            confirmed: batch.is_embedded(),
            done: false,
            total: 0,
            valid: Tally::default(),
            pending: Vec::new(),
        };
        self.x(
            "INSERT INTO batches (id, file_sha256, generation, file_path, encoding, delimiter, header, created_at, gateway, settings, confirmed_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            &vals![
                &batch.id,
                &batch.file_sha256,
                batch.generation,
                &batch.file_path,
                &batch.encoding,
                &batch.delimiter,
                serde_json::to_string(&batch.header).unwrap_or_else(|_| "[]".into()),
                &batch.created_at,
                &batch.gateway,
                serde_json::to_string(&batch.settings).unwrap_or_else(|_| "{}".into()),
                batch.confirmed_at.as_deref(),
            ],
        )?;
        Ok(ingest)
    }

    /// Records settings chosen at resume (rate, concurrency, ...).
    pub fn update_settings(&self, batch: &str, settings: &BatchSettings) -> Result<()> {
        let s = serde_json::to_string(settings).unwrap_or_else(|_| "{}".into());
        self.x("UPDATE batches SET settings = $2 WHERE id = $1", &vals![batch, s])?;
        Ok(())
    }

    /// Records the operator's confirmation (SPEC 1, 3.2c): the batch is confirmed, and so is every
    /// ready row of it, the rows this confirmation covers. A row released later is not covered: the
    /// next run asks again before it is sent. Recorded in the evidence log with the totals shown.
    pub fn confirm(&self, batch: &str, operator: &str, detail: &str) -> Result<u64> {
        self.atomic(|| {
            let at = now();
            let n = self.x(
                "UPDATE rows SET confirmed = 1, updated_at = $2 WHERE batch_id = $1 AND state = 'ready' AND confirmed = 0",
                &vals![batch, &at],
            )?;
            self.x("UPDATE batches SET confirmed_at = $2 WHERE id = $1", &vals![batch, &at])?;
            self.record_action(batch, operator, "confirm", "", "", detail)?;
            Ok(n)
        })
    }

    /// The ready rows of `batch` no confirmation covers yet (SPEC 3.2c), per mode.
    pub fn unconfirmed(&self, batch: &str) -> Result<Vec<(Mode, Tally)>> {
        let rows = self.q(
            "SELECT mode, COUNT(*) AS n, CAST(COALESCE(SUM(amount_paise), 0) AS BIGINT) AS paise FROM rows
             WHERE batch_id = $1 AND state = 'ready' AND confirmed = 0 GROUP BY mode ORDER BY mode",
            &vals![batch],
        )?;
        let mut out = Vec::new();
        for r in rows {
            let mode: Option<String> = r.get("mode")?;
            let mode =
                mode.as_deref().and_then(Mode::parse).ok_or_else(|| corrupt("mode", "a ready row without a mode"))?;
            out.push((mode, Tally { count: r.get("n")?, amount: Amount::from_paise(r.get("paise")?) }));
        }
        Ok(out)
    }

    /// Forgets a confirmation that never led to sending (the gateway refused everything at once):
    /// the next run asks again.
    pub fn clear_confirmed(&self, batch: &str) -> Result<()> {
        self.atomic(|| {
            self.x(
                "UPDATE rows SET confirmed = 0 WHERE batch_id = $1 AND state = 'ready' AND attempts = 0",
                &vals![batch],
            )?;
            self.x("UPDATE batches SET confirmed_at = NULL WHERE id = $1", &vals![batch])?;
            Ok(())
        })
    }

    pub fn set_result_path(&self, batch: &str, path: &str) -> Result<()> {
        self.x("UPDATE batches SET result_path = $2 WHERE id = $1", &vals![batch, path])?;
        Ok(())
    }

    /// Marks the batch finished (every valid row final), once.
    pub fn set_finished(&self, batch: &str) -> Result<()> {
        self.x("UPDATE batches SET finished_at = $2 WHERE id = $1 AND finished_at IS NULL", &vals![batch, now()])?;
        Ok(())
    }

    /// After a restart: every row left `sending` may or may not have reached the gateway, so it
    /// becomes `in_doubt` (rule 2), through the lifecycle like every other change, each recorded in
    /// the evidence log. In team mode only where no other process holds the batch's lease: the
    /// rows a live driver is sending are its own (a checker's `resolve` on another machine must not
    /// take them from it and stop it).
    pub fn recover(&self, batch: &str) -> Result<usize> {
        if self.place.is_team() && self.lease_token(batch).is_none() {
            let driven =
                self.q("SELECT 1 AS x FROM leases WHERE batch_id = $1 AND expires_at > now()", &vals![batch])?;
            if !driven.is_empty() {
                return Ok(0);
            }
        }
        let mut seqs = Vec::new();
        let mut after = 0;
        loop {
            let rows = self.rows_in_state(batch, RowState::Sending, after, 4096)?;
            let Some(last) = rows.last() else { break };
            after = last.seq;
            seqs.extend(rows.iter().map(|r| r.seq));
        }
        if seqs.is_empty() {
            return Ok(0);
        }
        let (done, _) = self.apply_to_rows(batch, &seqs, |_| Some(Event::Recovered), "state", None)?;
        Ok(done.len())
    }

    /// The batch's last committed evidence-log record, as the journal knows it.
    pub fn audit_anchor(&self, batch: &str) -> Result<Option<crate::audit::Head>> {
        anchor_in(&mut **self.db(), batch)
    }

    /// Opens the batch's evidence log to continue it after the journal's last committed record: a
    /// file beside a SQLite journal, the `evidence` table of a team journal.
    pub fn open_audit(&self, batch: &str) -> Result<crate::audit::Log> {
        let anchor = self.audit_anchor(batch)?;
        Ok(match &self.place {
            Place::Sqlite { .. } => crate::audit::Log::open(&self.dir, batch, anchor.as_ref())?,
            Place::Postgres { role, .. } => crate::audit::Log::in_db(batch, anchor.as_ref(), role),
        })
    }

    /// Calls `f` with every line of the batch's evidence log and its position from 1, in order, a
    /// page at a time. `Ok(false)` from `f` stops early. Returns whether the log ends with a torn
    /// line (a file whose last line has no end; never in the database).
    pub fn each_evidence_line(&self, batch: &str, mut f: impl FnMut(u64, &[u8]) -> Result<bool>) -> Result<bool> {
        if let Place::Sqlite { .. } = self.place {
            return crate::audit::each_line(&crate::audit::path_of(&self.dir, batch), f);
        }
        let mut pos = 0u64;
        loop {
            let page = self.q(
                "SELECT n, line FROM evidence WHERE batch_id = $1 AND n > $2 ORDER BY n LIMIT 4096",
                &vals![batch, pos],
            )?;
            if page.is_empty() {
                return Ok(false);
            }
            for r in &page {
                pos += 1;
                let line: String = r.get("line")?;
                if !f(pos, line.as_bytes())? {
                    return Ok(false);
                }
            }
            pos = page.last().map(|r| r.get::<u64>("n")).transpose()?.unwrap_or(pos);
        }
    }

    /// Marks a batch cancelled (`payrun cancel`), once.
    pub fn set_cancelled(&self, batch: &str) -> Result<()> {
        self.x("UPDATE batches SET cancelled_at = $2 WHERE id = $1 AND cancelled_at IS NULL", &vals![batch, now()])?;
        Ok(())
    }

    fn rows_where(&self, condition: &str, params: &[Value]) -> Result<Vec<Row>> {
        let sql = format!("SELECT {} FROM rows {condition}", *ROW_COLUMNS);
        self.q(&sql, params)?.iter().map(Self::row_from).collect()
    }

    /// A row of a batch by its line in the input file.
    pub fn row_at_line(&self, batch: &str, line: u64) -> Result<Option<Row>> {
        Ok(self.rows_where("WHERE batch_id = $1 AND line = $2", &vals![batch, line])?.into_iter().next())
    }

    /// A row of a batch by its sequence number.
    pub fn row(&self, batch: &str, seq: u64) -> Result<Option<Row>> {
        Ok(self.rows_where("WHERE batch_id = $1 AND seq = $2", &vals![batch, seq])?.into_iter().next())
    }

    /// Applies `event` to each of `seqs` through the lifecycle, in one transaction, checking every
    /// row's state in the database, and records each change in the evidence log first (a record of
    /// `kind`, with `operator` when a person did it). Rows the event does not apply to are left as
    /// they are and returned as refused, with why.
    pub fn apply_to_rows(
        &self,
        batch: &str,
        seqs: &[u64],
        event: impl Fn(&Row) -> Option<Event>,
        kind: &str,
        operator: Option<&str>,
    ) -> Result<(Vec<(Row, RowStatus)>, Vec<(Row, String)>)> {
        self.check_same_file()?;
        let (mut done, mut refused) = (Vec::new(), Vec::new());
        let at = now();
        for &seq in seqs {
            let Some(row) = self.row(batch, seq)? else { continue };
            let Some(e) = event(&row) else { continue };
            match lifecycle::apply(&row.status, &e, &at) {
                Ok(to) => done.push((row, to)),
                Err(illegal) => refused.push((row, illegal.to_string())),
            }
        }
        if done.is_empty() {
            return Ok((done, refused));
        }
        let mut records: Vec<crate::audit::Record> = done
            .iter()
            .map(|(row, to)| {
                let mut r = crate::audit::Record::new(kind);
                r.line = Some(row.line);
                r.reference = row.external_ref.clone();
                r.operator = operator.map(str::to_string);
                r.utr = to.utr.clone();
                r.with_change(
                    row.status.state().as_str(),
                    to.state().as_str(),
                    to.code.as_deref(),
                    to.message.as_deref(),
                )
            })
            .collect();
        let changes: Vec<writer::Change> = done
            .iter()
            .map(|(row, to)| writer::Change { seq: row.seq, from: row.status.state(), to: to.clone() })
            .collect();
        let mut log = self.open_audit(batch)?;
        self.atomic(|| write_audited(&mut **self.db(), &mut log, batch, &mut records, &changes))?;
        Ok((done, refused))
    }

    /// Appends records to the batch's evidence log (durably) and moves the journal's anchor to it,
    /// atomically: for what changes no row (a batch stored, an operator's action).
    pub fn audit(&self, batch: &str, records: &mut [crate::audit::Record]) -> Result<()> {
        let mut log = self.open_audit(batch)?;
        self.atomic(|| write_audited(&mut **self.db(), &mut log, batch, records, &[]))
    }

    /// Whether a batch paid, or may still pay, any row: anything but FAILED, INVALID or CANCELLED.
    pub fn batch_paid_anything(&self, batch: &str) -> Result<bool> {
        let rows = self.q(
            "SELECT EXISTS (SELECT 1 FROM rows WHERE batch_id = $1 AND state NOT IN ('failed', 'invalid', 'cancelled')) AS found",
            &vals![batch],
        )?;
        Ok(first(rows).map(|r| r.get::<bool>("found")).transpose()?.unwrap_or(false))
    }

    /// Records an operator's action (approve, cancel, resolve, confirm, allow-repeat) with its time,
    /// in the journal and (first) in the batch's evidence log.
    pub fn record_action(
        &self,
        batch: &str,
        operator: &str,
        action: &str,
        lines: &str,
        reason: &str,
        detail: &str,
    ) -> Result<()> {
        let mut r = crate::audit::Record::new("action");
        r.action = Some(action.to_string());
        r.operator = Some(operator.to_string());
        r.reason = (!reason.is_empty()).then(|| reason.to_string());
        r.detail = match (lines.is_empty(), detail.is_empty()) {
            (true, true) => None,
            (false, true) => Some(format!("lines {lines}")),
            (true, false) => Some(detail.to_string()),
            (false, false) => Some(format!("lines {lines}; {detail}")),
        };
        self.atomic(|| {
            self.audit(batch, &mut [r])?;
            self.x(
                "INSERT INTO actions (batch_id, at, operator, action, lines, reason, detail) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &vals![batch, now(), operator, action, lines, reason, detail],
            )?;
            Ok(())
        })
    }

    fn row_from(r: &store::Row) -> Result<Row> {
        let state: String = r.get("state")?;
        let paise: Option<i64> = r.get("amount_paise")?;
        let mode: Option<String> = r.get("mode")?;
        Ok(Row {
            seq: r.get("seq")?,
            line: r.get("line")?,
            name: r.get("name")?,
            account: r.get("account")?,
            ifsc: r.get("ifsc")?,
            amount: paise.filter(|p| *p >= 0).map(Amount::from_paise),
            mode: mode.as_deref().and_then(Mode::parse),
            remarks: r.get("remarks")?,
            payee_list_id: r.get("payee_list_id")?,
            payee_id: r.get("payee_id")?,
            external_ref: r.get("external_ref")?,
            obligation: r.get("obligation")?,
            repaid: r.get::<Option<String>>("repaid")?.as_deref().and_then(Repaid::parse),
            status: RowStatus {
                state: Some(
                    RowState::parse(&state).ok_or_else(|| corrupt("state", format!("unknown state '{state}'")))?,
                ),
                attempts: r.get("attempts")?,
                gateway_ref: r.get("gateway_ref")?,
                code: r.get("code")?,
                message: r.get("message")?,
                utr: r.get("utr")?,
                submitted_at: r.get("submitted_at")?,
                completed_at: r.get("completed_at")?,
                sent_at: r.get("sent_at")?,
                confirmed: r.get("confirmed")?,
            },
        })
    }

    /// Up to `limit` rows in `state`, in file order, after row `after`.
    pub fn rows_in_state(&self, batch: &str, state: RowState, after: u64, limit: usize) -> Result<Vec<Row>> {
        self.rows_where(
            "WHERE batch_id = $1 AND state = $2 AND seq > $3 ORDER BY seq LIMIT $4",
            &vals![batch, state.as_str(), after, limit as u64],
        )
    }

    /// Up to `limit` ready rows a confirmation covers (SPEC 3.2c), in file order, after row `after`:
    /// what the engine sends.
    pub fn rows_to_send(&self, batch: &str, after: u64, limit: usize) -> Result<Vec<Row>> {
        self.rows_where(
            "WHERE batch_id = $1 AND state = 'ready' AND confirmed = 1 AND seq > $2 ORDER BY seq LIMIT $3",
            &vals![batch, after, limit as u64],
        )
    }

    /// Whether the order id `id` may be another payout's as well as row `seq`'s (SPEC 3 rule 12): an
    /// answer asked by it then proves nothing, for either row. It may be when another row of the
    /// journal, in any batch, was given the same id; and also when a row's posting may have been
    /// applied while payrun never learned the id the gateway gave it (its answer was lost, and no
    /// later answer named it): a gateway that restarts its counter can give that unknown id again,
    /// and answer about the older payout when asked by it. Such a row counts when the answer could be
    /// about it: any of them when the answer names no payee or another one (`payee` none), only
    /// those of this row's payee when it names this row's (`payee` its key). And when the id is
    /// another row's reference: the API document's `payout_id` carries an order id or a reference,
    /// so a gateway may look the id up as a reference first and answer about that payout. Three
    /// probes of indexes, in one statement.
    pub fn order_id_shared(&self, id: &str, batch: &str, seq: u64, payee: Option<&str>) -> Result<bool> {
        // One statement, both probes: the engine asks this for every answer asked by an order id,
        // and against PostgreSQL each statement is a round trip on the engine's thread.
        let sql = format!(
            "SELECT (EXISTS (SELECT 1 FROM rows WHERE order_key = $1 AND NOT (batch_id = $2 AND seq = $3))
                OR EXISTS (SELECT 1 FROM rows WHERE external_ref = $4 AND NOT (batch_id = $2 AND seq = $3))
                OR EXISTS (SELECT 1 FROM rows WHERE gateway_ref IS NULL AND attempts > 0 {UNKNOWN_ORDER_ID}
                    AND NOT (batch_id = $2 AND seq = $3) {})) AS found",
            if payee.is_some() { "AND payee = $5" } else { "" }
        );
        let mut params = vals![order_key(id), batch, seq, id.trim()];
        if let Some(p) = payee {
            params.extend(vals![p]);
        }
        Ok(first(self.q(&sql, &params)?).map(|r| r.get::<bool>("found")).transpose()?.unwrap_or(false))
    }

    /// Counts and amounts per state and mode (exact: sums of integer paise).
    pub fn counts(&self, batch: &str) -> Result<Counts> {
        let rows = self.q(
            "SELECT state, mode, COUNT(*) AS n, CAST(COALESCE(SUM(amount_paise), 0) AS BIGINT) AS paise
             FROM rows WHERE batch_id = $1 GROUP BY state, mode",
            &vals![batch],
        )?;
        let mut counts = Counts::default();
        for r in rows {
            let state: String = r.get("state")?;
            let mode: Option<String> = r.get("mode")?;
            let state = RowState::parse(&state).ok_or_else(|| corrupt("state", format!("unknown state '{state}'")))?;
            counts.cells.push((
                state,
                mode.as_deref().and_then(Mode::parse),
                Tally { count: r.get("n")?, amount: Amount::from_paise(r.get("paise")?) },
            ));
        }
        Ok(counts)
    }

    /// Row counts per state only (index-only: fast on a million rows).
    pub fn state_counts(&self, batch: &str) -> Result<Vec<(RowState, u64)>> {
        let rows = self.q("SELECT state, COUNT(*) AS n FROM rows WHERE batch_id = $1 GROUP BY state", &vals![batch])?;
        let mut out = Vec::new();
        for r in rows {
            let state: String = r.get("state")?;
            if let Some(s) = RowState::parse(&state) {
                out.push((s, r.get("n")?));
            }
        }
        Ok(out)
    }

    /// Calls `f` for every row of the batch in file order, with its original cells (a page of rows
    /// at a time: memory stays flat however long the batch).
    pub fn for_each_row(
        &self,
        batch: &str,
        mut f: impl FnMut(&Row, Vec<String>) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let mut after = 0u64;
        loop {
            let page = self.q(
                &format!(
                    "SELECT {}, raw FROM rows WHERE batch_id = $1 AND seq > $2 ORDER BY seq LIMIT 4096",
                    *ROW_COLUMNS
                ),
                &vals![batch, after],
            )?;
            let Some(last) = page.last() else { return Ok(()) };
            after = last.get("seq")?;
            for r in &page {
                let row = Self::row_from(r)?;
                let raw: String = r.get("raw")?;
                let cells: Vec<String> =
                    serde_json::from_str(&raw).map_err(|e| JournalError::Corrupt(format!("row {}: {e}", row.seq)))?;
                f(&row, cells)?;
            }
        }
    }
}

/// A batch being stored (see [`Journal::begin_batch`]). Dropped without [`Ingest::commit`], nothing
/// of it is kept.
pub struct Ingest<'j> {
    journal: &'j Journal,
    batch_id: String,
    generation: u32,
    /// Rows of a batch for the embedded sandbox need no confirmation (no money moves).
    confirmed: bool,
    done: bool,
    total: u64,
    valid: Tally,
    /// Rows not yet written (written a few hundred at a time).
    pending: Vec<Vec<Value>>,
}

/// One input row to store.
pub struct NewRow<'a> {
    pub seq: u64,
    pub line: u64,
    /// The original cells, as read (for the result file and `failed`).
    pub cells: &'a [&'a str],
    /// The normalised row when valid.
    pub valid: Option<&'a RowView<'a>>,
    /// The row's problems (errors make it `invalid`).
    pub problems: &'a [Problem],
    /// For an invalid row, its amount when that cell alone is readable (so totals can show it).
    pub amount: Option<Amount>,
    /// For an invalid row, its transfer mode when that cell alone is readable (so totals per mode
    /// can show it).
    pub mode: Option<Mode>,
    /// For an invalid row, its own reference when that cell alone is valid and not reused.
    pub reference: Option<&'a str>,
    /// The obligation a retry row pays (`retry_of`, SPEC 3.2b); none: the row's own.
    pub obligation: Option<&'a str>,
}

const INSERT_ROW: &str =
    "INSERT INTO rows (batch_id, seq, line, raw, name, account, ifsc, amount_paise, mode, remarks, payee_list_id,
                   external_ref, state, code, message, updated_at, payee, payee_id, obligation, confirmed)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)";

impl Ingest<'_> {
    /// Stores one row: `ready` with its reference when valid, else `invalid` with its first error's
    /// code and every problem in the message.
    pub fn add(&mut self, row: NewRow<'_>) -> Result<()> {
        let raw = serde_json::to_string(row.cells).unwrap_or_else(|_| "[]".into());
        let now = now();
        self.total += 1;
        let obligation = row.obligation.map(str::to_string).unwrap_or_else(|| obligation_of(&self.batch_id, row.line));
        let params = match row.valid {
            Some(v) => {
                self.valid.add(v.amount);
                let reference = row_reference(v.reference, &self.batch_id, self.generation, row.seq);
                let warnings: Vec<String> = row.problems.iter().map(|p| format!("{}: {}", p.code, p.message)).collect();
                vals![
                    &self.batch_id,
                    row.seq,
                    row.line,
                    raw,
                    v.name,
                    v.account.as_ref(),
                    v.ifsc.as_ref(),
                    v.amount.paise(),
                    v.mode.as_str(),
                    v.remarks.as_ref(),
                    v.payee_list_id,
                    reference,
                    RowState::Ready.as_str(),
                    None::<String>,
                    (!warnings.is_empty()).then(|| warnings.join("; ")),
                    now,
                    payee_key(&v.account, &v.ifsc),
                    payee_id_key(v.payee_id),
                    obligation,
                    self.confirmed,
                ]
            }
            None => {
                let errors: Vec<&Problem> = row.problems.iter().filter(|p| p.severity == Severity::Error).collect();
                let code = errors.first().map(|p| p.code.as_str().to_string());
                let message: Vec<String> =
                    errors
                        .iter()
                        .map(|p| {
                            if p.column.is_empty() { p.message.clone() } else { format!("{}: {}", p.column, p.message) }
                        })
                        .collect();
                vals![
                    &self.batch_id,
                    row.seq,
                    row.line,
                    raw,
                    "",
                    "",
                    "",
                    row.amount.map(|a| a.paise()),
                    row.mode.map(|m| m.as_str()),
                    "",
                    "",
                    row.reference,
                    RowState::Invalid.as_str(),
                    code,
                    Some(message.join("; ")),
                    now,
                    None::<String>,
                    "",
                    obligation,
                    false,
                ]
            }
        };
        self.pending.push(params);
        if self.pending.len() >= 512 {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes the rows added so far.
    fn flush(&mut self) -> Result<()> {
        if !self.pending.is_empty() {
            self.journal.db().execute_many(INSERT_ROW, &self.pending)?;
            self.pending.clear();
        }
        Ok(())
    }

    /// Rows stored so far, and the valid ones with their total. Every row added is in the
    /// database when this returns (the checks that follow read them).
    pub fn totals(&mut self) -> Result<(u64, Tally)> {
        self.flush()?;
        Ok((self.total, self.valid))
    }

    /// Rows added so far.
    pub fn added(&self) -> u64 {
        self.total
    }

    /// Stores the batch for good, with its control totals and the fingerprint of its valid rows.
    pub fn commit(mut self, rows_hash: &str) -> Result<()> {
        self.flush()?;
        self.journal.x(
            "UPDATE batches SET total_rows = $2, valid_rows = $3, valid_paise = $4, rows_hash = $5 WHERE id = $1",
            &vals![&self.batch_id, self.total, self.valid.count, self.valid.amount.paise(), rows_hash],
        )?;
        self.journal.db().execute_batch("COMMIT")?;
        self.journal.depth.set(0);
        self.done = true;
        Ok(())
    }
}

impl Drop for Ingest<'_> {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.journal.db().execute_batch("ROLLBACK");
            self.journal.depth.set(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Order ids compare as the gateway may write one id twice: a JSON number without its leading
    /// zeros, another case, padding. Different ids stay different.
    #[test]
    fn order_ids_compare_like_the_gateway_writes_them() {
        assert_eq!(order_key("001001"), order_key("1001"));
        assert_eq!(order_key(" HOAD650297148300 "), order_key("hoad650297148300"));
        assert_ne!(order_key("1001"), order_key("1002"));
        assert_ne!(order_key("0A1"), order_key("A1"), "zeros are dropped from all-digit ids only");
    }

    #[test]
    fn references_are_stable_and_new_for_a_repeat_payment() {
        assert_eq!(row_reference(None, "3f9a1c2b7d4e", 1, 42), "PR3f9a1c2b7d4e0000042");
        assert_eq!(row_reference(None, "3f9a1c2b7d4e", 1, 42), row_reference(None, "3f9a1c2b7d4e", 1, 42));
        assert_eq!(row_reference(Some("INV-7"), "3f9a1c2b7d4e", 1, 42), "INV-7");
        assert_eq!(row_reference(Some("INV-7"), "aaaaaaaaaaaa", 2, 42), "INV-7-N2");
        let long = "X".repeat(33);
        assert_eq!(row_reference(Some(&long), "aaaaaaaaaaaa", 2, 42), "PRaaaaaaaaaaaa0000042");
        let sha = [7u8; 32];
        assert_ne!(batch_id(&sha, 1), batch_id(&sha, 2));
        assert_eq!(batch_id(&sha, 1), "070707070707");
    }
}
