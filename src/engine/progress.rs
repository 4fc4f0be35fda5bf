//! Progress of a run: counters the engine keeps, and how they are shown (an indicatif bar on a
//! terminal, a plain line every few seconds otherwise, or nothing).
//!
//! Every count is the batch's, not this process's (a resumed run says how far the *batch* is), and
//! the speed shown is gateway requests per second next to the permitted rate, the unit `--rate` is
//! in. The ETA is computed from what is left to do in gateway calls — every row not yet sent needs
//! at least two (the posting and a status inquiry), every row sent but not final at least one —
//! divided by the rate the run actually achieves (measured over the last few seconds, never above
//! the permitted rate). An ETA from rows per second would be wrong twice: rows settle in bursts,
//! and the first seconds of a run are spent on postings whose rows are not final yet.

use std::collections::VecDeque;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::journal::RowState;

/// Counters of one run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Rows per lifecycle state (the batch's), indexed like [`RowState::ALL`].
    pub states: [u64; RowState::ALL.len()],
    /// Payout postings started by this process (first sends and resends).
    pub sends_started: u64,
    /// Status inquiries answered (any answer).
    pub inquiries: u64,
    /// In-doubt rows sent again after two "unknown reference" answers.
    pub resends: u64,
    /// Postings whose answer was lost (timeout, reset, 5xx, unreadable).
    pub lost_answers: u64,
    /// Postings the gateway provably never received (429/503 without a body, refused connection).
    pub not_sent: u64,
    /// Status inquiries on rows in doubt (what lost answers cost).
    pub doubt_inquiries: u64,
    /// The most requests in flight at once, and the requests presumed stalled (engine::flight).
    pub max_in_flight: u64,
    pub stalled: u64,
    pub elapsed: Duration,
    /// Ready rows not yet sent (approximate while the journal is being paged).
    pub ready_left: u64,
    /// HTTP requests made by this process so far (all calls).
    pub requests: u64,
    /// The permitted requests per second, when paced.
    pub rate: Option<u32>,
}

fn index(s: RowState) -> usize {
    RowState::ALL.iter().position(|x| *x == s).unwrap_or(0)
}

impl Snapshot {
    pub fn init(&mut self, counts: &[(RowState, u64)]) {
        self.states = [0; RowState::ALL.len()];
        for (s, n) in counts {
            self.states[index(*s)] += n;
        }
    }

    pub fn count_transition(&mut self, from: RowState, to: RowState) {
        let f = index(from);
        self.states[f] = self.states[f].saturating_sub(1);
        self.states[index(to)] += 1;
    }

    pub fn get(&self, s: RowState) -> u64 {
        self.states[index(s)]
    }

    /// Rows that are valid (every state but invalid).
    pub fn valid(&self) -> u64 {
        self.states.iter().sum::<u64>() - self.get(RowState::Invalid)
    }

    /// Rows that are final (paid, failed or cancelled).
    pub fn done(&self) -> u64 {
        self.get(RowState::Success) + self.get(RowState::Failed) + self.get(RowState::Cancelled)
    }

    /// Rows of the batch sent at least once (the gateway may have them).
    pub fn sent(&self) -> u64 {
        RowState::ALL.iter().filter(|s| s.was_sent()).map(|s| self.get(*s)).sum()
    }

    /// Postings that may have reached the gateway (started, less those it provably never got).
    pub fn postings_received(&self) -> u64 {
        self.sends_started.saturating_sub(self.not_sent)
    }

    /// The gateway calls still needed at the least: two per row not yet sent (posting and status),
    /// one per row sent and not final.
    pub fn calls_left(&self) -> u64 {
        let unsent = self.get(RowState::Ready);
        let open = [RowState::Sending, RowState::Accepted, RowState::InDoubt, RowState::Pending]
            .iter()
            .map(|s| self.get(*s))
            .sum::<u64>();
        2 * unsent + open
    }

    /// No row is waiting to be sent: what is left waits on the gateway and the banks (answers,
    /// inquiries, a resend after a grace period), not on the rate.
    pub fn all_sent(&self) -> bool {
        self.get(RowState::Ready) == 0
    }

    /// Rows sent (or being sent) and not final yet.
    fn open_sent(&self) -> u64 {
        [RowState::Sending, RowState::Accepted, RowState::Pending, RowState::InDoubt].iter().map(|s| self.get(*s)).sum()
    }

    /// The counts of the first line: sent, in flight, paid, failed (after the caller's `N/M final`).
    fn first_items(&self) -> Vec<String> {
        vec![
            format!("sent {}", self.sent()),
            format!("in flight {}", self.get(RowState::Sending)),
            format!("paid {}", self.get(RowState::Success)),
            format!("failed {}", self.get(RowState::Failed)),
        ]
    }

    /// The rest: pending, in doubt, the speed, and the ETA or what the run is waiting for.
    fn second_items(&self, speed: Option<f64>, tail: &Tail) -> Vec<String> {
        let mut items = vec![
            format!("pending {}", self.get(RowState::Pending) + self.get(RowState::Accepted)),
            format!("in doubt {}", self.get(RowState::InDoubt)),
        ];
        // Once everything is sent the speed is the polling's, which says nothing worth the room.
        let waiting = matches!(tail, Tail::Waiting { .. });
        match (speed, self.rate) {
            (Some(s), Some(r)) if !waiting => items.push(format!("{s:.1} req/s of {r}")),
            (Some(s), None) if !waiting => items.push(format!("{s:.1} req/s")),
            _ => {}
        }
        match tail {
            Tail::Eta(e) => items.push(format!("ETA {}", short_duration(*e))),
            Tail::Waiting { gives_up } => {
                items.push("all sent, waiting for final statuses".to_string());
                if let Some(g) = gives_up {
                    items.push(g.clone());
                }
            }
            Tail::Nothing => {}
        }
        items
    }
}

/// What ends the progress display: an ETA while there is sending to do, what the run waits for
/// once everything is sent, or nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Tail {
    Eta(Duration),
    Waiting { gives_up: Option<String> },
    Nothing,
}

/// When the run stops waiting for pending payouts (SPEC 1: `--poll-timeout` after everything was
/// sent), as the display says it: `gives up at 05:52 IST (--poll-timeout 10m)`.
#[derive(Debug, Default)]
struct Deadline {
    poll_timeout: Option<Duration>,
    /// When the run gives up, taken when this display first saw every row sent and no posting
    /// waiting for its answer (the engine starts its `--poll-timeout` clock then).
    gives_up: Option<String>,
}

impl Deadline {
    fn tail(&mut self, s: &Snapshot, eta: Option<Duration>) -> Tail {
        if !s.all_sent() {
            return eta.map_or(Tail::Nothing, Tail::Eta);
        }
        if s.open_sent() == 0 {
            return Tail::Nothing;
        }
        // The engine starts its clock once no posting waits for its answer.
        if let (None, 0, Some(t)) = (&self.gives_up, s.get(RowState::Sending), self.poll_timeout) {
            // A timeout past the calendar's end (a flag's typo) gives no time, and no overflow.
            let at = chrono::Duration::from_std(t).ok().and_then(|d| chrono::Utc::now().checked_add_signed(d));
            self.gives_up = Some(match at {
                Some(at) => format!(
                    "gives up at {} (--poll-timeout {})",
                    crate::report::local_clock(at),
                    humantime::format_duration(t)
                ),
                None => format!("--poll-timeout {}", humantime::format_duration(t)),
            });
        }
        // An ETA from calls left means nothing now: what is left waits on the banks.
        Tail::Waiting { gives_up: self.gives_up.clone() }
    }
}

/// The display's lines: `head` and the first items on one line, the rest after them when all fits
/// in `width`, else on lines of their own after `rest` (a line breaks only between items).
fn lay_out(head: &str, first: &[String], second: &[String], width: usize, rest: &str) -> Vec<String> {
    const SEP: &str = " · ";
    let mut all: Vec<&str> = vec![head];
    all.extend(first.iter().map(String::as_str));
    let one = all.iter().copied().chain(second.iter().map(String::as_str)).collect::<Vec<_>>().join(SEP);
    if crate::out::cols(&one) <= width {
        return vec![one];
    }
    let first_line = all.join(SEP);
    if crate::out::cols(&first_line) > width {
        // Not even the first counts fit on a line: all of them, line after line.
        all.extend(second.iter().map(String::as_str));
        return crate::out::wrap_units(&all, SEP, "", width, "", rest);
    }
    let second: Vec<&str> = second.iter().map(String::as_str).collect();
    let mut lines = vec![first_line];
    if !second.is_empty() {
        lines.extend(crate::out::wrap_units(&second, SEP, "", width, rest, rest));
    }
    lines
}

/// `1h02m`, `3m05s`, `42s`.
pub fn short_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// Requests per second over the last `WINDOW`, and the ETA from it.
#[derive(Debug, Default)]
pub struct Estimator {
    samples: VecDeque<(Duration, u64)>,
}

impl Estimator {
    const WINDOW: Duration = Duration::from_secs(10);

    /// Takes a snapshot; returns (requests per second lately, the time still needed).
    pub fn observe(&mut self, s: &Snapshot) -> (Option<f64>, Option<Duration>) {
        self.samples.push_back((s.elapsed, s.requests));
        while self.samples.len() > 2 && self.samples.front().is_some_and(|(t, _)| s.elapsed - *t > Self::WINDOW) {
            self.samples.pop_front();
        }
        let speed = match (self.samples.front(), self.samples.back()) {
            (Some((t0, n0)), Some((t1, n1))) if *t1 > *t0 + Duration::from_millis(900) => {
                Some((n1 - n0) as f64 / (*t1 - *t0).as_secs_f64())
            }
            _ => None,
        };
        let left = s.calls_left();
        if left == 0 {
            return (speed, None);
        }
        // The permitted rate bounds the speed; what was achieved lately (when measured) corrects
        // it downwards: latency, a busy gateway, pending payouts.
        let permitted = s.rate.map(f64::from);
        let effective = match (speed, permitted) {
            (Some(v), Some(r)) => v.min(r),
            (Some(v), None) => v,
            (None, Some(r)) => r,
            (None, None) => return (speed, None),
        };
        let eta = (effective > 0.05).then(|| Duration::from_secs_f64(left as f64 / effective));
        (speed, eta.map(|e| e.max(Duration::from_secs(1))))
    }
}

/// Where progress goes.
pub trait Progress {
    fn update(&mut self, s: &Snapshot);
    fn finish(&mut self);
}

/// Shows nothing (tests, `--json`).
pub struct Silent;

impl Progress for Silent {
    fn update(&mut self, _: &Snapshot) {}
    fn finish(&mut self) {}
}

/// A bar on a terminal: final rows out of valid rows, with the counts, speed and ETA, on one line
/// when the terminal is wide enough, else on two (the bar shrinks before a count is cut).
pub struct Bar {
    bar: Option<ProgressBar>,
    estimator: Estimator,
    deadline: Deadline,
    frame: usize,
}

/// A plain line on stderr every `every` (when stderr is not a terminal), in 80 columns: a second
/// line, indented, when the counts do not fit on one.
pub struct Lines {
    every: Duration,
    last: Option<Instant>,
    estimator: Estimator,
    deadline: Deadline,
}

/// The right progress display for stderr: a bar on a terminal, lines otherwise (every 5 s, or
/// `PAYRUN_PROGRESS_EVERY`, e.g. `1s`). `poll_timeout` is the run's, for the time it gives up
/// waiting on pending payouts.
pub fn for_stderr(quiet: bool, poll_timeout: Option<Duration>) -> Box<dyn Progress> {
    let deadline = Deadline { poll_timeout, gives_up: None };
    if quiet {
        Box::new(Silent)
    } else if std::io::stderr().is_terminal() {
        Box::new(Bar { bar: None, estimator: Estimator::default(), deadline, frame: 0 })
    } else {
        let every = std::env::var("PAYRUN_PROGRESS_EVERY")
            .ok()
            .and_then(|v| humantime::parse_duration(&v).ok())
            .unwrap_or(Duration::from_secs(5));
        Box::new(Lines { every, last: None, estimator: Estimator::default(), deadline })
    }
}

const SPINNER: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/// `00:01:05`.
fn clock(d: Duration) -> String {
    let s = d.as_secs();
    format!("{:02}:{:02}:{:02}", s / 3600, (s % 3600) / 60, s % 60)
}

/// A bar `len` columns wide, `done` of `total` filled.
fn bar_text(done: u64, total: u64, len: usize) -> String {
    let filled = if total == 0 { len } else { ((done.min(total) as u128 * len as u128) / total as u128) as usize };
    format!("{}{}", "█".repeat(filled), "░".repeat(len - filled))
}

impl Bar {
    /// The lines of one frame for a terminal `width` columns wide.
    fn frame(&mut self, s: &Snapshot, width: usize) -> Vec<String> {
        let (speed, eta) = self.estimator.observe(s);
        let tail = self.deadline.tail(s, eta);
        self.frame = (self.frame + 1) % SPINNER.len();
        let first = s.first_items();
        let second = s.second_items(speed, &tail);
        let count = format!("{}/{} final", s.done(), s.valid());
        let lead = format!("{} [{}]", SPINNER[self.frame], clock(s.elapsed));
        // The bar takes what the first line leaves, up to 20 columns; under 6 it is left out.
        let without: usize = crate::out::cols(&lead)
            + 1
            + crate::out::cols(&count)
            + first.iter().map(|i| 3 + crate::out::cols(i)).sum::<usize>();
        let one_line = without + 1 + second.iter().map(|i| 3 + crate::out::cols(i)).sum::<usize>();
        let room = if one_line + 20 <= width { 20 } else { width.saturating_sub(without + 1).min(20) };
        let head = if room >= 6 {
            format!("{lead} {} {count}", bar_text(s.done(), s.valid(), room))
        } else {
            format!("{lead} {count}")
        };
        lay_out(&head, &first, &second, width, "  ")
    }
}

impl Progress for Bar {
    fn update(&mut self, s: &Snapshot) {
        // One column short of the terminal: indicatif pads each line to the edge, and a line that
        // fills it leaves the next one to the terminal's wrapping.
        let width = crate::out::Stream::Stderr.width().saturating_sub(1);
        let lines = self.frame(s, width);
        let bar = self.bar.get_or_insert_with(|| {
            let b = ProgressBar::new(s.valid());
            // Every line is laid out here for the terminal's width (indicatif draws and clears).
            b.set_style(ProgressStyle::with_template("{msg}").unwrap_or_else(|_| ProgressStyle::default_bar()));
            b
        });
        bar.set_length(s.valid());
        bar.set_position(s.done());
        bar.set_message(lines.join("\n"));
    }

    fn finish(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}

impl Lines {
    /// The lines of one report, in `width` columns.
    fn report(&mut self, s: &Snapshot, speed: Option<f64>, eta: Option<Duration>, width: usize) -> Vec<String> {
        let tail = self.deadline.tail(s, eta);
        let head = format!("[{:>5.0}s] {}/{} final", s.elapsed.as_secs_f64(), s.done(), s.valid());
        lay_out(&head, &s.first_items(), &s.second_items(speed, &tail), width, "         ")
    }
}

impl Progress for Lines {
    fn update(&mut self, s: &Snapshot) {
        let (speed, eta) = self.estimator.observe(s);
        let now = Instant::now();
        if self.last.is_some_and(|l| now.duration_since(l) < self.every) {
            return;
        }
        self.last = Some(now);
        let lines = self.report(s, speed, eta, crate::out::WIDTH);
        crate::errln!("{}", lines.join("\n"));
    }

    fn finish(&mut self) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    fn snap(ready: u64, pending: u64, done: u64, elapsed: u64, requests: u64, rate: u32) -> Snapshot {
        let mut s =
            Snapshot { rate: Some(rate), requests, elapsed: Duration::from_secs(elapsed), ..Snapshot::default() };
        s.init(&[(RowState::Ready, ready), (RowState::Pending, pending), (RowState::Success, done)]);
        s
    }

    #[test]
    fn the_eta_counts_calls_at_the_rate() {
        let mut e = Estimator::default();
        // Nothing measured yet: 100 rows to send = 200 calls at 10/s.
        let (_, eta) = e.observe(&snap(100, 0, 0, 0, 0, 10));
        assert_eq!(eta, Some(Duration::from_secs(20)));
        // Measured 5/s lately (a slow gateway): the ETA follows what is achieved.
        let (speed, eta) = e.observe(&snap(90, 0, 5, 4, 20, 10));
        assert_eq!(speed, Some(5.0));
        assert_eq!(eta, Some(Duration::from_secs(36)));
        // Never faster than the permitted rate, whatever a burst showed.
        let mut e = Estimator::default();
        e.observe(&snap(50, 0, 0, 0, 0, 10));
        let (_, eta) = e.observe(&snap(50, 0, 0, 1, 100, 10));
        assert_eq!(eta, Some(Duration::from_secs(10)));
        // Pending rows still need their inquiries: never "0s" while rows are open.
        let (_, eta) = Estimator::default().observe(&snap(0, 13, 100, 9, 90, 10));
        assert!(eta.is_some_and(|e| e >= Duration::from_secs(1)), "{eta:?}");
    }

    fn big(ready: u64, sending: u64, pending: u64, done: u64) -> Snapshot {
        with_doubt(ready, sending, pending, done, 3)
    }

    fn with_doubt(ready: u64, sending: u64, pending: u64, done: u64, doubt: u64) -> Snapshot {
        let mut s = Snapshot {
            rate: Some(10),
            requests: 50_000,
            elapsed: Duration::from_secs(3725),
            sends_started: 9_000,
            ..Snapshot::default()
        };
        s.init(&[
            (RowState::Ready, ready),
            (RowState::Sending, sending),
            (RowState::Pending, pending),
            (RowState::Success, done),
            (RowState::Failed, 120),
            (RowState::InDoubt, doubt),
        ]);
        s
    }

    #[test]
    fn the_display_fits_the_width_one_line_when_wide_two_when_narrow() {
        let s = big(100, 8, 90, 800);
        let mut bar = Bar { bar: None, estimator: Estimator::default(), deadline: Deadline::default(), frame: 0 };
        let narrow = bar.frame(&s, 79);
        assert_eq!(narrow.len(), 2, "{narrow:?}");
        assert!(narrow.iter().all(|l| crate::out::cols(l) <= 79), "{narrow:?}");
        for word in ["920/1121 final", "sent 1021", "in flight 8", "paid 800", "failed 120"] {
            assert!(narrow[0].contains(word), "{word}: {narrow:?}");
        }
        for word in ["pending 90", "in doubt 3", "ETA "] {
            assert!(narrow[1].contains(word), "{word}: {narrow:?}");
        }
        let small = bar.frame(&snap(5, 3, 13, 4, 30, 10), 79);
        assert!(small[0].contains("░ 13/21 final"), "a bar where it fits: {small:?}");
        let wide = bar.frame(&s, 200);
        assert_eq!(wide.len(), 1, "{wide:?}");
        assert!(wide[0].contains("failed 120 · pending 90"), "{wide:?}");
        // A big batch, or a terminal narrower than the counts: never a cut count, only more lines.
        let huge = big(1_000, 8, 900, 98_000);
        assert_eq!(bar.frame(&huge, 79).len(), 2, "{:?}", bar.frame(&huge, 79));
        for w in [40, 60, 79] {
            for l in bar.frame(&huge, w) {
                assert!(crate::out::cols(&l) <= w, "{w}: {l:?}");
            }
        }
        let mut lines =
            Lines { every: Duration::ZERO, last: None, estimator: Estimator::default(), deadline: Deadline::default() };
        let plain = lines.report(&s, Some(9.9), Some(Duration::from_secs(500)), 80);
        assert_eq!(plain.len(), 2, "{plain:?}");
        assert!(plain.iter().all(|l| crate::out::cols(l) <= 80), "{plain:?}");
        assert!(plain[1].starts_with("         pending 90"), "{plain:?}");
    }

    #[test]
    fn once_everything_is_sent_it_says_what_it_waits_for_not_an_eta() {
        let mut d = Deadline { poll_timeout: Some(Duration::from_secs(600)), gives_up: None };
        let sending = big(5, 0, 1, 10);
        assert_eq!(d.tail(&sending, Some(Duration::from_secs(3))), Tail::Eta(Duration::from_secs(3)));
        let answering = big(0, 2, 1, 10);
        assert_eq!(d.tail(&answering, Some(Duration::from_secs(3))), Tail::Waiting { gives_up: None });
        let waiting = big(0, 0, 1, 10);
        let Tail::Waiting { gives_up: Some(text) } = d.tail(&waiting, Some(Duration::from_secs(3))) else {
            panic!("no deadline")
        };
        assert!(text.starts_with("gives up at ") && text.ends_with(" (--poll-timeout 10m)"), "{text}");
        let items = waiting.second_items(Some(0.4), &d.tail(&waiting, None));
        assert!(items.iter().all(|i| !i.starts_with("ETA") && !i.contains("req/s")), "{items:?}");
        assert!(items.contains(&"all sent, waiting for final statuses".to_string()), "{items:?}");
        let mut forever = Deadline { poll_timeout: Some(Duration::MAX), gives_up: None };
        assert!(matches!(forever.tail(&waiting, None), Tail::Waiting { gives_up: Some(_) }), "no overflow");
        // The deadline is taken once, when everything was first seen sent.
        assert_eq!(d.tail(&waiting, None), Tail::Waiting { gives_up: Some(text) });
        // Nothing left open: nothing to wait for.
        assert_eq!(d.tail(&with_doubt(0, 0, 0, 10, 0), None), Tail::Nothing);
    }

    #[test]
    fn short_durations() {
        assert_eq!(short_duration(Duration::from_secs(42)), "42s");
        assert_eq!(short_duration(Duration::from_secs(185)), "3m05s");
        assert_eq!(short_duration(Duration::from_secs(3720)), "1h02m");
    }
}
