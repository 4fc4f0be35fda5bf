//! The principle of SPEC section 3, as a property over random histories of one row: **a row never
//! ends FAILED when the gateway applied its payout (and the money moved), and never ends SUCCESS
//! when it did not.** Whatever the gateway answers, in shapes our sandbox never produces too: 5xx
//! with refusal or acceptance bodies, 429/503 with bodies, TE0020 after applying, TE0005 for our
//! own earlier payout, someone else's payout under our reference, status answers that read our
//! reference as someone else's order id, amounts with charges, masked or missing account numbers,
//! lagging "unknown reference" answers.
//!
//! The row is driven by payrun's own rules exactly as the engine drives it: the client's answer
//! classification (`gateway::wire`), the answer table (`engine::reading`), the "unknown reference"
//! counting with its timeout and grace, and the lifecycle (`journal::lifecycle`). The gateway is a
//! model whose truth the answers must respect (it never says TE0011 for a payout it has once the
//! request's own timeout has passed, and it never applies a reference twice); the property is
//! judged against that truth.

use std::time::Duration;

use payrun::engine::reading::{
    self, AfterUnknown, Asked, Reaction, Then, Toward, Unknown, UnknownCount, read_posting, read_status,
};
use payrun::gateway::wire::{classify_payout, classify_status};
use payrun::journal::lifecycle::{self, Event, RowState, RowStatus};
use payrun::money::Amount;
use proptest::prelude::*;

const ACCOUNT: &str = "004011040001234";
const IFSC: &str = "SBIN0011243";
const TIMEOUT: Duration = Duration::from_millis(1000);
const GRACE: Duration = Duration::from_millis(500);
const MAX_ATTEMPTS: u32 = 5;

/// What became of this row's money at the gateway.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    Paid,
    BankFailed,
}

/// The gateway's truth about this row's reference.
#[derive(Debug)]
struct Gateway {
    /// This row's payout, once applied (by this run or an earlier one), and when.
    ours: Option<(Fate, Duration)>,
    /// Someone else's payout already holds the reference (last month's file reusing it).
    foreign: bool,
}

/// A stream of choices the strategy generated; cycles when exhausted.
struct Dice {
    bytes: Vec<u8>,
    at: usize,
}

impl Dice {
    fn pick(&mut self, n: usize) -> usize {
        let b = self.bytes[self.at % self.bytes.len()];
        self.at += 1;
        b as usize % n
    }
}

fn ok_json(code: &str, extra: &str) -> String {
    format!(r#"{{"status":1,"code":"{code}","message":"Success","Transaction":[{{"Order-Id":"AMD77"}}]{extra}}}"#)
}

/// A posting answer the gateway may give, as (HTTP status, body), given what it did.
fn posting_answer(applied_now: bool, duplicate: bool, dice: &mut Dice) -> (u16, String) {
    // Shapes that say nothing reliable, whatever happened.
    let noise: [(u16, &str); 5] = [
        (500, r#"{"status":0,"code":"TE0020","message":"Technical failure"}"#),
        (502, "<html><body>Bad Gateway</body></html>"),
        (503, r#"{"status":0,"code":"TE0007"}"#),
        (429, "slow down"),
        (0, ""), // a timeout or reset: no answer at all
    ];
    if duplicate {
        return match dice.pick(3) {
            0 => (200, r#"{"status":0,"code":"TE0005","message":"Duplicate Payment Request"}"#.into()),
            _ => {
                let (h, b) = noise[dice.pick(noise.len())];
                (h, b.into())
            }
        };
    }
    if applied_now {
        match dice.pick(6) {
            0 => (200, ok_json("SU0000", "")),
            1 => (200, ok_json("ENQ001", "")),
            2 => (200, r#"{"status":0,"code":"TE0020","message":"Technical failure"}"#.into()),
            _ => {
                let (h, b) = noise[dice.pick(noise.len())];
                (h, b.into())
            }
        }
    } else {
        match dice.pick(7) {
            0 => (200, r#"{"status":0,"code":"TE0007","message":"Mandatory field missing"}"#.into()),
            1 => (200, r#"{"status":0,"code":"TE0003","message":"Invalid Request Format"}"#.into()),
            2 => (200, r#"{"status":0,"code":"TE0020","message":"Technical failure"}"#.into()),
            3 => (429, String::new()),
            _ => {
                let (h, b) = noise[dice.pick(noise.len())];
                (h, b.into())
            }
        }
    }
}

/// How a status answer shows a payee.
fn payee_fields(account: &str, amount: &str, dice: &mut Dice) -> String {
    match dice.pick(6) {
        0 => format!(r#","account_no":"{account}","Ifsc_code":"{IFSC}","amount":"{amount}""#),
        // As a JSON number: leading zeros lost.
        1 => format!(r#","account_no":{},"amount":{amount}"#, account.trim_start_matches('0')),
        2 => format!(r#","account_no":"XXXXXXXXXXX{}""#, &account[account.len() - 4..]),
        3 => String::new(),
        // Charges added to the amount.
        4 => format!(r#","account_no":"{account}","amount":"{}""#, add_charges(amount)),
        _ => format!(r#","customer_name":"X","account_no":"{account}""#),
    }
}

fn add_charges(amount: &str) -> String {
    let a = payrun::money::parse_plain(amount).unwrap_or(Amount::ZERO);
    (a + Amount::from_paise(590)).to_wire()
}

/// The references a row can have: payrun's derived one, the file's own, the file's own numeric.
const REFERENCES: [&str; 3] = ["PR3f9a1c2b7d4e0000042", "INV-2026-11-042", "123456"];

/// A status answer, given the truth at time `now`.
fn status_answer(
    g: &Gateway,
    reference: &str,
    by_order_id: bool,
    counts_after: Duration,
    now: Duration,
    dice: &mut Dice,
) -> (u16, String) {
    let noise = dice.pick(8);
    if noise == 0 {
        return (500, r#"{"status":1,"code":"SU0000","account_no":"004011040001234"}"#.into());
    }
    if noise == 1 {
        return (429, "busy".into());
    }
    if g.foreign {
        let fields = payee_fields("000011112222", "1.00", dice);
        return (200, format!(r#"{{"status":1,"code":"SU0000","message":"SUCCESS"{fields}}}"#));
    }
    // Asked by reference, the gateway may read it as someone else's order id (asked by the order
    // id it gave our own posting, it cannot). A reference of letters can be taken for one only by
    // a gateway that then answers about that order id, and says so.
    if !by_order_id && dice.pick(10) == 0 {
        let fields = payee_fields("000011112222", "1.00", dice);
        let echo = if reference.bytes().all(|b| b.is_ascii_digit()) || reference.starts_with("PR") {
            String::new()
        } else {
            format!(r#","payout_id":"{reference}""#)
        };
        return (200, format!(r#"{{"status":1,"code":"SU0000","message":"SUCCESS"{fields}{echo}}}"#));
    }
    match g.ours {
        // Lagging index: "unknown" for a payout it has, but only while the request may still be
        // on its way (the model's honesty bound: after the request's own timeout TE0011 is true).
        Some((_, applied)) if now < counts_after && now < applied + TIMEOUT && dice.pick(2) == 0 => {
            (200, r#"{"status":0,"code":"TE0011","message":"Invalid Payment reference number"}"#.into())
        }
        Some((fate, _)) => {
            let fields = payee_fields(ACCOUNT, "1500.00", dice);
            match (fate, dice.pick(3)) {
                (_, 0) => (200, format!(r#"{{"status":"PENDING","code":"TE0009","message":"later"{fields}}}"#)),
                (Fate::Paid, _) => (200, format!(r#"{{"status":1,"code":"SU0000","message":"SUCCESS"{fields}}}"#)),
                (Fate::BankFailed, _) => {
                    (200, format!(r#"{{"status":0,"code":"BE1001","message":"Account closed"{fields}}}"#))
                }
            }
        }
        None => (200, r#"{"status":0,"code":"TE0011","message":"Invalid Payment reference number"}"#.into()),
    }
}

/// The outcome of one simulated history.
#[derive(Debug)]
struct History {
    end: RowStatus,
    truth: Option<Fate>,
    postings: u32,
    log: Vec<String>,
}

fn simulate(pre: u8, reference_kind: u8, bytes: Vec<u8>, steps: Vec<u16>) -> History {
    let reference = REFERENCES[reference_kind as usize % REFERENCES.len()];
    let derived = reference.starts_with("PR");
    let mut dice = Dice { bytes, at: 0 };
    let mut g = Gateway { ours: None, foreign: false };
    match pre % 4 {
        1 => g.foreign = true,
        2 => g.ours = Some((Fate::Paid, Duration::ZERO)), // an earlier run paid it
        3 => g.ours = Some((Fate::BankFailed, Duration::ZERO)),
        _ => {}
    }
    let amount = payrun::money::parse_plain("1500.00");
    // Confirmed by the operator (SPEC 3.2c), as every row the engine sends is.
    let mut s = RowStatus { confirmed: true, ..RowStatus::new(RowState::Ready) };
    let mut now = Duration::from_millis(1);
    let mut counts_after = Duration::ZERO;
    let mut unknown = UnknownCount::default();
    let mut unattributable = 0u32;
    let mut by_ref = false;
    let mut resend = false;
    let mut postings = 0;
    let mut log = Vec::new();
    let t = "2026-12-01T10:00:00.000Z";
    for (i, step) in steps.iter().enumerate() {
        now += Duration::from_millis(u64::from(*step % 1500) + 1);
        let state = s.state();
        if state.is_final() || s.parked() {
            break;
        }
        if state == RowState::Ready || resend {
            resend = false;
            s = lifecycle::apply(&s, &Event::Claim, t).expect("claim");
            counts_after = now + TIMEOUT;
            postings += 1;
            // The gateway dedupes references: a posting is applied only when nothing holds it.
            let duplicate = g.foreign || g.ours.is_some();
            let applies = !duplicate && dice.pick(2) == 0;
            if applies {
                let fate = if dice.pick(4) == 0 { Fate::BankFailed } else { Fate::Paid };
                g.ours = Some((fate, now));
            }
            let (http, body) = posting_answer(applies, duplicate, &mut dice);
            let outcome = if http == 0 {
                payrun::gateway::PayoutOutcome::Unknown { reason: "timed out".into() }
            } else {
                classify_payout(http, None, &body)
            };
            let r = read_posting(&outcome);
            log.push(format!(
                "{i}: post#{} applied={applies} dup={duplicate} {http} {body} → {}",
                s.attempts,
                r.event.name()
            ));
            if let Then::Stop(_) = r.then {
                panic!("no credentials answer in this model: {outcome:?}");
            }
            s = lifecycle::apply(&s, &r.event, t).unwrap_or_else(|e| panic!("{e}: {log:#?}"));
            if s.state() == RowState::InDoubt {
                unknown = UnknownCount::default();
                unattributable = 0;
            }
            continue;
        }
        // An inquiry.
        let by_order_id = matches!(state, RowState::Accepted | RowState::Pending) && !by_ref;
        let (http, body) = status_answer(&g, reference, by_order_id, counts_after, now, &mut dice);
        let outcome = classify_status(http, None, &body);
        let asked = Asked {
            status: &s,
            account: ACCOUNT,
            ifsc: IFSC,
            amount,
            reference,
            derived_reference: derived,
            by_own_order_id: by_order_id,
        };
        let reaction = read_status(&outcome, &asked);
        log.push(format!("{i}: status {http} {body} → {reaction:?}"));
        let event = match reaction {
            Reaction::Event(e) => Some(e),
            Reaction::AskAgain | Reaction::Busy(_) => None,
            Reaction::SwitchId => {
                by_ref = !by_ref;
                None
            }
            Reaction::UnknownReference(toward) => match unknown.answer(now, counts_after, GRACE) {
                AfterUnknown::AskAt(_) => None,
                AfterUnknown::Proven => match reading::unknown_twice(toward, s.attempts, MAX_ATTEMPTS) {
                    Unknown::Resend => {
                        assert_eq!(toward, Toward::Resend);
                        resend = true;
                        None
                    }
                    Unknown::Event(e) => Some(e),
                },
            },
            Reaction::Unattributable => {
                unknown.contradicted();
                unattributable += 1;
                (unattributable >= MAX_ATTEMPTS).then(|| Event::NeedsPerson {
                    code: payrun::journal::lifecycle::IN_DOUBT,
                    message: "unattributable".into(),
                })
            }
            Reaction::Stop(stop) => panic!("no credentials answer in this model: {stop:?}"),
        };
        if let Some(e) = event {
            // A parked duplicate is REF_ALREADY_USED in the engine; the code does not matter here.
            let e = match (&e, s.doubt()) {
                (Event::NeedsPerson { .. }, payrun::journal::lifecycle::Doubt::Duplicate) => Event::NeedsPerson {
                    code: payrun::journal::lifecycle::REF_ALREADY_USED,
                    message: "unattributable".into(),
                },
                _ => e,
            };
            s = lifecycle::apply(&s, &e, t).unwrap_or_else(|err| panic!("{err}: {log:#?}"));
        }
    }
    History { end: s, truth: g.ours.map(|(f, _)| f), postings, log }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn failed_only_on_proof_success_only_on_proof(
        pre in 0u8..4,
        reference_kind in 0u8..3,
        bytes in proptest::collection::vec(any::<u8>(), 8..80),
        steps in proptest::collection::vec(any::<u16>(), 1..80),
    ) {
        let h = simulate(pre, reference_kind, bytes, steps);
        match h.end.state() {
            RowState::Failed => prop_assert!(
                h.truth != Some(Fate::Paid),
                "FAILED ({:?}) although the payout was applied and paid: {:#?}", h.end.code, h.log
            ),
            RowState::Success => prop_assert!(
                h.truth == Some(Fate::Paid),
                "SUCCESS although the money did not move ({:?}): {:#?}", h.truth, h.log
            ),
            _ => {}
        }
        prop_assert!(h.end.attempts <= MAX_ATTEMPTS, "{} attempts ({} postings): {:#?}", h.end.attempts, h.postings, h.log);
    }
}

/// The model reaches every end: the property is not vacuous.
#[test]
fn the_model_reaches_every_end() {
    let mut seen = std::collections::BTreeSet::new();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..20_000 {
        let bytes: Vec<u8> = (0..40).map(|_| next() as u8).collect();
        let steps: Vec<u16> = (0..60).map(|_| next() as u16).collect();
        let h = simulate(next() as u8, (next() % 3) as u8, bytes, steps);
        let code = h.end.code.clone().unwrap_or_default();
        seen.insert(format!(
            "{} {}",
            h.end.state(),
            if h.end.state() == RowState::Failed || h.end.parked() { code } else { String::new() }
        ));
    }
    for want in [
        "success ",
        "failed BE1001",
        "failed TE0007",
        "failed TE0020",
        "failed REF_CONFLICT",
        "pending PAYEE_MISMATCH",
        "pending AMOUNT_MISMATCH",
        "pending REF_ALREADY_USED",
    ] {
        assert!(seen.contains(want), "never reached {want}: {seen:?}");
    }
}
