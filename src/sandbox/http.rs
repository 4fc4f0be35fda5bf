//! The sandbox's HTTP face: an accept loop that can reset a connection on purpose, and one dispatch
//! function that maps each path of SPEC sections 4 and 6.5 to a [`World`] method.
//!
//! A hand-written accept loop (instead of `axum::serve`) is what lets the chaos profile drop a
//! connection with a TCP reset *after* the payout was applied: each connection gets a kill switch
//! that a handler can pull, and the loop then closes the socket with `SO_LINGER` 0.
//!
//! The server reads requests the way the API document's own PHP samples send them (SPEC 7, last
//! paragraph): a malformed header line (`content_type : application/json`, a space before the
//! colon) is ignored instead of refused with hyper's bare 400; the four token credentials may come
//! as the document's `Authorization` headers ([`authorization_credentials`]); a payout posted as
//! JSON gets the document's TE0003 refusal saying the payout is a form; and the PG payment URL that
//! initiate returns opens a page to pay on. Every refusal the sandbox makes has a JSON body; only
//! the simulated faults (a 429 with no body, an HTML 5xx page, a reset) do not, on purpose.

use std::collections::HashMap;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tower::Service;

use super::profile::{dice, pick};
use super::world::{Headers, Reply, World};
use crate::config::Endpoints;
use crate::shutdown::Shutdown;

/// Pulled by a handler to reset its connection.
#[derive(Clone)]
struct ConnKill(Arc<Notify>);

/// Shared by every connection of one sandbox.
pub struct SandboxState {
    pub world: Mutex<World>,
    limiter: Option<DefaultDirectRateLimiter>,
    latency: (u64, u64),
    seed: u64,
    counter: AtomicU64,
    endpoints: Endpoints,
    /// API requests since the last stats reset, and the wall-clock time (Unix ms) of the first and
    /// last of them (0: none): what the benchmark measures the client by.
    calls: AtomicU64,
    first_ms: AtomicU64,
    last_ms: AtomicU64,
    /// Requests answered 429 by the rate limiter (`--rate-limit`): a client that keeps to the
    /// gateway's rate never sees one.
    limited: AtomicU64,
    /// API requests being handled now (a held answer included), and the most at once.
    in_flight: AtomicU64,
    max_in_flight: AtomicU64,
    /// When a reference was last posted for the first time (Unix ms), and the requests counted up to
    /// and including that posting: the end of a client's sending phase, and its work in it.
    last_new_reference_ms: AtomicU64,
    calls_at_last_new_reference: AtomicU64,
}

/// The sandbox's request counters (`GET /__sandbox/stats`; `POST` resets them), the instruments
/// the benchmark and the tests judge a client by.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Stats {
    pub requests: u64,
    /// Unix ms of the first and last API request (0: none).
    pub first_request_unix_ms: u64,
    pub last_request_unix_ms: u64,
    /// Requests refused with 429 by `--rate-limit`.
    pub rate_limited: u64,
    pub in_flight: u64,
    pub max_in_flight: u64,
    /// Unix ms of the last first posting of a reference, and the requests up to it (0: none yet).
    pub last_new_reference_unix_ms: u64,
    pub requests_to_last_new_reference: u64,
}

/// Counts a request in flight for as long as its handler lives (an answer held, a reset).
struct InFlight<'a>(&'a SandboxState);

impl<'a> InFlight<'a> {
    fn enter(state: &'a SandboxState) -> InFlight<'a> {
        let now = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        state.max_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(state)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl SandboxState {
    pub fn new(world: World, latency: (u64, u64)) -> SandboxState {
        let opts = world.options().clone();
        let limiter = opts
            .rate_limit
            .and_then(std::num::NonZeroU32::new)
            .map(|r| RateLimiter::direct(Quota::per_second(r).allow_burst(r)));
        SandboxState {
            world: Mutex::new(world),
            limiter,
            latency,
            seed: opts.seed,
            counter: AtomicU64::new(0),
            endpoints: Endpoints::default(),
            calls: AtomicU64::new(0),
            first_ms: AtomicU64::new(0),
            last_ms: AtomicU64::new(0),
            limited: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            max_in_flight: AtomicU64::new(0),
            last_new_reference_ms: AtomicU64::new(0),
            calls_at_last_new_reference: AtomicU64::new(0),
        }
    }

    /// The request counters as of now.
    pub fn stats(&self) -> Stats {
        Stats {
            requests: self.calls.load(Ordering::SeqCst),
            first_request_unix_ms: self.first_ms.load(Ordering::SeqCst),
            last_request_unix_ms: self.last_ms.load(Ordering::SeqCst),
            rate_limited: self.limited.load(Ordering::SeqCst),
            in_flight: self.in_flight.load(Ordering::SeqCst),
            max_in_flight: self.max_in_flight.load(Ordering::SeqCst),
            last_new_reference_unix_ms: self.last_new_reference_ms.load(Ordering::SeqCst),
            requests_to_last_new_reference: self.calls_at_last_new_reference.load(Ordering::SeqCst),
        }
    }

    /// Zeroes the counters (requests in flight stay counted, and the most at once restarts from them).
    fn reset_stats(&self) {
        for c in [&self.calls, &self.first_ms, &self.last_ms, &self.limited] {
            c.store(0, Ordering::SeqCst);
        }
        self.last_new_reference_ms.store(0, Ordering::SeqCst);
        self.calls_at_last_new_reference.store(0, Ordering::SeqCst);
        self.max_in_flight.store(self.in_flight.load(Ordering::SeqCst), Ordering::SeqCst);
    }

    /// The world, even if a handler panicked while holding it (the world stays consistent per call).
    pub fn world(&self) -> std::sync::MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Serves until `shutdown` triggers.
pub async fn serve(listener: TcpListener, state: Arc<SandboxState>, shutdown: Shutdown) {
    let router = axum::Router::new().fallback(dispatch).with_state(state);
    let mut http1 = hyper::server::conn::http1::Builder::new();
    // The document's token and PG samples send `content_type : application/json` (a space before
    // the colon, which HTTP forbids): hyper would answer that request with an empty 400. A real
    // gateway's front end (nginx, PHP) skips such a line; so does the sandbox (SPEC 7).
    http1.ignore_invalid_headers(true);
    loop {
        let accepted = tokio::select! {
            _ = shutdown.wait() => break,
            r = listener.accept() => r,
        };
        let Ok((stream, _)) = accepted else {
            // Out of file descriptors or similar: wait a little rather than spin.
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let dup = stream.as_fd().try_clone_to_owned().ok();
        let kill = Arc::new(Notify::new());
        let conn_kill = ConnKill(kill.clone());
        let router = router.clone();
        let svc = hyper::service::service_fn(move |mut req: axum::http::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(conn_kill.clone());
            let mut r = router.clone();
            async move { r.call(req).await }
        });
        let stop = shutdown.clone();
        let conn = http1.serve_connection(TokioIo::new(stream), svc);
        tokio::spawn(async move {
            tokio::select! {
                _ = conn => {}
                _ = kill.notified() => {
                    if let Some(fd) = &dup {
                        let _ = socket2::SockRef::from(fd).set_linger(Some(Duration::ZERO));
                    }
                }
                _ = stop.wait() => {}
            }
            drop(dup);
        });
    }
}

/// The request's headers by lower-case name, with the token credentials that its `Authorization`
/// headers carry added under their own names (a header of that name, when given, wins).
fn headers_of(h: &HeaderMap) -> Headers {
    let mut out = h
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_ascii_lowercase(), v.to_str().ok()?.to_string())))
        .collect::<HashMap<_, _>>();
    let values = h.get_all(header::AUTHORIZATION).iter().filter_map(|v| v.to_str().ok());
    for (name, value) in authorization_credentials(values) {
        out.entry(name.to_string()).or_insert(value);
    }
    out
}

/// The four token credentials, in the order the API document lists them.
const TOKEN_CREDENTIALS: [&str; 4] = ["access_key", "merchant_key", "client_id", "api_password"];

/// The token credentials in `Authorization` header values, the way the document's PHP samples
/// send them: one `Authorization` header per credential (`"Authorization: access_key"`, the name
/// standing for the value). Each value, or each comma-separated part of one, is read as
/// `NAME VALUE`, `NAME=VALUE` or `NAME: VALUE` (NAME one of [`TOKEN_CREDENTIALS`], any case, `-`
/// for `_`), or as a bare value, which takes the next credential in the document's order (the
/// sample with its placeholders replaced by the values). A part that is only a credential's name
/// (the placeholder left as it is) carries nothing; `Bearer` and `Basic` values are not these
/// credentials.
pub(crate) fn authorization_credentials<'a>(values: impl Iterator<Item = &'a str>) -> Vec<(&'static str, String)> {
    let credential = |name: &str| {
        let name = name.trim().to_ascii_lowercase().replace('-', "_");
        TOKEN_CREDENTIALS.into_iter().find(|c| *c == name)
    };
    let mut found = Vec::new();
    let mut bare = 0;
    for part in values.flat_map(|v| v.split(',')) {
        let part = part.trim();
        let lower = part.to_ascii_lowercase();
        if part.is_empty() || lower.starts_with("bearer ") || lower.starts_with("basic ") || credential(part).is_some()
        {
            continue;
        }
        let named = part
            .split_once([' ', '=', ':'])
            .and_then(|(name, value)| Some((credential(name)?, value.trim_start_matches([' ', '=', ':']).trim())));
        match named {
            Some((name, value)) if !value.is_empty() => found.push((name, value.to_string())),
            Some(_) => {}
            None => {
                if let Some(name) = TOKEN_CREDENTIALS.get(bare) {
                    found.push((*name, part.to_string()));
                }
                bare += 1;
            }
        }
    }
    found
}

/// Adds the form's fields to the headers where no header of that name was given (the document's
/// tables list the token credentials as parameters of the token and PG calls).
fn with_form_fields(mut h: Headers, fields: &[(String, String)]) -> Headers {
    for (k, v) in fields {
        h.entry(k.to_ascii_lowercase()).or_insert_with(|| v.clone());
    }
    h
}

/// Whether a body was sent as JSON (by its content type, or by its first character).
fn is_json(headers: &HeaderMap, body: &[u8]) -> bool {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    content_type.to_ascii_lowercase().contains("json")
        || body.iter().find(|b| !b.is_ascii_whitespace()).is_some_and(|b| matches!(b, b'{' | b'['))
}

/// A body's form fields: `application/x-www-form-urlencoded`, or `multipart/form-data` (the
/// document lists the payout's fields under "Form-Data", which is also what Postman calls
/// multipart, and PHP reads both alike).
fn form_of(headers: &HeaderMap, body: &[u8]) -> Option<Vec<(String, String)>> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if content_type.trim_start().to_ascii_lowercase().starts_with("multipart/form-data") {
        return multipart_fields(content_type, body);
    }
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body).ok()
}

/// The text fields of a `multipart/form-data` body; `None` when it cannot be read.
fn multipart_fields(content_type: &str, body: &[u8]) -> Option<Vec<(String, String)>> {
    let boundary = content_type
        .split(';')
        .find_map(|p| {
            let (k, v) = p.split_once('=')?;
            k.trim().eq_ignore_ascii_case("boundary").then(|| v.trim().trim_matches('"'))
        })
        .filter(|b| !b.is_empty())?;
    let text = String::from_utf8_lossy(body);
    let delimiter = format!("--{boundary}");
    let mut fields = Vec::new();
    for part in text.split(delimiter.as_str()).skip(1) {
        if part.starts_with("--") {
            break;
        }
        let part = part.strip_prefix("\r\n").unwrap_or(part);
        let (head, value) = part.split_once("\r\n\r\n")?;
        let name = head.lines().find_map(|line| {
            let (k, v) = line.split_once(':')?;
            if !k.trim().eq_ignore_ascii_case("content-disposition") {
                return None;
            }
            v.split(';').find_map(|p| {
                let (k, v) = p.split_once('=')?;
                k.trim().eq_ignore_ascii_case("name").then(|| v.trim().trim_matches('"').to_string())
            })
        })?;
        fields.push((name, value.strip_suffix("\r\n").unwrap_or(value).to_string()));
    }
    Some(fields)
}

async fn dispatch(
    State(state): State<Arc<SandboxState>>,
    kill: Option<Extension<ConnKill>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    if path == "/__sandbox/ledger" && method == Method::GET {
        let ledger = state.world().ledger();
        return axum::Json(ledger).into_response();
    }
    if path == "/__sandbox/tokens" && method == Method::GET {
        let tokens = state.world().issued_tokens();
        return axum::Json(json!({"tokens": tokens})).into_response();
    }
    if path == "/__sandbox/stats" {
        if method == Method::POST {
            state.reset_stats();
        }
        return axum::Json(state.stats()).into_response();
    }
    if path == "/__sandbox/health" {
        return axum::Json(json!({"ok": true})).into_response();
    }
    let now_ms =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(1);
    let _in_flight = InFlight::enter(&state);
    let call = state.calls.fetch_add(1, Ordering::SeqCst) + 1;
    let _ = state.first_ms.compare_exchange(0, now_ms, Ordering::SeqCst, Ordering::SeqCst);
    state.last_ms.fetch_max(now_ms, Ordering::SeqCst);
    if let Some(l) = &state.limiter {
        if l.check().is_err() {
            state.limited.fetch_add(1, Ordering::SeqCst);
            return render(Reply::Empty(429, Some(1)), None).await;
        }
    }
    let n = state.counter.fetch_add(1, Ordering::Relaxed);
    let (lo, hi) = state.latency;
    if hi > 0 {
        let ms = lo + pick(dice(state.seed, &[b"latency", &n.to_le_bytes()]), hi.saturating_sub(lo) + 1);
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let h = headers_of(&headers);
    let ep = &state.endpoints;
    let text = String::from_utf8_lossy(&body);
    let host = h.get("host").cloned().unwrap_or_else(|| "127.0.0.1".into());
    let bad_form = || Reply::Json(200, json!({"status": 0, "code": "TE0003", "message": "Invalid Request Format"}));
    let reply = if method == Method::POST && path == ep.token_path {
        // The document's token example posts the credentials as parameters too (its table lists
        // them as such): a header, when given, wins.
        let h = with_form_fields(h, &form_of(&headers, &body).unwrap_or_default());
        state.world().issue_token(&h)
    } else if method == Method::POST && path == ep.payout_path && is_json(&headers, &body) {
        // The document's payout is a form; a JSON body read as a form would lose every field and
        // be refused as "Invalid API credentials", which sends an integrator the wrong way.
        Reply::Json(
            200,
            json!({"status": 0, "code": "TE0003", "message": format!(
                "Invalid Request Format: the payout is a form POST (application/x-www-form-urlencoded or multipart/form-data) with the fields {}, not JSON",
                PAYOUT_FIELDS.join(", "))}),
        )
    } else if method == Method::POST && path == ep.payout_path {
        match form_of(&headers, &body) {
            Some(f) => {
                let mut world = state.world();
                let before = world.references_posted();
                let reply = world.post_payout(&f);
                if world.references_posted() > before {
                    state.last_new_reference_ms.fetch_max(now_ms, Ordering::SeqCst);
                    state.calls_at_last_new_reference.fetch_max(call, Ordering::SeqCst);
                }
                reply
            }
            None => bad_form(),
        }
    } else if method == Method::POST && path == ep.status_path {
        state.world().at_moon_payout(&h, &text)
    } else if let Some(reference) = path.strip_prefix("/payout/status/") {
        let reference = percent_decode(reference);
        state.world().verify(&h, &reference)
    } else if method == Method::POST && path == ep.pg_initiate_path {
        match form_of(&headers, &body) {
            Some(f) => state.world().pg_initiate(&with_form_fields(h, &f), &f, &host),
            None => bad_form(),
        }
    } else if let Some(token) = path.strip_prefix("/pg/payment/").and_then(|r| r.strip_suffix("/response")) {
        match form_of(&headers, &body) {
            Some(f) => state.world().pg_verify(&with_form_fields(h, &f), token, &f),
            None => bad_form(),
        }
    } else if let Some(token) = path.strip_prefix("/pg/payment/").and_then(|r| r.strip_suffix("/pay")) {
        // The payer's button on the PG page (a person, not the merchant: no credentials).
        match (method == Method::POST).then(|| form_of(&headers, &body)).flatten() {
            Some(f) => state.world().pg_pay(token, &f),
            None => Reply::Json(405, json!({"status": false, "message": "the payment page posts its form here"})),
        }
    } else if let Some(token) = path.strip_prefix("/pg/payment/").filter(|t| !t.is_empty() && !t.contains('/')) {
        // The PG payment URL that initiate returned: the page a payer opens.
        state.world().pg_page(token)
    } else {
        Reply::Json(404, json!({"status": false, "message": format!("no such endpoint: {method} {path}")}))
    };
    render(reply, kill.map(|Extension(k)| k)).await
}

/// The payout form's fields, as the document lists them.
const PAYOUT_FIELDS: [&str; 12] = [
    "amount",
    "user_id",
    "utoken",
    "Name",
    "accountNumber",
    "bankIfsc",
    "payeeListId",
    "transferMode",
    "remarks",
    "externalRef",
    "latitude",
    "longitude",
];

fn percent_decode(s: &str) -> String {
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn render(reply: Reply, kill: Option<ConnKill>) -> Response {
    let mut reply = reply;
    loop {
        match reply {
            Reply::Json(code, v) => {
                let status = StatusCode::from_u16(code).unwrap_or(StatusCode::OK);
                return (status, axum::Json(v)).into_response();
            }
            Reply::Empty(code, retry) => {
                let status = StatusCode::from_u16(code).unwrap_or(StatusCode::TOO_MANY_REQUESTS);
                let mut r = Response::new(Body::empty());
                *r.status_mut() = status;
                if let Some(s) = retry {
                    if let Ok(v) = s.to_string().parse() {
                        r.headers_mut().insert(header::RETRY_AFTER, v);
                    }
                }
                return r;
            }
            Reply::Html(code, text) => {
                let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                return (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], text).into_response();
            }
            Reply::Delay(d, inner) => {
                tokio::time::sleep(d).await;
                reply = *inner;
            }
            Reply::Reset => {
                if let Some(k) = kill {
                    k.0.notify_one();
                }
                // The connection task drops us; never answer.
                std::future::pending::<()>().await;
                return Response::new(Body::empty());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::authorization_credentials;

    fn read(values: &[&str]) -> Vec<(&'static str, String)> {
        authorization_credentials(values.iter().copied())
    }

    #[test]
    fn authorization_headers_in_the_forms_of_the_document() {
        let want = vec![
            ("access_key", "AK".to_string()),
            ("merchant_key", "MK".to_string()),
            ("client_id", "61662".to_string()),
            ("api_password", "PW".to_string()),
        ];
        // One header per credential, named as the sample names them.
        assert_eq!(read(&["access_key AK", "merchant_key MK", "client_id 61662", "api_password PW"]), want);
        assert_eq!(read(&["access_key=AK, Merchant-Key: MK", "CLIENT_ID 61662", "api_password=PW"]), want);
        // The sample's placeholders replaced by the values, in the document's order.
        assert_eq!(read(&["AK", "MK", "61662", "PW"]), want);
        // The placeholders left as they are carry nothing; a bearer token is not these credentials.
        assert!(read(&["access_key", "merchant_key", "client_id", "api_password"]).is_empty());
        assert!(read(&["Bearer abc", "Basic Zm9vOmJhcg=="]).is_empty());
        assert!(read(&["access_key ", ""]).is_empty());
    }
}
