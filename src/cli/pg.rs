//! `payrun pg initiate` and `payrun pg verify`: the PG payment calls (SPEC section 6.5).
//!
//! ```text
//! payrun pg initiate --name N --phone P --email E --amount AMOUNT --redirect-url URL
//!                    [--gateway embedded|URL] [--state DIR] [--json]
//! payrun pg verify (--url URL | --token TOKEN) --transaction-id ID --pg-reference-no REF
//!                  [--gateway embedded|URL] [--state DIR] [--json]
//! ```
//!
//! `verify` takes the `url` that `initiate` printed (or just its last path segment).

use anyhow::bail;
use payrun::config::ConfigFile;
use payrun::money::Amount;
use payrun::sandbox::Profile;

use super::payin::{SingleCallArgs, print_single};
use payrun::batch::{GatewayChoice, connect};

use super::{Exit, embedded_banner};

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Start a PG payment; prints the payment URL, transaction id and PG reference.
    Initiate(InitiateArgs),
    /// Check a PG payment started by initiate.
    Verify(VerifyArgs),
}

#[derive(clap::Args, Debug)]
pub struct InitiateArgs {
    /// The customer's name.
    #[arg(long)]
    name: String,
    /// The customer's phone number.
    #[arg(long)]
    phone: String,
    /// The customer's email address.
    #[arg(long)]
    email: String,
    /// Amount in rupees.
    #[arg(long)]
    amount: String,
    /// Where the gateway sends the customer after paying.
    #[arg(long)]
    redirect_url: String,
    #[command(flatten)]
    common: SingleCallArgs,
}

#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    /// The payment URL initiate returned.
    #[arg(long, conflicts_with = "token", required_unless_present = "token")]
    url: Option<String>,
    /// The last path segment of that URL.
    #[arg(long)]
    token: Option<String>,
    /// The `transaction_id` initiate returned.
    #[arg(long)]
    transaction_id: String,
    /// The `pg_reference_no` initiate returned.
    #[arg(long)]
    pg_reference_no: String,
    #[command(flatten)]
    common: SingleCallArgs,
}

/// The `{token}` of the verify path: the last non-empty path segment of initiate's `url`.
fn token_of(url: &str) -> Option<String> {
    let path = url.split(['?', '#']).next().unwrap_or("");
    path.rsplit('/').find(|s| !s.is_empty()).map(str::to_string).filter(|s| !s.contains(':'))
}

pub async fn run(cmd: Command, config: &ConfigFile) -> anyhow::Result<Exit> {
    match cmd {
        Command::Initiate(a) => {
            let amount = Amount::parse_cell(a.amount.trim()).map_err(|e| anyhow::anyhow!("--amount: {e}"))?;
            let choice = GatewayChoice::resolve(a.common.gateway.as_deref(), config);
            let conn = connect(&choice, config, &a.common.state.dir()?.path, None, 1, Profile::Clean).await?;
            embedded_banner(&conn);
            let fields = [
                ("name", a.name),
                ("phone", a.phone),
                ("email", a.email),
                ("amount", amount.to_wire()),
                ("redirect_url", a.redirect_url),
            ];
            let reply = conn.client.pg_initiate(&fields).await;
            conn.close().await;
            print_single(
                reply,
                a.common.json,
                &[
                    ("url", &["url"]),
                    ("transaction_id", &["transaction_id"]),
                    ("pg_reference_no", &["pg_reference_no"]),
                ],
            )
        }
        Command::Verify(a) => {
            let token = match (&a.token, &a.url) {
                (Some(t), _) => t.clone(),
                (None, Some(u)) => match token_of(u) {
                    Some(t) => t,
                    None => bail!("--url '{u}' has no path segment to verify"),
                },
                (None, None) => bail!("give --url or --token"),
            };
            let choice = GatewayChoice::resolve(a.common.gateway.as_deref(), config);
            let conn = connect(&choice, config, &a.common.state.dir()?.path, None, 1, Profile::Clean).await?;
            embedded_banner(&conn);
            let reply = conn.client.pg_verify(&token, &a.transaction_id, &a.pg_reference_no).await;
            conn.close().await;
            // The answer's `status: true` says the call worked, not that anyone paid: the payment's
            // own state decides the exit code (0 only when paid).
            let paid = reply.as_ref().ok().map(payment_state);
            let exit = print_single(
                reply,
                a.common.json,
                &[("state", &["state"]), ("code", &["code"]), ("amount", &["amount"]), ("utr", &["utr_no"])],
            )?;
            match paid {
                Some(PaymentState::Paid) => Ok(exit),
                Some(state) => {
                    if !a.common.json {
                        payrun::say_out!("  payment: {} (not paid)", state.word());
                    }
                    Ok(Exit::Partial)
                }
                None => Ok(exit),
            }
        }
    }
}

/// What a PG verify answer says of the payment itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PaymentState {
    Paid,
    Pending,
    Failed,
    Unknown,
}

impl PaymentState {
    fn word(self) -> &'static str {
        match self {
            PaymentState::Paid => "PAID",
            PaymentState::Pending => "PENDING",
            PaymentState::Failed => "FAILED",
            PaymentState::Unknown => "UNKNOWN",
        }
    }
}

/// The payment's state from its `state` / `code` fields (`COMPLETED` / `PAYMENT_SUCCESS` is paid).
fn payment_state(reply: &payrun::gateway::client::SingleReply) -> PaymentState {
    let field = |k: &str| payrun::gateway::wire::text_deep(&reply.value, &[k]).map(|t| t.to_ascii_uppercase());
    let words = [field("state"), field("code")];
    let has = |w: &[&str]| words.iter().flatten().any(|v| w.iter().any(|x| v.contains(x)));
    if !reply.ok {
        PaymentState::Unknown
    } else if has(&["FAIL", "DECLIN"]) {
        PaymentState::Failed
    } else if has(&["COMPLETED", "SUCCESS"]) {
        PaymentState::Paid
    } else if has(&["PENDING", "INITIATED"]) {
        PaymentState::Pending
    } else {
        PaymentState::Unknown
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn token_from_url() {
        assert_eq!(
            super::token_of("https://AtMoonDPS.in/pg/payment/5bce5bf4239e288b947c451242e1030d88839dd6").as_deref(),
            Some("5bce5bf4239e288b947c451242e1030d88839dd6")
        );
        assert_eq!(super::token_of("http://127.0.0.1:9/pg/payment/abc/?x=1").as_deref(), Some("abc"));
        assert_eq!(super::token_of("https://"), None);
    }
}
