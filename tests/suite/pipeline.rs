//! End-to-end tests of the library: input → journal → engine → report, against the sandbox over
//! loopback HTTP. The ledger of the sandbox is the ground truth every result is compared with.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use payrun::config::example_credentials;
use payrun::engine::{self, EngineConfig, Stop, progress::Silent};
use payrun::gateway::GatewayClient;
use payrun::gateway::client::ClientOptions;
use payrun::journal::{Batch, Journal};
use payrun::report;
use payrun::sandbox::{Ledger, Profile, RunningSandbox, SandboxOptions};
use payrun::shutdown::Shutdown;

fn samples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("samples")
}

struct World {
    _dir: tempfile::TempDir,
    journal: Journal,
    sandbox: RunningSandbox,
    client: Arc<GatewayClient>,
    state: PathBuf,
}

async fn world(profile: Profile, tweak: impl FnOnce(&mut SandboxOptions), timeout: Duration) -> World {
    let dir = tempfile::tempdir().expect("tmp");
    let state = dir.path().join("state");
    let journal = Journal::open(&state).expect("journal");
    let mut opts = SandboxOptions::new(profile, 7);
    tweak(&mut opts);
    let latency = Some(opts.knobs.latency);
    let sandbox = RunningSandbox::start(opts, ([127, 0, 0, 1], 0).into(), latency, None).await.expect("sandbox");
    let mut o = ClientOptions::new(sandbox.url());
    o.timeout = timeout;
    o.rate = Some((2000, 200));
    o.pool = 32;
    let client = Arc::new(GatewayClient::new(&o, example_credentials()).expect("client"));
    World { _dir: dir, journal, sandbox, client, state }
}

fn store(w: &World, file: &Path) -> Batch {
    crate::support::input::store(&w.journal, file)
}

fn fast_config() -> EngineConfig {
    EngineConfig {
        concurrency: Some(16),
        poll_timeout: Duration::from_secs(15),
        first_poll: Duration::from_millis(100),
        pending_poll: Duration::from_millis(200),
        max_poll_interval: Duration::from_millis(500),
        resend_grace: Duration::from_millis(600),
        ..EngineConfig::default()
    }
}

/// The result file as (reference → (status, code, amount, utr)), and in file order.
fn result(
    w: &World,
    batch: &Batch,
) -> (HashMap<String, (String, String, String, String)>, Vec<HashMap<String, String>>) {
    let out = w.state.join("result.csv");
    report::write_result(&w.journal, batch, &out).expect("result");
    let mut rdr = csv::Reader::from_path(&out).expect("read");
    let headers = rdr.headers().expect("headers").clone();
    let mut by_ref = HashMap::new();
    let mut rows = Vec::new();
    for rec in rdr.records() {
        let rec = rec.expect("record");
        let row: HashMap<String, String> =
            headers.iter().zip(rec.iter()).map(|(h, v)| (h.to_string(), v.to_string())).collect();
        by_ref.insert(
            row["external_ref"].clone(),
            (row["status"].clone(), row["code"].clone(), String::new(), row["utr"].clone()),
        );
        rows.push(row);
    }
    (by_ref, rows)
}

fn ledger_by_ref(l: &Ledger) -> HashMap<String, payrun::sandbox::LedgerEntry> {
    l.payouts.iter().filter(|p| !p.foreign).map(|p| (p.reference.clone(), p.clone())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_profile_pays_every_row_once() {
    let w = world(Profile::Clean, |_| {}, Duration::from_secs(5)).await;
    let batch = store(&w, &samples().join("salary-2026-11.csv"));
    let out = engine::run(&w.journal, &batch, w.client.clone(), fast_config(), Shutdown::new(), &mut Silent)
        .await
        .expect("run");
    assert_eq!(out.stop, Stop::Finished);
    let (by_ref, rows) = result(&w, &batch);
    assert_eq!(rows.len(), 200);
    assert!(rows.iter().all(|r| r["status"] == "SUCCESS"), "every row paid");
    // Rows keep the input order and their input columns.
    assert_eq!(rows[0]["Employee ID"], "EMP1001");
    assert_eq!(rows[199]["Employee ID"], "EMP1200");
    let ledger = ledger_by_ref(&w.sandbox.ledger());
    assert_eq!(ledger.len(), 200, "200 payouts applied, no more");
    for (r, (status, _, _, utr)) in &by_ref {
        let l = &ledger[r];
        assert_eq!((status.as_str(), l.state.as_str()), ("SUCCESS", "SUCCESS"));
        assert_eq!(Some(utr), l.utr.as_ref(), "UTR from the gateway");
        assert_eq!(l.times_applied, 1);
    }
    // The amounts paid are the file's amounts, to the paisa.
    let counts = w.journal.counts(&batch.id).expect("counts");
    let paid: payrun::money::Amount = ledger.values().map(|l| l.amount).sum();
    assert_eq!(paid, counts.total().amount);
    assert_eq!(paid, batch.valid.amount);
    // One status inquiry per payout on a gateway that settles at once.
    assert_eq!(out.stats.inquiries, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn realistic_profile_result_equals_ledger() {
    let w = world(
        Profile::Realistic,
        |o| {
            o.knobs.latency = (5, 30);
            o.knobs.settle_ms = (50, 400);
            o.knobs.long_pending_ms = (500, 1500);
        },
        Duration::from_secs(5),
    )
    .await;
    let batch = store(&w, &samples().join("vendors-2026-11.csv"));
    let out = engine::run(&w.journal, &batch, w.client.clone(), fast_config(), Shutdown::new(), &mut Silent)
        .await
        .expect("run");
    assert_eq!(out.stop, Stop::Finished);
    let (by_ref, rows) = result(&w, &batch);
    let ledger = ledger_by_ref(&w.sandbox.ledger());
    assert_eq!(ledger.len(), rows.len());
    for row in &rows {
        // The file's own references are used as they are.
        assert!(row["external_ref"].starts_with("INV-2026-11-"), "{row:?}");
        let l = &ledger[&row["external_ref"]];
        let (status, code, _, _) = &by_ref[&row["external_ref"]];
        assert_eq!(status, &l.state, "{}", row["external_ref"]);
        assert_eq!(code, &l.code);
    }
    assert!(rows.iter().any(|r| r["status"] == "FAILED") || rows.iter().all(|r| r["status"] == "SUCCESS"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_magic_account_ends_in_its_status_and_code() {
    let w = world(Profile::Clean, |_| {}, Duration::from_millis(800)).await;
    let batch = store(&w, &samples().join("sandbox-magic.csv"));
    let mut cfg = fast_config();
    cfg.poll_timeout = Duration::from_secs(4);
    cfg.request_timeout = Duration::from_millis(800);
    let out = engine::run(&w.journal, &batch, w.client.clone(), cfg, Shutdown::new(), &mut Silent).await.expect("run");
    assert_eq!(out.stop, Stop::PollTimeout, "one magic account is pending forever");
    let (_, rows) = result(&w, &batch);
    let got: HashMap<String, (String, String, String)> = rows
        .iter()
        .map(|r| {
            let key = format!("{}{}", r["Account Number"], if r["Reference"].is_empty() { "" } else { "/own" });
            (key, (r["status"].clone(), r["code"].clone(), r["attempts"].clone()))
        })
        .collect();
    let expect = [
        ("501002003004", "SUCCESS", "SU0000", "1"),
        ("999900000001", "FAILED", "BE1001", "1"),
        ("999900000002", "SUCCESS", "SU0000", "1"),
        ("999900000003", "PENDING", "", "1"),
        ("999900000004", "SUCCESS", "SU0000", "1"),
        ("999900000005", "SUCCESS", "SU0000", "1"),
        // 500 before applying: in doubt, unknown twice a grace apart, sent again with the same reference.
        ("999900000006", "SUCCESS", "SU0000", "2"),
        // TE0020 proves nothing by itself: asked, unknown twice, then FAILED TE0020, never resent.
        ("999900000007", "FAILED", "TE0020", "1"),
        // TE0005 on the first attempt, then a status naming another account: proof of a collision.
        ("999900000008/own", "FAILED", "REF_CONFLICT", "1"),
        // The answer was lost, and the status names another account: that may be the gateway
        // reading our reference as someone else's order id. Never FAILED: a person looks.
        ("999900000009", "PENDING", "PAYEE_MISMATCH", "1"),
        ("999900000010", "SUCCESS", "SU0000", "1"),
        ("999900000011", "SUCCESS", "SU0000", "1"),
        ("999900000012", "FAILED", "BE2002", "1"),
        // Applied, then reset; status lags 2 s, longer than the grace: two TE0011, a resend with the
        // same reference, TE0005 (the gateway has it), then the inquiry finds it. Paid once.
        ("999900000013", "SUCCESS", "SU0000", "2"),
        // Our own accepted payout, described by the gateway with another account: a person must
        // look at it. Never FAILED (money may have moved), never resent.
        ("999900000014", "PENDING", "PAYEE_MISMATCH", "1"),
        // Applied, then a 500 whose body says TE0020, or a plain TE0020: found by inquiry, paid once.
        ("999900000015", "SUCCESS", "SU0000", "1"),
        ("999900000016", "SUCCESS", "SU0000", "1"),
        // Status reports the amount plus charges: a person checks what was paid.
        ("999900000017", "PENDING", "AMOUNT_MISMATCH", "1"),
        // An earlier run (another journal) paid this row: a derived reference is this row's alone.
        ("999900000018", "SUCCESS", "SU0000", "1"),
        // ... but a file's own reference may have been reused: a person checks.
        ("999900000018/own", "PENDING", "REF_ALREADY_USED", "1"),
        ("999900000019", "PENDING", "PAYEE_MISMATCH", "1"),
    ];
    for (account, status, code, attempts) in expect {
        let (s, c, a) = &got[account];
        assert_eq!(s, status, "{account}");
        if !code.is_empty() {
            assert_eq!(c, code, "{account}");
        } else {
            assert!(c == "ENQ001" || c == "TE0009", "{account}: pending code {c}");
        }
        assert_eq!(a, attempts, "{account}");
    }
    // The ledger agrees, and the collision row's reference belongs to someone else's payout only.
    let ledger = w.sandbox.ledger();
    let ours = ledger_by_ref(&ledger);
    for r in &rows {
        match ours.get(&r["external_ref"]) {
            Some(l) => assert_eq!(l.account, r["Account Number"]),
            None => {
                assert!(
                    ["999900000007", "999900000008", "999900000009"].contains(&r["Account Number"].as_str()),
                    "{r:?}"
                )
            }
        }
    }
    assert!(ledger.payouts.iter().all(|p| p.times_applied == 1));
    let lagging = ledger.payouts.iter().find(|p| p.account == "999900000013").expect("applied");
    assert_eq!(lagging.duplicate_attempts, 1, "the resend was caught as a duplicate");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_credentials_stop_the_batch_and_leave_the_rest_resumable() {
    let w = world(Profile::Clean, |_| {}, Duration::from_secs(5)).await;
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("f.csv");
    let mut text = String::from("Name,Account,IFSC,Amount,Mode\n");
    for i in 0..30 {
        let account = if i == 10 { "999900000401".to_string() } else { format!("5000{i:08}") };
        text.push_str(&format!("Payee {i},{account},HDFC0000003,{},IMPS\n", 100 + i));
    }
    std::fs::write(&file, text).expect("write");
    let batch = store(&w, &file);
    let mut cfg = fast_config();
    cfg.concurrency = Some(1);
    let out = engine::run(&w.journal, &batch, w.client.clone(), cfg, Shutdown::new(), &mut Silent).await.expect("run");
    assert!(matches!(out.stop, Stop::CredentialsRefused(_)), "{:?}", out.stop);
    let (_, rows) = result(&w, &batch);
    let statuses: Vec<&str> = rows.iter().map(|r| r["status"].as_str()).collect();
    assert!(statuses[..10].iter().all(|s| *s == "SUCCESS" || *s == "PENDING"), "{statuses:?}");
    assert!(statuses[10..].iter().all(|s| *s == "NOT_SENT"), "{statuses:?}");
    let ledger = ledger_by_ref(&w.sandbox.ledger());
    assert_eq!(ledger.len(), 10, "nothing after the refusal was sent");
    // The refused row went back to ready, its attempt not counted.
    assert_eq!(rows[10]["attempts"], "0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_run_resumes_without_paying_twice() {
    let w = world(Profile::Clean, |o| o.knobs.latency = (20, 20), Duration::from_secs(5)).await;
    let batch = store(&w, &samples().join("salary-2026-11.csv"));
    let shutdown = Shutdown::new();
    let stopper = shutdown.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(150)).await;
        stopper.trigger();
    });
    let mut cfg = fast_config();
    cfg.concurrency = Some(4);
    let first =
        engine::run(&w.journal, &batch, w.client.clone(), cfg.clone(), shutdown, &mut Silent).await.expect("first");
    assert_eq!(first.stop, Stop::Interrupted);
    let counts = w.journal.counts(&batch.id).expect("counts");
    assert!(counts.open() > 0, "stopped midway");
    assert_eq!(counts.state(payrun::journal::RowState::Sending).count, 0, "nothing left in flight");
    let applied_before = w.sandbox.ledger().applied;
    let second =
        engine::run(&w.journal, &batch, w.client.clone(), cfg, Shutdown::new(), &mut Silent).await.expect("second");
    assert_eq!(second.stop, Stop::Finished);
    let ledger = w.sandbox.ledger();
    assert_eq!(ledger.applied, 200);
    assert_eq!(ledger.duplicate_attempts, 0, "nothing the gateway had was posted again");
    assert!(applied_before < 200);
    assert_eq!(second.stats.sends_started, 200 - applied_before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_that_knows_payouts_only_by_reference_still_settles_them() {
    let w = world(Profile::Clean, |o| o.knobs.status_by_reference_only = true, Duration::from_secs(5)).await;
    let batch = store(&w, &samples().join("vendors-2026-11.csv"));
    let out = engine::run(&w.journal, &batch, w.client.clone(), fast_config(), Shutdown::new(), &mut Silent)
        .await
        .expect("run");
    assert_eq!(out.stop, Stop::Finished);
    let (_, rows) = result(&w, &batch);
    assert!(rows.iter().all(|r| r["status"] == "SUCCESS"), "asked by order id, then by reference");
    assert!(out.stats.inquiries >= 2 * rows.len() as u64, "every first inquiry (by order id) was unknown");
    assert_eq!(w.sandbox.ledger().duplicate_attempts, 0, "an accepted payout is never sent again");
}

/// Issue 12: hung requests pile up (a tenth of postings hang before they are applied, a tenth are
/// applied and never answered, a tenth of inquiries hang, each held far past the client's timeout)
/// while the gateway's own limiter stands at exactly payrun's rate. Nothing is refused 429, so the
/// rate was never exceeded; more requests were in flight at the gateway than the concurrency limit
/// (the hung ones had stopped counting); every row is paid exactly once and ends SUCCESS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hung_requests_pile_up_and_the_rate_is_never_exceeded() {
    const RATE: u32 = 40;
    const LIMIT: usize = 4;
    let dir = tempfile::tempdir().expect("tmp");
    let state = dir.path().join("state");
    let journal = Journal::open(&state).expect("journal");
    let mut opts = SandboxOptions::new(Profile::Clean, 12);
    opts.knobs.latency = (5, 15);
    opts.knobs.post_hang_before = 100;
    opts.knobs.post_apply_then_timeout = 100;
    opts.knobs.status_hang = 100;
    opts.knobs.hang = Duration::from_secs(120);
    opts.rate_limit = Some(RATE);
    let latency = Some(opts.knobs.latency);
    let sandbox = RunningSandbox::start(opts, ([127, 0, 0, 1], 0).into(), latency, None).await.expect("sandbox");
    let timeout = Duration::from_secs(2);
    let mut o = ClientOptions::new(sandbox.url());
    o.timeout = timeout;
    o.rate = Some((RATE, RATE / 10));
    o.pool = 64;
    let client = Arc::new(GatewayClient::new(&o, example_credentials()).expect("client"));
    let w = World { _dir: dir, journal, sandbox, client, state };
    let file = w.state.join("hung.csv");
    let mut text = String::from("Name,Account,IFSC,Amount,Mode\n");
    for i in 0..100 {
        text.push_str(&format!("Payee {i},6100{i:08},HDFC0000003,{}.25,IMPS\n", 200 + i));
    }
    std::fs::write(&file, text).expect("write");
    let batch = store(&w, &file);
    let cfg = EngineConfig {
        concurrency: Some(LIMIT),
        rate: RATE,
        request_timeout: timeout,
        poll_timeout: Duration::from_secs(120),
        ..fast_config()
    };
    let out = engine::run(&w.journal, &batch, w.client.clone(), cfg, Shutdown::new(), &mut Silent).await.expect("run");
    assert_eq!(out.stop, Stop::Finished);
    let stats = w.sandbox.stats();
    assert_eq!(stats.rate_limited, 0, "the gateway's limiter at payrun's rate never refused a request: {stats:?}");
    assert!(stats.max_in_flight > LIMIT as u64, "hung requests piled up beyond the limit: {stats:?}");
    assert!(out.stats.stalled > 0 && out.stats.lost_answers > 0, "{:?}", out.stats);
    assert!(out.stats.resends > 0, "a posting hung before applying is sent again after two TE0011: {:?}", out.stats);
    let ledger = w.sandbox.ledger();
    assert_eq!(ledger.applied, 100);
    assert!(ledger.payouts.iter().all(|p| p.times_applied == 1));
    let (_, rows) = result(&w, &batch);
    assert!(rows.iter().all(|r| r["status"] == "SUCCESS"), "{rows:?}");
}
