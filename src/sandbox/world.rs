//! The simulated gateway's world: tokens, payouts, the ledger of money moved, and the rules that
//! answer each call. No HTTP here: every call returns a [`Reply`] that the HTTP layer renders, so the
//! gateway's behaviour can be read in one place.
//!
//! The world never applies a reference twice (a second posting is TE0005), records every duplicate
//! attempt, and, when given a directory, appends every applied payout to `world.jsonl` before
//! answering, so a sandbox that dies with its client (the embedded one) comes back with the same
//! payouts applied.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::profile::{self, BANK_ERRORS, Knobs, Magic, Profile, dice, pick};
use crate::config::Credentials;
use crate::money::{self, Amount};

/// What the HTTP layer should do with a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// A JSON answer with this HTTP status.
    Json(u16, Value),
    /// An answer with no body (429, 503), optionally with Retry-After seconds.
    Empty(u16, Option<u64>),
    /// A non-JSON answer (an HTML error page).
    Html(u16, String),
    /// Wait, then answer (a lost answer: the client gives up long before).
    Delay(Duration, Box<Reply>),
    /// Drop the connection without answering (TCP reset).
    Reset,
}

/// How a payout ends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fate {
    /// `SU0000` or a `BE` code.
    pub code: String,
    /// Pending until this long after applying.
    pub settle_ms: u64,
    /// Pending until this many status inquiries have been answered.
    pub min_polls: u32,
    /// Never settles.
    pub forever: bool,
}

/// One applied payout: the ledger's row.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Payout {
    pub reference: String,
    pub order_id: String,
    pub amount: Amount,
    pub account: String,
    pub ifsc: String,
    pub mode: String,
    pub name: String,
    pub applied_at_ms: u64,
    pub fate: Fate,
    pub utr: String,
    /// Status answers describe another account (magic accounts 999900000014, 999900000019).
    #[serde(default)]
    pub status_other_account: bool,
    /// Status answers add this many paise of charges to the amount (magic account 999900000017).
    #[serde(default)]
    pub status_charges_paise: i64,
    /// Not the client's: planted to simulate a reference collision.
    #[serde(default)]
    pub foreign: bool,
    #[serde(default = "one")]
    pub times_applied: u32,
    #[serde(default)]
    pub duplicate_attempts: u32,
    #[serde(default)]
    pub status_lag_ms: u64,
}

fn one() -> u32 {
    1
}

/// A ledger entry as `GET /__sandbox/ledger` shows it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct LedgerEntry {
    pub reference: String,
    pub gateway_id: String,
    pub amount: Amount,
    pub account: String,
    pub ifsc: String,
    pub mode: String,
    pub name: String,
    /// SUCCESS, PENDING or FAILED, as of now.
    pub state: String,
    /// SU0000, ENQ001 or the BE code.
    pub code: String,
    pub utr: Option<String>,
    pub applied_at: String,
    pub times_applied: u32,
    pub duplicate_attempts: u32,
    pub foreign: bool,
}

/// The whole ledger.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Ledger {
    pub profile: Profile,
    pub seed: u64,
    pub payouts: Vec<LedgerEntry>,
    pub applied: u64,
    pub applied_amount: Amount,
    pub duplicate_attempts: u64,
    pub requests: u64,
}

/// Settings of one sandbox.
#[derive(Clone, Debug)]
pub struct SandboxOptions {
    pub profile: Profile,
    pub seed: u64,
    pub knobs: Knobs,
    pub credentials: Credentials,
    /// Requests per second above which the sandbox answers 429 (none: unlimited).
    pub rate_limit: Option<u32>,
}

impl SandboxOptions {
    pub fn new(profile: Profile, seed: u64) -> SandboxOptions {
        SandboxOptions {
            profile,
            seed,
            knobs: profile.knobs(),
            credentials: crate::config::example_credentials(),
            rate_limit: None,
        }
    }
}

/// A PG payment started by initiate, paid (or declined) on its page, checked by verify.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PgSession {
    pub token: String,
    pub transaction_id: String,
    pub pg_reference_no: String,
    pub amount: String,
    /// The customer's name and the merchant's redirect URL, as initiate was given them (shown on
    /// the payment page).
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub redirect_url: String,
    /// What the payer did on the payment page: nothing yet, paid, or declined.
    #[serde(default)]
    pub state: PgState,
}

/// Where a PG payment stands. Only the payment page moves it, once, from `Pending`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PgState {
    /// Initiated; the page was not used to pay.
    #[default]
    Pending,
    /// Paid on the page.
    Completed,
    /// Declined on the page.
    Failed,
}

/// One line of `world.jsonl`.
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
enum Record {
    Payout(Payout),
    Pg(PgSession),
}

/// The gateway's state. Lives behind a mutex; no method awaits.
pub struct World {
    opts: SandboxOptions,
    tokens: HashMap<String, Instant>,
    payouts: HashMap<String, Payout>,
    order: Vec<String>,
    by_order_id: HashMap<String, String>,
    post_attempts: HashMap<String, u32>,
    polls: HashMap<String, u32>,
    inquiries: HashMap<String, u32>,
    pg: HashMap<String, PgSession>,
    next_id: u64,
    issued: Vec<String>,
    log: Option<File>,
    pub requests: u64,
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

fn rfc3339(ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(ms as i64)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

fn get<'a>(fields: &'a [(String, String)], name: &str) -> &'a str {
    fields.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim()).unwrap_or("")
}

fn err(code: &str, message: &str) -> Reply {
    Reply::Json(200, json!({"status": 0, "code": code, "message": message}))
}

fn invalid_credentials() -> Reply {
    Reply::Json(401, json!({"code": 401, "status": "error", "message": "Invalid API credentials."}))
}

/// The document's 401, naming the headers a call needs that the request did not have (names
/// only, never a value). The message still starts as the document's, which is what a client reads.
fn missing_credentials(call: &str, missing: &[&str], needed: &str) -> Reply {
    Reply::Json(
        401,
        json!({"code": 401, "status": "error", "message": format!(
            "Invalid API credentials. {call} needs the headers {needed}; missing: {}.", missing.join(", "))}),
    )
}

/// Escapes text for an HTML page.
fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn html_500() -> Reply {
    Reply::Html(
        500,
        "<html><head><title>500 Internal Server Error</title></head><body><h1>Internal Server Error</h1></body></html>"
            .into(),
    )
}

/// What a stalled request finally gets, long after its client gave up.
fn gateway_timeout() -> Reply {
    Reply::Html(504, "<html><body><h1>504 Gateway Time-out</h1></body></html>".into())
}

/// The PG payment page around `body`: it says it is a sandbox, and what is being paid.
fn pg_html(s: &PgSession, body: &str) -> String {
    let e = html_escape;
    let back = if s.redirect_url.is_empty() {
        String::new()
    } else {
        format!(r#"<p>Merchant's redirect URL: <a href="{0}">{0}</a></p>"#, e(&s.redirect_url))
    };
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>AT MOON DPS sandbox: PG payment</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 2em auto">
<p style="background: #fff3cd; border: 1px solid #e0c060; padding: .5em">SANDBOX: this is payrun's simulated AT MOON DPS payment page. No real money moves.</p>
<h1>PG payment (sandbox)</h1>
<table>
<tr><td>Customer</td><td>{name}</td></tr>
<tr><td>Amount</td><td>&#8377;{amount}</td></tr>
<tr><td>transaction_id</td><td>{txn}</td></tr>
<tr><td>pg_reference_no</td><td>{pgref}</td></tr>
</table>
{body}
{back}
</body></html>
"#,
        name = e(&s.name),
        amount = e(&money::parse_plain(&s.amount).map(|a| a.to_indian()).unwrap_or_else(|| s.amount.clone())),
        txn = e(&s.transaction_id),
        pgref = e(&s.pg_reference_no),
    )
}

/// Header lookup used by the world: lower-case names, values trimmed.
pub type Headers = HashMap<String, String>;

fn header<'a>(h: &'a Headers, name: &str) -> &'a str {
    h.get(name).map(|s| s.trim()).unwrap_or("")
}

impl World {
    /// A world, replaying `dir/world.jsonl` when a directory is given (and appending to it from then on).
    pub fn open(opts: SandboxOptions, dir: Option<&Path>) -> std::io::Result<World> {
        let mut w = World {
            opts,
            tokens: HashMap::new(),
            payouts: HashMap::new(),
            order: Vec::new(),
            by_order_id: HashMap::new(),
            post_attempts: HashMap::new(),
            polls: HashMap::new(),
            inquiries: HashMap::new(),
            pg: HashMap::new(),
            next_id: 1,
            issued: Vec::new(),
            log: None,
            requests: 0,
        };
        if let Some(dir) = dir {
            crate::files::create_private_dir(dir)?;
            let path = dir.join("world.jsonl");
            if let Ok(f) = File::open(&path) {
                for line in BufReader::new(f).lines() {
                    // A torn last line (killed mid-write) is skipped: that payout's answer never left.
                    match serde_json::from_str::<Record>(&line?) {
                        Ok(Record::Payout(p)) => w.insert(p),
                        Ok(Record::Pg(s)) => {
                            w.pg.insert(s.token.clone(), s);
                        }
                        Err(_) => continue,
                    }
                }
            }
            w.log = Some(OpenOptions::new().create(true).append(true).mode(0o600).open(&path)?);
        }
        Ok(w)
    }

    pub fn options(&self) -> &SandboxOptions {
        &self.opts
    }

    fn seed(&self) -> u64 {
        self.opts.seed
    }

    fn knobs(&self) -> &Knobs {
        &self.opts.knobs
    }

    fn insert(&mut self, p: Payout) {
        if let Some(n) = p.order_id.strip_prefix("AMD").and_then(|n| n.parse::<u64>().ok()) {
            self.next_id = self.next_id.max(n + 1);
        }
        self.by_order_id.insert(p.order_id.clone(), p.reference.clone());
        self.order.push(p.reference.clone());
        self.payouts.insert(p.reference.clone(), p);
    }

    fn persist(&mut self, reference: &str) {
        if let Some(p) = self.payouts.get(reference) {
            let record = Record::Payout(p.clone());
            self.append(&record);
        }
    }

    fn append(&mut self, record: &Record) {
        let Some(log) = self.log.as_mut() else { return };
        if let Ok(mut line) = serde_json::to_vec(record) {
            line.push(b'\n');
            // One write per payout: survives the process being killed (not a power cut; it is a simulator).
            let _ = log.write_all(&line);
        }
    }

    fn new_order_id(&mut self) -> String {
        let id = format!("AMD{:010}", self.next_id);
        self.next_id += 1;
        id
    }

    fn token_ok(&self, token: &str) -> bool {
        self.tokens.get(token).is_some_and(|exp| Instant::now() < *exp)
    }

    fn creds_ok(&self, h: &Headers) -> Result<(), Reply> {
        let c = &self.opts.credentials;
        if header(h, "client_id").is_empty() {
            return Err(Reply::Json(
                400,
                json!({"code": 400, "status": false, "message": "Client Id headers is required."}),
            ));
        }
        if header(h, "access_key").is_empty() {
            return Err(Reply::Json(
                400,
                json!({"code": 400, "status": false, "message": "Access key headers is required."}),
            ));
        }
        let ok = header(h, "access_key") == c.access_key.expose()
            && header(h, "merchant_key") == c.merchant_key.expose()
            && header(h, "client_id") == c.client_id
            && header(h, "api_password") == c.api_password.expose();
        if ok { Ok(()) } else { Err(invalid_credentials()) }
    }

    /// `POST /api/uat/merchant/getToken`.
    pub fn issue_token(&mut self, h: &Headers) -> Reply {
        if let Err(r) = self.creds_ok(h) {
            return r;
        }
        self.requests += 1;
        let token = hex::encode(
            dice(self.seed(), &[b"token", &self.requests.to_le_bytes(), &now_ms().to_le_bytes()]).to_be_bytes(),
        ) + &hex::encode(dice(self.seed(), &[b"token2", &self.requests.to_le_bytes()]).to_be_bytes());
        let now = Instant::now();
        self.tokens.retain(|_, exp| *exp > now);
        self.tokens.insert(token.clone(), now + self.knobs().token_ttl);
        self.issued.push(token.clone());
        Reply::Json(200, json!({"status": true, "data": {"token": token}, "message": "Token generated sucessfully.!"}))
    }

    fn fate_for(&self, reference: &str, magic: Option<Magic>) -> Fate {
        let k = self.knobs();
        let seed = self.seed();
        let r = |what: &[u8]| dice(seed, &[what, reference.as_bytes()]);
        let span = |(lo, hi): (u64, u64), what: &[u8]| lo + pick(r(what), hi.saturating_sub(lo) + 1);
        let bank_code = || BANK_ERRORS[pick(r(b"be"), BANK_ERRORS.len() as u64) as usize].0.to_string();
        let ok = |settle_ms| Fate { code: "SU0000".into(), settle_ms, min_polls: 0, forever: false };
        match magic {
            Some(Magic::BankFailure) => Fate { code: "BE1001".into(), settle_ms: 300, min_polls: 0, forever: false },
            Some(Magic::PendingThenSuccess) => {
                Fate { code: "SU0000".into(), settle_ms: 0, min_polls: 3, forever: false }
            }
            Some(Magic::PendingForever) => Fate { code: "SU0000".into(), settle_ms: 0, min_polls: 0, forever: true },
            Some(Magic::PendingThenBankFailure) => {
                Fate { code: "BE2002".into(), settle_ms: 0, min_polls: 2, forever: false }
            }
            Some(_) => ok(0),
            None => {
                let roll = pick(r(b"fate"), 1000);
                if roll < k.bank_failure {
                    Fate { code: bank_code(), settle_ms: span(k.settle_ms, b"settle"), min_polls: 0, forever: false }
                } else if roll < k.bank_failure + k.long_pending {
                    ok(span(k.long_pending_ms, b"long"))
                } else {
                    ok(span(k.settle_ms, b"settle"))
                }
            }
        }
    }

    /// `POST /api/payoutapi` (form fields).
    pub fn post_payout(&mut self, fields: &[(String, String)]) -> Reply {
        self.requests += 1;
        if get(fields, "user_id") != self.opts.credentials.user_id {
            return invalid_credentials();
        }
        if !self.token_ok(get(fields, "utoken")) {
            return err("TE0012", "Invalid Token");
        }
        let account = get(fields, "accountNumber").to_string();
        let magic = profile::magic(&account);
        if magic == Some(Magic::CredentialsRefused) {
            return invalid_credentials();
        }
        let reference = get(fields, "externalRef").to_string();
        let (name, ifsc, amount_text) = (get(fields, "Name"), get(fields, "bankIfsc"), get(fields, "amount"));
        if [reference.as_str(), name, ifsc, amount_text, account.as_str()].iter().any(|v| v.is_empty()) {
            return err("TE0007", "Mandatory field missing");
        }
        let mode = get(fields, "transferMode").to_ascii_uppercase();
        if mode.is_empty() {
            return err("TE0008", "payment mode cannot be null");
        }
        let Some(amount) = money::parse_plain(amount_text).filter(|a| *a > Amount::ZERO) else {
            return err("TE0003", "Invalid Request Format");
        };
        if !matches!(mode.as_str(), "NEFT" | "IMPS" | "RTGS") {
            return err("TE0003", "Invalid Request Format");
        }
        let attempt = {
            let n = self.post_attempts.entry(reference.clone()).or_insert(0);
            *n += 1;
            *n
        };
        let first = attempt == 1;
        let k = self.knobs().clone();
        let roll = pick(dice(self.seed(), &[b"post", reference.as_bytes(), &attempt.to_le_bytes()]), 1000);
        // Faults before applying: nothing changes.
        match magic {
            Some(Magic::ServerErrorBeforeApply) if first => return html_500(),
            Some(Magic::RateLimitedFirst) if first => return Reply::Empty(429, Some(1)),
            Some(Magic::TokenInvalidFirst) if first => {
                self.tokens.remove(get(fields, "utoken"));
                return err("TE0012", "Invalid Token");
            }
            Some(Magic::RejectTe0020) => return err("TE0020", "Technical failure. Please contact support team"),
            _ => {}
        }
        // Profile faults spare the magic accounts, which behave exactly as their table says.
        let roll = if magic.is_some() { 999 } else { roll };
        if roll < k.post_5xx_before {
            return html_500();
        }
        if roll < k.post_5xx_before + k.post_429 {
            return Reply::Empty(429, Some(1));
        }
        if roll < k.post_5xx_before + k.post_429 + k.post_hang_before {
            // Stalled before it got to the payout: held, then an error page nobody waits for.
            return Reply::Delay(k.hang, Box::new(gateway_timeout()));
        }
        let collision = matches!(magic, Some(Magic::ReferenceCollision | Magic::CollisionAnswerLost));
        if collision && first && !self.payouts.contains_key(&reference) {
            // Someone else's payout already carries this reference (last month's file, say).
            let order_id = self.new_order_id();
            let p = Payout {
                reference: reference.clone(),
                order_id,
                amount: Amount::from_rupees(1),
                account: "000011112222".into(),
                ifsc: "SBIN0000001".into(),
                mode: "IMPS".into(),
                name: "Another Beneficiary".into(),
                applied_at_ms: now_ms().saturating_sub(86_400_000),
                fate: Fate { code: "SU0000".into(), settle_ms: 0, min_polls: 0, forever: false },
                utr: format!(
                    "{:012}",
                    pick(dice(self.seed(), &[b"utr-foreign", reference.as_bytes()]), 1_000_000_000_000)
                ),
                status_other_account: false,
                status_charges_paise: 0,
                foreign: true,
                times_applied: 1,
                duplicate_attempts: 0,
                status_lag_ms: 0,
            };
            self.insert(p);
            self.persist(&reference);
        }
        if magic == Some(Magic::AppliedByEarlierRun) && first && !self.payouts.contains_key(&reference) {
            // An earlier run, whose journal is not the client's, already paid this row.
            let order_id = self.new_order_id();
            let p = Payout {
                reference: reference.clone(),
                order_id,
                amount,
                account: account.clone(),
                ifsc: ifsc.to_ascii_uppercase(),
                mode: mode.clone(),
                name: name.to_string(),
                applied_at_ms: now_ms().saturating_sub(3_600_000),
                fate: Fate { code: "SU0000".into(), settle_ms: 0, min_polls: 0, forever: false },
                utr: format!("{:012}", pick(dice(self.seed(), &[b"utr", reference.as_bytes()]), 1_000_000_000_000)),
                status_other_account: false,
                status_charges_paise: 0,
                foreign: false,
                times_applied: 1,
                duplicate_attempts: 0,
                status_lag_ms: 0,
            };
            self.insert(p);
            self.persist(&reference);
        }
        if let Some(p) = self.payouts.get_mut(&reference) {
            p.duplicate_attempts += 1;
            if magic == Some(Magic::CollisionAnswerLost) && first {
                return Reply::Reset;
            }
            return err("TE0005", "Duplicate Payment Request");
        }
        // Apply.
        let order_id = self.new_order_id();
        let lag = match magic {
            Some(Magic::ResetAndLaggingStatus) => 2000,
            _ => k.status_lag.as_millis() as u64,
        };
        let p = Payout {
            reference: reference.clone(),
            order_id: order_id.clone(),
            amount,
            account: account.clone(),
            ifsc: ifsc.to_ascii_uppercase(),
            mode,
            name: name.to_string(),
            applied_at_ms: now_ms(),
            fate: self.fate_for(&reference, magic),
            utr: format!("{:012}", pick(dice(self.seed(), &[b"utr", reference.as_bytes()]), 1_000_000_000_000)),
            status_other_account: matches!(
                magic,
                Some(Magic::StatusOtherAccount | Magic::StatusByReferenceIsAnotherPayout)
            ),
            status_charges_paise: if magic == Some(Magic::StatusWithCharges) { 590 } else { 0 },
            foreign: false,
            times_applied: 1,
            duplicate_attempts: 0,
            status_lag_ms: lag,
        };
        self.insert(p);
        self.persist(&reference);
        let pending = magic == Some(Magic::PendingThenBankFailure)
            || pick(dice(self.seed(), &[b"enq", reference.as_bytes()]), 1000) < k.enq_at_posting;
        let answer = Reply::Json(
            200,
            json!({
                "message": "Success",
                "status": 1,
                "code": if pending { "ENQ001" } else { "SU0000" },
                "Transaction": [{"customer_name": name, "account_no": account, "Order-Id": order_id}],
            }),
        );
        // Faults after applying: the payout exists, the client cannot know.
        let lost_forever = k.hang;
        match magic {
            Some(Magic::ApplyThenTimeout) if first => return Reply::Delay(lost_forever, Box::new(answer)),
            Some(Magic::ApplyThenReset | Magic::ResetAndLaggingStatus | Magic::StatusByReferenceIsAnotherPayout)
                if first =>
            {
                return Reply::Reset;
            }
            Some(Magic::ApplyThen500Refusal) if first => {
                return Reply::Json(
                    500,
                    json!({"status": 0, "code": "TE0020", "message": "Technical failure. Please contact support team"}),
                );
            }
            Some(Magic::ApplyThenTe0020) if first => {
                return err("TE0020", "Technical failure. Please contact support team");
            }
            _ => {}
        }
        let r = roll - k.post_5xx_before - k.post_429 - k.post_hang_before;
        if r < k.post_apply_then_timeout {
            return Reply::Delay(lost_forever, Box::new(answer));
        }
        if r < k.post_apply_then_timeout + k.post_apply_then_reset {
            return Reply::Reset;
        }
        if r < k.post_apply_then_timeout + k.post_apply_then_reset + k.post_apply_then_5xx {
            return Reply::Html(502, "<html><body><h1>502 Bad Gateway</h1></body></html>".into());
        }
        answer
    }

    /// The state of a payout now: ("SUCCESS"|"PENDING"|"FAILED", code).
    fn state_of(&self, p: &Payout, polls: u32) -> (&'static str, String) {
        let f = &p.fate;
        let elapsed = now_ms().saturating_sub(p.applied_at_ms);
        if f.forever || elapsed < f.settle_ms || polls < f.min_polls {
            let code = if pick(dice(self.seed(), &[b"pend", p.reference.as_bytes(), &polls.to_le_bytes()]), 2) == 0 {
                "ENQ001"
            } else {
                "TE0009"
            };
            return ("PENDING", code.to_string());
        }
        if f.code == "SU0000" { ("SUCCESS", f.code.clone()) } else { ("FAILED", f.code.clone()) }
    }

    fn status_answer(&mut self, id: &str) -> Reply {
        let reference = match self.payouts.contains_key(id) {
            true => id.to_string(),
            false if self.knobs().status_by_reference_only => {
                return err("TE0011", "Invalid Payment reference number");
            }
            false => match self.by_order_id.get(id) {
                Some(r) => r.clone(),
                None => return err("TE0011", "Invalid Payment reference number"),
            },
        };
        let polls = {
            let n = self.polls.entry(reference.clone()).or_insert(0);
            *n += 1;
            *n - 1
        };
        let Some(p) = self.payouts.get(&reference) else {
            return err("TE0011", "Invalid Payment reference number");
        };
        if now_ms().saturating_sub(p.applied_at_ms) < p.status_lag_ms {
            return err("TE0011", "Invalid Payment reference number");
        }
        let (state, code) = self.state_of(p, polls);
        let account = if p.status_other_account { "000099998888".to_string() } else { p.account.clone() };
        // `clean` and `realistic` answer with the document's types (`"status": 1`, a number, every
        // time: an integrator's `=== 1` holds); only `chaos` varies the representation as real
        // gateways do (SPEC 4: number, string or boolean), which payrun's client must read.
        let style = pick(dice(self.seed(), &[b"style", p.reference.as_bytes(), &polls.to_le_bytes()]), 3);
        let ok_status = match (self.opts.profile, style) {
            (Profile::Clean | Profile::Realistic, _) | (Profile::Chaos, 0) => json!(1),
            (Profile::Chaos, 1) => json!("1"),
            (Profile::Chaos, _) => json!(true),
        };
        let (status, message) = match state {
            "SUCCESS" => (ok_status, "SUCCESS".to_string()),
            "PENDING" => (json!("PENDING"), "Please inquire status after some time".to_string()),
            _ => (
                json!(0),
                BANK_ERRORS
                    .iter()
                    .find(|(c, _)| *c == code)
                    .map(|(_, m)| m.to_string())
                    .unwrap_or_else(|| "Failed at bank".into()),
            ),
        };
        let mut body = json!({
            "message": message,
            "status": status,
            "code": code,
            "customer_name": p.name,
            "account_no": account,
            "Ifsc_code": p.ifsc,
            "payout_id": p.order_id,
            "externalRef": p.reference,
            "amount": (p.amount + Amount::from_paise(p.status_charges_paise)).to_wire(),
        });
        if state == "SUCCESS" {
            body["utr"] = json!(p.utr);
        }
        Reply::Json(200, body)
    }

    fn status_fault(&mut self, id: &str) -> Option<Reply> {
        let n = {
            let n = self.inquiries.entry(id.to_string()).or_insert(0);
            *n += 1;
            *n
        };
        let k = self.knobs();
        let roll = pick(dice(self.seed(), &[b"sfault", id.as_bytes(), &n.to_le_bytes()]), 1000);
        if roll < k.status_5xx {
            Some(html_500())
        } else if roll < k.status_5xx + k.status_429 {
            Some(Reply::Empty(429, Some(1)))
        } else if roll < k.status_5xx + k.status_429 + k.status_reset {
            Some(Reply::Reset)
        } else if roll < k.status_5xx + k.status_429 + k.status_reset + k.status_hang {
            Some(Reply::Delay(k.hang, Box::new(gateway_timeout())))
        } else {
            None
        }
    }

    /// `POST /api/AtMoonPayout` (JSON body; `method` PAYOUTSTATUS or PAYIN).
    pub fn at_moon_payout(&mut self, h: &Headers, body: &str) -> Reply {
        self.requests += 1;
        let Ok(v) = serde_json::from_str::<Value>(body) else {
            return err("TE0003", "Invalid Request Format");
        };
        let method = v.get("method").and_then(Value::as_str).unwrap_or("").to_ascii_uppercase();
        let needed: &[&str] = if method == "PAYOUTSTATUS" {
            &["x-client-id", "x-client-secret", "user_id", "utoken"]
        } else {
            &["user_id", "utoken"]
        };
        let missing: Vec<&str> = needed.iter().copied().filter(|n| header(h, n).is_empty()).collect();
        if !missing.is_empty() {
            let call = if method.is_empty() { "This call".to_string() } else { method.clone() };
            let needed = match method.as_str() {
                "PAYOUTSTATUS" => {
                    "x-client-id (the client id), x-client-secret (the API password), user_id and utoken (the token)"
                }
                _ => "user_id and utoken (the token)",
            };
            return missing_credentials(&call, &missing, needed);
        }
        if header(h, "user_id") != self.opts.credentials.user_id {
            return invalid_credentials();
        }
        if method == "PAYOUTSTATUS"
            && (header(h, "x-client-id") != self.opts.credentials.client_id
                || header(h, "x-client-secret") != self.opts.credentials.api_password.expose())
        {
            return invalid_credentials();
        }
        if !self.token_ok(header(h, "utoken")) {
            return err("TE0012", "Invalid Token");
        }
        match method.as_str() {
            "PAYOUTSTATUS" => {
                let id = match v.get("payout_id") {
                    Some(Value::String(s)) => s.trim().to_string(),
                    Some(Value::Number(n)) => n.to_string(),
                    _ => String::new(),
                };
                if id.is_empty() {
                    return err("TE0011", "Invalid Payment reference number");
                }
                if let Some(fault) = self.status_fault(&id) {
                    return fault;
                }
                self.status_answer(&id)
            }
            "PAYIN" => self.payin(&v),
            _ => err("TE0003", "Invalid Request Format"),
        }
    }

    /// `GET /payout/status/{reference}` (the document's "payment verify" endpoint). The document
    /// shows credentials for it in three forms; any one that is right is enough: the four token
    /// headers, `x-client-id` + `x-client-secret`, or `user_id` + a valid `utoken`.
    pub fn verify(&mut self, h: &Headers, reference: &str) -> Reply {
        self.requests += 1;
        let c = &self.opts.credentials;
        let by_secret = !header(h, "x-client-id").is_empty()
            && header(h, "x-client-id") == c.client_id
            && header(h, "x-client-secret") == c.api_password.expose();
        let by_token =
            !header(h, "user_id").is_empty() && header(h, "user_id") == c.user_id && self.token_ok(header(h, "utoken"));
        if !(by_secret || by_token) {
            if let Err(r) = self.creds_ok(h) {
                return r;
            }
        }
        if let Some(fault) = self.status_fault(reference) {
            return fault;
        }
        self.status_answer(reference.trim())
    }

    fn payin(&mut self, v: &Value) -> Reply {
        let s = |k: &str| {
            v.get(k).map(|x| x.as_str().map(str::to_string).unwrap_or_else(|| x.to_string())).unwrap_or_default()
        };
        let mode = s("payment_mode").to_ascii_uppercase();
        let txn = s("merchantTransactionId");
        let amount = s("amount");
        if txn.is_empty() || amount.is_empty() || money::parse_plain(&amount).is_none() {
            return Reply::Json(
                200,
                json!({"status": "F", "message": "merchantTransactionId and amount are required"}),
            );
        }
        if !matches!(mode.as_str(), "INTENT" | "COLLECT" | "QR") {
            return Reply::Json(200, json!({"status": "F", "message": "payment_mode must be INTENT, COLLECT or QR"}));
        }
        if mode == "COLLECT" && s("payer_vpa").is_empty() {
            return Reply::Json(200, json!({"status": "F", "message": "payer_vpa is required for COLLECT"}));
        }
        let n = self.new_order_id();
        let txn_id = format!("UF{:023}", pick(dice(self.seed(), &[b"payin", txn.as_bytes()]), u64::MAX));
        let intent = format!(
            "upi://pay?pa=fpay.moonven@finobank&pn=AT MOON VENTURES PRIVATE LIMITED&tr={txn_id}&am={amount}&cu=INR&mode=00&purpose=00&mc=5816&tn=Payment"
        );
        Reply::Json(
            200,
            json!({"status": "S", "message": "success", "response": {"success": true, "message": "success", "data": {
                "payment_method": "upi", "merchantId": "D7916FEC-SAND-BOX0-0000-9E4C83CCD49E", "order_id": format!("ZYRO_{}", &n[3..]),
                "merchantTransactionId": txn, "transactionId": txn_id, "intent_url": intent}}}),
        )
    }

    /// `POST /api/uat/merchant/pg/payment/initiate` (form fields).
    pub fn pg_initiate(&mut self, h: &Headers, fields: &[(String, String)], host: &str) -> Reply {
        self.requests += 1;
        if let Err(r) = self.creds_ok(h) {
            return r;
        }
        if !self.token_ok(get(fields, "api_token")) {
            return Reply::Json(200, json!({"status": false, "code": "TE0012", "message": "Invalid Token"}));
        }
        let missing: Vec<&str> = ["name", "phone", "email", "amount", "redirect_url"]
            .into_iter()
            .filter(|k| get(fields, k).is_empty())
            .collect();
        if !missing.is_empty() {
            return Reply::Json(
                200,
                json!({"status": false, "code": "TE0007", "message": format!("Mandatory field missing: {}", missing.join(", "))}),
            );
        }
        let amount = get(fields, "amount").to_string();
        if money::parse_plain(&amount).is_none() {
            return Reply::Json(200, json!({"status": false, "code": "TE0003", "message": "Invalid amount"}));
        }
        let n = self.next_id;
        self.next_id += 1;
        let h1 = dice(self.seed(), &[b"pg", &n.to_le_bytes()]);
        let token = format!("{}{}", hex::encode(h1.to_be_bytes()), hex::encode(dice(h1, &[b"2"]).to_be_bytes()));
        let transaction_id = format!("SB{:010}", pick(h1, 10_000_000_000));
        let pg_reference_no = format!("PG{}{:06}", chrono::Utc::now().format("%Y%m%d"), n % 1_000_000);
        let session = PgSession {
            token: token.clone(),
            transaction_id: transaction_id.clone(),
            pg_reference_no: pg_reference_no.clone(),
            amount,
            name: get(fields, "name").to_string(),
            redirect_url: get(fields, "redirect_url").to_string(),
            state: PgState::Pending,
        };
        self.append(&Record::Pg(session.clone()));
        self.pg.insert(token.clone(), session);
        Reply::Json(
            200,
            json!({"status": true, "transaction_id": transaction_id, "pg_reference_no": pg_reference_no,
                   "url": format!("http://{host}/pg/payment/{token}"), "message": "Payment Initiate URL Successfuly.!"}),
        )
    }

    /// `POST /pg/payment/{token}/response` (form fields `transaction_id`, `pg_reference_no`).
    pub fn pg_verify(&mut self, h: &Headers, token: &str, fields: &[(String, String)]) -> Reply {
        self.requests += 1;
        if let Err(r) = self.creds_ok(h) {
            return r;
        }
        let Some(s) = self.pg.get(token) else {
            return Reply::Json(200, json!({"status": false, "message": "Invalid payment token"}));
        };
        if get(fields, "transaction_id") != s.transaction_id || get(fields, "pg_reference_no") != s.pg_reference_no {
            return Reply::Json(
                200,
                json!({"status": false, "message": "transaction_id or pg_reference_no does not match"}),
            );
        }
        let amount = money::parse_plain(&s.amount).map(|a| format!("{}00000000", a.to_wire())).unwrap_or_default();
        // The document shows only the paid answer; before the page was used to pay, the same shape
        // says so (inner status false, state PENDING, no UTR), and after a decline, FAILED.
        let (paid, code, state, utr) = match s.state {
            PgState::Completed => (
                true,
                "PAYMENT_SUCCESS",
                "COMPLETED",
                format!("{:012}", pick(dice(self.seed(), &[token.as_bytes()]), 1_000_000_000_000)),
            ),
            PgState::Pending => (false, "PAYMENT_PENDING", "PENDING", String::new()),
            PgState::Failed => (false, "PAYMENT_DECLINED", "FAILED", String::new()),
        };
        Reply::Json(
            200,
            json!({"status": true, "data": {"status": paid, "code": code, "data": {
                "transaction_id": s.transaction_id, "pg_reference_no": s.pg_reference_no, "amount": amount,
                "state": state, "type": "UPI", "utr_no": utr}},
                "message": "Details Fetched Successfuly.!"}),
        )
    }

    /// `GET /pg/payment/{token}`: the payment page of the URL initiate returned, where a payer pays
    /// or declines (a sandbox page: it says so, and moves no money).
    pub fn pg_page(&mut self, token: &str) -> Reply {
        let Some(s) = self.pg.get(token) else {
            return Reply::Json(404, json!({"status": false, "message": "Invalid payment token"}));
        };
        let amount = money::parse_plain(&s.amount).map(|a| a.to_indian()).unwrap_or_else(|| s.amount.clone());
        let e = |t: &str| html_escape(t);
        let action = format!("/pg/payment/{}/pay", e(token));
        let body = match s.state {
            PgState::Pending => format!(
                r#"<p>Pay <b>&#8377;{amount}</b> to the merchant?</p>
<form method="post" action="{action}">
<button type="submit" name="action" value="pay">Pay &#8377;{amount} (sandbox)</button>
<button type="submit" name="action" value="decline">Decline</button>
</form>"#,
                amount = e(&amount)
            ),
            PgState::Completed => "<p><b>Paid.</b> PG verify now reports this payment COMPLETED.</p>".to_string(),
            PgState::Failed => "<p><b>Declined.</b> PG verify now reports this payment FAILED.</p>".to_string(),
        };
        Reply::Html(200, pg_html(s, &body))
    }

    /// `POST /pg/payment/{token}/pay` (the payment page's form, field `action`: `pay` or
    /// `decline`): the payer's answer, recorded once; a second answer changes nothing.
    pub fn pg_pay(&mut self, token: &str, fields: &[(String, String)]) -> Reply {
        let Some(s) = self.pg.get_mut(token) else {
            return Reply::Json(404, json!({"status": false, "message": "Invalid payment token"}));
        };
        let next = match get(fields, "action").to_ascii_lowercase().as_str() {
            "pay" => PgState::Completed,
            "decline" => PgState::Failed,
            _ => {
                return Reply::Json(
                    400,
                    json!({"status": false, "message": "the form's field action must be pay or decline"}),
                );
            }
        };
        let changed = s.state == PgState::Pending;
        if changed {
            s.state = next;
        }
        let s = s.clone();
        if changed {
            self.append(&Record::Pg(s.clone()));
        }
        let body = match s.state {
            PgState::Completed => "<p><b>Paid.</b> PG verify now reports this payment COMPLETED.</p>",
            PgState::Failed => "<p><b>Declined.</b> PG verify now reports this payment FAILED.</p>",
            PgState::Pending => "<p>Not paid.</p>",
        };
        Reply::Html(200, pg_html(&s, body))
    }

    /// How many distinct references have been posted (applied or not).
    pub fn references_posted(&self) -> usize {
        self.post_attempts.len()
    }

    /// Every token issued so far (a test instrument: lets a test check no token leaked anywhere).
    pub fn issued_tokens(&self) -> Vec<String> {
        self.issued.clone()
    }

    /// The ledger of money moved, as of now (does not count as a status inquiry).
    pub fn ledger(&self) -> Ledger {
        let mut payouts = Vec::with_capacity(self.order.len());
        let mut applied_amount = Amount::ZERO;
        let mut duplicate_attempts = 0;
        for r in &self.order {
            let Some(p) = self.payouts.get(r) else { continue };
            let polls = self.polls.get(r).copied().unwrap_or(0);
            let (state, code) = self.state_of(p, polls);
            if !p.foreign {
                applied_amount += p.amount;
            }
            duplicate_attempts += u64::from(p.duplicate_attempts);
            payouts.push(LedgerEntry {
                reference: p.reference.clone(),
                gateway_id: p.order_id.clone(),
                amount: p.amount,
                account: p.account.clone(),
                ifsc: p.ifsc.clone(),
                mode: p.mode.clone(),
                name: p.name.clone(),
                state: state.to_string(),
                code,
                utr: (state == "SUCCESS").then(|| p.utr.clone()),
                applied_at: rfc3339(p.applied_at_ms),
                times_applied: p.times_applied,
                duplicate_attempts: p.duplicate_attempts,
                foreign: p.foreign,
            });
        }
        Ledger {
            profile: self.opts.profile,
            seed: self.opts.seed,
            applied: payouts.iter().filter(|p| !p.foreign).count() as u64,
            payouts,
            applied_amount,
            duplicate_attempts,
            requests: self.requests,
        }
    }
}
