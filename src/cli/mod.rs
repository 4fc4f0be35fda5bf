//! The command-line surface: the clap definitions, the exit codes, and what the commands share
//! (loading the configuration, connecting to a gateway). One file per command, each opening with
//! its usage.

mod failed;
mod payin;
mod pg;
mod report;
mod resume;
mod run;
mod sandbox;
mod status;
mod validate;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};
use payrun::config::{ConfigFile, Credentials, example_credentials};
use payrun::gateway::GatewayClient;
use payrun::gateway::client::ClientOptions;
use payrun::sandbox::{Profile, RunningSandbox, SandboxOptions};

/// payrun: pay a salary or vendor file through the AT MOON DPS payout API, exactly once.
#[derive(Parser, Debug)]
#[command(name = "payrun", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// Configuration file (default: $PAYRUN_CONFIG, else ./payrun.toml when present).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// More log output on stderr (-v info, -vv debug). Secrets are never logged.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Check a payout file (CSV or .xlsx) against every rule, without sending anything.
    #[command(after_help = validate::after_help(false))]
    Validate(validate::Args),
    /// Validate a file (CSV or .xlsx) and pay every valid row exactly once.
    #[command(after_help = validate::after_help(true))]
    Run(run::Args),
    /// Continue a batch that was interrupted, or follow its pending payouts.
    Resume(resume::Args),
    /// Show batches and their progress.
    Status(status::Args),
    /// Write a batch's result file.
    Report(report::Args),
    /// Write a batch's failed rows in input format, ready to correct and run as a new file.
    Failed(failed::Args),
    /// Serve the simulated AT MOON DPS gateway (no real money moves).
    #[command(after_help = payrun::sandbox::profile::magic_help())]
    Sandbox(sandbox::Args),
    /// One PAYIN call (UPI intent, collect or QR).
    Payin(payin::Args),
    /// PG payment calls: initiate and verify.
    #[command(subcommand)]
    Pg(pg::Command),
}

/// Process exit codes (SPEC section 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Every valid row reached a final status (or: validation found no error).
    Ok = 0,
    /// Usage or input error; nothing sent.
    Input = 1,
    /// The batch ran, but some rows are FAILED or still PENDING.
    Partial = 2,
    /// Aborted (credentials refused, operator stop); unsent rows stay resumable.
    Aborted = 3,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e as u8)
    }
}

pub fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("PAYRUN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("payrun={default},warn")));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

pub fn dispatch(cli: Cli) -> anyhow::Result<Exit> {
    let (config, _) = ConfigFile::load(cli.config.as_deref())?;
    match cli.command {
        Command::Validate(a) => validate::run(a, &config),
        Command::Run(a) => runtime()?.block_on(run::run(a, &config)),
        Command::Resume(a) => runtime()?.block_on(resume::run(a, &config)),
        Command::Status(a) => runtime()?.block_on(status::run(a, &config)),
        Command::Report(a) => report::run(a, &config),
        Command::Failed(a) => failed::run(a, &config),
        Command::Sandbox(a) => runtime()?.block_on(sandbox::run(a, &config)),
        Command::Payin(a) => runtime()?.block_on(payin::run(a, &config)),
        Command::Pg(c) => runtime()?.block_on(pg::run(c, &config)),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")
}

/// Where payouts go: the built-in sandbox, or a URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GatewayChoice {
    Embedded,
    Url(String),
}

impl GatewayChoice {
    /// `--gateway` if given, else `[gateway] url` of the config, else the embedded sandbox.
    pub fn resolve(flag: Option<&str>, config: &ConfigFile) -> GatewayChoice {
        match flag.or(config.gateway.url.as_deref()).map(str::trim) {
            None | Some("") | Some("embedded") => GatewayChoice::Embedded,
            Some(url) => GatewayChoice::Url(url.to_string()),
        }
    }
}

/// A connected gateway: the client, and the in-process sandbox behind it when embedded.
pub struct Connection {
    pub client: Arc<GatewayClient>,
    pub sandbox: Option<RunningSandbox>,
}

impl Connection {
    pub async fn close(self) {
        if let Some(s) = self.sandbox {
            s.stop().await;
        }
    }
}

/// Connects to the chosen gateway. The embedded sandbox runs `profile`, keeps its world under
/// `<state>/sandbox`, and accepts the configured credentials (the document's examples when none are).
pub async fn connect(
    choice: &GatewayChoice,
    config: &ConfigFile,
    state: &Path,
    rate: Option<(u32, u32)>,
    pool: usize,
    profile: Profile,
) -> anyhow::Result<Connection> {
    let configured = config.credentials()?;
    let mut options = ClientOptions::new("");
    options.endpoints = config.gateway.endpoints.clone();
    options.status_via = config.gateway.status_via;
    options.timeout = config.gateway.timeout.unwrap_or(Duration::from_secs(30));
    options.connect_timeout = config.gateway.connect_timeout.unwrap_or(Duration::from_secs(10));
    options.rate = rate;
    options.pool = pool;
    match choice {
        GatewayChoice::Embedded => {
            let creds: Credentials = configured.unwrap_or_else(example_credentials);
            let mut opts = SandboxOptions::new(profile, 1);
            opts.credentials = creds.clone();
            let dir = state.join("sandbox");
            payrun::files::create_private_dir(&dir)?;
            let sandbox = RunningSandbox::start(opts, ([127, 0, 0, 1], 0).into(), None, Some(&dir))
                .await
                .context("cannot start the embedded sandbox gateway")?;
            // The embedded sandbox serves the default paths whatever the config says.
            options.endpoints = payrun::config::Endpoints::default();
            options.base_url = sandbox.url();
            let client = GatewayClient::new(&options, creds)?;
            Ok(Connection { client: Arc::new(client), sandbox: Some(sandbox) })
        }
        GatewayChoice::Url(url) => {
            let Some(creds) = configured else {
                bail!(
                    "gateway {url} needs credentials: set {} (or the [gateway] table of payrun.toml)",
                    payrun::config::ENV_VARS.join(", ")
                );
            };
            options.base_url = url.clone();
            let client = GatewayClient::new(&options, creds)?;
            Ok(Connection { client: Arc::new(client), sandbox: None })
        }
    }
}

/// The banner printed whenever the embedded sandbox is in use.
pub fn embedded_banner(conn: &Connection) {
    if let Some(s) = &conn.sandbox {
        eprintln!("gateway: embedded sandbox at {} (simulated: NO REAL MONEY MOVES)", s.url());
    }
}
