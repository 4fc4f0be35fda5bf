//! The engine: sends each ready row once, resolves rows in doubt, and polls every payout to its
//! final status (SPEC section 3), at the rate the gateway allows.
//!
//! One dispatcher owns every row that is moving (its lifecycle status lives in memory, the journal
//! follows through the group-commit [`Writer`]); jobs run as tasks, as many at a time as [`flight`]
//! admits, and every HTTP request they make waits on the client's rate limiter. The rules it
//! enforces:
//!
//! 1. a payout's intent (`sending`, with its reference) is on disk before the request leaves;
//! 2. an unknown outcome makes the row `in_doubt`, never `failed`;
//! 3. an in-doubt row is resolved by status inquiry, and sent again (same reference) only after two
//!    "unknown reference" answers at least `resend_grace` apart, the first of them after the
//!    request's own timeout has passed;
//! 4. a request that provably never reached the gateway goes back to `ready` and is retried after
//!    backoff (Retry-After when given), pausing all sending;
//! 5. HTTP 401 stops everything: unsent rows stay `ready` for `resume`;
//! 7. 8. what an answer proves about a row is [`reading`]'s table; rows it cannot decide are parked
//!    for a person and leave the run.
//!
//! The engine never decides a row's next state itself: every answer becomes a [`reading`] reaction,
//! every change an [`Event`] that [`lifecycle::apply`] decides. It never resends a row the gateway
//! has accepted, nor one refused with TE0020 or TE0005.
//!
//! **Requests that hang (issue 12).** A gateway that holds a few percent of requests until the
//! client's timeout fills a fixed number of slots with them: with 8 slots and the bench's mix the
//! batch used 5% of its rate. So a request that has *stalled* stops counting against the
//! concurrency limit ([`flight`]): it left more than four times the observed p90 latency ago (at
//! least 250 ms) and the gateway has since answered as many other requests as the limit holds. It
//! is still awaited and its answer still used, and its row stays `sending` (claimed: nothing else
//! is sent for it) until that answer or the timeout makes it `in_doubt`, so rules 1-3 are untouched
//! and the first "unknown reference" that counts still comes after the request's own timeout.
//! Every request still waits on the one rate limiter; everything in flight stays under a hard cap
//! (`[run] max_in_flight`, default two seconds of the rate within 64..=512); a gateway that answers
//! nothing stops getting requests once the limit's worth wait on it. Unless `--concurrency` is
//! given, the limit is derived: rate × p90 latency × 2 + 4.
//!
//! Chosen by measurement: 3,000 rows at `--rate 200` against the sandbox, 20-60 ms, 1% of postings
//! hanging before they are applied, 3% applied and never answered, 1% of inquiries hanging (bench
//! P7; the variants by hand, one run each):
//!
//! | design | requests/s ÷ rate while sending | inquiries on rows in doubt |
//! |---|---|---|
//! | fixed 8 slots, 30 s timeout (before) | 0.054 | 156 |
//! | 3 s payout timeout, fixed 8 | 0.354 | 156 |
//! | 3 s payout timeout, fixed 32 | 1.002 | 156 |
//! | stalled requests stop counting, 30 s timeout, `--concurrency 8` | 0.823 | 156 |
//! | stalled requests stop counting, 30 s timeout, derived limit (chosen) | 1.002 | 156 |
//!
//! A short timeout keeps up here too, but it makes every answer slower than itself a lost answer:
//! with 3% of postings applied and answered after 5 s (slow, not hung) it turned 95 answered
//! payouts into rows in doubt (96 inquiries) where the chosen design had none; the document gives no
//! bound on how long a posting takes, and a gateway that calls the bank before answering takes
//! seconds. It also needs a fixed limit sized to the hang rate, the very thing no operator knows. An
//! adaptive limit of the AIMD kind shrinks on timeouts, the opposite of what a hang calls for. What
//! the chosen design costs: connections (152 requests in flight at the gateway at once in that
//! run, bounded by the cap), and a hung row settles no sooner than the 30 s timeout lets rule 3 act.
//!
//! **The rate's idle tail.** Once everything is sent, the last payouts' first inquiries wait out
//! `first_poll`, and the rate would idle (0.2 s of a 2.4 s run in bench P4). While little waits for
//! a turn, the first inquiry of an accepted payout is asked early then; rows in doubt and pending
//! payouts keep their schedule.

pub mod flight;
pub mod progress;
pub mod reading;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use crate::audit::Record;
use crate::gateway::client::Exchange;
use crate::gateway::{GatewayClient, PayoutOutcome, PayoutRequest, StatusOutcome};
use crate::journal::lifecycle::{Doubt, IN_DOUBT, REF_ALREADY_USED};
use crate::journal::writer::{Change, Writer};
use crate::journal::{self, Batch, Event, Journal, JournalError, Row, RowState, RowStatus, lifecycle};
use crate::shutdown::Shutdown;

pub use flight::FlightConfig;
use flight::Flights;
pub use progress::{Progress, Snapshot};
use reading::{AfterUnknown, Asked, Reaction, Then, Unknown, UnknownCount};

/// Failures that stop the engine: the journal cannot be trusted or a transition was illegal.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Illegal(#[from] lifecycle::Illegal),
}

/// How the engine works a batch.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Requests counted in flight at most (a stalled request stops counting, see [`flight`]); none:
    /// derived from the rate and the observed latency.
    pub concurrency: Option<usize>,
    /// Requests per second the client is paced at (the derived limits follow it; the client's rate
    /// limiter, not this, keeps to it).
    pub rate: u32,
    /// Everything in flight at most, stalled requests included; none: derived from the rate.
    pub max_in_flight: Option<usize>,
    /// How long to keep polling once everything is sent.
    pub poll_timeout: Duration,
    /// First status inquiry this long after an SU0000 posting (and after an unknown outcome).
    pub first_poll: Duration,
    /// First status inquiry this long after an ENQ001 (pending) posting.
    pub pending_poll: Duration,
    /// Polls back off by doubling up to this interval.
    pub max_poll_interval: Duration,
    /// Two TE0011 answers at least this far apart before an in-doubt row is sent again.
    pub resend_grace: Duration,
    /// An in-doubt row is not sent again after this many possibly-delivered attempts, and is parked
    /// for a person after this many answers that cannot be attributed to it.
    pub max_attempts: u32,
    /// The client's whole-request timeout: a payout's request may still be on its way until then, so
    /// no "unknown reference" answer before it counts toward a resend (rule 3).
    pub request_timeout: Duration,
    /// Give up (exit 3, resumable) when nothing but "not sent" has come back for this long.
    pub unreachable_after: Duration,
    /// Send nothing; only inquire on rows the gateway may have (`status --refresh`).
    pub inquire_only: bool,
    pub latitude: String,
    pub longitude: String,
    /// Used for rows without their own payee list id.
    pub payee_list_id: String,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            concurrency: None,
            rate: 10,
            max_in_flight: None,
            poll_timeout: Duration::from_secs(600),
            first_poll: Duration::from_millis(500),
            pending_poll: Duration::from_secs(2),
            max_poll_interval: Duration::from_secs(30),
            resend_grace: Duration::from_secs(5),
            max_attempts: 5,
            request_timeout: Duration::from_secs(30),
            unreachable_after: Duration::from_secs(120),
            inquire_only: false,
            latitude: String::new(),
            longitude: String::new(),
            payee_list_id: String::new(),
        }
    }
}

impl EngineConfig {
    /// How requests are admitted: the limit, the cap, the timeout past which none can stall.
    pub fn flights(&self) -> FlightConfig {
        FlightConfig {
            concurrency: self.concurrency,
            rate: self.rate,
            max_in_flight: self.max_in_flight,
            request_timeout: self.request_timeout,
        }
    }
}

/// Why the engine stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stop {
    /// Every valid row is final.
    Finished,
    /// Everything was sent; some rows were still pending when `poll_timeout` ran out.
    /// (Rows parked for a person do not keep a run going: a run whose other rows are final ends
    /// [`Stop::Finished`] with them still PENDING.)
    PollTimeout,
    /// Ctrl-C / SIGTERM.
    Interrupted,
    /// HTTP 401, or the gateway refuses fresh tokens.
    CredentialsRefused(String),
    /// The gateway could not be reached for too long.
    Unreachable(String),
    /// `inquire_only`: one round of inquiries done.
    Refreshed,
}

/// What a run did.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub stop: Stop,
    pub stats: Snapshot,
}

/// A row the dispatcher is moving (sending, accepted, pending or in doubt), with its polling
/// bookkeeping. Final and parked rows leave the table, so memory stays flat however long the file.
struct Active {
    row: Row,
    polls: u32,
    /// The "unknown reference" answers that counted toward a resend (or a TE0020 failure).
    unknown: UnknownCount,
    /// No "unknown reference" answer counts before this: the latest request's own timeout (rule 3).
    counts_after: Instant,
    /// Answers about a payout that could not be attributed to this row.
    unattributable: u32,
    /// Ask by our reference rather than the gateway's order id (after the order id was not known).
    ask_by_ref: bool,
    /// Another row of the journal holds this row's order id (rule 12): never ask by it again.
    id_shared: bool,
}

impl Active {
    fn new(row: Row, request_timeout: Duration) -> Active {
        let counts_after = request_deadline(row.status.sent_at.as_deref(), request_timeout);
        Active {
            row,
            polls: 0,
            unknown: UnknownCount::default(),
            counts_after,
            unattributable: 0,
            ask_by_ref: false,
            id_shared: false,
        }
    }

    /// The id to ask about: the gateway's order id when known (SPEC 4), else our reference.
    fn inquiry_id(&self) -> (String, bool) {
        match self.row.status.gateway_ref.clone().filter(|_| !self.ask_by_ref) {
            Some(order_id) => (order_id, true),
            None => (self.row.external_ref.clone().unwrap_or_default(), false),
        }
    }
}

/// When a request claimed at `sent_at` (RFC 3339, wall clock) has surely timed out, as an instant of
/// this process: `sent_at + timeout`, or `timeout` from now when the time is unknown.
fn request_deadline(sent_at: Option<&str>, timeout: Duration) -> Instant {
    let now = Instant::now();
    let Some(sent) = sent_at.and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok()) else {
        return now + timeout;
    };
    let elapsed = chrono::Utc::now().signed_duration_since(sent).to_std().unwrap_or(Duration::ZERO);
    now + timeout.saturating_sub(elapsed)
}

enum JobResult {
    Sent {
        seq: u64,
        outcome: PayoutOutcome,
        trace: Vec<Exchange>,
        /// When the request left (after its rate-limiter turn): its own timeout runs from here.
        sent: (Instant, String),
    },
    Inquired {
        seq: u64,
        outcome: StatusOutcome,
        /// Asked by the order id the gateway gave this row's own posting.
        by_order_id: bool,
        trace: Vec<Exchange>,
    },
    /// Shut down before the request was made (and before any intent was written): nothing changed.
    Cancelled {
        seq: u64,
    },
    Journal(JournalError),
}

/// The in-memory schedule and row table of one run.
struct Dispatch {
    cfg: EngineConfig,
    batch: String,
    active: HashMap<u64, Active>,
    /// Status inquiries by due time.
    due: BinaryHeap<Reverse<(Instant, u64)>>,
    /// In-doubt rows cleared for a resend (before new rows).
    resend: VecDeque<u64>,
    /// The status of each row whose send job is running, as it was before the claim.
    claimed_from: HashMap<u64, RowStatus>,
    /// Ready rows fetched from the journal, in file order.
    ready: VecDeque<Row>,
    ready_cursor: u64,
    ready_exhausted: bool,
    paused_until: Option<Instant>,
    /// When this run started: the zero of the times the pure rules of [`reading`] count in.
    epoch: Instant,
    /// The batch was cancelled: nothing is sent, not even a resend.
    cancelled: bool,
    /// Consecutive "not sent" answers (for the backoff), and when any other answer last came.
    not_sent_streak: u32,
    last_answer: Instant,
    stats: Snapshot,
    /// Order ids this run gave rows whose change the journal writer may not have committed yet
    /// (writer position, order key, row): the journal's order-id index does not see them yet, so
    /// rule 12's check looks here too. Pruned as the writer commits; a few hundred at most.
    recent_ids: VecDeque<(u64, String, u64)>,
}

/// The stop when the gateway refuses even a fresh token (TE0012 twice in a row).
pub(crate) fn tokens_refused() -> Stop {
    Stop::CredentialsRefused("the gateway refuses fresh tokens (TE0012): check ATMOON_USER_ID".into())
}

fn backoff(base: Duration, n: u32, cap: Duration) -> Duration {
    base.saturating_mul(1u32 << n.min(16)).min(cap)
}

impl Dispatch {
    fn schedule(&mut self, seq: u64, at: Instant) {
        self.due.push(Reverse((at, seq)));
    }

    fn pop_due(&mut self, now: Instant) -> Option<u64> {
        while let Some(Reverse((at, seq))) = self.due.peek().copied() {
            if at > now {
                return None;
            }
            self.due.pop();
            // Skip stale entries (a row rescheduled, or finished meanwhile).
            if self.active.get(&seq).is_some_and(|a| a.row.status.state().needs_inquiry()) {
                return Some(seq);
            }
        }
        None
    }

    /// The first inquiry of an accepted payout due before `horizon`, made due now. Only the first:
    /// a pending payout or a row in doubt keeps its schedule (rule 3 times the inquiries of rows in
    /// doubt; a pending payout asked early only answers pending again).
    fn bring_forward(&mut self, now: Instant, horizon: Instant) -> bool {
        let mut later = Vec::new();
        let mut found = None;
        while let Some(Reverse((at, seq))) = self.due.peek().copied() {
            if at > horizon {
                break;
            }
            self.due.pop();
            match self.active.get(&seq) {
                Some(a) if a.row.status.state() == RowState::Accepted && a.polls == 0 => {
                    found = Some(seq);
                    break;
                }
                Some(a) if a.row.status.state().needs_inquiry() => later.push(Reverse((at, seq))),
                // A stale entry (the row moved on): dropped, as pop_due would.
                _ => {}
            }
        }
        self.due.extend(later);
        match found {
            Some(seq) => {
                self.schedule(seq, now);
                true
            }
            None => false,
        }
    }

    fn next_due(&self) -> Option<Instant> {
        self.due.peek().map(|Reverse((at, _))| *at)
    }

    /// Applies an event to a row through the lifecycle and hands the change, with the evidence
    /// record that explains it, to the journal writer.
    fn transition(&mut self, writer: &Writer, row: &mut Row, event: &Event, record: Record) -> Result<(), EngineError> {
        let from = row.status.state();
        let to = lifecycle::apply(&row.status, event, &journal::now())?;
        self.stats.count_transition(from, to.state());
        let mut record = record;
        record.utr = to.utr.clone().filter(|_| to.state() == RowState::Success);
        let new_id = to.gateway_ref.as_deref().filter(|id| row.status.gateway_ref.as_deref() != Some(*id));
        let key = new_id.map(journal::order_key);
        let position = writer.record(Change { seq: row.seq, from, to: to.clone() }, record)?;
        if let Some(key) = key {
            self.recent_ids.push_back((position, key, row.seq));
        }
        row.status = to;
        Ok(())
    }

    /// Whether the order id `id` of row `seq` is also another row's (SPEC 3 rule 12), in any
    /// batch of the journal or among this run's changes not yet committed. Then an answer asked by
    /// it proves nothing for either row.
    fn order_id_shared(
        &mut self,
        journal: &Journal,
        writer: &Writer,
        id: &str,
        seq: u64,
        payee: Option<&str>,
    ) -> Result<bool, EngineError> {
        let committed = writer.committed();
        while self.recent_ids.front().is_some_and(|(p, _, _)| *p <= committed) {
            self.recent_ids.pop_front();
        }
        let key = journal::order_key(id);
        if self.recent_ids.iter().any(|(_, k, s)| *k == key && *s != seq) {
            return Ok(true);
        }
        Ok(journal.order_id_shared(id, &self.batch, seq, payee)?)
    }

    fn refill(&mut self, journal: &Journal) -> Result<(), EngineError> {
        if self.ready.is_empty() && !self.ready_exhausted {
            let rows = journal.rows_to_send(&self.batch, self.ready_cursor, 512)?;
            match rows.last() {
                Some(last) => self.ready_cursor = last.seq,
                None => self.ready_exhausted = true,
            }
            self.ready.extend(rows);
        }
        Ok(())
    }

    fn pause(&mut self, retry_after: Option<Duration>) {
        let wait = retry_after
            .unwrap_or_else(|| backoff(Duration::from_millis(500), self.not_sent_streak, Duration::from_secs(30)));
        let until = Instant::now() + wait.max(Duration::from_millis(50));
        self.paused_until = Some(self.paused_until.map_or(until, |p| p.max(until)));
    }

    fn poll_again(&mut self, seq: u64, now: Instant) {
        if let Some(a) = self.active.get_mut(&seq) {
            let delay = backoff(self.cfg.first_poll, a.polls, self.cfg.max_poll_interval);
            self.due.push(Reverse((now + delay, seq)));
        }
    }
}

/// The form of a row's payout. A stored valid row always has an amount, a mode and a reference;
/// one without is a damaged journal, and nothing is sent for it.
fn payout_request(row: &Row, cfg: &EngineConfig) -> Result<PayoutRequest, JournalError> {
    let missing = |what: &str| JournalError::Corrupt(format!("row {} has no {what}: not sent", row.seq));
    Ok(PayoutRequest {
        amount: row.amount.filter(|a| *a > crate::money::Amount::ZERO).ok_or_else(|| missing("amount"))?,
        name: row.name.clone(),
        account: row.account.clone(),
        ifsc: row.ifsc.clone(),
        mode: row.mode.ok_or_else(|| missing("transfer mode"))?.as_str().to_string(),
        remarks: row.remarks.clone(),
        external_ref: row.external_ref.clone().ok_or_else(|| missing("reference"))?,
        payee_list_id: if row.payee_list_id.is_empty() { cfg.payee_list_id.clone() } else { row.payee_list_id.clone() },
        latitude: cfg.latitude.clone(),
        longitude: cfg.longitude.clone(),
    })
}

/// An evidence record about `row` (its line and reference).
fn row_record(kind: &str, row: &Row) -> Record {
    let mut r = Record::new(kind);
    r.line = Some(row.line);
    r.reference = row.external_ref.clone();
    r
}

/// The evidence records of a call's answers: every exchange but the last goes to the log at once
/// (a token fetch, a TE0012 answered with a fresh token), the last is returned to go with the
/// state change it causes (or alone).
fn answer_records(writer: &Writer, row: &Row, trace: &[Exchange]) -> Result<Record, JournalError> {
    let record = |x: &Exchange| {
        let mut r = if x.call == "token" { Record::new("answer") } else { row_record("answer", row) };
        r.call = Some(x.call.to_string());
        r.http = x.http;
        r.code = x.code.clone();
        r.message = (!x.message.is_empty()).then(|| x.message.clone());
        r
    };
    let Some((last, earlier)) = trace.split_last() else {
        let mut r = row_record("answer", row);
        r.message = Some("no request was made".into());
        return Ok(r);
    };
    for x in earlier {
        writer.audit(record(x))?;
    }
    Ok(record(last))
}

/// Works a batch until every valid row is final, the poll timeout passes, or it is stopped.
///
/// Rows left `sending` by an earlier process are first recovered to `in_doubt`. The journal writer
/// is flushed before this returns, so the result file can be written from the journal.
pub async fn run(
    journal: &Journal,
    batch: &Batch,
    client: Arc<GatewayClient>,
    cfg: EngineConfig,
    shutdown: Shutdown,
    progress: &mut dyn Progress,
) -> Result<Outcome, EngineError> {
    let recovered = journal.recover(&batch.id)?;
    if recovered > 0 {
        tracing::warn!(
            "{recovered} row(s) were being sent when the last run stopped: resolving them by status inquiry"
        );
    }
    let writer = Arc::new(Writer::start(journal, &batch.id)?);
    let started = Instant::now();
    // Durations come from flags and files: keep them where instants can be added to them.
    let sane = |d: Duration| d.min(Duration::from_secs(366 * 86_400));
    let cfg = EngineConfig {
        poll_timeout: sane(cfg.poll_timeout),
        first_poll: sane(cfg.first_poll),
        pending_poll: sane(cfg.pending_poll),
        max_poll_interval: sane(cfg.max_poll_interval),
        resend_grace: sane(cfg.resend_grace),
        unreachable_after: sane(cfg.unreachable_after),
        ..cfg
    };
    let mut d = Dispatch {
        cfg: cfg.clone(),
        batch: batch.id.clone(),
        active: HashMap::new(),
        due: BinaryHeap::new(),
        resend: VecDeque::new(),
        claimed_from: HashMap::new(),
        ready: VecDeque::new(),
        ready_cursor: 0,
        ready_exhausted: cfg.inquire_only || batch.cancelled_at.is_some(),
        paused_until: None,
        epoch: started,
        cancelled: batch.cancelled_at.is_some(),
        not_sent_streak: 0,
        last_answer: Instant::now(),
        stats: Snapshot::default(),
        recent_ids: VecDeque::new(),
    };
    d.stats.init(&journal.state_counts(&batch.id)?);
    d.stats.rate = Some(cfg.rate);
    // Rows the gateway may have: inquire first, before anything new is sent. Rows parked for a
    // person stay out of a run; `status --refresh` asks once more about those still in doubt (an
    // answer may now prove their fate), never about a mismatch (asking again cannot settle it).
    for state in [RowState::InDoubt, RowState::Accepted, RowState::Pending] {
        let mut after = 0;
        loop {
            let rows = journal.rows_in_state(&batch.id, state, after, 1024)?;
            let Some(last) = rows.last() else { break };
            after = last.seq;
            for row in rows {
                let parked = row.status.parked();
                if parked && !(cfg.inquire_only && state == RowState::InDoubt) {
                    continue;
                }
                let seq = row.seq;
                d.active.insert(seq, Active::new(row, cfg.request_timeout));
                d.schedule(seq, started);
            }
        }
    }

    let mut jobs: JoinSet<JobResult> = JoinSet::new();
    let mut flights = Flights::new(cfg.flights());
    let early_queue = (cfg.rate / 10).max(1) as usize;
    // Jobs stop on any stop (Ctrl-C, credentials refused, unreachable, poll timeout), not only on a
    // signal: a job still waiting for its rate-limiter turn then gives its row back unsent.
    let stop_jobs = Shutdown::new();
    let mut stop: Option<Stop> = None;
    let mut sending_done_at: Option<Instant> = None;
    let mut last_tick = Instant::now();
    let refresh_targets = d.active.len();
    let mut refreshed = 0usize;

    loop {
        let now = Instant::now();
        if stop.is_none() && shutdown.is_triggered() {
            stop = Some(Stop::Interrupted);
        }
        if stop.is_some() {
            stop_jobs.trigger();
        }
        // Start jobs: while the limit has room, after stalled requests have stopped counting.
        let mut stall_check = None;
        if !flights.has_room() {
            stall_check = flights.release_stalled(now);
        }
        while stop.is_none() && flights.has_room() {
            let now = Instant::now();
            if d.paused_until.is_some_and(|p| p > now) {
                break;
            }
            if cfg.inquire_only && refreshed >= refresh_targets {
                break;
            }
            if let Some(seq) = d.pop_due(now) {
                let Some(a) = d.active.get_mut(&seq) else { continue };
                a.polls += 1;
                refreshed += 1;
                if a.row.status.state() == RowState::InDoubt {
                    d.stats.doubt_inquiries += 1;
                }
                let (id, by_order_id) = a.inquiry_id();
                let mut request = row_record("request", &a.row);
                request.call = Some("status".into());
                request.asked = Some(id.clone());
                writer.audit(request)?;
                let client = client.clone();
                let stop_signal = stop_jobs.clone();
                let departure = flights.departure();
                let gone = departure.clone();
                let job = jobs.spawn(async move {
                    let ask = async {
                        let turn = client.wait_turn().await;
                        gone.leave();
                        client.status_traced(&id, Some(turn)).await
                    };
                    // An inquiry changes nothing at the gateway: a stop abandons it at any point.
                    tokio::select! {
                        (outcome, trace) = ask => JobResult::Inquired { seq, outcome, by_order_id, trace },
                        _ = stop_signal.wait() => JobResult::Cancelled { seq },
                    }
                });
                flights.started(job.id(), departure, now);
                continue;
            }
            if cfg.inquire_only {
                break;
            }
            // A send: an in-doubt row cleared for resending, else the next ready row.
            let mut row = if let Some(seq) = d.resend.pop_front() {
                match d.active.remove(&seq) {
                    Some(a) => a.row,
                    None => continue,
                }
            } else {
                d.refill(journal)?;
                match d.ready.pop_front() {
                    Some(r) => r,
                    // Everything is sent. While the last payouts wait out their first poll the rate
                    // would idle: while at most a tenth of a second's worth of the rate waits for a
                    // turn, ask the next of them now (an inquiry changes nothing at the gateway).
                    None if flights.waiting() < early_queue && d.bring_forward(now, now + cfg.first_poll) => continue,
                    None => break,
                }
            };
            let req = payout_request(&row, &cfg)?;
            let prev = row.status.clone();
            let claim = lifecycle::apply(&row.status, &Event::Claim, &journal::now())?;
            row.status = claim.clone();
            let seq = row.seq;
            let mut request = row_record("request", &row);
            request.call = Some("payout".into());
            request.attempt = Some(claim.attempts);
            request.amount = row.amount.map(|a| a.to_wire());
            d.active.insert(seq, Active::new(row, cfg.request_timeout));
            let change = Change { seq, from: prev.state(), to: claim };
            let client = client.clone();
            let writer = writer.clone();
            let stop_signal = stop_jobs.clone();
            let departure = flights.departure();
            let gone = departure.clone();
            let job = jobs.spawn(async move {
                let turn = tokio::select! {
                    t = client.wait_turn() => t,
                    _ = stop_signal.wait() => return JobResult::Cancelled { seq },
                };
                // Rule 1: the intent is on disk before the request leaves, with the time it leaves
                // (the turn may have taken a while), which is when its own timeout starts.
                let mut change = change;
                let sent = (Instant::now(), journal::now());
                change.to.sent_at = Some(sent.1.clone());
                if let Err(e) = writer.durable(change, request).await {
                    return JobResult::Journal(e);
                }
                gone.leave();
                let (outcome, trace) = client.payout_traced(&req, Some(turn)).await;
                JobResult::Sent { seq, outcome, trace, sent }
            });
            flights.started(job.id(), departure, now);
            d.stats.count_transition(prev.state(), RowState::Sending);
            d.claimed_from.insert(seq, prev);
            d.stats.sends_started += 1;
        }

        // Done?
        let sends_pending = !d.resend.is_empty() || !d.ready.is_empty() || !d.ready_exhausted;
        if jobs.is_empty() {
            if stop.is_some() {
                break;
            }
            if cfg.inquire_only && (refreshed >= refresh_targets || d.due.is_empty()) {
                stop = Some(Stop::Refreshed);
                break;
            }
            if !sends_pending && d.active.is_empty() {
                stop = Some(Stop::Finished);
                break;
            }
        }
        if !sends_pending && d.claimed_from.is_empty() {
            let since = *sending_done_at.get_or_insert(now);
            if now.duration_since(since) >= cfg.poll_timeout && stop.is_none() {
                stop = Some(Stop::PollTimeout);
                continue;
            }
        }

        // Progress.
        if now.duration_since(last_tick) >= Duration::from_millis(200) {
            last_tick = now;
            d.stats.max_in_flight = flights.max_in_flight as u64;
            d.stats.stalled = flights.stalled_total;
            d.stats.elapsed = started.elapsed();
            d.stats.ready_left = d.ready.len() as u64 + if d.ready_exhausted { 0 } else { 1 };
            d.stats.requests = client.counts.requests();
            progress.update(&d.stats);
        }

        // Wait for a job, the next due inquiry, the end of a pause, or a signal.
        let mut wake = now + Duration::from_millis(200);
        if let Some(t) = d.next_due() {
            wake = wake.min(t.max(now));
        }
        if let Some(p) = d.paused_until {
            if p > now {
                wake = wake.min(p);
            }
        }
        if let Some(since) = sending_done_at {
            wake = wake.min(since + cfg.poll_timeout);
        }
        if let Some(t) = stall_check {
            wake = wake.min(t.max(now));
        }
        tokio::select! {
            Some(res) = jobs.join_next_with_id(), if !jobs.is_empty() => {
                let result = match res {
                    Ok((job, r)) => {
                        flights.finished(job, Instant::now(), answered(&r));
                        r
                    }
                    Err(e) => {
                        // A job panicked: its row keeps the state on disk (sending → in doubt on resume).
                        flights.finished(e.id(), Instant::now(), false);
                        tracing::error!("a payout task failed: {e}");
                        stop.get_or_insert(Stop::Interrupted);
                        continue;
                    }
                };
                if let Some(s) = handle(&mut d, journal, &writer, result)? {
                    stop.get_or_insert(s);
                }
            }
            _ = tokio::time::sleep_until(tokio::time::Instant::from_std(wake)) => {}
            _ = shutdown.wait(), if stop.is_none() => { stop = Some(Stop::Interrupted); }
        }
    }
    writer.flush().await?;
    d.stats.max_in_flight = flights.max_in_flight as u64;
    d.stats.stalled = flights.stalled_total;
    d.stats.elapsed = started.elapsed();
    d.stats.ready_left = 0;
    d.stats.requests = client.counts.requests();
    progress.update(&d.stats);
    progress.finish();
    if let Ok(w) = Arc::try_unwrap(writer) {
        w.close();
    }
    Ok(Outcome { stop: stop.unwrap_or(Stop::Finished), stats: d.stats })
}

/// Whether a job's last request got an HTTP answer (any status): the gateway is answering, and
/// the request's latency is worth observing. A timeout, a reset or a refused connection is not.
fn answered(result: &JobResult) -> bool {
    match result {
        JobResult::Sent { trace, .. } | JobResult::Inquired { trace, .. } => {
            trace.last().is_some_and(|x| x.http.is_some())
        }
        JobResult::Cancelled { .. } | JobResult::Journal(_) => false,
    }
}

/// Turns one job's result into events and follow-ups. Returns a reason to stop, if any.
fn handle(
    d: &mut Dispatch,
    journal: &Journal,
    writer: &Writer,
    result: JobResult,
) -> Result<Option<Stop>, EngineError> {
    let now = Instant::now();
    match result {
        JobResult::Journal(e) => Err(e.into()),
        JobResult::Cancelled { seq } => {
            // Nothing was claimed on disk: put the row back as it was.
            let Some(mut a) = d.active.remove(&seq) else { return Ok(None) };
            if let Some(prev) = d.claimed_from.get(&seq) {
                d.stats.count_transition(RowState::Sending, prev.state());
            }
            match d.claimed_from.remove(&seq) {
                Some(prev) if prev.state() == RowState::Ready => {
                    a.row.status = prev;
                    d.ready.push_front(a.row);
                }
                Some(prev) => {
                    a.row.status = prev;
                    d.active.insert(seq, a);
                    d.resend.push_front(seq);
                }
                None => {
                    a.polls = a.polls.saturating_sub(1);
                    d.active.insert(seq, a);
                    d.schedule(seq, now);
                }
            }
            Ok(None)
        }
        JobResult::Sent { seq, outcome, trace, sent } => {
            d.claimed_from.remove(&seq);
            let Some(mut a) = d.active.remove(&seq) else { return Ok(None) };
            // What the journal holds since the intent was written.
            a.row.status.sent_at = Some(sent.1);
            let reading = reading::read_posting_for(&outcome, &a.row.account, &a.row.ifsc);
            match &outcome {
                PayoutOutcome::NotSent { .. } => d.stats.not_sent += 1,
                PayoutOutcome::Unknown { .. } => d.stats.lost_answers += 1,
                _ => {}
            }
            let mut stop = None;
            match reading.then {
                Then::Continue => {
                    d.last_answer = now;
                    d.not_sent_streak = 0;
                }
                Then::Pause(retry_after) => {
                    d.not_sent_streak += 1;
                    d.pause(retry_after);
                    if now.duration_since(d.last_answer) >= d.cfg.unreachable_after {
                        let why = match &reading.event {
                            Event::NotSent { reason } => reason.clone(),
                            _ => String::new(),
                        };
                        stop = Some(Stop::Unreachable(why));
                    }
                }
                Then::Stop(s) => stop = Some(s),
            }
            let answer = answer_records(writer, &a.row, &trace)?;
            d.transition(writer, &mut a.row, &reading.event, answer)?;
            match a.row.status.state() {
                RowState::Ready => d.ready.push_front(a.row),
                RowState::Accepted => {
                    d.active.insert(seq, a);
                    d.schedule(seq, now + d.cfg.first_poll);
                }
                RowState::Pending => {
                    d.active.insert(seq, a);
                    d.schedule(seq, now + d.cfg.pending_poll);
                }
                RowState::InDoubt => {
                    a.polls = 0;
                    a.unknown = UnknownCount::default();
                    a.unattributable = 0;
                    a.counts_after = sent.0 + d.cfg.request_timeout;
                    d.active.insert(seq, a);
                    d.schedule(seq, now + d.cfg.first_poll);
                }
                // Final (refused at posting): nothing more to do with it.
                _ => {}
            }
            Ok(stop)
        }
        JobResult::Inquired { seq, outcome, by_order_id, trace } => {
            d.stats.inquiries += 1;
            let Some(mut a) = d.active.remove(&seq) else { return Ok(None) };
            if !matches!(outcome, StatusOutcome::NotSent { .. }) {
                d.last_answer = now;
            }
            // The answer's evidence record: with the state change it causes, or alone.
            let answer = answer_records(writer, &a.row, &trace)?;
            let reference = a.row.external_ref.clone().unwrap_or_default();
            let asked = Asked {
                status: &a.row.status,
                account: &a.row.account,
                ifsc: &a.row.ifsc,
                amount: a.row.amount,
                derived_reference: reference == journal::derived_reference(&d.batch, a.row.seq),
                reference: &reference,
                // Asked by the order id the gateway gave this row's posting (rule 12 is checked
                // below, before the answer may move the row).
                by_own_order_id: by_order_id,
            };
            let mut reaction = reading::read_status(&outcome, &asked);
            // SPEC 3 rule 12: an order id another row of the journal also holds (a gateway that
            // restarted its counter) is no row's own: an answer asked by it proves nothing, for
            // either row. Ask by the reference from now on.
            if by_order_id && !matches!(reaction, Reaction::AskAgain | Reaction::Busy(_) | Reaction::Stop(_)) {
                let id = a.row.status.gateway_ref.clone().unwrap_or_default();
                // An answer naming this row's payee could be about another payout of that payee
                // only; one naming nobody (or another payee) about any.
                let names_this_payee = reading::answer_payee(&outcome).is_some_and(|p| {
                    matches!(
                        p.matches(&a.row.account, &a.row.ifsc, a.row.amount),
                        crate::gateway::PayeeMatch::Same | crate::gateway::PayeeMatch::OtherAmount
                    )
                });
                let key = journal::payee_key(&a.row.account, &a.row.ifsc);
                if d.order_id_shared(journal, writer, &id, seq, names_this_payee.then_some(key.as_str()))? {
                    a.id_shared = true;
                    a.ask_by_ref = true;
                    reaction = Reaction::AskAgain;
                }
            }
            let mut stop = None;
            let event = match reaction {
                Reaction::Event(e) => Some(e),
                Reaction::AskAgain => None,
                Reaction::Busy(retry_after) => {
                    d.pause(retry_after);
                    // This inquiry did not happen: do not count it towards the backoff.
                    a.polls = a.polls.saturating_sub(1);
                    None
                }
                Reaction::SwitchId => {
                    // Back to the order id only while it is this row's alone.
                    a.ask_by_ref = !a.ask_by_ref || a.id_shared;
                    None
                }
                Reaction::UnknownReference(toward) => {
                    let since = |t: Instant| t.saturating_duration_since(d.epoch);
                    match a.unknown.answer(since(now), since(a.counts_after), d.cfg.resend_grace) {
                        AfterUnknown::AskAt(at) => {
                            // Not proof yet (the request may still be on its way, or one answer
                            // alone): ask again later.
                            writer.audit(answer)?;
                            d.active.insert(seq, a);
                            d.schedule(seq, d.epoch + at);
                            return Ok(None);
                        }
                        AfterUnknown::Proven => {
                            match reading::unknown_twice(toward, a.row.status.attempts, d.cfg.max_attempts) {
                                // A cancelled batch sends nothing more, so nothing can prove the
                                // lost answer's payout away (rule 3's proof is the resend a TE0005
                                // would answer): a person decides (SPEC 3 rule 11).
                                Unknown::Resend if d.cancelled => Some(Event::NeedsPerson {
                                    code: IN_DOUBT,
                                    message: "the batch was cancelled while this payout's answer was lost; the gateway says it does not know the reference, which proves nothing without a resend (its status index may lag): check with the gateway, then payrun resolve".into(),
                                }),
                                Unknown::Resend => {
                                    // Rule 3: unknown twice, a grace period apart: send again, same reference.
                                    writer.audit(answer)?;
                                    d.stats.resends += 1;
                                    d.resend.push_back(seq);
                                    d.active.insert(seq, a);
                                    return Ok(None);
                                }
                                Unknown::Event(e) => Some(e),
                            }
                        }
                    }
                }
                Reaction::Unattributable => {
                    a.unknown.contradicted();
                    a.unattributable += 1;
                    if a.unattributable < d.cfg.max_attempts {
                        None
                    } else if a.row.status.doubt() == Doubt::Duplicate {
                        Some(Event::NeedsPerson {
                            code: REF_ALREADY_USED,
                            message: "TE0005 on the first attempt, and the gateway's status answers never say whose payout the reference is: check, then payrun resolve".into(),
                        })
                    } else {
                        Some(Event::NeedsPerson {
                            code: IN_DOUBT,
                            message: "the gateway's status answers for this reference never name a payee payrun can compare: check with the gateway, then payrun resolve".into(),
                        })
                    }
                }
                Reaction::Stop(s) => {
                    stop = Some(s);
                    None
                }
            };
            match &event {
                Some(e) => d.transition(writer, &mut a.row, e, answer)?,
                None => writer.audit(answer)?,
            }
            // A final or parked row leaves the table: memory stays flat, and a row that waits for a
            // person does not keep the run going.
            if a.row.status.state().needs_inquiry() && !a.row.status.parked() {
                d.active.insert(seq, a);
                d.poll_again(seq, now);
            }
            Ok(stop)
        }
    }
}
