//! A person's actions on a batch: approving held rows, cancelling a batch, recording a finding on a
//! row payrun cannot decide (SPEC 3 rule 9, 3.2, 3.3). Each changes rows only through the lifecycle,
//! in one transaction, and is recorded in the `actions` table with the operator, the time and the
//! reason.
//!
//! Nothing here sends anything or talks to the gateway; the caller holds the state directory's lock
//! so no run is moving the same rows. Approving a row only makes it `ready`: `resume` sends it.

use std::collections::BTreeSet;

use super::holds::HoldRules;
use super::lifecycle::{ALREADY_RETRIED, Event, PAYEE_CHANGED, REPEAT_PAYMENT, RowState};
use super::{Batch, Journal, JournalError, Result, Row, now};

/// Which held rows to release.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selection {
    /// These lines of the input file (any hold, `PAYEE_CHANGED` included).
    Lines(Vec<u64>),
    /// Every `REPEAT_PAYMENT` row (never a `PAYEE_CHANGED` or `ALREADY_RETRIED` one: a changed
    /// bank account, and a second payment of one obligation, are approved one by one).
    AllRepeats,
}

/// What `approve` did.
#[derive(Clone, Debug, Default)]
pub struct Approved {
    /// Lines released.
    pub released: Vec<u64>,
    /// Lines named that are not held (with their state).
    pub not_held: Vec<(u64, String)>,
    /// Lines named that are not in the batch.
    pub unknown: Vec<u64>,
    /// Lines left held by `--all-held`, with their code (`PAYEE_CHANGED`, `ALREADY_RETRIED`):
    /// approved one by one, naming the line.
    pub left_held: Vec<(u64, &'static str)>,
    /// Lines whose hold was approved, held again for the next reason (a bank change approved, and
    /// the obligation already retried or the payee paid in another batch), with the code and the
    /// message naming it. Each reason is approved on its own: the approver of a bank change was not
    /// shown the repeat.
    pub held_again: Vec<(u64, &'static str, String)>,
}

/// What `cancel` did.
#[derive(Clone, Debug, Default)]
pub struct Cancelled {
    /// Rows that were not sent and now never will be.
    pub rows: u64,
    /// Rows the gateway may have: still followed by `resume` / `status --refresh`.
    pub still_followed: u64,
    /// Team mode: rows of other batches this batch held as repeat payments, released now that it
    /// will not pay them (batch, line).
    pub released: Vec<(String, u64)>,
}

/// Parses `--rows 12,15-18 20` into line numbers.
pub fn parse_lines(text: &str) -> std::result::Result<Vec<u64>, String> {
    let mut out = BTreeSet::new();
    for part in text.split([',', ' ']).map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || format!("'{part}' is not a line number or a range like 12-18");
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u64, u64) = (a.trim().parse().map_err(|_| bad())?, b.trim().parse().map_err(|_| bad())?);
                if a > b || b - a > 1_000_000 {
                    return Err(bad());
                }
                out.extend(a..=b);
            }
            None => {
                out.insert(part.parse().map_err(|_| bad())?);
            }
        }
    }
    if out.is_empty() {
        return Err("no line numbers given".into());
    }
    Ok(out.into_iter().collect())
}

fn lines_text(lines: &[u64]) -> String {
    lines.iter().map(u64::to_string).collect::<Vec<_>>().join(",")
}

impl Journal {
    /// Releases held rows of `batch`: the lines named (any hold), or every `REPEAT_PAYMENT` row. A
    /// `PAYEE_CHANGED` row that is also a repeat payment (its hold named only the bank change) is
    /// held again as `REPEAT_PAYMENT` in the same transaction: approving the new account is not
    /// approving a second payment.
    pub fn approve(
        &self,
        batch: &Batch,
        which: &Selection,
        operator: &str,
        reason: &str,
        rules: &HoldRules,
    ) -> Result<Approved> {
        let mut out = Approved::default();
        let mut seqs = Vec::new();
        match which {
            Selection::Lines(lines) => {
                for &line in lines {
                    match self.row_at_line(&batch.id, line)? {
                        Some(r) if r.status.state() == RowState::Held => seqs.push(r.seq),
                        Some(r) => out.not_held.push((line, r.status.state().result_status().to_string())),
                        None => out.unknown.push(line),
                    }
                }
            }
            Selection::AllRepeats => {
                let mut after = 0;
                loop {
                    let rows = self.rows_in_state(&batch.id, RowState::Held, after, 4096)?;
                    let Some(last) = rows.last() else { break };
                    after = last.seq;
                    for r in rows {
                        match r.status.code.as_deref() {
                            Some(PAYEE_CHANGED) => out.left_held.push((r.line, PAYEE_CHANGED)),
                            Some(ALREADY_RETRIED) => out.left_held.push((r.line, ALREADY_RETRIED)),
                            _ => seqs.push(r.seq),
                        }
                    }
                }
            }
        }
        let at = crate::report::local_time(&now());
        let message = |r: &Row| {
            let was = r.status.code.as_deref().unwrap_or(REPEAT_PAYMENT);
            format!("{was} approved by {operator} at {at}: {reason}")
        };
        let what = match which {
            Selection::Lines(_) => "approve",
            Selection::AllRepeats => "approve --all-held",
        };
        let (done, again) = self.atomic(|| {
            let (done, again) = self.release_then_recheck(batch, &seqs, operator, &message, rules)?;
            let released: Vec<u64> = done.iter().copied().filter(|l| !again.iter().any(|(h, _, _)| h == l)).collect();
            if !released.is_empty() {
                self.record_action(&batch.id, operator, what, &lines_text(&released), reason, "")?;
            }
            Ok((released, again))
        })?;
        out.held_again = again;
        out.released = done;
        Ok(out)
    }

    /// Releases `seqs`, then holds again each released row that a later reason holds now (see
    /// [`super::holds`]'s order: a bank change approved is not a second payment approved). Returns
    /// the lines released and those held again.
    #[allow(clippy::type_complexity)]
    fn release_then_recheck(
        &self,
        batch: &Batch,
        seqs: &[u64],
        operator: &str,
        message: &dyn Fn(&Row) -> String,
        rules: &HoldRules,
    ) -> Result<(Vec<u64>, Vec<(u64, &'static str, String)>)> {
        let (done, _) = self.apply_to_rows(
            &batch.id,
            seqs,
            |r| Some(Event::Release { message: message(r) }),
            "state",
            Some(operator),
        )?;
        let mut again = Vec::new();
        for (row, _) in &done {
            let was = row.status.code.as_deref().unwrap_or(REPEAT_PAYMENT);
            if let Some((code, why)) = self.hold_after(&batch.id, row.seq, was, rules)? {
                let why = format!("{why} (the {was} hold was approved; this is another reason)");
                let hold = Event::Hold { code: code.into(), message: why.clone() };
                self.apply_to_rows(&batch.id, &[row.seq], |_| Some(hold.clone()), "state", Some(operator))?;
                again.push((row.line, code, why));
            }
        }
        Ok((done.iter().map(|(r, _)| r.line).collect(), again))
    }

    /// Abandons `batch`: rows not sent (ready, held) become `cancelled` and are never sent; rows the
    /// gateway may have are still followed.
    pub fn cancel(&self, batch: &Batch, operator: &str, reason: &str, rules: &HoldRules) -> Result<Cancelled> {
        self.check_same_file()?;
        let mut seqs = Vec::new();
        for state in [RowState::Ready, RowState::Held] {
            let mut after = 0;
            loop {
                let rows = self.rows_in_state(&batch.id, state, after, 4096)?;
                let Some(last) = rows.last() else { break };
                after = last.seq;
                seqs.extend(rows.iter().map(|r| r.seq));
            }
        }
        seqs.sort_unstable();
        let message = format!("cancelled by {operator} at {}: {reason}", crate::report::local_time(&now()));
        let (done, refused) = self.apply_to_rows(
            &batch.id,
            &seqs,
            |_| Some(Event::Cancel { message: message.clone() }),
            "state",
            Some(operator),
        )?;
        if let Some((row, why)) = refused.first() {
            return Err(JournalError::Refused(format!("cannot cancel line {}: {why}", row.line)));
        }
        self.set_cancelled(&batch.id)?;
        let open = self.counts(&batch.id)?.open();
        self.record_action(&batch.id, operator, "cancel", "", reason, &format!("{} rows cancelled", done.len()))?;
        // SPEC 3.2: a cancelled batch's unsent rows no longer hold other batches' rows. With SQLite
        // `resume` of the held batch releases them; in team mode only a checker may release a held
        // row (SPEC 8.2), and a checker is the one cancelling: the rows are released here.
        let mut released = Vec::new();
        if self.place().is_team() {
            let held = self.q(
                "SELECT DISTINCT batch_id FROM rows WHERE state = 'held' AND code = $1 AND batch_id <> $2 ORDER BY batch_id",
                &crate::vals![REPEAT_PAYMENT, &batch.id],
            )?;
            for r in held {
                let other: String = r.get("batch_id")?;
                if let Some(b) = self.batch(&other)? {
                    released.extend(self.release_gone_holds(&b, rules)?.into_iter().map(|h| (other.clone(), h.line)));
                }
            }
        }
        Ok(Cancelled { rows: done.len() as u64, still_followed: open, released })
    }

    /// Records a person's finding on one row (SPEC 3 rule 9): `paid` makes it SUCCESS, otherwise
    /// FAILED, with the reason, the operator and the time. Only a row the gateway may have and
    /// payrun has not settled (pending, in doubt, accepted) can be resolved, and only one payrun
    /// cannot decide (parked for a person) can be found unpaid.
    pub fn resolve(
        &self,
        batch: &Batch,
        line: u64,
        paid: bool,
        utr: Option<&str>,
        operator: &str,
        reason: &str,
    ) -> Result<(Row, super::RowStatus)> {
        // A row left `sending` by a process that died is in doubt like any other.
        self.recover(&batch.id)?;
        let row = self
            .row_at_line(&batch.id, line)?
            .ok_or_else(|| JournalError::Refused(format!("batch {} has no row at line {line}", batch.id)))?;
        let state = row.status.state();
        if !state.needs_inquiry() {
            let hint = match state {
                RowState::Held => " (a held row is approved, not resolved: payrun approve)",
                RowState::Ready => " (it was never sent)",
                _ => "",
            };
            return Err(JournalError::Refused(format!(
                "line {line} is {} ({}): only a PENDING row payrun cannot decide can be resolved{hint}",
                state.result_status(),
                state
            )));
        }
        if !paid && !row.status.parked() {
            // Rule 9: FAILED is offered for paying again by `payrun failed`; a row the gateway has
            // accepted, says is pending, or payrun is still asking about may yet be paid.
            return Err(JournalError::Refused(format!(
                "line {line} is {} ({}{}): payrun is still following it and the gateway may yet pay it, so it cannot be found unpaid; `payrun status {} --refresh` asks again, and a row payrun cannot decide is set aside for a person with its reason. A payment you can see on the bank statement can be recorded with --as paid",
                state.result_status(),
                state,
                row.status.code.as_deref().map(|c| format!(" {c}")).unwrap_or_default(),
                batch.id
            )));
        }
        let was = row.status.code.clone().unwrap_or_else(|| "IN_DOUBT".into());
        let verdict = if paid { "paid" } else { "unpaid" };
        let message = format!(
            "resolved as {verdict} by {operator} at {} (was {was}): {reason}",
            crate::report::local_time(&now())
        );
        let event = Event::Resolved { paid, utr: utr.map(str::to_string), message };
        let (mut done, refused) =
            self.apply_to_rows(&batch.id, &[row.seq], |_| Some(event.clone()), "state", Some(operator))?;
        if let Some((_, why)) = refused.first() {
            return Err(JournalError::Refused(why.clone()));
        }
        let (row, to) = done.pop().ok_or_else(|| JournalError::Corrupt(format!("line {line} vanished")))?;
        self.record_action(
            &batch.id,
            operator,
            &format!("resolve --as {verdict}"),
            &line.to_string(),
            reason,
            &utr.map(|u| format!("utr {u}")).unwrap_or_default(),
        )?;
        Ok((row, to))
    }
}

#[cfg(test)]
mod tests {
    use super::parse_lines;

    #[test]
    fn line_lists() {
        assert_eq!(parse_lines("12,15-17 20"), Ok(vec![12, 15, 16, 17, 20]));
        assert_eq!(parse_lines("3,3"), Ok(vec![3]));
        assert!(parse_lines("x").is_err());
        assert!(parse_lines("9-2").is_err());
        assert!(parse_lines("").is_err());
    }
}
