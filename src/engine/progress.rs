//! Progress of a run: counters the engine keeps, and how they are shown (an indicatif bar on a
//! terminal, a plain line every few seconds otherwise, or nothing).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::journal::RowState;

/// Counters of one run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Rows per lifecycle state, indexed like [`RowState::ALL`].
    pub states: [u64; RowState::ALL.len()],
    /// Payout postings started (first sends and resends).
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

    pub fn done(&self) -> u64 {
        self.get(RowState::Success) + self.get(RowState::Failed)
    }

    /// Postings that may have reached the gateway (started, less those it provably never got).
    pub fn postings_received(&self) -> u64 {
        self.sends_started.saturating_sub(self.not_sent)
    }

    fn line(&self) -> String {
        let secs = self.elapsed.as_secs_f64().max(0.001);
        format!(
            "sent {} · in flight {} · paid {} · failed {} · pending {} · in doubt {} · {:.1} payouts/s",
            self.sends_started,
            self.get(RowState::Sending),
            self.get(RowState::Success),
            self.get(RowState::Failed),
            self.get(RowState::Pending) + self.get(RowState::Accepted),
            self.get(RowState::InDoubt),
            self.sends_started as f64 / secs
        )
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

/// A bar on a terminal: settled rows out of valid rows, with rate and ETA.
pub struct Bar {
    bar: Option<ProgressBar>,
}

/// A plain line on stderr every `every` (when stderr is not a terminal).
pub struct Lines {
    every: Duration,
    last: Option<Instant>,
}

/// The right progress display for stderr: a bar on a terminal, lines otherwise.
pub fn for_stderr(quiet: bool) -> Box<dyn Progress> {
    if quiet {
        Box::new(Silent)
    } else if std::io::stderr().is_terminal() {
        Box::new(Bar { bar: None })
    } else {
        Box::new(Lines { every: Duration::from_secs(5), last: None })
    }
}

impl Progress for Bar {
    fn update(&mut self, s: &Snapshot) {
        let bar = self.bar.get_or_insert_with(|| {
            let b = ProgressBar::new(s.valid());
            b.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} final · {msg} · ETA {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            b
        });
        bar.set_length(s.valid());
        bar.set_position(s.done());
        bar.set_message(s.line());
    }

    fn finish(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}

impl Progress for Lines {
    fn update(&mut self, s: &Snapshot) {
        let now = Instant::now();
        if self.last.is_some_and(|l| now.duration_since(l) < self.every) {
            return;
        }
        self.last = Some(now);
        eprintln!("[{:>5.0}s] {}/{} final · {}", s.elapsed.as_secs_f64(), s.done(), s.valid(), s.line());
    }

    fn finish(&mut self) {}
}
