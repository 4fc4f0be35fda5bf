//! Storage under the journal: what a database must do for payrun, and nothing of what the journal
//! *means*. Two backends implement [`Store`]: SQLite in the state directory (the embedded default,
//! [`sqlite`]) and PostgreSQL for a team ([`postgres`], SPEC 8). The journal above them (the row
//! lifecycle, holds, lineage, actions, evidence) is written once, in SQL that both dialects run, with
//! PostgreSQL's `$1, $2...` parameters (the SQLite backend rewrites them to `?1, ?2...`).
//!
//! The portable subset the journal keeps to: `TEXT` and `BIGINT` columns only (times are RFC 3339
//! UTC text, compared as text, so both backends order them alike; no `rowid`, no `strftime`, no
//! `now()`: times come from the caller as parameters); `CAST(SUM(x) AS BIGINT)` where PostgreSQL
//! would give `NUMERIC`; `CAST($n AS TEXT)` where a parameter's type cannot be inferred; `INSERT ...
//! ON CONFLICT DO NOTHING`; `EXISTS` read as an integer 0/1 ([`Value`] turns PostgreSQL's booleans
//! into integers). What only PostgreSQL can do (roles, row-level security, leases, advisory locks)
//! lives in its backend and the team-mode modules, never in the journal's queries.
//!
//! A store is used from one thread at a time (`&mut self`); the journal wraps it in a mutex. Calls
//! block: the PostgreSQL backend drives its asynchronous driver on a thread of its own, so a store
//! may be called from inside the engine's tokio runtime as the SQLite one is.

pub mod pgurl;
pub mod postgres;
pub mod sqlite;

use std::sync::Arc;

/// A value going into or coming out of a store. Integers are 64-bit, text is UTF-8; a boolean
/// coming out of PostgreSQL is an integer 0/1.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Null,
    Int(i64),
    Text(String),
}

impl From<i64> for Value {
    fn from(v: i64) -> Value {
        Value::Int(v)
    }
}
impl From<u64> for Value {
    fn from(v: u64) -> Value {
        Value::Int(v as i64)
    }
}
/// Amounts in paise are `i128` in [`crate::money`] so that sums never overflow; one row's amount
/// (at most ₹100 crore) and any batch's total fit an `i64` by many orders of magnitude.
impl From<i128> for Value {
    fn from(v: i128) -> Value {
        Value::Int(i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX }))
    }
}
impl From<u32> for Value {
    fn from(v: u32) -> Value {
        Value::Int(i64::from(v))
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Value {
        Value::Int(i64::from(v))
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Value {
        Value::Text(v.to_string())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Value {
        Value::Text(v)
    }
}
impl From<&String> for Value {
    fn from(v: &String) -> Value {
        Value::Text(v.clone())
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Value {
        v.map_or(Value::Null, Into::into)
    }
}

/// Builds a `Vec<Value>` of query parameters: `vals![batch, seq, state.as_str()]`.
#[macro_export]
macro_rules! vals {
    ($($v:expr),* $(,)?) => { vec![$($crate::journal::store::Value::from($v)),*] };
}

/// Store failures, by what a caller does about them.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The connection to the database is gone (PostgreSQL restarted, the network dropped): the
    /// statement may or may not have been applied. Team mode waits for the database to come back.
    #[error("lost the connection to the journal database: {0}")]
    ConnectionLost(String),
    /// The database refused the statement for who is asking (a missing grant, a row-level
    /// security policy, a maker-checker rule raised by a trigger): the words are the database's.
    #[error("the journal database refused: {0}")]
    Denied(String),
    /// A uniqueness or check constraint refused the write.
    #[error("the journal database refused a write: {0}")]
    Constraint(String),
    /// Another process holds the database (SQLite's lock, after the busy timeout).
    #[error("the journal database is busy: {0}")]
    Busy(String),
    /// A value payrun cannot read (a corrupt or foreign journal).
    #[error("corrupt journal value: {0}")]
    Corrupt(String),
    #[error("journal database: {0}")]
    Other(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// Which database a store is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// One row of a query's answer, read by column name.
#[derive(Clone, Debug)]
pub struct Row {
    names: Arc<[String]>,
    values: Vec<Value>,
}

impl Row {
    pub fn new(names: Arc<[String]>, values: Vec<Value>) -> Row {
        Row { names, values }
    }

    fn value(&self, col: &str) -> Result<&Value> {
        self.names
            .iter()
            .position(|n| n == col)
            .and_then(|i| self.values.get(i))
            .ok_or_else(|| StoreError::Corrupt(format!("no column {col} in the answer")))
    }

    /// The value at position `i` (for answers with unnamed columns: `SELECT COUNT(*)`).
    pub fn at<T: FromValue>(&self, i: usize) -> Result<T> {
        let v = self.values.get(i).ok_or_else(|| StoreError::Corrupt(format!("no column {i} in the answer")))?;
        T::from_value(v).map_err(|why| StoreError::Corrupt(format!("column {i}: {why}")))
    }

    pub fn get<T: FromValue>(&self, col: &str) -> Result<T> {
        T::from_value(self.value(col)?).map_err(|why| StoreError::Corrupt(format!("column {col}: {why}")))
    }
}

/// A Rust value read from a [`Value`].
pub trait FromValue: Sized {
    fn from_value(v: &Value) -> std::result::Result<Self, String>;
}

impl FromValue for i64 {
    fn from_value(v: &Value) -> std::result::Result<i64, String> {
        match v {
            Value::Int(i) => Ok(*i),
            other => Err(format!("expected an integer, found {other:?}")),
        }
    }
}
impl FromValue for u64 {
    fn from_value(v: &Value) -> std::result::Result<u64, String> {
        i64::from_value(v).and_then(|i| u64::try_from(i).map_err(|_| format!("negative: {i}")))
    }
}
impl FromValue for u32 {
    fn from_value(v: &Value) -> std::result::Result<u32, String> {
        i64::from_value(v).and_then(|i| u32::try_from(i).map_err(|_| format!("out of range: {i}")))
    }
}
impl FromValue for bool {
    fn from_value(v: &Value) -> std::result::Result<bool, String> {
        i64::from_value(v).map(|i| i != 0)
    }
}
impl FromValue for String {
    fn from_value(v: &Value) -> std::result::Result<String, String> {
        match v {
            Value::Text(s) => Ok(s.clone()),
            other => Err(format!("expected text, found {other:?}")),
        }
    }
}
impl<T: FromValue> FromValue for Option<T> {
    fn from_value(v: &Value) -> std::result::Result<Option<T>, String> {
        match v {
            Value::Null => Ok(None),
            other => T::from_value(other).map(Some),
        }
    }
}

/// What a database must do for the journal. Statements use `$1, $2...` parameters.
pub trait Store: Send {
    fn backend(&self) -> Backend;

    /// Runs one statement; returns the rows it changed.
    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64>;

    /// Runs one statement once per parameter set, in order (the group commit's many row changes:
    /// PostgreSQL pipelines them, SQLite reuses one prepared statement). Returns each one's count.
    fn execute_many(&mut self, sql: &str, params: &[Vec<Value>]) -> Result<Vec<u64>>;

    /// Runs one query and returns every row of its answer.
    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>>;

    /// Runs statements without parameters, separated by `;` (schema, `COMMIT`, `SAVEPOINT x`).
    fn execute_batch(&mut self, sql: &str) -> Result<()>;

    /// Starts a transaction that will write (SQLite takes its write lock now, so two processes
    /// never deadlock upgrading a read lock; PostgreSQL's `BEGIN`).
    fn begin(&mut self) -> Result<()>;

    /// Whether many rows per statement pay here: true for a server, where each statement is a
    /// round of the server's work (PostgreSQL); false in-process, where a prepared statement per
    /// row is cheapest and a set-based one only gives the planner room to scan (SQLite). The
    /// journal writes its row changes and evidence records in the form this says.
    fn rows_per_statement(&self) -> bool {
        false
    }

    /// Serializes the rest of the current transaction with every other transaction that takes the
    /// same `key`, in any process on any machine, until it ends. SQLite needs nothing: its write
    /// transactions are serialized already. PostgreSQL takes a transaction-level advisory lock.
    fn lock(&mut self, key: &str) -> Result<()> {
        let _ = key;
        Ok(())
    }
}

/// The first row of an answer, if any.
pub fn first(rows: Vec<Row>) -> Option<Row> {
    rows.into_iter().next()
}
