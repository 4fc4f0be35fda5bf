//! Requests in flight: which of them count against the concurrency limit, how high that limit is,
//! and how many requests may be out at once. Pure bookkeeping: the dispatcher asks it whether a job
//! may start, tells it when one starts and ends, and the jobs mark the moment their request leaves.
//!
//! It owns the jobs' count and the latency estimate, nothing else: it never delays, sends or cancels
//! a request (the rate limiter paces, the dispatcher sends, a request ends only on its answer or the
//! client's timeout), and it never looks at a row.
//!
//! **Why a stalled request leaves the count.** Against a gateway where a few percent of requests
//! hang until the client's 30 s timeout, a fixed limit spends its slots on them: the batch moved at
//! about 6% of its rate with 8 slots (issue 12). The requests in flight needed are rate × mean
//! latency (Little's law); with 4% of requests taking 30 s that is about 250 at 200/s, and no fixed
//! limit fits both a 10/s merchant and a 500/s one. So a request that has *stalled* (it left more
//! than [`Flights::stall_after`] ago, a multiple of the latency observed, and the gateway has since
//! answered as many other requests as the limit allows at once) stops counting: another request may
//! start. It is still awaited and its answer still used; its row stays `sending` (then `in_doubt`),
//! so nothing else is sent for that row. What bounds it:
//!
//! - the rate: every request still waits on the client's one rate limiter;
//! - a hard cap on everything in flight ([`FlightConfig::max_in_flight`]), so connections stay
//!   bounded;
//! - a dark gateway: a request stalls only once the gateway has answered others since it left, so a
//!   gateway that stops answering altogether stops receiving requests once the limit's worth are
//!   waiting, instead of being fed a cap's worth of rows that would all end in doubt.
//!
//! The alternatives, and the measurements that decided between them, are in the engine's module
//! doc: a shorter payout timeout turns every slow answer into a row in doubt, an AIMD limit shrinks
//! on timeouts.
//!
//! **Why the limit is derived from the rate.** Unless the operator sets it, the limit is the
//! requests needed to keep the rate busy: rate × the 90th percentile of the observed latency, twice
//! over, plus a few. A larger limit buys nothing (requests wait on the rate limiter, where the
//! dispatcher's order, due inquiries first, is lost); a smaller one leaves the rate idle.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tokio::task::Id;

/// A request is presumed stalled no sooner than this after it left, however fast the gateway.
const STALL_FLOOR: Duration = Duration::from_millis(250);
/// ... and after this many times the 90th percentile of the observed latency.
const STALL_FACTOR: u32 = 4;
/// The latency assumed before any answer came back.
const FIRST_GUESS: Duration = Duration::from_millis(100);
/// Answered latencies kept (the most recent).
const WINDOW: usize = 256;
/// The derived concurrency limit is never below this (and the headroom added to rate × latency).
const MIN_LIMIT: usize = 4;
/// The derived cap on everything in flight is two seconds of the rate, at least this many...
const MIN_CAP: usize = 64;
/// ... and at most this many (sockets: well inside the usual 1,024 open files).
const MAX_CAP: usize = 512;

/// How the engine admits requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlightConfig {
    /// Requests counted in flight at most: the operator's `--concurrency`, else derived.
    pub concurrency: Option<usize>,
    /// Requests per second the client is paced at.
    pub rate: u32,
    /// Everything in flight at most, stalled requests included; else derived from the rate.
    pub max_in_flight: Option<usize>,
    /// The client's whole-request timeout: no request is presumed stalled later than this.
    pub request_timeout: Duration,
}

impl FlightConfig {
    /// The cap on everything in flight: as configured, else two seconds' worth of the rate (enough
    /// for 6% of requests hanging for a whole 30 s timeout) within 64..=512; never below a fixed
    /// concurrency.
    pub fn cap(&self) -> usize {
        let derived = (self.rate as usize).saturating_mul(2).clamp(MIN_CAP, MAX_CAP);
        self.max_in_flight.unwrap_or(derived).max(self.concurrency.unwrap_or(1)).max(1)
    }
}

/// Counters the dispatcher and its jobs share.
#[derive(Debug, Default)]
struct Shared {
    /// Requests answered so far.
    answers: AtomicU64,
    /// Jobs started that have not yet left (waiting for their rate-limiter turn, or the intent).
    waiting: AtomicUsize,
}

/// Set by a job the moment its request leaves (after its rate-limiter turn and, for a payout, its
/// durable intent): when, and how many answers had come back by then.
#[derive(Debug)]
pub(crate) struct Departure {
    left: OnceLock<(Instant, u64)>,
    shared: Arc<Shared>,
}

impl Departure {
    /// Marks the request as gone (a second call changes nothing).
    pub fn leave(&self) {
        self.leave_at(Instant::now());
    }

    fn leave_at(&self, at: Instant) {
        if self.left.set((at, self.shared.answers.load(Ordering::Relaxed))).is_ok() {
            self.shared.waiting.fetch_sub(1, Ordering::Relaxed);
        }
    }

    fn left(&self) -> Option<(Instant, u64)> {
        self.left.get().copied()
    }
}

struct Flight {
    started: Instant,
    departure: Arc<Departure>,
    stalled: bool,
}

/// The latencies of the most recent answers, and their 90th percentile.
struct Latencies {
    recent: VecDeque<Duration>,
    since_sorted: usize,
    p90: Option<Duration>,
}

impl Latencies {
    fn record(&mut self, d: Duration) {
        if self.recent.len() == WINDOW {
            self.recent.pop_front();
        }
        self.recent.push_back(d);
        self.since_sorted += 1;
        // Re-sorting a copy of 256 durations every 16 answers costs microseconds.
        if self.p90.is_none() && self.recent.len() >= 8 || self.since_sorted >= 16 {
            let mut v: Vec<Duration> = self.recent.iter().copied().collect();
            v.sort_unstable();
            self.p90 = v.get(v.len() * 9 / 10).copied();
            self.since_sorted = 0;
        }
    }
}

/// The jobs in flight (see the module doc).
pub(crate) struct Flights {
    cfg: FlightConfig,
    cap: usize,
    jobs: HashMap<Id, Flight>,
    counted: usize,
    shared: Arc<Shared>,
    latencies: Latencies,
    /// No counted request can stall before this (a lower bound; see [`Flights::release_stalled`]).
    next_check: Option<Instant>,
    /// A request old enough to stall waits only for answers: look again at the next one.
    waits_for_answers: bool,
    /// The most jobs in flight at once (counted and stalled), and the requests presumed stalled.
    pub max_in_flight: usize,
    pub stalled_total: u64,
}

impl Flights {
    pub fn new(cfg: FlightConfig) -> Flights {
        Flights {
            cap: cfg.cap(),
            cfg,
            jobs: HashMap::new(),
            counted: 0,
            shared: Arc::new(Shared::default()),
            latencies: Latencies { recent: VecDeque::with_capacity(WINDOW), since_sorted: 0, p90: None },
            next_check: None,
            waits_for_answers: false,
            max_in_flight: 0,
            stalled_total: 0,
        }
    }

    /// The 90th percentile of the latency of recent answers (a first guess before any).
    pub fn typical_latency(&self) -> Duration {
        self.latencies.p90.unwrap_or(FIRST_GUESS)
    }

    /// Requests counted in flight at most: the operator's, else rate × typical latency × 2 + 4.
    pub fn limit(&self) -> usize {
        match self.cfg.concurrency {
            Some(n) => n.max(1),
            None => {
                let need = f64::from(self.cfg.rate) * self.typical_latency().as_secs_f64() * 2.0;
                (need.ceil() as usize).saturating_add(MIN_LIMIT).clamp(MIN_LIMIT, self.cap)
            }
        }
    }

    /// How long after it left a request may be presumed stalled: a multiple of the typical
    /// latency, within [250 ms, the request timeout].
    pub fn stall_after(&self) -> Duration {
        (self.typical_latency() * STALL_FACTOR).max(STALL_FLOOR).min(self.cfg.request_timeout.max(STALL_FLOOR))
    }

    /// Whether another job may start now.
    pub fn has_room(&self) -> bool {
        self.counted < self.limit() && self.jobs.len() < self.cap
    }

    /// Jobs in flight (counted and stalled).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.jobs.len()
    }

    /// Jobs counted against the limit.
    #[cfg(test)]
    pub fn counted(&self) -> usize {
        self.counted
    }

    /// Jobs that have not left yet: none means the rate limiter has no one queued, and a request
    /// started now would leave at once (if the rate allows).
    pub fn waiting(&self) -> usize {
        self.shared.waiting.load(Ordering::Relaxed)
    }

    /// A departure for a job about to start (and counted as waiting until it leaves): the job calls
    /// [`Departure::leave`] when its request leaves.
    pub fn departure(&self) -> Arc<Departure> {
        self.shared.waiting.fetch_add(1, Ordering::Relaxed);
        Arc::new(Departure { left: OnceLock::new(), shared: self.shared.clone() })
    }

    /// A job started (with the departure it was given).
    pub fn started(&mut self, id: Id, departure: Arc<Departure>, now: Instant) {
        self.jobs.insert(id, Flight { started: now, departure, stalled: false });
        self.counted += 1;
        self.max_in_flight = self.max_in_flight.max(self.jobs.len());
        let earliest = now + self.stall_after();
        self.next_check = Some(self.next_check.map_or(earliest, |t| t.min(earliest)));
    }

    /// A job ended. `answered`: its last request got an HTTP answer (its latency is then observed,
    /// and it counts as the gateway answering).
    pub fn finished(&mut self, id: Id, now: Instant, answered: bool) {
        let Some(f) = self.jobs.remove(&id) else { return };
        if !f.stalled {
            self.counted = self.counted.saturating_sub(1);
        }
        if f.departure.left().is_none() {
            // Ended before it left (stopped while waiting for its turn): no longer waiting. The
            // job is over, so it cannot leave concurrently.
            self.shared.waiting.fetch_sub(1, Ordering::Relaxed);
        }
        if answered {
            self.shared.answers.fetch_add(1, Ordering::Relaxed);
            if self.waits_for_answers {
                self.next_check = None;
            }
            if let Some((at, _)) = f.departure.left() {
                self.latencies.record(now.saturating_duration_since(at));
            }
        }
    }

    /// Presumes stalled, and stops counting, every request that left more than
    /// [`Flights::stall_after`] ago and has since been overtaken by at least [`Flights::limit`]
    /// answers. Returns when to look again (none: nothing counted can stall before a job ends).
    pub fn release_stalled(&mut self, now: Instant) -> Option<Instant> {
        if self.next_check.is_some_and(|t| t > now) {
            return self.next_check;
        }
        let (after, overtaken) = (self.stall_after(), self.limit() as u64);
        let answers = self.shared.answers.load(Ordering::Relaxed);
        let mut next: Option<Instant> = None;
        let mut soonest = |t: Instant| next = Some(next.map_or(t, |n: Instant| n.min(t)));
        self.waits_for_answers = false;
        for f in self.jobs.values_mut().filter(|f| !f.stalled) {
            match f.departure.left() {
                // Still waiting for its turn: it cannot stall before it has left.
                None => soonest(now.max(f.started) + after),
                Some((at, _)) if now < at + after => soonest(at + after),
                Some((_, before)) if answers.saturating_sub(before) >= overtaken => {
                    f.stalled = true;
                    self.counted = self.counted.saturating_sub(1);
                    self.stalled_total += 1;
                }
                // Old enough, but the gateway has not answered others since: only an answer can
                // change that (and an answer wakes the dispatcher).
                Some(_) => self.waits_for_answers = true,
            }
        }
        self.next_check = next;
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id_of(rt: &tokio::runtime::Runtime, set: &mut tokio::task::JoinSet<()>) -> Id {
        let _guard = rt.enter();
        set.spawn(std::future::pending()).id()
    }

    fn flights(concurrency: Option<usize>, rate: u32, cap: Option<usize>) -> Flights {
        Flights::new(FlightConfig { concurrency, rate, max_in_flight: cap, request_timeout: Duration::from_secs(30) })
    }

    struct Harness {
        rt: tokio::runtime::Runtime,
        set: tokio::task::JoinSet<()>,
    }

    impl Harness {
        fn new() -> Harness {
            let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
            Harness { rt, set: tokio::task::JoinSet::new() }
        }

        /// Starts a job whose request leaves at once.
        fn start(&mut self, f: &mut Flights, now: Instant) -> Id {
            let id = id_of(&self.rt, &mut self.set);
            let d = f.departure();
            d.leave_at(now);
            f.started(id, d, now);
            id
        }
    }

    #[test]
    fn a_fixed_limit_is_kept_while_nothing_stalls() {
        let mut h = Harness::new();
        let mut f = flights(Some(3), 200, None);
        let now = Instant::now();
        for _ in 0..3 {
            assert!(f.has_room());
            h.start(&mut f, now);
        }
        assert!(!f.has_room());
        assert_eq!(f.release_stalled(now), Some(now + f.stall_after()));
        assert!(!f.has_room(), "young requests keep their slots");
    }

    #[test]
    fn a_request_overtaken_by_answers_stops_counting_and_is_still_tracked() {
        let mut h = Harness::new();
        let mut f = flights(Some(2), 200, None);
        let t0 = Instant::now();
        let hung = h.start(&mut f, t0);
        // The other slot serves requests the gateway answers.
        for _ in 0..2 {
            let ok = h.start(&mut f, t0);
            f.finished(ok, t0 + Duration::from_millis(40), true);
        }
        assert_eq!(f.counted(), 1);
        let later = t0 + f.stall_after() + Duration::from_millis(1);
        f.release_stalled(later);
        assert_eq!(f.counted(), 0, "the hung request no longer counts");
        assert_eq!(f.len(), 1, "but it is still in flight");
        assert_eq!(f.stalled_total, 1);
        assert!(f.has_room());
        // Its late answer (or timeout) ends it without freeing a slot twice.
        f.finished(hung, later, false);
        assert_eq!((f.counted(), f.len()), (0, 0));
    }

    #[test]
    fn nothing_stalls_while_the_gateway_answers_nothing() {
        let mut h = Harness::new();
        let mut f = flights(Some(4), 200, None);
        let t0 = Instant::now();
        for _ in 0..4 {
            h.start(&mut f, t0);
        }
        let much_later = t0 + Duration::from_secs(20);
        assert_eq!(f.release_stalled(much_later), None);
        assert_eq!(f.counted(), 4, "a dark gateway is not fed more requests");
        assert!(!f.has_room());
    }

    #[test]
    fn a_request_waiting_for_its_turn_never_stalls() {
        let mut h = Harness::new();
        let mut f = flights(Some(1), 200, None);
        let t0 = Instant::now();
        let id = id_of(&h.rt, &mut h.set);
        let d = f.departure();
        f.started(id, d.clone(), t0);
        assert_eq!(f.waiting(), 1);
        f.shared.answers.fetch_add(100, Ordering::Relaxed);
        f.release_stalled(t0 + Duration::from_secs(10));
        assert_eq!(f.counted(), 1);
        // Stopped before its turn came: it never left, and no longer waits.
        f.finished(id, t0 + Duration::from_secs(11), false);
        assert_eq!((f.waiting(), f.counted(), f.len()), (0, 0, 0));
        // A job that left is no longer waiting, and leaving twice changes nothing.
        let id = id_of(&h.rt, &mut h.set);
        let d = f.departure();
        f.started(id, d.clone(), t0);
        d.leave_at(t0);
        d.leave_at(t0);
        assert_eq!(f.waiting(), 0);
        f.finished(id, t0 + Duration::from_millis(30), true);
        assert_eq!(f.waiting(), 0);
    }

    #[test]
    fn the_cap_bounds_everything_in_flight() {
        let mut h = Harness::new();
        let mut f = flights(Some(2), 10, Some(3));
        let t0 = Instant::now();
        let mut n = 0;
        while f.has_room() {
            h.start(&mut f, t0);
            n += 1;
            f.shared.answers.fetch_add(10, Ordering::Relaxed);
            f.release_stalled(t0 + Duration::from_secs(29));
            assert!(n <= 3);
        }
        assert_eq!(f.len(), 3);
        assert_eq!(f.max_in_flight, 3);
    }

    #[test]
    fn the_derived_limit_follows_rate_and_latency() {
        let mut f = flights(None, 10, None);
        assert_eq!(f.limit(), 6, "10/s at the first guess of 100 ms: 2 + 4");
        for _ in 0..64 {
            f.latencies.record(Duration::from_millis(50));
        }
        assert_eq!(f.limit(), 5);
        let mut f = flights(None, 500, None);
        for _ in 0..64 {
            f.latencies.record(Duration::from_millis(50));
        }
        assert_eq!(f.limit(), 54, "500/s at 50 ms: 50 + 4");
        assert_eq!(f.stall_after(), Duration::from_millis(250), "the floor");
        for _ in 0..256 {
            f.latencies.record(Duration::from_secs(2));
        }
        assert_eq!(f.limit(), 512, "never above the cap");
        assert_eq!(f.stall_after(), Duration::from_secs(8));
    }

    #[test]
    fn the_cap_is_derived_from_the_rate_and_never_below_a_fixed_limit() {
        let cfg = |rate, concurrency, max| FlightConfig {
            concurrency,
            rate,
            max_in_flight: max,
            request_timeout: Duration::from_secs(30),
        };
        assert_eq!(cfg(10, None, None).cap(), 64);
        assert_eq!(cfg(200, None, None).cap(), 400);
        assert_eq!(cfg(5000, None, None).cap(), 512);
        assert_eq!(cfg(200, Some(1000), None).cap(), 1000);
        assert_eq!(cfg(200, Some(8), Some(8)).cap(), 8);
    }
}
