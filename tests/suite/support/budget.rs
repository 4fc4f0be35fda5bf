//! Senders sharing one merchant's rate budget (SPEC 8.1), for the team-mode budget tests and the
//! benchmark's P10: a [`GatewayClient`] paced by its own [`SharedBudget`] (its own connection to the
//! journal database, its own runtime) posting payouts to a gateway as fast as the budget lets it,
//! until a deadline. Run one on a thread of this process ([`run_sender`]) or as a child process
//! ([`spawn_sender`]: this very executable again, told by the environment to be one sender).
//!
//! What the senders sent is judged at the gateway: the fake's [`super::fake::Timeline`] holds
//! every arrival; [`busiest`] and [`rate_between`] read it.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use payrun::config::example_credentials;
use payrun::gateway::client::ClientOptions;
use payrun::gateway::{GatewayClient, PayoutRequest};
use payrun::journal::store::pgurl::JournalUrl;
use payrun::journal::team::budget::{BudgetStats, MerchantKey, Pace, SharedBudget};
use payrun::money::Amount;

use super::fake::Arrival;

/// The environment variable that makes a re-executed test binary (or the benchmark) one sender.
pub const CHILD_ENV: &str = "PAYRUN_TEST_BUDGET_SENDER";

/// One sender.
#[derive(Clone, Debug)]
pub struct Sender {
    /// The journal database's URL (it may carry a password: never printed).
    pub journal: String,
    pub gateway: String,
    pub rate: u32,
    pub burst: u32,
    /// Postings in flight at most (each waits for its turn first).
    pub concurrency: usize,
    /// Every reference this sender posts starts with it (letters and digits).
    pub prefix: String,
    /// When to stop starting requests (Unix ms: the same instant for every process).
    pub stop_at_unix_ms: u64,
}

/// What a sender did.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sent {
    pub requests: u64,
    pub stats: BudgetStats,
}

/// Unix ms now.
pub fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// `d` from now, in Unix ms.
pub fn unix_ms_in(d: Duration) -> u64 {
    unix_ms() + d.as_millis() as u64
}

/// The `Instant` of a Unix-ms time (for deadlines shared with other processes).
pub fn instant_of(unix: u64) -> Instant {
    let now = unix_ms();
    if unix >= now { Instant::now() + Duration::from_millis(unix - now) } else { Instant::now() }
}

impl Sender {
    /// The sender this process must be, when started by [`spawn_sender`].
    pub fn from_env() -> Option<Sender> {
        let v = std::env::var(CHILD_ENV).ok()?;
        let get = |k: &str| std::env::var(format!("{CHILD_ENV}_{k}")).unwrap_or_else(|_| panic!("{CHILD_ENV}_{k}"));
        let num = |k: &str| get(k).parse::<u64>().unwrap_or_else(|e| panic!("{CHILD_ENV}_{k}: {e}"));
        Some(Sender {
            journal: get("JOURNAL"),
            gateway: get("GATEWAY"),
            rate: num("RATE") as u32,
            burst: num("BURST") as u32,
            concurrency: num("CONCURRENCY") as usize,
            prefix: v,
            stop_at_unix_ms: num("STOP_AT"),
        })
    }

    fn env(&self) -> Vec<(String, String)> {
        let k = |s: &str| format!("{CHILD_ENV}_{s}");
        vec![
            (CHILD_ENV.to_string(), self.prefix.clone()),
            (k("JOURNAL"), self.journal.clone()),
            (k("GATEWAY"), self.gateway.clone()),
            (k("RATE"), self.rate.to_string()),
            (k("BURST"), self.burst.to_string()),
            (k("CONCURRENCY"), self.concurrency.to_string()),
            (k("STOP_AT"), self.stop_at_unix_ms.to_string()),
        ]
    }
}

/// Starts this executable again with `args` as one sender (a test binary: `--exact TEST
/// --nocapture`, the test checking [`Sender::from_env`] first; the benchmark: its child flag). What
/// it sent is read from the gateway's timeline; its stderr is the caller's (a panic shows).
pub fn spawn_sender(args: &[&str], sender: &Sender) -> Child {
    let me = std::env::current_exe().expect("this executable");
    Command::new(me)
        .args(args)
        .envs(sender.env())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start a sender process")
}

/// Runs one sender to its deadline on a runtime of its own (blocking).
pub fn run_sender(sender: &Sender) -> Sent {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("sender runtime");
    rt.block_on(send(sender))
}

/// One sender, on the caller's runtime.
pub async fn send(sender: &Sender) -> Sent {
    let url = JournalUrl::parse(&sender.journal).unwrap_or_else(|e| panic!("journal URL: {e}"));
    let creds = example_credentials();
    let budget = SharedBudget::connect(&url, MerchantKey::of(&creds), Pace::new(sender.rate, sender.burst))
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", url.display()));
    let mut options = ClientOptions::new(sender.gateway.clone());
    options.timeout = Duration::from_secs(10);
    options.pool = sender.concurrency;
    options.shared_pace = Some(Arc::new(budget.clone()));
    let client = Arc::new(GatewayClient::new(&options, creds).expect("gateway client"));
    let deadline = instant_of(sender.stop_at_unix_ms);
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..sender.concurrency.max(1) {
        let (client, next, prefix) = (client.clone(), next.clone(), sender.prefix.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let _ = client.payout(&payout(&prefix, n), None).await;
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    Sent { requests: client.counts.requests(), stats: budget.stats() }
}

/// Payout `n` of a sender: its own reference and account.
pub fn payout(prefix: &str, n: u64) -> PayoutRequest {
    PayoutRequest {
        amount: Amount::from_paise(10_000),
        name: "Budget Test".into(),
        account: format!("7{:010}00", n % 10_000_000_000),
        ifsc: "SBIN0000001".into(),
        mode: "IMPS".into(),
        remarks: "budget".into(),
        external_ref: format!("{prefix}{n}"),
        payee_list_id: String::new(),
        latitude: String::new(),
        longitude: String::new(),
    }
}

/// The most requests within any one-second window starting at an arrival (`[at, at + 1 s)`) among
/// the arrivals at or after `from` (all when `None`).
pub fn busiest(arrivals: &[Arrival], from: Option<Instant>) -> usize {
    let mut at: Vec<Instant> = arrivals.iter().map(|a| a.at).filter(|&t| from.is_none_or(|f| t >= f)).collect();
    at.sort();
    let mut best = 0;
    let mut j = 0;
    for i in 0..at.len() {
        while j < at.len() && at[j] < at[i] + Duration::from_secs(1) {
            j += 1;
        }
        best = best.max(j - i);
    }
    best
}

/// Where the busiest one-second window starts, from the first arrival, and what it holds: for
/// a failing test's message.
pub fn busiest_where(arrivals: &[Arrival]) -> String {
    let mut at: Vec<&Arrival> = arrivals.iter().collect();
    at.sort_by_key(|a| a.at);
    let Some(first) = at.first().map(|a| a.at) else { return "no requests".into() };
    let (mut best, mut start, mut j) = (0, 0, 0);
    for i in 0..at.len() {
        while j < at.len() && at[j].at < at[i].at + Duration::from_secs(1) {
            j += 1;
        }
        if j - i > best {
            best = j - i;
            start = i;
        }
    }
    let ms = |t: Instant| (t - first).as_secs_f64() * 1000.0;
    let head: Vec<String> =
        at[start..start + best.min(6)].iter().map(|a| format!("{:.1}ms {}", ms(a.at), a.call)).collect();
    let end = &at[start + best - 1];
    let next = at.get(start + best).map(|a| format!("{:.1}ms", ms(a.at))).unwrap_or_default();
    format!(
        "{best} from {:.1} ms (request {start}): {} ... last {:.1}ms, next {next}",
        ms(at[start].at),
        head.join(", "),
        ms(end.at)
    )
}

/// Requests per second that arrived in `[from, to)`.
pub fn rate_between(arrivals: &[Arrival], from: Instant, to: Instant) -> f64 {
    let n = arrivals.iter().filter(|a| a.at >= from && a.at < to).count();
    n as f64 / to.saturating_duration_since(from).as_secs_f64()
}

/// The first arrival of a posting whose reference starts with `prefix`.
pub fn first_of(arrivals: &[Arrival], prefix: &str) -> Option<Instant> {
    arrivals.iter().filter(|a| a.id.starts_with(prefix)).map(|a| a.at).min()
}

/// Postings whose reference starts with `prefix`.
pub fn postings_of(arrivals: &[Arrival], prefix: &str) -> usize {
    arrivals.iter().filter(|a| a.call == "payout" && a.id.starts_with(prefix)).count()
}
