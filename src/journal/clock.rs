//! The journal's wall clock: every time payrun records (a row's submission and completion, a hold,
//! an action, an evidence record) and every time window it judges (SPEC 3.2's 24 hours and repeat
//! window) is [`now`].
//!
//! A test that plays a month of operator actions moves this clock forward ([`advance`]) instead of
//! waiting days; nothing else does. The offset is process-wide, so such a test runs in a process of
//! its own (the suite re-executes itself for it), never beside tests that read the real time.

use std::sync::atomic::{AtomicI64, Ordering};

static OFFSET_MS: AtomicI64 = AtomicI64::new(0);

/// Current time, RFC 3339 UTC with milliseconds (plus the test offset, normally zero).
pub fn now() -> String {
    at(chrono::Utc::now())
}

/// The current time as a date-time (plus the test offset).
pub fn now_utc() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now() + chrono::Duration::milliseconds(OFFSET_MS.load(Ordering::Relaxed))
}

fn at(t: chrono::DateTime<chrono::Utc>) -> String {
    let t = t + chrono::Duration::milliseconds(OFFSET_MS.load(Ordering::Relaxed));
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// `t` (RFC 3339) moved by `by` (negative: earlier), as RFC 3339 UTC with milliseconds, so that it
/// compares as text with the journal's times. `None` when `t` is not a time.
pub fn shift(t: &str, by: chrono::Duration) -> Option<String> {
    let t = chrono::DateTime::parse_from_rfc3339(t).ok()?.with_timezone(&chrono::Utc);
    Some((t + by).to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

/// Moves the clock forward by `by` for the rest of this process (tests of time windows only).
#[doc(hidden)]
pub fn advance(by: std::time::Duration) {
    OFFSET_MS.fetch_add(by.as_millis() as i64, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    #[test]
    fn shift_keeps_the_journal_format() {
        assert_eq!(
            super::shift("2026-12-06T04:30:00.000Z", -chrono::Duration::days(1)).as_deref(),
            Some("2026-12-05T04:30:00.000Z")
        );
        assert_eq!(super::shift("nope", chrono::Duration::days(1)), None);
    }
}
