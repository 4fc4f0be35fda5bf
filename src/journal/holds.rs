//! Across batches (SPEC 3.2 and 3.3): which valid rows of a new batch wait for a person before
//! anything is sent, because another batch of the journal pays the same payee (`REPEAT_PAYMENT`),
//! or because the payee's bank account changed since it was last paid (`PAYEE_CHANGED`).
//!
//! The batch id protects one file; people also pay the same rows through other files (a file saved
//! again with one amount corrected while its batch is open, the first lines of a file already paid,
//! a retry file with rows that were paid). So every valid row is compared with the rows of every
//! other batch by payee (account digits without leading zeros, IFSC: the `payee` column) and
//! amount, and by payee id (the `payee_id` column).
//!
//! This module owns those look-ups. Each is one indexed probe per new row (`rows_by_payee`,
//! `rows_by_payee_id`), so a million-row journal costs what a small one does, and nothing per row is
//! kept in memory beyond two integers per held row. Rows change only through the lifecycle
//! ([`Event::Hold`], [`Event::Release`]). It never sends anything, never holds a row twice (holds
//! are made once, when the batch is stored), and never releases a `PAYEE_CHANGED` row by itself:
//! only `approve --rows` naming its line does.

use std::time::Duration;

use rusqlite::{OptionalExtension, params};

use super::lifecycle::{self, Event, PAYEE_CHANGED, REPEAT_PAYMENT, RowState, RowStatus};
use super::writer::Change;
use super::{Batch, Journal, Result, now, write_audited};
use crate::audit::Record;
use crate::money::Amount;

/// The rules' settings.
#[derive(Clone, Copy, Debug)]
pub struct HoldRules {
    /// SPEC 3.2 (c): the same amount paid to the same payee this recently is a repeat (a monthly
    /// salary of the same amount is not; a second run in the same pay cycle is). Default 20 days.
    pub repeat_window: Duration,
}

impl Default for HoldRules {
    fn default() -> Self {
        HoldRules { repeat_window: Duration::from_secs(20 * 86_400) }
    }
}

/// A row held or released, for the operator's screen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldRow {
    pub seq: u64,
    pub line: u64,
    pub code: &'static str,
    pub message: String,
}

/// What a hold pass did: how many rows per code, and the first few of them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HoldReport {
    pub repeat_payment: u64,
    pub payee_changed: u64,
    /// The first rows (at most [`HoldReport::EXAMPLES`]), in file order per code.
    pub examples: Vec<HeldRow>,
}

impl HoldReport {
    pub const EXAMPLES: usize = 20;

    pub fn total(&self) -> u64 {
        self.repeat_payment + self.payee_changed
    }

    fn add(&mut self, row: HeldRow) {
        match row.code {
            PAYEE_CHANGED => self.payee_changed += 1,
            _ => self.repeat_payment += 1,
        }
        if self.examples.len() < Self::EXAMPLES {
            self.examples.push(row);
        }
    }
}

/// SQL: whether row `o` of another batch holds row `n` (SPEC 3.2 a, b, c), judged at time `at`
/// (an SQL expression giving RFC 3339 UTC text), with `window` the repeat window in seconds (an
/// SQL expression, usually a parameter).
fn holder_condition(at: &str, window: &str) -> String {
    format!(
        "o.payee = n.payee AND o.batch_id <> n.batch_id AND (
            o.state IN ('held', 'ready', 'sending', 'accepted', 'in_doubt', 'pending')
            OR (o.state = 'success' AND o.completed_at >= strftime('%Y-%m-%dT%H:%M:%fZ', {at}, '-1 day'))
            OR (o.state = 'success' AND o.amount_paise = n.amount_paise
                AND o.completed_at >= strftime('%Y-%m-%dT%H:%M:%fZ', {at}, '-' || {window} || ' seconds')))"
    )
}

/// Masks an account number to its last four digits: `XXXXXXXX4321`.
pub fn mask_account(account: &str) -> String {
    let digits: Vec<char> = account.chars().collect();
    let keep = digits.len().min(4);
    let hidden = digits.len() - keep;
    format!("{}{}", "X".repeat(hidden), digits[hidden..].iter().collect::<String>())
}

/// The date part of an RFC 3339 time (`2026-11-24`), or the text as it is.
fn date_of(t: &str) -> &str {
    t.get(..10).unwrap_or(t)
}

/// Rows held per page of the hold passes: memory stays flat however many rows are held.
const HOLD_PAGE: i64 = 4096;

/// Describes the last payment to a payee id (by rowid) for a `PAYEE_CHANGED` message.
fn describe_change(journal: &Journal, holder: i64) -> Result<String> {
    let (account, paid_at, payee_id): (String, String, String) = journal.conn().query_row(
        "SELECT account, COALESCE(completed_at, ''), payee_id FROM rows WHERE rowid = ?1",
        [holder],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    Ok(format!(
        "payee {payee_id} was last paid to another bank account ({}, on {}): a changed bank account is released only by approving this line",
        mask_account(&account),
        date_of(&paid_at)
    ))
}

/// Describes the holder row (by rowid) for a `REPEAT_PAYMENT` message.
fn describe_repeat(journal: &Journal, holder: i64) -> Result<String> {
    let conn = journal.conn();
    let found = conn
        .prepare_cached(
            "SELECT o.batch_id, b.file_path, o.line, o.amount_paise, o.state,
                    COALESCE(o.completed_at, o.submitted_at, b.created_at), b.cancelled_at
             FROM rows o JOIN batches b ON b.id = o.batch_id WHERE o.rowid = ?1",
        )?
        .query_row([holder], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, Option<i64>>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?,
            ))
        })
        .optional()?;
    let Some((batch, file, line, paise, state, at)) = found else {
        return Ok("another batch pays this payee".into());
    };
    let amount = paise.map(|p| format!("₹{}", Amount::from_paise(p).to_indian())).unwrap_or_else(|| "?".into());
    let how = match RowState::parse(&state) {
        Some(RowState::Success) => format!("paid {}", date_of(&at)),
        Some(s) => format!("{} since {}, not finished", s.result_status(), date_of(&at)),
        None => state,
    };
    let file = std::path::Path::new(&file).file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or(file);
    Ok(format!("same payee as batch {batch} ({file}) line {line}, {amount}, {how}: a repeat payment?"))
}

impl Journal {
    /// Holds the ready rows of `batch` that another batch's rows hold (SPEC 3.2) or whose payee id
    /// was last paid to another account (SPEC 3.3). Runs inside the caller's transaction when there
    /// is one (the batch is stored and held atomically, so a crash can never leave a stored batch
    /// whose repeats were not held).
    pub fn hold_rows(&self, batch: &Batch, rules: &HoldRules) -> Result<HoldReport> {
        let mut report = HoldReport::default();
        if !self.has_other_batches(&batch.id)? {
            return Ok(report);
        }
        let at = now();
        let mut log = self.open_audit(&batch.id)?;
        // SPEC 3.3 first: a changed bank account is approved one by one, whatever else applies.
        // Both passes go a page of rows at a time, so memory stays flat when every row is held.
        let changed_sql = "SELECT n.seq, n.line, o.rowid FROM rows n
             JOIN rows o ON o.rowid = (
                 SELECT o2.rowid FROM rows o2
                 WHERE o2.payee_id = n.payee_id AND o2.state = 'success' AND o2.batch_id <> n.batch_id
                 ORDER BY o2.completed_at DESC LIMIT 1)
             WHERE n.batch_id = ?1 AND n.state = 'ready' AND n.payee_id <> '' AND (o.payee <> n.payee OR o.ifsc <> n.ifsc)
               AND n.seq > ?2 ORDER BY n.seq LIMIT ?3";
        let repeat_sql = format!(
            "SELECT n.seq, n.line, (SELECT o.rowid FROM rows o WHERE {} ORDER BY o.completed_at DESC LIMIT 1) AS holder
             FROM rows n WHERE n.batch_id = ?1 AND n.state = 'ready' AND holder IS NOT NULL AND n.seq > ?4
             ORDER BY n.seq LIMIT ?5",
            holder_condition("?2", "?3")
        );
        for code in [PAYEE_CHANGED, REPEAT_PAYMENT] {
            let mut after = 0u64;
            loop {
                let page: Vec<(u64, u64, i64)> = if code == PAYEE_CHANGED {
                    self.conn()
                        .prepare_cached(changed_sql)?
                        .query_map(params![batch.id, after as i64, HOLD_PAGE], |r| {
                            Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64, r.get(2)?))
                        })?
                        .collect::<rusqlite::Result<_>>()?
                } else {
                    self.conn()
                        .prepare_cached(&repeat_sql)?
                        .query_map(
                            params![batch.id, at, rules.repeat_window.as_secs() as i64, after as i64, HOLD_PAGE],
                            |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64, r.get(2)?)),
                        )?
                        .collect::<rusqlite::Result<_>>()?
                };
                let Some(&(last, _, _)) = page.last() else { break };
                after = last;
                let mut held = Vec::with_capacity(page.len());
                for (seq, line, holder) in page {
                    let message = match code {
                        PAYEE_CHANGED => describe_change(self, holder)?,
                        _ => describe_repeat(self, holder)?,
                    };
                    held.push(HeldRow { seq, line, code, message });
                }
                self.write_holds(&batch.id, &mut log, &held, &at)?;
                for h in held {
                    report.add(h);
                }
            }
        }
        Ok(report)
    }

    /// Holds `held` (ready rows), each recorded in the evidence log before it is written.
    fn write_holds(&self, batch: &str, log: &mut crate::audit::Log, held: &[HeldRow], at: &str) -> Result<()> {
        let from = RowStatus::new(RowState::Ready);
        let mut changes = Vec::with_capacity(held.len());
        let mut records = Vec::with_capacity(held.len());
        for h in held {
            let to = lifecycle::apply(&from, &Event::Hold { code: h.code.into(), message: h.message.clone() }, at)?;
            let mut r = Record::new("state");
            r.line = Some(h.line);
            records.push(r.with_change("ready", "held", Some(h.code), Some(&h.message)));
            changes.push(Change { seq: h.seq, from: RowState::Ready, to });
        }
        write_audited(self.conn(), log, batch, &mut records, &changes)
    }

    /// `resume` checks a batch's `REPEAT_PAYMENT` rows again: a row none of whose holders remain
    /// (the other batch was cancelled before sending it, or its row proved unpaid) is released. The
    /// time windows are judged at the moment the row was held, so time passing releases nothing.
    pub fn release_gone_holds(&self, batch: &Batch, rules: &HoldRules) -> Result<Vec<HeldRow>> {
        let sql = format!(
            "SELECT n.seq, n.line FROM rows n
             WHERE n.batch_id = ?1 AND n.state = 'held' AND n.code = ?2
               AND NOT EXISTS (SELECT 1 FROM rows o WHERE {}) ORDER BY n.seq",
            holder_condition("n.updated_at", "?3")
        );
        let gone: Vec<(u64, u64)> = self
            .conn()
            .prepare(&sql)?
            .query_map(params![batch.id, REPEAT_PAYMENT, rules.repeat_window.as_secs() as i64], |r| {
                Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64))
            })?
            .collect::<rusqlite::Result<_>>()?;
        let seqs: Vec<u64> = gone.iter().map(|(s, _)| *s).collect();
        let message = "released: the payment that held it is gone (its batch was cancelled, or it proved unpaid)";
        let (done, _) =
            self.apply_to_rows(&batch.id, &seqs, |_| Some(Event::Release { message: message.into() }), "state", None)?;
        Ok(done
            .into_iter()
            .map(|(row, _)| HeldRow { seq: row.seq, line: row.line, code: REPEAT_PAYMENT, message: message.into() })
            .collect())
    }

    /// The row of another batch that holds row `seq` of `batch` as a repeat payment now (SPEC 3.2),
    /// with the message that names it: one indexed probe. As when the batch was stored, a batch
    /// stored later does not hold it by its own held rows (those wait because of this one).
    pub(crate) fn repeat_holder(&self, batch: &str, seq: u64, rules: &HoldRules) -> Result<Option<String>> {
        let sql = format!(
            "SELECT (SELECT o.rowid FROM rows o WHERE {} AND NOT (o.state = 'held'
                        AND (SELECT created_at FROM batches WHERE id = o.batch_id)
                          > (SELECT created_at FROM batches WHERE id = n.batch_id))
                     ORDER BY o.completed_at DESC LIMIT 1)
             FROM rows n WHERE n.batch_id = ?1 AND n.seq = ?4",
            holder_condition("?2", "?3")
        );
        let holder: Option<i64> = self
            .conn()
            .prepare_cached(&sql)?
            .query_row(params![batch, now(), rules.repeat_window.as_secs() as i64, seq as i64], |r| r.get(0))
            .optional()?
            .flatten();
        holder.map(|h| describe_repeat(self, h)).transpose()
    }

    /// For `validate --state`: the payee-change warning a row would get (SPEC 3.3), from the latest
    /// successful payment to `payee_id` in the journal. `None` when there is none or it went to
    /// the same account and IFSC.
    pub fn payee_change(&self, payee_id: &str, account: &str, ifsc: &str) -> Result<Option<String>> {
        let id = super::payee_id_key(payee_id);
        if id.is_empty() {
            return Ok(None);
        }
        let last: Option<(String, String, String, String)> = self
            .conn()
            .prepare_cached(
                "SELECT payee, ifsc, account, COALESCE(completed_at, '') FROM rows
                 WHERE payee_id = ?1 AND state = 'success' ORDER BY completed_at DESC LIMIT 1",
            )?
            .query_row([&id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .optional()?;
        // Stricter than the payee of SPEC 3.2 on purpose: a branch change of a known payee is shown.
        let same = |payee: &str, paid_ifsc: &str| {
            payee == super::payee_key(account, ifsc) && paid_ifsc.eq_ignore_ascii_case(ifsc.trim())
        };
        Ok(last.filter(|(payee, paid_ifsc, _, _)| !same(payee, paid_ifsc)).map(|(_, _, acc, at)| {
            format!(
                "payee {id} was last paid to another bank account ({}, on {}): `run` will hold this row until it is approved",
                mask_account(&acc),
                date_of(&at)
            )
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::mask_account;

    #[test]
    fn masks_all_but_the_last_four_digits() {
        assert_eq!(mask_account("501002003004"), "XXXXXXXX3004");
        assert_eq!(mask_account("123"), "123");
    }
}
