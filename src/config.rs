//! Configuration: `payrun.toml` and the `ATMOON_*` environment (SPEC section 6).
//!
//! This module owns where settings come from and in which order they win: a command-line flag beats
//! the journal's remembered batch settings, which beat `payrun.toml`, which beats the built-in
//! defaults; for credentials the environment beats the file. Secrets are held in [`Secret`] from the
//! moment they are read, so no `Debug`, `Display` or log line can show them.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// A secret value (access key, merchant key, API password, token). Prints as `***` everywhere.
#[derive(Clone)]
pub struct Secret(SecretString);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(SecretString::from(value.into()))
    }
    /// The value, for the one place that must put it on the wire. Never format the result.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Secret, D::Error> {
        String::deserialize(d).map(Secret::new)
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Secret) -> bool {
        self.expose() == other.expose()
    }
}

/// The merchant's API credentials. Client id and user id are identifiers, not secrets, but they
/// are not printed either.
#[derive(Clone, Debug, PartialEq)]
pub struct Credentials {
    pub access_key: Secret,
    pub merchant_key: Secret,
    pub client_id: String,
    pub api_password: Secret,
    pub user_id: String,
}

/// The API document's example credentials: what the sandbox accepts unless told otherwise.
pub fn example_credentials() -> Credentials {
    Credentials {
        access_key: Secret::new("51a4bd18-5bc1-4eaa-97b0-c09323398883"),
        merchant_key: Secret::new("41d9eda4b67538fc8ad27e564ddde1bb7b20ad08"),
        client_id: "61662".into(),
        api_password: Secret::new("a90db387a3e3b8a22d923966326327c17e9a6ed6"),
        user_id: "172".into(),
    }
}

/// Environment variable names, in the order the error message lists them.
pub const ENV_VARS: [&str; 5] =
    ["ATMOON_ACCESS_KEY", "ATMOON_MERCHANT_KEY", "ATMOON_CLIENT_ID", "ATMOON_API_PASSWORD", "ATMOON_USER_ID"];

/// Which call payrun uses for status inquiries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StatusVia {
    /// `POST /api/AtMoonPayout {"method":"PAYOUTSTATUS"}` (default).
    #[default]
    Payoutstatus,
    /// `GET /payout/status/{reference}`.
    Verify,
}

/// Paths of the gateway's calls, relative to its base URL.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Endpoints {
    pub token_path: String,
    pub payout_path: String,
    pub status_path: String,
    /// `{reference}` is replaced by the payout's reference.
    pub verify_path: String,
    pub pg_initiate_path: String,
    /// `{token}` is replaced by the last path segment of the URL that PG initiate returned.
    pub pg_verify_path: String,
}

impl Default for Endpoints {
    fn default() -> Self {
        Endpoints {
            token_path: "/api/uat/merchant/getToken".into(),
            payout_path: "/api/payoutapi".into(),
            status_path: "/api/AtMoonPayout".into(),
            verify_path: "/payout/status/{reference}".into(),
            pg_initiate_path: "/api/uat/merchant/pg/payment/initiate".into(),
            pg_verify_path: "/pg/payment/{token}/response".into(),
        }
    }
}

/// The `[gateway]` table of `payrun.toml`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewayFile {
    /// Base URL used when `--gateway` is not given (else the embedded sandbox).
    pub url: Option<String>,
    #[serde(flatten)]
    pub endpoints: Endpoints,
    pub status_via: StatusVia,
    #[serde(with = "humantime_serde_opt")]
    pub timeout: Option<Duration>,
    #[serde(with = "humantime_serde_opt")]
    pub connect_timeout: Option<Duration>,
    pub access_key: Option<Secret>,
    pub merchant_key: Option<Secret>,
    pub client_id: Option<String>,
    pub api_password: Option<Secret>,
    pub user_id: Option<String>,
}

/// The `[run]` table of `payrun.toml`: defaults for `run` and `resume`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunFile {
    pub rate: Option<u32>,
    pub burst: Option<u32>,
    pub concurrency: Option<u32>,
    /// Everything in flight at most, requests presumed stalled included (engine::flight): default
    /// two seconds' worth of the rate, within 64..=512. Set it to the concurrency for a gateway
    /// that allows only so many connections.
    pub max_in_flight: Option<u32>,
    #[serde(with = "humantime_serde_opt")]
    pub poll_timeout: Option<Duration>,
    #[serde(with = "humantime_serde_opt")]
    pub first_poll: Option<Duration>,
    #[serde(with = "humantime_serde_opt")]
    pub max_poll_interval: Option<Duration>,
    #[serde(with = "humantime_serde_opt")]
    pub resend_grace: Option<Duration>,
    /// SPEC 3.2 (c): the same amount to the same payee within this window is held as a repeat.
    #[serde(with = "humantime_serde_opt")]
    pub repeat_window: Option<Duration>,
    pub default_mode: Option<String>,
    pub latitude: Option<String>,
    pub longitude: Option<String>,
    pub payee_list_id: Option<String>,
}

/// The `[report]` table of `payrun.toml`: how results are shown to people.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReportFile {
    /// The operator's time zone (IANA name, e.g. `Asia/Kolkata`, the default) for the times in a
    /// result workbook.
    pub timezone: Option<String>,
}

impl ReportFile {
    /// The configured time zone, else Asia/Kolkata; an error naming the value when it is not a
    /// time zone.
    pub fn time_zone(&self) -> anyhow::Result<chrono_tz::Tz> {
        match self.timezone.as_deref().map(str::trim) {
            None | Some("") => Ok(crate::report::DEFAULT_TIME_ZONE),
            Some(name) => name.parse::<chrono_tz::Tz>().map_err(|_| {
                anyhow::anyhow!(
                    "[report] timezone = \"{name}\" is not a time zone: use an IANA name such as \"Asia/Kolkata\""
                )
            }),
        }
    }
}

/// The `[journal]` table of `payrun.toml`: where the journal is (SPEC 8.1).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JournalFile {
    /// A PostgreSQL URL (`postgres://user@host/db?sslmode=verify-full`): team mode. Its password
    /// belongs in `PGPASSWORD` or `~/.pgpass`, not here.
    pub url: Option<String>,
    /// How long a driver's lease on a batch lasts without renewal (default 30 s): a process that
    /// died is taken over after this long.
    #[serde(with = "humantime_serde_opt")]
    pub lease: Option<Duration>,
    /// How long a lost database is waited for before exit 3 (default 30 s; `--db-timeout`).
    #[serde(with = "humantime_serde_opt")]
    pub db_timeout: Option<Duration>,
}

/// The whole `payrun.toml`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConfigFile {
    pub gateway: GatewayFile,
    pub run: RunFile,
    pub report: ReportFile,
    pub journal: JournalFile,
}

mod humantime_serde_opt {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let s: Option<String> = Option::deserialize(d)?;
        s.map(|s| humantime::parse_duration(&s).map_err(serde::de::Error::custom)).transpose()
    }
}

impl ConfigFile {
    /// Loads the configuration: `explicit` (from `--config`), else `PAYRUN_CONFIG`, else
    /// `./payrun.toml` when it exists, else defaults.
    pub fn load(explicit: Option<&Path>) -> anyhow::Result<(ConfigFile, Option<PathBuf>)> {
        let path = match explicit {
            Some(p) => Some(p.to_path_buf()),
            None => match std::env::var_os("PAYRUN_CONFIG") {
                Some(p) if !p.is_empty() => Some(PathBuf::from(p)),
                _ => {
                    let local = PathBuf::from("payrun.toml");
                    local.is_file().then_some(local)
                }
            },
        };
        let Some(path) = path else {
            return Ok((ConfigFile::default(), None));
        };
        let text =
            std::fs::read_to_string(&path).with_context(|| format!("cannot read config file {}", path.display()))?;
        // toml's own message quotes the offending line, which may hold a secret: give the position
        // and the gist only, redacted.
        let cfg: ConfigFile = toml::from_str(&text).map_err(|e| {
            let line = e.span().and_then(|s| text.get(..s.start)).map(|t| t.matches('\n').count() + 1);
            let gist = crate::gateway::wire::redact(e.message());
            anyhow::anyhow!(
                "config file {} is not valid{}: {gist}",
                path.display(),
                line.map(|l| format!(" (line {l})")).unwrap_or_default()
            )
        })?;
        cfg.report.time_zone().with_context(|| format!("config file {}", path.display()))?;
        Ok((cfg, Some(path)))
    }

    /// Credentials from the environment, each falling back to the config file. `None` when none is
    /// set anywhere; an error naming the missing ones when only some are.
    pub fn credentials(&self) -> anyhow::Result<Option<Credentials>> {
        let g = &self.gateway;
        let plain = |s: &Option<String>| s.as_deref().map(Secret::new);
        let from_file = [
            g.access_key.clone(),
            g.merchant_key.clone(),
            plain(&g.client_id),
            g.api_password.clone(),
            plain(&g.user_id),
        ];
        let mut values: Vec<Option<Secret>> = Vec::with_capacity(5);
        for (name, file) in ENV_VARS.iter().zip(from_file) {
            let env = std::env::var(name).ok().filter(|v| !v.trim().is_empty()).map(|v| Secret::new(v.trim()));
            values.push(env.or(file.map(|f| Secret::new(f.expose().trim()))));
        }
        if values.iter().all(Option::is_none) {
            return Ok(None);
        }
        let missing: Vec<&str> = ENV_VARS.iter().zip(&values).filter(|(_, v)| v.is_none()).map(|(n, _)| *n).collect();
        if !missing.is_empty() {
            bail!("gateway credentials incomplete: set {} (or the [gateway] table of payrun.toml)", missing.join(", "));
        }
        let mut it = values.into_iter().flatten();
        let mut next = || it.next().unwrap_or_else(|| Secret::new(""));
        Ok(Some(Credentials {
            access_key: next(),
            merchant_key: next(),
            client_id: next().expose().to_string(),
            api_password: next(),
            user_id: next().expose().to_string(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_format() {
        let c = example_credentials();
        let shown = format!("{c:?} {}", c.api_password);
        assert!(!shown.contains("a90db387"), "{shown}");
        assert!(!shown.contains("51a4bd18"), "{shown}");
        assert!(shown.contains("***"));
    }

    #[test]
    fn config_file_parses() {
        let cfg: ConfigFile = toml::from_str(
            r#"
            [gateway]
            url = "https://api.atmoondps.com"
            status_via = "verify"
            timeout = "20s"
            payout_path = "/v2/payout"
            [run]
            rate = 25
            poll_timeout = "5m"
            default_mode = "NEFT"
            "#,
        )
        .expect("parses");
        assert_eq!(cfg.gateway.status_via, StatusVia::Verify);
        assert_eq!(cfg.gateway.timeout, Some(Duration::from_secs(20)));
        assert_eq!(cfg.gateway.endpoints.payout_path, "/v2/payout");
        assert_eq!(cfg.gateway.endpoints.token_path, "/api/uat/merchant/getToken");
        assert_eq!(cfg.run.rate, Some(25));
        assert_eq!(cfg.run.poll_timeout, Some(Duration::from_secs(300)));
        assert!(toml::from_str::<ConfigFile>("[gateway]\nurll = \"x\"").is_err());
    }

    #[test]
    fn report_time_zone_defaults_to_kolkata_and_rejects_nonsense() {
        let cfg: ConfigFile = toml::from_str("").expect("empty");
        assert_eq!(cfg.report.time_zone().expect("default"), chrono_tz::Asia::Kolkata);
        let cfg: ConfigFile = toml::from_str("[report]\ntimezone = \"Europe/London\"\n").expect("parses");
        assert_eq!(cfg.report.time_zone().expect("zone"), chrono_tz::Europe::London);
        let cfg: ConfigFile = toml::from_str("[report]\ntimezone = \"India\"\n").expect("parses");
        let err = cfg.report.time_zone().expect_err("not a zone");
        assert!(err.to_string().contains("India"), "{err}");
        assert!(toml::from_str::<ConfigFile>("[report]\ntz = \"x\"").is_err(), "unknown keys are refused");
    }

    #[test]
    fn a_broken_config_never_prints_its_secrets() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("payrun.toml");
        let secret = "a90db387a3e3b8a22d923966326327c17e9a6ed6";
        for text in [
            format!("[gateway]\napi_pasword = \"{secret}\"\n"),
            format!("[gateway]\napi_password = {secret}\n"),
            format!("[gateway]\napi_password = \"{secret}\"\n[run]\nrate = \"fast\"\n"),
        ] {
            std::fs::write(&path, &text).expect("write");
            let err = ConfigFile::load(Some(&path)).err().expect("invalid");
            let shown = format!("{err:#} {err:?}");
            assert!(!shown.contains(secret), "{shown}");
            assert!(shown.contains("line"), "{shown}");
        }
        std::fs::write(&path, format!("[gateway]\napi_password = \"{secret}\"\n")).expect("write");
        let (cfg, _) = ConfigFile::load(Some(&path)).expect("valid");
        assert!(!format!("{cfg:?}").contains(secret));
    }
}
