//! Which gateway a batch pays through, and connecting to it: the built-in sandbox (in-process, its
//! world kept in the state directory) or a URL with the configured credentials.
//!
//! A batch never changes gateway (half a batch paid by the sandbox and half by the real API is no
//! batch, and its in-doubt rows would be asked about where they were never sent), so the gateway is
//! recorded with the batch as a label ([`gateway_label`]) and checked on every resume. A label
//! never holds credentials.
//!
//! In team mode ([`connect_with_budget`]) a gateway URL is paced by the merchant's rate budget in
//! the journal database, shared with every process sending with the same credentials (SPEC 8.1).
//! The embedded sandbox is not: it is this process's own gateway, which nobody else sends to.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};

use super::BatchError;
use crate::config::{ConfigFile, Credentials, example_credentials};
use crate::gateway::GatewayClient;
use crate::gateway::client::ClientOptions;
use crate::journal::store::pgurl::JournalUrl;
use crate::journal::team::budget::{MerchantKey, Pace, SharedBudget};
use crate::journal::{Batch, Place};
use crate::sandbox::{Profile, RunningSandbox, SandboxOptions};

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

/// The gateway as the journal records it: `embedded`, or the URL without any user:password part.
pub fn gateway_label(choice: &GatewayChoice) -> String {
    match choice {
        GatewayChoice::Embedded => "embedded".into(),
        GatewayChoice::Url(u) => match reqwest::Url::parse(u) {
            Ok(mut url) => {
                let _ = url.set_username("");
                let _ = url.set_password(None);
                url.to_string().trim_end_matches('/').to_string()
            }
            Err(_) => crate::gateway::client::without_userinfo(u),
        },
    }
}

/// One batch, one gateway (see the module doc).
pub fn same_gateway(batch: &Batch, choice: &GatewayChoice) -> Result<(), BatchError> {
    let now = gateway_label(choice);
    if now == batch.gateway {
        return Ok(());
    }
    Err(BatchError::OtherGateway { batch: batch.id.clone(), was: batch.gateway.clone(), now })
}

/// A connected gateway: the client, and the in-process sandbox behind it when embedded.
pub struct Connection {
    pub client: Arc<GatewayClient>,
    pub sandbox: Option<RunningSandbox>,
    /// The merchant's shared rate budget pacing the client, in team mode (also inside the client).
    pub budget: Option<SharedBudget>,
}

/// Where team mode keeps the merchant's shared rate budget: the journal database.
#[derive(Clone, Debug)]
pub struct SharedBudgetSpec {
    pub journal: JournalUrl,
}

impl SharedBudgetSpec {
    /// The budget of a journal's place: its database in team mode, none for SQLite.
    pub fn of(place: &Place) -> Option<SharedBudgetSpec> {
        match place {
            Place::Postgres { url, .. } => Some(SharedBudgetSpec { journal: url.clone() }),
            Place::Sqlite { .. } => None,
        }
    }
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
    connect_with_budget(choice, config, state, rate, pool, profile, None).await
}

/// [`connect`] in team mode: with `budget` and a `rate`, a gateway URL is paced by the merchant's
/// shared budget in the journal database instead of a limiter of this process's own (`rate` is
/// then the `--rate`/`--burst` this process charges the shared schedule). Fails when the budget
/// cannot be had (database unreachable, no schema, no grant). Unpaced calls (`rate` `None`) and
/// the embedded sandbox are not shared (see the module doc).
pub async fn connect_with_budget(
    choice: &GatewayChoice,
    config: &ConfigFile,
    state: &Path,
    rate: Option<(u32, u32)>,
    pool: usize,
    profile: Profile,
    budget: Option<&SharedBudgetSpec>,
) -> anyhow::Result<Connection> {
    let configured = config.credentials()?;
    let mut options = ClientOptions::new("");
    options.endpoints = config.gateway.endpoints.clone();
    options.status_via = config.gateway.status_via;
    options.timeout = request_timeout(config);
    options.connect_timeout = config.gateway.connect_timeout.unwrap_or(Duration::from_secs(10));
    options.rate = rate;
    options.pool = pool;
    match choice {
        GatewayChoice::Embedded => {
            let creds: Credentials = configured.unwrap_or_else(example_credentials);
            let mut opts = SandboxOptions::new(profile, 1);
            opts.credentials = creds.clone();
            let dir = state.join("sandbox");
            crate::files::create_private_dir(&dir)?;
            let sandbox = RunningSandbox::start(opts, ([127, 0, 0, 1], 0).into(), None, Some(&dir))
                .await
                .context("cannot start the embedded sandbox gateway")?;
            // The embedded sandbox serves the default paths whatever the config says.
            options.endpoints = crate::config::Endpoints::default();
            options.base_url = sandbox.url();
            let client = GatewayClient::new(&options, creds)?;
            Ok(Connection { client: Arc::new(client), sandbox: Some(sandbox), budget: None })
        }
        GatewayChoice::Url(url) => {
            let Some(creds) = configured else {
                bail!(
                    "gateway {} needs credentials: set {} (or the [gateway] table of payrun.toml)",
                    crate::gateway::client::without_userinfo(url),
                    crate::config::ENV_VARS.join(", ")
                );
            };
            options.base_url = url.clone();
            let shared = match (budget, rate) {
                (Some(spec), Some((rate, burst))) => {
                    let b = SharedBudget::connect(&spec.journal, MerchantKey::of(&creds), Pace::new(rate, burst))
                        .await
                        .with_context(|| format!("the merchant's shared rate budget in {}", spec.journal))?;
                    options.shared_pace = Some(Arc::new(b.clone()));
                    Some(b)
                }
                _ => None,
            };
            let client = GatewayClient::new(&options, creds)?;
            Ok(Connection { client: Arc::new(client), sandbox: None, budget: shared })
        }
    }
}

/// The client's whole-request timeout (`[gateway] timeout`, default 30 s).
pub fn request_timeout(config: &ConfigFile) -> Duration {
    config.gateway.timeout.unwrap_or(Duration::from_secs(30))
}
