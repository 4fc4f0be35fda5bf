//! The evidence log (SPEC 3.4): one append-only file per batch, `<state>/audit/<batch>.jsonl`, one
//! JSON record per line for every request payrun sends, every answer it receives, every state
//! change and every operator action. Each record holds the SHA-256 of the line before it (the first
//! one, of `payrun audit <batch id>`), so an edited, removed or reordered record is detected; the
//! journal keeps the count and the hash of the last record (`batches.audit_n`, `audit_head`), so a
//! changed or removed *last* record is detected too.
//!
//! This module owns the record format, the chain and the file. The log is made durable (written
//! and `fdatasync`ed) before the journal change it explains is committed: the journal's writer and
//! every other journal write call [`Log::append`] first. It never holds a secret or a token: the
//! records are built from the row, the gateway's redacted message and code, and the operator's
//! words. The file is created readable by its owner only.
//!
//! A process killed in the middle of an append leaves a torn last line; the next [`Log::open`]
//! cuts it off and says so in a `recovered` record (nothing in the journal depends on a record
//! that was not whole: the journal change it explained was never committed).

pub mod verify;

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// One record of the evidence log. Fields that do not apply are left out of the line.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Position in the log, from 1.
    #[serde(default)]
    pub n: u64,
    /// When it happened (RFC 3339, UTC).
    #[serde(default)]
    pub at: String,
    /// `batch`, `request`, `answer`, `state`, `action`, `recovered`.
    pub kind: String,
    /// The row's line in the input file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "ref")]
    pub reference: Option<String>,
    /// `payout`, `status`, `token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call: Option<String>,
    /// The id a status inquiry asked about (order id or reference).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asked: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<String>,
    /// HTTP status of an answer (absent: no HTTP answer, e.g. a timeout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<u16>,
    /// The gateway's code, or the row's code after a state change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utr: Option<String>,
    /// A state change: from and to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// A `recovered` record: these records were written but never committed to the journal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uncommitted_from: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uncommitted_to: Option<u64>,
    /// SHA-256 (hex) of the previous line.
    #[serde(default)]
    pub prev: String,
}

impl Record {
    pub fn new(kind: &str) -> Record {
        Record { kind: kind.to_string(), ..Record::default() }
    }

    /// The same record with a state change.
    pub fn with_change(mut self, from: &str, to: &str, code: Option<&str>, message: Option<&str>) -> Record {
        self.from = Some(from.to_string());
        self.to = Some(to.to_string());
        if self.code.is_none() {
            self.code = code.map(str::to_string);
        }
        if self.message.is_none() {
            self.message = message.map(str::to_string);
        }
        self
    }
}

/// `PAYRUN_EVIDENCE_LOG=off` writes no evidence log: for the benchmark's side-by-side figure only
/// (P3 with and without the log). It cannot hide anything: `payrun audit --verify` then finds the
/// journal's rows in states no record explains, and fails.
fn disabled() -> bool {
    static OFF: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *OFF.get_or_init(|| std::env::var("PAYRUN_EVIDENCE_LOG").is_ok_and(|v| v.eq_ignore_ascii_case("off")))
}

/// The hash a batch's first record points back to.
pub fn genesis(batch: &str) -> String {
    hex::encode(Sha256::digest(format!("payrun audit {batch}").as_bytes()))
}

/// The hash of one line (without its newline).
pub fn line_hash(line: &[u8]) -> String {
    hex::encode(Sha256::digest(line))
}

/// Where a batch's evidence log lives.
pub fn path_of(state: &Path, batch: &str) -> PathBuf {
    state.join("audit").join(format!("{batch}.jsonl"))
}

/// The position of the log's last record: how many there are, and the last one's hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    pub n: u64,
    pub hash: String,
}

/// One record as the log holds it: its number, its line (JSON, no newline) and that line's hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EvidenceLine {
    pub n: u64,
    pub line: String,
    pub hash: String,
}

/// Where a log's records go: a file beside the SQLite journal, or the journal's database in team
/// mode (SPEC 8.1), where they are written in the same transaction as the journal change they
/// explain (so a record is never ahead of the journal, nor behind it).
enum Sink {
    File {
        file: File,
        path: PathBuf,
    },
    /// Records numbered and chained, waiting for [`Log::take_pending`] (the journal inserts them).
    Db {
        pending: Vec<EvidenceLine>,
    },
}

/// An evidence log open for appending: the chain (numbering, each record's hash of the one before)
/// is the same whatever the sink.
pub struct Log {
    sink: Sink,
    head: Head,
    /// Team mode: the database role every record is made by, when it names nobody else (SPEC 8.2:
    /// the role is recorded with every evidence record).
    role: Option<String>,
}

impl Log {
    /// Opens (creating, owner-only) the log of `batch` under `state` to continue it after the
    /// journal's last committed record `anchor` (none when the journal knows no record yet).
    ///
    /// Reads only the log's tail when it ends at the anchor (the usual case), so opening the log
    /// of a million-row batch costs no more than a small one. A torn last line (a process killed
    /// mid-append) is cut off; records after the anchor (written, but their journal change never
    /// committed: the process stopped in between) are marked as such by a `recovered` record, so
    /// verification does not count them; a log that does not continue from the anchor at all (it
    /// was changed or replaced) is said so too, and continued.
    pub fn open(state: &Path, batch: &str, anchor: Option<&Head>) -> std::io::Result<Log> {
        let path = path_of(state, batch);
        if let Some(dir) = path.parent() {
            crate::files::create_private_dir(dir)?;
        }
        let mut file = OpenOptions::new().read(true).append(true).create(true).mode(0o600).open(&path)?;
        let len = file.metadata()?.len();
        // The tail: enough to hold the anchor's line and what may follow it.
        let window = 8 << 20;
        let start = len.saturating_sub(window);
        let mut tail = Vec::with_capacity((len - start) as usize);
        file.seek(SeekFrom::Start(start))?;
        std::io::Read::read_to_end(&mut (&file), &mut tail)?;
        let complete = tail.iter().rposition(|b| *b == b'\n').map(|p| p + 1).unwrap_or(0);
        let torn = (tail.len() - complete) as u64;
        // Whole lines of the window (the first may be cut when the window starts mid-file).
        let lines: Vec<&[u8]> = tail[..complete].split(|b| *b == b'\n').filter(|l| !l.is_empty()).collect();
        let lines: &[&[u8]] = if start > 0 && !lines.is_empty() { &lines[1..] } else { &lines };
        let mut notes: Vec<Record> = Vec::new();
        if torn > 0 {
            file.set_len(len - torn)?;
            let mut r = Record::new("recovered");
            r.detail =
                Some(format!("a torn last line of {torn} bytes (a process killed while writing it) was cut off"));
            notes.push(r);
        }
        let last_hash = lines.last().map(|l| line_hash(l));
        let head = match anchor {
            None if lines.is_empty() && start == 0 => Head { n: 0, hash: genesis(batch) },
            Some(a) if last_hash.as_deref() == Some(a.hash.as_str()) => a.clone(),
            Some(a) if a.n == 0 && lines.is_empty() && start == 0 => a.clone(),
            _ => {
                // Records after the anchor, or no anchor where there are records: find where the
                // committed part ends.
                let after = anchor.and_then(|a| {
                    lines.iter().rposition(|l| line_hash(l) == a.hash).map(|i| (a.n, lines.len() - i - 1))
                });
                let total = match after {
                    Some((n, k)) => n + k as u64,
                    None => count_lines(&path)?,
                };
                let committed = match (anchor, after) {
                    (Some(a), Some(_)) | (Some(a), None) if a.n > 0 => a.n,
                    _ => 0,
                };
                let mut r = Record::new("recovered");
                match (anchor, after) {
                    (Some(a), None) if a.n > 0 => {
                        r.detail = Some(format!(
                            "the log does not continue from the journal's last record (record {}): it was changed or replaced",
                            a.n
                        ));
                    }
                    _ => {
                        r.uncommitted_from = Some(committed + 1);
                        r.uncommitted_to = Some(total);
                        r.detail = Some(format!(
                            "records {}..{total} were written, but the journal change they explain was never committed (the process stopped in between)",
                            committed + 1
                        ));
                    }
                }
                if total > committed {
                    notes.push(r);
                }
                let hash = if total == 0 { genesis(batch) } else { last_hash.unwrap_or_else(|| genesis(batch)) };
                Head { n: total, hash }
            }
        };
        file.seek(SeekFrom::End(0))?;
        let mut log = Log { sink: Sink::File { file, path }, head, role: None };
        if !notes.is_empty() {
            log.append(&mut notes)?;
        }
        Ok(log)
    }

    /// A log kept in the journal's database (team mode), continuing after `anchor` (none: a new
    /// log). The records and the anchor commit together, so the anchor is always the log's head.
    pub fn in_db(batch: &str, anchor: Option<&Head>, role: &str) -> Log {
        let head = anchor.cloned().unwrap_or_else(|| Head { n: 0, hash: genesis(batch) });
        Log { sink: Sink::Db { pending: Vec::new() }, head, role: Some(role.to_string()) }
    }

    /// The log's file (none in the database).
    pub fn path(&self) -> Option<&Path> {
        match &self.sink {
            Sink::File { path, .. } => Some(path),
            Sink::Db { .. } => None,
        }
    }

    /// Team mode: continues the chain after `head`, the head the database holds now (another
    /// process may have appended since this log was opened). Records appended but never inserted
    /// are dropped.
    pub fn continue_from(&mut self, head: Head) {
        self.head = head;
        if let Sink::Db { pending } = &mut self.sink {
            pending.clear();
        }
    }

    /// The records appended since the last call, for the journal to insert in the transaction
    /// that commits the changes they explain (empty for a file log: its records are on disk).
    pub fn take_pending(&mut self) -> Vec<EvidenceLine> {
        match &mut self.sink {
            Sink::File { .. } => Vec::new(),
            Sink::Db { pending } => std::mem::take(pending),
        }
    }

    pub fn head(&self) -> &Head {
        &self.head
    }

    /// Appends records (numbering and chaining them, stamping the time when missing): to a file,
    /// durable before this returns; to the database, held for [`Log::take_pending`].
    pub fn append(&mut self, records: &mut [Record]) -> std::io::Result<()> {
        let to_file = matches!(self.sink, Sink::File { .. });
        if records.is_empty() || (to_file && disabled()) {
            return Ok(());
        }
        let mut buf = Vec::with_capacity(records.len() * 256);
        let mut lines = Vec::new();
        let now = crate::journal::now();
        for r in records.iter_mut() {
            r.n = self.head.n + 1;
            if r.at.is_empty() {
                r.at = now.clone();
            }
            if r.operator.is_none() {
                r.operator = self.role.clone();
            }
            r.prev = std::mem::take(&mut self.head.hash);
            let start = buf.len();
            serde_json::to_writer(&mut buf, &*r).map_err(std::io::Error::other)?;
            self.head.hash = line_hash(&buf[start..]);
            self.head.n = r.n;
            if !to_file {
                let line = String::from_utf8(buf[start..].to_vec()).map_err(std::io::Error::other)?;
                lines.push(EvidenceLine { n: r.n, line, hash: self.head.hash.clone() });
            }
            buf.push(b'\n');
        }
        match &mut self.sink {
            Sink::File { file, .. } => {
                file.write_all(&buf)?;
                file.sync_data()
            }
            Sink::Db { pending } => {
                pending.extend(lines);
                Ok(())
            }
        }
    }
}

/// Calls `f` with every line of the log (without its newline) and its position from 1, streaming:
/// a log of millions of records is read in constant memory. `Ok(false)` from `f` stops early.
/// Returns whether the file ends with a torn (incomplete) line.
pub(crate) fn each_line(
    path: &std::path::Path,
    mut f: impl FnMut(u64, &[u8]) -> Result<bool, crate::journal::JournalError>,
) -> Result<bool, crate::journal::JournalError> {
    use std::io::BufRead;
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e.into()),
    };
    let mut reader = std::io::BufReader::with_capacity(1 << 16, file);
    let mut line = Vec::with_capacity(512);
    let mut n = 0u64;
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(false);
        }
        if line.last() != Some(&b'\n') {
            return Ok(true);
        }
        n += 1;
        if !f(n, &line[..line.len() - 1])? {
            return Ok(false);
        }
    }
}

/// Complete lines in a file (a full scan; only when the tail does not tell).
fn count_lines(path: &Path) -> std::io::Result<u64> {
    let mut reader = BufReader::new(File::open(path)?);
    let mut n = 0u64;
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(n);
        }
        if line.last() == Some(&b'\n') {
            n += 1;
        }
    }
}

/// A log's lines as read (without their newlines), and whether the last one was torn.
#[derive(Debug, Default)]
pub struct Lines {
    pub lines: Vec<Vec<u8>>,
    /// The file ends without a newline: its last record is incomplete (not in `lines`).
    pub torn: bool,
}

/// Reads every line of a log (for verification and a row's story).
pub fn read_lines(state: &Path, batch: &str) -> std::io::Result<Lines> {
    let path = path_of(state, batch);
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Lines::default()),
        Err(e) => return Err(e),
    };
    let mut out = Lines::default();
    let mut reader = BufReader::new(file);
    loop {
        let mut line = Vec::new();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        if line.last() == Some(&b'\n') {
            line.pop();
            out.lines.push(line);
        } else {
            out.torn = true;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_chain_and_a_torn_tail_is_cut_and_said() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut log = Log::open(dir.path(), "abc123", None).expect("open");
        let mut recs = [Record::new("batch"), Record::new("state")];
        log.append(&mut recs).expect("append");
        assert_eq!((recs[0].n, recs[1].n), (1, 2));
        assert_eq!(recs[0].prev, genesis("abc123"));
        let lines = read_lines(dir.path(), "abc123").expect("read").lines;
        assert_eq!(recs[1].prev, line_hash(&lines[0]));
        assert_eq!(log.head().hash, line_hash(&lines[1]));
        drop(log);
        // A torn write.
        let path = path_of(dir.path(), "abc123");
        let mut f = OpenOptions::new().append(true).open(&path).expect("open");
        f.write_all(b"{\"n\":3,\"kind\":\"sta").expect("write");
        drop(f);
        let anchor = Head { n: 2, hash: line_hash(&lines[1]) };
        let log = Log::open(dir.path(), "abc123", Some(&anchor)).expect("reopen");
        assert_eq!(log.head().n, 3);
        let lines = read_lines(dir.path(), "abc123").expect("read").lines;
        assert_eq!(lines.len(), 3);
        let last: Record = serde_json::from_slice(&lines[2]).expect("json");
        assert_eq!(last.kind, "recovered");
        assert_eq!(last.prev, line_hash(&lines[1]));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777, 0o600);
        drop(log);
        // Two records written after the journal's last committed one (anchor at 2): marked.
        let anchor = Head { n: 2, hash: line_hash(&lines[1]) };
        let log = Log::open(dir.path(), "abc123", Some(&anchor)).expect("reopen");
        assert_eq!(log.head().n, 4);
        let lines = read_lines(dir.path(), "abc123").expect("read").lines;
        let mark: Record = serde_json::from_slice(&lines[3]).expect("json");
        assert_eq!((mark.uncommitted_from, mark.uncommitted_to), (Some(3), Some(3)));
        // At the anchor: nothing to say.
        let anchor = log.head().clone();
        drop(log);
        let log = Log::open(dir.path(), "abc123", Some(&anchor)).expect("reopen");
        assert_eq!(log.head(), &anchor);
        assert_eq!(read_lines(dir.path(), "abc123").expect("read").lines.len(), 4);
    }
}
