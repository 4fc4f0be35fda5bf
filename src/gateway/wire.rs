//! Reading the gateway's answers: a lenient JSON reader and the classification of every answer into
//! an outcome the engine can branch on (SPEC section 4).
//!
//! Everything here is a pure function of (HTTP status, Retry-After, body text), so each rule is unit
//! tested with hand-made bodies, including the API document's own broken examples (a missing comma,
//! trailing commas, `//` comments around the JSON). Nothing here may panic on any input: a body we
//! cannot read is an *unknown* outcome (rule 2), never a failure and never a crash.
//!
//! The classification is deliberately conservative: only an answer that proves the gateway did not
//! act (a 429/503 with an empty body, a refused connection) is "not sent"; only a known failure code
//! is a final rejection; everything else that is not clearly "accepted" is "unknown".

use std::time::Duration;

use serde_json::{Map, Value};

use super::{Payee, PayoutOutcome, StatusOutcome, TokenOutcome};

/// Parses a body as JSON, repairing what the gateway's own examples get wrong: `//` comments,
/// trailing commas, a missing comma at the end of a line, and text around the object. `None` when
/// there is no JSON value to be found.
///
/// An object that gives one key twice with different values (`"code"` and `"Code"`, or `"code"`
/// twice) has no reading: a parser that keeps the first and one that keeps the last disagree about
/// what the gateway said, so the body is `None` (an unknown answer, rule 2), never a guess.
pub fn parse_lenient(body: &str) -> Option<Value> {
    parse_found(body).map(|(v, _)| v)
}

/// Where [`parse_found`] found the JSON value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Found {
    /// The body is JSON (perhaps with the document's comments and missing or extra commas).
    Body,
    /// An object cut out of other text (an HTML page, a proxy's message around it).
    InText,
}

/// [`parse_lenient`], saying whether the value was the body or only found inside other text. An
/// object found inside an HTML page or other text is read for what it may say (a message, an
/// order id to ask by), but it proves nothing about a payout: the page may be a proxy's, quoting a
/// request or another answer.
fn parse_found(body: &str) -> Option<(Value, Found)> {
    let body = body.trim_start_matches('\u{feff}').trim();
    if body.is_empty() {
        return None;
    }
    match strict(body) {
        Ok(v) => return Some((v, Found::Body)),
        Err(Strictness::Ambiguous) => return None,
        Err(Strictness::Syntax) => {}
    }
    let repaired = repair(body);
    match strict(&repaired) {
        Ok(v) => return Some((v, Found::Body)),
        Err(Strictness::Ambiguous) => return None,
        Err(Strictness::Syntax) => {}
    }
    // Text around one object (an HTML wrapper, a "//Success Response." line): take the outermost braces.
    let start = repaired.find('{')?;
    let end = repaired.rfind('}')?;
    if end <= start {
        return None;
    }
    strict(&repaired[start..=end]).ok().map(|v| (v, Found::InText))
}

/// Why [`strict`] gave no value.
#[derive(Debug, PartialEq, Eq)]
enum Strictness {
    /// Not JSON.
    Syntax,
    /// JSON, but an object gives one key (as [`same_key`] compares keys) two different values.
    Ambiguous,
}

const AMBIGUOUS: &str = "payrun: one key with two values";

/// Parses JSON text, refusing an object whose keys repeat with different values.
fn strict(text: &str) -> Result<Value, Strictness> {
    use serde::de::DeserializeSeed;
    let mut de = serde_json::Deserializer::from_str(text);
    let v = NoConflicts.deserialize(&mut de).and_then(|v| de.end().map(|()| v));
    v.map_err(|e| if e.to_string().starts_with(AMBIGUOUS) { Strictness::Ambiguous } else { Strictness::Syntax })
}

/// Builds a [`Value`] like serde_json's own, but fails on a repeated key with another value.
struct NoConflicts;

impl<'de> serde::de::DeserializeSeed<'de> for NoConflicts {
    type Value = Value;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for NoConflicts {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(v) = seq.next_element_seed(NoConflicts)? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(NoConflicts)?;
            match out.iter().find(|(k, _)| same_key(k, &key)) {
                Some((_, first)) if *first != value => {
                    return Err(serde::de::Error::custom(format!("{AMBIGUOUS}: {key}")));
                }
                Some(_) => {}
                None => {
                    out.insert(key, value);
                }
            }
        }
        Ok(Value::Object(out))
    }
}

/// One pass over the text that drops `//` and `/* */` comments outside strings, drops commas that are
/// followed by a closing bracket, and inserts a comma where a value ends and the next key or value
/// begins on a later line without one. Works on chars, so it cannot split a UTF-8 sequence.
fn repair(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len() + 16);
    let mut i = 0;
    let mut in_string = false;
    // Whether the last significant char written ends a value (so a following value needs a comma).
    let mut value_ended = false;
    let mut saw_newline = false;
    while i < chars.len() {
        let c = chars[i];
        if in_string {
            out.push(c);
            if c == '\\' {
                if let Some(&n) = chars.get(i + 1) {
                    out.push(n);
                    i += 1;
                }
            } else if c == '"' {
                in_string = false;
                value_ended = true;
                saw_newline = false;
            }
            i += 1;
            continue;
        }
        match c {
            '/' if chars.get(i + 1) == Some(&'/') => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
                continue;
            }
            '/' if chars.get(i + 1) == Some(&'*') => {
                i += 2;
                while i + 1 < chars.len() && !(chars[i] == '*' && chars[i + 1] == '/') {
                    i += 1;
                }
                i += 2;
                continue;
            }
            ',' => {
                // Drop the comma when the next significant char closes a container.
                let mut j = i + 1;
                while j < chars.len() && chars[j].is_whitespace() {
                    j += 1;
                }
                // Skip comments between the comma and the bracket too.
                if j + 1 < chars.len() && chars[j] == '/' && chars[j + 1] == '/' {
                    while j < chars.len() && chars[j] != '\n' {
                        j += 1;
                    }
                    while j < chars.len() && chars[j].is_whitespace() {
                        j += 1;
                    }
                }
                if j < chars.len() && (chars[j] == '}' || chars[j] == ']') {
                    i += 1;
                    continue;
                }
                out.push(c);
                value_ended = false;
            }
            '\n' => {
                out.push(c);
                saw_newline = true;
            }
            c if c.is_whitespace() => out.push(c),
            '"' | '{' | '[' => {
                if value_ended && saw_newline {
                    out.push(',');
                }
                out.push(c);
                in_string = c == '"';
                value_ended = false;
                saw_newline = false;
            }
            '}' | ']' => {
                out.push(c);
                value_ended = true;
                saw_newline = false;
            }
            ':' => {
                out.push(c);
                value_ended = false;
            }
            c => {
                // A bare literal (number, true, false, null) starting on a new line after a value.
                if value_ended && saw_newline && (c.is_ascii_alphanumeric() || c == '-') {
                    out.push(',');
                }
                out.push(c);
                value_ended = c.is_ascii_alphanumeric() || c == '.';
                saw_newline = false;
            }
        }
        i += 1;
    }
    out
}

/// Two keys are the same to payrun when they are equal in lower case without `_`, `-` and spaces
/// (`Order-Id` = `order_id`). Compared character by character: it runs for every key of every
/// answer, so it allocates nothing.
fn same_key(a: &str, b: &str) -> bool {
    fn norm(k: &str) -> impl Iterator<Item = char> + '_ {
        k.chars().filter(|c| !matches!(c, '_' | '-' | ' ')).flat_map(char::to_lowercase)
    }
    a == b || norm(a).eq(norm(b))
}

/// Looks a field up by any of `names` (compared with [`same_key`]) in `obj`.
pub fn field<'a>(obj: &'a Value, names: &[&str]) -> Option<&'a Value> {
    let map = obj.as_object()?;
    for name in names {
        if let Some((_, v)) = map.iter().find(|(k, _)| same_key(k, name)) {
            return Some(v);
        }
    }
    None
}

/// A field as text: strings as they are, numbers and booleans printed, null and containers as None.
pub fn text(obj: &Value, names: &[&str]) -> Option<String> {
    match field(obj, names)? {
        Value::String(s) => {
            let t = s.trim();
            (!t.is_empty()).then(|| t.to_string())
        }
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Looks in the object itself, then in a nested `data` object (and `data.data`), then in a
/// `Transaction` object or the first item of a `Transaction` list (the shape the document gives the
/// payout answer, which a gateway may reuse for status answers): the gateway nests answers
/// differently per endpoint.
pub fn text_deep(obj: &Value, names: &[&str]) -> Option<String> {
    text(obj, names)
        .or_else(|| {
            let data = field(obj, &["data", "response"])?;
            text(data, names).or_else(|| text(field(data, &["data"])?, names))
        })
        .or_else(|| match field(obj, &["Transaction", "transactions"])? {
            Value::Array(items) => text(items.first()?, names),
            inner @ Value::Object(_) => text(inner, names),
            _ => None,
        })
}

/// The `code` of an answer, upper-cased: `"SU0000"`, `"TE0005"`, `"401"`.
pub fn code(obj: &Value) -> Option<String> {
    text(obj, &["code", "status_code", "statusCode", "errorCode", "error_code"]).map(|c| c.to_ascii_uppercase())
}

/// What an answer's `status` field says, whatever its type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flag {
    /// `1`, `true`, `"1"`, `"true"`, `"success"`, `"S"`, `"OK"`.
    Yes,
    /// `0`, `false`, `"0"`, `"error"`, `"failure"`, `"F"`.
    No,
    /// `"pending"`, `"P"`.
    Pending,
    /// Absent or anything else.
    Other,
}

/// Reads `status` as number, string or boolean.
pub fn status_flag(obj: &Value) -> Flag {
    match field(obj, &["status"]) {
        Some(Value::Bool(true)) => Flag::Yes,
        Some(Value::Bool(false)) => Flag::No,
        Some(Value::Number(n)) => match n.as_f64() {
            Some(x) if x == 1.0 => Flag::Yes,
            Some(x) if x == 0.0 => Flag::No,
            _ => Flag::Other,
        },
        Some(Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "success" | "successful" | "s" | "ok" | "y" | "yes" => Flag::Yes,
            "0" | "false" | "error" | "failure" | "failed" | "fail" | "f" | "n" | "no" => Flag::No,
            "pending" | "p" | "processing" | "in_process" => Flag::Pending,
            _ => Flag::Other,
        },
        _ => Flag::Other,
    }
}

/// The answer's message, redacted (see [`redact`]): it goes to the journal and the result file.
fn message(obj: &Value) -> String {
    redact(&text(obj, &["message", "msg", "remark", "description", "error"]).unwrap_or_default())
}

/// Replaces every run of 24 or more letters, digits, `_` or `-` with `[redacted]`. Gateway text
/// ends up in the journal, the result file and on the terminal; a gateway that echoes a request
/// back would otherwise put a token or key there. Account numbers (at most 18 digits), order ids,
/// UTRs and codes are shorter and pass.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.chars().count() >= 24 {
            out.push_str("[redacted]");
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

/// Whether a message says "success" and nothing else ("Transaction Unsuccessful" does not).
fn says_success(msg: &str) -> bool {
    matches!(
        msg.trim().trim_end_matches(['.', '!']).to_ascii_uppercase().as_str(),
        "SUCCESS" | "SUCCESSFUL" | "COMPLETED SUCCESSFULLY" | "PAYMENT SUCCESS" | "TRANSACTION SUCCESSFUL"
    )
}

/// Whether an answer says the API credentials were refused (HTTP 401 in the body, code 401/601, or
/// the document's sentence).
fn says_credentials_refused(obj: &Value) -> bool {
    matches!(code(obj).as_deref(), Some("401") | Some("601"))
        || message(obj).to_ascii_lowercase().contains("invalid api credentials")
}

/// Parses a `Retry-After` header value: seconds (`120`), or an HTTP date (`Wed, 21 Oct 2015
/// 07:28:00 GMT`, RFC 9110's preferred form), counted from now. At most an hour; a date already
/// past is zero.
pub fn retry_after(value: Option<&str>) -> Option<Duration> {
    retry_after_at(value, chrono::Utc::now())
}

/// [`retry_after`] as of `now`.
pub fn retry_after_at(value: Option<&str>, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let value = value?.trim();
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(3600.0)));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = at.with_timezone(&chrono::Utc).signed_duration_since(now);
    Some(wait.to_std().unwrap_or(Duration::ZERO).min(Duration::from_secs(3600)))
}

/// Whether an HTTP answer proves the gateway did not act: 429 or 503 with an empty body (rule 4).
fn refused_before_processing(http: u16, body: &str) -> bool {
    (http == 429 || http == 503) && body.trim().is_empty()
}

/// The start of a body for a message, on one line, redacted.
fn short(body: &str) -> String {
    let t: String = body.trim().chars().take(80).collect();
    redact(&t.replace(['\n', '\r'], " "))
}

fn unknown(http: u16, body: &str, what: &str) -> String {
    if body.trim().is_empty() {
        format!("HTTP {http} with an empty body{what}")
    } else {
        format!("HTTP {http}{what}: {}", short(body))
    }
}

/// What the evidence log keeps of an HTTP answer: its code and the gateway's message, redacted
/// (never the body itself: it may echo a request, and a token answer holds the token).
pub fn code_and_message(body: &str, token_call: bool) -> (Option<String>, String) {
    match parse_lenient(body) {
        Some(v) if token_call => (code(&v), String::new()),
        Some(v) => (code(&v), message(&v)),
        None if token_call || body.trim().is_empty() => (None, String::new()),
        None => (None, short(body)),
    }
}

/// Classifies the answer to a payout posting (`POST /api/payoutapi`).
///
/// Codes are read only on an HTTP 2xx answer (SPEC 4): a 5xx is unknown whatever its body says (an
/// error page may carry a refusal code after the payout was applied), and so is a 429 or 503 that
/// has a body. Of the other non-2xx answers only 401 (credentials) and TE0012 (token: the gateway
/// did not act) are read; anything else proves nothing and leaves the payout in doubt.
pub fn classify_payout(http: u16, retry: Option<Duration>, body: &str) -> PayoutOutcome {
    if refused_before_processing(http, body) {
        return PayoutOutcome::NotSent { retry_after: retry, reason: format!("HTTP {http} (gateway busy)") };
    }
    if http >= 500 || http == 429 {
        return PayoutOutcome::Unknown { reason: unknown(http, body, " (an error answer proves nothing)") };
    }
    let Some((v, found)) = parse_found(body) else {
        if http == 401 {
            return PayoutOutcome::CredentialsRefused { message: format!("HTTP 401: {}", short(body)) };
        }
        return PayoutOutcome::Unknown { reason: unknown(http, body, " (no JSON)") };
    };
    let msg = message(&v);
    if http == 401 || says_credentials_refused(&v) {
        return PayoutOutcome::CredentialsRefused { message: msg };
    }
    let code = code(&v);
    if code.as_deref() == Some("TE0012") {
        return PayoutOutcome::TokenInvalid;
    }
    if !(200..300).contains(&http) {
        return PayoutOutcome::Unknown { reason: unknown(http, body, " (not a 2xx answer)") };
    }
    match code.as_deref() {
        Some("TE0005") => return PayoutOutcome::Duplicate { message: msg },
        // A refusal proves nothing when it is only found inside other text (an HTML page), or
        // when the same answer shows signs that the payout was taken: an order id, a "yes"
        // status, a nested success. Such an answer contradicts itself: the payout is in doubt.
        // HTTP 202 (or any 2xx but 200) says the request was taken for processing, not refused
        // before it: a refusal code beside it is no proof.
        Some("TE0003" | "TE0007" | "TE0008") if http != 200 => {
            return PayoutOutcome::Unknown {
                reason: unknown(http, body, " (a refusal on a 2xx other than 200 proves nothing)"),
            };
        }
        Some("TE0003" | "TE0007" | "TE0008") if found == Found::InText => {
            return PayoutOutcome::Unknown {
                reason: unknown(http, body, " (a refusal inside other text proves nothing)"),
            };
        }
        Some("TE0003" | "TE0007" | "TE0008") if shows_taken(&v) => {
            return PayoutOutcome::Unknown {
                reason: unknown(http, body, " (a refusal beside signs the payout was taken proves nothing)"),
            };
        }
        Some(c @ ("TE0003" | "TE0007" | "TE0008")) => {
            return PayoutOutcome::Rejected { code: c.to_string(), message: msg };
        }
        Some("TE0020") => return PayoutOutcome::TechnicalFailure { message: msg },
        Some("SU0000") => return accepted(&v, false, Some("SU0000"), msg),
        Some("ENQ001") => return accepted(&v, true, Some("ENQ001"), msg),
        _ => {}
    }
    let has_txn = field(&v, &["Transaction", "transactions", "data"]).is_some();
    match status_flag(&v) {
        Flag::Yes if code.is_none() && (has_txn || says_success(&msg)) => accepted(&v, false, None, msg),
        Flag::Pending if code.is_none() => accepted(&v, true, None, msg),
        _ => PayoutOutcome::Unknown { reason: unknown(http, body, " (no known code)") },
    }
}

/// Whether a posting's answer shows signs that the payout was taken: a transaction with an order
/// id, or a nested success. (A top-level `status` of 1 beside a refusal code is not such a sign:
/// a gateway may mean "the API call worked", and the code decides, as the README's readings say.)
fn shows_taken(v: &Value) -> bool {
    let txn_id = match field(v, &["Transaction", "transactions", "data"]) {
        Some(Value::Array(items)) => items.iter().any(|t| text(t, &ORDER_ID_KEYS).is_some()),
        Some(obj @ Value::Object(_)) => text(obj, &ORDER_ID_KEYS).is_some(),
        _ => false,
    };
    txn_id || nested_verdicts(v).success
}

/// The names a posting's answer gives the gateway's order id under.
const ORDER_ID_KEYS: [&str; 7] = ["Order-Id", "order_id", "orderid", "payout_id", "txn_id", "transaction_id", "id"];

/// The gateway's order id from an accepted posting: `Transaction[0]["Order-Id"]`, or a top-level id.
fn order_id(v: &Value) -> Option<String> {
    let txn = field(v, &["Transaction", "transactions", "data"]);
    let from_txn = match txn {
        Some(Value::Array(items)) => items.first().and_then(|t| text(t, &ORDER_ID_KEYS)),
        Some(obj @ Value::Object(_)) => text(obj, &ORDER_ID_KEYS),
        _ => None,
    };
    from_txn.or_else(|| text(v, &ORDER_ID_KEYS))
}

fn accepted(v: &Value, pending: bool, code: Option<&str>, message: String) -> PayoutOutcome {
    PayoutOutcome::Accepted {
        // An answer listing several transactions does not say which order id is this posting's.
        gateway_ref: order_id(v).filter(|_| !several_transactions(v)),
        pending,
        code: code.map(str::to_string),
        message,
        payee: payee(v),
    }
}

/// The beneficiary a status answer is about (used for rule 7: an answer counts only for its own row).
fn payee(v: &Value) -> Payee {
    Payee {
        name: text_deep(v, &["customer_name", "name", "beneficiary_name"]),
        account: text_deep(v, &["account_no", "accountNumber", "account_number", "beneficiary_account_number"]),
        ifsc: text_deep(v, &["Ifsc_code", "ifsc", "bankIfsc", "beneficiary_ifsc_code"]),
        amount: text_deep(v, &["amount", "txn_amount", "payout_amount"]).and_then(|a| crate::money::parse_plain(&a)),
        order_id: text_deep(v, &["payout_id", "Order-Id", "order_id"]),
        reference: text_deep(v, &["externalRef", "external_reference"]),
    }
}

/// Classifies the answer to a status inquiry (`PAYOUTSTATUS` or the verify endpoint).
///
/// Like a posting's, a status answer's codes are read only on an HTTP 2xx: an error page proves
/// nothing, so the row is asked about again later.
pub fn classify_status(http: u16, retry: Option<Duration>, body: &str) -> StatusOutcome {
    // An inquiry changes nothing at the gateway, so a 429 or 503 is "ask later" whatever its body.
    if http == 429 || http == 503 {
        return StatusOutcome::NotSent { retry_after: retry, reason: format!("HTTP {http} (gateway busy)") };
    }
    if http >= 500 {
        return StatusOutcome::Unknown { reason: unknown(http, body, " (an error answer proves nothing)") };
    }
    let Some((v, found)) = parse_found(body) else {
        if http == 401 {
            return StatusOutcome::CredentialsRefused { message: format!("HTTP 401: {}", short(body)) };
        }
        return StatusOutcome::Unknown { reason: unknown(http, body, " (no JSON)") };
    };
    let msg = message(&v);
    if http == 401 || says_credentials_refused(&v) {
        return StatusOutcome::CredentialsRefused { message: msg };
    }
    let code = code(&v);
    if code.as_deref() == Some("TE0012") {
        return StatusOutcome::TokenInvalid;
    }
    if !(200..300).contains(&http) {
        return StatusOutcome::Unknown { reason: unknown(http, body, " (not a 2xx answer)") };
    }
    // An object cut out of an HTML page or other text may be a proxy's quote of anything: it
    // proves no payout's fate.
    if found == Found::InText {
        return StatusOutcome::Unknown { reason: unknown(http, body, " (JSON inside other text proves nothing)") };
    }
    // A final verdict (paid, failed at the bank, unknown reference) only on HTTP 200: a 202 says
    // the inquiry itself is still being processed.
    if http != 200
        && (matches!(code.as_deref(), Some("SU0000" | "TE0011")) || code.as_deref().is_some_and(is_bank_error))
    {
        return StatusOutcome::Unknown {
            reason: unknown(http, body, " (a verdict on a 2xx other than 200 proves nothing)"),
        };
    }
    // One answer listing several transactions is not about one payout: which of them is this
    // row's, and which one does the top-level code describe?
    if several_transactions(&v) {
        return StatusOutcome::Contradictory { reason: unknown(http, body, " (several transactions in one answer)") };
    }
    let utr = text_deep(&v, &["utr", "utr_no", "utrno", "rrn", "bank_ref_no", "bank_reference"]);
    let gateway_ref = text_deep(&v, &["payout_id", "Order-Id", "order_id"]);
    // A status or code nested in the answer (`data`, a transaction inside it) is the payout's own
    // when the top level's may be about the request: a verdict the nested one contradicts is no
    // proof (SPEC 3: SUCCESS only on proof that the money moved, FAILED only on proof it did not).
    let inner = nested_verdicts(&v);
    // The top level's own status, when it says no or not yet (`"status":"FAILED"`, `0`,
    // `"REVERSED"`): SU0000 beside it may be the inquiry's result, not the payout's.
    let top_not_yes = status_verdict(&v) == Some(false);
    let contradicted =
        || StatusOutcome::Contradictory { reason: unknown(http, body, " (the answer contradicts itself)") };
    match code.as_deref() {
        Some("SU0000") if inner.other || top_not_yes => return contradicted(),
        Some("SU0000") => {
            return StatusOutcome::Success { utr, payee: payee(&v), gateway_ref, message: msg };
        }
        Some(c @ ("ENQ001" | "TE0009")) => {
            return StatusOutcome::Pending { code: c.to_string(), message: msg, payee: payee(&v) };
        }
        // "Unknown reference" beside a description of a payout (a nested status or code, an
        // account, a UTR, an amount) contradicts itself; counted twice, it would send again.
        // A nested TE0011 or a nested "no" agrees with it (a gateway that repeats its answer inside
        // `data`): neither says money moved.
        Some("TE0011")
            if inner.success || inner.not_yet || inner.other_code || describes_payout(&v, utr.as_deref()) =>
        {
            return contradicted();
        }
        Some("TE0011") => return StatusOutcome::UnknownReference { message: msg },
        Some(c) if is_bank_error(c) && (inner.success || inner.not_yet) => return contradicted(),
        Some(c) if is_bank_error(c) => {
            return StatusOutcome::FailedAtBank { code: c.to_string(), message: msg, payee: payee(&v) };
        }
        _ => {}
    }
    // The document's own success example carries no code: `{"message":"SUCCESS","status":1,...}`.
    let upper = msg.to_ascii_uppercase();
    match status_flag(&v) {
        Flag::Yes if code.is_none() && says_success(&upper) && inner.other => contradicted(),
        Flag::Yes if code.is_none() && says_success(&upper) => {
            StatusOutcome::Success { utr, payee: payee(&v), gateway_ref, message: msg }
        }
        Flag::Pending if code.is_none() => {
            StatusOutcome::Pending { code: "PENDING".into(), message: msg, payee: payee(&v) }
        }
        _ if code.is_none() && upper.contains("PENDING") => {
            StatusOutcome::Pending { code: "PENDING".into(), message: msg, payee: payee(&v) }
        }
        _ => StatusOutcome::Unknown { reason: unknown(http, body, " (no known code)") },
    }
}

/// Whether a status answer lists more than one transaction (`Transaction`, `transactions` or
/// `data` as a list of several).
fn several_transactions(v: &Value) -> bool {
    let many = |x: &Value| matches!(x, Value::Array(items) if items.len() > 1);
    ["Transaction", "transactions", "data"].iter().any(|k| field(v, &[k]).is_some_and(many))
        || field(v, &["data", "response"])
            .and_then(|d| field(d, &["data", "Transaction", "transactions"]))
            .is_some_and(many)
}

/// Whether a status answer describes a payout: it names an account, an amount or a UTR.
/// Placeholders a templated answer fills in (`"amount": 0`, `"utr": "0"`, `"account_no": "NA"`)
/// describe nothing: a value counts only when it holds a digit other than 0.
fn describes_payout(v: &Value, utr: Option<&str>) -> bool {
    let p = payee(v);
    let real = |t: Option<&str>| t.is_some_and(|t| t.bytes().any(|b| (b'1'..=b'9').contains(&b)));
    real(utr) || real(p.account.as_deref()) || p.amount.is_some_and(|a| a.paise() > 0)
}

/// What the statuses and codes nested below an answer's top level say.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Nested {
    /// Some nested object says success (code SU0000, or a status that reads as yes).
    success: bool,
    /// Some nested object says anything else: another code, or a status that is not a yes
    /// (failed, pending, or a word payrun does not know, such as `REVERSED`).
    other: bool,
    /// Some nested object says the payout is not final yet (pending, ENQ001, TE0009, initiated).
    not_yet: bool,
    /// Some nested object has one of the document's codes other than SU0000 and TE0011 (a bank
    /// failure, a pending code, a refusal): a fate, or a request, the gateway knows of.
    other_code: bool,
}

/// The verdicts of every object nested in `v` (not `v`'s own fields): a gateway that answers
/// `{"status":1,"message":"Success","data":{"status":"PENDING"}}` reports on the request at the
/// top and on the payout inside.
fn nested_verdicts(v: &Value) -> Nested {
    fn walk(v: &Value, top: bool, out: &mut Nested) {
        match v {
            Value::Object(map) => {
                if !top {
                    match code(v).as_deref() {
                        Some("SU0000") => out.success = true,
                        Some("ENQ001" | "TE0009") => {
                            out.other = true;
                            out.not_yet = true;
                            out.other_code = true;
                        }
                        Some(c) if is_payout_code(c) => {
                            out.other = true;
                            out.other_code |= c != "TE0011";
                        }
                        // A number or word that is not one of the document's codes (`200`, `00`)
                        // is no verdict on the payout.
                        _ => {}
                    }
                    match status_verdict(v) {
                        Some(true) => out.success = true,
                        Some(false) => out.other = true,
                        None => {}
                    }
                    out.not_yet |= status_not_yet(v);
                }
                map.values().for_each(|x| walk(x, false, out));
            }
            Value::Array(items) => items.iter().for_each(|x| walk(x, false, out)),
            _ => {}
        }
    }
    let mut out = Nested::default();
    walk(v, true, &mut out);
    out
}

/// A code of the document's shape: two or three letters and four or three digits (`ENQ001`,
/// `TE0009`, `BE1001`), the only codes a nested object can contradict a verdict with.
fn is_payout_code(code: &str) -> bool {
    let letters = code.bytes().take_while(u8::is_ascii_alphabetic).count();
    code.len() == 6 && (2..=3).contains(&letters) && code.bytes().skip(letters).all(|b| b.is_ascii_digit())
}

/// What an object's own `status` says of a payout: `Some(true)` paid (a yes, or a word gateways
/// use for a payout that reached the payee), `Some(false)` not or not yet (a no, pending, or such
/// a word), `None` for no status or a word or number payrun does not know: no verdict either way,
/// so it neither proves nor contradicts (a gateway's `"status":"COMPLETED"` beside SU0000 must not
/// leave a paid row waiting for ever).
fn status_verdict(v: &Value) -> Option<bool> {
    match status_flag(v) {
        Flag::Yes => return Some(true),
        Flag::No | Flag::Pending => return Some(false),
        Flag::Other => {}
    }
    let Some(Value::String(s)) = field(v, &["status"]) else { return None };
    match s.trim().to_ascii_lowercase().replace([' ', '-'], "_").as_str() {
        "completed" | "complete" | "processed" | "settled" | "credited" | "paid" | "done" => Some(true),
        "reversed" | "rejected" | "declined" | "cancelled" | "canceled" | "returned" | "refunded" | "initiated"
        | "queued" | "submitted" | "in_progress" | "inprogress" | "on_hold" | "hold" | "under_process" => Some(false),
        _ => None,
    }
}

/// Whether an object's own `status` says the payout is not final yet (pending, initiated, queued...).
fn status_not_yet(v: &Value) -> bool {
    if status_flag(v) == Flag::Pending {
        return true;
    }
    let Some(Value::String(s)) = field(v, &["status"]) else { return false };
    matches!(
        s.trim().to_ascii_lowercase().replace([' ', '-'], "_").as_str(),
        "initiated" | "queued" | "submitted" | "in_progress" | "inprogress" | "on_hold" | "hold" | "under_process"
    )
}

/// `BE` followed by exactly four digits: a failure reported by the beneficiary's bank.
pub fn is_bank_error(code: &str) -> bool {
    let b = code.as_bytes();
    b.len() == 6 && b[..2].eq_ignore_ascii_case(b"BE") && b[2..].iter().all(u8::is_ascii_digit)
}

/// Classifies the answer to a token request.
pub fn classify_token(http: u16, retry: Option<Duration>, body: &str) -> TokenOutcome {
    if refused_before_processing(http, body) {
        return TokenOutcome::NotSent { retry_after: retry, reason: format!("HTTP {http} (gateway busy)") };
    }
    // payrun follows no redirect (it would carry the credential headers to wherever it points):
    // asking again meets the same one, so say what to fix instead of retrying until "unreachable".
    if (300..400).contains(&http) {
        return TokenOutcome::Refused {
            code: http.to_string(),
            message: format!(
                "the gateway redirected the token request (HTTP {http}); payrun follows no redirect: set the gateway URL and paths to the address it answers at"
            ),
        };
    }
    let Some(v) = parse_lenient(body) else {
        // Never quote the token endpoint's body: it may carry a token.
        if http == 401 || http == 403 {
            return TokenOutcome::Refused { code: http.to_string(), message: format!("HTTP {http}") };
        }
        return TokenOutcome::Unknown { reason: format!("HTTP {http}, token answer not understood") };
    };
    let msg = message(&v);
    let code = code(&v);
    if http == 401 || says_credentials_refused(&v) {
        return TokenOutcome::Refused { code: code.unwrap_or_else(|| "401".into()), message: msg };
    }
    // 403: the gateway forbids us (an address not whitelisted, say). Asking again cannot help, and
    // a token request changes nothing at the gateway.
    if http == 403 {
        return TokenOutcome::Refused { code: code.unwrap_or_else(|| "403".into()), message: msg };
    }
    // 400 (a header missing), 602 and 604 (request unreadable): retrying the same request cannot help.
    if matches!(code.as_deref(), Some("400" | "602" | "604")) || http == 400 {
        return TokenOutcome::Refused { code: code.unwrap_or_else(|| http.to_string()), message: msg };
    }
    let token = text_deep(&v, &["token", "access_token", "utoken"]);
    match (status_flag(&v), token) {
        (Flag::Yes | Flag::Other, Some(token)) if http < 400 => {
            // Seconds, whole or not, as a number or a string (`3600`, `"3600"`, `1799.5`).
            let expires_in = text_deep(&v, &["expires_in", "expiresIn", "expiry", "expires", "ttl"])
                .and_then(|s| s.trim().parse::<f64>().ok())
                .filter(|s| s.is_finite() && *s > 0.0)
                .map(|s| Duration::from_secs_f64(s.min(30.0 * 86_400.0)));
            TokenOutcome::Token { token, expires_in }
        }
        _ => TokenOutcome::Unknown { reason: format!("HTTP {http}, no token in the answer") },
    }
}

/// Helper for the single calls (pay-in, PG): the JSON object, or the body text wrapped in one.
pub fn body_value(body: &str) -> Value {
    parse_lenient(body).unwrap_or_else(|| {
        let mut m = Map::new();
        m.insert("body".into(), Value::String(short(body)));
        Value::Object(m)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repairs_the_documents_status_example() {
        // Verbatim from the API document: no comma after "account_no".
        let body = r#"{
"message": "SUCCESS",
"status": 1,
"customer_name": "Jhon Doe",
"account_no": "39628544321"
"Ifsc_code": "SBIN0011243"
}"#;
        let v = parse_lenient(body).expect("repaired");
        assert_eq!(text(&v, &["Ifsc_code"]).as_deref(), Some("SBIN0011243"));
        match classify_status(200, None, body) {
            StatusOutcome::Success { payee, .. } => {
                assert_eq!(payee.account.as_deref(), Some("39628544321"));
                assert_eq!(payee.ifsc.as_deref(), Some("SBIN0011243"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn repairs_the_documents_payout_example() {
        // Verbatim: a trailing comma after "Order-Id", and the "//Success Response." line.
        let body = "//Success Response.\n{ \"message\": \"Success\",\n\"status\": 1,\n\"Transaction\": [\n{\n\"customer_name\": \"Jhon Doe\",\n\"account_no\": \"69659120888\",\n\"Order-Id\": \"123456\",\n}\n]\n}";
        match classify_payout(200, None, body) {
            PayoutOutcome::Accepted { gateway_ref, pending, .. } => {
                assert_eq!(gateway_ref.as_deref(), Some("123456"));
                assert!(!pending);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn payin_example_with_inline_comments_parses() {
        let body = "{\n\"method\":\"PAYIN\",\n\"amount\": 1, //Amount must be integer or doubled value.\n\"payment_mode\": \"INTENT\", //COLLECT|QR|INTENT\n\"customer_details\": {\n\"customer_email\": \"xyz@gmail.com\",\n}\n}";
        let v = parse_lenient(body).expect("parsed");
        assert_eq!(text(&v, &["payment_mode"]).as_deref(), Some("INTENT"));
    }

    #[test]
    fn status_as_number_string_or_bool() {
        for s in ["1", "\"1\"", "true", "\"true\"", "\"SUCCESS\""] {
            let body = format!("{{\"status\":{s},\"message\":\"Success\",\"Transaction\":[{{\"Order-Id\":\"9\"}}]}}");
            assert!(matches!(classify_payout(200, None, &body), PayoutOutcome::Accepted { .. }), "{s}");
        }
        assert_eq!(status_flag(&serde_json::json!({"status": "error"})), Flag::No);
        assert_eq!(status_flag(&serde_json::json!({"status": 0})), Flag::No);
        assert_eq!(status_flag(&serde_json::json!({})), Flag::Other);
    }

    /// A key given twice with two values has no reading: an unknown answer, never a guess at
    /// which one the gateway meant. The same value twice is harmless.
    #[test]
    fn a_key_given_twice_with_two_values_is_unreadable() {
        let conflicting = [
            r#"{"status":0,"code":"BE1001","code":"SU0000","account_no":"39628544321"}"#,
            r#"{"status":1,"code":"SU0000","Code":"BE1001"}"#,
            r#"{"status":0,"code":"TE0011","data":{"x":1},"status":1}"#,
            r#"{"status":1,"code":"SU0000","account_no":"39628544321","account_no":"11112222"}"#,
            r#"{"status":1,"code":"SU0000","data":{"account_no":"1","account-no":"2"}}"#,
        ];
        for body in conflicting {
            assert_eq!(parse_lenient(body), None, "{body}");
            assert!(matches!(classify_status(200, None, body), StatusOutcome::Unknown { .. }), "{body}");
        }
        let refusal = r#"{"status":0,"code":"TE0007","code":"SU0000","Transaction":[{"Order-Id":"9"}]}"#;
        assert!(matches!(classify_payout(200, None, refusal), PayoutOutcome::Unknown { .. }));
        let repeated = r#"{"status":0,"code":"BE1001","code":"BE1001","message":"x"}"#;
        assert!(matches!(classify_status(200, None, repeated), StatusOutcome::FailedAtBank { .. }));
        // Keys repeated in different objects are different keys.
        let nested = r#"{"status":1,"code":"SU0000","data":{"code":"X"},"Transaction":[{"code":"Y"}]}"#;
        assert!(parse_lenient(nested).is_some());
    }

    /// A status nested in the answer is the payout's own: a top level that says "success" about
    /// the request is no proof when the payout inside says pending or failed (and a top-level
    /// failure or "unknown" is none when the payout inside says success). SU0000 beside a top-level
    /// status that is not a yes is no proof either.
    #[test]
    fn a_nested_status_that_says_otherwise_is_no_proof() {
        let s = |b: &str| classify_status(200, None, b);
        for body in [
            r#"{"status":1,"message":"Success","data":{"status":"PENDING","account_no":"39628544321"}}"#,
            r#"{"status":true,"message":"SUCCESS","data":{"transfer":{"status":"FAILED","code":"BE1001"}}}"#,
            r#"{"status":1,"code":"SU0000","message":"Success","data":{"status":"REVERSED"}}"#,
            r#"{"status":1,"code":"SU0000","data":[{"code":"ENQ001"}]}"#,
            r#"{"status":0,"code":"BE1001","data":{"status":"SUCCESS"}}"#,
            r#"{"status":0,"code":"TE0011","data":{"code":"SU0000"}}"#,
            // The top level's own status says otherwise beside SU0000.
            r#"{"status":"FAILED","code":"SU0000","message":"Transaction failed"}"#,
            r#"{"status":0,"code":"SU0000","message":"Transaction failed"}"#,
            r#"{"status":"REVERSED","code":"SU0000"}"#,
            r#"{"status":"PENDING","code":"SU0000"}"#,
        ] {
            assert!(matches!(s(body), StatusOutcome::Contradictory { .. }), "{body}");
        }
        // Words and numbers payrun does not know are no verdict either way; the document's codes
        // are the only nested codes that count; success words agree.
        for body in [
            r#"{"status":"COMPLETED","code":"SU0000","message":"ok"}"#,
            r#"{"status":1,"code":"SU0000","data":{"status":"Processed","code":200}}"#,
            r#"{"status":1,"code":"SU0000","data":{"status":"AWAITING_BANK_XYZ"}}"#,
            r#"{"status":1,"code":"SU0000","data":[{"status":"credited","code":"00"}]}"#,
        ] {
            assert!(matches!(s(body), StatusOutcome::Success { .. }), "{body}");
        }
        for body in [
            r#"{"status":1,"code":"SU0000","data":{"status":"initiated"}}"#,
            r#"{"status":"Rejected","code":"SU0000"}"#,
            r#"{"status":1,"code":"SU0000","data":{"code":"TE0009"}}"#,
        ] {
            assert!(matches!(s(body), StatusOutcome::Contradictory { .. }), "{body}");
        }
        // Nested payee details without a verdict of their own change nothing.
        let fake =
            r#"{"status":true,"code":"SU0000","message":"ok","data":{"account_no":39628544321,"amount":1500.0}}"#;
        assert!(matches!(s(fake), StatusOutcome::Success { .. }));
        let agreeing = r#"{"status":1,"message":"Success","data":{"status":"SUCCESS","utr":"U1"}}"#;
        assert!(matches!(s(agreeing), StatusOutcome::Success { utr: Some(u), .. } if u == "U1"));
        assert!(matches!(
            s(r#"{"status":0,"code":"BE1001","data":{"status":"FAILED"}}"#),
            StatusOutcome::FailedAtBank { .. }
        ));
        assert!(matches!(
            s(r#"{"status":"PENDING","code":"ENQ001","data":{"status":"SUCCESS"}}"#),
            StatusOutcome::Pending { .. }
        ));
    }

    #[test]
    fn answers_that_contradict_themselves_prove_nothing() {
        let acct = r#""account_no":"111122223333""#;
        let st = |b: String| classify_status(200, None, &b);
        let unknown =
            |o: &StatusOutcome| matches!(o, StatusOutcome::Unknown { .. } | StatusOutcome::Contradictory { .. });
        // Several transactions in one status answer: which one is this row's, which one does the
        // top-level code describe?
        for code in ["SU0000", "BE1001", "TE0011"] {
            let b = format!(r#"{{"code":"{code}","Transaction":[{{{acct}}},{{"account_no":"999988887777"}}]}}"#);
            assert!(unknown(&st(b.clone())), "{b}");
            let b = format!(r#"{{"code":"{code}","data":[{{{acct}}},{{{acct}}}]}}"#);
            assert!(unknown(&st(b.clone())), "{b}");
        }
        // One transaction in a list is still one payout.
        let one = format!(r#"{{"code":"SU0000","Transaction":[{{{acct}}}]}}"#);
        assert!(matches!(st(one), StatusOutcome::Success { .. }));
        // "Unknown reference" beside a payout's description: the gateway knows something.
        for inner in [format!(r#""data":{{{acct},"status":"PENDING"}}"#), acct.to_string(), r#""utr":"UTR1""#.into()] {
            let b = format!(r#"{{"code":"TE0011",{inner}}}"#);
            assert!(unknown(&st(b.clone())), "{b}");
        }
        let template = r#"{"status":0,"code":"TE0011","data":{"amount":0,"utr":"","account_no":"NA"}}"#;
        assert!(matches!(st(template.into()), StatusOutcome::UnknownReference { .. }), "placeholders");
        let echoed = r#"{"status":0,"code":"TE0011","message":"Invalid Payment reference number","payout_id":"PR1"}"#;
        assert!(matches!(st(echoed.into()), StatusOutcome::UnknownReference { .. }), "the asked id echoed back");
        // The answer repeated inside `data`, or a template of empty payout fields: still unknown.
        for agrees in [
            r#"{"status":0,"code":"TE0011","data":{"status":0,"code":"TE0011","message":"Invalid reference"}}"#,
            r#"{"status":"FAILED","code":"TE0011","data":{"status":"FAILED"}}"#,
            r#"{"code":"TE0011","customer_name":null,"account_no":null,"Ifsc_code":null,"utr":"","amount":0}"#,
        ] {
            assert!(matches!(st(agrees.into()), StatusOutcome::UnknownReference { .. }), "{agrees}");
        }
        for contradicts in
            [r#"{"code":"TE0011","data":{"code":"BE1001"}}"#, r#"{"code":"TE0011","data":{"code":"ENQ001"}}"#]
        {
            assert!(matches!(st(contradicts.into()), StatusOutcome::Contradictory { .. }), "{contradicts}");
        }
        // A bank failure beside a nested "still pending" is no proof it failed.
        for inner in [r#"{"status":"PENDING"}"#, r#"{"code":"ENQ001"}"#, r#"{"status":"initiated"}"#] {
            let b = format!(r#"{{"code":"BE1001",{acct},"data":{inner}}}"#);
            assert!(unknown(&st(b.clone())), "{b}");
        }
        let agrees = format!(r#"{{"code":"BE1001",{acct},"data":{{"status":"FAILED"}}}}"#);
        assert!(matches!(st(agrees), StatusOutcome::FailedAtBank { .. }));
        // JSON cut out of an HTML page proves no payout's fate.
        for code in ["SU0000", "BE1001", "TE0011"] {
            let b = format!(r#"<html><body>{{"code":"{code}",{acct}}}</body></html>"#);
            assert!(unknown(&st(b.clone())), "{b}");
        }
        // A verdict on HTTP 202 (taken for processing): no proof.
        for code in ["SU0000", "BE1001", "TE0011"] {
            let b = format!(r#"{{"code":"{code}",{acct}}}"#);
            assert!(unknown(&classify_status(202, None, &b)), "{b}");
        }
        let refused = r#"{"status":0,"code":"TE0003","message":"Invalid amount"}"#;
        assert!(matches!(classify_payout(202, None, refused), PayoutOutcome::Unknown { .. }));
        assert!(matches!(classify_payout(201, None, refused), PayoutOutcome::Unknown { .. }));
        // A refusal at posting beside signs that the payout was taken, or inside a page.
        let post = |b: &str| classify_payout(200, None, b);
        for b in [
            r#"{"code":"te0007","status":0,"Transaction":[{"Order-Id":1}]}"#,
            r#"{"code":"TE0008","status":0,"data":{"code":"SU0000"}}"#,
            r#"{"code":"TE0008","status":0,"data":{"status":"SUCCESS"}}"#,
            "<html><body>{\"status\":0,\"code\":\"TE0007\"}</body></html>",
        ] {
            assert!(matches!(post(b), PayoutOutcome::Unknown { .. }), "{b}");
        }
        // An accepted answer names the payee its transaction is about (for the reading table).
        let took = r#"{"message":"Success","status":1,"Transaction":[{"customer_name":"A","account_no":"0111122223333","Order-Id":"9"}]}"#;
        let PayoutOutcome::Accepted { payee, .. } = post(took) else { panic!("{took}") };
        assert_eq!(payee.account.as_deref(), Some("0111122223333"));
        let two = r#"{"message":"Success","status":1,"Transaction":[{"account_no":"1","Order-Id":"8"},{"account_no":"2","Order-Id":"9"}]}"#;
        assert!(matches!(post(two), PayoutOutcome::Accepted { gateway_ref: None, .. }), "which id is ours?");
        for plain in [r#"{"status":0,"code":"TE0003","message":"Invalid amount"}"#, r#"{"status":1,"code":"TE0003"}"#] {
            assert!(matches!(post(plain), PayoutOutcome::Rejected { .. }), "{plain}");
        }
    }

    #[test]
    fn codes_as_number_or_string() {
        let v = serde_json::json!({"code": 401});
        assert_eq!(code(&v).as_deref(), Some("401"));
        let v = serde_json::json!({"code": "te0005"});
        assert_eq!(code(&v).as_deref(), Some("TE0005"));
    }

    #[test]
    fn payout_codes() {
        let p = |b: &str| classify_payout(200, None, b);
        assert!(matches!(p(r#"{"status":0,"code":"TE0005","message":"Duplicate"}"#), PayoutOutcome::Duplicate { .. }));
        assert!(matches!(p(r#"{"status":0,"code":"TE0012"}"#), PayoutOutcome::TokenInvalid));
        for c in ["TE0003", "TE0007", "TE0008"] {
            let body = format!(r#"{{"status":0,"code":"{c}","message":"x"}}"#);
            assert!(matches!(p(&body), PayoutOutcome::Rejected { code, .. } if code == c));
            // The same refusal on an error answer proves nothing.
            for http in [400, 404, 500, 502, 503] {
                assert!(matches!(classify_payout(http, None, &body), PayoutOutcome::Unknown { .. }), "{http} {c}");
            }
        }
        assert!(matches!(
            p(r#"{"status":0,"code":"TE0020","message":"Technical failure"}"#),
            PayoutOutcome::TechnicalFailure { .. }
        ));
        // A 5xx, a 429 or a 503 with a body is unknown whatever the body says, acceptance included.
        for body in [
            r#"{"status":0,"code":"TE0020","message":"Technical failure"}"#,
            r#"{"status":0,"code":"TE0005","message":"Duplicate"}"#,
            r#"{"status":1,"code":"SU0000","Transaction":[{"Order-Id":"5"}]}"#,
        ] {
            for http in [500, 502, 504, 429, 503] {
                assert!(matches!(classify_payout(http, None, body), PayoutOutcome::Unknown { .. }), "{http} {body}");
            }
        }
        assert!(matches!(
            p(r#"{"status":1,"code":"ENQ001","Transaction":[{"Order-Id":"5"}]}"#),
            PayoutOutcome::Accepted { pending: true, .. }
        ));
        assert!(matches!(
            p(r#"{"code":401,"status":"error","message":"Invalid API credentials."}"#),
            PayoutOutcome::CredentialsRefused { .. }
        ));
        // An unknown failure code is not a final rejection: in doubt.
        assert!(matches!(p(r#"{"status":0,"code":"XX9999"}"#), PayoutOutcome::Unknown { .. }));
        assert!(matches!(p(r#"{"status":0}"#), PayoutOutcome::Unknown { .. }));
    }

    #[test]
    fn transport_shaped_answers() {
        assert!(matches!(classify_payout(429, None, ""), PayoutOutcome::NotSent { .. }));
        assert!(matches!(classify_payout(503, None, "  "), PayoutOutcome::NotSent { .. }));
        // A 503 with a body is not proof of anything: in doubt.
        assert!(matches!(classify_payout(503, None, "<html>busy</html>"), PayoutOutcome::Unknown { .. }));
        assert!(matches!(classify_payout(500, None, ""), PayoutOutcome::Unknown { .. }));
        assert!(matches!(classify_payout(502, None, "<html>Bad gateway</html>"), PayoutOutcome::Unknown { .. }));
        assert!(matches!(classify_payout(200, None, ""), PayoutOutcome::Unknown { .. }));
        assert!(matches!(classify_payout(200, None, "<html><body>ok</body></html>"), PayoutOutcome::Unknown { .. }));
        assert!(matches!(classify_payout(401, None, "Unauthorized"), PayoutOutcome::CredentialsRefused { .. }));
        assert!(matches!(
            classify_status(429, Some(Duration::from_secs(2)), ""),
            StatusOutcome::NotSent { retry_after: Some(_), .. }
        ));
    }

    #[test]
    fn status_codes() {
        let s = |b: &str| classify_status(200, None, b);
        assert!(
            matches!(s(r#"{"status":1,"code":"SU0000","utr":"UTR1"}"#), StatusOutcome::Success { utr: Some(u), .. } if u == "UTR1")
        );
        assert!(matches!(s(r#"{"status":"PENDING","code":"ENQ001"}"#), StatusOutcome::Pending { .. }));
        assert!(matches!(s(r#"{"status":2,"code":"TE0009"}"#), StatusOutcome::Pending { .. }));
        assert!(
            matches!(s(r#"{"status":0,"code":"BE1234","message":"Account closed"}"#), StatusOutcome::FailedAtBank { code, .. } if code == "BE1234")
        );
        assert!(matches!(s(r#"{"status":0,"code":"TE0011"}"#), StatusOutcome::UnknownReference { .. }));
        assert!(matches!(s(r#"{"status":0,"code":"BE12"}"#), StatusOutcome::Unknown { .. }));
        assert!(matches!(s(r#"{"status":0,"message":"FAILED"}"#), StatusOutcome::Unknown { .. }));
        assert!(matches!(s("{}"), StatusOutcome::Unknown { .. }));
        // Codes on an error answer prove nothing: asked again later.
        for body in [r#"{"status":0,"code":"TE0011"}"#, r#"{"status":1,"code":"SU0000"}"#, r#"{"code":"BE1001"}"#] {
            for http in [404, 500, 502] {
                assert!(matches!(classify_status(http, None, body), StatusOutcome::Unknown { .. }), "{http} {body}");
            }
        }
    }

    #[test]
    fn token_answers() {
        let ok = r#"{"status": true, "data": {"token": "bc78"}, "message": "Token generated sucessfully.!"}"#;
        assert!(matches!(classify_token(200, None, ok), TokenOutcome::Token { token, .. } if token == "bc78"));
        let bad = r#"{"code": 401, "status": "error", "message": "Invalid API credentials."}"#;
        assert!(matches!(classify_token(401, None, bad), TokenOutcome::Refused { .. }));
        let missing = r#"{"code": 400, "status": false, "message": "Client Id headers is required."}"#;
        assert!(matches!(classify_token(400, None, missing), TokenOutcome::Refused { .. }));
        assert!(matches!(classify_token(200, None, r#"{"code":603,"status":false}"#), TokenOutcome::Unknown { .. }));
        assert!(matches!(classify_token(200, None, r#"{"code":601,"status":false}"#), TokenOutcome::Refused { .. }));
    }

    #[test]
    fn redaction_and_exact_success() {
        let token = "bc783ce060410c9add9a6a862bda8ce02444c294";
        let r = redact(&format!("Invalid Token {token}, user 172, account 39628544321"));
        assert!(!r.contains(token), "{r}");
        assert!(r.contains("39628544321") && r.contains("172"), "{r}");
        assert!(!redact("51a4bd18-5bc1-4eaa-97b0-c09323398883").contains("51a4bd18"));
        let body = format!(r#"{{"status":0,"message":"bad utoken {token}"}}"#);
        match classify_payout(200, None, &body) {
            PayoutOutcome::Unknown { reason } => assert!(!reason.contains(token), "{reason}"),
            other => panic!("{other:?}"),
        }
        let token_body = format!(r#"{{"status":false,"data":{{"token":"{token}"}}}}"#);
        match classify_token(500, None, &token_body) {
            TokenOutcome::Unknown { reason } => assert!(!reason.contains(token), "{reason}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            classify_status(200, None, r#"{"status":1,"message":"Transaction Unsuccessful"}"#),
            StatusOutcome::Unknown { .. }
        ));
        assert!(matches!(
            classify_status(200, None, r#"{"status":1,"message":"Success."}"#),
            StatusOutcome::Success { .. }
        ));
    }

    #[test]
    fn bank_error_shape() {
        assert!(is_bank_error("BE1234"));
        assert!(is_bank_error("be0001"));
        assert!(!is_bank_error("BE123"));
        assert!(!is_bank_error("BE12345"));
        assert!(!is_bank_error("BEABCD"));
        assert!(!is_bank_error("É12345"));
    }
}
