//! Contract tests: the typed client against the sandbox over loopback HTTP, for every endpoint,
//! every profile and every magic account. Each test starts its own sandbox on an ephemeral port.

use std::time::{Duration, Instant};

use payrun::config::{Credentials, Secret, StatusVia, example_credentials};
use payrun::gateway::client::ClientOptions;
use payrun::gateway::{GatewayClient, PayeeMatch, PayoutOutcome, PayoutRequest, StatusOutcome, TokenOutcome};
use payrun::money::Amount;
use payrun::sandbox::{MAGIC_ACCOUNTS, Magic, Profile, RunningSandbox, SandboxOptions};
use serde_json::json;

async fn sandbox(profile: Profile, tweak: impl FnOnce(&mut SandboxOptions)) -> RunningSandbox {
    let mut opts = SandboxOptions::new(profile, 42);
    tweak(&mut opts);
    RunningSandbox::start(opts, ([127, 0, 0, 1], 0).into(), Some((0, 0)), None).await.expect("sandbox starts")
}

fn client_for(sb: &RunningSandbox, creds: Credentials, timeout: Duration) -> GatewayClient {
    let mut o = ClientOptions::new(sb.url());
    o.timeout = timeout;
    GatewayClient::new(&o, creds).expect("client builds")
}

fn client(sb: &RunningSandbox) -> GatewayClient {
    client_for(sb, example_credentials(), Duration::from_secs(2))
}

fn req(reference: &str, account: &str) -> PayoutRequest {
    PayoutRequest {
        amount: Amount::parse_cell("1,500.50").expect("amount"),
        name: "Ravi Kumar".into(),
        account: account.into(),
        ifsc: "SBIN0011243".into(),
        mode: "IMPS".into(),
        remarks: "Salary Nov".into(),
        external_ref: reference.into(),
        payee_list_id: String::new(),
        latitude: "19.07".into(),
        longitude: "72.87".into(),
    }
}

#[tokio::test]
async fn token_payout_duplicate_status_ledger_sequence() {
    let sb = sandbox(Profile::Clean, |_| {}).await;
    let c = client(&sb);
    assert!(matches!(c.request_token().await, TokenOutcome::Token { .. }));
    let first = c.payout(&req("SEQ-1", "39628544321"), None).await;
    let PayoutOutcome::Accepted { gateway_ref: Some(order), pending: false, .. } = first else {
        panic!("first posting: {first:?}");
    };
    assert!(matches!(c.payout(&req("SEQ-1", "39628544321"), None).await, PayoutOutcome::Duplicate { .. }));
    for via in [StatusVia::Payoutstatus, StatusVia::Verify] {
        for id in [order.as_str(), "SEQ-1"] {
            match c.status_with(via, id).await {
                StatusOutcome::Success { utr, payee, gateway_ref, .. } => {
                    assert!(utr.is_some_and(|u| !u.is_empty()));
                    assert_eq!(payee.matches("39628544321", "SBIN0011243", None), PayeeMatch::Same);
                    assert_eq!(gateway_ref.as_deref(), Some(order.as_str()));
                }
                other => panic!("{via:?} {id}: {other:?}"),
            }
        }
    }
    let ledger = sb.ledger();
    assert_eq!(ledger.applied, 1);
    let e = &ledger.payouts[0];
    assert_eq!((e.reference.as_str(), e.times_applied, e.duplicate_attempts), ("SEQ-1", 1, 1));
    assert_eq!(e.amount.to_string(), "1500.50");
    assert_eq!((e.state.as_str(), e.code.as_str()), ("SUCCESS", "SU0000"));
    // The ledger endpoint over HTTP says the same.
    let body: serde_json::Value =
        reqwest::get(format!("{}/__sandbox/ledger", sb.url())).await.expect("get").json().await.expect("json");
    assert_eq!(body["payouts"][0]["reference"], "SEQ-1");
    assert_eq!(body["payouts"][0]["times_applied"], 1);
    // One token served every call.
    assert_eq!(c.counts.token.load(std::sync::atomic::Ordering::Relaxed), 2);
    sb.stop().await;
}

#[tokio::test]
async fn unknown_reference_is_te0011_on_both_status_calls() {
    let sb = sandbox(Profile::Clean, |_| {}).await;
    let c = client(&sb);
    for via in [StatusVia::Payoutstatus, StatusVia::Verify] {
        assert!(matches!(c.status_with(via, "NEVER-SENT").await, StatusOutcome::UnknownReference { .. }), "{via:?}");
    }
}

#[tokio::test]
async fn wrong_credentials_are_refused_everywhere() {
    let sb = sandbox(Profile::Clean, |_| {}).await;
    let mut bad = example_credentials();
    bad.api_password = Secret::new("wrong");
    let c = client_for(&sb, bad, Duration::from_secs(2));
    assert!(matches!(c.request_token().await, TokenOutcome::Refused { code, .. } if code == "401"));
    assert!(matches!(c.payout(&req("CR-1", "39628544321"), None).await, PayoutOutcome::CredentialsRefused { .. }));
    assert!(matches!(c.status("CR-1").await, StatusOutcome::CredentialsRefused { .. }));
    // A missing header is the document's 400.
    let mut missing = example_credentials();
    missing.client_id = String::new();
    let c = client_for(&sb, missing, Duration::from_secs(2));
    assert!(
        matches!(c.request_token().await, TokenOutcome::Refused { code, message } if code == "400" && message.contains("Client Id"))
    );
    // Right token, wrong user id on the payout form: 401.
    let mut other_user = example_credentials();
    other_user.user_id = "999".into();
    let c = client_for(&sb, other_user, Duration::from_secs(2));
    assert!(matches!(c.payout(&req("CR-2", "39628544321"), None).await, PayoutOutcome::CredentialsRefused { .. }));
    assert_eq!(sb.ledger().applied, 0);
}

#[tokio::test]
async fn expired_token_is_refreshed_once_and_the_payout_goes_through() {
    let sb = sandbox(Profile::Clean, |o| o.knobs.token_ttl = Duration::from_millis(300)).await;
    let c = client(&sb);
    assert!(matches!(c.payout(&req("TTL-1", "39628544321"), None).await, PayoutOutcome::Accepted { .. }));
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(matches!(c.payout(&req("TTL-2", "39628544321"), None).await, PayoutOutcome::Accepted { .. }));
    assert!(matches!(c.status("TTL-1").await, StatusOutcome::Success { .. }));
    let tokens = c.counts.token.load(std::sync::atomic::Ordering::Relaxed);
    let payouts = c.counts.payout.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!((tokens, payouts), (2, 3), "second payout: TE0012, new token, posted again");
    assert_eq!(sb.ledger().applied, 2);
}

#[tokio::test]
async fn rate_limit_answers_429_without_a_body_and_applies_nothing() {
    let sb = sandbox(Profile::Clean, |o| o.rate_limit = Some(3)).await;
    let c = client(&sb);
    let mut not_sent = 0;
    let mut accepted = 0;
    for i in 0..12 {
        match c.payout(&req(&format!("RL-{i}"), "39628544321"), None).await {
            PayoutOutcome::NotSent { .. } => not_sent += 1,
            PayoutOutcome::Accepted { .. } => accepted += 1,
            other => panic!("{other:?}"),
        }
    }
    assert!(not_sent > 0, "some requests must be throttled");
    assert_eq!(sb.ledger().applied, accepted, "a throttled posting is never applied");
}

#[tokio::test]
async fn latency_is_applied() {
    let mut opts = SandboxOptions::new(Profile::Clean, 1);
    opts.knobs.latency = (0, 0);
    let sb = RunningSandbox::start(opts, ([127, 0, 0, 1], 0).into(), Some((80, 80)), None).await.expect("start");
    let c = client(&sb);
    let t = Instant::now();
    assert!(matches!(c.status("X").await, StatusOutcome::UnknownReference { .. }));
    assert!(t.elapsed() >= Duration::from_millis(160), "token + status, 80 ms each: {:?}", t.elapsed());
}

/// Drives one payout to a final answer the way the engine would (simplified: no journal).
async fn settle(c: &GatewayClient, reference: &str, limit: Duration) -> StatusOutcome {
    let deadline = Instant::now() + limit;
    loop {
        let s = c.status(reference).await;
        match &s {
            StatusOutcome::Success { .. } | StatusOutcome::FailedAtBank { .. } => return s,
            _ if Instant::now() > deadline => return s,
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

#[tokio::test]
async fn every_magic_account_behaves_as_listed() {
    let sb = sandbox(Profile::Clean, |_| {}).await;
    let c = client_for(&sb, example_credentials(), Duration::from_millis(700));
    for (account, magic, _) in MAGIC_ACCOUNTS {
        let r = format!("MAGIC-{account}");
        let first = c.payout(&req(&r, account), None).await;
        match magic {
            Magic::BankFailure => {
                assert!(matches!(first, PayoutOutcome::Accepted { .. }), "{account}: {first:?}");
                assert!(
                    matches!(settle(&c, &r, Duration::from_secs(5)).await, StatusOutcome::FailedAtBank { code, .. } if code == "BE1001")
                );
            }
            Magic::PendingThenSuccess => {
                assert!(matches!(first, PayoutOutcome::Accepted { .. }));
                for _ in 0..3 {
                    assert!(matches!(c.status(&r).await, StatusOutcome::Pending { .. }), "{account}");
                }
                assert!(matches!(c.status(&r).await, StatusOutcome::Success { .. }));
            }
            Magic::PendingForever => {
                assert!(matches!(first, PayoutOutcome::Accepted { .. }));
                for _ in 0..6 {
                    assert!(matches!(c.status(&r).await, StatusOutcome::Pending { .. }));
                }
            }
            Magic::ApplyThenTimeout | Magic::ApplyThenReset => {
                assert!(matches!(first, PayoutOutcome::Unknown { .. }), "{account}: {first:?}");
                // It was applied: status finds it, and a resend is a duplicate.
                assert!(matches!(c.status(&r).await, StatusOutcome::Success { .. }), "{account}");
                assert!(matches!(c.payout(&req(&r, account), None).await, PayoutOutcome::Duplicate { .. }));
            }
            Magic::ResetAndLaggingStatus => {
                assert!(matches!(first, PayoutOutcome::Unknown { .. }), "{account}: {first:?}");
                assert!(matches!(c.status(&r).await, StatusOutcome::UnknownReference { .. }));
                tokio::time::sleep(Duration::from_millis(2100)).await;
                assert!(matches!(c.status(&r).await, StatusOutcome::Success { .. }));
            }
            Magic::ServerErrorBeforeApply => {
                assert!(matches!(first, PayoutOutcome::Unknown { .. }), "{account}: {first:?}");
                assert!(matches!(c.status(&r).await, StatusOutcome::UnknownReference { .. }), "not applied");
                assert!(
                    matches!(c.payout(&req(&r, account), None).await, PayoutOutcome::Accepted { .. }),
                    "second try applies"
                );
            }
            Magic::RejectTe0020 => {
                assert!(matches!(first, PayoutOutcome::TechnicalFailure { .. }), "{first:?}");
                assert!(matches!(c.status(&r).await, StatusOutcome::UnknownReference { .. }));
            }
            Magic::ApplyThen500Refusal | Magic::ApplyThenTe0020 => {
                // A refusal code after the payout was applied: a 500's body is not read at all, and
                // TE0020 on a 200 proves nothing. The inquiry finds the payout.
                if *magic == Magic::ApplyThen500Refusal {
                    assert!(matches!(first, PayoutOutcome::Unknown { .. }), "{account}: {first:?}");
                } else {
                    assert!(matches!(first, PayoutOutcome::TechnicalFailure { .. }), "{account}: {first:?}");
                }
                match c.status(&r).await {
                    StatusOutcome::Success { payee, .. } => {
                        assert_eq!(payee.matches(account, "SBIN0011243", None), PayeeMatch::Same)
                    }
                    other => panic!("{account}: {other:?}"),
                }
            }
            Magic::StatusWithCharges => {
                assert!(matches!(first, PayoutOutcome::Accepted { .. }));
                match c.status(&r).await {
                    StatusOutcome::Success { payee, .. } => {
                        let ours = payrun::money::parse_plain("1500.50");
                        assert_eq!(payee.amount, payrun::money::parse_plain("1506.40"), "charges added");
                        assert_eq!(payee.matches(account, "SBIN0011243", ours), PayeeMatch::OtherAmount)
                    }
                    other => panic!("{other:?}"),
                }
            }
            Magic::AppliedByEarlierRun => {
                assert!(matches!(first, PayoutOutcome::Duplicate { .. }), "{first:?}");
                match c.status(&r).await {
                    StatusOutcome::Success { payee, .. } => {
                        assert_eq!(payee.matches(account, "SBIN0011243", None), PayeeMatch::Same)
                    }
                    other => panic!("{other:?}"),
                }
            }
            Magic::StatusByReferenceIsAnotherPayout => {
                assert!(matches!(first, PayoutOutcome::Unknown { .. }), "{first:?}");
                match c.status(&r).await {
                    StatusOutcome::Success { payee, .. } => {
                        assert_eq!(payee.matches(account, "SBIN0011243", None), PayeeMatch::OtherAccount)
                    }
                    other => panic!("{other:?}"),
                }
            }
            Magic::ReferenceCollision | Magic::CollisionAnswerLost => {
                if *magic == Magic::ReferenceCollision {
                    assert!(matches!(first, PayoutOutcome::Duplicate { .. }), "{first:?}");
                } else {
                    assert!(matches!(first, PayoutOutcome::Unknown { .. }), "{first:?}");
                }
                match c.status(&r).await {
                    StatusOutcome::Success { payee, .. } => {
                        assert_eq!(payee.matches(account, "SBIN0011243", None), PayeeMatch::OtherAccount)
                    }
                    other => panic!("{other:?}"),
                }
            }
            Magic::StatusOtherAccount => {
                assert!(matches!(first, PayoutOutcome::Accepted { .. }));
                match c.status(&r).await {
                    StatusOutcome::Success { payee, .. } => {
                        assert_eq!(payee.matches(account, "SBIN0011243", None), PayeeMatch::OtherAccount)
                    }
                    other => panic!("{other:?}"),
                }
            }
            Magic::RateLimitedFirst => {
                assert!(matches!(first, PayoutOutcome::NotSent { retry_after: Some(_), .. }), "{first:?}");
                assert!(matches!(c.payout(&req(&r, account), None).await, PayoutOutcome::Accepted { .. }));
            }
            Magic::TokenInvalidFirst => {
                // The client refreshed the token once and posted again.
                assert!(matches!(first, PayoutOutcome::Accepted { .. }), "{first:?}");
            }
            Magic::PendingThenBankFailure => {
                assert!(matches!(first, PayoutOutcome::Accepted { pending: true, .. }), "{first:?}");
                assert!(matches!(c.status(&r).await, StatusOutcome::Pending { .. }));
                assert!(matches!(c.status(&r).await, StatusOutcome::Pending { .. }));
                assert!(matches!(c.status(&r).await, StatusOutcome::FailedAtBank { code, .. } if code == "BE2002"));
            }
            Magic::CredentialsRefused => {
                assert!(matches!(first, PayoutOutcome::CredentialsRefused { .. }), "{first:?}");
            }
        }
    }
    // Nothing was applied twice, and the refused ones were not applied at all.
    let ledger = sb.ledger();
    assert!(ledger.payouts.iter().all(|p| p.times_applied == 1));
    for refused in ["999900000007", "999900000401"] {
        assert!(!ledger.payouts.iter().any(|p| p.account == refused), "{refused} must not be applied");
    }
}

#[tokio::test]
async fn realistic_profile_settles_everything_and_ledger_agrees() {
    let sb = sandbox(Profile::Realistic, |o| {
        o.knobs.settle_ms = (50, 300);
        o.knobs.long_pending_ms = (300, 600);
        o.knobs.post_5xx_before = 0;
        o.knobs.status_5xx = 0;
    })
    .await;
    let c = client(&sb);
    let mut pending_at_posting = 0;
    for i in 0..60 {
        match c.payout(&req(&format!("RE-{i}"), &format!("5000000{i:05}")), None).await {
            PayoutOutcome::Accepted { pending, .. } => pending_at_posting += usize::from(pending),
            other => panic!("{other:?}"),
        }
    }
    let mut finals = std::collections::HashMap::new();
    for i in 0..60 {
        let r = format!("RE-{i}");
        let s = settle(&c, &r, Duration::from_secs(5)).await;
        let (state, code) = match s {
            StatusOutcome::Success { .. } => ("SUCCESS", "SU0000".to_string()),
            StatusOutcome::FailedAtBank { code, .. } => ("FAILED", code),
            other => panic!("{r}: {other:?}"),
        };
        finals.insert(r, (state, code));
    }
    let ledger = sb.ledger();
    assert_eq!(ledger.applied, 60);
    for p in &ledger.payouts {
        let (state, code) = &finals[&p.reference];
        assert_eq!((p.state.as_str(), &p.code), (*state, code), "{}", p.reference);
    }
    assert!(pending_at_posting > 0, "realistic answers some postings with ENQ001");
}

#[tokio::test]
async fn chaos_profile_injects_every_fault_and_never_applies_twice() {
    let sb = sandbox(Profile::Chaos, |o| {
        o.knobs.latency = (0, 0);
        o.knobs.token_ttl = Duration::from_millis(400);
    })
    .await;
    let c = client_for(&sb, example_credentials(), Duration::from_millis(300));
    let (mut unknown, mut not_sent, mut accepted) = (0, 0, 0);
    for i in 0..300 {
        let r = format!("CH-{i}");
        // Keep posting the same reference until the gateway has it or refuses it.
        for _ in 0..10 {
            match c.payout(&req(&r, &format!("6000000{i:05}")), None).await {
                PayoutOutcome::Accepted { .. } => {
                    accepted += 1;
                    break;
                }
                PayoutOutcome::Duplicate { .. } => break,
                PayoutOutcome::Unknown { .. } => unknown += 1,
                PayoutOutcome::NotSent { .. } => not_sent += 1,
                other => panic!("{other:?}"),
            }
        }
    }
    assert!(
        unknown > 10 && not_sent > 3 && accepted > 200,
        "unknown {unknown}, not sent {not_sent}, accepted {accepted}"
    );
    assert!(c.counts.token.load(std::sync::atomic::Ordering::Relaxed) >= 1);
    let ledger = sb.ledger();
    assert_eq!(ledger.applied, 300, "every reference applied exactly once");
    assert!(ledger.payouts.iter().all(|p| p.times_applied == 1));
    assert!(ledger.duplicate_attempts > 0, "lost answers were retried and caught as duplicates");
}

#[tokio::test]
async fn payin_and_pg_calls() {
    let sb = sandbox(Profile::Clean, |_| {}).await;
    let c = client(&sb);
    let r = c
        .payin(json!({"merchantTransactionId": "Atmoontest", "amount": "1.00", "payment_for": "test",
                      "payment_mode": "INTENT", "callback_url": "https://example.com/cb", "payer_vpa": "",
                      "customer_details": {"customer_email": "xyz@gmail.com", "customer_phone": "9999999999"}}))
        .await
        .expect("answer");
    assert!(r.ok, "{:?}", r.value);
    assert!(r.value["response"]["data"]["intent_url"].as_str().is_some_and(|u| u.starts_with("upi://pay")));
    let bad =
        c.payin(json!({"merchantTransactionId": "x", "amount": "1", "payment_mode": "COLLECT"})).await.expect("answer");
    assert!(!bad.ok);

    let fields = [
        ("name", "Tets Customer".to_string()),
        ("phone", "9193979193".to_string()),
        ("email", "test@gmail.com".to_string()),
        ("amount", "10.00".to_string()),
        ("redirect_url", "https://testapi.com/".to_string()),
    ];
    let init = c.pg_initiate(&fields).await.expect("answer");
    assert!(init.ok, "{:?}", init.value);
    let url = init.value["url"].as_str().expect("url");
    let token = url.rsplit('/').next().expect("token");
    let txn = init.value["transaction_id"].as_str().expect("txn");
    let pgref = init.value["pg_reference_no"].as_str().expect("pgref");
    // Nobody has paid yet: verify says so.
    let v = c.pg_verify(token, txn, pgref).await.expect("answer");
    assert_eq!(v.value["data"]["data"]["state"], "PENDING", "{:?}", v.value);
    assert_eq!(v.value["data"]["status"], false, "{:?}", v.value);
    // The payer pays on the page the url opens; then verify reports the payment.
    let http = reqwest::Client::new();
    let page = http.get(url).send().await.expect("page");
    assert_eq!(page.status().as_u16(), 200);
    assert!(page.text().await.expect("html").contains("SANDBOX"));
    let paid = http.post(format!("{url}/pay")).form(&[("action", "pay")]).send().await.expect("pay");
    assert_eq!(paid.status().as_u16(), 200);
    let v = c.pg_verify(token, txn, pgref).await.expect("answer");
    assert!(v.ok, "{:?}", v.value);
    assert_eq!(v.value["data"]["data"]["state"], "COMPLETED");
    assert_eq!(v.value["data"]["code"], "PAYMENT_SUCCESS");
    let wrong = c.pg_verify(token, "OTHER", pgref).await.expect("answer");
    assert!(!wrong.ok);
}

#[tokio::test]
async fn a_persisted_world_survives_a_restart() {
    let dir = tempfile::tempdir().expect("tmp");
    let opts = SandboxOptions::new(Profile::Clean, 3);
    let sb =
        RunningSandbox::start(opts.clone(), ([127, 0, 0, 1], 0).into(), None, Some(dir.path())).await.expect("start");
    let c = client(&sb);
    assert!(matches!(c.payout(&req("P-1", "39628544321"), None).await, PayoutOutcome::Accepted { .. }));
    sb.stop().await;
    let sb = RunningSandbox::start(opts, ([127, 0, 0, 1], 0).into(), None, Some(dir.path())).await.expect("restart");
    let c = client(&sb);
    assert!(matches!(c.payout(&req("P-1", "39628544321"), None).await, PayoutOutcome::Duplicate { .. }));
    assert!(matches!(c.payout(&req("P-2", "39628544321"), None).await, PayoutOutcome::Accepted { .. }));
    let ledger = sb.ledger();
    assert_eq!(ledger.applied, 2);
    assert_ne!(ledger.payouts[0].gateway_id, ledger.payouts[1].gateway_id, "order ids continue after a restart");
}

#[tokio::test]
async fn plain_http_is_refused_for_remote_hosts() {
    let o = ClientOptions::new("http://api.atmoondps.com");
    assert!(GatewayClient::new(&o, example_credentials()).is_err());
    let o = ClientOptions::new("https://api.atmoondps.com");
    assert!(GatewayClient::new(&o, example_credentials()).is_ok());
    let o = ClientOptions::new("http://localhost:9");
    assert!(GatewayClient::new(&o, example_credentials()).is_ok());
}

#[tokio::test]
async fn refused_connection_is_not_sent() {
    // Bind then drop a listener: nothing listens on that port any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let o = ClientOptions::new(format!("http://127.0.0.1:{port}"));
    let c = GatewayClient::new(&o, example_credentials()).expect("client");
    assert!(matches!(c.payout(&req("NS-1", "39628544321"), None).await, PayoutOutcome::NotSent { .. }));
    assert!(matches!(c.status("NS-1").await, StatusOutcome::NotSent { .. }));
}

/// The sandbox accepts what the document allows, not only what payrun sends: the token request's
/// credentials as parameters (the document's example posts them so), and the payout's fields as
/// multipart "Form-Data" (the document's word for them).
#[tokio::test]
async fn sandbox_takes_token_parameters_and_multipart_payout_fields() {
    let sb = sandbox(Profile::Clean, |_| {}).await;
    let http = reqwest::Client::new();
    let c = example_credentials();
    let form = [
        ("access_key", c.access_key.expose().to_string()),
        ("merchant_key", c.merchant_key.expose().to_string()),
        ("client_id", c.client_id.clone()),
        ("api_password", c.api_password.expose().to_string()),
    ];
    let answer: serde_json::Value = http
        .post(format!("{}/api/uat/merchant/getToken", sb.url()))
        .form(&form)
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("json");
    let token = answer["data"]["token"].as_str().expect("a token for credentials given as parameters").to_string();
    let boundary = "----payrunBoundary7MA4YWxkTrZu0gW";
    let fields = [
        ("amount", "1500.5"),
        ("user_id", c.user_id.as_str()),
        ("utoken", token.as_str()),
        ("Name", "Ravi Kumar"),
        ("accountNumber", "39628544321"),
        ("bankIfsc", "SBIN0011243"),
        ("payeeListId", ""),
        ("transferMode", "imps"),
        ("remarks", "Salary"),
        ("externalRef", "MP-1"),
        ("latitude", "19.07"),
        ("longitude", "72.87"),
    ];
    let mut body = String::new();
    for (k, v) in fields {
        body.push_str(&format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"));
    }
    body.push_str(&format!("--{boundary}--\r\n"));
    let answer = http
        .post(format!("{}/api/payoutapi", sb.url()))
        .header("content-type", format!("multipart/form-data; boundary={boundary}"))
        .body(body)
        .send()
        .await
        .expect("payout");
    let status = answer.status().as_u16();
    let text = answer.text().await.expect("body");
    assert!(
        matches!(payrun::gateway::wire::classify_payout(status, None, &text), PayoutOutcome::Accepted { .. }),
        "{status} {text}"
    );
    let ledger = sb.ledger();
    assert_eq!(ledger.applied, 1);
    assert_eq!(ledger.payouts[0].amount.to_string(), "1500.50");
}
