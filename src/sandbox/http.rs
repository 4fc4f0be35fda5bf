//! The sandbox's HTTP face: an accept loop that can reset a connection on purpose, and one dispatch
//! function that maps each path of SPEC sections 4 and 6.5 to a [`World`] method.
//!
//! A hand-written accept loop (instead of `axum::serve`) is what lets the chaos profile drop a
//! connection with a TCP reset *after* the payout was applied: each connection gets a kill switch
//! that a handler can pull, and the loop then closes the socket with `SO_LINGER` 0.

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
        }
    }

    /// The world, even if a handler panicked while holding it (the world stays consistent per call).
    pub fn world(&self) -> std::sync::MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Serves until `shutdown` triggers.
pub async fn serve(listener: TcpListener, state: Arc<SandboxState>, shutdown: Shutdown) {
    let router = axum::Router::new().fallback(dispatch).with_state(state);
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
        tokio::spawn(async move {
            let conn = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc);
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

fn headers_of(h: &HeaderMap) -> Headers {
    h.iter()
        .filter_map(|(k, v)| Some((k.as_str().to_ascii_lowercase(), v.to_str().ok()?.to_string())))
        .collect::<HashMap<_, _>>()
}

fn form_of(body: &[u8]) -> Option<Vec<(String, String)>> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body).ok()
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
            state.calls.store(0, Ordering::SeqCst);
            state.first_ms.store(0, Ordering::SeqCst);
            state.last_ms.store(0, Ordering::SeqCst);
        }
        return axum::Json(json!({
            "requests": state.calls.load(Ordering::SeqCst),
            "first_request_unix_ms": state.first_ms.load(Ordering::SeqCst),
            "last_request_unix_ms": state.last_ms.load(Ordering::SeqCst),
        }))
        .into_response();
    }
    if path == "/__sandbox/health" {
        return axum::Json(json!({"ok": true})).into_response();
    }
    let now_ms =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(1);
    state.calls.fetch_add(1, Ordering::SeqCst);
    let _ = state.first_ms.compare_exchange(0, now_ms, Ordering::SeqCst, Ordering::SeqCst);
    state.last_ms.fetch_max(now_ms, Ordering::SeqCst);
    if let Some(l) = &state.limiter {
        if l.check().is_err() {
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
        state.world().issue_token(&h)
    } else if method == Method::POST && path == ep.payout_path {
        match form_of(&body) {
            Some(f) => state.world().post_payout(&f),
            None => bad_form(),
        }
    } else if method == Method::POST && path == ep.status_path {
        state.world().at_moon_payout(&h, &text)
    } else if let Some(reference) = path.strip_prefix("/payout/status/") {
        let reference = percent_decode(reference);
        state.world().verify(&h, &reference)
    } else if method == Method::POST && path == ep.pg_initiate_path {
        match form_of(&body) {
            Some(f) => state.world().pg_initiate(&h, &f, &host),
            None => bad_form(),
        }
    } else if let Some(token) = path.strip_prefix("/pg/payment/").and_then(|r| r.strip_suffix("/response")) {
        match form_of(&body) {
            Some(f) => state.world().pg_verify(&h, token, &f),
            None => bad_form(),
        }
    } else {
        Reply::Json(404, json!({"status": false, "message": format!("no such endpoint: {method} {path}")}))
    };
    render(reply, kill.map(|Extension(k)| k)).await
}

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
                return (status, [(header::CONTENT_TYPE, "text/html")], text).into_response();
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
