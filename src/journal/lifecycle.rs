//! The row lifecycle of SPEC section 3, written down in one place.
//!
//! [`apply`] is the only function that decides a row's next state: (current status, event) → next
//! status, or an [`Illegal`] error. The engine calls it for every answer (after
//! [`crate::engine::reading`] has said what the answer means), resume calls it for recovery, the
//! batch guards for holds and cancels, and a person's finding goes through it too. The journal
//! refuses to store a transition whose "from" state is not what is on disk. An illegal transition
//! stops the program; it is never ignored (the TigerBeetle way).
//!
//! The one principle behind every arrow: **FAILED only on proof that the money did not move,
//! SUCCESS only on proof that it did.** Anything ambiguous stays PENDING (states `in_doubt`,
//! `accepted`, `pending`) and, when payrun cannot decide it by asking, is *parked* with a code that
//! tells a person what to check ([`PERSON_CODES`]); only `payrun resolve` moves a parked row.
//!
//! ```text
//!            Hold ┌──────┐ Release                         Settled / BankFailed
//!     ┌──────────▶│ held │──────────┐          ┌──────────────────────────────▶ success / failed
//!     │           └──────┘          ▼          │
//!   ready ◀────────────────────── ready ──Claim──▶ sending ──Accepted──▶ accepted / pending
//!     │  Cancel (ready, held: never   ▲          │  │ Lost, Recovered, TechnicalFailure (TE0020),
//!     │  a row that was ever sent)    │          │  │
//!     ▼                               │ NotSent  │  │ Duplicate (TE0005), Rejected on a resend
//!  cancelled                          └──────────┘  ▼
//!                                                in_doubt ──Claim (lost answers only, after two
//!   sending ── Rejected (TE0003/7/8) on the         │         TE0011 a grace period apart)──▶ sending
//!              first attempt ──▶ failed             ├── NeverApplied (a TE0020 doubt, after two TE0011) ▶ failed
//!                                                   ├── Conflict (a TE0005 doubt, another account) ▶ failed
//!   accepted / pending / in_doubt ── NeedsPerson ──▶ pending (parked: PAYEE_MISMATCH, AMOUNT_MISMATCH,
//!                                                    REF_ALREADY_USED) or in_doubt (parked: IN_DOUBT)
//!   accepted / pending / in_doubt ── Resolved paid (a person's finding) ──▶ success
//!   parked (pending / in_doubt with a person's code) ── Resolved unpaid ──▶ failed
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};

/// Where a row is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RowState {
    /// Failed validation; never sent.
    Invalid,
    /// Valid, but not sent until a person approves it (a possible repeat payment or a changed
    /// bank account: SPEC 3.2, 3.3).
    Held,
    /// Valid, not sent (or provably not received).
    Ready,
    /// Intent durable; the request may be in flight.
    Sending,
    /// The gateway accepted it; final status not known yet.
    Accepted,
    /// The outcome of a send is unknown: resolve by status inquiry before anything else.
    InDoubt,
    /// The gateway says pending (or a person must look: see [`PERSON_CODES`]).
    Pending,
    /// Paid (final).
    Success,
    /// Not paid (final).
    Failed,
    /// Never sent, and never will be: the batch was cancelled (final).
    Cancelled,
}

impl RowState {
    pub const ALL: [RowState; 10] = [
        RowState::Invalid,
        RowState::Held,
        RowState::Ready,
        RowState::Sending,
        RowState::Accepted,
        RowState::InDoubt,
        RowState::Pending,
        RowState::Success,
        RowState::Failed,
        RowState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RowState::Invalid => "invalid",
            RowState::Held => "held",
            RowState::Ready => "ready",
            RowState::Sending => "sending",
            RowState::Accepted => "accepted",
            RowState::InDoubt => "in_doubt",
            RowState::Pending => "pending",
            RowState::Success => "success",
            RowState::Failed => "failed",
            RowState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<RowState> {
        RowState::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Nothing more will happen to the row.
    pub fn is_final(self) -> bool {
        matches!(self, RowState::Success | RowState::Failed | RowState::Invalid | RowState::Cancelled)
    }

    /// The gateway may have the payout, and it is not final: it needs status inquiries.
    pub fn needs_inquiry(self) -> bool {
        matches!(self, RowState::Accepted | RowState::InDoubt | RowState::Pending)
    }

    /// The row was sent at least once (the gateway may have it, or answered it).
    pub fn was_sent(self) -> bool {
        self.needs_inquiry() || matches!(self, RowState::Sending | RowState::Success | RowState::Failed)
    }

    /// The row may still be paid (SPEC 3.2 rule a): not final, whether sent or not.
    pub fn may_still_be_paid(self) -> bool {
        !self.is_final()
    }

    /// The status word of the result file (SPEC section 5).
    pub fn result_status(self) -> &'static str {
        match self {
            RowState::Invalid => "INVALID",
            RowState::Held => "HELD",
            RowState::Ready => "NOT_SENT",
            RowState::Sending | RowState::Accepted | RowState::InDoubt | RowState::Pending => "PENDING",
            RowState::Success => "SUCCESS",
            RowState::Failed => "FAILED",
            RowState::Cancelled => "CANCELLED",
        }
    }
}

impl fmt::Display for RowState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A row whose reference belongs to someone else's payout: proven by TE0005 on its first attempt
/// and a status answer naming another account (rule 8). FAILED: its own payout was never applied.
pub const REF_CONFLICT: &str = "REF_CONFLICT";
/// A status answer about this row's payout names another account (rule 7): a person checks.
pub const PAYEE_MISMATCH: &str = "PAYEE_MISMATCH";
/// A status answer names this row's account with another amount (rule 7): a person checks.
pub const AMOUNT_MISMATCH: &str = "AMOUNT_MISMATCH";
/// The file's own reference is already at the gateway for this payee, or for a payee the answer
/// does not name (rule 8): this row's earlier payment, or another payment under a reused
/// reference. A person checks.
pub const REF_ALREADY_USED: &str = "REF_ALREADY_USED";
/// The outcome is unknown and payrun will not send again (maximum attempts, or answers that never
/// name a payee): a person checks.
pub const IN_DOUBT: &str = "IN_DOUBT";
/// Held: the same payee has a payment in another batch (SPEC 3.2).
pub const REPEAT_PAYMENT: &str = "REPEAT_PAYMENT";
/// Held: this payee id was paid before to another account (SPEC 3.3).
pub const PAYEE_CHANGED: &str = "PAYEE_CHANGED";
/// Held: the obligation this retry row pays again is already paid, or may be, by another row
/// (SPEC 3.2b).
pub const ALREADY_RETRIED: &str = "ALREADY_RETRIED";
/// A person's finding (`payrun resolve`).
pub const RESOLVED: &str = "RESOLVED";
/// Refused at posting with "technical failure, contact support": proves nothing by itself.
pub const TE0020: &str = "TE0020";
/// The code an in-doubt row carries after TE0005 on its first attempt, until an inquiry decides.
pub const DUPLICATE_FIRST: &str = "TE0005";

/// Codes of rows that wait for a person: payrun sends nothing for them and asks nothing more;
/// `payrun resolve` records a person's finding.
pub const PERSON_CODES: [&str; 4] = [PAYEE_MISMATCH, AMOUNT_MISMATCH, REF_ALREADY_USED, IN_DOUBT];

/// Why an in-doubt row is in doubt, which decides what two "unknown reference" answers mean.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Doubt {
    /// The answer to a posting was lost (timeout, reset, 5xx, unreadable): after two TE0011 a grace
    /// period apart, send again with the same reference.
    Lost,
    /// TE0020 at posting: never sent again; after two TE0011, FAILED TE0020.
    TechnicalFailure,
    /// TE0005 on the first attempt: never sent again; an inquiry decides whose payout it is.
    Duplicate,
    /// Parked: a person decides.
    Parked,
}

/// Everything the journal keeps about a row's progress.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RowStatus {
    pub state: Option<RowState>,
    /// Posting requests that may have reached the gateway (a request it provably never received
    /// does not count). `1` during the first attempt: TE0005 then may be a collision (rule 8).
    pub attempts: u32,
    pub gateway_ref: Option<String>,
    pub code: Option<String>,
    pub message: Option<String>,
    pub utr: Option<String>,
    pub submitted_at: Option<String>,
    pub completed_at: Option<String>,
    /// When the latest posting attempt was claimed (RFC 3339): its request cannot have timed out
    /// before this plus the client's timeout, so no TE0011 before then counts (rule 3).
    pub sent_at: Option<String>,
    /// A confirmation covers the row (SPEC 3.2c): the operator saw it in the control totals they
    /// confirmed (or the batch runs against the embedded sandbox, where no money moves). A ready row
    /// is claimed only when confirmed; a released row is not, until confirmed again.
    pub confirmed: bool,
}

impl RowStatus {
    pub fn new(state: RowState) -> RowStatus {
        RowStatus { state: Some(state), ..RowStatus::default() }
    }

    pub fn state(&self) -> RowState {
        self.state.unwrap_or(RowState::Ready)
    }

    /// The row waits for a person (`payrun resolve`); payrun neither sends nor asks about it.
    pub fn parked(&self) -> bool {
        matches!(self.state(), RowState::Pending | RowState::InDoubt)
            && self.code.as_deref().is_some_and(|c| PERSON_CODES.contains(&c))
    }

    /// Why an in-doubt row is in doubt (meaningless in other states).
    pub fn doubt(&self) -> Doubt {
        match self.code.as_deref() {
            Some(TE0020) => Doubt::TechnicalFailure,
            Some(DUPLICATE_FIRST) => Doubt::Duplicate,
            Some(IN_DOUBT) => Doubt::Parked,
            _ => Doubt::Lost,
        }
    }
}

/// Something that happened to a row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Not sent until a person approves: a possible repeat payment or a changed bank account.
    Hold { code: String, message: String },
    /// A held row may be sent (approved, `--allow-repeat`, or its reason is gone).
    Release { message: String },
    /// The batch is abandoned: a row not sent is never sent.
    Cancel { message: String },
    /// About to post: the intent, made durable before the request leaves (rule 1).
    Claim,
    /// The gateway accepted the posting (`pending` for ENQ001).
    Accepted { gateway_ref: Option<String>, pending: bool, code: Option<String>, message: String },
    /// Refused at posting on an HTTP 2xx with TE0003, TE0007 or TE0008: proof nothing was applied.
    Rejected { code: String, message: String },
    /// TE0020 at posting ("technical failure"): proves nothing (rule 7).
    TechnicalFailure { message: String },
    /// TE0005 at posting: the gateway has a payout with this reference (rules 3 and 8).
    Duplicate { message: String },
    /// The posting's outcome is unknown (timeout, reset, 5xx, unreadable answer).
    Lost { reason: String },
    /// The posting provably never reached the gateway.
    NotSent { reason: String },
    /// The process restarted while the row was `sending`.
    Recovered,
    /// Status inquiry: paid.
    Settled { utr: Option<String>, gateway_ref: Option<String>, message: String },
    /// Status inquiry: failed at the bank.
    BankFailed { code: String, message: String },
    /// Status inquiry: pending.
    StillPending { code: String, message: String },
    /// A TE0020 doubt the gateway then said twice it does not know (rule 7): never applied.
    NeverApplied { message: String },
    /// A TE0005 doubt whose payout is another account's (rule 8): this row's was never applied.
    Conflict { message: String },
    /// Payrun cannot decide: park the row for a person, with one of [`PERSON_CODES`].
    NeedsPerson { code: &'static str, message: String },
    /// A person's finding (`payrun resolve`): paid or not, with their reason.
    Resolved { paid: bool, utr: Option<String>, message: String },
}

impl Event {
    pub fn name(&self) -> &'static str {
        match self {
            Event::Hold { .. } => "hold",
            Event::Release { .. } => "release",
            Event::Cancel { .. } => "cancel",
            Event::Claim => "claim",
            Event::Accepted { .. } => "accepted",
            Event::Rejected { .. } => "rejected",
            Event::TechnicalFailure { .. } => "technical_failure",
            Event::Duplicate { .. } => "duplicate",
            Event::Lost { .. } => "lost",
            Event::NotSent { .. } => "not_sent",
            Event::Recovered => "recovered",
            Event::Settled { .. } => "settled",
            Event::BankFailed { .. } => "bank_failed",
            Event::StillPending { .. } => "still_pending",
            Event::NeverApplied { .. } => "never_applied",
            Event::Conflict { .. } => "conflict",
            Event::NeedsPerson { .. } => "needs_person",
            Event::Resolved { .. } => "resolved",
        }
    }
}

/// A transition the lifecycle does not allow. Reaching one is a bug: stop, do not guess.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("illegal row transition: {event} in state {from}")]
pub struct Illegal {
    pub from: RowState,
    pub event: &'static str,
}

/// The lifecycle: the next status of a row after `event`, at time `now` (RFC 3339).
pub fn apply(old: &RowStatus, event: &Event, now: &str) -> Result<RowStatus, Illegal> {
    use RowState::*;
    let from = old.state();
    let illegal = || Illegal { from, event: event.name() };
    let mut s = old.clone();
    let finish = |s: &mut RowStatus, state: RowState| {
        s.state = Some(state);
        s.completed_at = Some(now.to_string());
    };
    // Moving a row that waits for a person takes a person.
    if old.parked() && !matches!(event, Event::Resolved { .. }) {
        // An in-doubt row parked for a person may still be asked about (`status --refresh`,
        // `resume`): an answer that proves its fate settles it; it is never sent again.
        let provable = from == InDoubt
            && matches!(event, Event::Settled { .. } | Event::BankFailed { .. } | Event::StillPending { .. });
        if !provable {
            return Err(illegal());
        }
    }
    match (from, event) {
        (Ready, Event::Hold { code, message }) => {
            s.state = Some(Held);
            s.code = Some(code.clone());
            s.message = Some(message.clone());
            s.confirmed = false;
        }
        // A released row is a change of what is sent: no earlier confirmation covers it (3.2c).
        (Held, Event::Release { message }) => {
            s.state = Some(Ready);
            s.code = None;
            s.message = Some(message.clone());
            s.confirmed = false;
        }
        // CANCELLED only for a row no request ever left for (SPEC 3 rule 11): held, or ready with no
        // attempt that may have reached the gateway (a request provably never received does not
        // count). A row ever sent is followed to proof whatever a person did to its batch: in a
        // cancelled batch, a lost answer that the gateway then says twice it does not know proves
        // nothing (there is no resend a TE0005 could answer), so it is parked IN_DOUBT for a person.
        (Ready | Held, Event::Cancel { message }) if s.attempts == 0 => {
            s.message = Some(message.clone());
            finish(&mut s, Cancelled);
        }
        // Every rupee sent was confirmed (SPEC 3.2c): a ready row only when a confirmation covers
        // it. A resend only for a lost answer: TE0020 and TE0005 doubts are never sent again.
        (Ready, Event::Claim) | (InDoubt, Event::Claim)
            if (from == Ready && old.confirmed) || (from == InDoubt && old.doubt() == Doubt::Lost) =>
        {
            s.state = Some(Sending);
            s.attempts += 1;
            if s.submitted_at.is_none() {
                s.submitted_at = Some(now.to_string());
            }
            s.sent_at = Some(now.to_string());
        }
        (Sending, Event::Accepted { gateway_ref, pending, code, message }) => {
            s.state = Some(if *pending { Pending } else { Accepted });
            if gateway_ref.is_some() {
                s.gateway_ref = gateway_ref.clone();
            }
            s.code = code.clone();
            s.message = Some(message.clone());
        }
        // A form refusal of the first attempt is proof. A refusal of a resend is not: the first
        // attempt's fate was only inferred from "unknown reference", so ask again.
        (Sending, Event::Rejected { code, message }) if s.attempts <= 1 => {
            s.code = Some(code.clone());
            s.message = Some(message.clone());
            finish(&mut s, Failed);
        }
        (Sending, Event::Rejected { code, message }) => {
            s.state = Some(InDoubt);
            s.code = None;
            s.message = Some(format!("resend refused ({code}: {message}); an earlier attempt may still exist"));
        }
        (Sending, Event::TechnicalFailure { message }) => {
            s.state = Some(InDoubt);
            s.code = Some(TE0020.into());
            s.message = Some(format!(
                "TE0020 at posting ({message}): proves nothing by itself; asking the gateway, never sending again"
            ));
        }
        (Sending, Event::Duplicate { message }) if s.attempts <= 1 => {
            s.state = Some(InDoubt);
            s.code = Some(DUPLICATE_FIRST.into());
            s.message = Some(format!(
                "TE0005 on the first attempt ({message}): the gateway has a payout with this reference; asking whose"
            ));
        }
        (Sending, Event::Duplicate { message }) => {
            s.state = Some(InDoubt);
            s.code = None;
            s.message = Some(format!("resend answered TE0005 (the gateway has it): {message}"));
        }
        (Sending, Event::Lost { reason }) => {
            s.state = Some(InDoubt);
            s.code = None;
            s.message = Some(reason.clone());
        }
        // Provably not received: this attempt does not count. A first attempt goes back to ready; a
        // resend goes back to in doubt (an earlier attempt may have been delivered).
        (Sending, Event::NotSent { reason }) => {
            s.attempts = s.attempts.saturating_sub(1);
            s.state = Some(if s.attempts == 0 { Ready } else { InDoubt });
            s.message = Some(reason.clone());
        }
        (Sending, Event::Recovered) => {
            s.state = Some(InDoubt);
            s.code = None;
            s.message = Some("interrupted while sending: resolving by status inquiry".into());
        }
        (Accepted | Pending | InDoubt, Event::Settled { utr, gateway_ref, message }) => {
            s.code = Some("SU0000".into());
            s.message = Some(message.clone());
            if utr.is_some() {
                s.utr = utr.clone();
            }
            if gateway_ref.is_some() {
                s.gateway_ref = gateway_ref.clone();
            }
            finish(&mut s, Success);
        }
        (Accepted | Pending | InDoubt, Event::BankFailed { code, message }) => {
            s.code = Some(code.clone());
            s.message = Some(message.clone());
            finish(&mut s, Failed);
        }
        (Accepted | Pending | InDoubt, Event::StillPending { code, message }) => {
            s.state = Some(Pending);
            s.code = Some(code.clone());
            s.message = Some(message.clone());
        }
        (InDoubt, Event::NeverApplied { message }) if old.doubt() == Doubt::TechnicalFailure => {
            s.code = Some(TE0020.into());
            s.message = Some(message.clone());
            finish(&mut s, Failed);
        }
        (InDoubt, Event::Conflict { message }) if old.doubt() == Doubt::Duplicate => {
            s.code = Some(REF_CONFLICT.into());
            s.message = Some(message.clone());
            finish(&mut s, Failed);
        }
        (Accepted | Pending | InDoubt, Event::NeedsPerson { code, message }) if PERSON_CODES.contains(code) => {
            s.state = Some(if *code == IN_DOUBT { InDoubt } else { Pending });
            s.code = Some((*code).to_string());
            s.message = Some(message.clone());
        }
        // A person may find a row paid whenever they know it (a bank statement). Finding it unpaid
        // makes it FAILED, which `payrun failed` offers for paying again: only for a row payrun
        // cannot decide (rule 9: parked for a person). A row the gateway accepted, or says is
        // pending, or that payrun is still asking about, may yet be paid; the gateway settles it.
        (Accepted | Pending | InDoubt, Event::Resolved { paid: false, .. }) if !old.parked() => {
            return Err(illegal());
        }
        (Accepted | Pending | InDoubt, Event::Resolved { paid, utr, message }) => {
            s.code = Some(RESOLVED.into());
            s.message = Some(message.clone());
            if utr.is_some() {
                s.utr = utr.clone();
            }
            finish(&mut s, if *paid { Success } else { Failed });
        }
        _ => return Err(illegal()),
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "2026-11-24T10:00:00Z";

    fn at(state: RowState, attempts: u32) -> RowStatus {
        RowStatus { state: Some(state), attempts, confirmed: true, ..RowStatus::default() }
    }

    fn with_code(state: RowState, attempts: u32, code: &str) -> RowStatus {
        RowStatus { code: Some(code.into()), ..at(state, attempts) }
    }

    fn accepted(pending: bool) -> Event {
        Event::Accepted { gateway_ref: Some("G1".into()), pending, code: None, message: "Success".into() }
    }

    fn settled() -> Event {
        Event::Settled { utr: Some("U".into()), gateway_ref: None, message: "ok".into() }
    }

    #[test]
    fn happy_path() {
        let s = apply(&at(RowState::Ready, 0), &Event::Claim, T).expect("claim");
        assert_eq!((s.state(), s.attempts, s.submitted_at.as_deref()), (RowState::Sending, 1, Some(T)));
        assert_eq!(s.sent_at.as_deref(), Some(T));
        let s = apply(&s, &accepted(false), T).expect("accepted");
        assert_eq!((s.state(), s.gateway_ref.as_deref()), (RowState::Accepted, Some("G1")));
        let s = apply(&s, &settled(), T).expect("settled");
        assert_eq!((s.state(), s.utr.as_deref(), s.code.as_deref()), (RowState::Success, Some("U"), Some("SU0000")));
        assert_eq!(s.gateway_ref.as_deref(), Some("G1"), "kept");
        assert!(s.completed_at.is_some());
    }

    #[test]
    fn unknown_outcomes_are_in_doubt_never_failed() {
        let sending = at(RowState::Sending, 1);
        for e in [
            Event::Lost { reason: "timeout".into() },
            Event::Recovered,
            Event::TechnicalFailure { message: "Technical failure".into() },
            Event::Duplicate { message: "Duplicate".into() },
        ] {
            assert_eq!(apply(&sending, &e, T).map(|s| s.state()), Ok(RowState::InDoubt), "{e:?}");
        }
    }

    #[test]
    fn te0020_is_failed_only_after_the_gateway_says_it_does_not_know_it() {
        let s = apply(&at(RowState::Sending, 1), &Event::TechnicalFailure { message: "x".into() }, T).expect("ok");
        assert_eq!((s.state(), s.doubt()), (RowState::InDoubt, Doubt::TechnicalFailure));
        assert!(apply(&s, &Event::Claim, T).is_err(), "a TE0020 doubt is never sent again");
        let f = apply(&s, &Event::NeverApplied { message: "TE0011 twice".into() }, T).expect("never applied");
        assert_eq!((f.state(), f.code.as_deref()), (RowState::Failed, Some(TE0020)));
        // NeverApplied proves nothing for a lost answer (that one is resent instead).
        assert!(apply(&at(RowState::InDoubt, 1), &Event::NeverApplied { message: String::new() }, T).is_err());
        // An inquiry that finds the payout settles it as any other.
        assert_eq!(apply(&s, &settled(), T).map(|s| s.state()), Ok(RowState::Success));
    }

    #[test]
    fn duplicate_on_the_first_attempt_is_a_question_not_a_verdict() {
        let d = Event::Duplicate { message: "Duplicate".into() };
        let first = apply(&at(RowState::Sending, 1), &d, T).expect("first");
        assert_eq!((first.state(), first.doubt()), (RowState::InDoubt, Doubt::Duplicate));
        assert!(apply(&first, &Event::Claim, T).is_err(), "never sent again");
        let c = apply(&first, &Event::Conflict { message: "other account".into() }, T).expect("conflict");
        assert_eq!((c.state(), c.code.as_deref()), (RowState::Failed, Some(REF_CONFLICT)));
        let resend = apply(&at(RowState::Sending, 2), &d, T).expect("resend");
        assert_eq!((resend.state(), resend.doubt()), (RowState::InDoubt, Doubt::Lost));
    }

    #[test]
    fn a_conflict_is_proven_only_by_the_te0005_path() {
        let c = Event::Conflict { message: "other account".into() };
        for state in [RowState::Accepted, RowState::Pending, RowState::InDoubt] {
            assert!(apply(&at(state, 1), &c, T).is_err(), "{state}: Conflict without TE0005 on the first attempt");
        }
    }

    #[test]
    fn not_sent_returns_to_ready_and_does_not_count() {
        let s = apply(&at(RowState::Sending, 1), &Event::NotSent { reason: "429".into() }, T).expect("ok");
        assert_eq!((s.state(), s.attempts), (RowState::Ready, 0));
        let again = apply(&s, &Event::Claim, T).expect("claim");
        assert_eq!(again.attempts, 1, "still the first attempt for rule 8");
    }

    #[test]
    fn a_resend_that_is_not_received_or_refused_stays_in_doubt() {
        let n = apply(&at(RowState::Sending, 2), &Event::NotSent { reason: "429".into() }, T).expect("ok");
        assert_eq!((n.state(), n.attempts), (RowState::InDoubt, 1));
        let r = apply(&at(RowState::Sending, 2), &Event::Rejected { code: "TE0007".into(), message: String::new() }, T)
            .expect("ok");
        assert_eq!(r.state(), RowState::InDoubt, "never FAILED on a resend's refusal");
        let first =
            apply(&at(RowState::Sending, 1), &Event::Rejected { code: "TE0007".into(), message: String::new() }, T)
                .expect("ok");
        assert_eq!(first.state(), RowState::Failed);
    }

    #[test]
    fn final_states_accept_nothing() {
        for state in [RowState::Success, RowState::Failed, RowState::Invalid, RowState::Cancelled] {
            for e in [
                Event::Claim,
                accepted(false),
                Event::Lost { reason: String::new() },
                settled(),
                Event::Recovered,
                Event::Cancel { message: String::new() },
                Event::Resolved { paid: true, utr: None, message: String::new() },
                Event::Hold { code: REPEAT_PAYMENT.into(), message: String::new() },
            ] {
                assert!(apply(&at(state, 1), &e, T).is_err(), "{state} {e:?}");
            }
        }
    }

    #[test]
    fn accepted_rows_are_never_resent() {
        for state in [RowState::Accepted, RowState::Pending, RowState::Sending, RowState::Success, RowState::Held] {
            assert!(apply(&at(state, 1), &Event::Claim, T).is_err(), "{state}");
        }
        assert!(apply(&at(RowState::InDoubt, 1), &Event::Claim, T).is_ok());
    }

    /// SPEC 3.2c: no row is sent that no confirmation covered; a released row needs a new one.
    #[test]
    fn only_a_confirmed_row_is_claimed() {
        let unconfirmed = RowStatus { confirmed: false, ..at(RowState::Ready, 0) };
        assert!(apply(&unconfirmed, &Event::Claim, T).is_err());
        let h = apply(&at(RowState::Ready, 0), &Event::Hold { code: REPEAT_PAYMENT.into(), message: "m".into() }, T)
            .expect("hold");
        let r = apply(&h, &Event::Release { message: "approved".into() }, T).expect("release");
        assert!(!r.confirmed, "a release is a change of what is sent");
        assert!(apply(&r, &Event::Claim, T).is_err());
        let c = apply(&RowStatus { confirmed: true, ..r }, &Event::Claim, T).expect("claim once confirmed");
        assert!(c.confirmed);
    }

    #[test]
    fn holds_release_and_cancel() {
        let h = apply(&at(RowState::Ready, 0), &Event::Hold { code: REPEAT_PAYMENT.into(), message: "m".into() }, T)
            .expect("hold");
        assert_eq!((h.state(), h.code.as_deref()), (RowState::Held, Some(REPEAT_PAYMENT)));
        assert!(apply(&h, &Event::Claim, T).is_err(), "a held row is not sent");
        let r = apply(&h, &Event::Release { message: "approved".into() }, T).expect("release");
        assert_eq!((r.state(), r.code.as_deref()), (RowState::Ready, None));
        for s in [&h, &r] {
            let c = apply(s, &Event::Cancel { message: "cancelled".into() }, T).expect("cancel");
            assert_eq!(c.state(), RowState::Cancelled);
            assert!(c.completed_at.is_some());
        }
        for state in [RowState::Sending, RowState::Accepted, RowState::Pending] {
            assert!(apply(&at(state, 1), &Event::Cancel { message: String::new() }, T).is_err(), "{state}");
        }
        // A row ever sent is never CANCELLED (SPEC 3 rule 11), whatever its doubt: it is followed
        // to proof, or parked for a person.
        for s in [at(RowState::InDoubt, 1), with_code(RowState::InDoubt, 1, TE0020), at(RowState::Ready, 1)] {
            assert!(apply(&s, &Event::Cancel { message: String::new() }, T).is_err(), "{s:?}");
        }
    }

    #[test]
    fn parked_rows_move_only_by_a_person() {
        for code in PERSON_CODES {
            let p = apply(&at(RowState::Accepted, 1), &Event::NeedsPerson { code, message: "look".into() }, T)
                .expect("park");
            assert!(p.parked(), "{code}");
            assert_eq!(p.state(), if code == IN_DOUBT { RowState::InDoubt } else { RowState::Pending });
            for e in [Event::Claim, Event::BankFailed { code: "BE1001".into(), message: String::new() }] {
                if code == IN_DOUBT && matches!(e, Event::BankFailed { .. }) {
                    continue;
                }
                assert!(apply(&p, &e, T).is_err(), "{code} {e:?}");
            }
            let paid = apply(&p, &Event::Resolved { paid: true, utr: Some("UTR9".into()), message: "bank".into() }, T)
                .expect("resolve");
            assert_eq!(
                (paid.state(), paid.code.as_deref(), paid.utr.as_deref()),
                (RowState::Success, Some(RESOLVED), Some("UTR9"))
            );
            let unpaid =
                apply(&p, &Event::Resolved { paid: false, utr: None, message: "bank".into() }, T).expect("resolve");
            assert_eq!(unpaid.state(), RowState::Failed);
        }
        assert!(
            apply(&at(RowState::Accepted, 1), &Event::NeedsPerson { code: "BE1001", message: String::new() }, T)
                .is_err()
        );
        let parked_doubt = with_code(RowState::InDoubt, 5, IN_DOUBT);
        assert_eq!(apply(&parked_doubt, &settled(), T).map(|s| s.state()), Ok(RowState::Success));
        assert!(apply(&parked_doubt, &Event::Claim, T).is_err());
        let mismatch = with_code(RowState::Pending, 1, PAYEE_MISMATCH);
        assert!(apply(&mismatch, &settled(), T).is_err(), "a mismatch is not settled by asking again");
    }

    /// A person's "unpaid" makes a row FAILED, which `payrun failed` offers for paying again: only
    /// for a row payrun cannot decide. A row the gateway accepted, says is pending, or that payrun
    /// is still asking about may yet be paid; "paid" stays open to a person for any of them.
    #[test]
    fn only_a_row_parked_for_a_person_can_be_found_unpaid() {
        let unpaid = Event::Resolved { paid: false, utr: None, message: "bank shows nothing yet".into() };
        let paid = Event::Resolved { paid: true, utr: None, message: "bank statement".into() };
        for s in [
            at(RowState::Accepted, 1),
            with_code(RowState::Pending, 1, "ENQ001"),
            with_code(RowState::Pending, 1, "TE0009"),
            at(RowState::InDoubt, 1),
            with_code(RowState::InDoubt, 1, TE0020),
            with_code(RowState::InDoubt, 1, DUPLICATE_FIRST),
        ] {
            assert!(apply(&s, &unpaid, T).is_err(), "{s:?}");
            assert_eq!(apply(&s, &paid, T).map(|s| s.state()), Ok(RowState::Success), "{s:?}");
        }
        for code in PERSON_CODES {
            let state = if code == IN_DOUBT { RowState::InDoubt } else { RowState::Pending };
            assert_eq!(apply(&with_code(state, 1, code), &unpaid, T).map(|s| s.state()), Ok(RowState::Failed));
        }
    }

    #[test]
    fn status_answers_only_for_rows_the_gateway_may_have() {
        let e = settled();
        for state in [RowState::Ready, RowState::Sending, RowState::Invalid, RowState::Held] {
            assert!(apply(&at(state, 0), &e, T).is_err(), "{state}");
        }
    }

    #[test]
    fn result_words() {
        assert_eq!(RowState::Ready.result_status(), "NOT_SENT");
        assert_eq!(RowState::InDoubt.result_status(), "PENDING");
        assert_eq!(RowState::Sending.result_status(), "PENDING");
        assert_eq!(RowState::Held.result_status(), "HELD");
        assert_eq!(RowState::Cancelled.result_status(), "CANCELLED");
        for s in RowState::ALL {
            assert_eq!(RowState::parse(s.as_str()), Some(s));
        }
    }
}
