//! Verifying a batch's evidence log (`payrun audit BATCH --verify`) and reading one row's story
//! from it (`payrun audit BATCH --row LINE`).
//!
//! Verification checks, in order, and names the first bad record:
//! 1. the chain: every line is a record, numbered 1, 2, 3... in order, each holding the hash of the
//!    line before it (the first, of its batch's genesis) — an edited record breaks the next one's
//!    hash, a removed one a number, two swapped ones the order;
//! 2. the anchor: the journal's count and hash of the last committed record match the log, so the
//!    last record cannot be edited or removed either;
//! 3. agreement: replaying the committed state changes gives every row the state the journal has.
//!
//! It only reads; it never repairs anything.

use std::collections::HashMap;

use super::{Record, genesis, line_hash, read_lines};
use crate::journal::{Batch, Journal, JournalError, RowState};

/// The first thing wrong with a log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// The record (its number in the log) found bad, or where the trouble starts.
    pub record: u64,
    pub what: String,
}

/// A log that verified.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verified {
    pub records: u64,
    /// Rows whose journal state the log's replay gave.
    pub rows: u64,
    /// Records written after the journal's last committed one (a run stopped in between): not
    /// counted.
    pub uncommitted: u64,
}

/// Verifies the evidence log of `batch` against `journal`.
pub fn verify(journal: &Journal, batch: &Batch) -> Result<Result<Verified, Finding>, JournalError> {
    let lines = read_lines(journal.dir(), &batch.id)?;
    let bad = |record: u64, what: String| Ok(Err(Finding { record, what }));
    if lines.torn {
        return bad(lines.lines.len() as u64 + 1, "the last record is incomplete (no end of line)".into());
    }
    let mut records: Vec<Record> = Vec::with_capacity(lines.lines.len());
    for (i, line) in lines.lines.iter().enumerate() {
        match serde_json::from_slice::<Record>(line) {
            Ok(r) => records.push(r),
            Err(e) => return bad(i as u64 + 1, format!("record {} is not a valid record ({e})", i + 1)),
        }
    }
    // 1. Numbering and order.
    for (i, r) in records.iter().enumerate() {
        let want = i as u64 + 1;
        if r.n == want {
            continue;
        }
        if let Some(at) = records.iter().position(|x| x.n == want) {
            return bad(
                want,
                format!("record {want} is out of order (found at position {}): records were reordered", at + 1),
            );
        }
        if r.n > want {
            return bad(want, format!("record {want} was removed (the log goes from {} to {})", want - 1, r.n));
        }
        return bad(r.n, format!("record {} appears again at position {want}", r.n));
    }
    // The chain.
    let mut prev = genesis(&batch.id);
    for (i, (r, line)) in records.iter().zip(&lines.lines).enumerate() {
        if r.prev != prev {
            return Ok(Err(if i == 0 {
                Finding {
                    record: 1,
                    what: "record 1 does not start this batch's chain (changed, or another batch's log)".into(),
                }
            } else {
                Finding {
                    record: i as u64,
                    what: format!("record {i} was changed: its hash no longer matches what record {} holds", i + 1),
                }
            }));
        }
        prev = line_hash(line);
    }
    // 2. The anchor.
    let total = records.len() as u64;
    let anchor = journal.audit_anchor(&batch.id)?;
    let committed = match &anchor {
        None => 0,
        Some(a) if a.n > total => {
            return bad(
                total + 1,
                format!("records {}..{} were removed (the journal knows {} records)", total + 1, a.n, a.n),
            );
        }
        Some(a) => {
            if line_hash(&lines.lines[(a.n - 1) as usize]) != a.hash {
                return bad(a.n, format!("record {} (the last one the journal committed) was changed", a.n));
            }
            a.n
        }
    };
    // 3. Replay the committed state changes.
    let mut skip: Vec<(u64, u64)> = Vec::new();
    for r in &records[..committed as usize] {
        if let (Some(a), Some(b)) = (r.uncommitted_from, r.uncommitted_to) {
            skip.push((a, b));
        }
    }
    let counted = |n: u64| n <= committed && !skip.iter().any(|(a, b)| (*a..=*b).contains(&n));
    let mut last: HashMap<u64, (String, u64)> = HashMap::new();
    for r in &records {
        if let (true, Some(line), Some(to)) = (counted(r.n), r.line, &r.to) {
            last.insert(line, (to.clone(), r.n));
        }
    }
    let mut rows = 0u64;
    let mut disagreement: Option<Finding> = None;
    journal
        .for_each_row(&batch.id, |row, _| {
            if disagreement.is_some() {
                return Ok(());
            }
            rows += 1;
            let state = row.status.state();
            let initial = if state == RowState::Invalid { "invalid" } else { "ready" };
            let (logged, n) = last.get(&row.line).map(|(s, n)| (s.as_str(), *n)).unwrap_or((initial, 0));
            if logged != state.as_str() {
                disagreement = Some(Finding {
                    record: n,
                    what: format!(
                        "the row at line {} is {} in the journal, but {} by the log{}",
                        row.line,
                        state,
                        logged,
                        if n > 0 { format!(" (its last record is {n})") } else { " (no record about it)".into() }
                    ),
                });
            }
            Ok(())
        })
        .map_err(|e| JournalError::Corrupt(format!("{e:#}")))?;
    if let Some(f) = disagreement {
        return Ok(Err(f));
    }
    let uncommitted = (total - committed) + skip.iter().map(|(a, b)| b.saturating_sub(*a) + 1).sum::<u64>();
    Ok(Ok(Verified { records: total, rows, uncommitted }))
}

/// One row's records, in order (with whether each was committed), for its story.
pub fn row_records(journal: &Journal, batch: &Batch, line: u64) -> Result<Vec<(Record, bool)>, JournalError> {
    let lines = read_lines(journal.dir(), &batch.id)?;
    let committed = journal.audit_anchor(&batch.id)?.map(|a| a.n).unwrap_or(0);
    let mut skip: Vec<(u64, u64)> = Vec::new();
    let mut out = Vec::new();
    for raw in &lines.lines {
        let Ok(r) = serde_json::from_slice::<Record>(raw) else { continue };
        if let (Some(a), Some(b)) = (r.uncommitted_from, r.uncommitted_to) {
            skip.push((a, b));
        }
        if r.line == Some(line) {
            out.push(r);
        }
    }
    Ok(out
        .into_iter()
        .map(|r| {
            let ok = r.n <= committed && !skip.iter().any(|(a, b)| (*a..=*b).contains(&r.n));
            (r, ok)
        })
        .collect())
}

/// One record as a line of a row's story, for a person: what happened, without JSON.
pub fn describe(r: &Record) -> String {
    let change = match (&r.from, &r.to) {
        (Some(f), Some(t)) if f != t => format!(" ({} → {})", f.replace('_', " "), t.replace('_', " ")),
        _ => String::new(),
    };
    let code = r.code.as_deref().map(|c| format!("{c} ")).unwrap_or_default();
    let message = r.message.as_deref().unwrap_or("");
    let by = r.operator.as_deref().map(|o| format!(" by {o}")).unwrap_or_default();
    match r.kind.as_str() {
        "request" => match r.call.as_deref() {
            Some("payout") => format!(
                "→ payout request{}{}{change}",
                r.attempt.map(|a| format!(", attempt {a}")).unwrap_or_default(),
                r.amount.as_deref().map(|a| format!(", ₹{a}")).unwrap_or_default()
            ),
            Some("status") => format!("→ status inquiry by {}", r.asked.as_deref().unwrap_or("?")),
            other => format!("→ {} request", other.unwrap_or("?")),
        },
        "answer" => {
            let what = match r.http {
                Some(h) => format!("HTTP {h} {code}{message}"),
                None => format!("no answer: {message}"),
            };
            let utr = r.utr.as_deref().map(|u| format!(", UTR {u}")).unwrap_or_default();
            format!("← {} {}{utr}{change}", r.call.as_deref().unwrap_or("answer"), what.trim_end())
        }
        "state" => match (&r.from, &r.to) {
            (Some(f), Some(t)) => {
                format!("{} → {}{by}: {code}{message}", f.replace('_', " "), t.replace('_', " ")).trim_end().to_string()
            }
            _ => format!("state{by}: {code}{message}"),
        },
        "action" => format!(
            "{}{by}{}{}",
            r.action.as_deref().unwrap_or("action"),
            r.reason.as_deref().map(|x| format!(": {x}")).unwrap_or_default(),
            r.detail.as_deref().map(|x| format!(" ({x})")).unwrap_or_default()
        ),
        other => format!("{other}: {}", r.detail.as_deref().unwrap_or(message)),
    }
}
