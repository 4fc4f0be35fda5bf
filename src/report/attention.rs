//! The rows that need someone (SPEC section 5): FAILED, HELD and PENDING rows, and INVALID rows of
//! a batch run with `--skip-invalid`, each with the next step in words and the whole command to
//! type. A FAILED or INVALID row whose obligation another batch pays again (SPEC 3.2b) needs nobody.
//!
//! This module owns which kind of attention a row needs and what the operator is told to do about
//! it; the terminal summary, `--json` and the workbook's "Needs attention" sheet all take their
//! words from here, so they never disagree. It reads rows; it never changes one, and it never
//! suggests paying again a row whose money may have moved (only FAILED rows are pointed at
//! `payrun failed`).
//!
//! It works from the result-status word and the row's code, not from the journal's state names, so
//! a state that maps to HELD or CANCELLED is handled by the status it shows.

use serde::Serialize;

use crate::journal::{Batch, Journal, Row, RowState};
use crate::money::Amount;

/// Result statuses that need someone, in the order the summary names them.
pub const ATTENTION_STATUSES: [&str; 4] = ["FAILED", "HELD", "PENDING", "INVALID"];

/// Codes of a PENDING row that payrun cannot decide by itself: a person checks and records the
/// finding with `payrun resolve` (SPEC section 3, rule 9).
pub const FOR_A_PERSON: [&str; 3] = ["PAYEE_MISMATCH", "AMOUNT_MISMATCH", "REF_ALREADY_USED"];

/// What kind of attention a row needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// Proven unpaid: correct and pay again through `payrun failed`.
    Failed,
    /// Held as a possible repeat payment: check, then approve.
    HeldRepeat,
    /// Held because the payee's bank details changed: confirm by phone, then approve.
    HeldPayeeChanged,
    /// Pending with evidence payrun cannot decide: a person checks, then resolves.
    PendingForPerson,
    /// Pending at the gateway or bank: wait, then resume.
    PendingWait,
    /// Never sent: it failed validation (`--skip-invalid`); correct it and pay it through
    /// `payrun failed`.
    Invalid,
}

impl Kind {
    pub const ALL: [Kind; 6] = [
        Kind::Failed,
        Kind::HeldRepeat,
        Kind::HeldPayeeChanged,
        Kind::PendingForPerson,
        Kind::PendingWait,
        Kind::Invalid,
    ];

    /// The kind of a row by its result status, its shown code, the code the journal holds and its
    /// attempts; `None` for rows that need nobody (SUCCESS, NOT_SENT, CANCELLED).
    pub fn of(status: &str, code: &str, stored_code: Option<&str>, attempts: u32) -> Option<Kind> {
        match status {
            "FAILED" => Some(Kind::Failed),
            "INVALID" => Some(Kind::Invalid),
            "HELD" if code == "PAYEE_CHANGED" => Some(Kind::HeldPayeeChanged),
            "HELD" => Some(Kind::HeldRepeat),
            "PENDING" if FOR_A_PERSON.contains(&code) => Some(Kind::PendingForPerson),
            // In doubt after the maximum attempts: payrun will not send it again, so waiting does
            // not help; a person must find out whether the money moved.
            "PENDING" if code == "IN_DOUBT" && (stored_code == Some("IN_DOUBT") || attempts >= max_attempts()) => {
                Some(Kind::PendingForPerson)
            }
            "PENDING" => Some(Kind::PendingWait),
            _ => None,
        }
    }

    /// The kind of a journal row (none for an unpaid row another batch pays again: SPEC 3.2b).
    pub fn of_row(row: &Row) -> Option<Kind> {
        if row.repaid.is_some() {
            return None;
        }
        let s = &row.status;
        Kind::of(s.state().result_status(), &super::code_of(row), s.code.as_deref(), s.attempts)
    }

    /// The label the terminal uses for a group of rows of this kind.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Failed => "FAILED",
            Kind::HeldRepeat => "HELD (REPEAT_PAYMENT)",
            Kind::HeldPayeeChanged => "HELD (PAYEE_CHANGED)",
            Kind::PendingForPerson => "PENDING, for a person",
            Kind::PendingWait => "PENDING",
            Kind::Invalid => "INVALID",
        }
    }

    /// The next step in words (the command follows it).
    pub fn words(self) -> &'static str {
        match self {
            Kind::Failed => "correct the row if needed, then pay it again from",
            Kind::HeldRepeat => "check it is not paid twice; to pay it:",
            Kind::HeldPayeeChanged => "confirm the new bank account with the payee by phone, not email; then",
            Kind::PendingForPerson => "check with the gateway or bank statement, then",
            Kind::PendingWait => "wait, then",
            Kind::Invalid => "correct the row, then pay it from",
        }
    }

    /// The whole command for rows `lines` (`LINE`/`LIST` placeholders when none or too many are
    /// given). `state_arg` is ` --state DIR` when the state directory is not the default, else
    /// empty.
    pub fn command(self, batch: &str, state_arg: &str, lines: &[u64]) -> String {
        match self {
            Kind::Failed | Kind::Invalid => format!("payrun failed {batch}{state_arg} --out retry.csv"),
            Kind::HeldRepeat | Kind::HeldPayeeChanged => {
                let list = if lines.is_empty() { "LIST".to_string() } else { line_list(lines) };
                format!("payrun approve {batch}{state_arg} --rows {list} --reason \"...\"")
            }
            Kind::PendingForPerson => {
                let line = match lines {
                    [one] => one.to_string(),
                    _ => "LINE".to_string(),
                };
                format!("payrun resolve {batch}{state_arg} --row {line} --as paid|unpaid --reason \"...\"")
            }
            Kind::PendingWait => format!("payrun resume {batch}{state_arg}"),
        }
    }

    /// The next step for one row, words and command in one sentence.
    pub fn next_step(self, batch: &str, state_arg: &str, line: u64) -> String {
        format!("{} `{}`", self.words(), self.command(batch, state_arg, &[line]))
    }
}

/// Line numbers as `approve --rows` takes them, runs of consecutive lines shortened: `3,7,12-15`.
pub fn line_list(lines: &[u64]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let start = lines[i];
        let mut end = start;
        while i + 1 < lines.len() && lines[i + 1] == end + 1 {
            i += 1;
            end = lines[i];
        }
        parts.push(match end - start {
            0 => start.to_string(),
            1 => format!("{start},{end}"),
            _ => format!("{start}-{end}"),
        });
        i += 1;
    }
    parts.join(",")
}

/// Attempts after which an in-doubt row is not sent again (the engine's limit).
fn max_attempts() -> u32 {
    crate::engine::EngineConfig::default().max_attempts
}

/// One row that needs someone, as the summary and `--json` show it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AttentionRow {
    /// The row's physical line in the input file.
    pub line: u64,
    pub name: String,
    pub account: String,
    pub amount: Option<Amount>,
    pub status: String,
    pub code: String,
    pub reason: String,
    /// The next step in words, with the whole command.
    pub next_step: String,
    #[serde(skip)]
    pub kind: Kind,
}

impl AttentionRow {
    /// The row as it needs attention, or `None` when it needs nobody.
    pub fn of(row: &Row, batch: &str, state_arg: &str) -> Option<AttentionRow> {
        let kind = Kind::of_row(row)?;
        let code = super::code_of(row);
        Some(AttentionRow {
            line: row.line,
            name: row.name.clone(),
            account: row.account.clone(),
            amount: row.amount,
            status: row.status.state().result_status().to_string(),
            reason: reason(row, &code),
            code,
            next_step: kind.next_step(batch, state_arg, row.line),
            kind,
        })
    }
}

/// Why the row needs someone: its message, else its code. A pending row whose message is the
/// posting's "Success" (the gateway took the request; the bank has not answered) says so instead:
/// "Success" beside PENDING would read as paid.
pub fn reason(row: &Row, code: &str) -> String {
    let message = row.status.message.as_deref().map(str::trim).unwrap_or("");
    let pending = row.status.state().result_status() == "PENDING";
    if pending && (message.is_empty() || message.to_ascii_lowercase().contains("success")) {
        return match code {
            "IN_DOUBT" => "the answer to the payout request was lost; payrun asks the gateway".to_string(),
            _ => "accepted; the bank has not answered yet".to_string(),
        };
    }
    if message.is_empty() { code.to_string() } else { message.to_string() }
}

/// Up to `limit` rows of `batch` that need someone, in input order. Reads only those rows (by the
/// journal's state index), so it is quick on a batch of a million rows.
pub fn collect(journal: &Journal, batch: &Batch, state_arg: &str, limit: usize) -> anyhow::Result<Vec<AttentionRow>> {
    let mut rows: Vec<Row> = Vec::new();
    for state in RowState::ALL {
        if ATTENTION_STATUSES.contains(&state.result_status()) {
            rows.extend(journal.rows_in_state(&batch.id, state, 0, limit)?);
        }
    }
    rows.sort_by_key(|r| r.seq);
    Ok(rows.iter().filter_map(|r| AttentionRow::of(r, &batch.id, state_arg)).take(limit).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_by_status_and_code() {
        assert_eq!(Kind::of("FAILED", "BE1001", Some("BE1001"), 1), Some(Kind::Failed));
        assert_eq!(Kind::of("HELD", "REPEAT_PAYMENT", Some("REPEAT_PAYMENT"), 0), Some(Kind::HeldRepeat));
        assert_eq!(Kind::of("HELD", "PAYEE_CHANGED", Some("PAYEE_CHANGED"), 0), Some(Kind::HeldPayeeChanged));
        for code in FOR_A_PERSON {
            assert_eq!(Kind::of("PENDING", code, Some(code), 1), Some(Kind::PendingForPerson), "{code}");
        }
        assert_eq!(Kind::of("PENDING", "IN_DOUBT", None, 1), Some(Kind::PendingWait));
        assert_eq!(Kind::of("PENDING", "IN_DOUBT", None, max_attempts()), Some(Kind::PendingForPerson));
        assert_eq!(Kind::of("PENDING", "IN_DOUBT", Some("IN_DOUBT"), 2), Some(Kind::PendingForPerson));
        assert_eq!(Kind::of("PENDING", "ENQ001", Some("ENQ001"), 1), Some(Kind::PendingWait));
        assert_eq!(Kind::of("INVALID", "BAD_IFSC", Some("BAD_IFSC"), 0), Some(Kind::Invalid));
        for status in ["SUCCESS", "NOT_SENT", "CANCELLED"] {
            assert_eq!(Kind::of(status, "", None, 0), None, "{status}");
        }
    }

    #[test]
    fn a_pending_row_never_reads_as_success() {
        use crate::journal::RowStatus;
        let mut row = Row {
            seq: 1,
            line: 2,
            name: "Asha".into(),
            account: "000123456789".into(),
            ifsc: "HDFC0000003".into(),
            amount: Some(Amount::from_rupees(10)),
            mode: None,
            remarks: String::new(),
            payee_list_id: String::new(),
            payee_id: String::new(),
            external_ref: None,
            obligation: "b:2".into(),
            repaid: None,
            status: RowStatus { message: Some("Success".into()), ..RowStatus::new(RowState::Accepted) },
        };
        let r = AttentionRow::of(&row, "b", "").expect("pending needs someone");
        assert_eq!(r.status, "PENDING");
        assert!(!r.reason.to_lowercase().contains("success"), "{}", r.reason);
        assert!(r.next_step.contains("payrun resume b"), "{}", r.next_step);
        row.status = RowStatus {
            code: Some("BE1001".into()),
            message: Some("Account closed".into()),
            ..RowStatus::new(RowState::Failed)
        };
        let r = AttentionRow::of(&row, "b", "").expect("failed needs someone");
        assert_eq!((r.code.as_str(), r.reason.as_str()), ("BE1001", "Account closed"));
        row.status = RowStatus::new(RowState::Success);
        assert_eq!(AttentionRow::of(&row, "b", ""), None);
    }

    #[test]
    fn commands_are_whole_and_name_the_state_when_not_default() {
        let s = crate::batch::StateDir { path: "my state".into(), is_default: false }.arg();
        assert_eq!(s, " --state 'my state'");
        assert_eq!(Kind::Failed.command("abc123", &s, &[4]), "payrun failed abc123 --state 'my state' --out retry.csv");
        assert_eq!(Kind::PendingWait.command("abc123", "", &[4]), "payrun resume abc123");
        assert_eq!(
            Kind::HeldRepeat.command("abc123", "", &[4, 9]),
            "payrun approve abc123 --rows 4,9 --reason \"...\""
        );
        assert_eq!(
            Kind::PendingForPerson.command("abc123", "", &[7]),
            "payrun resolve abc123 --row 7 --as paid|unpaid --reason \"...\""
        );
        assert_eq!(
            Kind::PendingForPerson.command("abc123", "", &[7, 8]),
            "payrun resolve abc123 --row LINE --as paid|unpaid --reason \"...\""
        );
        assert!(Kind::HeldPayeeChanged.next_step("b", "", 3).contains("by phone, not email"));
        assert_eq!(crate::batch::StateDir { path: "S".into(), is_default: true }.arg(), "");
    }
}
