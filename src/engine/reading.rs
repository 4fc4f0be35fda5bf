//! What a gateway answer means for a row: one table, (answer shape × row state) → reaction, beside
//! the lifecycle table ([`crate::journal::lifecycle`]) that turns the resulting event into the next
//! state.
//!
//! The gateway client ([`crate::gateway`]) says what an answer *is* (accepted, refused, TE0020,
//! TE0005, unknown, a status naming this or that payee, TE0011). This table says what it *proves
//! about this row*, under SPEC section 3's one principle: FAILED only on proof that the money did
//! not move, SUCCESS only on proof that it did; anything ambiguous stays PENDING, and when asking
//! cannot settle it the row is parked with a code for a person. Nothing here does I/O, keeps time
//! or decides to resend by itself: the engine counts "unknown reference" answers and keeps the
//! clock (rule 3), and only ever sends again what this table calls [`Toward::Resend`].
//!
//! Every cell is a unit test below, including answer shapes the sandbox never produces.

use std::time::Duration;

use crate::gateway::{Payee, PayeeMatch, PayoutOutcome, StatusOutcome};
use crate::journal::lifecycle::{AMOUNT_MISMATCH, Doubt, Event, PAYEE_MISMATCH, REF_ALREADY_USED, RowState, RowStatus};
use crate::money::Amount;

use super::Stop;

/// What the engine should do after a posting's answer.
#[derive(Clone, Debug, PartialEq)]
pub enum Then {
    /// Nothing more than the event.
    Continue,
    /// The gateway was busy or unreachable: pause all sending (for Retry-After when given).
    Pause(Option<Duration>),
    /// Stop the whole batch (credentials or tokens refused).
    Stop(Stop),
}

/// A posting's answer: the lifecycle event for the row, and what the engine does next.
#[derive(Clone, Debug, PartialEq)]
pub struct PostingReading {
    pub event: Event,
    pub then: Then,
}

/// Reads the answer to a posting (rules 2, 4, 5, 7 and 8). Whether a refusal or a TE0005 is about a
/// first attempt is the lifecycle's business (it knows the attempts).
pub fn read_posting(outcome: &PayoutOutcome) -> PostingReading {
    let (event, then) = match outcome {
        PayoutOutcome::Accepted { gateway_ref, pending, code, message, .. } => (
            Event::Accepted {
                gateway_ref: gateway_ref.clone(),
                pending: *pending,
                code: code.clone(),
                message: message.clone(),
            },
            Then::Continue,
        ),
        PayoutOutcome::Rejected { code, message } => {
            (Event::Rejected { code: code.clone(), message: message.clone() }, Then::Continue)
        }
        PayoutOutcome::TechnicalFailure { message } => {
            (Event::TechnicalFailure { message: message.clone() }, Then::Continue)
        }
        PayoutOutcome::Duplicate { message } => (Event::Duplicate { message: message.clone() }, Then::Continue),
        PayoutOutcome::Unknown { reason } => (Event::Lost { reason: reason.clone() }, Then::Continue),
        PayoutOutcome::NotSent { retry_after, reason } => {
            (Event::NotSent { reason: reason.clone() }, Then::Pause(*retry_after))
        }
        PayoutOutcome::CredentialsRefused { message } => (
            Event::NotSent { reason: format!("not sent: credentials refused ({message})") },
            Then::Stop(Stop::CredentialsRefused(message.clone())),
        ),
        // Rule 2: a 403 does not prove the posting was refused before processing.
        PayoutOutcome::Forbidden { message } => (
            Event::Lost { reason: format!("HTTP 403: {message}") },
            Then::Stop(Stop::CredentialsRefused(message.clone())),
        ),
        PayoutOutcome::TokenInvalid => {
            (Event::NotSent { reason: "not sent: token refused (TE0012)".into() }, Then::Stop(super::tokens_refused()))
        }
    };
    PostingReading { event, then }
}

/// Whether a posting's event gives the row an order id from the gateway (the engine counts the
/// rows per order id: one given to two rows is no row's own).
pub fn took_order_id(event: &Event) -> bool {
    matches!(event, Event::Accepted { gateway_ref: Some(_), .. })
}

/// [`read_posting`] for a row paying `account` at `ifsc`. An accepted answer whose transaction
/// names another account (a gateway that mixed up the answers of two concurrent postings) gives
/// an order id that is not this row's: the row is accepted (the gateway took a payout: never sent
/// again), but asked about by its reference, so that an answer asked by that id which names
/// nobody cannot settle it with the other payout's fate (rule 7).
pub fn read_posting_for(outcome: &PayoutOutcome, account: &str, ifsc: &str) -> PostingReading {
    let mut r = read_posting(outcome);
    if let (PayoutOutcome::Accepted { payee, .. }, Event::Accepted { gateway_ref, message, .. }) =
        (outcome, &mut r.event)
    {
        if gateway_ref.is_some() && payee.matches(account, ifsc, None) == PayeeMatch::OtherAccount {
            *gateway_ref = None;
            *message = format!(
                "{message} (the answer names another payee, {}: its order id is not used; asked about by reference)",
                payee.describe()
            );
        }
    }
    r
}

/// What "unknown reference" (TE0011) counts toward for an in-doubt row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Toward {
    /// A lost answer: two TE0011 a grace period apart (the first after the request's own timeout)
    /// and the row is sent again with the same reference (rule 3).
    Resend,
    /// A TE0020 refusal: two such TE0011 and the row is FAILED TE0020, never sent again (rule 7).
    NeverApplied,
}

/// The "unknown reference" answers counted for one in-doubt row (rule 3). Times are durations
/// since any fixed start (the engine's, or a test's virtual clock).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UnknownCount {
    first: Option<Duration>,
    count: u32,
}

impl UnknownCount {
    /// An answer about *a* payout under this reference came between "unknown reference" answers
    /// (one payrun cannot attribute to this row: it names no payee, or another payout). The
    /// gateway has then said it knows the reference, so the earlier "unknown" proves nothing any
    /// more: rule 3's two answers must follow each other with nothing in between that contradicts
    /// them, and the count starts again. (A resend on a flapping index may not be caught as a
    /// duplicate by the same index.)
    pub fn contradicted(&mut self) {
        *self = UnknownCount::default();
    }
}

/// What follows an in-doubt row's TE0011.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AfterUnknown {
    /// Not proof yet: ask again at this time.
    AskAt(Duration),
    /// Two answers counted, at least a grace period apart, the first after the request's own
    /// timeout: the gateway does not have a payout under this reference.
    Proven,
}

impl UnknownCount {
    /// Counts a TE0011 received at `now`. One received before `counts_after` (the latest request's
    /// own timeout: it may still be on its way to the gateway) does not count.
    pub fn answer(&mut self, now: Duration, counts_after: Duration, grace: Duration) -> AfterUnknown {
        if now < counts_after {
            return AfterUnknown::AskAt(counts_after);
        }
        self.count += 1;
        let first = *self.first.get_or_insert(now);
        if self.count >= 2 && now.saturating_sub(first) >= grace {
            return AfterUnknown::Proven;
        }
        AfterUnknown::AskAt((first + grace).max(now + Duration::from_millis(100)))
    }
}

/// What two counted "unknown reference" answers decide.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unknown {
    /// Send again with the same reference (a lost answer, attempts left).
    Resend,
    /// Apply this event (FAILED TE0020, or parked for a person after the maximum attempts).
    Event(Event),
}

/// The decision after [`AfterUnknown::Proven`] (rules 3 and 7).
pub fn unknown_twice(toward: Toward, attempts: u32, max_attempts: u32) -> Unknown {
    match toward {
        Toward::NeverApplied => Unknown::Event(Event::NeverApplied {
            message:
                "refused with TE0020, and the gateway then said twice it does not know the reference: never applied"
                    .into(),
        }),
        Toward::Resend if attempts < max_attempts => Unknown::Resend,
        Toward::Resend => Unknown::Event(Event::NeedsPerson {
            code: crate::journal::lifecycle::IN_DOUBT,
            message: format!(
                "sent {attempts} times without a readable answer, and the gateway does not know the reference; payrun will not send it again: check with the gateway, then payrun resolve"
            ),
        }),
    }
}

/// What the engine should do after a status answer.
#[derive(Clone, Debug, PartialEq)]
pub enum Reaction {
    /// The answer proves something: apply this event.
    Event(Event),
    /// No usable answer (an error page, a timeout): ask again later.
    AskAgain,
    /// Provably not processed (429/503): pause, and ask again without counting this inquiry.
    Busy(Option<Duration>),
    /// An accepted payout the gateway does not know by this id: ask by the other id (order id or
    /// reference) next time.
    SwitchId,
    /// An in-doubt row's reference is unknown to the gateway (TE0011).
    UnknownReference(Toward),
    /// An answer about *a* payout that cannot be attributed to this row (it names no payee payrun
    /// can compare, or contradicts an earlier TE0005): it proves nothing. After too many the engine
    /// parks the row for a person.
    Unattributable,
    /// Stop the whole batch.
    Stop(Stop),
}

/// The payee a status answer describes, when it is about a payout (success, pending, a bank
/// failure).
pub fn answer_payee(outcome: &StatusOutcome) -> Option<&crate::gateway::Payee> {
    match outcome {
        StatusOutcome::Success { payee, .. }
        | StatusOutcome::Pending { payee, .. }
        | StatusOutcome::FailedAtBank { payee, .. } => Some(payee),
        _ => None,
    }
}

/// What the table needs to know about the row an answer is for.
#[derive(Clone, Copy, Debug)]
pub struct Asked<'a> {
    pub status: &'a RowStatus,
    pub account: &'a str,
    pub ifsc: &'a str,
    pub amount: Option<Amount>,
    /// The row's reference.
    pub reference: &'a str,
    /// The reference was derived by payrun (batch id + row number: only this row of this file can
    /// have made it), not taken from the file's reference column.
    pub derived_reference: bool,
    /// The inquiry asked by the order id the gateway gave this row's own posting (not by the
    /// reference, which a gateway may read as someone else's order id).
    pub by_own_order_id: bool,
}

/// The payee and the event an answer about a payout would mean if it is this row's.
fn about_payout<'a>(outcome: &'a StatusOutcome, note: Option<&str>) -> Option<(&'a Payee, Event)> {
    let with_note = |m: &str| match note {
        Some(n) => format!("{n}: {m}"),
        None => m.to_string(),
    };
    match outcome {
        StatusOutcome::Success { utr, payee, gateway_ref, message } => Some((
            payee,
            Event::Settled { utr: utr.clone(), gateway_ref: gateway_ref.clone(), message: with_note(message) },
        )),
        StatusOutcome::Pending { code, message, payee } => {
            Some((payee, Event::StillPending { code: code.clone(), message: with_note(message) }))
        }
        StatusOutcome::FailedAtBank { code, message, payee } => {
            Some((payee, Event::BankFailed { code: code.clone(), message: with_note(message) }))
        }
        _ => None,
    }
}

fn person(code: &'static str, message: String) -> Reaction {
    Reaction::Event(Event::NeedsPerson { code, message })
}

/// Reads a status answer for a row that is accepted, pending or in doubt (rules 3, 7 and 8).
pub fn read_status(outcome: &StatusOutcome, row: &Asked<'_>) -> Reaction {
    let state = row.status.state();
    let accepted = matches!(state, RowState::Accepted | RowState::Pending);
    let doubt = row.status.doubt();
    match outcome {
        StatusOutcome::NotSent { retry_after, .. } => return Reaction::Busy(*retry_after),
        StatusOutcome::Unknown { .. } => return Reaction::AskAgain,
        // The gateway knows something under this id, but the answer proves no fate: for an
        // in-doubt row it breaks a run of "unknown reference" answers and counts toward parking.
        StatusOutcome::Contradictory { .. } => {
            return match (accepted, row.status.doubt()) {
                (false, Doubt::Lost | Doubt::TechnicalFailure | Doubt::Duplicate) => Reaction::Unattributable,
                _ => Reaction::AskAgain,
            };
        }
        StatusOutcome::CredentialsRefused { message } => {
            return Reaction::Stop(Stop::CredentialsRefused(message.clone()));
        }
        StatusOutcome::TokenInvalid => return Reaction::Stop(super::tokens_refused()),
        StatusOutcome::UnknownReference { .. } => {
            return match (accepted, doubt) {
                // The gateway accepted it, so it has it: its index may lag, or it may know the
                // payout by our reference rather than its order id (or the other way round).
                (true, _) => Reaction::SwitchId,
                (false, Doubt::Lost) => Reaction::UnknownReference(Toward::Resend),
                (false, Doubt::TechnicalFailure) => Reaction::UnknownReference(Toward::NeverApplied),
                // TE0005 said the gateway has a payout with this reference: "unknown" contradicts it.
                (false, Doubt::Duplicate) => Reaction::Unattributable,
                (false, Doubt::Parked) => Reaction::AskAgain,
            };
        }
        StatusOutcome::Success { .. } | StatusOutcome::Pending { .. } | StatusOutcome::FailedAtBank { .. } => {}
    }
    let duplicate = !accepted && doubt == Doubt::Duplicate;
    let note = (duplicate && row.derived_reference).then_some("already at the gateway for this payee: not sent again");
    let Some((payee, event)) = about_payout(outcome, note) else { return Reaction::AskAgain };
    // Rule 7: an answer counts only when it is about this row's payout. One that says it is about
    // another (it gives another external reference) proves nothing for this row,
    // whichever payee it names: asked by a numeric reference, a gateway may answer about the same
    // payee's payout of last month.
    if payee.names_another_payout(row.reference) {
        return match (accepted, doubt) {
            (true, _) => Reaction::SwitchId,
            (false, Doubt::Parked) => Reaction::AskAgain,
            (false, _) => Reaction::Unattributable,
        };
    }
    let who = payee.describe();
    let mut matched = payee.matches(row.account, row.ifsc, row.amount);
    // SPEC 4: asked by a file's own all-digit reference (not by the order id the gateway gave this
    // row's posting), the gateway may have read it as another payout's order id, and that payout
    // may be the same payee's of last month. Rule 7 takes this row's account as proof, and payrun
    // does for a success or a pending answer; but a bank failure read that way would make a paid
    // row FAILED, which `payrun failed` offers for paying again. So a failure proves nothing then,
    // unless the answer gives this row's reference back. (A derived reference is not all digits.)
    let maybe_misread = !row.by_own_order_id
        && !row.derived_reference
        && !payee.names_payout(row.reference)
        && (row.reference.bytes().all(|b| b.is_ascii_digit())
            || payee.order_id.as_deref().is_some_and(|id| id.trim().eq_ignore_ascii_case(row.reference.trim())));
    if maybe_misread && matches!(event, Event::BankFailed { .. }) && matched == PayeeMatch::Same {
        matched = PayeeMatch::Unstated;
    }
    if !accepted && doubt == Doubt::Parked {
        // Parked for a person: only an answer that proves this row's fate moves it.
        return if matched == PayeeMatch::Same { Reaction::Event(event) } else { Reaction::AskAgain };
    }
    if duplicate {
        // Rule 8: TE0005 on the first attempt, then an inquiry on the reference. Another account
        // proves a collision only when the answer can be about nothing but the reference: a derived
        // reference is this row's alone (another account there means the gateway answered about
        // something else), and a reference the gateway may have read as an order id (all digits, or
        // given back as the answer's order id) proves nothing. See docs/design.md, the readings of the SPEC.
        let misread = row.derived_reference
            || row.reference.bytes().all(|b| b.is_ascii_digit())
            || payee.order_id.as_deref().is_some_and(|id| id.eq_ignore_ascii_case(row.reference));
        return match (matched, row.derived_reference) {
            (PayeeMatch::OtherAccount, _) if misread => person(
                PAYEE_MISMATCH,
                format!(
                    "TE0005 on the first attempt, and the status names another payee ({who}), but the gateway may have read the reference as another payout's order id: check with the gateway"
                ),
            ),
            (PayeeMatch::OtherAccount, _) => Reaction::Event(Event::Conflict {
                message: format!(
                    "the reference belongs to another payout ({who}): this row's payout was never applied; `payrun failed` offers it again under a new reference"
                ),
            }),
            (PayeeMatch::Same, true) => Reaction::Event(event),
            (PayeeMatch::OtherAmount, true) => person(
                AMOUNT_MISMATCH,
                format!(
                    "this row's reference is already at the gateway for this payee with another amount ({who}): check what was paid"
                ),
            ),
            (PayeeMatch::Same | PayeeMatch::OtherAmount, false) => person(
                REF_ALREADY_USED,
                format!(
                    "the file's reference is already at the gateway for this payee ({who}): this row's earlier payment, or an earlier payment under a reused reference; check, then payrun resolve"
                ),
            ),
            (PayeeMatch::Unstated, _) => person(
                REF_ALREADY_USED,
                "the reference is already at the gateway and its status names no account payrun can compare: check whose payout it is, then payrun resolve".into(),
            ),
        };
    }
    match matched {
        PayeeMatch::Same => Reaction::Event(event),
        // Asked by our own order id, an answer that names nobody is still about our payout.
        PayeeMatch::Unstated if accepted && row.by_own_order_id => Reaction::Event(event),
        PayeeMatch::Unstated if accepted => Reaction::SwitchId,
        PayeeMatch::Unstated => Reaction::Unattributable,
        // Rule 7: the gateway may have read the reference as someone else's order id, or described
        // our payout wrongly. Money may have moved: never FAILED, never sent again.
        PayeeMatch::OtherAccount => person(
            PAYEE_MISMATCH,
            format!("the gateway's status answer for this row names another payee ({who}): check with the gateway"),
        ),
        PayeeMatch::OtherAmount => person(
            AMOUNT_MISMATCH,
            format!(
                "the gateway's status answer names this payee with another amount ({who}; charges?): check what was paid"
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::lifecycle::{DUPLICATE_FIRST, IN_DOUBT, TE0020};

    const ACCOUNT: &str = "39628544321";
    const IFSC: &str = "SBIN0011243";

    fn amount() -> Option<Amount> {
        crate::money::parse_plain("1500.00")
    }

    fn status(state: RowState, code: Option<&str>) -> RowStatus {
        RowStatus { state: Some(state), attempts: 1, code: code.map(Into::into), ..RowStatus::default() }
    }

    fn asked(status: &RowStatus, derived: bool, by_order_id: bool) -> Asked<'_> {
        Asked {
            status,
            account: ACCOUNT,
            ifsc: IFSC,
            amount: amount(),
            reference: if derived { "PR3f9a1c2b7d4e0000042" } else { "INV-2026-11-042" },
            derived_reference: derived,
            by_own_order_id: by_order_id,
        }
    }

    /// The payees an answer can name: this row's, with charges added, another account, none.
    fn payees() -> [(PayeeMatch, Payee); 5] {
        let p = |account: Option<&str>, amount: &str| Payee {
            account: account.map(Into::into),
            ifsc: Some(IFSC.into()),
            amount: crate::money::parse_plain(amount),
            ..Payee::default()
        };
        [
            (PayeeMatch::Same, p(Some(ACCOUNT), "1500.00")),
            (PayeeMatch::Same, p(Some("XXXXXXX4321"), "1500")),
            (PayeeMatch::OtherAmount, p(Some(ACCOUNT), "1505.90")),
            (PayeeMatch::OtherAccount, p(Some("000099998888"), "1500.00")),
            (PayeeMatch::Unstated, Payee::default()),
        ]
    }

    fn answers(payee: &Payee) -> [StatusOutcome; 3] {
        [
            StatusOutcome::Success {
                utr: Some("UTR1".into()),
                payee: payee.clone(),
                gateway_ref: None,
                message: "SUCCESS".into(),
            },
            StatusOutcome::Pending { code: "ENQ001".into(), message: "later".into(), payee: payee.clone() },
            StatusOutcome::FailedAtBank { code: "BE1001".into(), message: "closed".into(), payee: payee.clone() },
        ]
    }

    fn event_name(r: &Reaction) -> String {
        match r {
            Reaction::Event(Event::NeedsPerson { code, .. }) => format!("person:{code}"),
            Reaction::Event(e) => e.name().to_string(),
            other => format!("{other:?}"),
        }
    }

    /// The status table, cell by cell: (row, payee match) → what a settle/pending/bank-failure
    /// answer becomes. `*` stands for the answer's own event (settled, still_pending, bank_failed).
    #[test]
    fn every_cell_of_the_status_table() {
        let accepted = status(RowState::Accepted, None);
        let pending = status(RowState::Pending, Some("ENQ001"));
        let lost = status(RowState::InDoubt, None);
        let te0020 = status(RowState::InDoubt, Some(TE0020));
        let dup = status(RowState::InDoubt, Some(DUPLICATE_FIRST));
        let parked = status(RowState::InDoubt, Some(IN_DOUBT));
        #[rustfmt::skip]
        let table: Vec<(&str, Asked<'_>, [&str; 4])> = vec![
            //                                      Same     OtherAmount             OtherAccount            Unstated
            ("accepted, by order id",  asked(&accepted, true, true),   ["*", "person:AMOUNT_MISMATCH", "person:PAYEE_MISMATCH", "*"]),
            ("accepted, by reference", asked(&accepted, true, false),  ["*", "person:AMOUNT_MISMATCH", "person:PAYEE_MISMATCH", "SwitchId"]),
            ("pending, by order id",   asked(&pending, false, true),   ["*", "person:AMOUNT_MISMATCH", "person:PAYEE_MISMATCH", "*"]),
            ("lost answer",            asked(&lost, false, false),     ["*", "person:AMOUNT_MISMATCH", "person:PAYEE_MISMATCH", "Unattributable"]),
            ("lost answer, derived",   asked(&lost, true, false),      ["*", "person:AMOUNT_MISMATCH", "person:PAYEE_MISMATCH", "Unattributable"]),
            ("TE0020",                 asked(&te0020, true, false),    ["*", "person:AMOUNT_MISMATCH", "person:PAYEE_MISMATCH", "Unattributable"]),
            ("TE0005, derived ref",    asked(&dup, true, false),       ["*", "person:AMOUNT_MISMATCH", "person:PAYEE_MISMATCH", "person:REF_ALREADY_USED"]),
            ("TE0005, file's own ref", asked(&dup, false, false),      ["person:REF_ALREADY_USED", "person:REF_ALREADY_USED", "conflict", "person:REF_ALREADY_USED"]),
            ("parked in doubt",        asked(&parked, true, false),    ["*", "AskAgain", "AskAgain", "AskAgain"]),
        ];
        for (what, row, expect) in &table {
            for (kind, payee) in payees() {
                let column = match kind {
                    PayeeMatch::Same => 0,
                    PayeeMatch::OtherAmount => 1,
                    PayeeMatch::OtherAccount => 2,
                    PayeeMatch::Unstated => 3,
                };
                for answer in answers(&payee) {
                    let got = event_name(&read_status(&answer, row));
                    let own = match &answer {
                        StatusOutcome::Success { .. } => "settled",
                        StatusOutcome::Pending { .. } => "still_pending",
                        _ => "bank_failed",
                    };
                    let want = if expect[column] == "*" { own } else { expect[column] };
                    assert_eq!(got, want, "{what} × {kind:?} ({payee:?}) × {answer:?}");
                }
            }
        }
    }

    #[test]
    fn every_cell_of_the_unknown_reference_row() {
        let te0011 = StatusOutcome::UnknownReference { message: "Invalid Payment reference number".into() };
        let cases = [
            (status(RowState::Accepted, None), Reaction::SwitchId),
            (status(RowState::Pending, Some("TE0009")), Reaction::SwitchId),
            (status(RowState::InDoubt, None), Reaction::UnknownReference(Toward::Resend)),
            (status(RowState::InDoubt, Some(TE0020)), Reaction::UnknownReference(Toward::NeverApplied)),
            (status(RowState::InDoubt, Some(DUPLICATE_FIRST)), Reaction::Unattributable),
            (status(RowState::InDoubt, Some(IN_DOUBT)), Reaction::AskAgain),
        ];
        for (s, want) in cases {
            assert_eq!(read_status(&te0011, &asked(&s, true, false)), want, "{s:?}");
        }
    }

    #[test]
    fn unknown_reference_counts_only_after_the_timeout_and_a_grace_apart() {
        let ms = Duration::from_millis;
        let (timeout_at, grace) = (ms(1000), ms(500));
        let mut u = UnknownCount::default();
        assert_eq!(u.answer(ms(200), timeout_at, grace), AfterUnknown::AskAt(timeout_at), "too early: not counted");
        assert_eq!(u.answer(ms(1000), timeout_at, grace), AfterUnknown::AskAt(ms(1500)));
        assert_eq!(u.answer(ms(1200), timeout_at, grace), AfterUnknown::AskAt(ms(1500)), "two, but not a grace apart");
        assert_eq!(u.answer(ms(1500), timeout_at, grace), AfterUnknown::Proven);
        assert_eq!(unknown_twice(Toward::Resend, 1, 5), Unknown::Resend);
        assert!(matches!(unknown_twice(Toward::Resend, 5, 5), Unknown::Event(Event::NeedsPerson { .. })));
        assert!(matches!(unknown_twice(Toward::NeverApplied, 1, 5), Unknown::Event(Event::NeverApplied { .. })));
    }

    /// An answer about a payout under the reference between two "unknown" answers breaks the
    /// proof: the count starts again.
    #[test]
    fn an_answer_about_a_payout_between_two_unknowns_starts_the_count_again() {
        let ms = Duration::from_millis;
        let (timeout_at, grace) = (ms(1000), ms(500));
        let mut u = UnknownCount::default();
        assert_eq!(u.answer(ms(1000), timeout_at, grace), AfterUnknown::AskAt(ms(1500)));
        u.contradicted();
        assert_eq!(u.answer(ms(1600), timeout_at, grace), AfterUnknown::AskAt(ms(2100)), "one answer, not two");
        assert_eq!(u.answer(ms(2100), timeout_at, grace), AfterUnknown::Proven);
    }

    #[test]
    fn answers_that_prove_nothing_change_nothing() {
        for s in [status(RowState::Accepted, None), status(RowState::InDoubt, None)] {
            let row = asked(&s, true, true);
            assert_eq!(read_status(&StatusOutcome::Unknown { reason: "HTTP 500".into() }, &row), Reaction::AskAgain);
            // A self-contradicting answer: the gateway knows something under the id.
            let contradictory = StatusOutcome::Contradictory { reason: "TE0011 with an account".into() };
            let want = if s.state() == RowState::InDoubt { Reaction::Unattributable } else { Reaction::AskAgain };
            assert_eq!(read_status(&contradictory, &row), want);
            assert_eq!(
                read_status(
                    &StatusOutcome::NotSent { retry_after: Some(Duration::from_secs(2)), reason: String::new() },
                    &row
                ),
                Reaction::Busy(Some(Duration::from_secs(2)))
            );
            assert!(matches!(read_status(&StatusOutcome::TokenInvalid, &row), Reaction::Stop(_)));
            assert!(matches!(
                read_status(&StatusOutcome::CredentialsRefused { message: "x".into() }, &row),
                Reaction::Stop(Stop::CredentialsRefused(_))
            ));
        }
    }

    /// Rule 8's one proof of a collision holds only when the answer cannot be about an order id.
    #[test]
    fn a_reference_that_may_be_read_as_an_order_id_proves_no_collision() {
        let dup = status(RowState::InDoubt, Some(DUPLICATE_FIRST));
        let other = Payee { account: Some("000011112222".into()), ..Payee::default() };
        let answer =
            |payee: Payee| StatusOutcome::Success { utr: None, payee, gateway_ref: None, message: "SUCCESS".into() };
        let with_ref = |reference: &'static str| Asked { reference, ..asked(&dup, false, false) };
        assert_eq!(event_name(&read_status(&answer(other.clone()), &with_ref("INV-2026-11-042"))), "conflict");
        assert_eq!(event_name(&read_status(&answer(other.clone()), &with_ref("123456"))), "person:PAYEE_MISMATCH");
        let echoed = Payee { order_id: Some("inv-2026-11-042".into()), ..other };
        assert_eq!(event_name(&read_status(&answer(echoed), &with_ref("INV-2026-11-042"))), "person:PAYEE_MISMATCH");
    }

    /// An accepted posting whose answer names another account: accepted, but its order id is not
    /// this row's. Before, the row was asked about by that id, and an answer naming nobody settled
    /// it with the other payout's fate.
    #[test]
    fn an_accepted_answer_naming_another_payee_gives_no_order_id() {
        let accepted = |account: Option<&str>| PayoutOutcome::Accepted {
            gateway_ref: Some("77".into()),
            pending: false,
            code: None,
            message: "Success".into(),
            payee: Payee { account: account.map(Into::into), ..Payee::default() },
        };
        let id = |r: PostingReading| match r.event {
            Event::Accepted { gateway_ref, .. } => gateway_ref,
            other => panic!("{other:?}"),
        };
        assert_eq!(id(read_posting_for(&accepted(Some("000011112222")), ACCOUNT, IFSC)), None);
        assert_eq!(id(read_posting_for(&accepted(Some(ACCOUNT)), ACCOUNT, IFSC)), Some("77".into()));
        assert_eq!(id(read_posting_for(&accepted(Some("XXXXXXX4321")), ACCOUNT, IFSC)), Some("77".into()));
        assert_eq!(id(read_posting_for(&accepted(None), ACCOUNT, IFSC)), Some("77".into()));
    }

    /// Asked by a file's all-digit reference, an answer naming this row's account may be about the
    /// same payee's payout of last month (the gateway read the reference as its order id). Rule 7
    /// takes the account as proof, so a success or a pending answer counts; a bank failure settles
    /// nothing, unless it gives this row's reference back or was asked by this row's own order id.
    /// Before, last month's bank failure made this month's accepted payout FAILED (and `payrun
    /// failed` offered it again).
    #[test]
    fn an_all_digit_reference_asked_by_itself_fails_nothing_by_account_alone() {
        let accepted = RowStatus { gateway_ref: None, ..status(RowState::Accepted, None) };
        let doubt = status(RowState::InDoubt, None);
        let parked = status(RowState::InDoubt, Some(IN_DOUBT));
        let ours = payees()[0].1.clone();
        fn numeric(s: &RowStatus, by_order_id: bool) -> Asked<'_> {
            Asked { reference: "1001", ..asked(s, false, by_order_id) }
        }
        let cases =
            [(&accepted, Reaction::SwitchId), (&doubt, Reaction::Unattributable), (&parked, Reaction::AskAgain)];
        for (s, want) in cases {
            // The reference given back (as a number, its zeros lost): about this payout.
            let echoed = Payee { reference: Some("01001".into()), ..ours.clone() };
            for (answer, back) in answers(&ours).into_iter().zip(answers(&echoed)) {
                let got = read_status(&answer, &numeric(s, false));
                if matches!(answer, StatusOutcome::FailedAtBank { .. }) {
                    assert_eq!(got, want, "{s:?} × {answer:?}");
                } else {
                    assert!(matches!(got, Reaction::Event(_)), "{s:?} × {answer:?}: {got:?}");
                }
                assert!(matches!(read_status(&back, &numeric(s, false)), Reaction::Event(_)), "{s:?} × {back:?}");
            }
        }
        // Asked by this row's own order id: the account settles it, as before.
        let with_id = RowStatus { gateway_ref: Some("AMD77".into()), ..status(RowState::Accepted, None) };
        for answer in answers(&ours) {
            assert!(matches!(read_status(&answer, &numeric(&with_id, true)), Reaction::Event(_)));
        }
        // A reference that is not all digits, given back as the answer's order id: read as one.
        let read_as_id = Payee { order_id: Some("inv-2026-11-042".into()), ..ours.clone() };
        let failed = answers(&read_as_id)[2].clone();
        assert_eq!(read_status(&failed, &asked(&doubt, false, false)), Reaction::Unattributable);
    }

    /// An answer that says it is about another payout (another reference, another order id than
    /// the one this row's posting got) proves nothing for this row, whichever payee it names and
    /// whatever it says happened: never SUCCESS, never FAILED, never a conflict.
    #[test]
    fn an_answer_about_another_payout_proves_nothing() {
        let with_id = |state: RowState, code: Option<&str>| RowStatus {
            gateway_ref: matches!(state, RowState::Accepted | RowState::Pending).then(|| "AMD77".into()),
            ..status(state, code)
        };
        let rows = [
            (with_id(RowState::Accepted, None), Reaction::SwitchId),
            (with_id(RowState::Pending, Some("ENQ001")), Reaction::SwitchId),
            (with_id(RowState::InDoubt, None), Reaction::Unattributable),
            (with_id(RowState::InDoubt, Some(TE0020)), Reaction::Unattributable),
            (with_id(RowState::InDoubt, Some(DUPLICATE_FIRST)), Reaction::Unattributable),
            (with_id(RowState::InDoubt, Some(IN_DOUBT)), Reaction::AskAgain),
        ];
        let others = [
            Payee { reference: Some("SAL-OCT-0007".into()), ..payees()[0].1.clone() },
            Payee { reference: Some("SAL-OCT-0007".into()), ..payees()[3].1.clone() },
        ];
        for (s, want) in &rows {
            for derived in [true, false] {
                let row = asked(s, derived, s.gateway_ref.is_some());
                for payee in &others {
                    for answer in answers(payee) {
                        assert_eq!(&read_status(&answer, &row), want, "{s:?} × {payee:?} × {answer:?}");
                    }
                }
            }
        }
        // The same answer naming this row's reference, or its own order id, is about its payout.
        let accepted = with_id(RowState::Accepted, None);
        let own = Payee {
            order_id: Some("AMD77".into()),
            reference: Some("PR3f9a1c2b7d4e0000042".into()),
            ..payees()[0].1.clone()
        };
        assert_eq!(event_name(&read_status(&answers(&own)[2], &asked(&accepted, true, true))), "bank_failed");
    }

    #[test]
    fn a_derived_reference_already_paid_says_so() {
        let dup = status(RowState::InDoubt, Some(DUPLICATE_FIRST));
        let answer = &answers(&payees()[0].1)[0];
        match read_status(answer, &asked(&dup, true, false)) {
            Reaction::Event(Event::Settled { message, .. }) => {
                assert!(message.contains("already at the gateway for this payee: not sent again"), "{message}")
            }
            other => panic!("{other:?}"),
        }
    }

    /// The posting table: every answer shape a client can classify, including ones our sandbox
    /// never produces (a 5xx carrying a refusal, a 429 with a body, an unknown code).
    #[test]
    fn every_cell_of_the_posting_table() {
        use crate::gateway::wire::classify_payout;
        let cases: [(u16, &str, &str, &str); 16] = [
            (200, r#"{"status":1,"code":"SU0000","Transaction":[{"Order-Id":"9"}]}"#, "accepted", "Continue"),
            (200, r#"{"status":1,"code":"ENQ001","Transaction":[{"Order-Id":"9"}]}"#, "accepted", "Continue"),
            (200, r#"{"status":0,"code":"TE0003","message":"Invalid Request Format"}"#, "rejected", "Continue"),
            (200, r#"{"status":0,"code":"TE0007","message":"Mandatory field missing"}"#, "rejected", "Continue"),
            (200, r#"{"status":0,"code":"TE0008","message":"payment mode cannot be null"}"#, "rejected", "Continue"),
            (200, r#"{"status":0,"code":"TE0020","message":"Technical failure"}"#, "technical_failure", "Continue"),
            (200, r#"{"status":0,"code":"TE0005","message":"Duplicate"}"#, "duplicate", "Continue"),
            (500, r#"{"status":0,"code":"TE0020","message":"Technical failure"}"#, "lost", "Continue"),
            (502, r#"{"status":0,"code":"TE0007"}"#, "lost", "Continue"),
            (503, r#"{"status":0,"code":"TE0005"}"#, "lost", "Continue"),
            (429, "Too many requests", "lost", "Continue"),
            (429, "", "not_sent", "Pause"),
            (200, r#"{"status":0,"code":"XX9999"}"#, "lost", "Continue"),
            (200, "<html>ok</html>", "lost", "Continue"),
            (401, r#"{"code":401,"status":"error","message":"Invalid API credentials."}"#, "not_sent", "Stop"),
            (200, r#"{"status":0,"code":"TE0012","message":"Invalid Token"}"#, "not_sent", "Stop"),
        ];
        for (http, body, event, then) in cases {
            // TE0012 reaches the engine only after the client's one fresh-token retry.
            let outcome = classify_payout(http, None, body);
            let r = read_posting(&outcome);
            assert_eq!(r.event.name(), event, "{http} {body}");
            let t = match r.then {
                Then::Continue => "Continue",
                Then::Pause(_) => "Pause",
                Then::Stop(_) => "Stop",
            };
            assert_eq!(t, then, "{http} {body}");
        }
    }
}
