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

use crate::money::Amount;

pub use client::{ClientError, GatewayClient, PayoutRequest};

/// The answer to a payout posting.
#[derive(Debug, Clone, PartialEq)]
pub enum PayoutOutcome {
    /// The gateway took the payout. `pending` when it said ENQ001 (inquire later). The final bank
    /// result still comes from a status inquiry.
    /// `payee` is the beneficiary the answer's transaction names, when it names one.
    Accepted { gateway_ref: Option<String>, pending: bool, code: Option<String>, message: String, payee: Payee },
    /// TE0005: the gateway already has a payout with this reference (SPEC rules 3 and 7).
    Duplicate { message: String },
    /// A refusal of the request's form on an HTTP 2xx (TE0003, TE0007, TE0008): refused before any
    /// processing, so no money moved (rule 7).
    Rejected { code: String, message: String },
    /// TE0020 on an HTTP 2xx, "any other failure, contact support": proves nothing by itself (the
    /// payout may have been applied); settled by status inquiry (rule 7).
    TechnicalFailure { message: String },
    /// TE0012, still after one fresh token: the gateway does not accept our tokens.
    TokenInvalid,
    /// HTTP 401 / "Invalid API credentials": stop the whole batch (rule 5).
    CredentialsRefused { message: String },
    /// HTTP 403 to a posting, still with a fresh token: the gateway forbids us. Nothing in the
    /// document or the SPEC says a 403 comes before any processing, so the payout is in doubt
    /// (rule 2); and asking again cannot help, so the batch stops.
    Forbidden { message: String },
    /// Provably never reached the gateway (connection refused, 429/503 without a body): safe to retry.
    NotSent { retry_after: Option<Duration>, reason: String },
    /// Anything else (timeout, reset, any 5xx whatever its body, a 429/503 with a body, an
    /// unreadable body, an unknown code): the payout may or may not exist.
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
    /// An answer about a payout under the id asked that contradicts itself (a nested status that
    /// says otherwise, "unknown reference" beside a payout's description, several transactions):
    /// it proves no fate, but says the gateway knows something under the id, so it breaks a run of
    /// "unknown reference" answers (rule 3) and counts toward parking an in-doubt row for a person.
    Contradictory { reason: String },
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

/// The beneficiary a status answer is about (rule 7: an answer counts for a row only when it is
/// about that row's payout).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Payee {
    pub name: Option<String>,
    pub account: Option<String>,
    pub ifsc: Option<String>,
    /// The amount the answer reports, when it reports one.
    pub amount: Option<Amount>,
    /// The gateway's order id of the payout the answer is about, when it gives one.
    pub order_id: Option<String>,
    /// The external reference of the payout the answer is about, when it gives one.
    pub reference: Option<String>,
}

/// Whether a status answer is about a given row's payee.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayeeMatch {
    /// Account (and IFSC, when given) agree, and the amount when given.
    Same,
    /// This row's account and IFSC, but another amount (charges added, or another payment).
    OtherAmount,
    /// Another account, or another IFSC: another beneficiary.
    OtherAccount,
    /// The answer names no account, or one in a form payrun cannot compare: it proves nothing.
    Unstated,
}

/// How two account numbers compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AccountCmp {
    Same,
    Different,
    Unreadable,
}

impl Payee {
    /// Compares this answer with a row. Account numbers compare as digits without leading zeros
    /// (an answer may carry the account as a JSON number); masked ones (`XXXXXX4321`, `3962****4321`)
    /// match when every shown digit agrees and at least four are shown; any other form is
    /// [`PayeeMatch::Unstated`], never a mismatch. A well-formed IFSC, when the answer gives one,
    /// must agree too. The amount is not part of the payee's identity: a different one is
    /// [`PayeeMatch::OtherAmount`].
    pub fn matches(&self, account: &str, ifsc: &str, amount: Option<Amount>) -> PayeeMatch {
        let Some(theirs) = self.account.as_deref() else {
            return PayeeMatch::Unstated;
        };
        match compare_accounts(theirs, account) {
            AccountCmp::Unreadable => return PayeeMatch::Unstated,
            AccountCmp::Different => return PayeeMatch::OtherAccount,
            AccountCmp::Same => {}
        }
        // The same bank (the IFSC's first four letters), whatever the branch: the payee of SPEC 3.2
        // (banks credit by account number; an answer may give the account's home branch).
        if let Some(i) = self.ifsc.as_deref().map(str::trim) {
            let readable = i.len() == 11 && i.bytes().all(|b| b.is_ascii_alphanumeric());
            let bank = |s: &str| s.trim().get(..4).map(str::to_ascii_uppercase);
            if readable && bank(i) != bank(ifsc) {
                return PayeeMatch::OtherAccount;
            }
        }
        if let (Some(a), Some(b)) = (self.amount, amount) {
            if a != b {
                return PayeeMatch::OtherAmount;
            }
        }
        PayeeMatch::Same
    }

    /// Whether the answer says outright that it is about another payout than the one asked about:
    /// it gives an external reference that is not `reference`. Such an answer is not about this
    /// row's payout, whichever payee it names (SPEC 3 rule 7): the same payee's payout of last
    /// month, read from a numeric reference taken for its order id, says nothing about this
    /// month's. An order id in the answer is not compared: the document itself shows the gateway's
    /// own id in a status answer's `payout_id` (`HOAD650297148300`) where the posting answered
    /// `Order-Id: 123456`, so a gateway may name one payout by two ids, and a row whose answers all
    /// looked like "another payout" would never settle.
    pub fn names_another_payout(&self, reference: &str) -> bool {
        self.reference.as_deref().is_some_and(|r| !same_id(r, reference))
    }

    /// Whether the answer says outright that it is about the payout under `reference` (it gives
    /// that external reference back).
    pub fn names_payout(&self, reference: &str) -> bool {
        self.reference.as_deref().is_some_and(|r| same_id(r, reference))
    }

    /// The payee as a short text for messages: `account 3962****4321, amount 1500.00`.
    pub fn describe(&self) -> String {
        format!(
            "account {}, amount {}",
            self.account.as_deref().unwrap_or("(none)"),
            self.amount.map(|a| a.to_string()).unwrap_or_else(|| "(none)".into())
        )
    }
}

/// Two ids as a gateway may write them back: case and surrounding space ignored, and an all-digit
/// id compared without leading zeros (a JSON number loses them).
fn same_id(a: &str, b: &str) -> bool {
    let (a, b) = (a.trim(), b.trim());
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
    if digits(a) && digits(b) {
        return a.trim_start_matches('0') == b.trim_start_matches('0');
    }
    a.eq_ignore_ascii_case(b)
}

fn compare_accounts(answer: &str, ours: &str) -> AccountCmp {
    let answer: String = answer.chars().filter(|c| !c.is_whitespace() && *c != '-').collect();
    let ours: &str = ours.trim();
    if !answer.is_empty() && answer.bytes().all(|b| b.is_ascii_digit()) {
        let same = answer.trim_start_matches('0') == ours.trim_start_matches('0');
        return if same { AccountCmp::Same } else { AccountCmp::Different };
    }
    let is_mask = |c: char| matches!(c, 'X' | 'x' | '*' | '#');
    if answer.is_empty() || !answer.chars().all(|c| c.is_ascii_digit() || is_mask(c)) {
        return AccountCmp::Unreadable;
    }
    // Visible leading and trailing digits must agree; at least four shown in all.
    let head: String = answer.chars().take_while(|c| c.is_ascii_digit()).collect();
    let tail: String = {
        let t: Vec<char> = answer.chars().rev().take_while(|c| c.is_ascii_digit()).collect();
        t.into_iter().rev().collect()
    };
    let middle_is_mask =
        answer.chars().skip(head.len()).take(answer.len().saturating_sub(head.len() + tail.len())).all(is_mask);
    if !middle_is_mask || head.len() + tail.len() < 4 {
        return AccountCmp::Unreadable;
    }
    if ours.starts_with(&head) && ours.ends_with(&tail) && ours.len() >= head.len() + tail.len() {
        AccountCmp::Same
    } else {
        AccountCmp::Different
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(account: &str, ifsc: Option<&str>) -> Payee {
        Payee { account: Some(account.into()), ifsc: ifsc.map(Into::into), ..Payee::default() }
    }

    #[test]
    fn payee_matching() {
        let m = |p: Payee| p.matches("39628544321", "SBIN0011243", None);
        assert_eq!(m(p("39628544321", Some("SBIN0011243"))), PayeeMatch::Same);
        assert_eq!(m(p("39628544321", Some("sbin0011243"))), PayeeMatch::Same);
        assert_eq!(m(p("39628544321", None)), PayeeMatch::Same);
        assert_eq!(m(p("39628544322", None)), PayeeMatch::OtherAccount);
        assert_eq!(m(p("39628544321", Some("HDFC0000001"))), PayeeMatch::OtherAccount);
        // Another branch of the same bank is the same payee (SPEC 3.2, rule 7).
        assert_eq!(m(p("39628544321", Some("SBIN0000691"))), PayeeMatch::Same);
        assert_eq!(m(p("39628544321", Some("n/a"))), PayeeMatch::Same, "an unreadable IFSC proves nothing");
        assert_eq!(m(p("XXXXXXX4321", None)), PayeeMatch::Same);
        assert_eq!(m(p("XXXXXXX4322", None)), PayeeMatch::OtherAccount);
        assert_eq!(m(p("XXXXXXXXX21", None)), PayeeMatch::Unstated, "two digits shown prove nothing");
        assert_eq!(m(p("3962****4321", None)), PayeeMatch::Same);
        assert_eq!(m(p("XXXX-4321", None)), PayeeMatch::Same);
        assert_eq!(m(p("acct ending 4321", None)), PayeeMatch::Unstated);
        assert_eq!(m(Payee::default()), PayeeMatch::Unstated);
        // An account sent back as a JSON number loses its leading zeros: still the same account.
        assert_eq!(p("401104000123456", None).matches("0401104000123456", "SBIN0011243", None), PayeeMatch::Same);
        // The amount, when given, must agree.
        let with = |a: &str| Payee { amount: crate::money::parse_plain(a), ..p("39628544321", None) };
        let ours = crate::money::parse_plain("1500");
        assert_eq!(with("1500.00").matches("39628544321", "SBIN0011243", ours), PayeeMatch::Same);
        assert_eq!(with("1499.99").matches("39628544321", "SBIN0011243", ours), PayeeMatch::OtherAmount);
        assert_eq!(with("1505.90").matches("39628544321", "SBIN0011243", ours), PayeeMatch::OtherAmount, "charges");
        // Another account is another account whatever the amount.
        let other = Payee { amount: crate::money::parse_plain("1500"), ..p("111122223333", None) };
        assert_eq!(other.matches("39628544321", "SBIN0011243", ours), PayeeMatch::OtherAccount);
    }

    #[test]
    fn an_answer_that_names_another_payout() {
        let by = |order_id: Option<&str>, reference: Option<&str>| Payee {
            order_id: order_id.map(Into::into),
            reference: reference.map(Into::into),
            ..p("39628544321", None)
        };
        // Nothing named, or this payout's own reference (re-cased, as a number): this payout.
        assert!(!by(None, None).names_another_payout("1001"));
        assert!(!by(Some("AMD77"), Some("1001")).names_another_payout("1001"));
        assert!(!by(Some("amd77"), Some("001001")).names_another_payout("1001"));
        // An order id alone is never compared: the gateway may name one payout by two ids.
        assert!(!by(Some("HOAD650297148300"), None).names_another_payout("1001"));
        // Another reference: another payout.
        assert!(by(None, Some("OLD-1")).names_another_payout("1001"));
        assert!(by(Some("1001"), Some("OLD-1")).names_another_payout("1001"));
        assert!(by(Some("OLD-1"), Some("old-1 ")).names_another_payout("1001"));
    }
}
