//! The journal's tables in SQLite, and how an older journal file is brought up to date. The
//! PostgreSQL schema of team mode (the same tables, plus roles, policies and leases) is in
//! [`super::team`]'s migrations; both hold the same columns with the same meaning, so the queries
//! of the journal above them are written once.
//!
//! Version history: 1, the first journal; 2, holds (payee key, payee id, latest posting time) and
//! the evidence-log anchor; 3 (this round), the payee key by bank rather than branch (SPEC 3.2), the
//! gateway's order id indexed across the journal (rule 12), each row's obligation for retry lineage
//! (3.2b), the confirmation each row was sent under (3.2c), and the record of `payrun failed`
//! exports.

use super::store::Store;
use super::{JournalError, Result};

/// The schema version this build writes and reads.
pub const SCHEMA_VERSION: i64 = 3;

/// Every table as version 3 has it (a new journal is created whole, in one transaction).
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
    order_key TEXT,
    obligation TEXT NOT NULL DEFAULT '',
    confirmed INTEGER NOT NULL DEFAULT 0,
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
CREATE TABLE IF NOT EXISTS exports (
    id INTEGER PRIMARY KEY,
    batch_id TEXT NOT NULL REFERENCES batches(id),
    at TEXT NOT NULL,
    operator TEXT NOT NULL,
    file TEXT NOT NULL,
    rows INTEGER NOT NULL,
    lines TEXT NOT NULL DEFAULT ''
);
";

/// The indexes (made after any upgrade has added the columns they cover).
pub(crate) const INDEXES: &str = "
CREATE INDEX IF NOT EXISTS rows_by_state ON rows (batch_id, state, seq);
CREATE UNIQUE INDEX IF NOT EXISTS rows_by_ref ON rows (batch_id, external_ref) WHERE external_ref IS NOT NULL;
CREATE INDEX IF NOT EXISTS rows_by_any_ref ON rows (external_ref) WHERE external_ref IS NOT NULL;
CREATE INDEX IF NOT EXISTS rows_by_payee ON rows (payee) WHERE payee IS NOT NULL;
CREATE INDEX IF NOT EXISTS rows_by_payee_id ON rows (payee_id, state, completed_at) WHERE payee_id <> '';
CREATE UNIQUE INDEX IF NOT EXISTS rows_by_line ON rows (batch_id, line);
CREATE INDEX IF NOT EXISTS rows_by_order_key ON rows (order_key) WHERE order_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS rows_by_obligation ON rows (obligation) WHERE obligation <> '';
CREATE INDEX IF NOT EXISTS rows_unknown_order ON rows (payee) WHERE gateway_ref IS NULL AND attempts > 0;
CREATE INDEX IF NOT EXISTS batches_by_rows ON batches (rows_hash);
CREATE INDEX IF NOT EXISTS actions_by_batch ON actions (batch_id, id);
CREATE INDEX IF NOT EXISTS exports_by_batch ON exports (batch_id, id);
";

/// Version 1 → 2: the columns for holds (payee key, payee id), the time of the latest posting, a
/// batch's cancellation, the evidence-log anchor.
const V1_TO_V2: &str = "
ALTER TABLE rows ADD COLUMN sent_at TEXT;
ALTER TABLE rows ADD COLUMN payee TEXT;
ALTER TABLE rows ADD COLUMN payee_id TEXT NOT NULL DEFAULT '';
ALTER TABLE batches ADD COLUMN cancelled_at TEXT;
ALTER TABLE batches ADD COLUMN audit_n INTEGER NOT NULL DEFAULT 0;
ALTER TABLE batches ADD COLUMN audit_head TEXT;
UPDATE rows SET payee = ltrim(account, '0') || ':' || upper(ifsc) WHERE state <> 'invalid';
";

/// Version 2 → 3 (the parts plain SQL can do; [`upgrade_v2_rows`] fills the order keys).
const V2_TO_V3: &str = "
ALTER TABLE rows ADD COLUMN order_key TEXT;
ALTER TABLE rows ADD COLUMN obligation TEXT NOT NULL DEFAULT '';
ALTER TABLE rows ADD COLUMN confirmed INTEGER NOT NULL DEFAULT 0;
UPDATE rows SET payee = ltrim(account, '0') || ':' || upper(substr(ifsc, 1, 4)) WHERE payee IS NOT NULL;
UPDATE rows SET obligation = batch_id || ':' || line;
UPDATE rows SET confirmed = 1 WHERE state NOT IN ('ready', 'held', 'invalid')
    OR batch_id IN (SELECT id FROM batches WHERE confirmed_at IS NOT NULL OR gateway = 'embedded');
";

/// The order keys of rows a version-2 journal holds (normalised in Rust, like new ones).
fn upgrade_v2_rows(db: &mut dyn Store) -> Result<()> {
    let rows = db.query("SELECT batch_id, seq, gateway_ref FROM rows WHERE gateway_ref IS NOT NULL", &[])?;
    let mut sets = Vec::with_capacity(rows.len());
    for r in rows {
        let id: String = r.get("gateway_ref")?;
        sets.push(crate::vals![super::order_key(&id), r.get::<String>("batch_id")?, r.get::<i64>("seq")?]);
    }
    db.execute_many("UPDATE rows SET order_key = $1 WHERE batch_id = $2 AND seq = $3", &sets)?;
    Ok(())
}

/// Creates the tables of a new journal, or upgrades an older one, and makes the indexes. Refuses a
/// journal newer than this build, naming both versions.
pub(crate) fn prepare(db: &mut dyn Store, what: &str) -> Result<()> {
    // One transaction (a deferred one: nothing to write, nothing locked, when the tables are
    // there): a new journal is created whole, with one fsync instead of one per table.
    db.execute_batch(&format!("BEGIN; {TABLES} COMMIT;"))?;
    let found = super::store::first(db.query("SELECT value FROM meta WHERE key = 'schema_version'", &[])?)
        .map(|r| r.get::<String>("value"))
        .transpose()?
        .and_then(|v| v.parse::<i64>().ok());
    let mut version = match found {
        None => {
            db.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', $1) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                &crate::vals![SCHEMA_VERSION.to_string()],
            )?;
            SCHEMA_VERSION
        }
        Some(v) if v > SCHEMA_VERSION => {
            return Err(JournalError::Schema { what: what.to_string(), found: v });
        }
        Some(v) => v,
    };
    while version < SCHEMA_VERSION {
        db.begin()?;
        let step = (|| -> Result<()> {
            match version {
                1 => db.execute_batch(V1_TO_V2)?,
                2 => {
                    db.execute_batch(V2_TO_V3)?;
                    upgrade_v2_rows(db)?;
                }
                v => return Err(JournalError::Schema { what: what.to_string(), found: v }),
            }
            db.execute(
                "UPDATE meta SET value = $1 WHERE key = 'schema_version'",
                &crate::vals![(version + 1).to_string()],
            )?;
            Ok(())
        })();
        match step {
            Ok(()) => db.execute_batch("COMMIT")?,
            Err(e) => {
                let _ = db.execute_batch("ROLLBACK");
                return Err(e);
            }
        }
        version += 1;
    }
    db.execute_batch(&format!("BEGIN; {INDEXES} COMMIT;"))?;
    Ok(())
}
