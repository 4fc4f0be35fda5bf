//! What the simulated gateway does: the three profiles, the magic account numbers, and the seeded
//! dice that pick a payout's fate and a request's fault.
//!
//! Every random choice is a pure function of `(seed, what, reference, attempt)` so that a run is
//! repeatable and independent of the order requests arrive in: the same seed and file give the same
//! fates, the same faults on the same attempts, and the same ledger.

use std::time::Duration;

/// A stable 64-bit hash of the seed and some parts (FNV-1a, then a SplitMix64 finaliser).
pub fn dice(seed: u64, parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    for p in parts {
        for b in *p {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// A uniform number in `0..n` from a hash.
pub fn pick(h: u64, n: u64) -> u64 {
    if n == 0 { 0 } else { h % n }
}

/// The sandbox's behaviour as a whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// Everything succeeds at once: no latency, no pending, no faults.
    Clean,
    /// A working gateway on a normal day: 20-120 ms latency, some payouts pending for a few seconds,
    /// a few bank failures, rare 5xx.
    Realistic,
    /// A bad day: on top of realistic, answers lost after the payout was applied (delayed past any
    /// client timeout, or the connection reset), 5xx before applying, 429s, tokens that expire every
    /// 20 s, status answers that lag the posting, payouts pending for a long time.
    Chaos,
}

/// Tunable numbers of a profile (per mille where it says so).
#[derive(Clone, Debug)]
pub struct Knobs {
    pub latency: (u64, u64),
    pub token_ttl: Duration,
    /// Posting answered ENQ001 (accepted, pending).
    pub enq_at_posting: u64,
    /// Fates: bank failure, long pending (then success), pending forever.
    pub bank_failure: u64,
    pub long_pending: u64,
    /// Settle delay range for ordinary payouts, in ms.
    pub settle_ms: (u64, u64),
    pub long_pending_ms: (u64, u64),
    /// Posting faults (per mille of attempts).
    pub post_5xx_before: u64,
    pub post_apply_then_timeout: u64,
    pub post_apply_then_reset: u64,
    pub post_apply_then_5xx: u64,
    pub post_429: u64,
    /// Postings that hang: held for [`Knobs::hang`] and never applied (the gateway stalled before it
    /// got to the payout). No profile does this; `payrun sandbox --post-hang-before` and the
    /// benchmark turn it on.
    pub post_hang_before: u64,
    /// Status faults (per mille of inquiries).
    pub status_5xx: u64,
    pub status_429: u64,
    pub status_reset: u64,
    /// Inquiries held for [`Knobs::hang`] (none by default; `--status-hang`).
    pub status_hang: u64,
    /// How long a hung answer is held: an applied payout's lost answer
    /// (`post_apply_then_timeout`), a posting hung before applying, a hung inquiry. Longer than any
    /// client's timeout, so the client never sees the answer.
    pub hang: Duration,
    /// Status answers TE0011 for this long after applying (the gateway's index lags its posting).
    pub status_lag: Duration,
    /// Status inquiries know payouts by reference only, not by order id (a gateway that reads the
    /// document differently; no profile does this, tests turn it on).
    pub status_by_reference_only: bool,
}

impl Profile {
    pub fn knobs(self) -> Knobs {
        match self {
            Profile::Clean => Knobs {
                latency: (0, 0),
                token_ttl: Duration::from_secs(3600),
                enq_at_posting: 0,
                bank_failure: 0,
                long_pending: 0,
                settle_ms: (0, 0),
                long_pending_ms: (0, 0),
                post_5xx_before: 0,
                post_apply_then_timeout: 0,
                post_apply_then_reset: 0,
                post_apply_then_5xx: 0,
                post_429: 0,
                post_hang_before: 0,
                status_5xx: 0,
                status_429: 0,
                status_reset: 0,
                status_hang: 0,
                hang: Duration::from_secs(300),
                status_lag: Duration::ZERO,
                status_by_reference_only: false,
            },
            Profile::Realistic => Knobs {
                latency: (20, 120),
                token_ttl: Duration::from_secs(900),
                enq_at_posting: 100,
                bank_failure: 30,
                long_pending: 50,
                settle_ms: (200, 2500),
                long_pending_ms: (3000, 8000),
                post_5xx_before: 5,
                post_apply_then_timeout: 0,
                post_apply_then_reset: 0,
                post_apply_then_5xx: 0,
                post_429: 0,
                post_hang_before: 0,
                status_5xx: 5,
                status_429: 0,
                status_reset: 0,
                status_hang: 0,
                hang: Duration::from_secs(300),
                status_lag: Duration::ZERO,
                status_by_reference_only: false,
            },
            Profile::Chaos => Knobs {
                latency: (5, 80),
                token_ttl: Duration::from_secs(20),
                enq_at_posting: 200,
                bank_failure: 50,
                long_pending: 100,
                settle_ms: (200, 3000),
                long_pending_ms: (5000, 20000),
                post_5xx_before: 40,
                post_apply_then_timeout: 30,
                post_apply_then_reset: 30,
                post_apply_then_5xx: 20,
                post_429: 30,
                post_hang_before: 0,
                status_5xx: 30,
                status_429: 20,
                status_reset: 10,
                status_hang: 0,
                hang: Duration::from_secs(300),
                status_lag: Duration::from_millis(1500),
                status_by_reference_only: false,
            },
        }
    }
}

/// One behaviour a magic account number selects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Magic {
    BankFailure,
    PendingThenSuccess,
    PendingForever,
    ApplyThenTimeout,
    ApplyThenReset,
    ServerErrorBeforeApply,
    RejectTe0020,
    ReferenceCollision,
    CollisionAnswerLost,
    StatusOtherAccount,
    RateLimitedFirst,
    TokenInvalidFirst,
    PendingThenBankFailure,
    ResetAndLaggingStatus,
    CredentialsRefused,
    ApplyThen500Refusal,
    ApplyThenTe0020,
    StatusWithCharges,
    AppliedByEarlierRun,
    StatusByReferenceIsAnotherPayout,
}

/// The magic accounts: each number selects one behaviour whatever the profile. All are valid
/// 12-digit account numbers, so they pass validation and reach the gateway.
pub const MAGIC_ACCOUNTS: &[(&str, Magic, &str)] = &[
    ("999900000001", Magic::BankFailure, "fails at the bank: BE1001 (account closed) after a short pending"),
    ("999900000002", Magic::PendingThenSuccess, "pending (ENQ001/TE0009) for 3 status inquiries, then SU0000"),
    ("999900000003", Magic::PendingForever, "pending forever (stays PENDING; resume picks it up)"),
    (
        "999900000004",
        Magic::ApplyThenTimeout,
        "first posting: applied, then the answer is delayed past any client timeout",
    ),
    ("999900000005", Magic::ApplyThenReset, "first posting: applied, then the connection is reset"),
    ("999900000006", Magic::ServerErrorBeforeApply, "first posting: HTTP 500 before applying (not applied)"),
    ("999900000007", Magic::RejectTe0020, "every posting refused with TE0020 (technical failure)"),
    (
        "999900000008",
        Magic::ReferenceCollision,
        "the reference already belongs to another payout: TE0005 on the first posting",
    ),
    (
        "999900000009",
        Magic::CollisionAnswerLost,
        "the reference already belongs to another payout, and the answer to the first posting is lost (reset): status names another account",
    ),
    ("999900000010", Magic::RateLimitedFirst, "first posting: HTTP 429 with no body (not applied)"),
    ("999900000011", Magic::TokenInvalidFirst, "first posting: TE0012 invalid token (not applied)"),
    ("999900000012", Magic::PendingThenBankFailure, "ENQ001 at posting, pending for 2 inquiries, then BE2002"),
    ("999900000013", Magic::ResetAndLaggingStatus, "first posting: applied then reset; status says TE0011 for 2 s"),
    (
        "999900000014",
        Magic::StatusOtherAccount,
        "applied, but status answers describe another account (a gateway inconsistency)",
    ),
    (
        "999900000015",
        Magic::ApplyThen500Refusal,
        "first posting: applied, then answered HTTP 500 with a TE0020 refusal in the body",
    ),
    ("999900000016", Magic::ApplyThenTe0020, "first posting: applied, then answered TE0020 (HTTP 200)"),
    ("999900000017", Magic::StatusWithCharges, "applied; status answers report the amount plus ₹5.90 charges"),
    (
        "999900000018",
        Magic::AppliedByEarlierRun,
        "an earlier run (another journal) already applied this row's reference to this payee: TE0005 on the first posting, status names this payee",
    ),
    (
        "999900000019",
        Magic::StatusByReferenceIsAnotherPayout,
        "first posting: applied, then reset; status by reference answers about another payout (the reference read as someone else's order id)",
    ),
    ("999900000401", Magic::CredentialsRefused, "every posting answered HTTP 401 Invalid API credentials"),
];

/// The behaviour an account number selects, if it is a magic one.
pub fn magic(account: &str) -> Option<Magic> {
    MAGIC_ACCOUNTS.iter().find(|(a, _, _)| *a == account).map(|(_, m, _)| *m)
}

/// The magic accounts as help text (for `payrun sandbox --help` and docs/operator-guide.md).
pub fn magic_help() -> String {
    let mut s = String::from("Magic account numbers (each selects one behaviour, in every profile):\n");
    for (a, _, what) in MAGIC_ACCOUNTS {
        s.push_str(&format!("  {a}  {what}\n"));
    }
    s
}

/// Bank error codes the sandbox uses for failures, with their messages.
pub const BANK_ERRORS: &[(&str, &str)] = &[
    ("BE1001", "Account closed"),
    ("BE1002", "Invalid account number"),
    ("BE1003", "Beneficiary name mismatch"),
    ("BE2002", "Account frozen"),
    ("BE3001", "Beneficiary bank not available"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dice_is_stable_and_spread() {
        assert_eq!(dice(7, &[b"a", b"b"]), dice(7, &[b"a", b"b"]));
        assert_ne!(dice(7, &[b"ab"]), dice(7, &[b"a", b"b"]));
        assert_ne!(dice(7, &[b"a"]), dice(8, &[b"a"]));
        let hits = (0..10_000u32).filter(|i| pick(dice(1, &[&i.to_le_bytes()]), 1000) < 100).count();
        assert!((800..1200).contains(&hits), "{hits}");
    }

    #[test]
    fn magic_accounts_are_valid_and_distinct() {
        let mut seen = std::collections::HashSet::new();
        for (a, m, _) in MAGIC_ACCOUNTS {
            assert!(a.len() >= 9 && a.len() <= 18 && a.bytes().all(|b| b.is_ascii_digit()));
            assert!(seen.insert(*a));
            assert_eq!(magic(a), Some(*m));
        }
    }
}
