//! The row lifecycle of SPEC section 3, written down in one place.
//!
//! [`apply`] is the only function that decides a row's next state: (current status, event) → next
//! status, or an [`Illegal`] error. The engine calls it for every answer, resume calls it for
//! recovery, and the journal refuses to store a transition whose "from" state is not what is on
//! disk. An illegal transition stops the program; it is never ignored (the TigerBeetle way).
//!
//! ```text
//!             Claim                Accepted            Settled
//!   ready ─────────────▶ sending ───────────▶ accepted ────────▶ success
//!     ▲                  │  │  │   Accepted(pending)  │ StillPending
//!     └──── NotSent ─────┘  │  └──────────▶ pending ◀─┘ ────────▶ success / failed
//!                           │ Lost, Recovered,        ▲
//!                           │ Duplicate (resend)      │ StillPending
//!                           ▼                         │
//!                        in_doubt ────────────────────┘ (Settled ▶ success, BankFailed ▶ failed)
//!                           │  Claim (only after two TE0011 a grace period apart)
//!                           └──────────▶ sending
//!   sending ── Rejected, Duplicate on the first attempt ▶ failed (the latter REF_CONFLICT);
//!              on a resend both ▶ in_doubt; NotSent on a resend ▶ in_doubt
//!   accepted / pending / in_doubt ── Conflict (answer about another account) ▶ failed (REF_CONFLICT)
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};

/// Where a row is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RowState {
    /// Failed validation; never sent.
    Invalid,
    /// Valid, not sent (or provably not received).
    Ready,
    /// Intent durable; the request may be in flight.
    Sending,
    /// The gateway accepted it; final status not known yet.
    Accepted,
    /// The outcome of a send is unknown: resolve by status inquiry before anything else.
    InDoubt,
    /// The gateway says pending.
    Pending,
    /// Paid (final).
    Success,
    /// Not paid (final).
    Failed,
}

impl RowState {
    pub const ALL: [RowState; 8] = [
        RowState::Invalid,
        RowState::Ready,
        RowState::Sending,
        RowState::Accepted,
        RowState::InDoubt,
        RowState::Pending,
        RowState::Success,
        RowState::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RowState::Invalid => "invalid",
            RowState::Ready => "ready",
            RowState::Sending => "sending",
            RowState::Accepted => "accepted",
            RowState::InDoubt => "in_doubt",
            RowState::Pending => "pending",
            RowState::Success => "success",
            RowState::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<RowState> {
        RowState::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Success, failed or invalid: nothing more will happen to the row.
    pub fn is_final(self) -> bool {
        matches!(self, RowState::Success | RowState::Failed | RowState::Invalid)
    }

    /// The gateway may have the payout, and it is not final: it needs status inquiries.
    pub fn needs_inquiry(self) -> bool {
        matches!(self, RowState::Accepted | RowState::InDoubt | RowState::Pending)
    }

    /// The status word of the result file (SPEC section 5).
    pub fn result_status(self) -> &'static str {
        match self {
            RowState::Invalid => "INVALID",
            RowState::Ready => "NOT_SENT",
            RowState::Sending | RowState::Accepted | RowState::InDoubt | RowState::Pending => "PENDING",
            RowState::Success => "SUCCESS",
            RowState::Failed => "FAILED",
        }
    }
}

impl fmt::Display for RowState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Code given to rows whose reference belongs to someone else's payout (rule 7).
pub const REF_CONFLICT: &str = "REF_CONFLICT";

/// Everything the journal keeps about a row's progress.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RowStatus {
    pub state: Option<RowState>,
    /// Posting requests that may have reached the gateway (a request it provably never received
    /// does not count). `1` during the first attempt: TE0005 then is a collision (rule 7).
    pub attempts: u32,
    pub gateway_ref: Option<String>,
    pub code: Option<String>,
    pub message: Option<String>,
    pub utr: Option<String>,
    pub submitted_at: Option<String>,
    pub completed_at: Option<String>,
}

impl RowStatus {
    pub fn new(state: RowState) -> RowStatus {
        RowStatus { state: Some(state), ..RowStatus::default() }
    }

    pub fn state(&self) -> RowState {
        self.state.unwrap_or(RowState::Ready)
    }
}

/// Something that happened to a row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// About to post: the intent, made durable before the request leaves (rule 1).
    Claim,
    /// The gateway accepted the posting (`pending` for ENQ001).
    Accepted { gateway_ref: Option<String>, pending: bool, code: Option<String>, message: String },
    /// A final refusal at posting (TE0003, TE0007, TE0008, TE0020).
    Rejected { code: String, message: String },
    /// TE0005 at posting: a collision on the first attempt, else the gateway has our payout.
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
    /// A status answer (or TE0005 on a first attempt) about another beneficiary.
    Conflict { message: String },
}

impl Event {
    pub fn name(&self) -> &'static str {
        match self {
            Event::Claim => "claim",
            Event::Accepted { .. } => "accepted",
            Event::Rejected { .. } => "rejected",
            Event::Duplicate { .. } => "duplicate",
            Event::Lost { .. } => "lost",
            Event::NotSent { .. } => "not_sent",
            Event::Recovered => "recovered",
            Event::Settled { .. } => "settled",
            Event::BankFailed { .. } => "bank_failed",
            Event::StillPending { .. } => "still_pending",
            Event::Conflict { .. } => "conflict",
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
    match (from, event) {
        (Ready | InDoubt, Event::Claim) => {
            s.state = Some(Sending);
            s.attempts += 1;
            if s.submitted_at.is_none() {
                s.submitted_at = Some(now.to_string());
            }
        }
        (Sending, Event::Accepted { gateway_ref, pending, code, message }) => {
            s.state = Some(if *pending { Pending } else { Accepted });
            if gateway_ref.is_some() {
                s.gateway_ref = gateway_ref.clone();
            }
            s.code = code.clone();
            s.message = Some(message.clone());
        }
        // A refusal of the first attempt is final. A refusal of a resend is not proof: the first
        // attempt's fate was only inferred from "unknown reference", so ask again.
        (Sending, Event::Rejected { code, message }) if s.attempts <= 1 => {
            s.code = Some(code.clone());
            s.message = Some(message.clone());
            finish(&mut s, Failed);
        }
        (Sending, Event::Rejected { code, message }) => {
            s.state = Some(InDoubt);
            s.code = Some(code.clone());
            s.message = Some(format!("resend refused ({code}: {message}); an earlier attempt may still exist"));
        }
        (Sending, Event::Duplicate { message }) if s.attempts <= 1 => {
            s.code = Some(REF_CONFLICT.into());
            s.message = Some(format!(
                "the gateway already has a payout with this reference (TE0005 on the first attempt): {message}. Use a new reference"
            ));
            finish(&mut s, Failed);
        }
        (Sending, Event::Duplicate { message }) => {
            s.state = Some(InDoubt);
            s.code = Some("TE0005".into());
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
        (Accepted | Pending | InDoubt, Event::Conflict { message }) => {
            s.code = Some(REF_CONFLICT.into());
            s.message = Some(message.clone());
            finish(&mut s, Failed);
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
        RowStatus { state: Some(state), attempts, ..RowStatus::default() }
    }

    fn accepted(pending: bool) -> Event {
        Event::Accepted { gateway_ref: Some("G1".into()), pending, code: None, message: "Success".into() }
    }

    #[test]
    fn happy_path() {
        let s = apply(&at(RowState::Ready, 0), &Event::Claim, T).expect("claim");
        assert_eq!((s.state(), s.attempts, s.submitted_at.as_deref()), (RowState::Sending, 1, Some(T)));
        let s = apply(&s, &accepted(false), T).expect("accepted");
        assert_eq!((s.state(), s.gateway_ref.as_deref()), (RowState::Accepted, Some("G1")));
        let s = apply(&s, &Event::Settled { utr: Some("U".into()), gateway_ref: None, message: "ok".into() }, T)
            .expect("settled");
        assert_eq!((s.state(), s.utr.as_deref(), s.code.as_deref()), (RowState::Success, Some("U"), Some("SU0000")));
        assert_eq!(s.gateway_ref.as_deref(), Some("G1"), "kept");
        assert!(s.completed_at.is_some());
    }

    #[test]
    fn unknown_outcomes_are_in_doubt_never_failed() {
        let sending = at(RowState::Sending, 1);
        assert_eq!(
            apply(&sending, &Event::Lost { reason: "timeout".into() }, T).map(|s| s.state()),
            Ok(RowState::InDoubt)
        );
        assert_eq!(apply(&sending, &Event::Recovered, T).map(|s| s.state()), Ok(RowState::InDoubt));
    }

    #[test]
    fn duplicate_is_conflict_on_first_attempt_and_in_doubt_after() {
        let d = Event::Duplicate { message: "Duplicate".into() };
        let first = apply(&at(RowState::Sending, 1), &d, T).expect("first");
        assert_eq!((first.state(), first.code.as_deref()), (RowState::Failed, Some(REF_CONFLICT)));
        let resend = apply(&at(RowState::Sending, 2), &d, T).expect("resend");
        assert_eq!(resend.state(), RowState::InDoubt);
    }

    #[test]
    fn not_sent_returns_to_ready_and_does_not_count() {
        let s = apply(&at(RowState::Sending, 1), &Event::NotSent { reason: "429".into() }, T).expect("ok");
        assert_eq!((s.state(), s.attempts), (RowState::Ready, 0));
        let again = apply(&s, &Event::Claim, T).expect("claim");
        assert_eq!(again.attempts, 1, "still the first attempt for rule 7");
    }

    #[test]
    fn a_resend_that_is_not_received_or_refused_stays_in_doubt() {
        let n = apply(&at(RowState::Sending, 2), &Event::NotSent { reason: "429".into() }, T).expect("ok");
        assert_eq!((n.state(), n.attempts), (RowState::InDoubt, 1));
        let r = apply(&at(RowState::Sending, 2), &Event::Rejected { code: "TE0020".into(), message: String::new() }, T)
            .expect("ok");
        assert_eq!(r.state(), RowState::InDoubt, "never FAILED on a resend's refusal");
        let first =
            apply(&at(RowState::Sending, 1), &Event::Rejected { code: "TE0007".into(), message: String::new() }, T)
                .expect("ok");
        assert_eq!(first.state(), RowState::Failed);
    }

    #[test]
    fn final_states_accept_nothing() {
        for state in [RowState::Success, RowState::Failed, RowState::Invalid] {
            for e in [
                Event::Claim,
                accepted(false),
                Event::Lost { reason: String::new() },
                Event::Settled { utr: None, gateway_ref: None, message: String::new() },
                Event::Recovered,
            ] {
                assert!(apply(&at(state, 1), &e, T).is_err(), "{state} {e:?}");
            }
        }
    }

    #[test]
    fn accepted_rows_are_never_resent() {
        for state in [RowState::Accepted, RowState::Pending, RowState::Sending, RowState::Success] {
            assert!(apply(&at(state, 1), &Event::Claim, T).is_err(), "{state}");
        }
        assert!(apply(&at(RowState::InDoubt, 1), &Event::Claim, T).is_ok());
    }

    #[test]
    fn status_answers_only_for_rows_the_gateway_may_have() {
        let e = Event::Settled { utr: None, gateway_ref: None, message: String::new() };
        for state in [RowState::Ready, RowState::Sending, RowState::Invalid] {
            assert!(apply(&at(state, 0), &e, T).is_err(), "{state}");
        }
        let c = Event::Conflict { message: "other account".into() };
        for state in [RowState::Accepted, RowState::Pending, RowState::InDoubt] {
            let s = apply(&at(state, 1), &c, T).expect("conflict");
            assert_eq!((s.state(), s.code.as_deref()), (RowState::Failed, Some(REF_CONFLICT)));
        }
    }

    #[test]
    fn result_words() {
        assert_eq!(RowState::Ready.result_status(), "NOT_SENT");
        assert_eq!(RowState::InDoubt.result_status(), "PENDING");
        assert_eq!(RowState::Sending.result_status(), "PENDING");
        for s in RowState::ALL {
            assert_eq!(RowState::parse(s.as_str()), Some(s));
        }
    }
}
