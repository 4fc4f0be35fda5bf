//! The journal: a SQLite database under `--state DIR` that holds every batch and every row's
//! lifecycle (SPEC section 3). It is what makes a payout exactly-once across crashes: a row's intent
//! is on disk, fsynced (WAL, `synchronous=FULL`: it survives a power cut, not only a killed
//! process), before its request leaves the process.
//!
//! This module owns the schema and every write. It checks each state change against what is on
//! disk (a row must be in the state the change starts from) and refuses otherwise. It never stores
//! a credential or a token, and creates its directory and files readable by the owner only.
//!
//! Writes during a run go through the [`writer::Writer`] thread, which commits changes in groups:
//! many rows' intents share one fsync, which is what lets payrun go far beyond the ~1,800 payouts/s
//! that one fsync per row allows on a small machine.

pub mod actions;
pub mod holds;
pub mod ingest;
pub mod lifecycle;
pub mod scratch;
pub mod writer;

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

pub use lifecycle::{Event, Illegal, RowState, RowStatus};

use crate::input::{Mode, Problem, RowView, Severity};
use crate::money::{Amount, Tally};

/// The schema version this build writes and reads (a version-1 journal is upgraded in place).
pub const SCHEMA_VERSION: i64 = 2;

/// Journal failures callers branch on.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("journal database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error(
        "the journal at {path} has schema version {found}; this payrun understands {SCHEMA_VERSION}: use a newer payrun"
    )]
    Schema { path: PathBuf, found: i64 },
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
/// leading zeros, and the IFSC in upper case. The journal's `payee` column holds it.
pub fn payee_key(account: &str, ifsc: &str) -> String {
    format!("{}:{}", account.trim().trim_start_matches('0'), ifsc.trim().to_ascii_uppercase())
}

/// A gateway order id as compared between rows, as a 64-bit hash (a batch of a million rows keeps
/// eight bytes per id, not a string): trimmed, case ignored, an all-digit id without leading zeros
/// (a JSON number loses them). Two ids whose hashes collide count as one id given to two rows,
/// which only makes payrun ask by the reference instead.
pub fn order_id_key(id: &str) -> u64 {
    use std::hash::Hasher;
    let t = id.trim();
    let t = if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) { t.trim_start_matches('0') } else { t };
    let mut h = std::collections::hash_map::DefaultHasher::new();
    t.bytes().for_each(|b| h.write_u8(b.to_ascii_lowercase()));
    h.finish()
}

/// A payee id as compared across batches (SPEC 3.3): trimmed, upper case.
pub fn payee_id_key(id: &str) -> String {
    crate::input::reader::trim(id).to_uppercase()
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
    pub status: RowStatus,
}

/// Current time, RFC 3339 UTC with milliseconds.
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

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

/// The tables. A version-1 journal gets the columns version 2 added by [`upgrade_v1`] before the
/// indexes are made.
const TABLES: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS batches (
    id TEXT PRIMARY KEY,
    file_sha256 TEXT NOT NULL,
    generation INTEGER NOT NULL,
    file_path TEXT NOT NULL,
    encoding TEXT NOT NULL,
    delimiter TEXT NOT NULL,
    header TEXT NOT NULL,
    created_at TEXT NOT NULL,
    gateway TEXT NOT NULL,
    settings TEXT NOT NULL,
    confirmed_at TEXT,
    finished_at TEXT,
    result_path TEXT,
    total_rows INTEGER NOT NULL DEFAULT 0,
    valid_rows INTEGER NOT NULL DEFAULT 0,
    valid_paise INTEGER NOT NULL DEFAULT 0,
    rows_hash TEXT,
    cancelled_at TEXT,
    audit_n INTEGER NOT NULL DEFAULT 0,
    audit_head TEXT,
    UNIQUE (file_sha256, generation)
);
CREATE TABLE IF NOT EXISTS rows (
    batch_id TEXT NOT NULL REFERENCES batches(id),
    seq INTEGER NOT NULL,
    line INTEGER NOT NULL,
    raw TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    account TEXT NOT NULL DEFAULT '',
    ifsc TEXT NOT NULL DEFAULT '',
    amount_paise INTEGER,
    mode TEXT,
    remarks TEXT NOT NULL DEFAULT '',
    payee_list_id TEXT NOT NULL DEFAULT '',
    external_ref TEXT,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    gateway_ref TEXT,
    code TEXT,
    message TEXT,
    utr TEXT,
    submitted_at TEXT,
    completed_at TEXT,
    updated_at TEXT,
    sent_at TEXT,
    payee TEXT,
    payee_id TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (batch_id, seq)
);
CREATE TABLE IF NOT EXISTS actions (
    id INTEGER PRIMARY KEY,
    batch_id TEXT NOT NULL REFERENCES batches(id),
    at TEXT NOT NULL,
    operator TEXT NOT NULL,
    action TEXT NOT NULL,
    lines TEXT NOT NULL DEFAULT '',
    reason TEXT NOT NULL DEFAULT '',
    detail TEXT NOT NULL DEFAULT ''
);
";

const INDEXES: &str = "
CREATE INDEX IF NOT EXISTS rows_by_state ON rows (batch_id, state, seq);
CREATE UNIQUE INDEX IF NOT EXISTS rows_by_ref ON rows (batch_id, external_ref) WHERE external_ref IS NOT NULL;
CREATE INDEX IF NOT EXISTS rows_by_any_ref ON rows (external_ref) WHERE external_ref IS NOT NULL;
CREATE INDEX IF NOT EXISTS rows_by_payee ON rows (payee) WHERE payee IS NOT NULL;
CREATE INDEX IF NOT EXISTS rows_by_payee_id ON rows (payee_id, state, completed_at) WHERE payee_id <> '';
CREATE UNIQUE INDEX IF NOT EXISTS rows_by_line ON rows (batch_id, line);
CREATE INDEX IF NOT EXISTS batches_by_rows ON batches (rows_hash);
CREATE INDEX IF NOT EXISTS actions_by_batch ON actions (batch_id, id);
";

/// Version 1 → 2: the columns for holds (payee key, payee id), the time of the latest posting, a
/// batch's cancellation. Existing rows get their payee key; an earlier batch is compared with new
/// ones like any other.
fn upgrade_v1(conn: &Connection) -> Result<()> {
    conn.execute_batch(
        "BEGIN IMMEDIATE;
         ALTER TABLE rows ADD COLUMN sent_at TEXT;
         ALTER TABLE rows ADD COLUMN payee TEXT;
         ALTER TABLE rows ADD COLUMN payee_id TEXT NOT NULL DEFAULT '';
         ALTER TABLE batches ADD COLUMN cancelled_at TEXT;
         ALTER TABLE batches ADD COLUMN audit_n INTEGER NOT NULL DEFAULT 0;
         ALTER TABLE batches ADD COLUMN audit_head TEXT;
         UPDATE rows SET payee = ltrim(account, '0') || ':' || upper(ifsc) WHERE state <> 'invalid';
         UPDATE meta SET value = '2' WHERE key = 'schema_version';
         COMMIT;",
    )?;
    Ok(())
}

/// A value in the journal that payrun cannot read: an error, never a default.
fn corrupt(column: &str, why: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        0,
        rusqlite::types::Type::Text,
        format!("journal column {column}: {why}").into(),
    )
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

/// Writes `changes` to the journal after `records` (which explain them) are durable in the batch's
/// evidence log, and moves the batch's anchor to the log's new head; all inside the caller's
/// transaction (SPEC 3.4: the log is durable no later than the journal change it explains).
pub(crate) fn write_audited(
    conn: &Connection,
    log: &mut crate::audit::Log,
    batch: &str,
    records: &mut [crate::audit::Record],
    changes: &[writer::Change],
) -> Result<()> {
    log.append(records)?;
    write_anchored(conn, batch, changes, log.head())
}

/// Writes `changes` and moves the batch's evidence-log anchor to `head`, inside the caller's
/// transaction. The records explaining the changes must already be durable in the log.
pub(crate) fn write_anchored(
    conn: &Connection,
    batch: &str,
    changes: &[writer::Change],
    head: &crate::audit::Head,
) -> Result<()> {
    for c in changes {
        writer::write_change(conn, batch, c)?;
    }
    conn.prepare_cached("UPDATE batches SET audit_n = ?2, audit_head = ?3 WHERE id = ?1")?.execute(params![
        batch,
        head.n as i64,
        head.hash
    ])?;
    Ok(())
}

/// Opens a connection with payrun's settings: WAL, fsync on every commit, foreign keys.
fn connect(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(conn)
}

/// A handle on the journal of one state directory.
pub struct Journal {
    conn: Connection,
    path: PathBuf,
    dir: PathBuf,
    /// The journal file's identity (device, inode) when it was opened: a file deleted or replaced
    /// under a run is noticed before anything more is sent (SPEC 3 rule 10).
    identity: Option<(u64, u64)>,
}

/// The (device, inode) of a file, if it exists.
pub fn file_identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

impl Journal {
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

    /// Opens (creating when needed) `<dir>/journal.sqlite3`. The directory is created 0700 and the
    /// database 0600 (SQLite gives its WAL files the same mode).
    pub fn open(dir: &Path) -> Result<Journal> {
        crate::files::create_private_dir(dir)?;
        let path = dir.join("journal.sqlite3");
        if !path.exists() {
            OpenOptions::new().write(true).create(true).truncate(false).mode(0o600).open(&path)?;
        }
        let conn = connect(&path)?;
        let identity = file_identity(&path);
        // One transaction (a deferred one: nothing to write, nothing locked, when the tables are
        // there): a new journal is created whole, with one fsync instead of one per table.
        conn.execute_batch(&format!("BEGIN; {TABLES} COMMIT;"))?;
        let found: Option<String> =
            conn.query_row("SELECT value FROM meta WHERE key = 'schema_version'", [], |r| r.get(0)).optional()?;
        match found.and_then(|v| v.parse::<i64>().ok()) {
            None => {
                conn.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?1)",
                    [SCHEMA_VERSION.to_string()],
                )?;
            }
            Some(v) if v == SCHEMA_VERSION => {}
            Some(1) => upgrade_v1(&conn)?,
            Some(v) => return Err(JournalError::Schema { path, found: v }),
        }
        conn.execute_batch(&format!("BEGIN; {INDEXES} COMMIT;"))?;
        Ok(Journal { conn, path, dir: dir.to_path_buf(), identity })
    }

    /// Whether the journal file on disk is still the one this handle opened. A run checks it before
    /// every group of writes: a deleted or replaced journal would forget what was paid.
    pub fn check_same_file(&self) -> Result<()> {
        check_identity(&self.path, self.identity)
    }

    /// The identity the journal file had when it was opened.
    pub fn identity(&self) -> Option<(u64, u64)> {
        self.identity
    }

    /// Whether any batch other than `except` is in the journal (the cross-batch checks have nothing
    /// to compare with otherwise).
    pub fn has_other_batches(&self, except: &str) -> Result<bool> {
        Ok(self.conn.query_row("SELECT EXISTS (SELECT 1 FROM batches WHERE id <> ?1)", [except], |r| r.get(0))?)
    }

    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn batch_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Batch> {
        let header: String = r.get("header")?;
        let settings: String = r.get("settings")?;
        Ok(Batch {
            id: r.get("id")?,
            file_sha256: r.get("file_sha256")?,
            generation: r.get("generation")?,
            file_path: r.get("file_path")?,
            encoding: r.get("encoding")?,
            delimiter: r.get("delimiter")?,
            header: serde_json::from_str(&header).map_err(|e| corrupt("header", e.to_string()))?,
            created_at: r.get("created_at")?,
            gateway: r.get("gateway")?,
            settings: serde_json::from_str(&settings).map_err(|e| corrupt("settings", e.to_string()))?,
            confirmed_at: r.get("confirmed_at")?,
            finished_at: r.get("finished_at")?,
            cancelled_at: r.get("cancelled_at")?,
            result_path: r.get("result_path")?,
            total_rows: r.get::<_, i64>("total_rows")? as u64,
            valid: Tally {
                count: r.get::<_, i64>("valid_rows")? as u64,
                amount: Amount::from_paise(r.get::<_, i64>("valid_paise")?),
            },
        })
    }

    /// A batch by its id, or by a unique prefix of at least 4 characters.
    pub fn batch(&self, id: &str) -> Result<Option<Batch>> {
        let id = id.trim().to_ascii_lowercase();
        if id.len() < 4 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        let mut st = self.conn.prepare("SELECT * FROM batches WHERE id LIKE ?1 || '%' ORDER BY created_at LIMIT 2")?;
        let found: Vec<Batch> = st.query_map([&id], Self::batch_from_row)?.collect::<rusqlite::Result<_>>()?;
        Ok(if found.len() == 1 { found.into_iter().next() } else { found.into_iter().find(|b| b.id == id) })
    }

    /// The latest batch (highest generation) of a file's bytes.
    pub fn latest_batch_for(&self, sha256: &str) -> Result<Option<Batch>> {
        self.conn
            .query_row(
                "SELECT * FROM batches WHERE file_sha256 = ?1 ORDER BY generation DESC LIMIT 1",
                [sha256],
                Self::batch_from_row,
            )
            .optional()
            .map_err(Into::into)
    }

    /// The batch (other than `except`) that already gave a row this reference, if any.
    pub fn batch_using_reference(&self, reference: &str, except: &str) -> Result<Option<String>> {
        self.conn
            .prepare_cached("SELECT batch_id FROM rows WHERE external_ref = ?1 AND batch_id != ?2 LIMIT 1")?
            .query_row(params![reference, except], |r| r.get(0))
            .optional()
            .map_err(Into::into)
    }

    /// The latest batch (other than `except`) whose valid rows had this fingerprint.
    pub fn batch_with_rows(&self, rows_hash: &str, except: &str) -> Result<Option<Batch>> {
        self.conn
            .query_row(
                "SELECT * FROM batches WHERE rows_hash = ?1 AND id != ?2 ORDER BY created_at DESC LIMIT 1",
                params![rows_hash, except],
                Self::batch_from_row,
            )
            .optional()
            .map_err(Into::into)
    }

    /// Every batch, oldest first.
    pub fn batches(&self) -> Result<Vec<Batch>> {
        let mut st = self.conn.prepare("SELECT * FROM batches ORDER BY created_at")?;
        let v = st.query_map([], Self::batch_from_row)?.collect::<rusqlite::Result<_>>()?;
        Ok(v)
    }

    /// Starts storing a new batch: the batch and all its rows land in one transaction, so a crash
    /// while reading the file leaves no half batch.
    pub fn begin_batch(&self, batch: &Batch) -> Result<Ingest<'_>> {
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        let ingest = Ingest {
            journal: self,
            batch_id: batch.id.clone(),
            generation: batch.generation,
            done: false,
            total: 0,
            valid: Tally::default(),
        };
        self.conn.execute(
            "INSERT INTO batches (id, file_sha256, generation, file_path, encoding, delimiter, header, created_at, gateway, settings, confirmed_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            params![
                batch.id,
                batch.file_sha256,
                batch.generation,
                batch.file_path,
                batch.encoding,
                batch.delimiter,
                serde_json::to_string(&batch.header).unwrap_or_else(|_| "[]".into()),
                batch.created_at,
                batch.gateway,
                serde_json::to_string(&batch.settings).unwrap_or_else(|_| "{}".into()),
                batch.confirmed_at,
            ],
        )?;
        Ok(ingest)
    }

    /// Records settings chosen at resume (rate, concurrency, ...).
    pub fn update_settings(&self, batch: &str, settings: &BatchSettings) -> Result<()> {
        let s = serde_json::to_string(settings).unwrap_or_else(|_| "{}".into());
        self.conn.execute("UPDATE batches SET settings = ?2 WHERE id = ?1", params![batch, s])?;
        Ok(())
    }

    pub fn set_confirmed(&self, batch: &str) -> Result<()> {
        self.conn.execute("UPDATE batches SET confirmed_at = ?2 WHERE id = ?1", params![batch, now()])?;
        Ok(())
    }

    /// Forgets a confirmation that never led to sending (the gateway refused everything at once):
    /// the next run asks again.
    pub fn clear_confirmed(&self, batch: &str) -> Result<()> {
        self.conn.execute("UPDATE batches SET confirmed_at = NULL WHERE id = ?1", params![batch])?;
        Ok(())
    }

    pub fn set_result_path(&self, batch: &str, path: &str) -> Result<()> {
        self.conn.execute("UPDATE batches SET result_path = ?2 WHERE id = ?1", params![batch, path])?;
        Ok(())
    }

    /// Marks the batch finished (every valid row final), once.
    pub fn set_finished(&self, batch: &str) -> Result<()> {
        self.conn.execute(
            "UPDATE batches SET finished_at = ?2 WHERE id = ?1 AND finished_at IS NULL",
            params![batch, now()],
        )?;
        Ok(())
    }

    /// After a restart: every row left `sending` may or may not have reached the gateway, so it
    /// becomes `in_doubt` (rule 2), through the lifecycle like every other change, each recorded in
    /// the evidence log.
    pub fn recover(&self, batch: &str) -> Result<usize> {
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
        let found: Option<(i64, Option<String>)> = self
            .conn
            .query_row("SELECT audit_n, audit_head FROM batches WHERE id = ?1", [batch], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        Ok(match found {
            Some((n, Some(hash))) if n > 0 => Some(crate::audit::Head { n: n as u64, hash }),
            _ => None,
        })
    }

    /// Opens the batch's evidence log to continue it after the journal's last committed record.
    pub fn open_audit(&self, batch: &str) -> Result<crate::audit::Log> {
        let anchor = self.audit_anchor(batch)?;
        Ok(crate::audit::Log::open(&self.dir, batch, anchor.as_ref())?)
    }

    /// Marks a batch cancelled (`payrun cancel`), once.
    pub fn set_cancelled(&self, batch: &str) -> Result<()> {
        self.conn.execute(
            "UPDATE batches SET cancelled_at = ?2 WHERE id = ?1 AND cancelled_at IS NULL",
            params![batch, now()],
        )?;
        Ok(())
    }

    /// A row of a batch by its line in the input file.
    pub fn row_at_line(&self, batch: &str, line: u64) -> Result<Option<Row>> {
        self.conn
            .prepare_cached("SELECT * FROM rows WHERE batch_id = ?1 AND line = ?2")?
            .query_row(params![batch, line as i64], Self::row_from)
            .optional()
            .map_err(Into::into)
    }

    /// Applies `event` to each of `seqs` through the lifecycle, in one transaction, checking every
    /// row's state on disk, and records each change in the evidence log first (a record of `kind`,
    /// with `operator` when a person did it). Rows the event does not apply to are left as they are
    /// and returned as refused, with why.
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
            let row = self
                .conn
                .prepare_cached("SELECT * FROM rows WHERE batch_id = ?1 AND seq = ?2")?
                .query_row(params![batch, seq as i64], Self::row_from)
                .optional()?;
            let Some(row) = row else { continue };
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
        // A savepoint: its own transaction, or part of the caller's (a batch being stored).
        self.conn.execute_batch("SAVEPOINT apply_to_rows")?;
        match write_audited(&self.conn, &mut log, batch, &mut records, &changes) {
            Ok(()) => self.conn.execute_batch("RELEASE apply_to_rows")?,
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK TO apply_to_rows; RELEASE apply_to_rows");
                return Err(e);
            }
        }
        Ok((done, refused))
    }

    /// Appends records to the batch's evidence log (durably) and moves the journal's anchor to it,
    /// in one savepoint: for what changes no row (a batch stored, an operator's action).
    pub fn audit(&self, batch: &str, records: &mut [crate::audit::Record]) -> Result<()> {
        let mut log = self.open_audit(batch)?;
        self.conn.execute_batch("SAVEPOINT audit")?;
        match write_audited(&self.conn, &mut log, batch, records, &[]) {
            Ok(()) => self.conn.execute_batch("RELEASE audit")?,
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK TO audit; RELEASE audit");
                return Err(e);
            }
        }
        Ok(())
    }

    /// Whether a batch paid, or may still pay, any row: anything but FAILED, INVALID or CANCELLED.
    pub fn batch_paid_anything(&self, batch: &str) -> Result<bool> {
        Ok(self.conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM rows WHERE batch_id = ?1 AND state NOT IN ('failed', 'invalid', 'cancelled'))",
            [batch],
            |r| r.get(0),
        )?)
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
        self.audit(batch, &mut [r])?;
        self.conn.execute(
            "INSERT INTO actions (batch_id, at, operator, action, lines, reason, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![batch, now(), operator, action, lines, reason, detail],
        )?;
        Ok(())
    }

    fn row_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
        let state: String = r.get("state")?;
        let paise: Option<i64> = r.get("amount_paise")?;
        let mode: Option<String> = r.get("mode")?;
        Ok(Row {
            seq: r.get::<_, i64>("seq")? as u64,
            line: r.get::<_, i64>("line")? as u64,
            name: r.get("name")?,
            account: r.get("account")?,
            ifsc: r.get("ifsc")?,
            amount: paise.filter(|p| *p >= 0).map(Amount::from_paise),
            mode: mode.as_deref().and_then(Mode::parse),
            remarks: r.get("remarks")?,
            payee_list_id: r.get("payee_list_id")?,
            payee_id: r.get("payee_id")?,
            external_ref: r.get("external_ref")?,
            status: RowStatus {
                state: Some(
                    RowState::parse(&state).ok_or_else(|| corrupt("state", format!("unknown state '{state}'")))?,
                ),
                attempts: r.get::<_, i64>("attempts")? as u32,
                gateway_ref: r.get("gateway_ref")?,
                code: r.get("code")?,
                message: r.get("message")?,
                utr: r.get("utr")?,
                submitted_at: r.get("submitted_at")?,
                completed_at: r.get("completed_at")?,
                sent_at: r.get("sent_at")?,
            },
        })
    }

    /// Up to `limit` rows in `state`, in file order, after row `after`.
    pub fn rows_in_state(&self, batch: &str, state: RowState, after: u64, limit: usize) -> Result<Vec<Row>> {
        let mut st = self.conn.prepare_cached(
            "SELECT * FROM rows WHERE batch_id = ?1 AND state = ?2 AND seq > ?3 ORDER BY seq LIMIT ?4",
        )?;
        let v = st
            .query_map(params![batch, state.as_str(), after as i64, limit as i64], Self::row_from)?
            .collect::<rusqlite::Result<_>>()?;
        Ok(v)
    }

    /// How many rows of `batch` the gateway gave each order id (keys as [`order_id_key`] writes
    /// them). More than one means the id does not tell those rows' payouts apart.
    pub fn order_id_counts(&self, batch: &str) -> Result<std::collections::HashMap<u64, u32>> {
        let mut st =
            self.conn.prepare_cached("SELECT gateway_ref FROM rows WHERE batch_id = ?1 AND gateway_ref IS NOT NULL")?;
        let mut out: std::collections::HashMap<u64, u32> = std::collections::HashMap::new();
        for id in st.query_map([batch], |r| r.get::<_, String>(0))? {
            *out.entry(order_id_key(&id?)).or_default() += 1;
        }
        Ok(out)
    }

    /// Counts and amounts per state and mode (exact: sums of integer paise).
    pub fn counts(&self, batch: &str) -> Result<Counts> {
        let mut st = self.conn.prepare_cached(
            "SELECT state, mode, COUNT(*), COALESCE(SUM(amount_paise), 0) FROM rows WHERE batch_id = ?1 GROUP BY state, mode",
        )?;
        let mut counts = Counts::default();
        let mut rows = st.query([batch])?;
        while let Some(r) = rows.next()? {
            let state: String = r.get(0)?;
            let mode: Option<String> = r.get(1)?;
            let n: i64 = r.get(2)?;
            let paise: i64 = r.get(3)?;
            let state =
                RowState::parse(&state).ok_or_else(|| JournalError::Corrupt(format!("unknown state '{state}'")))?;
            counts.cells.push((
                state,
                mode.as_deref().and_then(Mode::parse),
                Tally { count: n as u64, amount: Amount::from_paise(paise) },
            ));
        }
        Ok(counts)
    }

    /// Row counts per state only (index-only: fast on a million rows).
    pub fn state_counts(&self, batch: &str) -> Result<Vec<(RowState, u64)>> {
        let mut st = self.conn.prepare_cached("SELECT state, COUNT(*) FROM rows WHERE batch_id = ?1 GROUP BY state")?;
        let mut out = Vec::new();
        let mut rows = st.query([batch])?;
        while let Some(r) = rows.next()? {
            let state: String = r.get(0)?;
            if let Some(s) = RowState::parse(&state) {
                out.push((s, r.get::<_, i64>(1)? as u64));
            }
        }
        Ok(out)
    }

    /// Calls `f` for every row of the batch in file order, with its original cells.
    pub fn for_each_row(
        &self,
        batch: &str,
        mut f: impl FnMut(&Row, Vec<String>) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let mut st = self.conn.prepare("SELECT * FROM rows WHERE batch_id = ?1 ORDER BY seq")?;
        let mut rows = st.query([batch])?;
        while let Some(r) = rows.next()? {
            let row = Self::row_from(r)?;
            let raw: String = r.get("raw")?;
            let cells: Vec<String> =
                serde_json::from_str(&raw).map_err(|e| JournalError::Corrupt(format!("row {}: {e}", row.seq)))?;
            f(&row, cells)?;
        }
        Ok(())
    }
}

/// A batch being stored (see [`Journal::begin_batch`]). Dropped without [`Ingest::commit`], nothing
/// of it is kept.
pub struct Ingest<'j> {
    journal: &'j Journal,
    batch_id: String,
    generation: u32,
    done: bool,
    total: u64,
    valid: Tally,
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
}

impl Ingest<'_> {
    /// Stores one row: `ready` with its reference when valid, else `invalid` with its first error's
    /// code and every problem in the message.
    pub fn add(&mut self, row: NewRow<'_>) -> Result<()> {
        let conn = &self.journal.conn;
        let mut st = conn.prepare_cached(
            "INSERT INTO rows (batch_id, seq, line, raw, name, account, ifsc, amount_paise, mode, remarks, payee_list_id,
                               external_ref, state, code, message, updated_at, payee, payee_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
        )?;
        let raw = serde_json::to_string(row.cells).unwrap_or_else(|_| "[]".into());
        let now = now();
        self.total += 1;
        match row.valid {
            Some(v) => {
                self.valid.add(v.amount);
                let reference = row_reference(v.reference, &self.batch_id, self.generation, row.seq);
                let warnings: Vec<String> = row.problems.iter().map(|p| format!("{}: {}", p.code, p.message)).collect();
                st.execute(params![
                    self.batch_id,
                    row.seq as i64,
                    row.line as i64,
                    raw,
                    v.name,
                    v.account.as_ref(),
                    v.ifsc.as_ref(),
                    v.amount.paise() as i64,
                    v.mode.as_str(),
                    v.remarks,
                    v.payee_list_id,
                    reference,
                    RowState::Ready.as_str(),
                    Option::<String>::None,
                    (!warnings.is_empty()).then(|| warnings.join("; ")),
                    now,
                    payee_key(&v.account, &v.ifsc),
                    payee_id_key(v.payee_id),
                ])?;
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
                st.execute(params![
                    self.batch_id,
                    row.seq as i64,
                    row.line as i64,
                    raw,
                    "",
                    "",
                    "",
                    row.amount.map(|a| a.paise() as i64),
                    row.mode.map(|m| m.as_str()),
                    "",
                    "",
                    row.reference,
                    RowState::Invalid.as_str(),
                    code,
                    Some(message.join("; ")),
                    now,
                    Option::<String>::None,
                    "",
                ])?;
            }
        }
        Ok(())
    }

    /// Rows stored so far, and the valid ones with their total.
    pub fn totals(&self) -> (u64, Tally) {
        (self.total, self.valid)
    }

    /// Stores the batch for good, with its control totals and the fingerprint of its valid rows.
    pub fn commit(mut self, rows_hash: &str) -> Result<()> {
        self.journal.conn.execute(
            "UPDATE batches SET total_rows = ?2, valid_rows = ?3, valid_paise = ?4, rows_hash = ?5 WHERE id = ?1",
            params![
                self.batch_id,
                self.total as i64,
                self.valid.count as i64,
                self.valid.amount.paise() as i64,
                rows_hash
            ],
        )?;
        self.journal.conn.execute_batch("COMMIT")?;
        self.done = true;
        Ok(())
    }
}

impl Drop for Ingest<'_> {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.journal.conn.execute_batch("ROLLBACK");
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
        assert_eq!(order_id_key("001001"), order_id_key("1001"));
        assert_eq!(order_id_key(" HOAD650297148300 "), order_id_key("hoad650297148300"));
        assert_ne!(order_id_key("1001"), order_id_key("1002"));
        assert_ne!(order_id_key("0A1"), order_id_key("A1"), "zeros are dropped from all-digit ids only");
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
