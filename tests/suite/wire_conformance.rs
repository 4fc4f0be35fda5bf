//! The gateway client against a gateway that is correct by the API document and the SPEC but is not
//! our sandbox: tokens that expire on the gateway's clock and are refused with HTTP 401/403 rather
//! than TE0012, `Retry-After` as an HTTP date, status answers shaped like the payout answer, short
//! tokens echoed back in messages, a base URL with a path prefix, a redirect, and answers framed the
//! old way (HTTP/1.0, closed to end the body) or chunked with a charset.
//!
//! Everything goes over loopback HTTP to `support::fake` (or, for framing, a few lines of raw TCP);
//! the client under test is payrun's own, unmocked. The fake's ledger judges what was applied.

use std::time::Duration;

use crate::support::fake::{FakeGateway, Quirks};
use payrun::config::{Endpoints, example_credentials};
use payrun::engine::reading::{Then, read_posting};
use payrun::gateway::client::ClientOptions;
use payrun::gateway::{GatewayClient, PayeeMatch, PayoutOutcome, PayoutRequest, StatusOutcome, TokenOutcome};
use payrun::money::Amount;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn client_at(base: &str) -> GatewayClient {
    let mut o = ClientOptions::new(base);
    o.timeout = Duration::from_secs(3);
    GatewayClient::new(&o, example_credentials()).expect("client builds")
}

fn req(reference: &str, account: &str) -> PayoutRequest {
    PayoutRequest {
        amount: Amount::parse_cell("1500.50").expect("amount"),
        name: "Ravi Kumar".into(),
        account: account.into(),
        ifsc: "SBIN0011243".into(),
        mode: "IMPS".into(),
        remarks: String::new(),
        external_ref: reference.into(),
        payee_list_id: String::new(),
        latitude: String::new(),
        longitude: String::new(),
    }
}

/// Drives the client on a runtime of the test's own (the fake has its own, started outside it).
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime").block_on(f)
}

/// The fake, started on its own runtime; the test's runtime drives the client.
fn fake(quirks: Quirks) -> FakeGateway {
    let f = FakeGateway::start();
    f.set_quirks(quirks);
    f
}

async fn expired_token_is_renewed(f: &FakeGateway, http: u16) {
    let c = client_at(&f.url);
    let first = c.payout(&req("EXP-1", "50000000100"), None).await;
    assert!(matches!(first, PayoutOutcome::Accepted { .. }), "{first:?}");
    tokio::time::sleep(Duration::from_millis(400)).await;
    // The cached token has expired on the gateway's clock: HTTP {http}, a fresh token, posted again.
    let second = c.payout(&req("EXP-2", "50000000200"), None).await;
    assert!(matches!(second, PayoutOutcome::Accepted { .. }), "HTTP {http}: {second:?}");
    tokio::time::sleep(Duration::from_millis(400)).await;
    let status = c.status("EXP-2").await;
    assert!(matches!(status, StatusOutcome::Success { .. }), "HTTP {http}: {status:?}");
    assert!(f.expired_answers() >= 2, "the gateway did refuse expired tokens");
    let ledger = f.ledger();
    assert_eq!(ledger.len(), 2);
    assert!(ledger.iter().all(|p| p.times_applied == 1));
}

fn expiring(http: u16) -> FakeGateway {
    fake(Quirks { token_ttl: Some(Duration::from_millis(300)), expired_http: http, ..Quirks::default() })
}

#[test]
fn an_expired_token_answered_http_401_is_renewed_and_the_call_made_again() {
    let f = expiring(401);
    block_on(expired_token_is_renewed(&f, 401));
}

#[test]
fn an_expired_token_answered_http_403_is_renewed_and_the_call_made_again() {
    let f = expiring(403);
    block_on(expired_token_is_renewed(&f, 403));
}

#[test]
fn a_posting_forbidden_even_with_a_fresh_token_is_in_doubt_and_stops_the_batch() {
    let f = fake(Quirks { forbid_postings: true, ..Quirks::default() });
    block_on(async {
        let c = client_at(&f.url);
        let outcome = c.payout(&req("FORB-1", "50000000100"), None).await;
        assert!(matches!(outcome, PayoutOutcome::Forbidden { .. }), "{outcome:?}");
        assert_eq!(f.tokens_issued(), 2, "one fresh token was tried");
        // Nothing in the document says a 403 comes before processing: in doubt, and the batch stops.
        let reading = read_posting(&outcome);
        assert_eq!(reading.event.name(), "lost");
        assert!(matches!(reading.then, Then::Stop(_)), "{:?}", reading.then);
        assert!(f.ledger().is_empty());
    });
}

#[test]
fn a_payout_applied_then_answered_unauthorised_is_in_doubt_not_a_first_attempt_duplicate() {
    let f = fake(Quirks { applied_then_401: true, ..Quirks::default() });
    block_on(async {
        let c = client_at(&f.url);
        let outcome = c.payout(&req("A401-1", "50000000100"), None).await;
        // The posting made again with a fresh token meets TE0005: the first one is the gateway's, so
        // the row is in doubt (its inquiry settles it), not rule 8's "duplicate on the first attempt".
        assert!(matches!(outcome, PayoutOutcome::Unknown { .. }), "{outcome:?}");
        let ledger = f.ledger();
        assert_eq!((ledger.len(), ledger[0].times_applied), (1, 1));
        assert!(matches!(c.status("A401-1").await, StatusOutcome::Success { .. }));
    });
}

#[test]
fn a_token_expiry_given_as_a_fraction_of_seconds_is_renewed_before_it_runs_out() {
    let f = fake(Quirks {
        token_ttl: Some(Duration::from_millis(1500)),
        expired_http: 401,
        expires_in: Some(1.5),
        ..Quirks::default()
    });
    block_on(async {
        let c = client_at(&f.url);
        assert!(matches!(c.payout(&req("FR-1", "50000000100"), None).await, PayoutOutcome::Accepted { .. }));
        tokio::time::sleep(Duration::from_millis(1300)).await;
        assert!(matches!(c.payout(&req("FR-2", "50000000200"), None).await, PayoutOutcome::Accepted { .. }));
        assert_eq!(f.expired_answers(), 0, "the token was renewed before the gateway's clock ran out");
        assert_eq!(f.tokens_issued(), 2);
    });
}

#[test]
fn retry_after_given_as_an_http_date_is_honoured() {
    let f = fake(Quirks { busy_postings: 1, busy_for_secs: 3, ..Quirks::default() });
    block_on(async {
        let c = client_at(&f.url);
        match c.payout(&req("BUSY-1", "50000000100"), None).await {
            PayoutOutcome::NotSent { retry_after: Some(d), .. } => {
                assert!(d >= Duration::from_secs(1) && d <= Duration::from_secs(3), "{d:?}")
            }
            other => panic!("{other:?}"),
        }
        assert!(f.ledger().is_empty());
        // The wire reading itself, at a fixed instant; a date already past is no wait at all.
        use payrun::gateway::wire::retry_after_at;
        let now = chrono::DateTime::parse_from_rfc3339("2015-10-21T07:27:30Z").expect("date").to_utc();
        assert_eq!(retry_after_at(Some("Wed, 21 Oct 2015 07:28:00 GMT"), now), Some(Duration::from_secs(30)));
        assert_eq!(retry_after_at(Some("Wed, 21 Oct 2015 07:27:00 GMT"), now), Some(Duration::ZERO));
        assert_eq!(retry_after_at(Some(" 7 "), now), Some(Duration::from_secs(7)));
        assert_eq!(retry_after_at(Some("soon"), now), None);
    });
}

#[test]
fn status_answers_shaped_like_the_payout_answer_name_their_payee() {
    let f = fake(Quirks { status_in_transaction: true, ..Quirks::default() });
    block_on(async {
        let c = client_at(&f.url);
        let PayoutOutcome::Accepted { gateway_ref: Some(order), .. } =
            c.payout(&req("TX-1", "50000000100"), None).await
        else {
            panic!("not accepted");
        };
        for id in [order.as_str(), "TX-1"] {
            match c.status(id).await {
                StatusOutcome::Success { utr, payee, gateway_ref, .. } => {
                    assert_eq!(payee.matches("50000000100", "SBIN0011243", None), PayeeMatch::Same, "{payee:?}");
                    assert!(utr.is_some_and(|u| u.starts_with("FAKEUTR")));
                    assert_eq!(gateway_ref.as_deref(), Some(order.as_str()));
                }
                other => panic!("{id}: {other:?}"),
            }
        }
    });
}

#[test]
fn short_tokens_echoed_by_the_gateway_never_reach_a_message_or_the_evidence() {
    let f = fake(Quirks { short_tokens_echoed: true, ..Quirks::default() });
    block_on(async {
        let c = client_at(&f.url);
        let token = "tk000001";
        // Account ..05: TE0020, nothing applied; the fake's message quotes the request's utoken.
        let (outcome, trace) = c.payout_traced(&req("ECHO-1", "50000000105"), None).await;
        assert!(matches!(outcome, PayoutOutcome::TechnicalFailure { .. }), "{outcome:?}");
        let (status, status_trace) = c.status_traced("NEVER-SENT", None).await;
        assert!(matches!(status, StatusOutcome::UnknownReference { .. }), "{status:?}");
        let all = format!("{outcome:?} {trace:?} {status:?} {status_trace:?}");
        assert!(all.contains("utoken"), "the gateway did echo something: {all}");
        assert!(!all.contains(token), "the token reached a message: {all}");
    });
}

#[test]
fn a_base_url_with_a_path_prefix_and_paths_without_a_leading_slash() {
    let f = fake(Quirks::default());
    block_on(async {
        let mut o = ClientOptions::new(format!("{}/gw/", f.url));
        o.endpoints = Endpoints {
            token_path: "api/uat/merchant/getToken".into(),
            payout_path: "api/payoutapi".into(),
            status_path: "/api/AtMoonPayout".into(),
            ..Endpoints::default()
        };
        let c = GatewayClient::new(&o, example_credentials()).expect("client");
        assert!(matches!(c.payout(&req("PFX-1", "50000000100"), None).await, PayoutOutcome::Accepted { .. }));
        assert!(matches!(c.status("PFX-1").await, StatusOutcome::Success { .. }));
        assert_eq!(f.ledger().len(), 1);
    });
}

/// A one-shot-per-connection HTTP server over raw TCP: `answer(request head)` gives the bytes.
async fn raw_server(answer: fn(&str) -> String) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                // Read the head, then the body by its Content-Length.
                loop {
                    let Ok(n) = tcp.read(&mut chunk).await else { return };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let len = head
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("content-length").then(|| v.trim().parse::<usize>().ok())?
                            })
                            .unwrap_or(0);
                        if body.len() >= len {
                            let _ = tcp.write_all(answer(head).as_bytes()).await;
                            let _ = tcp.shutdown().await;
                            return;
                        }
                    }
                }
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn a_redirect_of_the_token_request_is_a_refusal_that_says_what_to_fix() {
    let url = raw_server(|_| {
        "HTTP/1.1 301 Moved Permanently\r\nLocation: https://www.example.com/api/uat/merchant/getToken\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into()
    })
    .await;
    let c = client_at(&url);
    match c.request_token().await {
        TokenOutcome::Refused { code, message } => {
            assert_eq!(code, "301");
            assert!(message.contains("redirect"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    // Not "busy, try again" until the run gives up as unreachable: a refusal, which stops the batch.
    let outcome = c.payout(&req("RD-1", "50000000100"), None).await;
    assert!(matches!(outcome, PayoutOutcome::CredentialsRefused { .. }), "{outcome:?}");
}

#[tokio::test]
async fn answers_framed_by_http_1_0_close_or_chunks_with_a_charset_are_read() {
    let url = raw_server(|head| {
        let first = head.lines().next().unwrap_or("");
        if first.contains("getToken") {
            // HTTP/1.0, no Content-Length: the body ends when the connection closes.
            "HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{\"status\":true,\"data\":{\"token\":\"t1\"}}".into()
        } else if first.contains("payoutapi") {
            let body = "{\"status\":\"1\",\"message\":\"Success\",\"Transaction\":[{\"Order-Id\":77}]}";
            let (a, b) = body.split_at(20);
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=UTF-8\r\nTransfer-Encoding: chunked\r\nconnection: close\r\n\r\n{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
                a.len(),
                b.len()
            )
        } else {
            let body = "{\"status\":1,\"code\":\"SU0000\",\"message\":\"SUCCESS\",\"account_no\":\"50000000100\"}";
            format!(
                "HTTP/1.1 200 OK\r\nCONTENT-TYPE: text/json;charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
        }
    })
    .await;
    let c = client_at(&url);
    let outcome = c.payout(&req("FR-1", "50000000100"), None).await;
    assert!(matches!(&outcome, PayoutOutcome::Accepted { gateway_ref: Some(g), .. } if g == "77"), "{outcome:?}");
    match c.status("77").await {
        StatusOutcome::Success { payee, .. } => {
            assert_eq!(payee.matches("50000000100", "SBIN0011243", None), PayeeMatch::Same)
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_password_in_the_gateway_url_is_refused_and_never_shown() {
    for url in [
        "https://merchant:s3cretPassw0rd@api.atmoondps.com",
        "https://:s3cretPassw0rd@api.atmoondps.com/gw/",
        "http://merchant:s3cretPassw0rd@example.com",
        "https://merchant:s3cretPassw0rd@bad host/",
    ] {
        let err = GatewayClient::new(&ClientOptions::new(url), example_credentials()).expect_err(url);
        let text = err.to_string();
        assert!(!text.contains("s3cretPassw0rd"), "{text}");
        assert!(text.contains("***@"), "{text}");
    }
}
