//! `payrun payin`: one PAYIN call (SPEC section 6.5): ask the gateway for a UPI intent, collect
//! request or QR, and print the `intent_url`.
//!
//! ```text
//! payrun payin --txn-id ID --amount AMOUNT [--mode intent|collect|qr] [--vpa VPA]
//!              [--purpose TEXT] [--callback-url URL] [--email E] [--phone P]
//!              [--gateway embedded|URL] [--state DIR] [--json]
//! ```

use anyhow::bail;
use payrun::config::ConfigFile;
use payrun::money::Amount;
use payrun::sandbox::Profile;
use serde_json::json;

use payrun::batch::{GatewayChoice, connect};

use super::{Exit, embedded_banner};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Your unique id for this request (`merchantTransactionId`).
    #[arg(long)]
    txn_id: String,
    /// Amount in rupees, e.g. 10 or 10.50.
    #[arg(long)]
    amount: String,
    /// How the payer pays: a UPI intent link, a collect request to --vpa, or a QR code.
    #[arg(long, value_enum, default_value = "intent")]
    mode: PayinMode,
    /// Payer's UPI address (required for collect).
    #[arg(long)]
    vpa: Option<String>,
    /// What the payment is for (`payment_for`).
    #[arg(long, default_value = "payment")]
    purpose: String,
    /// Where the gateway reports the result (the domain must be whitelisted with AT MOON).
    #[arg(long, default_value = "https://example.com/upi/callback")]
    callback_url: String,
    /// The payer's email address.
    #[arg(long, default_value = "")]
    email: String,
    /// The payer's phone number.
    #[arg(long, default_value = "")]
    phone: String,
    #[command(flatten)]
    common: SingleCallArgs,
}

/// The options every single-call command shares.
#[derive(clap::Args, Debug)]
pub struct SingleCallArgs {
    /// `embedded` (the built-in sandbox; no money moves) or the gateway's base URL.
    #[arg(long, value_name = "embedded|URL")]
    pub gateway: Option<String>,
    #[command(flatten)]
    pub state: super::StateArgs,
    /// Print the gateway's answer as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum PayinMode {
    Intent,
    Collect,
    Qr,
}

pub async fn run(args: Args, config: &ConfigFile) -> anyhow::Result<Exit> {
    let amount = Amount::parse_cell(args.amount.trim()).map_err(|e| anyhow::anyhow!("--amount: {e}"))?;
    let mode = match args.mode {
        PayinMode::Intent => "INTENT",
        PayinMode::Collect => "COLLECT",
        PayinMode::Qr => "QR",
    };
    if mode == "COLLECT" && args.vpa.is_none() {
        bail!("--vpa is required with --mode collect");
    }
    let choice = GatewayChoice::resolve(args.common.gateway.as_deref(), config);
    let conn = connect(&choice, config, &args.common.state.dir()?.path, None, 1, Profile::Clean).await?;
    embedded_banner(&conn);
    let body = json!({
        "merchantTransactionId": args.txn_id,
        "amount": amount.to_wire(),
        "payment_for": args.purpose,
        "payment_mode": mode,
        "callback_url": args.callback_url,
        "payer_vpa": args.vpa.unwrap_or_default(),
        "customer_details": {"customer_email": args.email, "customer_phone": args.phone},
    });
    let reply = conn.client.payin(body).await;
    conn.close().await;
    print_single(
        reply,
        args.common.json,
        &[("intent_url", &["intent_url"]), ("order_id", &["order_id"]), ("transaction_id", &["transactionId"])],
    )
}

/// Prints a single call's answer: `--json` gives the gateway's JSON, else a few named fields.
pub fn print_single(
    reply: Result<payrun::gateway::client::SingleReply, String>,
    json_out: bool,
    fields: &[(&str, &[&str])],
) -> anyhow::Result<Exit> {
    let reply = match reply {
        Ok(r) => r,
        Err(reason) => bail!("the gateway did not answer: {reason}"),
    };
    if json_out {
        payrun::outln!(
            "{}",
            serde_json::to_string_pretty(&json!({"ok": reply.ok, "http": reply.http, "answer": reply.value}))?
        );
    } else {
        let msg = find(&reply.value, &["message"]).unwrap_or_default();
        payrun::say_out!("{} (HTTP {}): {msg}", if reply.ok { "OK" } else { "REFUSED" }, reply.http);
        for (label, keys) in fields {
            if let Some(v) = find(&reply.value, keys) {
                payrun::say_out!("  {label}: {v}");
            }
        }
    }
    Ok(if reply.ok { Exit::Ok } else { Exit::Partial })
}

/// A field anywhere in the answer (the gateway nests answers differently per call).
fn find(v: &serde_json::Value, keys: &[&str]) -> Option<String> {
    if let Some(t) = payrun::gateway::wire::text(v, keys) {
        return Some(t);
    }
    match v {
        serde_json::Value::Object(m) => m.values().find_map(|c| find(c, keys)),
        _ => None,
    }
}
