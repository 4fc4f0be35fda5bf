//! Approving and rejecting whole batches (SPEC 8.2), and the approval policy. A maker's `run`
//! stores a batch and stops: it is `AWAITING_APPROVAL` until enough distinct checkers approved it.
//! A checker's approval records the control totals shown (rows, amount by mode, held rows, payee
//! changes) with a hash of the batch's rows, in the journal and in the batch's evidence log. What
//! is refused (a maker approving their own batch, the same checker twice, a role without the grant,
//! an unapproved batch claimed for sending) is refused by the database ([`super::roles`]); the
//! checks here only say it first, in words.

use sha2::{Digest, Sha256};

use crate::journal::lifecycle::{PAYEE_CHANGED, RowState};
use crate::journal::store::first;
use crate::journal::{Batch, Journal, JournalError, Result, now};
use crate::money::{Amount, Tally};
use crate::vals;

/// Where a batch stands with its approvals.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApprovalState {
    /// Distinct checkers who approved it, in order.
    pub approvers: Vec<String>,
    /// How many its policy requires.
    pub required: u64,
    pub rejected: Option<(String, String)>,
    /// The batch's maker (the role that stored it).
    pub maker: String,
}

impl ApprovalState {
    pub fn approved(&self) -> bool {
        self.rejected.is_none() && self.approvers.len() as u64 >= self.required
    }
}

/// What a checker is shown, and what an approval records.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ControlTotals {
    pub rows: u64,
    pub valid: Tally,
    /// Valid rows per mode (NEFT, IMPS, RTGS), held ones included.
    pub by_mode: Vec<(String, Tally)>,
    pub held: Tally,
    pub payee_changes: u64,
    /// SHA-256 of the batch's rows as approved (what each pays, and whether it is held).
    pub rows_hash: String,
}

impl ControlTotals {
    /// The totals in words, as the evidence log and a row's story show them.
    pub fn describe(&self) -> String {
        let modes: Vec<String> =
            self.by_mode.iter().map(|(m, t)| format!("{m} {} ₹{}", t.count, t.amount.to_indian())).collect();
        format!(
            "{} valid of {} rows, ₹{} ({}); held {} (₹{}), of them changed bank accounts {}; rows sha256 {}",
            self.valid.count,
            self.rows,
            self.valid.amount.to_indian(),
            modes.join(", "),
            self.held.count,
            self.held.amount.to_indian(),
            self.payee_changes,
            self.rows_hash
        )
    }
}

/// The roles of 8.2 a database role is a member of.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Roles {
    pub maker: bool,
    pub checker: bool,
    pub sender: bool,
    pub owner: bool,
}

/// One rule of the approval policy: batches whose `measure` is at least `min` need `checkers`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// `total` (the batch's valid total) or `max_row` (its largest row).
    pub measure: String,
    pub min: Amount,
    pub checkers: u64,
}

impl Rule {
    /// Parses `total>=1000000:2`, `max_row>=500000:2`, `total>0:1` (amounts in rupees).
    pub fn parse(text: &str) -> std::result::Result<Rule, String> {
        let bad = || format!("'{text}' is not a rule like total>=1000000:2 or max_row>=500000:2");
        let (cond, n) = text.trim().rsplit_once(':').ok_or_else(bad)?;
        let checkers: u64 = n.trim().parse().map_err(|_| bad())?;
        if !(1..=10).contains(&checkers) {
            return Err(format!("'{text}': between 1 and 10 checkers"));
        }
        let (measure, op, amount) = ["total", "max_row"]
            .iter()
            .find_map(|m| {
                let rest = cond.trim().strip_prefix(m)?;
                let (op, amount) =
                    if let Some(a) = rest.strip_prefix(">=") { (">=", a) } else { (">", rest.strip_prefix('>')?) };
                Some((m.to_string(), op, amount.trim()))
            })
            .ok_or_else(bad)?;
        let min = if amount == "0" && op == ">" {
            Amount::from_paise(1)
        } else {
            let a = crate::money::parse_plain(amount).ok_or_else(bad)?;
            if op == ">" { Amount::from_paise(i64::try_from(a.paise() + 1).map_err(|_| bad())?) } else { a }
        };
        Ok(Rule { measure, min, checkers })
    }

    pub fn describe(&self) -> String {
        let what = if self.measure == "total" { "a batch total" } else { "a largest row" };
        format!(
            "{what} of ₹{} or more needs {} checker{}",
            self.min.to_indian(),
            self.checkers,
            if self.checkers == 1 { "" } else { "s" }
        )
    }
}

impl Journal {
    /// The roles of SPEC 8.2 the session's database role has (team mode).
    pub fn roles(&self) -> Result<Roles> {
        let r = first(self.q(
            "SELECT pg_has_role(current_user, 'payrun_maker', 'MEMBER') AS maker,
                    pg_has_role(current_user, 'payrun_checker', 'MEMBER') AS checker,
                    pg_has_role(current_user, 'payrun_sender', 'MEMBER') AS sender,
                    payrun_is_owner() AS owner",
            &[],
        )?)
        .ok_or_else(|| JournalError::Corrupt("no answer about roles".into()))?;
        Ok(Roles {
            maker: r.get("maker")?,
            checker: r.get("checker")?,
            sender: r.get("sender")?,
            owner: r.get("owner")?,
        })
    }

    /// Where `batch` stands with its approvals (team mode).
    pub fn approval_state(&self, batch: &str) -> Result<ApprovalState> {
        let approvers = self
            .q("SELECT checker FROM approvals WHERE batch_id = $1 ORDER BY at, checker", &vals![batch])?
            .iter()
            .map(|r| r.get::<String>("checker"))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let r = first(self.q(
            "SELECT payrun_required_checkers($1) AS required, maker, rejected_at, rejected_by FROM batches WHERE id = $1",
            &vals![batch],
        )?)
        .ok_or_else(|| JournalError::Refused(format!("no batch {batch}")))?;
        let rejected = match (r.get::<Option<String>>("rejected_at")?, r.get::<Option<String>>("rejected_by")?) {
            (Some(at), by) => Some((by.unwrap_or_default(), at)),
            _ => None,
        };
        Ok(ApprovalState { approvers, required: r.get("required")?, rejected, maker: r.get("maker")? })
    }

    /// The control totals of `batch` as a checker approves them, with the hash of its rows.
    pub fn control_totals(&self, batch: &Batch) -> Result<ControlTotals> {
        let mut t = ControlTotals {
            rows: batch.total_rows,
            valid: Tally::default(),
            by_mode: Vec::new(),
            held: Tally::default(),
            payee_changes: 0,
            rows_hash: String::new(),
        };
        let mut modes: std::collections::BTreeMap<String, Tally> = Default::default();
        let mut h = Sha256::new();
        self.for_each_row(&batch.id, |row, _| {
            let state = row.status.state();
            h.update(format!(
                "{}|{}|{}|{}|{}|{}|{}|{}\n",
                row.seq,
                row.line,
                row.account,
                row.ifsc,
                row.amount.map(|a| a.to_string()).unwrap_or_default(),
                row.mode.map(|m| m.as_str()).unwrap_or(""),
                row.external_ref.as_deref().unwrap_or(""),
                if state == RowState::Held {
                    "held"
                } else if state == RowState::Invalid {
                    "invalid"
                } else {
                    ""
                }
            ));
            if state == RowState::Invalid {
                return Ok(());
            }
            let amount = row.amount.unwrap_or(Amount::ZERO);
            t.valid.add(amount);
            modes.entry(row.mode.map(|m| m.as_str().to_string()).unwrap_or_default()).or_default().add(amount);
            if state == RowState::Held {
                t.held.add(amount);
                if row.status.code.as_deref() == Some(PAYEE_CHANGED) {
                    t.payee_changes += 1;
                }
            }
            Ok(())
        })
        .map_err(|e| JournalError::Corrupt(format!("{e:#}")))?;
        t.by_mode = modes.into_iter().collect();
        t.rows_hash = hex::encode(h.finalize());
        Ok(t)
    }

    /// A checker approves `batch` as `totals` show it (SPEC 8.2): recorded in `approvals` (the
    /// database makes it this role's, refuses the maker and a second approval by the same checker)
    /// and in the evidence log with the totals, atomically.
    pub fn approve_batch(&self, batch: &Batch, totals: &ControlTotals, reason: &str) -> Result<()> {
        let role = self.role().ok_or_else(|| JournalError::Refused("approving a batch is for team mode".into()))?;
        let role = role.to_string();
        let summary = serde_json::to_string(totals).unwrap_or_default();
        self.atomic(|| {
            self.x(
                "INSERT INTO approvals (batch_id, at, rows_hash, totals, reason) VALUES ($1, $2, $3, $4, $5)",
                &vals![&batch.id, now(), &totals.rows_hash, &summary, reason],
            )?;
            self.record_action(&batch.id, &role, "approve --batch", "", reason, &totals.describe())
        })
    }

    /// A checker rejects `batch`: it ends unsent (its rows not sent are cancelled), recorded with
    /// the reason.
    pub fn reject_batch(
        &self,
        batch: &Batch,
        reason: &str,
        rules: &crate::journal::holds::HoldRules,
    ) -> Result<crate::journal::actions::Cancelled> {
        let role = self.role().ok_or_else(|| JournalError::Refused("rejecting a batch is for team mode".into()))?;
        let role = role.to_string();
        self.atomic(|| {
            self.x(
                "UPDATE batches SET rejected_at = $2, rejected_by = $3 WHERE id = $1 AND rejected_at IS NULL",
                &vals![&batch.id, now(), &role],
            )?;
            let cancelled = self.cancel(batch, &role, &format!("rejected: {reason}"), rules)?;
            self.record_action(&batch.id, &role, "reject", "", reason, "")?;
            Ok(cancelled)
        })
    }

    /// The approval policy, in order.
    pub fn policy(&self) -> Result<Vec<Rule>> {
        self.q("SELECT measure, min_paise, checkers FROM policy_rules ORDER BY id", &[])?
            .iter()
            .map(|r| {
                Ok(Rule {
                    measure: r.get("measure")?,
                    min: Amount::from_paise(r.get("min_paise")?),
                    checkers: r.get("checkers")?,
                })
            })
            .collect()
    }

    /// Replaces the approval policy (`payrun policy set`: the database's owner alone may).
    pub fn set_policy(&self, rules: &[Rule]) -> Result<()> {
        self.atomic(|| {
            self.x("DELETE FROM policy_rules", &[])?;
            for r in rules {
                self.x(
                    "INSERT INTO policy_rules (measure, min_paise, checkers) VALUES ($1, $2, $3)",
                    &vals![r.measure.as_str(), r.min.paise(), r.checkers],
                )?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_as_the_dashboards_write_them() {
        let r = Rule::parse("total>=1000000:2").expect("rule");
        assert_eq!((r.measure.as_str(), r.min, r.checkers), ("total", Amount::from_rupees(10_00_000), 2));
        let r = Rule::parse("max_row>=500000.50:3").expect("rule");
        assert_eq!((r.measure.as_str(), r.min.paise(), r.checkers), ("max_row", 5_00_000_50, 3));
        assert_eq!(Rule::parse("total>0:1").expect("rule").min.paise(), 1);
        for bad in ["total>=:2", "sum>=10:2", "total>=10", "total>=10:0", "total>=10:11", "total=10:2"] {
            assert!(Rule::parse(bad).is_err(), "{bad}");
        }
    }
}
