//! Across batches (SPEC 3.2, 3.2b and 3.3): which valid rows of a new batch wait for a person
//! before anything is sent, because the payee's bank account changed since it was last paid
//! (`PAYEE_CHANGED`), because the line this retry row pays again is paid or may be by another row
//! (`ALREADY_RETRIED`), or because another batch of the journal pays the same payee
//! (`REPEAT_PAYMENT`). A row is held for one reason at a time, in that order.
//!
//! The batch id protects one file; people also pay the same rows through other files (a file saved
//! again with one amount corrected while its batch is open, the first lines of a file already paid,
//! a retry file with rows that were paid). So every valid row is compared with the rows of every
//! other batch by payee (account digits without leading zeros, and the bank, the IFSC's first four
//! letters: the `payee` column) and amount, by payee id (the `payee_id` column; the full account and
//! IFSC compared), and by obligation (the `obligation` column, which a retry row carries from the
//! line it retries).
//!
//! This module owns those look-ups. Each is one indexed probe per new row (`rows_by_payee`,
//! `rows_by_payee_id`, `rows_by_obligation`), so a million-row journal costs what a small one does,
//! and nothing per row is kept in memory beyond a page of held rows. The time windows are cut-offs
//! computed here and compared as text, so the same queries run on SQLite and PostgreSQL. Rows change
//! only through the lifecycle ([`Event::Hold`], [`Event::Release`]). It never sends anything, and
//! never releases a `PAYEE_CHANGED` or `ALREADY_RETRIED` row by itself: only `approve --rows`
//! naming its line does.

use std::time::Duration;

use super::lifecycle::{self, ALREADY_RETRIED, Event, PAYEE_CHANGED, REPEAT_PAYMENT, RowState};
use super::store::first;
use super::writer::Change;
use super::{Batch, Journal, JournalError, Result, clock, now, write_audited};
use crate::audit::Record;
use crate::money::Amount;
use crate::vals;

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
    pub already_retried: u64,
    /// The first rows (at most [`HoldReport::EXAMPLES`]), in file order per code.
    pub examples: Vec<HeldRow>,
}

impl HoldReport {
    pub const EXAMPLES: usize = 20;

    pub fn total(&self) -> u64 {
        self.repeat_payment + self.payee_changed + self.already_retried
    }

    fn add(&mut self, row: HeldRow) {
        match row.code {
            PAYEE_CHANGED => self.payee_changed += 1,
            ALREADY_RETRIED => self.already_retried += 1,
            _ => self.repeat_payment += 1,
        }
        if self.examples.len() < Self::EXAMPLES {
            self.examples.push(row);
        }
    }
}

/// SQL: whether row `o` of another batch holds row `n` (SPEC 3.2 a, b, c). `$day` and `$window`
/// name the parameters holding the cut-off times (RFC 3339 text, compared as text like every time
/// in the journal): 24 hours before the moment judged, and the repeat window before it.
fn holder_condition(day: &str, window: &str) -> String {
    format!(
        "o.payee = n.payee AND o.batch_id <> n.batch_id AND (
            o.state IN ('held', 'ready', 'sending', 'accepted', 'in_doubt', 'pending')
            OR (o.state = 'success' AND o.completed_at >= {day})
            OR (o.state = 'success' AND o.amount_paise = n.amount_paise AND o.completed_at >= {window}))"
    )
}

/// The two cut-offs of [`holder_condition`] for a judgement at `at` (RFC 3339).
fn cutoffs(at: &str, rules: &HoldRules) -> Result<(String, String)> {
    let back = |d: chrono::Duration| {
        clock::shift(at, -d).ok_or_else(|| JournalError::Corrupt(format!("'{at}' is not a time")))
    };
    let window = chrono::Duration::from_std(rules.repeat_window).unwrap_or(chrono::Duration::days(20));
    Ok((back(chrono::Duration::days(1))?, back(window)?))
}

/// The row a holder key (`batch:seq`, as the hold queries give it) names.
fn split_holder(holder: &str) -> Option<(&str, u64)> {
    let (batch, seq) = holder.rsplit_once(':')?;
    Some((batch, seq.parse().ok()?))
}

/// Masks an account number to its last four digits: `XXXXXXXX4321`.
pub fn mask_account(account: &str) -> String {
    let digits: Vec<char> = account.chars().collect();
    let keep = digits.len().min(4);
    let hidden = digits.len() - keep;
    format!("{}{}", "X".repeat(hidden), digits[hidden..].iter().collect::<String>())
}

/// Rows held per page of the hold passes: memory stays flat however many rows are held.
const HOLD_PAGE: u64 = 4096;

/// Describes the last payment to a payee id (the holder row, `batch:seq`) for a `PAYEE_CHANGED`
/// message.
fn describe_change(journal: &Journal, holder: &str) -> Result<String> {
    let (batch, seq) = split_holder(holder).ok_or_else(|| JournalError::Corrupt(format!("holder '{holder}'")))?;
    let r = first(journal.q(
        "SELECT account, COALESCE(completed_at, '') AS at, payee_id FROM rows WHERE batch_id = $1 AND seq = $2",
        &vals![batch, seq],
    )?)
    .ok_or_else(|| JournalError::Corrupt(format!("holder '{holder}' vanished")))?;
    let (account, paid_at, payee_id): (String, String, String) = (r.get("account")?, r.get("at")?, r.get("payee_id")?);
    Ok(format!(
        "payee {payee_id} was last paid to another bank account ({}, on {}): a changed bank account is released only by approving this line",
        mask_account(&account),
        crate::report::local_date(&paid_at)
    ))
}

/// Describes the holder row (`batch:seq`) for a `REPEAT_PAYMENT` message.
fn describe_repeat(journal: &Journal, holder: &str) -> Result<String> {
    let found = match split_holder(holder) {
        Some((batch, seq)) => first(journal.q(
            "SELECT o.batch_id, b.file_path, o.line, o.amount_paise, o.state,
                    COALESCE(o.completed_at, o.submitted_at, b.created_at) AS at
             FROM rows o JOIN batches b ON b.id = o.batch_id WHERE o.batch_id = $1 AND o.seq = $2",
            &vals![batch, seq],
        )?),
        None => None,
    };
    let Some(r) = found else {
        return Ok("another batch pays this payee".into());
    };
    let (batch, file, line, paise, state, at): (String, String, u64, Option<i64>, String, String) = (
        r.get("batch_id")?,
        r.get("file_path")?,
        r.get("line")?,
        r.get("amount_paise")?,
        r.get("state")?,
        r.get("at")?,
    );
    let amount = paise.map(|p| format!("₹{}", Amount::from_paise(p).to_indian())).unwrap_or_else(|| "?".into());
    let how = match RowState::parse(&state) {
        Some(RowState::Success) => format!("paid {}", crate::report::local_date(&at)),
        Some(s) => format!("{} since {}, not finished", s.result_status(), crate::report::local_date(&at)),
        None => state,
    };
    let file = std::path::Path::new(&file).file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or(file);
    Ok(format!("same payee as batch {batch} ({file}) line {line}, {amount}, {how}: a repeat payment?"))
}

/// SQL: whether row `o` pays (or may pay) the obligation of row `n` (SPEC 3.2b): another row of
/// the journal with the same obligation that is paid, may be (pending, in doubt, accepted, being
/// sent), or is about to be sent (ready or held in another batch, or on an earlier line of this one).
const RETRIED_CONDITION: &str = "o.obligation = n.obligation AND NOT (o.batch_id = n.batch_id AND o.seq = n.seq) AND (
        o.state IN ('success', 'pending', 'in_doubt', 'accepted', 'sending')
        OR (o.state IN ('ready', 'held') AND (o.batch_id <> n.batch_id OR o.seq < n.seq)))";

/// Describes the row that pays an obligation again (`batch:seq`) for an `ALREADY_RETRIED` message.
fn describe_retried(journal: &Journal, holder: &str) -> Result<String> {
    let found = match split_holder(holder) {
        Some((batch, seq)) => first(journal.q(
            "SELECT o.batch_id, o.line, o.state, o.obligation, COALESCE(o.completed_at, o.submitted_at, b.created_at) AS at
             FROM rows o JOIN batches b ON b.id = o.batch_id WHERE o.batch_id = $1 AND o.seq = $2",
            &vals![batch, seq],
        )?),
        None => None,
    };
    let Some(r) = found else {
        return Ok("this row's obligation is paid, or may be, by another row".into());
    };
    let (batch, line, state, obligation, at): (String, u64, String, String, String) =
        (r.get("batch_id")?, r.get("line")?, r.get("state")?, r.get("obligation")?, r.get("at")?);
    let how = match RowState::parse(&state) {
        Some(RowState::Success) => format!("SUCCESS, paid {}", crate::report::local_date(&at)),
        Some(s) => format!("{}: it may be paid", s.result_status()),
        None => state,
    };
    Ok(format!(
        "{obligation} (the line this row retries) is already paid again, or may be: batch {batch} line {line} ({how}); released only by approving this line"
    ))
}

/// The order the hold reasons are checked in, a row held for one at a time. Approving a row held
/// for one reason re-checks the reasons after it (approving a bank change is not approving a second
/// payment of the obligation, nor a repeat payment to the payee); approving a retry of a paid
/// obligation approves paying that payee again, so nothing after it is checked.
const HOLD_ORDER: [&str; 3] = [PAYEE_CHANGED, ALREADY_RETRIED, REPEAT_PAYMENT];

impl Journal {
    /// Holds the ready rows of `batch` whose payee id was last paid to another account (SPEC 3.3),
    /// whose obligation another row pays or may pay (3.2b), or that another batch's rows hold
    /// (3.2). Runs inside the caller's transaction when there is one (the batch is stored and held
    /// atomically, so a crash can never leave a stored batch whose repeats were not held).
    pub fn hold_rows(&self, batch: &Batch, rules: &HoldRules) -> Result<HoldReport> {
        self.hold_rows_except(batch, rules, &std::collections::HashSet::new())
    }

    /// Team mode, as a checker approves a batch (SPEC 8.2): its holds again, as payrun would make
    /// them now, on the ready rows no person released (`approve --rows`, `--all-held`). The
    /// database cannot compute holds; a maker's payrun makes them when it stores the batch, but a
    /// row stored ready by other means (a maker's own SQL), or a payee another batch paid since, is
    /// held here, before the checker sees the totals.
    pub fn hold_again_before_approval(&self, batch: &Batch, rules: &HoldRules) -> Result<HoldReport> {
        let mut released = std::collections::HashSet::new();
        for r in self.q(
            "SELECT lines FROM actions WHERE batch_id = $1 AND action IN ('approve', 'approve --all-held')",
            &vals![&batch.id],
        )? {
            let lines: String = r.get("lines")?;
            released.extend(lines.split(',').filter_map(|l| l.trim().parse::<u64>().ok()));
        }
        self.hold_rows_except(batch, rules, &released)
    }

    /// [`Journal::hold_rows`], leaving the rows at `released` lines as they are.
    fn hold_rows_except(
        &self,
        batch: &Batch,
        rules: &HoldRules,
        released: &std::collections::HashSet<u64>,
    ) -> Result<HoldReport> {
        let mut report = HoldReport::default();
        if !self.has_other_batches(&batch.id)? && !self.has_retries(&batch.id)? {
            return Ok(report);
        }
        let at = now();
        let (day, window) = cutoffs(&at, rules)?;
        let mut log = self.open_audit(&batch.id)?;
        // Each pass goes a page of rows at a time, so memory stays flat when every row is held.
        for code in HOLD_ORDER {
            let mut after = 0u64;
            loop {
                let candidates = self.q(
                    &format!(
                        "SELECT seq, line, holder FROM (
                            SELECT n.seq, n.line, ({}) AS holder FROM rows n
                            WHERE n.batch_id = $1 AND n.state = 'ready' AND n.seq > $2) c
                         WHERE holder IS NOT NULL ORDER BY seq LIMIT $3",
                        holder_query(code, "$4", "$5")
                    ),
                    &with_cutoffs(code, vals![&batch.id, after, HOLD_PAGE], &day, &window),
                )?;
                let Some(last) = candidates.last() else { break };
                after = last.get("seq")?;
                let mut held = Vec::with_capacity(candidates.len());
                for c in &candidates {
                    let (seq, line, holder): (u64, u64, String) = (c.get("seq")?, c.get("line")?, c.get("holder")?);
                    if released.contains(&line) {
                        continue;
                    }
                    if let Some(message) = self.hold_message(code, &batch.id, seq, &holder)? {
                        held.push(HeldRow { seq, line, code, message });
                    }
                }
                self.write_holds(&batch.id, &mut log, &held, &at)?;
                for h in held {
                    report.add(h);
                }
            }
        }
        Ok(report)
    }

    /// Whether `batch` has rows that retry another obligation (then a journal with no other batch
    /// may still hold them: the origin's batch may be gone, or two retries of one line are here).
    fn has_retries(&self, batch: &str) -> Result<bool> {
        let rows = self.q(
            "SELECT EXISTS (SELECT 1 FROM rows WHERE batch_id = $1 AND obligation <> batch_id || ':' || line AND obligation <> '') AS found",
            &vals![batch],
        )?;
        Ok(first(rows).map(|r| r.get::<bool>("found")).transpose()?.unwrap_or(false))
    }

    /// The message a hold for `code` gives row `seq` (held by `holder`, `batch:seq`), or none when
    /// the holder does not hold it after all (a payee id last paid to the same account).
    fn hold_message(&self, code: &str, batch: &str, seq: u64, holder: &str) -> Result<Option<String>> {
        Ok(match code {
            PAYEE_CHANGED => {
                let (hb, hs) =
                    split_holder(holder).ok_or_else(|| JournalError::Corrupt(format!("holder '{holder}'")))?;
                let same = first(self.q(
                    "SELECT EXISTS (SELECT 1 FROM rows o, rows n WHERE o.batch_id = $1 AND o.seq = $2
                        AND n.batch_id = $3 AND n.seq = $4 AND o.payee = n.payee AND o.ifsc = n.ifsc) AS same",
                    &vals![hb, hs, batch, seq],
                )?)
                .map(|r| r.get::<bool>("same"))
                .transpose()?
                .unwrap_or(false);
                if same { None } else { Some(describe_change(self, holder)?) }
            }
            ALREADY_RETRIED => Some(describe_retried(self, holder)?),
            _ => Some(describe_repeat(self, holder)?),
        })
    }

    /// Holds `held` (ready rows), each recorded in the evidence log before it is written.
    fn write_holds(&self, batch: &str, log: &mut crate::audit::Log, held: &[HeldRow], at: &str) -> Result<()> {
        if held.is_empty() {
            return Ok(());
        }
        let mut changes = Vec::with_capacity(held.len());
        let mut records = Vec::with_capacity(held.len());
        for h in held {
            let row = self
                .row(batch, h.seq)?
                .ok_or_else(|| JournalError::Corrupt(format!("row {} of batch {batch} vanished", h.seq)))?;
            let to =
                lifecycle::apply(&row.status, &Event::Hold { code: h.code.into(), message: h.message.clone() }, at)?;
            let mut r = Record::new("state");
            r.line = Some(h.line);
            r.reference = row.external_ref.clone();
            records.push(r.with_change("ready", "held", Some(h.code), Some(&h.message)));
            changes.push(Change { seq: h.seq, from: RowState::Ready, to });
        }
        self.atomic(|| write_audited(&mut **self.db(), log, batch, &mut records, &changes))
    }

    /// `resume` checks a batch's `REPEAT_PAYMENT` rows again: a row none of whose holders remain
    /// (the other batch was cancelled before sending it, or its row proved unpaid) is released. The
    /// time windows are judged at the moment the row was held, so time passing releases nothing.
    /// (`PAYEE_CHANGED` and `ALREADY_RETRIED` rows are released only by a person naming them.)
    pub fn release_gone_holds(&self, batch: &Batch, rules: &HoldRules) -> Result<Vec<HeldRow>> {
        let mut gone = Vec::new();
        let mut after = 0u64;
        loop {
            let page = self.q(
                "SELECT seq, line, updated_at FROM rows WHERE batch_id = $1 AND state = 'held' AND code = $2 AND seq > $3
                 ORDER BY seq LIMIT $4",
                &vals![&batch.id, REPEAT_PAYMENT, after, HOLD_PAGE],
            )?;
            let Some(last) = page.last() else { break };
            after = last.get("seq")?;
            for r in &page {
                let (seq, line, held_at): (u64, u64, Option<String>) =
                    (r.get("seq")?, r.get("line")?, r.get("updated_at")?);
                let (day, window) = cutoffs(held_at.as_deref().unwrap_or("1970-01-01T00:00:00.000Z"), rules)?;
                let still = first(self.q(
                    &format!(
                        "SELECT EXISTS (SELECT 1 FROM rows n, rows o WHERE n.batch_id = $1 AND n.seq = $2 AND {}) AS found",
                        holder_condition("$3", "$4")
                    ),
                    &vals![&batch.id, seq, &day, &window],
                )?)
                .map(|r| r.get::<bool>("found"))
                .transpose()?
                .unwrap_or(true);
                if !still {
                    gone.push((seq, line));
                }
            }
        }
        let seqs: Vec<u64> = gone.iter().map(|(s, _)| *s).collect();
        let message = "released: the payment that held it is gone (its batch was cancelled before sending it, or it proved unpaid)";
        let (done, _) =
            self.apply_to_rows(&batch.id, &seqs, |_| Some(Event::Release { message: message.into() }), "state", None)?;
        Ok(done
            .into_iter()
            .map(|(row, _)| HeldRow { seq: row.seq, line: row.line, code: REPEAT_PAYMENT, message: message.into() })
            .collect())
    }

    /// The first hold reason after `after` (in [`HOLD_ORDER`]) that applies to row `seq` of `batch`
    /// now, with its code and message: one indexed probe per reason. As when the batch was stored,
    /// a batch stored later does not hold it by its own held rows (those wait because of this one).
    pub(crate) fn hold_after(
        &self,
        batch: &str,
        seq: u64,
        after: &str,
        rules: &HoldRules,
    ) -> Result<Option<(&'static str, String)>> {
        if after == ALREADY_RETRIED || after == REPEAT_PAYMENT {
            // Approving a second payment of the obligation (or to the payee) by its line is the
            // person's answer to every later reason.
            return Ok(None);
        }
        let (day, window) = cutoffs(&now(), rules)?;
        let start = HOLD_ORDER.iter().position(|c| *c == after).map_or(0, |i| i + 1);
        for code in &HOLD_ORDER[start..] {
            let newer_held = "NOT (o.state = 'held'
                AND (SELECT created_at FROM batches WHERE id = o.batch_id) > (SELECT created_at FROM batches WHERE id = n.batch_id))";
            let sql = format!(
                "SELECT ({}) AS holder FROM rows n WHERE n.batch_id = $1 AND n.seq = $2",
                holder_query(code, "$3", "$4").replace("ORDER BY", &format!("AND {newer_held} ORDER BY"))
            );
            let holder: Option<String> = first(self.q(&sql, &with_cutoffs(code, vals![batch, seq], &day, &window))?)
                .map(|r| r.get::<Option<String>>("holder"))
                .transpose()?
                .flatten();
            if let Some(h) = holder {
                if let Some(message) = self.hold_message(code, batch, seq, &h)? {
                    return Ok(Some((code, message)));
                }
            }
        }
        Ok(None)
    }

    /// For `validate` with a journal: the hold a row of a new file would get (SPEC 3.2, 3.2b, 3.3),
    /// as `run` would judge it now, with its code and message; none when it would be sent.
    pub fn would_hold(
        &self,
        account: &str,
        ifsc: &str,
        amount: Amount,
        payee_id: &str,
        retry_of: &str,
        rules: &HoldRules,
    ) -> Result<Option<(&'static str, String)>> {
        let (day, window) = cutoffs(&now(), rules)?;
        let payee = super::payee_key(account, ifsc);
        let id = super::payee_id_key(payee_id);
        let retry_of = if retry_of.is_empty() { String::new() } else { self.obligation_named(retry_of)? };
        let retry_of = retry_of.as_str();
        // The row as it would be stored, as a one-row table `n` (in no batch: every batch is other).
        let n = "(SELECT CAST($1 AS TEXT) AS payee, CAST($2 AS TEXT) AS ifsc, CAST($3 AS BIGINT) AS amount_paise,
                  CAST($4 AS TEXT) AS payee_id, CAST($5 AS TEXT) AS obligation, '' AS batch_id, 0 AS seq) n";
        for code in HOLD_ORDER {
            if (code == PAYEE_CHANGED && id.is_empty()) || (code == ALREADY_RETRIED && retry_of.is_empty()) {
                continue;
            }
            let sql = format!("SELECT ({}) AS holder, n.payee AS payee FROM {n}", holder_query(code, "$6", "$7"));
            let found = first(self.q(
                &sql,
                &with_cutoffs(
                    code,
                    vals![&payee, ifsc.trim().to_ascii_uppercase(), amount.paise(), &id, retry_of],
                    &day,
                    &window,
                ),
            )?);
            let Some(holder) = found.map(|r| r.get::<Option<String>>("holder")).transpose()?.flatten() else {
                continue;
            };
            let message = match code {
                PAYEE_CHANGED => {
                    let (hb, hs) =
                        split_holder(&holder).ok_or_else(|| JournalError::Corrupt(format!("holder '{holder}'")))?;
                    let last =
                        first(self.q("SELECT payee, ifsc FROM rows WHERE batch_id = $1 AND seq = $2", &vals![hb, hs])?);
                    let same = match last {
                        Some(r) => {
                            r.get::<String>("payee")? == payee
                                && r.get::<String>("ifsc")?.eq_ignore_ascii_case(ifsc.trim())
                        }
                        None => true,
                    };
                    if same {
                        continue;
                    }
                    describe_change(self, &holder)?
                }
                ALREADY_RETRIED => describe_retried(self, &holder)?,
                _ => describe_repeat(self, &holder)?,
            };
            return Ok(Some((code, message)));
        }
        Ok(None)
    }
}

/// `params` and, when `code`'s query uses them (the repeat rule), the two cut-offs after them: a
/// statement is given exactly the parameters it names.
fn with_cutoffs(code: &str, mut params: Vec<super::store::Value>, day: &str, window: &str) -> Vec<super::store::Value> {
    if code == REPEAT_PAYMENT {
        params.extend(vals![day, window]);
    }
    params
}

/// SQL giving the row (`batch:seq`) that holds row `n` for `code`, or NULL: the latest one.
/// `day` and `window` name the parameters of the repeat rule's cut-offs.
fn holder_query(code: &str, day: &str, window: &str) -> String {
    let condition = match code {
        PAYEE_CHANGED => {
            "o.payee_id = n.payee_id AND n.payee_id <> '' AND o.state = 'success' AND o.batch_id <> n.batch_id"
                .to_string()
        }
        ALREADY_RETRIED => RETRIED_CONDITION.to_string(),
        _ => holder_condition(day, window),
    };
    format!(
        "SELECT o.batch_id || ':' || o.seq FROM rows o WHERE {condition} ORDER BY COALESCE(o.completed_at, '') DESC LIMIT 1"
    )
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
