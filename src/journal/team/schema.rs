//! The journal's schema in PostgreSQL (team mode, SPEC 8): numbered migrations, each applied in one
//! transaction and recorded in `payrun_migrations`; a database whose schema is newer than this
//! binary is refused by every command, naming both versions.
//!
//! Migration 1 holds the same tables and columns as the SQLite journal of schema version 3 (see
//! [`crate::journal::schema`]), so the journal's queries run on both; text columns use the `C`
//! collation, so times and ids order as they do in SQLite whatever the server's locale. Then what
//! only PostgreSQL can do: the evidence log as a table, one driver per batch (`leases`), one rate
//! budget per merchant (`rate_budget`), and maker-checker (SPEC 8.2): the three group roles, the
//! approval policy, approvals, and triggers that refuse the wrong writes whoever sends them (see
//! [`super::roles`]).

use crate::journal::store::{Store, first};
use crate::journal::{JournalError, Result};
use crate::vals;

/// The newest migration this build knows.
pub const PG_SCHEMA_VERSION: i64 = 1;

/// Migration 1: the journal's tables (as SQLite schema 3) and team mode's own.
const M1_TABLES: &str = r#"
CREATE TABLE meta (key TEXT COLLATE "C" PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE batches (
    id TEXT COLLATE "C" PRIMARY KEY,
    file_sha256 TEXT COLLATE "C" NOT NULL,
    generation BIGINT NOT NULL,
    file_path TEXT NOT NULL,
    encoding TEXT NOT NULL,
    delimiter TEXT NOT NULL,
    header TEXT NOT NULL,
    created_at TEXT COLLATE "C" NOT NULL,
    gateway TEXT NOT NULL,
    settings TEXT NOT NULL,
    confirmed_at TEXT COLLATE "C",
    finished_at TEXT COLLATE "C",
    result_path TEXT,
    total_rows BIGINT NOT NULL DEFAULT 0,
    valid_rows BIGINT NOT NULL DEFAULT 0,
    valid_paise BIGINT NOT NULL DEFAULT 0,
    rows_hash TEXT COLLATE "C",
    cancelled_at TEXT COLLATE "C",
    audit_n BIGINT NOT NULL DEFAULT 0,
    audit_head TEXT,
    -- Team mode: who stored the batch (the database role), and a checker's rejection.
    maker TEXT NOT NULL DEFAULT current_user,
    rejected_at TEXT COLLATE "C",
    rejected_by TEXT,
    UNIQUE (file_sha256, generation)
);
CREATE TABLE rows (
    batch_id TEXT COLLATE "C" NOT NULL REFERENCES batches(id),
    seq BIGINT NOT NULL,
    line BIGINT NOT NULL,
    raw TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    account TEXT COLLATE "C" NOT NULL DEFAULT '',
    ifsc TEXT COLLATE "C" NOT NULL DEFAULT '',
    amount_paise BIGINT,
    mode TEXT COLLATE "C",
    remarks TEXT NOT NULL DEFAULT '',
    payee_list_id TEXT NOT NULL DEFAULT '',
    external_ref TEXT COLLATE "C",
    state TEXT COLLATE "C" NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    gateway_ref TEXT COLLATE "C",
    code TEXT COLLATE "C",
    message TEXT,
    utr TEXT,
    submitted_at TEXT COLLATE "C",
    completed_at TEXT COLLATE "C",
    updated_at TEXT COLLATE "C",
    sent_at TEXT COLLATE "C",
    payee TEXT COLLATE "C",
    payee_id TEXT COLLATE "C" NOT NULL DEFAULT '',
    order_key TEXT COLLATE "C",
    obligation TEXT COLLATE "C" NOT NULL DEFAULT '',
    confirmed BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (batch_id, seq)
);
CREATE TABLE actions (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    batch_id TEXT COLLATE "C" NOT NULL REFERENCES batches(id),
    at TEXT COLLATE "C" NOT NULL,
    operator TEXT NOT NULL,
    action TEXT NOT NULL,
    lines TEXT NOT NULL DEFAULT '',
    reason TEXT NOT NULL DEFAULT '',
    detail TEXT NOT NULL DEFAULT ''
);
CREATE TABLE exports (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    batch_id TEXT COLLATE "C" NOT NULL REFERENCES batches(id),
    at TEXT COLLATE "C" NOT NULL,
    operator TEXT NOT NULL,
    file TEXT NOT NULL,
    rows BIGINT NOT NULL,
    lines TEXT NOT NULL DEFAULT ''
);
-- The evidence log (SPEC 3.4, 8.1): one hash chain per batch; its head is batches.audit_n/head.
CREATE TABLE evidence (
    batch_id TEXT COLLATE "C" NOT NULL REFERENCES batches(id),
    n BIGINT NOT NULL,
    line TEXT NOT NULL,
    hash TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (batch_id, n)
);
-- One driver per batch (SPEC 8.1).
CREATE TABLE leases (
    batch_id TEXT COLLATE "C" PRIMARY KEY REFERENCES batches(id),
    token TEXT COLLATE "C" NOT NULL,
    holder TEXT NOT NULL,
    host TEXT NOT NULL,
    pid BIGINT NOT NULL,
    since TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
-- One rate budget per merchant (SPEC 8.1): the next free slot of a shared pacing schedule.
CREATE TABLE rate_budget (
    merchant TEXT COLLATE "C" PRIMARY KEY,
    next_at TIMESTAMPTZ NOT NULL
);
-- Maker-checker (SPEC 8.2): the approval policy and the approvals.
CREATE TABLE policy_rules (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    measure TEXT NOT NULL CHECK (measure IN ('total', 'max_row')),
    min_paise BIGINT NOT NULL CHECK (min_paise >= 0),
    checkers BIGINT NOT NULL CHECK (checkers BETWEEN 1 AND 10)
);
CREATE TABLE approvals (
    batch_id TEXT COLLATE "C" NOT NULL REFERENCES batches(id),
    checker TEXT NOT NULL DEFAULT current_user,
    at TEXT COLLATE "C" NOT NULL,
    rows_hash TEXT NOT NULL,
    totals TEXT NOT NULL,
    reason TEXT NOT NULL,
    -- The batch's total and largest row as the database counts them from its rows when the
    -- approval is made (a trigger sets them, whatever the client sends): the policy is judged on
    -- these, never on figures a client wrote.
    db_total_paise BIGINT NOT NULL DEFAULT 0,
    db_max_paise BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (batch_id, checker)
);
CREATE INDEX rows_by_state ON rows (batch_id, state, seq);
CREATE UNIQUE INDEX rows_by_ref ON rows (batch_id, external_ref) WHERE external_ref IS NOT NULL;
CREATE INDEX rows_by_any_ref ON rows (external_ref) WHERE external_ref IS NOT NULL;
CREATE INDEX rows_by_payee ON rows (payee) WHERE payee IS NOT NULL;
CREATE INDEX rows_by_payee_id ON rows (payee_id, state, completed_at) WHERE payee_id <> '';
CREATE UNIQUE INDEX rows_by_line ON rows (batch_id, line);
CREATE INDEX rows_by_order_key ON rows (order_key) WHERE order_key IS NOT NULL;
CREATE INDEX rows_by_obligation ON rows (obligation) WHERE obligation <> '';
CREATE INDEX rows_unknown_order ON rows (payee) WHERE gateway_ref IS NULL AND attempts > 0;
CREATE INDEX batches_by_rows ON batches (rows_hash);
CREATE INDEX actions_by_batch ON actions (batch_id, id);
CREATE INDEX exports_by_batch ON exports (batch_id, id);
INSERT INTO meta (key, value) VALUES ('schema_version', '3');
"#;

/// The migrations, in order: (version, what it does, its SQL).
fn migrations() -> Vec<(i64, &'static str, String)> {
    vec![(
        1,
        "the journal's tables, evidence, leases, rate budget, maker-checker",
        format!("{M1_TABLES}{}", super::roles::m1_roles()),
    )]
}

/// The version of the schema in the database (0: none yet).
pub fn current(db: &mut dyn Store) -> Result<i64> {
    let exists = first(db.query("SELECT to_regclass('payrun_migrations') IS NOT NULL AS found", &[])?)
        .map(|r| r.get::<bool>("found"))
        .transpose()?
        .unwrap_or(false);
    if !exists {
        return Ok(0);
    }
    Ok(first(db.query("SELECT CAST(COALESCE(MAX(version), 0) AS BIGINT) AS v FROM payrun_migrations", &[])?)
        .map(|r| r.get::<i64>("v"))
        .transpose()?
        .unwrap_or(0))
}

/// Refuses a database whose schema is not this binary's: newer (naming both versions), or not
/// made yet (pointing at `payrun journal init`).
pub fn check(db: &mut dyn Store, what: &str) -> Result<()> {
    match current(db)? {
        v if v == PG_SCHEMA_VERSION => Ok(()),
        v if v > PG_SCHEMA_VERSION => Err(JournalError::Refused(format!(
            "the journal database {what} has schema version {v}; this payrun knows version {PG_SCHEMA_VERSION}: use a newer payrun"
        ))),
        0 => Err(JournalError::Refused(format!(
            "the journal database {what} has no payrun schema yet: its owner runs `payrun journal init --journal URL` first"
        ))),
        v => Err(JournalError::Refused(format!(
            "the journal database {what} has schema version {v}, older than this payrun's {PG_SCHEMA_VERSION}: its owner runs `payrun journal init --journal URL` to upgrade it"
        ))),
    }
}

/// Creates or upgrades the schema (`payrun journal init`): each migration not applied yet, in one
/// transaction of its own, recorded in `payrun_migrations`. Two owners running it at once are
/// serialized by an advisory lock. Returns the versions applied.
pub fn migrate(db: &mut dyn Store, what: &str) -> Result<Vec<i64>> {
    db.execute_batch(
        "CREATE TABLE IF NOT EXISTS payrun_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now(), applied_by TEXT NOT NULL DEFAULT current_user)",
    )?;
    let mut applied = Vec::new();
    for (version, description, sql) in migrations() {
        db.begin()?;
        let step = (|| -> Result<bool> {
            db.lock("payrun journal init")?;
            let have = current(db)?;
            if have > PG_SCHEMA_VERSION {
                return Err(JournalError::Refused(format!(
                    "the journal database {what} has schema version {have}; this payrun knows version {PG_SCHEMA_VERSION}: use a newer payrun"
                )));
            }
            if have >= version {
                return Ok(false);
            }
            db.execute_batch(&sql)?;
            db.execute(
                "INSERT INTO payrun_migrations (version, description) VALUES ($1, $2)",
                &vals![version, description],
            )?;
            Ok(true)
        })();
        match step {
            Ok(done) => {
                db.execute_batch("COMMIT")?;
                if done {
                    applied.push(version);
                }
            }
            Err(e) => {
                let _ = db.execute_batch("ROLLBACK");
                return Err(e);
            }
        }
    }
    Ok(applied)
}
