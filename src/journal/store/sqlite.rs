//! The SQLite backend: the journal file in the state directory (SPEC 1, 3.4). WAL with
//! `synchronous=FULL`: a commit survives a power cut, not only a killed process. Statements are
//! prepared once per connection and cached; `$N` parameters are rewritten to SQLite's `?N` once per
//! distinct statement text.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, ToSql};

use super::{Backend, Result, Row, Store, StoreError, Value};

/// A connection to a journal file.
pub struct SqliteStore {
    conn: Connection,
    /// `$N` → `?N` rewrites, by the statement's text as the journal wrote it.
    rewritten: HashMap<String, String>,
}

impl ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Value::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Value::Int(i) => ToSqlOutput::Borrowed(ValueRef::Integer(*i)),
            Value::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
        })
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> StoreError {
        use rusqlite::ErrorCode;
        match &e {
            rusqlite::Error::SqliteFailure(f, _) => match f.code {
                ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => StoreError::Busy(e.to_string()),
                ErrorCode::ConstraintViolation => StoreError::Constraint(e.to_string()),
                _ => StoreError::Other(e.to_string()),
            },
            _ => StoreError::Other(e.to_string()),
        }
    }
}

/// `$1` → `?1` outside quoted text (SQLite numbers `$name` parameters by first appearance, which
/// would bind `$2` first when it comes first; `?N` is positional).
fn rewrite(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut quoted = false;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\'' {
            quoted = !quoted;
        }
        if c == '$' && !quoted && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('?');
        } else {
            out.push(c);
        }
    }
    out
}

impl SqliteStore {
    /// Opens (or creates) the database file at `path` with payrun's settings: WAL, fsync on
    /// every commit, foreign keys, a 30 s busy timeout.
    pub fn open(path: &Path) -> Result<SqliteStore> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(30))?;
        // Chunked statements come in up to a hundred shapes (one per chunk size): keep them all.
        conn.set_prepared_statement_cache_capacity(256);
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        Ok(SqliteStore { conn, rewritten: HashMap::new() })
    }

    fn sql(&mut self, sql: &str) -> String {
        if let Some(s) = self.rewritten.get(sql) {
            return s.clone();
        }
        let s = rewrite(sql);
        self.rewritten.insert(sql.to_string(), s.clone());
        s
    }
}

fn read(v: ValueRef<'_>) -> Result<Value> {
    Ok(match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Int(i),
        ValueRef::Text(t) => Value::Text(
            std::str::from_utf8(t)
                .map_err(|e| StoreError::Corrupt(format!("text that is not UTF-8: {e}")))?
                .to_string(),
        ),
        ValueRef::Real(r) => return Err(StoreError::Corrupt(format!("a floating-point value ({r}) in the journal"))),
        ValueRef::Blob(_) => return Err(StoreError::Corrupt("a binary value in the journal".into())),
    })
}

impl Store for SqliteStore {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64> {
        let sql = self.sql(sql);
        let n = self.conn.prepare_cached(&sql)?.execute(rusqlite::params_from_iter(params))?;
        Ok(n as u64)
    }

    fn execute_many(&mut self, sql: &str, params: &[Vec<Value>]) -> Result<Vec<u64>> {
        let sql = self.sql(sql);
        let mut st = self.conn.prepare_cached(&sql)?;
        params.iter().map(|p| Ok(st.execute(rusqlite::params_from_iter(p))? as u64)).collect()
    }

    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>> {
        let sql = self.sql(sql);
        let mut st = self.conn.prepare_cached(&sql)?;
        let names: Arc<[String]> = st.column_names().map(|s| s.to_string()).collect();
        let n = names.len();
        let mut rows = st.query(rusqlite::params_from_iter(params))?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let mut values = Vec::with_capacity(n);
            for i in 0..n {
                values.push(read(r.get_ref(i)?)?);
            }
            out.push(Row::new(Arc::clone(&names), values));
        }
        Ok(out)
    }

    fn execute_batch(&mut self, sql: &str) -> Result<()> {
        self.conn.execute_batch(sql)?;
        Ok(())
    }

    fn begin(&mut self) -> Result<()> {
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_rewritten_outside_quotes_only() {
        assert_eq!(rewrite("SELECT * FROM t WHERE a = $2 AND b = $1"), "SELECT * FROM t WHERE a = ?2 AND b = ?1");
        assert_eq!(rewrite("SELECT '$1' || $1"), "SELECT '$1' || ?1");
        assert_eq!(rewrite("SELECT $x"), "SELECT $x");
    }

    #[test]
    fn values_round_trip() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut s = SqliteStore::open(&dir.path().join("j.sqlite3")).expect("open");
        s.execute_batch("CREATE TABLE t (a BIGINT, b TEXT)").expect("table");
        s.execute_many(
            "INSERT INTO t (a, b) VALUES ($1, $2)",
            &[crate::vals![7i64, "x"], crate::vals![None::<i64>, "y"]],
        )
        .expect("insert");
        let rows = s.query("SELECT a, b FROM t WHERE b <> $1 ORDER BY b", &crate::vals!["z"]).expect("query");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].get::<i64>("a").expect("a"), 7);
        assert_eq!(rows[1].get::<Option<i64>>("a").expect("a"), None);
        assert_eq!(rows[1].get::<String>("b").expect("b"), "y");
        assert!(rows[0].get::<String>("a").is_err(), "types are checked");
    }
}
