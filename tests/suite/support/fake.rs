//! An independent fake AT MOON gateway for tests: written apart from payrun's sandbox, it answers
//! in shapes the sandbox never produces, so a client that only works against its own sandbox fails
//! here. Its ledger (every payout applied, per reference) is the judge.
//!
//! Differences from the sandbox, on purpose:
//! - order ids are small numbers (`1001`, `1002`, ...), given as JSON numbers, and status inquiries
//!   look an id up as an order id *first*, then as a reference: a file's numeric reference that
//!   equals another payout's order id is answered with that other payout;
//! - accepted answers carry `Transaction` as an object, `status` as the string `"1"`, no `code`;
//! - status answers nest the payee under `data`, with the account and amount as JSON numbers;
//! - behaviours by the last two digits of the account number (see [`Behaviour`]), among them a
//!   payout applied and then answered HTTP 500 with a TE0020 body, or 503 with a TE0005 body,
//!   status amounts with charges, and TE0020 both for payouts applied and not applied;
//! - payouts can be preloaded, as if an earlier run (with another journal) had made them, or as
//!   last month's payout that failed at the bank;
//! - on request ([`FakeGateway::echo_ids`]) status answers name the payout they are about.
//!
//! [`FakeGateway::set_quirks`] turns on wire-level differences a gateway written from the same
//! document may well have ([`Quirks`]): tokens that expire on its own clock and an expired token
//! answered HTTP 401/403 rather than TE0012, `Retry-After` as an HTTP date, short tokens echoed in
//! messages, status answers shaped like the payout answer (`Transaction: [...]`), `expires_in` as
//! a fraction. The same routes are also served under the path prefix `/gw`.
//!
//! For the model test (`model.rs`): [`FakeGateway::draw_behaviours`] draws each reference's
//! behaviour from a seed instead of reading it from the account number; [`FakeGateway::freeze_at`]
//! freezes the gateway at a chosen request (after or before that posting's effect), so a test can
//! kill its client at a known point; the ledger keeps each payout's `remarks`, where a test tags
//! the obligation a row pays.
//!
//! [`FakeGateway::start_with`] adds a latency to every call and can turn the behaviours off: the
//! benchmark measures payrun against it (a gateway whose code path is not payrun's own), and reads
//! its [`Timeline`] to see where a run's time went.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

/// What the fake does with a posting, chosen by the last two digits of the account number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// `..00` and anything not listed: applied, accepted.
    Normal,
    /// `..01`: first posting applied, then HTTP 500 with `{"code":"TE0020"}`.
    Applied500Te0020,
    /// `..02`: first posting applied, then HTTP 503 with `{"code":"TE0005"}`.
    Applied503Te0005,
    /// `..03`: applied; status answers report the amount plus ₹10 of charges.
    Charges,
    /// `..04`: first posting applied, its answer lost (sent after the client's timeout).
    AppliedAnswerLost,
    /// `..05`: every posting refused with TE0020 on HTTP 200, nothing applied.
    Te0020NotApplied,
    /// `..06`: first posting applied, then TE0020 on HTTP 200.
    Te0020Applied,
    /// `..07`: first posting not applied, answered 502 with an HTML page; later ones normal.
    BadGatewayFirst,
    /// `..08`: applied, accepted with no order id (the row is then asked about by its reference).
    NoOrderId,
    /// `..09`: applied, and its status stays pending (ENQ001) for as long as anyone asks.
    StaysPending,
    /// `..11`: a lagging, flapping index. The first posting is applied and its answer lost; status
    /// inquiries by reference alternate "unknown reference" (TE0011) and "SU0000" naming nobody;
    /// and a resend is not caught as a duplicate (the same index misses it): applied again.
    IndexFlaps,
    /// `..12`: applied; status answers say "status 1, Success" about the request, with no code,
    /// and the payout's own status, nested under `data`, stays `PENDING`.
    NestedPending,
    /// `..13`: applied; status answers carry SU0000 (the inquiry worked) beside the payout's own
    /// status, `"FAILED"`, with no bank code.
    SuccessCodeFailedStatus,
    /// `..14`: applied, then refused by the payee's bank: status answers say `BE1001`.
    FailsAtBank,
    /// `..15`: applied; status answers say pending (ENQ001) to the first three inquiries, then
    /// SU0000 (a bank that takes a while).
    PendingAWhile,
}

impl Behaviour {
    pub fn of(account: &str) -> Behaviour {
        match account.get(account.len().saturating_sub(2)..) {
            Some("01") => Behaviour::Applied500Te0020,
            Some("02") => Behaviour::Applied503Te0005,
            Some("03") => Behaviour::Charges,
            Some("04") => Behaviour::AppliedAnswerLost,
            Some("05") => Behaviour::Te0020NotApplied,
            Some("06") => Behaviour::Te0020Applied,
            Some("07") => Behaviour::BadGatewayFirst,
            Some("08") => Behaviour::NoOrderId,
            Some("09") => Behaviour::StaysPending,
            Some("11") => Behaviour::IndexFlaps,
            Some("12") => Behaviour::NestedPending,
            Some("13") => Behaviour::SuccessCodeFailedStatus,
            Some("14") => Behaviour::FailsAtBank,
            Some("15") => Behaviour::PendingAWhile,
            _ => Behaviour::Normal,
        }
    }
}

/// One payout the fake applied.
#[derive(Clone, Debug)]
pub struct FakePayout {
    pub reference: String,
    pub order_id: u64,
    pub account: String,
    pub ifsc: String,
    pub amount: String,
    pub times_applied: u32,
    pub preloaded: bool,
    /// Failed at the bank: status answers say `BE1001` (for a preloaded payout).
    pub bank_failed: bool,
    /// The posting's `remarks` form field (a test can tag what it pays there).
    pub remarks: String,
}

/// How a fake gateway is started.
#[derive(Clone, Copy, Debug)]
pub struct FakeOptions {
    /// Every call (token, posting, status) is answered after this many ms, uniform in the range.
    pub latency_ms: (u64, u64),
    /// The behaviours by account number ([`Behaviour`]); off, every posting is [`Behaviour::Normal`].
    pub behaviours: bool,
}

impl Default for FakeOptions {
    fn default() -> Self {
        FakeOptions { latency_ms: (0, 0), behaviours: true }
    }
}

/// When the fake saw its calls (Unix ms): where a client's time went.
#[derive(Clone, Debug, Default)]
pub struct Timeline {
    pub requests: u64,
    /// Unix ms of the first and last request (0: none).
    pub first_unix_ms: u64,
    pub last_unix_ms: u64,
    /// Unix ms of the last posting.
    pub last_posting_unix_ms: u64,
    /// Requests (postings, other calls) per 100 ms since the first request.
    pub per_100ms: Vec<(u32, u32)>,
    /// Every request, in the order the fake's handlers saw them (for windows of any length).
    pub arrivals: Vec<Arrival>,
}

/// One request as the fake saw it arrive.
#[derive(Clone, Debug)]
pub struct Arrival {
    pub at: std::time::Instant,
    /// `token`, `payout` or `status`.
    pub call: &'static str,
    /// The posting's `externalRef`, the id a status inquiry asked about, empty for a token.
    pub id: String,
}

/// Wire-level differences from the sandbox, all off by default (see the module doc).
#[derive(Clone, Debug, Default)]
pub struct Quirks {
    /// Tokens expire this long after they were issued; a posting or inquiry with an expired or
    /// unknown token is answered `expired_http` (401: the document's "Invalid API credentials"
    /// body; 403: a "Forbidden" body), never TE0012.
    pub token_ttl: Option<Duration>,
    pub expired_http: u16,
    /// The token answer says `"expires_in": <this>` (seconds, a JSON number).
    pub expires_in: Option<f64>,
    /// Every posting is answered HTTP 403, nothing applied.
    pub forbid_postings: bool,
    /// The first posting of each reference is applied, then answered HTTP 401 (a gateway that
    /// checks the token after acting).
    pub applied_then_401: bool,
    /// This many postings (the first ones) are answered 503 with no body and `Retry-After` as an
    /// HTTP date this many seconds ahead.
    pub busy_postings: u32,
    pub busy_for_secs: i64,
    /// Tokens are 8 characters, and refusals (TE0020, TE0011) quote the token the request carried.
    pub short_tokens_echoed: bool,
    /// Status answers carry the payee in `Transaction: [{...}]`, as the document's payout answer.
    pub status_in_transaction: bool,
    /// Every accepted posting is given the same order id (the first payout's, `1001`): a gateway
    /// that numbers payouts per something other than the payout.
    pub one_order_id: bool,
    /// Status answers name no payee (no account, IFSC or amount).
    pub anonymous_status: bool,
    /// A gateway outage behind an nginx: every first posting of a reference is applied, then
    /// answered HTTP 502 with nginx's HTML page (the backend was slow).
    pub outage: bool,
    /// The status index lags: a payout is "unknown reference" (TE0011) to this many status
    /// inquiries about it before it is found.
    pub index_lag: u32,
    /// Status inquiries look ids up as order ids only: a reference is always TE0011.
    pub status_by_order_id_only: bool,
    /// Postings are not checked against the references the gateway has: a resend of a reference
    /// it applied is applied again (only a client that never resends without proof is safe).
    pub no_dedup: bool,
    /// Status inquiries look the `payout_id` up as an external reference *first*, then as an
    /// order id (the document lets one field carry either; a gateway must pick one first): an
    /// order id that equals another payout's reference is answered with that other payout.
    pub status_by_reference_first: bool,
}

#[derive(Default)]
struct FakeState {
    quirks: Quirks,
    /// Tokens issued, and when.
    issued: HashMap<String, std::time::Instant>,
    /// Answers "unauthorised" given because of an expired token.
    expired_answers: u64,
    opts: Option<FakeOptions>,
    payouts: Vec<FakePayout>,
    by_ref: HashMap<String, usize>,
    by_order: HashMap<u64, usize>,
    attempts: HashMap<String, u32>,
    next_order: u64,
    tokens: u64,
    postings: u64,
    timeline: Timeline,
    dice: u64,
    /// Status answers name the payout they are about (`payout_id`, `externalRef`), as the sandbox's do.
    echo_ids: bool,
    /// Status answers name the payout by an internal id that is not the posting's `Order-Id`, as
    /// the document's own examples do (`HOAD650297148300` beside `Order-Id: 123456`).
    internal_ids: bool,
    /// Status inquiries per reference (for [`Behaviour::IndexFlaps`]).
    inquiries: HashMap<String, u32>,
    /// Status inquiries per payout (for [`Quirks::index_lag`]).
    lagged: HashMap<usize, u32>,
    /// Accounts whose next payout fails at the bank (once each).
    fail_next: std::collections::HashSet<String>,
    /// Behaviours drawn per reference from a seed instead of read from the account number.
    draw: Option<Draw>,
    /// Status inquiries per payout (for [`Behaviour::PendingAWhile`]).
    pending_polls: HashMap<usize, u32>,
    /// A freeze armed: requests to go until the one that freezes the gateway, and whether that
    /// request, when it is a posting, takes effect first ([`FakeGateway::freeze_at`]).
    freeze_in: Option<(u64, bool)>,
    /// Every request that arrives is held, with no effect, until [`FakeGateway::thaw`].
    silent: bool,
    /// The freezing request has arrived (and taken its effect): what the test waits for.
    frozen: bool,
    /// Bumped by every thaw: held requests wait for it to change.
    thaw_gen: u64,
}

/// Behaviours drawn per reference ([`FakeGateway::draw_behaviours`]).
#[derive(Clone, Debug)]
struct Draw {
    seed: u64,
    /// Each behaviour with its weight.
    table: Vec<(Behaviour, u32)>,
}

impl Draw {
    /// The behaviour of a reference: the same for every posting of it, from the seed alone.
    fn pick(&self, reference: &str) -> Behaviour {
        // FNV-1a, then a splitmix finish: stable across Rust versions and runs.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ self.seed;
        for b in reference.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        h ^= h >> 31;
        let total: u64 = self.table.iter().map(|(_, w)| u64::from(*w)).sum();
        let mut at = h % total.max(1);
        for (b, w) in &self.table {
            if at < u64::from(*w) {
                return *b;
            }
            at -= u64::from(*w);
        }
        Behaviour::Normal
    }
}

/// What the fake does with a request when a freeze is armed ([`FakeGateway::freeze_at`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hold {
    /// Answered as usual.
    Go,
    /// Held with no effect until the thaw of this generation, then answered 502.
    Silent(u64),
    /// A posting that freezes the gateway after taking its effect (applied or not, as its
    /// behaviour says), then held like [`Hold::Silent`].
    AfterEffect(u64),
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

impl FakeState {
    /// Notes a request in the timeline and returns how long to wait before answering it.
    fn arrive(&mut self, call: &'static str, id: &str) -> Duration {
        let posting = call == "payout";
        let now = unix_ms();
        let t = &mut self.timeline;
        t.arrivals.push(Arrival { at: std::time::Instant::now(), call, id: id.to_string() });
        t.requests += 1;
        if t.first_unix_ms == 0 {
            t.first_unix_ms = now;
        }
        t.last_unix_ms = now;
        if posting {
            t.last_posting_unix_ms = now;
        }
        let slot = ((now - t.first_unix_ms) / 100) as usize;
        if t.per_100ms.len() <= slot {
            t.per_100ms.resize(slot + 1, (0, 0));
        }
        if posting {
            t.per_100ms[slot].0 += 1;
        } else {
            t.per_100ms[slot].1 += 1;
        }
        let (lo, hi) = self.opts.unwrap_or_default().latency_ms;
        // xorshift: the fake needs spread, not a seed anyone replays.
        self.dice = self.dice.max(0x2545_F491_4F6C_DD1D);
        self.dice ^= self.dice << 13;
        self.dice ^= self.dice >> 7;
        self.dice ^= self.dice << 17;
        Duration::from_millis(lo + self.dice % (hi.saturating_sub(lo) + 1))
    }

    /// The behaviour of a posting: drawn for its reference when [`FakeGateway::draw_behaviours`] is
    /// on, else by the account number's last two digits.
    fn behaviour(&self, account: &str, reference: &str) -> Behaviour {
        if !self.opts.unwrap_or_default().behaviours {
            return Behaviour::Normal;
        }
        match &self.draw {
            Some(d) => d.pick(reference),
            None => Behaviour::of(account),
        }
    }

    /// The behaviour of payout `i`.
    fn behaviour_of(&self, i: usize) -> Behaviour {
        let p = &self.payouts[i];
        self.behaviour(&p.account, &p.reference)
    }

    /// Whether the request arriving now is held (see [`Hold`]).
    fn hold(&mut self, posting: bool) -> Hold {
        if self.silent {
            return Hold::Silent(self.thaw_gen);
        }
        let Some((left, effect)) = self.freeze_in.as_mut() else { return Hold::Go };
        *left = left.saturating_sub(1);
        if *left > 0 {
            return Hold::Go;
        }
        let effect = *effect;
        self.freeze_in = None;
        self.silent = true;
        if posting && effect {
            Hold::AfterEffect(self.thaw_gen)
        } else {
            self.frozen = true;
            Hold::Silent(self.thaw_gen)
        }
    }
}

/// Holds a request until the thaw after generation `generation`, then answers 502 (to a client
/// that is gone by then).
async fn held(st: &Arc<Mutex<FakeState>>, generation: u64) -> Response {
    while lock(st).thaw_gen == generation {
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    (StatusCode::BAD_GATEWAY, "<html><body><h1>502 Bad Gateway</h1></body></html>").into_response()
}

/// Waits out a call's latency (none for a fake started without one).
async fn latency(d: Duration) {
    if !d.is_zero() {
        tokio::time::sleep(d).await;
    }
}

impl FakeState {
    fn apply(&mut self, reference: &str, account: &str, ifsc: &str, amount: &str, preloaded: bool) -> u64 {
        self.apply_with(reference, account, ifsc, amount, preloaded, "")
    }

    fn apply_with(
        &mut self,
        reference: &str,
        account: &str,
        ifsc: &str,
        amount: &str,
        preloaded: bool,
        remarks: &str,
    ) -> u64 {
        self.next_order = self.next_order.max(1000) + 1;
        let order_id = self.next_order;
        let i = self.payouts.len();
        self.payouts.push(FakePayout {
            reference: reference.to_string(),
            order_id,
            account: account.to_string(),
            ifsc: ifsc.to_string(),
            amount: amount.to_string(),
            times_applied: 1,
            preloaded,
            bank_failed: self.fail_next.remove(account.trim_start_matches('0')),
            remarks: remarks.to_string(),
        });
        self.by_ref.insert(reference.to_string(), i);
        // A restarted counter gives an id twice: a look-up by it finds the first payout that had it.
        self.by_order.entry(order_id).or_insert(i);
        order_id
    }
}

/// A running fake gateway on a loopback port.
pub struct FakeGateway {
    pub url: String,
    state: Arc<Mutex<FakeState>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for FakeGateway {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

fn lock(s: &Mutex<FakeState>) -> std::sync::MutexGuard<'_, FakeState> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

fn form(body: &str) -> HashMap<String, String> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(body).unwrap_or_default().into_iter().collect()
}

fn answer(status: u16, body: Value) -> Response {
    (StatusCode::from_u16(status).unwrap_or(StatusCode::OK), axum::Json(body)).into_response()
}

impl FakeState {
    /// With [`Quirks::token_ttl`]: the "unauthorised" answer for a token that is unknown or expired.
    fn expired(&mut self, token: &str) -> Option<Response> {
        let ttl = self.quirks.token_ttl?;
        let valid = self.issued.get(token).is_some_and(|at| at.elapsed() < ttl);
        if valid {
            return None;
        }
        self.expired_answers += 1;
        Some(unauthorised(self.quirks.expired_http))
    }

    /// What a refusal adds when [`Quirks::short_tokens_echoed`] is on.
    fn echo(&self, token: &str) -> String {
        if self.quirks.short_tokens_echoed { format!(" (utoken {token})") } else { String::new() }
    }
}

fn unauthorised(http: u16) -> Response {
    if http == 403 {
        answer(403, json!({"status": "error", "message": "Forbidden"}))
    } else {
        answer(401, json!({"code": 401, "status": "error", "message": "Invalid API credentials."}))
    }
}

async fn token(State(st): State<Arc<Mutex<FakeState>>>, headers: HeaderMap) -> Response {
    if headers.get("access_key").is_none() || headers.get("client_id").is_none() {
        return answer(400, json!({"code": 400, "status": false, "message": "Client Id headers is required."}));
    }
    let hold = lock(&st).hold(false);
    if let Hold::Silent(generation) = hold {
        return held(&st, generation).await;
    }
    let (token, expires_in, wait) = {
        let mut s = lock(&st);
        s.tokens += 1;
        let n = s.tokens;
        let token = if s.quirks.short_tokens_echoed { format!("tk{n:06}") } else { format!("faketoken{n:08}") };
        s.issued.insert(token.clone(), std::time::Instant::now());
        (token, s.quirks.expires_in, s.arrive("token", ""))
    };
    latency(wait).await;
    let mut data = json!({"token": token});
    if let Some(e) = expires_in {
        data["expires_in"] = json!(e);
    }
    answer(200, json!({"status": true, "data": data, "message": "ok"}))
}

async fn payout(State(st): State<Arc<Mutex<FakeState>>>, body: String) -> Response {
    let f = form(&body);
    let get = |k: &str| f.get(k).map(|v| v.trim().to_string()).unwrap_or_default();
    let (reference, account, ifsc, amount) = (get("externalRef"), get("accountNumber"), get("bankIfsc"), get("amount"));
    let utoken = get("utoken");
    let (behaviour, wait, hold) = {
        let mut s = lock(&st);
        (s.behaviour(&account, &reference), s.arrive("payout", &reference), s.hold(true))
    };
    if let Hold::Silent(generation) = hold {
        return held(&st, generation).await;
    }
    latency(wait).await;
    {
        let mut s = lock(&st);
        if let Some(refusal) = s.expired(&utoken) {
            return refusal;
        }
        if s.quirks.forbid_postings {
            return (StatusCode::FORBIDDEN, "<html><body><h1>403 Forbidden</h1></body></html>").into_response();
        }
        if s.quirks.busy_postings > 0 {
            s.quirks.busy_postings -= 1;
            let at = chrono::Utc::now() + chrono::TimeDelta::seconds(s.quirks.busy_for_secs);
            let mut r = Response::new(axum::body::Body::empty());
            *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            if let Ok(v) = at.format("%a, %d %b %Y %H:%M:%S GMT").to_string().parse() {
                r.headers_mut().insert(axum::http::header::RETRY_AFTER, v);
            }
            return r;
        }
    }
    let (first, existing, order_id, quirks, echo) = {
        let mut s = lock(&st);
        let (quirks, echo) = (s.quirks.clone(), s.echo(&utoken));
        s.postings += 1;
        let n = s.attempts.entry(reference.clone()).or_insert(0);
        *n += 1;
        let first = *n == 1;
        // A flapping index does not see the payout it has: no duplicate, applied again.
        let dedup = behaviour != Behaviour::IndexFlaps && !s.quirks.no_dedup;
        let existing = s.by_ref.get(&reference).copied().filter(|_| dedup);
        let applies = existing.is_none()
            && !matches!(behaviour, Behaviour::Te0020NotApplied)
            && !(behaviour == Behaviour::BadGatewayFirst && first);
        let remarks = get("remarks");
        let mut order_id = applies.then(|| s.apply_with(&reference, &account, &ifsc, &amount, false, &remarks));
        if order_id.is_some() && behaviour == Behaviour::FailsAtBank {
            if let Some(p) = s.payouts.last_mut() {
                p.bank_failed = true;
            }
        }
        if quirks.one_order_id {
            order_id = order_id.map(|_| 1001);
        }
        (first, existing, order_id, quirks, echo)
    };
    if let Hold::AfterEffect(generation) = hold {
        lock(&st).frozen = true;
        return held(&st, generation).await;
    }
    if existing.is_some() {
        return answer(200, json!({"status": 0, "code": "TE0005", "message": "Duplicate Payment Request"}));
    }
    let Some(order_id) = order_id else {
        return match behaviour {
            Behaviour::BadGatewayFirst => {
                (StatusCode::BAD_GATEWAY, "<html><body><h1>502 Bad Gateway</h1></body></html>").into_response()
            }
            _ => answer(
                200,
                json!({"status": 0, "code": "TE0020", "message": format!("Technical failure. Please contact support team{echo}")}),
            ),
        };
    };
    if quirks.applied_then_401 && first {
        return unauthorised(401);
    }
    if quirks.outage && first {
        return (StatusCode::BAD_GATEWAY, "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>").into_response();
    }
    let mut accepted = json!({"status": "1", "message": "Success",
        "Transaction": {"customer_name": get("Name"), "account_no": account, "Order-Id": order_id}});
    match behaviour {
        Behaviour::NoOrderId => {
            accepted = json!({"status": "1", "message": "Success",
                "Transaction": {"customer_name": get("Name"), "account_no": account}});
            answer(200, accepted)
        }
        Behaviour::Applied500Te0020 if first => answer(
            500,
            json!({"status": 0, "code": "TE0020", "message": "Technical failure. Please contact support team"}),
        ),
        Behaviour::Applied503Te0005 if first => {
            answer(503, json!({"status": 0, "code": "TE0005", "message": "Duplicate Payment Request"}))
        }
        Behaviour::Te0020Applied if first => answer(
            200,
            json!({"status": 0, "code": "TE0020", "message": "Technical failure. Please contact support team"}),
        ),
        Behaviour::AppliedAnswerLost | Behaviour::IndexFlaps if first => {
            tokio::time::sleep(Duration::from_secs(4)).await;
            answer(200, accepted)
        }
        _ => answer(200, accepted),
    }
}

async fn status(State(st): State<Arc<Mutex<FakeState>>>, headers: HeaderMap, body: String) -> Response {
    let utoken = headers.get("utoken").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    if let Some(refusal) = lock(&st).expired(&utoken) {
        return refusal;
    }
    let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let id = match v.get("payout_id") {
        Some(Value::String(s)) => s.trim().to_string(),
        Some(other) => other.to_string(),
        None => String::new(),
    };
    let (wait, hold) = {
        let mut s = lock(&st);
        (s.arrive("status", &id), s.hold(false))
    };
    if let Hold::Silent(generation) = hold {
        return held(&st, generation).await;
    }
    latency(wait).await;
    let mut s = lock(&st);
    // An order id first (this gateway's ids are numbers), then a reference.
    let by_ref = if s.quirks.status_by_order_id_only { None } else { s.by_ref.get(&id).copied() };
    let by_order = id.parse::<u64>().ok().and_then(|n| s.by_order.get(&n).copied());
    let found = if s.quirks.status_by_reference_first { by_ref.or(by_order) } else { by_order.or(by_ref) };
    let lag = s.quirks.index_lag;
    // A flapping index is its own lag: the two do not add up to more "unknown" answers in a row.
    let lagging = found.is_some_and(|i| {
        if s.behaviour_of(i) == Behaviour::IndexFlaps {
            return false;
        }
        let n = s.lagged.entry(i).or_insert(0);
        *n += 1;
        *n <= lag
    });
    let Some(i) = found.filter(|_| !lagging) else {
        let message = format!("Invalid Payment reference number{}", s.echo(&utoken));
        return answer(200, json!({"status": 0, "code": "TE0011", "message": message}));
    };
    let behaviour = s.behaviour_of(i);
    if behaviour == Behaviour::IndexFlaps {
        let n = s.inquiries.entry(id.clone()).or_insert(0);
        *n += 1;
        return if *n % 2 == 1 {
            answer(200, json!({"status": 0, "code": "TE0011", "message": "Invalid Payment reference number"}))
        } else {
            answer(200, json!({"status": 1, "code": "SU0000", "message": "Transaction Successful"}))
        };
    }
    let polls = if behaviour == Behaviour::PendingAWhile {
        let n = s.pending_polls.entry(i).or_insert(0);
        *n += 1;
        *n
    } else {
        0
    };
    let p = &s.payouts[i];
    let mut amount: f64 = p.amount.parse().unwrap_or(0.0);
    if behaviour == Behaviour::Charges {
        amount += 10.0;
    }
    let account: Value = p.account.trim_start_matches('0').parse::<u64>().map(Value::from).unwrap_or(Value::Null);
    if s.quirks.status_in_transaction {
        return answer(
            200,
            json!({"status": "1", "code": "SU0000", "message": "Success",
                   "Transaction": [{"customer_name": "Payee", "account_no": account, "Ifsc_code": p.ifsc, "amount": amount,
                                    "Order-Id": p.order_id, "utr": format!("FAKEUTR{:06}", p.order_id)}]}),
        );
    }
    let mut body = if p.bank_failed {
        json!({"status": 0, "code": "BE1001", "message": "Account closed",
               "data": {"account_no": account, "Ifsc_code": p.ifsc, "amount": amount}})
    } else if behaviour == Behaviour::SuccessCodeFailedStatus {
        json!({"status": "FAILED", "code": "SU0000", "message": "Transaction failed",
               "data": {"account_no": account, "Ifsc_code": p.ifsc, "amount": amount}})
    } else if behaviour == Behaviour::NestedPending {
        json!({"status": 1, "message": "Success",
               "data": {"status": "PENDING", "account_no": account, "Ifsc_code": p.ifsc, "amount": amount}})
    } else if behaviour == Behaviour::StaysPending || (behaviour == Behaviour::PendingAWhile && polls <= 3) {
        json!({"status": "PENDING", "code": "ENQ001", "message": "Please inquire status after some time",
               "data": {"account_no": account, "Ifsc_code": p.ifsc, "amount": amount}})
    } else {
        json!({"status": true, "code": "SU0000", "message": "Transaction Successful",
               "data": {"account_no": account, "Ifsc_code": p.ifsc, "amount": amount, "utr": format!("FAKEUTR{:06}", p.order_id)}})
    };
    if s.quirks.anonymous_status {
        if let Some(data) = body.get_mut("data").and_then(Value::as_object_mut) {
            data.retain(|k, _| k == "utr" || k == "status");
        }
    }
    if s.echo_ids {
        body["data"]["payout_id"] = json!(p.order_id);
        body["data"]["externalRef"] = json!(p.reference);
    }
    if s.internal_ids {
        body["data"]["payout_id"] = json!(format!("HOAD{:012}", p.order_id * 7919));
    }
    answer(200, body)
}

impl FakeGateway {
    /// Starts the fake on a free loopback port, on its own runtime thread.
    pub fn start() -> FakeGateway {
        FakeGateway::start_with(FakeOptions::default())
    }

    /// [`FakeGateway::start`] with a latency, or without the behaviours.
    pub fn start_with(opts: FakeOptions) -> FakeGateway {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("fake gateway runtime");
        let state = Arc::new(Mutex::new(FakeState { opts: Some(opts), ..FakeState::default() }));
        let routes = axum::Router::new()
            .route("/api/uat/merchant/getToken", post(token))
            .route("/api/payoutapi", post(payout))
            .route("/api/AtMoonPayout", post(status));
        let app = routes.clone().nest("/gw", routes).with_state(state.clone());
        let listener = runtime.block_on(tokio::net::TcpListener::bind(("127.0.0.1", 0))).expect("bind fake gateway");
        let addr = listener.local_addr().expect("addr");
        runtime.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeGateway { url: format!("http://{addr}"), state, runtime: Some(runtime) }
    }

    /// Applies a payout as an earlier run (with another journal) would have.
    pub fn preload(&self, reference: &str, account: &str, ifsc: &str, amount: &str) -> u64 {
        lock(&self.state).apply(reference, account, ifsc, amount, true)
    }

    /// [`FakeGateway::preload`], a payout that then failed at the bank (status `BE1001`).
    pub fn preload_bank_failed(&self, reference: &str, account: &str, ifsc: &str, amount: &str) -> u64 {
        let mut s = lock(&self.state);
        let order_id = s.apply(reference, account, ifsc, amount, true);
        if let Some(p) = s.payouts.last_mut() {
            p.bank_failed = true;
        }
        order_id
    }

    /// Status answers name the payout they are about (its order id as `payout_id`, its reference
    /// as `externalRef`), as the sandbox's and many real gateways' do.
    pub fn echo_ids(&self) {
        lock(&self.state).echo_ids = true;
    }

    /// Status answers name the payout by an internal id, never the `Order-Id` its posting got.
    pub fn internal_ids(&self) {
        lock(&self.state).internal_ids = true;
    }

    /// Turns wire-level differences on (see [`Quirks`]).
    pub fn set_quirks(&self, quirks: Quirks) {
        lock(&self.state).quirks = quirks;
    }

    /// How many answers were "unauthorised" because of an expired or unknown token.
    pub fn expired_answers(&self) -> u64 {
        lock(&self.state).expired_answers
    }

    /// Tokens issued so far.
    pub fn tokens_issued(&self) -> u64 {
        lock(&self.state).tokens
    }

    /// When the calls came.
    pub fn timeline(&self) -> Timeline {
        lock(&self.state).timeline.clone()
    }

    /// The gateway restarts its order-id counter: the next payout gets `next` + 1 (ids already
    /// given are given again; a look-up by such an id finds the first payout that had it).
    pub fn restart_order_ids(&self, next: u64) {
        lock(&self.state).next_order = next;
    }

    /// Draws each reference's behaviour from `seed` and the weighted `table`, the same for every
    /// posting of that reference, instead of reading it from the account number: a model test
    /// chooses accounts freely and still gets a known, replayable mix.
    pub fn draw_behaviours(&self, seed: u64, table: &[(Behaviour, u32)]) {
        lock(&self.state).draw = Some(Draw { seed, table: table.to_vec() });
    }

    /// The behaviour a posting of `reference` to `account` gets.
    pub fn behaviour_for(&self, account: &str, reference: &str) -> Behaviour {
        lock(&self.state).behaviour(account, reference)
    }

    /// Arms a freeze: the `n`-th request from now (1: the next; any call, token and status
    /// included) freezes the gateway. When it is a posting and `effect`, it first does what its
    /// behaviour says (applies the payout, or not); otherwise it has no effect. From then on every
    /// request is held, with no effect, until [`FakeGateway::thaw`]: a test sees [`frozen`] and kills
    /// the client at a known point, with nothing else happening at the gateway meanwhile.
    ///
    /// [`frozen`]: FakeGateway::frozen
    pub fn freeze_at(&self, n: u64, effect: bool) {
        let mut s = lock(&self.state);
        s.freeze_in = Some((n.max(1), effect));
    }

    /// The freezing request has arrived (and taken its effect, if it was to).
    pub fn frozen(&self) -> bool {
        lock(&self.state).frozen
    }

    /// Disarms the freeze and lets held requests go (each answered 502, to nobody).
    pub fn thaw(&self) {
        let mut s = lock(&self.state);
        s.freeze_in = None;
        s.silent = false;
        s.frozen = false;
        s.thaw_gen += 1;
    }

    /// Quirks now in force.
    pub fn quirks(&self) -> Quirks {
        lock(&self.state).quirks.clone()
    }

    /// The next payout to `account` fails at the payee's bank (status `BE1001`); later ones do not.
    pub fn fail_next(&self, account: &str) {
        lock(&self.state).fail_next.insert(account.trim_start_matches('0').to_string());
    }

    /// Payouts that moved money, per account (applied, and not failed at the bank): a double
    /// payment shows as 2.
    pub fn credited_per_account(&self) -> HashMap<String, u32> {
        let mut out = HashMap::new();
        for p in self.ledger().into_iter().filter(|p| !p.bank_failed) {
            *out.entry(p.account.trim_start_matches('0').to_string()).or_insert(0) += p.times_applied;
        }
        out
    }

    /// Every payout applied.
    pub fn ledger(&self) -> Vec<FakePayout> {
        lock(&self.state).payouts.clone()
    }

    /// Payouts applied per account (a double payment shows as 2).
    pub fn paid_per_account(&self) -> HashMap<String, u32> {
        let mut out = HashMap::new();
        for p in self.ledger() {
            *out.entry(p.account.trim_start_matches('0').to_string()).or_insert(0) += p.times_applied;
        }
        out
    }
}
