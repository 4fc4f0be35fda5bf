//! A duplicate index on disk for `run` (see [`crate::input::rules::SeenIndex`]): the first line of
//! every row key and reference, in a scratch SQLite file, so that validating a million-row file
//! for payment does not hold a million keys in memory.
//!
//! The file is unlinked as soon as it is open: it needs no cleanup, even after `kill -9`. It holds
//! hashes and line numbers only, nothing about payees, and is never synced: losing it loses nothing.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};

use super::Result;
use crate::input::rules::{Key, KeyKind, SeenIndex};

/// Rows between commits of the scratch file (it has no journal, so a commit is cheap).
const BATCH: u32 = 50_000;

pub struct DiskIndex {
    conn: Connection,
    pending: u32,
    failed: Option<String>,
}

impl DiskIndex {
    /// Creates the scratch file under `<dir>/tmp` and unlinks it at once.
    pub fn create(dir: &Path) -> Result<DiskIndex> {
        let tmp = dir.join("tmp");
        crate::files::create_private_dir(&tmp)?;
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        let path = tmp.join(format!("seen-{}-{nanos}.sqlite3", std::process::id()));
        let conn = Connection::open(&path)?;
        let _ = std::fs::remove_file(&path);
        conn.execute_batch(
            "PRAGMA journal_mode = OFF;
             PRAGMA synchronous = OFF;
             PRAGMA locking_mode = EXCLUSIVE;
             PRAGMA cache_size = -2048;
             PRAGMA temp_store = FILE;
             CREATE TABLE seen (k BLOB PRIMARY KEY, line INTEGER NOT NULL) WITHOUT ROWID;
             BEGIN;",
        )?;
        Ok(DiskIndex { conn, pending: 0, failed: None })
    }

    fn lookup(&mut self, kind: KeyKind, key: Key, line: u32) -> Result<Option<u32>> {
        let mut k = [0u8; 13];
        k[0] = kind as u8;
        for (i, w) in key.iter().enumerate() {
            k[1 + i * 4..5 + i * 4].copy_from_slice(&w.to_le_bytes());
        }
        let inserted = self
            .conn
            .prepare_cached("INSERT OR IGNORE INTO seen (k, line) VALUES (?1, ?2)")?
            .execute(params![&k[..], line])?;
        if inserted == 1 {
            self.pending += 1;
            if self.pending >= BATCH {
                self.conn.execute_batch("COMMIT; BEGIN;")?;
                self.pending = 0;
            }
            return Ok(None);
        }
        let first: Option<u32> = self
            .conn
            .prepare_cached("SELECT line FROM seen WHERE k = ?1")?
            .query_row(params![&k[..]], |r| r.get(0))
            .optional()?;
        Ok(first)
    }
}

impl SeenIndex for DiskIndex {
    fn first_or_insert(&mut self, kind: KeyKind, key: Key, line: u32) -> Option<u32> {
        if self.failed.is_some() {
            return None;
        }
        match self.lookup(kind, key, line) {
            Ok(found) => found,
            Err(e) => {
                // The scanner stops the file on this (see `failure`): no row is judged without it.
                self.failed = Some(e.to_string());
                None
            }
        }
    }

    fn failure(&self) -> Option<String> {
        self.failed.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_first_lines_and_leaves_no_file() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut idx = DiskIndex::create(dir.path()).expect("index");
        for i in 0..120_000u32 {
            assert_eq!(idx.first_or_insert(KeyKind::Row, [i, i ^ 7, 3], i + 2), None);
        }
        assert_eq!(idx.first_or_insert(KeyKind::Row, [5, 5 ^ 7, 3], 999), Some(7));
        assert_eq!(idx.first_or_insert(KeyKind::Reference, [5, 5 ^ 7, 3], 999), None, "kinds are separate");
        let left: Vec<_> = std::fs::read_dir(dir.path().join("tmp")).expect("dir").collect();
        assert!(left.is_empty(), "scratch file unlinked at once");
    }
}
