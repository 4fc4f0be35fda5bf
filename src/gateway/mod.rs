//! The AT MOON DPS gateway as payrun sees it: the wire format ([`wire`]) and a typed client
//! ([`client`]) whose every call returns an outcome enum the engine matches exhaustively.
//!
//! This module owns *what an answer means*. It never decides what to do about it (retry, resend,
//! give up): that is the engine's job, and the outcome types are shaped so the engine can decide
//! without looking at HTTP details. Adding a variant here forces every caller to decide what it means.
//!
//! It must never print or log a credential or a token, and never turn off certificate checks.

pub mod client;
pub mod wire;

use std::time::Duration;

pub use client::{ClientError, GatewayClient, PayoutRequest};

/// The answer to a payout posting.
#[derive(Debug, Clone, PartialEq)]
pub enum PayoutOutcome {
    /// The gateway took the payout. `pending` when it said ENQ001 (inquire later). The final bank
    /// result still comes from a status inquiry.
    Accepted { gateway_ref: Option<String>, pending: bool, code: Option<String>, message: String },
    /// TE0005: the gateway already has a payout with this reference (SPEC rules 3 and 7).
    Duplicate { message: String },
    /// A final refusal of this payout (TE0003, TE0007, TE0008, TE0020): no money moved.
    Rejected { code: String, message: String },
    /// TE0012, still after one fresh token: the gateway does not accept our tokens.
    TokenInvalid,
    /// HTTP 401 / "Invalid API credentials": stop the whole batch (rule 5).
    CredentialsRefused { message: String },
    /// Provably never reached the gateway (connection refused, 429/503 without a body): safe to retry.
    NotSent { retry_after: Option<Duration>, reason: String },
    /// Anything else (timeout, reset, 5xx, an unreadable body): the payout may or may not exist.
    Unknown { reason: String },
}

/// The answer to a status inquiry.
#[derive(Debug, Clone, PartialEq)]
pub enum StatusOutcome {
    /// SU0000: paid. `utr` is the bank's reference when the gateway gives one.
    Success { utr: Option<String>, payee: Payee, gateway_ref: Option<String>, message: String },
    /// ENQ001 / TE0009: not final yet.
    Pending { code: String, message: String, payee: Payee },
    /// `BE` + 4 digits: the beneficiary's bank refused it. Final; no money moved.
    FailedAtBank { code: String, message: String, payee: Payee },
    /// TE0011: the gateway does not know this reference.
    UnknownReference { message: String },
    /// TE0012, still after one fresh token.
    TokenInvalid,
    /// HTTP 401 / "Invalid API credentials".
    CredentialsRefused { message: String },
    /// Provably not processed; ask again after backoff.
    NotSent { retry_after: Option<Duration>, reason: String },
    /// No usable answer; ask again later.
    Unknown { reason: String },
}

/// The answer to a token request.
#[derive(Debug, Clone, PartialEq)]
pub enum TokenOutcome {
    Token {
        token: String,
        expires_in: Option<Duration>,
    },
    /// The gateway refused our credentials or our request (401, 400, 601, 602, 604).
    Refused {
        code: String,
        message: String,
    },
    NotSent {
        retry_after: Option<Duration>,
        reason: String,
    },
    Unknown {
        reason: String,
    },
}

/// The beneficiary a status answer describes. Used by SPEC rule 7: an answer counts for a row only
/// when it is about that row's account (and IFSC, when the answer gives one).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Payee {
    pub name: Option<String>,
    pub account: Option<String>,
    pub ifsc: Option<String>,
}

/// Whether a status answer is about a given row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayeeMatch {
    /// Account (and IFSC when given) agree.
    Same,
    /// The answer is about another beneficiary: a reference collision.
    Other,
    /// The answer names no account, so it cannot be checked.
    Unstated,
}

impl Payee {
    /// Compares this answer's payee with a row's account and IFSC. Masked account numbers
    /// (`XXXXXX4321`, `****4321`) match when every shown digit agrees and at least four are shown.
    pub fn matches(&self, account: &str, ifsc: &str) -> PayeeMatch {
        let Some(theirs) = self.account.as_deref() else {
            return PayeeMatch::Unstated;
        };
        if !account_matches(theirs, account) {
            return PayeeMatch::Other;
        }
        match self.ifsc.as_deref() {
            Some(i) if !i.trim().eq_ignore_ascii_case(ifsc.trim()) => PayeeMatch::Other,
            _ => PayeeMatch::Same,
        }
    }
}

fn account_matches(answer: &str, ours: &str) -> bool {
    let answer: String = answer.chars().filter(|c| !c.is_whitespace()).collect();
    let ours: String = ours.chars().filter(|c| !c.is_whitespace()).collect();
    if answer == ours {
        return true;
    }
    let is_mask = |c: char| matches!(c, 'X' | 'x' | '*' | '#');
    if !answer.chars().any(is_mask) {
        return false;
    }
    // Visible leading and trailing digits must agree; at least four shown in all.
    let head: String = answer.chars().take_while(|c| c.is_ascii_digit()).collect();
    let tail: String = {
        let t: Vec<char> = answer.chars().rev().take_while(|c| c.is_ascii_digit()).collect();
        t.into_iter().rev().collect()
    };
    let middle_ok = answer
        .chars()
        .skip(head.len())
        .take(answer.chars().count().saturating_sub(head.len() + tail.len()))
        .all(is_mask);
    middle_ok
        && head.len() + tail.len() >= 4
        && ours.starts_with(&head)
        && ours.ends_with(&tail)
        && ours.len() >= head.len() + tail.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(account: &str, ifsc: Option<&str>) -> Payee {
        Payee { name: None, account: Some(account.into()), ifsc: ifsc.map(Into::into) }
    }

    #[test]
    fn payee_matching() {
        assert_eq!(p("39628544321", Some("SBIN0011243")).matches("39628544321", "SBIN0011243"), PayeeMatch::Same);
        assert_eq!(p("39628544321", Some("sbin0011243")).matches("39628544321", "SBIN0011243"), PayeeMatch::Same);
        assert_eq!(p("39628544321", None).matches("39628544321", "SBIN0011243"), PayeeMatch::Same);
        assert_eq!(p("39628544322", None).matches("39628544321", "SBIN0011243"), PayeeMatch::Other);
        assert_eq!(p("39628544321", Some("HDFC0000001")).matches("39628544321", "SBIN0011243"), PayeeMatch::Other);
        assert_eq!(p("XXXXXXX4321", None).matches("39628544321", "SBIN0011243"), PayeeMatch::Same);
        assert_eq!(p("XXXXXXX4322", None).matches("39628544321", "SBIN0011243"), PayeeMatch::Other);
        assert_eq!(p("XXXXXXXXX21", None).matches("39628544321", "SBIN0011243"), PayeeMatch::Other);
        assert_eq!(p("3962****4321", None).matches("39628544321", "SBIN0011243"), PayeeMatch::Same);
        assert_eq!(Payee::default().matches("39628544321", "SBIN0011243"), PayeeMatch::Unstated);
    }
}
