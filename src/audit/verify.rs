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

use super::{Record, genesis, line_hash};
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

/// Verifies the evidence log of `batch` against `journal`. Two streaming passes over the log (the
/// chain and the anchor, then the replay of committed state changes): memory holds one state per
/// row, not the log.
pub fn verify(journal: &Journal, batch: &Batch) -> Result<Result<Verified, Finding>, JournalError> {
    let anchor = journal.audit_anchor(&batch.id)?;
    // 1. Numbering, order and the chain; the anchor's record; the ranges marked uncommitted.
    let mut finding: Option<Finding> = None;
    let mut prev = genesis(&batch.id);
    let mut total = 0u64;
    let mut anchor_hash: Option<String> = None;
    let mut skip: Vec<(u64, u64)> = Vec::new();
    let torn = journal.each_evidence_line(&batch.id, |pos, line| {
        total = pos;
        let r: Record = match serde_json::from_slice(line) {
            Ok(r) => r,
            Err(e) => {
                finding = Some(Finding { record: pos, what: format!("record {pos} is not a valid record ({e})") });
                return Ok(false);
            }
        };
        if r.n != pos {
            finding = Some(misplaced(journal, &batch.id, pos, r.n)?);
            return Ok(false);
        }
        if r.prev != prev {
            finding = Some(if pos == 1 {
                Finding {
                    record: 1,
                    what: "record 1 does not start this batch's chain (changed, or another batch's log)".into(),
                }
            } else {
                Finding {
                    record: pos - 1,
                    what: format!("record {} was changed: its hash no longer matches what record {pos} holds", pos - 1),
                }
            });
            return Ok(false);
        }
        prev = line_hash(line);
        if anchor.as_ref().is_some_and(|a| a.n == pos) {
            anchor_hash = Some(prev.clone());
        }
        if let (Some(a), Some(b)) = (r.uncommitted_from, r.uncommitted_to) {
            skip.push((a, b));
        }
        Ok(true)
    })?;
    if let Some(f) = finding {
        return Ok(Err(f));
    }
    if torn {
        return Ok(Err(Finding { record: total + 1, what: "the last record is incomplete (no end of line)".into() }));
    }
    // 2. The anchor.
    let committed = match &anchor {
        None => 0,
        Some(a) if a.n > total => {
            return Ok(Err(Finding {
                record: total + 1,
                what: format!("records {}..{} were removed (the journal knows {} records)", total + 1, a.n, a.n),
            }));
        }
        Some(a) if anchor_hash.as_deref() != Some(a.hash.as_str()) => {
            return Ok(Err(Finding {
                record: a.n,
                what: format!("record {} (the last one the journal committed) was changed", a.n),
            }));
        }
        Some(a) => a.n,
    };
    // 3. Replay the committed state changes.
    let counted = |n: u64| n <= committed && !skip.iter().any(|(a, b)| (*a..=*b).contains(&n));
    let mut last: HashMap<u64, (RowState, u64)> = HashMap::new();
    journal.each_evidence_line(&batch.id, |pos, line| {
        if counted(pos) {
            if let Ok(r) = serde_json::from_slice::<Record>(line) {
                if let (Some(l), Some(to)) = (r.line, r.to.as_deref().and_then(RowState::parse)) {
                    last.insert(l, (to, r.n));
                }
            }
        }
        Ok(pos < committed)
    })?;
    let mut rows = 0u64;
    let mut disagreement: Option<Finding> = None;
    journal
        .for_each_row(&batch.id, |row, _| {
            if disagreement.is_some() {
                return Ok(());
            }
            rows += 1;
            let state = row.status.state();
            let initial = if state == RowState::Invalid { RowState::Invalid } else { RowState::Ready };
            let (logged, n) = last.get(&row.line).copied().unwrap_or((initial, 0));
            if logged != state {
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

/// Names what is wrong where record `want` was expected and record `found` is: reordered (record
/// `want` is further on), removed, or repeated.
fn misplaced(journal: &Journal, batch: &str, want: u64, found: u64) -> Result<Finding, JournalError> {
    let mut at = None;
    journal.each_evidence_line(batch, |pos, line| {
        if pos > want && serde_json::from_slice::<Record>(line).is_ok_and(|r| r.n == want) {
            at = Some(pos);
            return Ok(false);
        }
        Ok(true)
    })?;
    Ok(match at {
        Some(pos) => Finding {
            record: want,
            what: format!("record {want} is out of order (found at position {pos}): records were reordered"),
        },
        None if found > want => Finding {
            record: want,
            what: format!("record {want} was removed (the log goes from {} to {found})", want - 1),
        },
        None => Finding { record: found, what: format!("record {found} appears again at position {want}") },
    })
}

/// One row's records, in order (with whether each was committed), for its story.
pub fn row_records(journal: &Journal, batch: &Batch, line: u64) -> Result<Vec<(Record, bool)>, JournalError> {
    let committed = journal.audit_anchor(&batch.id)?.map(|a| a.n).unwrap_or(0);
    let mut skip: Vec<(u64, u64)> = Vec::new();
    let mut out = Vec::new();
    journal.each_evidence_line(&batch.id, |_, raw| {
        if let Ok(r) = serde_json::from_slice::<Record>(raw) {
            if let (Some(a), Some(b)) = (r.uncommitted_from, r.uncommitted_to) {
                skip.push((a, b));
            }
            // The row's own records, and what a person did to the whole batch (its approvals,
            // confirmations, a cancel): part of every row's story.
            if r.line == Some(line) || (r.line.is_none() && r.kind == "action") {
                out.push(r);
            }
        }
        Ok(true)
    })?;
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
                "→ payout request{}{}{by}{change}",
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
