//! `payrun sandbox`: serve the simulated AT MOON DPS gateway.
//!
//! ```text
//! payrun sandbox [--addr 127.0.0.1:8080] [--profile clean|realistic|chaos] [--seed N]
//!                [--latency MS[..MS]] [--rate-limit N] [--ledger FILE] [--persist DIR]
//!                [--post-hang-before PERMILLE] [--post-hang-after PERMILLE] [--status-hang PERMILLE]
//!                [--hang DUR]
//!                [--access-key K --merchant-key K --client-id ID --api-password P --user-id ID]
//! ```
//!
//! Prints `listening on ADDR` as its first line, then the credentials it accepts and which of them
//! each call takes ([`payrun::sandbox::CREDENTIALS_BY_CALL`], also in `--help`), serves until
//! Ctrl-C or SIGTERM, then writes the ledger to `--ledger FILE` when given.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use payrun::config::{ConfigFile, Secret, example_credentials};
use payrun::sandbox::{Profile, RunningSandbox, SandboxOptions};
use payrun::shutdown::Shutdown;

use super::Exit;

/// `--help`'s closing text: which credentials each call takes, then the magic accounts (`-h`
/// shows the magic accounts alone).
fn long_help() -> String {
    format!("{}\n{}", payrun::sandbox::CREDENTIALS_BY_CALL, payrun::sandbox::profile::magic_help())
}

#[derive(clap::Args, Debug)]
#[command(after_long_help = long_help())]
pub struct Args {
    /// Address to listen on; port 0 picks a free one. Loopback unless you say otherwise.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// clean: all succeed at once. realistic: latency, some pending, a few bank failures.
    /// chaos: answers lost after applying, resets, 5xx, 429, token expiry, long pending.
    #[arg(long, value_enum, default_value = "realistic")]
    profile: Profile,
    /// Seed of every random choice: the same seed and file give the same fates and faults.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Latency per request in ms, fixed (`40`) or a range (`20..60`); overrides the profile's.
    #[arg(long, value_name = "MS[..MS]", value_parser = parse_latency)]
    latency: Option<(u64, u64)>,
    /// Answer HTTP 429 above this many requests per second.
    #[arg(long, value_name = "N")]
    rate_limit: Option<u32>,
    /// Write the ledger (JSON) to this file on exit.
    #[arg(long, value_name = "FILE")]
    ledger: Option<PathBuf>,
    /// Keep applied payouts in this directory, so a restarted sandbox remembers them.
    #[arg(long, value_name = "DIR")]
    persist: Option<PathBuf>,
    /// Postings (per mille) that hang and are never applied; added to the profile's faults.
    #[arg(long, value_name = "PERMILLE", value_parser = clap::value_parser!(u64).range(0..=1000))]
    post_hang_before: Option<u64>,
    /// Postings (per mille) applied, then answered only after `--hang`; overrides the profile's.
    #[arg(long, value_name = "PERMILLE", value_parser = clap::value_parser!(u64).range(0..=1000))]
    post_hang_after: Option<u64>,
    /// Status inquiries (per mille) held for `--hang`; added to the profile's faults.
    #[arg(long, value_name = "PERMILLE", value_parser = clap::value_parser!(u64).range(0..=1000))]
    status_hang: Option<u64>,
    /// How long a hung request is held before its answer (default 5m: past any client's timeout).
    #[arg(long, value_name = "DUR", value_parser = humantime::parse_duration)]
    hang: Option<Duration>,
    /// Token lifetime (e.g. `20s`, `15m`); overrides the profile's.
    #[arg(long, value_name = "DUR", value_parser = humantime::parse_duration)]
    token_ttl: Option<Duration>,
    /// The access key the sandbox accepts (default: the API document's example).
    #[arg(long)]
    access_key: Option<String>,
    /// The merchant key the sandbox accepts (default: the API document's example).
    #[arg(long)]
    merchant_key: Option<String>,
    /// The client id the sandbox accepts (default: the API document's example, 61662).
    #[arg(long)]
    client_id: Option<String>,
    /// The API password the sandbox accepts (default: the API document's example).
    #[arg(long)]
    api_password: Option<String>,
    /// The user id the sandbox accepts (default: the API document's example, 172).
    #[arg(long)]
    user_id: Option<String>,
}

fn parse_latency(s: &str) -> Result<(u64, u64), String> {
    let parse = |x: &str| x.trim().parse::<u64>().map_err(|_| format!("'{x}' is not a number of milliseconds"));
    match s.split_once("..") {
        Some((a, b)) => {
            let (a, b) = (parse(a)?, parse(b)?);
            if a > b {
                return Err(format!("latency range {a}..{b} is backwards"));
            }
            Ok((a, b))
        }
        None => {
            let a = parse(s)?;
            Ok((a, a))
        }
    }
}

pub async fn run(args: Args, _config: &ConfigFile) -> anyhow::Result<Exit> {
    let mut opts = SandboxOptions::new(args.profile, args.seed);
    let mut creds = example_credentials();
    if let Some(v) = args.access_key {
        creds.access_key = Secret::new(v);
    }
    if let Some(v) = args.merchant_key {
        creds.merchant_key = Secret::new(v);
    }
    if let Some(v) = args.client_id {
        creds.client_id = v;
    }
    if let Some(v) = args.api_password {
        creds.api_password = Secret::new(v);
    }
    if let Some(v) = args.user_id {
        creds.user_id = v;
    }
    let examples = creds == example_credentials();
    opts.credentials = creds;
    opts.rate_limit = args.rate_limit;
    if let Some(ttl) = args.token_ttl {
        opts.knobs.token_ttl = ttl;
    }
    let k = &mut opts.knobs;
    k.post_hang_before = args.post_hang_before.unwrap_or(k.post_hang_before);
    k.post_apply_then_timeout = args.post_hang_after.unwrap_or(k.post_apply_then_timeout);
    k.status_hang = args.status_hang.unwrap_or(k.status_hang);
    k.hang = args.hang.unwrap_or(k.hang);
    let posting = k.post_5xx_before
        + k.post_429
        + k.post_hang_before
        + k.post_apply_then_timeout
        + k.post_apply_then_reset
        + k.post_apply_then_5xx;
    if posting > 1000 {
        bail!("the posting faults add up to {posting} per mille with this profile: at most 1000");
    }
    let status = k.status_5xx + k.status_429 + k.status_reset + k.status_hang;
    if status > 1000 {
        bail!("the status faults add up to {status} per mille with this profile: at most 1000");
    }
    if args.rate_limit == Some(0) {
        bail!("--rate-limit must be at least 1");
    }
    let sandbox = RunningSandbox::start(opts, args.addr, args.latency, args.persist.as_deref())
        .await
        .with_context(|| format!("cannot listen on {}", args.addr))?;
    payrun::outln!("listening on {}", sandbox.addr);
    // After the first line, what is said is for a person, wrapped to the width at word boundaries;
    // a closed stdout must not stop the server (payrun::out drops what cannot be written).
    use payrun::say_out as say;
    say!(
        "payrun sandbox (NO REAL MONEY MOVES): a simulated AT MOON DPS gateway, profile {:?}, seed {}; ledger at {}/__sandbox/ledger",
        args.profile,
        args.seed,
        sandbox.url()
    );
    if examples {
        // The API document's example credentials are public; saying them is what lets a newcomer
        // point payrun here. Credentials given by flags are never shown.
        let c = example_credentials();
        say!("it accepts the API document's example credentials; in another terminal:");
        say!("  export ATMOON_ACCESS_KEY={}", c.access_key.expose());
        say!("  export ATMOON_MERCHANT_KEY={}", c.merchant_key.expose());
        say!("  export ATMOON_CLIENT_ID={}", c.client_id);
        say!("  export ATMOON_API_PASSWORD={}", c.api_password.expose());
        say!("  export ATMOON_USER_ID={}", c.user_id);
    } else {
        say!(
            "it accepts the credentials given with --access-key, --merchant-key, --client-id, --api-password, --user-id (not shown)"
        );
    }
    payrun::out::Stream::Stdout.command(&format!("payrun run FILE --gateway {} --yes", sandbox.url()), 2);
    // Laid out for 80 columns already: printed as it is, never re-wrapped.
    for line in payrun::sandbox::CREDENTIALS_BY_CALL.lines() {
        payrun::outln!("{line}");
    }
    let _ = std::io::Write::flush(&mut payrun::out::stdout());
    let stop = Shutdown::new();
    stop.on_signals(|| {});
    stop.wait().await;
    let ledger = sandbox.ledger();
    sandbox.stop().await;
    if let Some(path) = args.ledger {
        let json = serde_json::to_vec_pretty(&ledger)?;
        payrun::files::write_atomic(&path, &json).with_context(|| format!("cannot write {}", path.display()))?;
        payrun::say!(
            "ledger written to {} ({} applied)",
            path.display(),
            payrun::report::plural(ledger.applied as u64, "payout")
        );
    }
    Ok(Exit::Ok)
}
