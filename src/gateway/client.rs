//! The typed gateway client: one method per call of SPEC sections 4 and 6.5, each returning an
//! outcome from [`super`] rather than HTTP details.
//!
//! The client owns three things callers must not re-implement:
//! - **pacing**: every HTTP request it makes (token, payout, status, pay-in, PG) first waits on the one
//!   shared rate limiter, so `--rate` bounds every gateway call, not just payouts (in team mode the
//!   limiter is the merchant's budget in the database, shared by every process: [`SharedPace`]);
//! - **the token**: fetched on first use, reused, refreshed on expiry and once on TE0012 (rule 5),
//!   single-flight so a burst of TE0012 answers causes one refresh, not fifty;
//! - **transport classification**: a connection that was never established is "not sent", anything
//!   that fails after the request may have left is "unknown".
//!
//! It never retries a payout by itself except after TE0012 (the gateway said it did not act), never
//! logs a header, and always verifies TLS certificates (rustls with the platform's roots; there is no
//! switch to turn that off). Plain `http://` is accepted only for loopback addresses (the sandbox).

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::{RequestBuilder, Url};
use serde_json::{Value, json};

use super::wire;
use super::{PayoutOutcome, StatusOutcome, TokenOutcome};
use crate::config::{Credentials, Endpoints, Secret, StatusVia};
use crate::money::Amount;

/// Why a client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("gateway URL '{0}' is not a valid URL")]
    BadUrl(String),
    #[error("gateway URL '{0}' uses plain http to a non-loopback host; use https (payouts never travel unencrypted)")]
    Plaintext(String),
    #[error(
        "gateway URL '{0}' carries a user name or password; credentials come from the ATMOON_* variables or payrun.toml, never the URL"
    )]
    UserInfo(String),
    #[error("cannot build the HTTP client: {0}")]
    Build(#[from] reqwest::Error),
}

/// Everything needed to build a client besides the credentials.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    pub base_url: String,
    pub endpoints: Endpoints,
    pub status_via: StatusVia,
    /// Whole-request timeout. A payout that times out is in doubt, so this bounds how long one
    /// request can hold a concurrency slot, not whether money moved.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// Requests per second over all calls; `None` for unpaced (the single-call commands).
    pub rate: Option<(u32, u32)>,
    /// A pace shared beyond this client (team mode's rate budget per merchant): when given, every
    /// request waits on it instead of a limiter of the client's own, and `rate` is not used.
    pub shared_pace: Option<Arc<dyn SharedPace>>,
    /// Idle connections kept per host (set to the engine's concurrency).
    pub pool: usize,
}

impl ClientOptions {
    pub fn new(base_url: impl Into<String>) -> ClientOptions {
        ClientOptions {
            base_url: base_url.into(),
            endpoints: Endpoints::default(),
            status_via: StatusVia::default(),
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            rate: None,
            shared_pace: None,
            pool: 16,
        }
    }
}

/// One payout posting's form fields (SPEC section 4).
#[derive(Clone, Debug, PartialEq)]
pub struct PayoutRequest {
    pub amount: Amount,
    pub name: String,
    pub account: String,
    pub ifsc: String,
    pub mode: String,
    pub remarks: String,
    pub external_ref: String,
    pub payee_list_id: String,
    pub latitude: String,
    pub longitude: String,
}

impl PayoutRequest {
    /// The form exactly as it goes on the wire, minus `user_id` and `utoken`.
    pub fn form_fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("amount", self.amount.to_wire()),
            ("Name", self.name.clone()),
            ("accountNumber", self.account.clone()),
            ("bankIfsc", self.ifsc.clone()),
            ("payeeListId", self.payee_list_id.clone()),
            ("transferMode", self.mode.clone()),
            ("remarks", self.remarks.clone()),
            ("externalRef", self.external_ref.clone()),
            ("latitude", self.latitude.clone()),
            ("longitude", self.longitude.clone()),
        ]
    }
}

/// One HTTP exchange of a call, as the evidence log records it: the call, the HTTP status (none
/// when no answer came), the gateway's code and its redacted message. Never a header, a token or
/// a body.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Exchange {
    /// `payout`, `status` or `token`.
    pub call: &'static str,
    pub http: Option<u16>,
    pub code: Option<String>,
    pub message: String,
}

impl Exchange {
    fn of(call: &'static str, reply: &Reply) -> Exchange {
        match reply {
            Reply::Http { status, body, .. } => {
                let (code, message) = wire::code_and_message(body, call == "token");
                Exchange { call, http: Some(*status), code, message }
            }
            Reply::NotSent(why) | Reply::Lost(why) => Exchange { call, http: None, code: None, message: why.clone() },
        }
    }
}

/// A pace kept outside the client, shared with other clients and processes: team mode's one rate
/// budget per merchant ([`crate::journal::team::budget::SharedBudget`]). The client waits on it
/// before every request, exactly where it would wait on its own limiter.
pub trait SharedPace: Send + Sync + std::fmt::Debug {
    /// Resolves when one request may leave, with the time of its slot. Dropping the future gives
    /// the wait up; a slot it already held is lost, never given to two requests.
    fn turn(&self) -> Pin<Box<dyn Future<Output = Instant> + Send + '_>>;

    /// How long after its slot a request may still leave on it. Later, it would arrive at the
    /// gateway together with the requests of the slots after its own (perhaps another process's)
    /// and crowd one window of the gateway's count: it waits for a fresh turn instead.
    fn valid_for(&self) -> Duration;
}

/// How long a request whose turn went stale waits for a fresh one from the shared pace before it
/// gives up unsent ([`PayoutOutcome::NotSent`]: the budget's database is gone, and a process that
/// loses its database sends nothing, SPEC 8.1).
const FRESH_TURN_LIMIT: Duration = Duration::from_secs(5);

/// Proof that one rate-limiter slot was taken (see [`GatewayClient::wait_turn`]), with the slot's
/// time.
#[derive(Debug)]
pub struct Turn(Instant);

/// Counts of HTTP requests made, by call (for summaries and the benchmark).
#[derive(Debug, Default)]
pub struct CallCounts {
    pub token: AtomicU64,
    pub payout: AtomicU64,
    pub status: AtomicU64,
    pub other: AtomicU64,
}

impl CallCounts {
    /// HTTP requests made so far, every call counted (what the rate limits).
    pub fn requests(&self) -> u64 {
        [&self.token, &self.payout, &self.status, &self.other].iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }
}

/// What [`GatewayClient::with_token`] needs to know of an outcome type.
trait Answer: PartialEq + Sized {
    const TOKEN_INVALID: Self;
    fn classify(http: u16, retry_after: Option<Duration>, body: &str) -> Self;
    fn refused(message: String) -> Self;
    /// HTTP 403, still with a fresh token.
    fn forbidden(message: String) -> Self;
    fn not_sent(retry_after: Option<Duration>, reason: String) -> Self;
    fn lost(reason: String) -> Self;
    /// The gateway refused the credentials (HTTP 401, "Invalid API credentials").
    fn is_refused(&self) -> bool;
    /// The answer to a request made again after the first was refused as unauthorised.
    fn after_auth_retry(self) -> Self {
        self
    }
}

impl Answer for PayoutOutcome {
    const TOKEN_INVALID: Self = PayoutOutcome::TokenInvalid;
    fn classify(http: u16, retry_after: Option<Duration>, body: &str) -> Self {
        wire::classify_payout(http, retry_after, body)
    }
    fn refused(message: String) -> Self {
        PayoutOutcome::CredentialsRefused { message }
    }
    fn forbidden(message: String) -> Self {
        PayoutOutcome::Forbidden { message }
    }
    fn not_sent(retry_after: Option<Duration>, reason: String) -> Self {
        PayoutOutcome::NotSent { retry_after, reason }
    }
    fn lost(reason: String) -> Self {
        PayoutOutcome::Unknown { reason }
    }
    fn is_refused(&self) -> bool {
        matches!(self, PayoutOutcome::CredentialsRefused { .. })
    }
    /// TE0005 after a posting of this very call was answered "unauthorised": that posting may be
    /// the one the gateway has (a gateway that checks the token after acting), so the row is in
    /// doubt and its inquiry decides, not rule 8's first-attempt reading.
    fn after_auth_retry(self) -> Self {
        match self {
            PayoutOutcome::Duplicate { message } => PayoutOutcome::Unknown {
                reason: format!(
                    "TE0005 ({message}) on posting again with a fresh token after an unauthorised answer: the first posting may be the one the gateway has"
                ),
            },
            other => other,
        }
    }
}

impl Answer for StatusOutcome {
    const TOKEN_INVALID: Self = StatusOutcome::TokenInvalid;
    fn classify(http: u16, retry_after: Option<Duration>, body: &str) -> Self {
        wire::classify_status(http, retry_after, body)
    }
    fn refused(message: String) -> Self {
        StatusOutcome::CredentialsRefused { message }
    }
    /// An inquiry changes nothing at the gateway: a 403 is a refusal like a 401.
    fn forbidden(message: String) -> Self {
        StatusOutcome::CredentialsRefused { message }
    }
    fn not_sent(retry_after: Option<Duration>, reason: String) -> Self {
        StatusOutcome::NotSent { retry_after, reason }
    }
    fn lost(reason: String) -> Self {
        StatusOutcome::Unknown { reason }
    }
    fn is_refused(&self) -> bool {
        matches!(self, StatusOutcome::CredentialsRefused { .. })
    }
}

/// A reply of one HTTP exchange, before any meaning is given to it.
enum Reply {
    Http {
        status: u16,
        retry_after: Option<Duration>,
        body: String,
    },
    /// The request never reached the gateway (no connection).
    NotSent(String),
    /// The request may have reached it; no complete answer came back.
    Lost(String),
}

struct CachedToken {
    value: Secret,
    generation: u64,
    expires_at: Option<Instant>,
    margin: Duration,
}

/// Why a token could not be had.
enum TokenFailure {
    Refused(String),
    Transient { retry_after: Option<Duration>, reason: String },
}

/// The answer of a single call (pay-in, PG): whether the gateway said yes, and what it said.
#[derive(Debug, Clone)]
pub struct SingleReply {
    pub http: u16,
    pub ok: bool,
    pub value: Value,
}

/// A client for one gateway with one set of credentials. Cheap to share behind an `Arc`.
pub struct GatewayClient {
    http: reqwest::Client,
    base: Url,
    endpoints: Endpoints,
    status_via: StatusVia,
    creds: Credentials,
    limiter: Option<DefaultDirectRateLimiter>,
    /// Team mode's shared budget, used instead of `limiter` when given.
    shared_pace: Option<Arc<dyn SharedPace>>,
    token: tokio::sync::Mutex<Option<CachedToken>>,
    generation: AtomicU64,
    pub counts: CallCounts,
}

impl std::fmt::Debug for GatewayClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayClient").field("base", &self.base.as_str()).finish_non_exhaustive()
    }
}

fn is_loopback(url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost") || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl GatewayClient {
    pub fn new(options: &ClientOptions, creds: Credentials) -> Result<GatewayClient, ClientError> {
        // Error messages show the URL without anything between `://` and `@` (a password).
        let shown = without_userinfo(&options.base_url);
        let base =
            Url::parse(options.base_url.trim_end_matches('/')).map_err(|_| ClientError::BadUrl(shown.clone()))?;
        if !base.username().is_empty() || base.password().is_some() {
            return Err(ClientError::UserInfo(shown));
        }
        match base.scheme() {
            "https" => {}
            "http" if is_loopback(&base) => {}
            "http" => return Err(ClientError::Plaintext(shown)),
            _ => return Err(ClientError::BadUrl(shown)),
        }
        // reqwest is built without a bundled crypto provider; ring is ours. Installing twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder().tls_backend_rustls();
        if base.scheme() == "http" {
            // Plain http to loopback (checked above) with redirects off: this client never makes a
            // TLS handshake, so it needs no roots, and loading the platform's (~40 ms here) would
            // only delay the first request. An empty store fails closed should one ever happen.
            builder = builder.tls_certs_only([]);
        }
        let http = builder
            .timeout(options.timeout)
            .connect_timeout(options.connect_timeout)
            .pool_max_idle_per_host(options.pool.max(1))
            // Below the 5 s after which common servers (Node's default) close an idle keep-alive
            // connection: a posting written into a connection the server is closing at that
            // instant has an unknown fate (in doubt), so such a connection is not reused.
            .pool_idle_timeout(Duration::from_secs(4))
            .tcp_nodelay(true)
            .retry(reqwest::retry::never())
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("payrun/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let limiter = options.rate.filter(|_| options.shared_pace.is_none()).and_then(|(rate, burst)| {
            let rate = std::num::NonZeroU32::new(rate)?;
            let burst = std::num::NonZeroU32::new(burst.max(1))?;
            Some(RateLimiter::direct(Quota::per_second(rate).allow_burst(burst)))
        });
        Ok(GatewayClient {
            http,
            base,
            endpoints: options.endpoints.clone(),
            status_via: options.status_via,
            creds,
            limiter,
            shared_pace: options.shared_pace.clone(),
            token: tokio::sync::Mutex::new(None),
            generation: AtomicU64::new(0),
            counts: CallCounts::default(),
        })
    }

    /// The gateway's base URL (never contains credentials).
    pub fn base_url(&self) -> &str {
        self.base.as_str()
    }

    /// The base URL (with any path prefix it has) and a configured path, with exactly one `/`
    /// between them whether or not either side has one.
    fn url(&self, path: &str) -> String {
        format!("{}/{}", self.base.as_str().trim_end_matches('/'), path.trim_start_matches('/'))
    }

    /// Waits for the rate limiter (or the shared pace): every HTTP request goes through here first.
    /// Returns the slot's time.
    async fn pace(&self) -> Instant {
        if let Some(p) = &self.shared_pace {
            return p.turn().await;
        }
        if let Some(l) = &self.limiter {
            l.until_ready().await;
        }
        Instant::now()
    }

    /// Waits for one slot of the rate limiter and returns it, for a caller that must do something
    /// between getting its turn and sending (the engine writes the payout's intent there, so the
    /// intent is on disk as close as possible to the moment the request leaves).
    pub async fn wait_turn(&self) -> Turn {
        Turn(self.pace().await)
    }

    async fn exchange(&self, rb: RequestBuilder, counter: &AtomicU64) -> Reply {
        self.exchange_with(rb, counter, None).await
    }

    async fn exchange_with(&self, rb: RequestBuilder, counter: &AtomicU64, turn: Option<Turn>) -> Reply {
        match (turn, &self.shared_pace) {
            (None, _) => {
                self.pace().await;
            }
            // Team mode: a turn taken a while ago (the engine wrote the payout's intent in
            // between; a token was fetched) is spent, and a fresh one taken (see SharedPace).
            (Some(Turn(slot)), Some(shared)) if slot.elapsed() > shared.valid_for() => {
                if tokio::time::timeout(FRESH_TURN_LIMIT, shared.turn()).await.is_err() {
                    return Reply::NotSent(
                        "no turn from the merchant's shared rate budget (the journal database is gone): not sent"
                            .into(),
                    );
                }
            }
            (Some(_), _) => {}
        }
        counter.fetch_add(1, Ordering::Relaxed);
        let resp = match rb.send().await {
            Ok(r) => r,
            Err(e) if e.is_connect() => {
                return Reply::NotSent(format!("cannot connect: {}", root_cause(&e)));
            }
            Err(e) if e.is_timeout() => {
                return Reply::Lost("timed out waiting for the gateway".into());
            }
            Err(e) => return Reply::Lost(format!("connection failed: {}", root_cause(&e))),
        };
        let status = resp.status().as_u16();
        let retry_after =
            wire::retry_after(resp.headers().get(reqwest::header::RETRY_AFTER).and_then(|v| v.to_str().ok()));
        match resp.text().await {
            Ok(body) => Reply::Http { status, retry_after, body },
            Err(e) if e.is_timeout() => Reply::Lost(format!("HTTP {status}, timed out reading the answer")),
            Err(e) => Reply::Lost(format!("HTTP {status}, answer cut off: {}", root_cause(&e))),
        }
    }

    fn cred_headers(&self, rb: RequestBuilder) -> RequestBuilder {
        rb.header("access_key", self.creds.access_key.expose())
            .header("merchant_key", self.creds.merchant_key.expose())
            .header("client_id", &self.creds.client_id)
            .header("api_password", self.creds.api_password.expose())
    }

    /// One token request (paced). Prefer [`GatewayClient::payout`] and friends, which manage the token.
    pub async fn request_token(&self) -> TokenOutcome {
        self.request_token_traced().await.0
    }

    async fn request_token_traced(&self) -> (TokenOutcome, Exchange) {
        let rb = self
            .cred_headers(self.http.post(self.url(&self.endpoints.token_path)))
            .header(reqwest::header::ACCEPT, "application/json");
        let reply = self.exchange(rb, &self.counts.token).await;
        let reply = self.scrubbed(reply, None);
        let trace = Exchange::of("token", &reply);
        let outcome = match reply {
            Reply::Http { status, retry_after, body } => wire::classify_token(status, retry_after, &body),
            Reply::NotSent(reason) => TokenOutcome::NotSent { retry_after: None, reason },
            Reply::Lost(reason) => TokenOutcome::Unknown { reason },
        };
        (outcome, trace)
    }

    /// The current token, fetching one when there is none or it is about to expire. Single-flight:
    /// concurrent callers wait for one fetch. A fetch made for this caller is added to `trace`.
    async fn token(&self, trace: &mut Vec<Exchange>) -> Result<(Secret, u64), TokenFailure> {
        let mut slot = self.token.lock().await;
        if let Some(t) = slot.as_ref() {
            // Renewed a little before the gateway's clock says it expires: 5 s, or a quarter of
            // the token's life when that is shorter.
            let fresh = t.expires_at.is_none_or(|at| Instant::now() + t.margin < at);
            if fresh {
                return Ok((t.value.clone(), t.generation));
            }
        }
        let (outcome, exchange) = self.request_token_traced().await;
        trace.push(exchange);
        match outcome {
            TokenOutcome::Token { token, expires_in } => {
                let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
                let value = Secret::new(token);
                let expires_at = expires_in.map(|d| Instant::now() + d);
                let margin = expires_in.map_or(Duration::ZERO, |d| (d / 4).min(Duration::from_secs(5)));
                *slot = Some(CachedToken { value: value.clone(), generation, expires_at, margin });
                Ok((value, generation))
            }
            TokenOutcome::Refused { code, message } => {
                Err(TokenFailure::Refused(format!("token request refused ({code}): {message}")))
            }
            TokenOutcome::NotSent { retry_after, reason } => Err(TokenFailure::Transient { retry_after, reason }),
            TokenOutcome::Unknown { reason } => {
                Err(TokenFailure::Transient { retry_after: None, reason: format!("token request: {reason}") })
            }
        }
    }

    /// Fetches a token (kept for the calls that follow): whether the gateway accepts the
    /// credentials, checked before an operator is asked to confirm anything. A transient failure
    /// (busy, unreachable) is not a refusal: `Ok`, and the run finds out.
    pub async fn check_credentials(&self) -> Result<(), String> {
        match self.token(&mut Vec::new()).await {
            Ok(_) | Err(TokenFailure::Transient { .. }) => Ok(()),
            Err(TokenFailure::Refused(why)) => Err(why),
        }
    }

    /// Forgets the token of `generation` (after TE0012), unless another caller already replaced it.
    async fn invalidate(&self, generation: u64) {
        let mut slot = self.token.lock().await;
        if slot.as_ref().is_some_and(|t| t.generation == generation) {
            *slot = None;
        }
    }

    /// One call with the token: fetched when needed, and on TE0012 replaced once and the call made
    /// again (the gateway did not act on the first, so this cannot pay twice). `turn` pays for the
    /// first request when the caller already took it.
    async fn with_token<A: Answer>(
        &self,
        call: &'static str,
        counter: &AtomicU64,
        mut turn: Option<Turn>,
        build: impl Fn(&Secret) -> RequestBuilder,
    ) -> (A, Vec<Exchange>) {
        let mut trace = Vec::new();
        // A request of this call reached the gateway and was answered "unauthorised" (401, 403,
        // "Invalid API credentials"): most often a token that expired on the gateway's clock.
        let mut unauthorised = false;
        let mut forbidden_before = false;
        for round in 0..2 {
            let (token, generation) = match self.token(&mut trace).await {
                Ok(t) => t,
                // The first request did reach the gateway. SPEC rule 5 reads a 401 "Invalid API
                // credentials" as a refusal (the row is not sent); nothing reads a 403 so.
                Err(TokenFailure::Refused(message)) if forbidden_before => return (A::forbidden(message), trace),
                Err(TokenFailure::Refused(message)) => return (A::refused(message), trace),
                Err(TokenFailure::Transient { retry_after, reason }) if !unauthorised => {
                    return (A::not_sent(retry_after, reason), trace);
                }
                Err(TokenFailure::Transient { reason, .. }) => {
                    return (A::lost(format!("answered unauthorised, and no fresh token: {reason}")), trace);
                }
            };
            let reply = self.exchange_with(build(&token), counter, turn.take()).await;
            let reply = self.scrubbed(reply, Some(&token));
            trace.push(Exchange::of(call, &reply));
            let (outcome, http) = match reply {
                Reply::Http { status, retry_after, body } => (A::classify(status, retry_after, &body), Some(status)),
                Reply::NotSent(reason) => (A::not_sent(None, reason), None),
                Reply::Lost(reason) => (A::lost(reason), None),
            };
            if outcome == A::TOKEN_INVALID && round == 0 {
                self.invalidate(generation).await;
                continue;
            }
            let forbidden = http == Some(403);
            if (outcome.is_refused() || forbidden) && round == 0 {
                // Another gateway may answer an expired token with HTTP 401/403 and the document's
                // "Invalid API credentials" instead of TE0012: a fresh token tells the two apart
                // (the token request itself is refused when the credentials really are wrong).
                unauthorised = true;
                forbidden_before = forbidden;
                self.invalidate(generation).await;
                continue;
            }
            if forbidden {
                return (A::forbidden(format!("HTTP 403 to the {call} call, also with a fresh token")), trace);
            }
            let outcome = if unauthorised { outcome.after_auth_retry() } else { outcome };
            return (outcome, trace);
        }
        (A::TOKEN_INVALID, trace)
    }

    /// The reply with every secret and the token taken out of its body: a gateway that echoes a
    /// request in its answer (a short token, a password) must not put it in the journal, the
    /// evidence log or a message. (Long runs of letters and digits are redacted by
    /// [`wire::redact`] anyway; this catches short ones.)
    fn scrubbed(&self, reply: Reply, token: Option<&Secret>) -> Reply {
        match reply {
            Reply::Http { status, retry_after, body } => {
                Reply::Http { status, retry_after, body: self.scrub(body, token) }
            }
            other => other,
        }
    }

    fn scrub(&self, mut text: String, token: Option<&Secret>) -> String {
        let c = &self.creds;
        for secret in [Some(&c.access_key), Some(&c.merchant_key), Some(&c.api_password), token].into_iter().flatten() {
            let s = secret.expose();
            if s.len() >= 6 && text.contains(s) {
                text = replace_whole(&text, s, "[redacted]");
            }
        }
        text
    }

    /// Posts one payout (see [`GatewayClient::with_token`] for TE0012). `turn` is a rate-limiter slot
    /// the caller already waited for ([`GatewayClient::wait_turn`]); it pays for the first posting.
    pub async fn payout(&self, req: &PayoutRequest, turn: Option<Turn>) -> PayoutOutcome {
        self.payout_traced(req, turn).await.0
    }

    /// [`GatewayClient::payout`], with every HTTP exchange it made (for the evidence log).
    pub async fn payout_traced(&self, req: &PayoutRequest, turn: Option<Turn>) -> (PayoutOutcome, Vec<Exchange>) {
        self.with_token("payout", &self.counts.payout, turn, |token| {
            let mut form = req.form_fields();
            form.push(("user_id", self.creds.user_id.clone()));
            form.push(("utoken", token.expose().to_string()));
            self.http
                .post(self.url(&self.endpoints.payout_path))
                .header(reqwest::header::ACCEPT, "application/json")
                .form(&form)
        })
        .await
    }

    /// Asks for a payout's status by the gateway's order id (when known) or our reference, through
    /// the configured call (PAYOUTSTATUS or the verify endpoint).
    pub async fn status(&self, id: &str) -> StatusOutcome {
        self.status_with(self.status_via, id).await
    }

    /// [`GatewayClient::status`], with every HTTP exchange it made (for the evidence log). `turn`
    /// is a rate-limiter slot the caller already waited for, as for a payout.
    pub async fn status_traced(&self, id: &str, turn: Option<Turn>) -> (StatusOutcome, Vec<Exchange>) {
        self.status_with_traced(self.status_via, id, turn).await
    }

    /// [`GatewayClient::status`] through a given call, whatever the configuration says.
    pub async fn status_with(&self, via: StatusVia, id: &str) -> StatusOutcome {
        self.status_with_traced(via, id, None).await.0
    }

    async fn status_with_traced(&self, via: StatusVia, id: &str, turn: Option<Turn>) -> (StatusOutcome, Vec<Exchange>) {
        self.with_token("status", &self.counts.status, turn, |token| {
            let rb = match via {
                StatusVia::Payoutstatus => self
                    .http
                    .post(self.url(&self.endpoints.status_path))
                    .header("x-client-id", &self.creds.client_id)
                    .header("x-client-secret", self.creds.api_password.expose())
                    .json(&json!({"method": "PAYOUTSTATUS", "payout_id": id})),
                StatusVia::Verify => {
                    let path = self.endpoints.verify_path.replace("{reference}", &encode_segment(id));
                    self.cred_headers(self.http.get(self.url(&path)))
                }
            };
            rb.header("user_id", &self.creds.user_id)
                .header("utoken", token.expose())
                .header(reqwest::header::ACCEPT, "application/json")
        })
        .await
    }

    async fn single(&self, rb: RequestBuilder) -> Result<SingleReply, String> {
        let reply = self.exchange(rb.header(reqwest::header::ACCEPT, "application/json"), &self.counts.other).await;
        let token = self.token.lock().await.as_ref().map(|t| t.value.clone());
        match self.scrubbed(reply, token.as_ref()) {
            Reply::Http { status, body, .. } => {
                let value = wire::body_value(&body);
                let ok = status < 400
                    && matches!(wire::status_flag(&value), wire::Flag::Yes)
                    && wire::code(&value).is_none_or(|c| c == "SU0000" || c == "200");
                Ok(SingleReply { http: status, ok, value })
            }
            Reply::NotSent(r) | Reply::Lost(r) => Err(r),
        }
    }

    async fn token_for_single(&self) -> Result<Secret, String> {
        match self.token(&mut Vec::new()).await {
            Ok((t, _)) => Ok(t),
            Err(TokenFailure::Refused(m)) => Err(m),
            Err(TokenFailure::Transient { reason, .. }) => Err(reason),
        }
    }

    /// PAYIN (SPEC 6.5): `body` is the request's JSON without `method`.
    pub async fn payin(&self, mut body: Value) -> Result<SingleReply, String> {
        let token = self.token_for_single().await?;
        if let Value::Object(m) = &mut body {
            m.insert("method".into(), Value::String("PAYIN".into()));
        }
        let rb = self
            .http
            .post(self.url(&self.endpoints.status_path))
            .header("x-client-id", &self.creds.client_id)
            .header("x-client-secret", self.creds.api_password.expose())
            .header("user_id", &self.creds.user_id)
            .header("utoken", token.expose())
            .json(&body);
        self.single(rb).await
    }

    /// PG payment initiate: form fields `name, phone, email, amount, redirect_url` (+ `api_token`).
    pub async fn pg_initiate(&self, fields: &[(&str, String)]) -> Result<SingleReply, String> {
        let token = self.token_for_single().await?;
        let mut form: Vec<(&str, String)> = fields.to_vec();
        form.push(("api_token", token.expose().to_string()));
        let rb = self.cred_headers(self.http.post(self.url(&self.endpoints.pg_initiate_path))).form(&form);
        self.single(rb).await
    }

    /// PG verify: `pg_token` is the last path segment of the URL that initiate returned.
    pub async fn pg_verify(
        &self,
        pg_token: &str,
        transaction_id: &str,
        pg_reference_no: &str,
    ) -> Result<SingleReply, String> {
        let path = self.endpoints.pg_verify_path.replace("{token}", &encode_segment(pg_token));
        let form = [("transaction_id", transaction_id.to_string()), ("pg_reference_no", pg_reference_no.to_string())];
        let rb = self.cred_headers(self.http.post(self.url(&path))).form(&form);
        self.single(rb).await
    }
}

/// A URL as text with any `user:password@` replaced by `***@`, parseable or not.
pub fn without_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}

/// Percent-encodes one URL path segment (references are `[A-Za-z0-9_-]`, gateway ids may not be).
fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The innermost cause of a transport error, without the URL (which is ours and harmless, but long).
fn root_cause(e: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// Shared handle used by the engine and the commands.
pub type SharedClient = Arc<GatewayClient>;

/// `text` with every occurrence of `word` that stands alone (no letter or digit right before or
/// after it) replaced by `with`. An echoed secret stands alone in a message; the same digits inside
/// an account number, amount or UTR are that value's, and taking them out would change what the
/// answer says about a payout (or break its JSON).
fn replace_whole(text: &str, word: &str, with: &str) -> String {
    let alnum_before = |i: usize| text[..i].chars().next_back().is_some_and(char::is_alphanumeric);
    let alnum_after = |i: usize| text[i..].chars().next().is_some_and(char::is_alphanumeric);
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (i, _) in text.match_indices(word) {
        if i < last || alnum_before(i) || alnum_after(i + word.len()) {
            continue;
        }
        out.push_str(&text[last..i]);
        out.push_str(with);
        last = i + word.len();
    }
    out.push_str(&text[last..]);
    out
}

#[cfg(test)]
mod tests {
    use super::replace_whole;

    #[test]
    fn an_echoed_secret_is_taken_out_only_where_it_stands_alone() {
        let body = r#"{"message":"Invalid token 482133 for 482133","account_no":39624821331,"utr":"U482133"}"#;
        assert_eq!(
            replace_whole(body, "482133", "[redacted]"),
            r#"{"message":"Invalid token [redacted] for [redacted]","account_no":39624821331,"utr":"U482133"}"#
        );
        assert_eq!(replace_whole("482133", "482133", "x"), "x");
        assert_eq!(replace_whole("token=482133;", "482133", "x"), "token=x;");
    }
}
