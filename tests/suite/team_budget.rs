//! One rate budget per merchant (SPEC 8.1): senders with the same credentials share one `--rate`,
//! kept in the journal database, measured where it counts: at the gateway (the independent fake of
//! support/fake.rs, which notes every request's arrival), over every one-second window starting at
//! an arrival. Never more than `rate + burst`; together at least 90% of the rate while they all
//! have work. Senders are threads with a runtime and a database connection of their own, or
//! separate processes (this test binary started again as one sender: support/budget.rs).
//!
//! Against a real PostgreSQL (support/pg.rs), the schema applied by `journal::team::schema`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use payrun::config::example_credentials;
use payrun::gateway::GatewayClient;
use payrun::gateway::client::{ClientOptions, SharedPace};
use payrun::journal::store::Store;
use payrun::journal::store::pgurl::JournalUrl;
use payrun::journal::team::budget::{MerchantKey, Pace, SharedBudget};
use payrun::journal::team::schema::migrate;

use crate::support::budget::{
    Sender, busiest, busiest_where, first_of, instant_of, payout, postings_of, rate_between, run_sender, spawn_sender,
    unix_ms_in,
};
use crate::support::fake::{Arrival, FakeGateway, FakeOptions};
use crate::support::pg::{PrivateCluster, TestDb};
use crate::support::work::{Work, exec, s, unwrapped};

/// A fresh database with payrun's schema.
fn journal() -> TestDb {
    let db = TestDb::new();
    migrate(&mut db.store(), "the test database").expect("migrate");
    db
}

/// The fake gateway, every posting a plain success, 5-20 ms per answer.
fn gateway() -> FakeGateway {
    FakeGateway::start_with(FakeOptions { latency_ms: (5, 20), behaviours: false })
}

fn sender(db: &TestDb, fake: &FakeGateway, rate: u32, burst: u32, prefix: &str, stop_at: u64) -> Sender {
    Sender {
        journal: db.url(),
        gateway: fake.url.clone(),
        rate,
        burst,
        concurrency: 8,
        prefix: prefix.into(),
        stop_at_unix_ms: stop_at,
    }
}

/// Runs the senders, each on a thread of its own, to their deadline.
fn run_all(senders: &[Sender]) {
    let threads: Vec<_> = senders.iter().cloned().map(|s| std::thread::spawn(move || run_sender(&s))).collect();
    for t in threads {
        t.join().expect("sender thread");
    }
}

/// Checks the one-second windows and the rate used between `steady` and `end`, and says them.
fn judge(what: &str, arrivals: &[Arrival], rate: u32, burst: u32, steady: Instant, end: Instant) {
    let most = busiest(arrivals, None);
    let used = rate_between(arrivals, steady, end) / f64::from(rate);
    eprintln!(
        "{what}: {} requests; busiest one-second window {most} (limit {} = rate {rate} + burst {burst}); {:.3} of the rate used; busiest: {}",
        arrivals.len(),
        rate + burst,
        used,
        busiest_where(arrivals)
    );
    assert!(most as u32 <= rate + burst, "{what}: {most} requests within one second, over {rate} + {burst}");
    assert!(used >= 0.9, "{what}: only {used:.3} of the rate used while every sender had work");
}

#[test]
fn two_senders_at_rate_20_share_it() {
    let db = journal();
    let fake = gateway();
    let stop_at = unix_ms_in(Duration::from_secs(4));
    let end = instant_of(stop_at);
    run_all(&[sender(&db, &fake, 20, 2, "twoa", stop_at), sender(&db, &fake, 20, 2, "twob", stop_at)]);
    let arrivals = fake.timeline().arrivals;
    let first = arrivals.first().expect("requests").at;
    judge("2 senders at --rate 20", &arrivals, 20, 2, first + Duration::from_millis(500), end);
    let (a, b) = (postings_of(&arrivals, "twoa"), postings_of(&arrivals, "twob"));
    assert!(a.min(b) * 3 >= (a + b), "each sender had a fair part: {a} and {b}");
}

#[test]
fn four_senders_at_rate_100_share_it() {
    let db = journal();
    let fake = gateway();
    let stop_at = unix_ms_in(Duration::from_secs(3));
    let end = instant_of(stop_at);
    let senders: Vec<Sender> =
        ["foura", "fourb", "fourc", "fourd"].iter().map(|p| sender(&db, &fake, 100, 10, p, stop_at)).collect();
    run_all(&senders);
    let arrivals = fake.timeline().arrivals;
    let first = arrivals.first().expect("requests").at;
    judge("4 senders at --rate 100", &arrivals, 100, 10, first + Duration::from_millis(500), end);
    for p in ["foura", "fourb", "fourc", "fourd"] {
        assert!(postings_of(&arrivals, p) >= 30, "{p} sent only {}", postings_of(&arrivals, p));
    }
}

/// Two operating-system processes: this test binary started twice more, each as one sender.
#[test]
fn two_processes_share_one_budget() {
    if let Some(me) = Sender::from_env() {
        run_sender(&me);
        return;
    }
    let db = journal();
    let fake = gateway();
    let stop_at = unix_ms_in(Duration::from_secs(4));
    let end = instant_of(stop_at);
    let args = ["--exact", "team_budget::two_processes_share_one_budget", "--nocapture"];
    let children: Vec<_> =
        ["proca", "procb"].iter().map(|p| spawn_sender(&args, &sender(&db, &fake, 100, 5, p, stop_at))).collect();
    for mut c in children {
        assert!(c.wait().expect("wait for a sender").success(), "a sender process failed");
    }
    let arrivals = fake.timeline().arrivals;
    let both = first_of(&arrivals, "proca").max(first_of(&arrivals, "procb")).expect("both sent");
    judge("2 processes at --rate 100", &arrivals, 100, 5, both + Duration::from_millis(300), end);
    let (a, b) = (postings_of(&arrivals, "proca"), postings_of(&arrivals, "procb"));
    assert!(a.min(b) * 3 >= (a + b), "each process had a fair part: {a} and {b}");
}

/// A sender that joins while another sends queues behind it: it brings no burst of its own.
#[test]
fn a_late_joiner_brings_no_burst_of_its_own() {
    let db = journal();
    let fake = gateway();
    let stop_at = unix_ms_in(Duration::from_millis(4500));
    let end = instant_of(stop_at);
    let first = sender(&db, &fake, 20, 5, "early", stop_at);
    let late = sender(&db, &fake, 20, 5, "late", stop_at);
    let a = std::thread::spawn(move || run_sender(&first));
    std::thread::sleep(Duration::from_millis(1500));
    let b = std::thread::spawn(move || run_sender(&late));
    a.join().expect("early sender");
    b.join().expect("late sender");
    let arrivals = fake.timeline().arrivals;
    let start = arrivals.first().expect("requests").at;
    let joined = first_of(&arrivals, "late").expect("the late sender sent");
    judge(
        "an early and a late sender at --rate 20, burst 5",
        &arrivals,
        20,
        5,
        start + Duration::from_millis(500),
        end,
    );
    // Past the first sender's own burst at the start, no window holds more than the rate (and
    // one request of jitter): the late sender's arrival added none.
    let after_start = busiest(&arrivals, Some(start + Duration::from_millis(500)));
    assert!(after_start <= 21, "{after_start} requests within one second after the start");
    let around_join = busiest(&arrivals, Some(joined - Duration::from_millis(1000)));
    eprintln!("busiest window from a second before the late sender's first request: {around_join}");
    assert!(around_join <= 21, "{around_join} requests within one second around the join");
    let used = rate_between(&arrivals, joined + Duration::from_millis(200), end) / 20.0;
    assert!(used >= 0.9, "{used:.3} of the rate used after the join");
    assert!(postings_of(&arrivals, "late") >= 15, "the late sender got its part");
}

/// A sender process killed mid-way leaves the schedule at most ~50 ms ahead (what it had
/// reserved): the next sender runs at the full rate at once.
#[test]
fn a_killed_sender_leaves_at_most_what_it_reserved() {
    if let Some(me) = Sender::from_env() {
        run_sender(&me);
        return;
    }
    let db = journal();
    let fake = gateway();
    let args = ["--exact", "team_budget::a_killed_sender_leaves_at_most_what_it_reserved", "--nocapture"];
    let mut child = spawn_sender(&args, &sender(&db, &fake, 100, 1, "doomed", unix_ms_in(Duration::from_secs(60))));
    let waited = Instant::now();
    while fake.timeline().requests < 100 {
        assert!(waited.elapsed() < Duration::from_secs(20), "the sender process does not send");
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().expect("kill the sender process");
    let _ = child.wait();
    let mut store = db.store();
    let rows = store
        .query(
            "SELECT CAST(EXTRACT(EPOCH FROM (next_at - clock_timestamp())) * 1000000 AS BIGINT) AS ahead_us FROM rate_budget",
            &[],
        )
        .expect("read the budget");
    assert_eq!(rows.len(), 1, "one merchant, one row");
    let ahead_ms = rows[0].get::<i64>("ahead_us").expect("ahead_us") as f64 / 1000.0;
    eprintln!("the killed sender left the schedule {ahead_ms:.1} ms ahead");
    assert!(ahead_ms <= 55.0, "the killed sender had reserved {ahead_ms:.1} ms ahead");
    // The next sender: at the full rate from its start.
    let stop_at = unix_ms_in(Duration::from_secs(3));
    let end = instant_of(stop_at);
    run_sender(&sender(&db, &fake, 100, 1, "next", stop_at));
    let arrivals: Vec<Arrival> = fake.timeline().arrivals.into_iter().filter(|a| a.id.starts_with("next")).collect();
    let first = arrivals.first().expect("the next sender sent").at;
    let used = rate_between(&arrivals, first, end) / 100.0;
    eprintln!("the next sender used {used:.3} of the rate from its first posting");
    assert!(used >= 0.9, "the next sender used only {used:.3} of the rate");
}

/// While the database is gone nothing is sent (beyond what was reserved, ~50 ms); when it is back
/// the sender goes on by itself.
#[test]
fn no_database_no_turn() {
    let cluster = PrivateCluster::new();
    let db = cluster.test_db();
    migrate(&mut db.store(), "the test database").expect("migrate");
    let fake = gateway();
    let stop_at = unix_ms_in(Duration::from_secs(7));
    let s = sender(&db, &fake, 50, 1, "outage", stop_at);
    let t = std::thread::spawn(move || run_sender(&s));
    let waited = Instant::now();
    while fake.timeline().requests < 40 {
        assert!(waited.elapsed() < Duration::from_secs(20), "the sender does not send");
        std::thread::sleep(Duration::from_millis(10));
    }
    cluster.stop();
    let stopped = Instant::now();
    std::thread::sleep(Duration::from_millis(1500));
    let restarting = Instant::now();
    cluster.start();
    let sent = t.join().expect("sender");
    let arrivals = fake.timeline().arrivals;
    let during = arrivals.iter().filter(|a| a.at > stopped + Duration::from_millis(100) && a.at < restarting).count();
    let back = arrivals.iter().map(|a| a.at).find(|&at| at >= restarting);
    eprintln!(
        "database down {:.1} s: {during} requests meanwhile; first request {:?} after the restart began; budget {:?}",
        (restarting - stopped).as_secs_f64(),
        back.map(|b| b - restarting),
        sent.stats
    );
    assert_eq!(during, 0, "requests went out while the database was down");
    let back = back.expect("the sender went on once the database was back");
    assert!(back - restarting < Duration::from_secs(4), "the sender took {:?} to go on", back - restarting);
    assert!(sent.stats.lost >= 1, "{:?}", sent.stats);
    drop(db);
}

/// The budget works for a role of the sender group (the grant of migration 1), names the merchant
/// by a hash only, and a role without the grant is refused when it connects, not by a run that
/// never sends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sender_role_may_reserve_and_the_merchant_is_a_hash() {
    let db = journal();
    let sender = db.create_login_role("sender", "sender password");
    let outsider = db.create_login_role("outsider", "outsider password");
    db.store().execute_batch(&format!("GRANT payrun_sender TO {sender}")).expect("grant");
    let creds = example_credentials();
    let key = MerchantKey::of(&creds);
    let url = |role: &str, pw: &str| JournalUrl::parse(&db.url_as(role, pw)).expect("url");
    let budget =
        SharedBudget::connect(&url(&sender, "sender password"), key.clone(), Pace::new(50, 1)).await.expect("budget");
    let t0 = Instant::now();
    for _ in 0..10 {
        budget.turn().await;
    }
    let took = t0.elapsed();
    assert!(took >= Duration::from_millis(170), "10 turns at 50/s took {took:?}");
    let rows = db.store().query("SELECT merchant FROM rate_budget", &[]).expect("read");
    let merchant = rows[0].get::<String>("merchant").expect("merchant");
    assert_eq!(merchant, key.as_str());
    assert!(!merchant.contains(creds.access_key.expose()) && !merchant.contains(&creds.client_id));
    let e =
        SharedBudget::connect(&url(&outsider, "outsider password"), key, Pace::new(50, 1)).await.expect_err("no grant");
    assert!(e.to_string().contains("permission denied"), "{e}");
    drop(budget);
    drop(db);
}

/// Requests that give up waiting (a stop signal cancels them) leave nothing waiting: the budget
/// reserves nothing more while nobody waits, and still paces the next requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_waits_leave_nothing_behind() {
    let db = journal();
    let key = MerchantKey::from_parts("access key", "abandoned");
    let budget = SharedBudget::connect(&db.journal_url(), key, Pace::new(10, 1)).await.expect("budget");
    let mut waits = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let b = budget.clone();
        waits.spawn(async move { tokio::time::timeout(Duration::from_millis(30), b.turn()).await.is_ok() });
    }
    let mut turned = 0;
    while let Some(r) = waits.join_next().await {
        turned += usize::from(r.expect("wait"));
    }
    assert_eq!(turned, 1, "at --rate 10, burst 1, one request of twenty gets a turn within 30 ms");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let idle = budget.stats();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(budget.stats().reserved, idle.reserved, "nothing reserved while nobody waits: {idle:?}");
    assert!(idle.reserved <= 3, "only what the waits needed soon was reserved: {idle:?}");
    let t0 = Instant::now();
    for _ in 0..3 {
        budget.turn().await;
    }
    let took = t0.elapsed();
    assert!(took >= Duration::from_millis(190) && took < Duration::from_millis(600), "3 turns at 10/s took {took:?}");
    drop(budget);
    drop(db);
}

/// Two `payrun resume` processes, each driving its own approved batch for the same merchant at
/// `--rate 100 --burst 5`, through the team journal: together within the one rate, and using it.
#[test]
fn two_payrun_processes_share_one_budget() {
    let db = journal();
    let fake = gateway();
    let (maker, checker, sender) = (
        db.member_url("maker", "payrun_maker"),
        db.member_url("checker", "payrun_checker"),
        db.member_url("sender", "payrun_sender"),
    );
    let work = Work::new();
    let batches: Vec<String> = ["A", "B"]
        .iter()
        .enumerate()
        .map(|(k, tag)| {
            let file = work.path().join(format!("pay-{tag}.csv"));
            let mut text = String::from("Employee ID,Beneficiary Name,Account No,IFSC Code,Amount,Payment Mode\n");
            for i in 1..=150 {
                text.push_str(&format!("E{tag}{i},Payee {tag} {i},5{k}{i:08}00,SBIN0000001,{}.00,IMPS\n", 1000 + i));
            }
            std::fs::write(&file, text).expect("input");
            let stored =
                exec(operator(&work, &["run", &s(&file), "--journal", &maker, "--gateway", &fake.url, "--yes"]));
            stored.expect_code(2, "the maker stores the batch");
            let said = unwrapped(&stored.stderr);
            let id = said
                .split("batch ")
                .find_map(|rest| rest.split_once(" is stored and AWAITING_APPROVAL").map(|(id, _)| id.to_string()))
                .unwrap_or_else(|| panic!("no batch id in:\n{said}"));
            exec(operator(&work, &["approve", &id, "--batch", "--reason", "checked", "--journal", &checker]))
                .expect_code(0, "the checker approves");
            id
        })
        .collect();
    assert_eq!(fake.timeline().requests, 0, "nothing was sent before approval");
    let senders: Vec<_> = batches
        .iter()
        .map(|id| {
            operator(
                &work,
                &["resume", id, "--journal", &sender, "--gateway", &fake.url, "--yes", "--rate", "100", "--burst", "5"],
            )
            .spawn()
            .expect("start payrun resume")
        })
        .collect();
    for c in senders {
        let o = c.wait_with_output().expect("payrun resume");
        assert_eq!(
            o.status.code(),
            Some(0),
            "payrun resume\nstdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let arrivals = fake.timeline().arrivals;
    assert_eq!(fake.ledger().len(), 300, "every row paid once");
    // While both processes post payouts: from the later first posting to the earlier last one.
    let posted = |id: &str| -> Vec<Instant> {
        arrivals.iter().filter(|a| a.call == "payout" && a.id.contains(id)).map(|a| a.at).collect()
    };
    let (a, b) = (posted(&batches[0]), posted(&batches[1]));
    assert!(!a.is_empty() && !b.is_empty(), "both processes posted (references name their batch)");
    let both_from = a[0].max(b[0]);
    let both_to = a[a.len() - 1].min(b[b.len() - 1]);
    eprintln!("both processes posted for {:.2} s", (both_to - both_from).as_secs_f64());
    judge("2 payrun processes at --rate 100, burst 5", &arrivals, 100, 5, both_from, both_to);
}

/// `payrun ARGS` as a person of the team: the example credentials, and the operator left to the
/// database (team mode refuses a typed one).
fn operator(work: &Work, args: &[&str]) -> std::process::Command {
    let mut c = work.cmd_with_creds(args);
    c.env_remove("PAYRUN_OPERATOR");
    c
}

/// A shared pace that gives every turn at once and counts them.
#[derive(Debug, Default)]
struct CountingPace {
    turns: std::sync::atomic::AtomicU64,
}

impl SharedPace for CountingPace {
    fn turn(&self) -> Pin<Box<dyn Future<Output = Instant> + Send + '_>> {
        self.turns.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Box::pin(async { Instant::now() })
    }

    fn valid_for(&self) -> Duration {
        Duration::from_millis(40)
    }
}

/// The gateway client sends on a shared turn only while it is fresh: a request that could not
/// leave in time (the intent's commit took long) takes a new turn, so it cannot crowd the slots
/// after its own into one window.
#[test]
fn a_stale_turn_is_not_spent() {
    let fake = gateway();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(async {
        let pace = Arc::new(CountingPace::default());
        let mut options = ClientOptions::new(fake.url.clone());
        options.shared_pace = Some(pace.clone());
        options.rate = Some((1, 1));
        let client = GatewayClient::new(&options, example_credentials()).expect("client");
        let turns = || pace.turns.load(std::sync::atomic::Ordering::Relaxed);
        client.check_credentials().await.expect("token");
        assert_eq!(turns(), 1, "the token request took a turn of the shared pace (not the client's own limiter)");
        let fresh = client.wait_turn().await;
        client.payout(&payout("stale", 1), Some(fresh)).await;
        assert_eq!(turns(), 2, "a fresh turn is spent as it is");
        let old = client.wait_turn().await;
        tokio::time::sleep(Duration::from_millis(60)).await;
        client.payout(&payout("stale", 2), Some(old)).await;
        assert_eq!(turns(), 4, "a stale turn is replaced by a fresh one");
        assert_eq!(fake.ledger().len(), 2);
    });
}
