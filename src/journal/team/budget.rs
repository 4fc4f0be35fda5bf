//! One rate budget per merchant (SPEC 8.1): every process sending with the same gateway
//! credentials shares one `--rate`, kept in the database, so two operators each running at
//! `--rate 10` for one merchant send at most 10 requests per second together, as the gateway counts
//! them over any one-second window (plus `--burst`).
//!
//! **A pacing schedule in the database, on the database's clock.** Table `rate_budget` holds, per
//! merchant, `next_at`: the theoretical arrival time of the next request (GCRA, the algorithm of
//! the `governor` limiter the single-machine mode uses). A process that needs turns reserves a few
//! slots with one statement,
//!
//! ```sql
//! INSERT ... ON CONFLICT (merchant) DO UPDATE
//!   SET next_at = GREATEST(next_at, clock_timestamp() - tolerance) + k * interval
//!   RETURNING next_at, clock_timestamp()
//! ```
//!
//! whose row lock serializes reservations from every process and machine: the slots are
//! `next_at - k·interval, ..., next_at - interval`, one `interval` (1/rate and 1% of headroom,
//! rounded up to the microsecond) apart. It keeps them in a local queue and lets one request go per slot, at the
//! slot's time mapped from the database's clock to a local [`Instant`] with the `clock_timestamp()`
//! the same answer carried (local = when the answer arrived + (slot − database now)). So every
//! process paces on one clock, the database's, and no two machines' clocks need to agree. The
//! mapping errs late, never early (the answer's travel time makes the slot later, never sooner),
//! and is made again from every answer, so a step of either clock costs at most idle time.
//!
//! **The burst belongs to the merchant.** `tolerance` is `(burst − 1) · interval`: a schedule left
//! idle lets `burst` requests go at once, as governor's `allow_burst(burst)` does. A process that
//! joins while others send finds `next_at` ahead of the database's clock and queues behind it: it
//! brings no burst of its own.
//!
//! **Jitter, and the headroom for it.** The gateway counts arrivals, not slots: each request
//! reaches it some time after its slot (the process's wake-up, its connection, its network path),
//! and two requests a second apart on the schedule fall into one window when the first arrives
//! later than the second. On an exact `1/rate` grid that takes any jitter at all, so the slots are
//! [`HEADROOM_PERCENT`] (1%) longer: `rate` slots span 1.01 s. Over any one-second window the
//! schedule allows at most `rate + burst − 1` requests; reaching the SPEC's `rate + burst` takes
//! jitter of 1% of a second, and exceeding it jitter of 1% of a second plus one slot (20 ms at
//! `--rate 100`, 60 ms at `--rate 20`). What the schedule cannot see is a lasting difference in
//! the machines' network delays to the gateway: machines whose delays differ by more than that
//! may put a request more into a window. Measured (tests `team_budget`, bench P10): the busiest
//! window holds `rate + burst − 1` or `rate + burst`, for 1% of the rate given up.
//!
//! **A turn is used at once, or not at all.** The engine writes a payout's intent between its
//! turn and its request (SPEC rule 1), and in team mode that is a commit in PostgreSQL: usually a
//! few milliseconds, now and then tens or hundreds (measured: p99 20-30 ms, once enough to put
//! 120 requests into one window at `--rate 100`). The requests of a slow commit then leave
//! together, late, crowding the slots after theirs. So a turn is valid for
//! [`Pace::valid_for`] after its slot (1% of a second and half a slot: what the headroom
//! absorbs); the gateway client sends a request whose turn is older on a fresh turn instead
//! ([`SharedPace::valid_for`]), and the stale slot passes unused.
//!
//! **Reserve little, and only what is needed soon.** A process reserves only while requests wait
//! for a turn ([`SharedBudget::turn`]), at most [`CHUNK`] of the rate at a time, and only once the
//! last slot it holds is less than [`HORIZON`] (or two round trips to the database, if longer) away.
//! One reservation is in flight per process, made by one task. So a process holds at most about
//! 50 ms of the rate ahead: a slot it does not use (its requests were cancelled, the process died)
//! is lost to everyone, which costs throughput, never the rate. A process that dies leaves no
//! lasting slowdown: what it reserved passes within [`HORIZON`] + [`CHUNK`].
//!
//! **No database, no turn.** A reservation that fails on a lost connection (or gets no answer in
//! [`RESERVE_TIMEOUT`]) empties the local queue, and no request gets a turn until a new connection
//! has made a reservation: SPEC 8.1 has a process that loses the database stop sending at once.
//! The task connects again by itself, backing off up to a second.
//!
//! **Why not something else.** An advisory lock per request costs a round trip per request and
//! serializes the senders on the database; a token bucket refilled by a leader process needs a
//! leader and its failover; counting each process's share (`rate / n`) wastes the share of an idle
//! process and needs a membership protocol. The shared schedule needs none of that: a process
//! that stops reserving simply stops taking slots.
//!
//! **What a process may assume.** Each request costs the schedule one `interval` of its own
//! `--rate`: processes at different rates for one merchant together stay under the highest of
//! them, each alone under its own. The merchant is named in the database by a SHA-256 of the access
//! key and the client id ([`MerchantKey`]), never by the credentials themselves. Writes are made
//! with `synchronous_commit = off`: the row lock is held for microseconds, not an fsync, and what a
//! database crash could lose (the last fraction of a second of the schedule) lies in the past by
//! the time the database is back.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tokio::sync::Notify;
use tokio_postgres::{Client, Statement};

use crate::config::Credentials;
use crate::gateway::client::SharedPace;
use crate::journal::store::StoreError;
use crate::journal::store::pgurl::JournalUrl;
use crate::journal::store::postgres::connect_async;

/// How much of the rate one reservation takes at most.
pub const CHUNK: Duration = Duration::from_millis(20);

/// A process reserves more only once the last slot it holds is closer than this (or than two
/// round trips to the database, when those are longer).
pub const HORIZON: Duration = Duration::from_millis(30);

/// The horizon never grows past this, however slow the database answers.
const MAX_HORIZON: Duration = Duration::from_millis(500);

/// Slots per reservation at most, whatever the rate (a `--rate 1000000` "no limit" run).
const MAX_CHUNK: usize = 4096;

/// The schedule's slots are this much longer than `1/rate`, so `rate` slots span 1.01 s: a
/// request that reaches the gateway up to 1% of a second (plus one slot) later than the one a
/// second after it still leaves every window within `rate + burst` (see the module doc).
pub const HEADROOM_PERCENT: i64 = 1;

/// A reservation not answered within this is taken as a lost connection.
pub const RESERVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Waits between attempts to reach a database that is gone: from the first to the last, doubling.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(50), Duration::from_secs(1));

/// The reservation (see the module doc). `$1` merchant, `$2` tolerance and `$3` k·interval in
/// microseconds. Returns the new `next_at` and the database's clock, in microseconds since 1970.
const RESERVE: &str = "INSERT INTO rate_budget AS b (merchant, next_at)
     VALUES ($1, clock_timestamp() - CAST($2 AS BIGINT) * INTERVAL '1 microsecond'
                                   + CAST($3 AS BIGINT) * INTERVAL '1 microsecond')
     ON CONFLICT (merchant) DO UPDATE
     SET next_at = GREATEST(b.next_at, clock_timestamp() - CAST($2 AS BIGINT) * INTERVAL '1 microsecond')
                   + CAST($3 AS BIGINT) * INTERVAL '1 microsecond'
     RETURNING CAST(EXTRACT(EPOCH FROM b.next_at) * 1000000 AS BIGINT) AS next_us,
               CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000000 AS BIGINT) AS now_us";

/// Why a shared budget could not be had.
#[derive(Debug, thiserror::Error)]
pub enum BudgetError {
    #[error("the shared rate budget in the journal database: {0}")]
    Store(#[from] StoreError),
    #[error("the shared rate budget in the journal database answered nothing within {} s", RESERVE_TIMEOUT.as_secs())]
    Timeout,
}

/// The name of a merchant's budget in the database: SHA-256 (hex) of the access key and the client
/// id with a fixed prefix. Not reversible to the credentials (the access key alone is a random
/// UUID), and the same for every process holding the same credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct MerchantKey(String);

impl MerchantKey {
    /// The key of the merchant whose credentials these are.
    pub fn of(creds: &Credentials) -> MerchantKey {
        MerchantKey::from_parts(creds.access_key.expose(), &creds.client_id)
    }

    /// The key of (access key, client id); each part length-prefixed, so no two pairs share a key.
    pub fn from_parts(access_key: &str, client_id: &str) -> MerchantKey {
        let mut h = Sha256::new();
        h.update(b"payrun rate budget v1\n");
        for part in [access_key, client_id] {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part.as_bytes());
        }
        MerchantKey(hex::encode(h.finalize()))
    }

    /// The key as stored in `rate_budget.merchant` (64 hex digits).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for MerchantKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MerchantKey({}…)", &self.0[..12])
    }
}

/// The operator's `--rate` and `--burst`, as the schedule uses them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pace {
    /// Requests per second (at least 1).
    pub rate: u32,
    /// Requests an idle schedule lets go at once (at least 1).
    pub burst: u32,
}

impl Pace {
    pub fn new(rate: u32, burst: u32) -> Pace {
        Pace { rate: rate.max(1), burst: burst.max(1) }
    }

    /// One slot, in microseconds: 1/rate with [`HEADROOM_PERCENT`] more, rounded up.
    pub fn interval_us(&self) -> i64 {
        let second = 10_000 * (100 + HEADROOM_PERCENT);
        (second + i64::from(self.rate) - 1) / i64::from(self.rate)
    }

    /// How far behind the database's clock an idle schedule may start: `(burst − 1)` slots.
    pub fn tolerance_us(&self) -> i64 {
        i64::from(self.burst - 1) * self.interval_us()
    }

    /// Slots per reservation at most: [`CHUNK`] of the rate, at least one.
    pub fn chunk(&self) -> usize {
        ((u128::from(self.rate) * CHUNK.as_micros() / 1_000_000) as usize).clamp(1, MAX_CHUNK)
    }

    /// How long after its slot a request may still leave on it ([`SharedPace::valid_for`]): the
    /// headroom's 1% of a second and half a slot, so a request that leaves on a turn that late
    /// still leaves every window within `rate + burst`.
    pub fn valid_for(&self) -> Duration {
        Duration::from_micros((10_000 * HEADROOM_PERCENT + self.interval_us() / 2) as u64)
    }

    /// How late a slot may still be used: a quarter of a slot, within 1 to 10 ms. A later request
    /// would crowd the next slot, perhaps another process's (the jitter the window's one request
    /// of margin must absorb); the slot is dropped instead.
    fn grace(&self) -> Duration {
        Duration::from_micros((self.interval_us() / 4) as u64)
            .clamp(Duration::from_millis(1), Duration::from_millis(10))
    }
}

/// What a budget did, for tests and the benchmark.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BudgetStats {
    /// Reservations answered.
    pub reservations: u64,
    /// Slots reserved.
    pub reserved: u64,
    /// Slots a request took.
    pub taken: u64,
    /// Slots dropped unused: too late to use, or held when the database was lost.
    pub dropped: u64,
    /// Times the database was lost (a failed or unanswered reservation).
    pub lost: u64,
}

/// The slots a process holds and the requests waiting for one (see the module doc). Pure: times
/// come in as arguments, so it is tested without a clock or a database.
#[derive(Debug, Default)]
struct Queue {
    /// Reserved slots not taken yet, in time order.
    slots: VecDeque<Instant>,
    /// Requests waiting for a slot.
    waiting: usize,
    /// The latest slot this process reserved (taken or not): how far ahead it holds the schedule.
    last: Option<Instant>,
    stats: BudgetStats,
}

/// What the reserving task does next.
#[derive(Debug, PartialEq, Eq)]
enum Plan {
    /// Nobody waits: sleep until someone does.
    Idle,
    /// Requests wait, but the slots held reach far enough: look again then.
    Until(Instant),
    /// Reserve this many slots.
    Reserve(usize),
}

impl Queue {
    /// Drops slots too late to use (see [`Pace::grace`]).
    fn prune(&mut self, now: Instant, grace: Duration) {
        while self.slots.front().is_some_and(|&at| at + grace < now) {
            self.slots.pop_front();
            self.stats.dropped += 1;
        }
    }

    /// The next slot for a waiting request, if any.
    fn take(&mut self, now: Instant, grace: Duration) -> Option<Instant> {
        self.prune(now, grace);
        let at = self.slots.pop_front()?;
        self.waiting = self.waiting.saturating_sub(1);
        self.stats.taken += 1;
        Some(at)
    }

    fn plan(&mut self, now: Instant, grace: Duration, horizon: Duration, chunk: usize) -> Plan {
        self.prune(now, grace);
        let unserved = self.waiting.saturating_sub(self.slots.len());
        if unserved == 0 {
            return Plan::Idle;
        }
        match self.last {
            Some(last) if last > now + horizon => Plan::Until(last - horizon),
            _ => Plan::Reserve(unserved.min(chunk)),
        }
    }

    /// Adds reserved slots: `first_us` is the first one and `now_us` the database's clock, as the
    /// answer that arrived at `got` gave them.
    fn add(&mut self, got: Instant, first_us: i64, now_us: i64, k: usize, interval_us: i64) {
        for i in 0..k as i64 {
            let ahead = (first_us + i * interval_us - now_us).max(0);
            let at = got + Duration::from_micros(ahead as u64);
            self.slots.push_back(at);
            self.last = Some(self.last.map_or(at, |l| l.max(at)));
        }
        self.stats.reservations += 1;
        self.stats.reserved += k as u64;
    }

    /// The database is gone: no slot is used until it is back.
    fn lose(&mut self) {
        self.stats.dropped += self.slots.len() as u64;
        self.stats.lost += 1;
        self.slots.clear();
        self.last = None;
    }
}

/// What the reserving task and the waiting requests share.
struct Core {
    merchant: MerchantKey,
    pace: Pace,
    queue: Mutex<Queue>,
    /// Slots were added: waiting requests look again.
    slots_added: Notify,
    /// A request started waiting: the task looks again.
    demand: Notify,
    /// Whether the last reservation failed for want of the database.
    down: AtomicBool,
}

impl Core {
    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A request waiting for a turn: counted while it waits, uncounted when it leaves without a slot
/// (its future was dropped).
struct Waiting<'a> {
    core: &'a Core,
    counted: bool,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if self.counted {
            let mut q = self.core.queue();
            q.waiting = q.waiting.saturating_sub(1);
        }
    }
}

/// Aborts the reserving task when the last handle goes.
struct Task(tokio::task::JoinHandle<()>);

impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One merchant's shared rate budget, as this process takes turns from it. Cheap to clone (the
/// clones share one queue and one reserving task); give it to the gateway client as its
/// [`SharedPace`]. The task, and its connection, end when the last clone is dropped.
#[derive(Clone)]
pub struct SharedBudget {
    core: Arc<Core>,
    _task: Arc<Task>,
}

impl fmt::Debug for SharedBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedBudget").field("merchant", &self.core.merchant).field("pace", &self.core.pace).finish()
    }
}

/// A connection ready to reserve.
struct Conn {
    client: Client,
    reserve: Statement,
}

impl Conn {
    async fn open(url: &JournalUrl) -> Result<Conn, StoreError> {
        let client = connect_async(url).await?;
        client.batch_execute("SET synchronous_commit = off").await?;
        let reserve = client.prepare(RESERVE).await?;
        Ok(Conn { client, reserve })
    }

    /// Reserves `k` slots: (first slot, database now), in microseconds since 1970.
    async fn reserve(&self, merchant: &MerchantKey, pace: Pace, k: usize) -> Result<(i64, i64), StoreError> {
        let advance = k as i64 * pace.interval_us();
        let row = self.client.query_one(&self.reserve, &[&merchant.as_str(), &pace.tolerance_us(), &advance]).await?;
        let next_us: i64 = row.try_get(0)?;
        let now_us: i64 = row.try_get(1)?;
        Ok((next_us - advance, now_us))
    }
}

impl SharedBudget {
    /// Connects to the journal database at `url` and starts taking turns from `merchant`'s budget
    /// at `pace`. Fails when the database cannot be reached or refuses the budget (no schema yet,
    /// a role without the grant): better said now than as a run that never sends. Must be called
    /// within a tokio runtime, which then runs the reserving task.
    pub async fn connect(url: &JournalUrl, merchant: MerchantKey, pace: Pace) -> Result<SharedBudget, BudgetError> {
        let conn = match tokio::time::timeout(RESERVE_TIMEOUT * 3, Conn::open(url)).await {
            Ok(c) => c?,
            Err(_) => return Err(BudgetError::Timeout),
        };
        // A reservation of nothing: checks the table and the grant, and changes no schedule (an
        // idle one moves to the start of its tolerance, which is where it would start anyway).
        match tokio::time::timeout(RESERVE_TIMEOUT, conn.reserve(&merchant, pace, 0)).await {
            Ok(r) => {
                r?;
            }
            Err(_) => return Err(BudgetError::Timeout),
        }
        let core = Arc::new(Core {
            merchant,
            pace,
            queue: Mutex::new(Queue::default()),
            slots_added: Notify::new(),
            demand: Notify::new(),
            down: AtomicBool::new(false),
        });
        let task = tokio::spawn(drive(core.clone(), url.clone(), conn));
        Ok(SharedBudget { core, _task: Arc::new(Task(task)) })
    }

    /// Waits for one slot of the shared schedule and returns at its time, with that time. Dropping
    /// the future gives up the wait; a slot it already held is lost (never given twice).
    pub async fn turn(&self) -> Instant {
        let core = &*self.core;
        let grace = core.pace.grace();
        let mut waiting = Waiting { core, counted: true };
        core.queue().waiting += 1;
        core.demand.notify_one();
        loop {
            let added = core.slots_added.notified();
            tokio::pin!(added);
            added.as_mut().enable();
            let slot = core.queue().take(Instant::now(), grace);
            if let Some(at) = slot {
                waiting.counted = false;
                tokio::time::sleep_until(at.into()).await;
                return at;
            }
            added.await;
        }
    }

    /// What this process's budget did so far.
    pub fn stats(&self) -> BudgetStats {
        self.core.queue().stats
    }

    /// Whether the last attempt to reserve found no database (requests wait until it is back).
    pub fn database_lost(&self) -> bool {
        self.core.down.load(Ordering::Relaxed)
    }

    /// The budget's merchant key.
    pub fn merchant(&self) -> &MerchantKey {
        &self.core.merchant
    }

    /// The budget's rate and burst.
    pub fn pace(&self) -> Pace {
        self.core.pace
    }
}

impl SharedPace for SharedBudget {
    fn turn(&self) -> Pin<Box<dyn Future<Output = Instant> + Send + '_>> {
        Box::pin(SharedBudget::turn(self))
    }

    fn valid_for(&self) -> Duration {
        self.core.pace.valid_for()
    }
}

/// The reserving task: one reservation at a time, when requests wait and the slots held run short.
async fn drive(core: Arc<Core>, url: JournalUrl, conn: Conn) {
    let pace = core.pace;
    let (grace, chunk, interval_us) = (pace.grace(), pace.chunk(), pace.interval_us());
    let mut conn = Some(conn);
    let mut backoff = BACKOFF.0;
    // The slowest recent round trip to the database, decaying: the horizon covers two of them.
    let mut rtt = Duration::ZERO;
    loop {
        let horizon = (rtt * 2).clamp(HORIZON, MAX_HORIZON);
        let plan = core.queue().plan(Instant::now(), grace, horizon, chunk);
        let k = match plan {
            Plan::Idle => {
                core.demand.notified().await;
                continue;
            }
            Plan::Until(at) => {
                tokio::select! {
                    _ = tokio::time::sleep_until(at.into()) => {}
                    _ = core.demand.notified() => {}
                }
                continue;
            }
            Plan::Reserve(k) => k,
        };
        let c = match conn.take() {
            Some(c) => c,
            None => match tokio::time::timeout(RESERVE_TIMEOUT * 3, Conn::open(&url)).await {
                Ok(Ok(c)) => c,
                Ok(Err(e)) => {
                    tracing::debug!("shared rate budget: cannot reach the journal database {url}: {e}");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(BACKOFF.1);
                    continue;
                }
                Err(_) => {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(BACKOFF.1);
                    continue;
                }
            },
        };
        let sent = Instant::now();
        let answer = tokio::time::timeout(RESERVE_TIMEOUT, c.reserve(&core.merchant, pace, k)).await;
        let got = Instant::now();
        match answer {
            Ok(Ok((first_us, now_us))) => {
                rtt = (rtt * 7 / 8).max(got - sent);
                core.queue().add(got, first_us, now_us, k, interval_us);
                if core.down.swap(false, Ordering::Relaxed) {
                    tracing::warn!("the journal database {url} is back: requests to the gateway go on");
                }
                core.slots_added.notify_waiters();
                conn = Some(c);
                backoff = BACKOFF.0;
            }
            Ok(Err(e @ StoreError::ConnectionLost(_))) => {
                lost(&core, &url, &e.to_string());
                drop(c);
            }
            Err(_) => {
                lost(&core, &url, &format!("no answer within {} s", RESERVE_TIMEOUT.as_secs()));
                drop(c);
            }
            Ok(Err(e)) => {
                // Refused (a grant taken away, the table gone): nothing is sent, and it is said.
                tracing::warn!("the shared rate budget cannot reserve in {url}: {e}; no request is sent until it can");
                core.down.store(true, Ordering::Relaxed);
                conn = Some(c);
                tokio::time::sleep(BACKOFF.1).await;
            }
        }
    }
}

/// The database is gone: no request gets a turn until a reservation succeeds again.
fn lost(core: &Core, url: &JournalUrl, why: &str) {
    core.queue().lose();
    if !core.down.swap(true, Ordering::Relaxed) {
        tracing::warn!("lost the journal database {url} ({why}): no request is sent until it is back");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_merchant_key_is_a_hash_that_names_no_secret() {
        let a = MerchantKey::from_parts("51a4bd18-5bc1-4eaa-97b0-c09323398883", "61662");
        assert_eq!(a.as_str().len(), 64);
        assert!(a.as_str().bytes().all(|b| b.is_ascii_hexdigit()));
        assert!(!a.as_str().contains("61662") && !a.as_str().contains("51a4bd18"));
        assert_eq!(a, MerchantKey::from_parts("51a4bd18-5bc1-4eaa-97b0-c09323398883", "61662"));
        // Another client id, or the same characters split differently, is another merchant.
        assert_ne!(a, MerchantKey::from_parts("51a4bd18-5bc1-4eaa-97b0-c09323398883", "61663"));
        assert_ne!(MerchantKey::from_parts("ab", "c"), MerchantKey::from_parts("a", "bc"));
        assert!(!format!("{a:?}").contains(a.as_str()), "Debug shows a prefix only");
    }

    #[test]
    fn the_pace_rounds_towards_slower_and_keeps_the_burst_in_the_schedule() {
        let p = Pace::new(3, 1);
        assert_eq!(p.interval_us(), 336_667, "1.01 s / 3, rounded up");
        assert_eq!(p.tolerance_us(), 0);
        assert_eq!(p.chunk(), 1);
        let p = Pace::new(100, 10);
        assert_eq!(p.interval_us(), 10_100);
        assert_eq!(p.tolerance_us(), 90_900);
        assert_eq!(p.chunk(), 2);
        assert_eq!(p.grace(), Duration::from_micros(2_525));
        assert_eq!(Pace::new(0, 0), Pace::new(1, 1));
        assert_eq!(Pace::new(1_000_000, 100_000).chunk(), MAX_CHUNK);
        assert_eq!(Pace::new(20, 2).grace(), Duration::from_millis(10));
        assert_eq!(Pace::new(100, 5).valid_for(), Duration::from_micros(15_050));
        assert_eq!(Pace::new(20, 2).valid_for(), Duration::from_micros(35_250));
    }

    #[test]
    fn slots_map_from_the_database_clock_and_burst_slots_are_due_at_once() {
        let got = Instant::now();
        let mut q = Queue::default();
        // Database now = 1_000_000 µs; the schedule was idle with two slots of tolerance: the
        // first three slots are due now (a burst of 3), the next one an interval later.
        q.add(got, 1_000_000 - 20_000, 1_000_000, 4, 10_000);
        let ahead: Vec<u128> = q.slots.iter().map(|s| s.duration_since(got).as_micros()).collect();
        assert_eq!(ahead, vec![0, 0, 0, 10_000]);
        assert_eq!(q.last, Some(got + Duration::from_millis(10)));
        assert_eq!(q.stats.reserved, 4);
    }

    #[test]
    fn requests_take_slots_in_order_and_late_slots_are_dropped() {
        let t0 = Instant::now();
        let grace = Duration::from_millis(2);
        let mut q = Queue { waiting: 2, ..Queue::default() };
        q.add(t0, 0, 0, 3, 10_000);
        // At t0 + 13 ms: the slot of t0 is too late; the one of t0 + 10 ms is within grace.
        let at = q.take(t0 + Duration::from_millis(11), grace);
        assert_eq!(at, Some(t0 + Duration::from_millis(10)));
        assert_eq!(q.stats.dropped, 1);
        assert_eq!(q.waiting, 1);
        assert_eq!(q.take(t0 + Duration::from_millis(30), grace), None, "the last slot is 10 ms late");
        assert_eq!(q.stats.dropped, 2);
        assert_eq!(q.stats.taken, 1);
    }

    #[test]
    fn the_plan_reserves_only_for_waiting_requests_and_only_a_horizon_ahead() {
        let t0 = Instant::now();
        let grace = Duration::from_millis(2);
        let horizon = Duration::from_millis(30);
        let mut q = Queue::default();
        assert_eq!(q.plan(t0, grace, horizon, 2), Plan::Idle);
        q.waiting = 5;
        assert_eq!(q.plan(t0, grace, horizon, 2), Plan::Reserve(2), "at most a chunk");
        q.add(t0, 0, 0, 2, 10_000);
        assert_eq!(q.plan(t0, grace, horizon, 2), Plan::Reserve(2), "the last slot is 10 ms away");
        q.add(t0, 20_000, 0, 2, 10_000);
        q.add(t0, 40_000, 0, 1, 10_000);
        q.waiting = 8;
        // Slots up to t0 + 40 ms: look again at t0 + 10 ms.
        assert_eq!(q.plan(t0, grace, horizon, 2), Plan::Until(t0 + Duration::from_millis(10)));
        // Every waiting request has a slot: nothing to reserve, however near the end.
        q.waiting = 5;
        assert_eq!(q.plan(t0 + Duration::from_millis(1), grace, horizon, 2), Plan::Idle);
        // 10 ms on, the slot of t0 went unused (dropped), and the last slot is 30 ms away.
        assert_eq!(q.plan(t0 + Duration::from_millis(10), grace, horizon, 2), Plan::Reserve(1));
        assert_eq!(q.stats.dropped, 1);
        q.lose();
        assert!(q.slots.is_empty() && q.last.is_none());
        assert_eq!(q.stats.dropped, 5);
        assert_eq!(
            q.plan(t0 + Duration::from_millis(10), grace, horizon, 2),
            Plan::Reserve(2),
            "a lost database: reserve afresh"
        );
    }
}
