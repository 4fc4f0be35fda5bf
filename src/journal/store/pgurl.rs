//! The journal's PostgreSQL address (SPEC 8.1): `--journal URL`, `PAYRUN_JOURNAL` or `journal.url`.
//!
//! Two spellings, as libpq reads them: a URL (`postgres://alice@db.example.com/payroll?sslmode=...`,
//! or `postgresql://`) and a `key=value` connection string (`host=db.example.com dbname=payroll`).
//! The keys payrun reads are `host`, `port`, `dbname`, `user`, `password`, `sslmode`, `sslrootcert`
//! and `connect_timeout`; any other key is refused by name, as libpq refuses an unknown one (a
//! misspelt `sslmode` must not quietly become the default). One host only.
//!
//! What is not written comes from where libpq takes it: `PGHOST` (else `localhost`: libpq would
//! use its Unix socket directory, whose place differs between builds; name it, `host=/run/postgresql`,
//! to use it), `PGPORT` (else 5432), `PGUSER` (else the login name), `PGDATABASE` (else the user).
//! The password: the URL's, else `PGPASSWORD`, else the password file (`PGPASSFILE`, else
//! `~/.pgpass`, in libpq's format; a file that group or others may read is ignored, with a warning,
//! as libpq does).
//!
//! TLS is decided here, once, from the host and the `sslmode` written in the URL (never from
//! `PGSSLMODE`: SPEC 8.1 obeys a `disable` only when it is *written*):
//! - a loopback host (`localhost`, `127.0.0.0/8`, `::1`) or a Unix socket directory: no TLS unless
//!   `sslmode=require`, `verify-ca` or `verify-full` asks for it;
//! - any other host: TLS with a verified certificate, chain *and* host name, whatever the mode
//!   (`prefer` and `allow` are read as `verify-full`, and so are `require` and `verify-ca`): payrun
//!   never turns certificate verification off, because a journal connection carries the database
//!   password and every payment. Only `sslmode=disable`, written, turns TLS off, and
//!   [`JournalUrl::warnings`] then says so on every run.
//!
//! The password never leaves this type in text: [`JournalUrl`]'s `Display` (and [`JournalUrl::display`])
//! is the URL without it, `Debug` shows it redacted, and no [`UrlError`] echoes any part of the
//! text it could not read.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use secrecy::{ExposeSecret, SecretString};

/// Why a journal URL could not be read. The messages name what is wrong and never repeat the text
/// (which may hold a password).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("the journal URL is neither a postgres:// (or postgresql://) URL nor a key=value connection string")]
    NotPostgres,
    #[error("the journal URL is malformed: {0}")]
    Malformed(&'static str),
    #[error("the journal URL has a %-escape that is not UTF-8 text (in its {0})")]
    BadEscape(&'static str),
    #[error(
        "the journal URL has an unknown parameter {0:?} (payrun reads host, port, dbname, user, password, sslmode, sslrootcert, connect_timeout)"
    )]
    UnknownParameter(String),
    #[error("the journal URL names several hosts; payrun connects to one")]
    SeveralHosts,
    #[error("the journal URL's port is not a number from 1 to 65535")]
    BadPort,
    #[error("PGPORT is not a number from 1 to 65535")]
    BadEnvPort,
    #[error("the journal URL's sslmode is not one of disable, allow, prefer, require, verify-ca, verify-full")]
    BadSslMode,
    #[error("the journal URL's connect_timeout is not a whole number of seconds")]
    BadTimeout,
    #[error("no database user: the journal URL names none, PGUSER is not set, and the login name is unknown")]
    NoUser,
}

/// Where the database listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Host {
    /// A host name or an IP address, over TCP.
    Tcp(String),
    /// A Unix socket directory (a host written as an absolute path).
    Socket(PathBuf),
}

impl Host {
    /// On this machine: a loopback address, `localhost`, or a Unix socket.
    pub fn is_local(&self) -> bool {
        match self {
            Host::Socket(_) => true,
            Host::Tcp(h) => {
                h.eq_ignore_ascii_case("localhost")
                    || h.parse::<IpAddr>().is_ok_and(|ip| ip.to_canonical().is_loopback())
            }
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Tcp(h) => f.write_str(h),
            Host::Socket(p) => write!(f, "{}", p.display()),
        }
    }
}

/// libpq's `sslmode` values, as written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Allow,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(s: &str) -> Result<SslMode, UrlError> {
        Ok(match s {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return Err(UrlError::BadSslMode),
        })
    }
}

/// What payrun does about TLS for this journal (decided from the host and the written `sslmode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tls {
    /// No TLS: a local host, or `sslmode=disable` written in the URL.
    Off,
    /// TLS, and the connection is refused unless the server's certificate chains to a trusted root
    /// and was issued for the host name (or IP address) in the URL.
    Verified,
}

/// Whom a verified TLS connection trusts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RootCerts {
    /// The platform's certificate roots (also `sslrootcert=system`).
    Platform,
    /// The CA certificates (PEM) in this file, instead of the platform's.
    File(PathBuf),
}

/// A PostgreSQL journal's address, read and resolved (defaults, password, TLS).
///
/// Built by [`JournalUrl::parse`]; connect with [`super::postgres::PgStore::connect`] or
/// [`super::postgres::connect_async`]. Print it freely: it shows no password.
#[derive(Clone)]
pub struct JournalUrl {
    host: Host,
    port: u16,
    dbname: String,
    user: String,
    /// From the URL, `PGPASSWORD` or the password file; `None` when no password is known (the
    /// server may not ask for one: trust, peer or certificate authentication).
    password: Option<SecretString>,
    /// The mode written in the URL, if any (for display and tests; [`JournalUrl::tls`] is what counts).
    sslmode: Option<SslMode>,
    tls: Tls,
    roots: RootCerts,
    /// `connect_timeout`, when written (`0` means wait as long as the system does).
    connect_timeout: Option<Duration>,
    warnings: Vec<String>,
}

impl fmt::Debug for JournalUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JournalUrl")
            .field("url", &self.display())
            .field("password", &self.password.as_ref().map(|_| "[REDACTED]"))
            .finish()
    }
}

impl fmt::Display for JournalUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display())
    }
}

/// What a URL's unwritten parts default to: the environment variables libpq reads, the login name
/// and the home directory. [`UrlEnv::from_process`] reads this process's; tests build their own,
/// since tests must not change the process's environment.
#[derive(Clone, Default)]
pub struct UrlEnv {
    vars: HashMap<String, String>,
    login: Option<String>,
    home: Option<PathBuf>,
}

/// Names only: `PGPASSWORD`'s value is a password.
impl fmt::Debug for UrlEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&str> = self.vars.keys().map(String::as_str).collect();
        names.sort_unstable();
        f.debug_struct("UrlEnv").field("vars", &names).field("login", &self.login).field("home", &self.home).finish()
    }
}

/// The variables [`UrlEnv::from_process`] takes from the environment.
const ENV_VARS: [&str; 6] = ["PGHOST", "PGPORT", "PGDATABASE", "PGUSER", "PGPASSWORD", "PGPASSFILE"];

impl UrlEnv {
    /// This process's `PG*` variables, login name (as libpq finds it: the user this process runs
    /// as) and home directory (`HOME`).
    pub fn from_process() -> UrlEnv {
        let vars = ENV_VARS.iter().filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v))).collect();
        let login = whoami::username()
            .ok()
            .or_else(|| std::env::var("USER").ok())
            .or_else(|| std::env::var("LOGNAME").ok())
            .filter(|s| !s.is_empty());
        let home = std::env::var_os("HOME").filter(|h| !h.is_empty()).map(PathBuf::from);
        UrlEnv { vars, login, home }
    }

    /// No variables, no login name, no home directory.
    pub fn empty() -> UrlEnv {
        UrlEnv::default()
    }

    /// With one variable set (`PGUSER`, `PGPASSFILE`...).
    pub fn var(mut self, key: &str, value: &str) -> UrlEnv {
        self.vars.insert(key.to_string(), value.to_string());
        self
    }

    pub fn login(mut self, name: &str) -> UrlEnv {
        self.login = Some(name.to_string());
        self
    }

    pub fn home(mut self, dir: &Path) -> UrlEnv {
        self.home = Some(dir.to_path_buf());
        self
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.vars.get(key).map(String::as_str).filter(|v| !v.is_empty())
    }
}

/// The settings as written, before defaults.
#[derive(Default)]
struct Written {
    host: Option<String>,
    port: Option<String>,
    dbname: Option<String>,
    user: Option<String>,
    password: Option<SecretString>,
    sslmode: Option<String>,
    sslrootcert: Option<String>,
    connect_timeout: Option<String>,
}

impl Written {
    /// Sets one key; an empty value counts as not written (libpq's reading).
    fn set(&mut self, key: &str, value: String) -> Result<(), UrlError> {
        let slot = match key {
            "host" => &mut self.host,
            "port" => &mut self.port,
            "dbname" => &mut self.dbname,
            "user" => &mut self.user,
            "password" => {
                self.password = Some(SecretString::from(value)).filter(|p| !p.expose_secret().is_empty());
                return Ok(());
            }
            "sslmode" => &mut self.sslmode,
            "sslrootcert" => &mut self.sslrootcert,
            "connect_timeout" => &mut self.connect_timeout,
            other => {
                // A key is not a secret, but a garbled URL might put one where a key goes: only a
                // short word is shown.
                let shown = if other.len() <= 32 && other.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    other.to_string()
                } else {
                    "(not shown)".to_string()
                };
                return Err(UrlError::UnknownParameter(shown));
            }
        };
        *slot = Some(value).filter(|v| !v.is_empty());
        Ok(())
    }
}

/// The keys of a connection string payrun reads.
const KEYS: [&str; 8] = ["host", "port", "dbname", "user", "password", "sslmode", "sslrootcert", "connect_timeout"];

/// The libpq default socket directories, for the password file's `localhost` (libpq matches
/// `localhost` for a socket connection in its default directory).
const DEFAULT_SOCKET_DIRS: [&str; 3] = ["/var/run/postgresql", "/run/postgresql", "/tmp"];

/// The characters written as they are in the displayed URL; everything else is %-escaped.
const URL_SAFE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

impl JournalUrl {
    /// Whether `s` is meant as a PostgreSQL journal (a `postgres://` URL or a `key=value` string),
    /// as opposed to a path: what a caller checks before choosing the backend.
    pub fn is_postgres(s: &str) -> bool {
        let s = s.trim_start();
        s.starts_with("postgres://")
            || s.starts_with("postgresql://")
            || s.split_once('=').is_some_and(|(k, _)| KEYS.contains(&k.trim()))
    }

    /// Reads a journal URL with this process's environment for what it leaves out.
    pub fn parse(s: &str) -> Result<JournalUrl, UrlError> {
        JournalUrl::parse_in(s, &UrlEnv::from_process())
    }

    /// Reads a journal URL with `env` for what it leaves out.
    pub fn parse_in(s: &str, env: &UrlEnv) -> Result<JournalUrl, UrlError> {
        let s = s.trim();
        let written = if let Some(rest) = s.strip_prefix("postgresql://").or_else(|| s.strip_prefix("postgres://")) {
            parse_uri(rest)?
        } else if s.contains('=') {
            parse_keywords(s)?
        } else {
            return Err(UrlError::NotPostgres);
        };
        JournalUrl::resolve(written, env)
    }

    fn resolve(w: Written, env: &UrlEnv) -> Result<JournalUrl, UrlError> {
        let host_text = w.host.or_else(|| env.get("PGHOST").map(str::to_string)).unwrap_or_else(|| "localhost".into());
        if host_text.contains(',') {
            return Err(UrlError::SeveralHosts);
        }
        let host =
            if host_text.starts_with('/') { Host::Socket(PathBuf::from(host_text)) } else { Host::Tcp(host_text) };
        let port = match (w.port, env.get("PGPORT")) {
            (Some(p), _) => parse_port(&p).ok_or(UrlError::BadPort)?,
            (None, Some(p)) => parse_port(p).ok_or(UrlError::BadEnvPort)?,
            (None, None) => 5432,
        };
        let user = w
            .user
            .or_else(|| env.get("PGUSER").map(str::to_string))
            .or_else(|| env.login.clone())
            .ok_or(UrlError::NoUser)?;
        let dbname = w.dbname.or_else(|| env.get("PGDATABASE").map(str::to_string)).unwrap_or_else(|| user.clone());
        let sslmode = w.sslmode.as_deref().map(SslMode::parse).transpose()?;
        let connect_timeout = match w.connect_timeout {
            None => None,
            // libpq: 0 (or less) waits indefinitely, 1 is read as 2.
            Some(t) => match t.trim().parse::<i64>().map_err(|_| UrlError::BadTimeout)? {
                n if n <= 0 => None,
                n => Some(Duration::from_secs(n.max(2) as u64)),
            },
        };
        let roots = match w.sslrootcert.as_deref() {
            None | Some("system") => RootCerts::Platform,
            Some(path) => RootCerts::File(PathBuf::from(path)),
        };

        let mut warnings = Vec::new();
        let tls = match (host.is_local(), sslmode) {
            (_, Some(SslMode::Disable)) => {
                if !host.is_local() {
                    warnings.push(format!(
                        "TLS is off for the journal database at {host}: the password and every payment cross the network in clear"
                    ));
                }
                Tls::Off
            }
            (true, None | Some(SslMode::Allow | SslMode::Prefer)) => Tls::Off,
            (true, Some(SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull)) => Tls::Verified,
            (false, _) => Tls::Verified,
        };

        let password = match w.password {
            Some(p) => Some(p),
            None => match env.get("PGPASSWORD") {
                Some(p) => Some(SecretString::from(p.to_string())),
                None => password_from_file(env, &host, port, &dbname, &user, &mut warnings),
            },
        };

        Ok(JournalUrl { host, port, dbname, user, password, sslmode, tls, roots, connect_timeout, warnings })
    }

    /// The URL without its password, for every message, log line and file:
    /// `postgres://alice@db.example.com:5432/payroll?sslmode=verify-full`. The `sslmode` shown is
    /// what payrun does (`disable` or `verify-full`), not necessarily what was written.
    pub fn display(&self) -> String {
        self.shown(true)
    }

    /// [`JournalUrl::display`] without the user: the database, for a command another person pastes
    /// (each signs in as themselves: `PGUSER`, else their login name).
    pub fn display_without_user(&self) -> String {
        self.shown(false)
    }

    fn shown(&self, with_user: bool) -> String {
        let host = match &self.host {
            Host::Tcp(h) if h.contains(':') => format!("[{h}]"),
            Host::Tcp(h) => utf8_percent_encode(h, URL_SAFE).to_string(),
            Host::Socket(p) => utf8_percent_encode(&p.to_string_lossy(), URL_SAFE).to_string(),
        };
        let user = if with_user { format!("{}@", utf8_percent_encode(&self.user, URL_SAFE)) } else { String::new() };
        let mut s = format!(
            "postgres://{user}{host}:{}/{}?sslmode={}",
            self.port,
            utf8_percent_encode(&self.dbname, URL_SAFE),
            match self.tls {
                Tls::Off => "disable",
                Tls::Verified => "verify-full",
            }
        );
        if let RootCerts::File(p) = &self.roots {
            s.push_str("&sslrootcert=");
            s.extend(utf8_percent_encode(&p.to_string_lossy(), URL_SAFE));
        }
        if let Some(t) = self.connect_timeout {
            s.push_str(&format!("&connect_timeout={}", t.as_secs()));
        }
        s
    }

    /// What the caller prints on every run (`sslmode=disable` on a remote host, an ignored password
    /// file). Never contains the password.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    pub fn host(&self) -> &Host {
        &self.host
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn dbname(&self) -> &str {
        &self.dbname
    }

    pub fn user(&self) -> &str {
        &self.user
    }

    /// The password, when one is known; exposing it is the caller's explicit act.
    pub fn password(&self) -> Option<&SecretString> {
        self.password.as_ref()
    }

    /// The `sslmode` written in the URL, if any.
    pub fn sslmode(&self) -> Option<SslMode> {
        self.sslmode
    }

    pub fn tls(&self) -> Tls {
        self.tls
    }

    pub fn root_certs(&self) -> &RootCerts {
        &self.roots
    }

    /// `connect_timeout` as written (`None`: not written, or `0`).
    pub fn connect_timeout(&self) -> Option<Duration> {
        self.connect_timeout
    }

    /// The same address with another database (the tests' and `journal init`'s maintenance
    /// connections).
    pub fn with_dbname(&self, dbname: &str) -> JournalUrl {
        JournalUrl { dbname: dbname.to_string(), ..self.clone() }
    }

    /// tokio-postgres' settings for this address. TLS is `Require` or `Disable`, never `Prefer`
    /// (which would fall back to plain text when a man in the middle says "no TLS here"); the
    /// certificate checks are the connector's ([`super::postgres`]).
    pub(crate) fn pg_config(&self) -> tokio_postgres::Config {
        let mut c = tokio_postgres::Config::new();
        match &self.host {
            Host::Tcp(h) => c.host(h),
            Host::Socket(p) => c.host_path(p),
        };
        c.port(self.port).user(&self.user).dbname(&self.dbname).application_name("payrun");
        if let Some(p) = &self.password {
            c.password(p.expose_secret());
        }
        c.ssl_mode(match self.tls {
            Tls::Off => tokio_postgres::config::SslMode::Disable,
            Tls::Verified => tokio_postgres::config::SslMode::Require,
        });
        // A database that vanishes without a word (a cable, a failover) is noticed in about half a
        // minute, not after the system's two hours: unacknowledged writes give up after 30 s, and
        // an idle connection is probed after 15 s.
        c.keepalives(true)
            .keepalives_idle(Duration::from_secs(15))
            .keepalives_interval(Duration::from_secs(5))
            .keepalives_retries(3)
            .tcp_user_timeout(Duration::from_secs(30));
        c
    }
}

fn parse_port(s: &str) -> Option<u16> {
    s.trim().parse::<u16>().ok().filter(|p| *p > 0)
}

fn decode(s: &str, what: &'static str) -> Result<String, UrlError> {
    percent_decode_str(s).decode_utf8().map(|c| c.into_owned()).map_err(|_| UrlError::BadEscape(what))
}

/// `[user[:password]@][host][:port][/dbname][?key=value&...]`, after the scheme (libpq's URI form).
fn parse_uri(rest: &str) -> Result<Written, UrlError> {
    let mut w = Written::default();
    let (main, query) = match rest.split_once('?') {
        Some((m, q)) => (m, Some(q)),
        None => (rest, None),
    };
    let (authority, path) = match main.find('/') {
        Some(i) => (&main[..i], Some(&main[i + 1..])),
        None => (main, None),
    };
    // The last '@' of the authority: a password with an unescaped '@' still reads (libpq would fail
    // on it; nothing libpq reads is read differently).
    let hostport = match authority.rfind('@') {
        Some(at) => {
            let userinfo = &authority[..at];
            let (user, password) = match userinfo.split_once(':') {
                Some((u, p)) => (u, Some(p)),
                None => (userinfo, None),
            };
            w.set("user", decode(user, "user name")?)?;
            if let Some(p) = password {
                w.password = Some(SecretString::from(decode(p, "password")?)).filter(|p| !p.expose_secret().is_empty());
            }
            &authority[at + 1..]
        }
        None => authority,
    };
    if hostport.contains(',') {
        return Err(UrlError::SeveralHosts);
    }
    let (host, port) = if let Some(inner) = hostport.strip_prefix('[') {
        let (h, after) = inner.split_once(']').ok_or(UrlError::Malformed("an IPv6 address without its closing ']'"))?;
        match after {
            "" => (h.to_string(), None),
            a => (h.to_string(), Some(a.strip_prefix(':').ok_or(UrlError::Malformed("text after an IPv6 address"))?)),
        }
    } else {
        match hostport.split_once(':') {
            Some((h, p)) => (decode(h, "host")?, Some(p)),
            None => (decode(hostport, "host")?, None),
        }
    };
    w.set("host", host)?;
    if let Some(p) = port {
        w.set("port", decode(p, "port")?)?;
    }
    if let Some(db) = path {
        w.set("dbname", decode(db, "database name")?)?;
    }
    for pair in query.into_iter().flat_map(|q| q.split('&')).filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').ok_or(UrlError::Malformed("a query parameter without '='"))?;
        let key = decode(k, "query parameters")?;
        let value = if key == "password" { decode(v, "password")? } else { decode(v, "query parameters")? };
        w.set(&key, value)?;
    }
    Ok(w)
}

/// `key=value key='quoted value' ...` (libpq's connection string: `\` escapes the next character,
/// single quotes keep spaces).
fn parse_keywords(s: &str) -> Result<Written, UrlError> {
    let mut w = Written::default();
    let mut chars = s.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(w);
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            return Err(UrlError::Malformed("a key without '=' in the connection string"));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    None => return Err(UrlError::Malformed("a quoted value without its closing quote")),
                    Some('\'') => break,
                    Some('\\') => value.extend(chars.next()),
                    Some(c) => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                if c == '\\' {
                    value.extend(chars.next());
                } else {
                    value.push(c);
                }
            }
        }
        w.set(&key, value)?;
    }
}

/// The password file's answer for this connection, if the file exists, may be used, and has a
/// matching line. A file others may read is ignored with a warning (libpq's rule).
fn password_from_file(
    env: &UrlEnv,
    host: &Host,
    port: u16,
    dbname: &str,
    user: &str,
    warnings: &mut Vec<String>,
) -> Option<SecretString> {
    let path = match env.get("PGPASSFILE") {
        Some(p) => PathBuf::from(p),
        None => env.home.as_ref()?.join(".pgpass"),
    };
    let meta = std::fs::metadata(&path).ok()?;
    if !meta.is_file() {
        warnings.push(format!("the password file {} is not a plain file and was ignored", path.display()));
        return None;
    }
    if let Some(why) = pgpass_permission_problem(&meta) {
        warnings
            .push(format!("the password file {} {why} and was ignored; make it u=rw (0600) or less", path.display()));
        return None;
    }
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            warnings.push(format!("the password file {} could not be read ({e}) and was ignored", path.display()));
            return None;
        }
    };
    let port = port.to_string();
    let hosts: Vec<String> = match host {
        Host::Tcp(h) => vec![h.clone()],
        Host::Socket(p) => {
            let mut v = vec![p.to_string_lossy().into_owned()];
            if DEFAULT_SOCKET_DIRS.iter().any(|d| Path::new(d) == p) {
                v.push("localhost".into());
            }
            v
        }
    };
    hosts.iter().find_map(|h| pgpass_lookup(&text, h, &port, dbname, user)).map(SecretString::from)
}

#[cfg(unix)]
fn pgpass_permission_problem(meta: &std::fs::Metadata) -> Option<&'static str> {
    use std::os::unix::fs::PermissionsExt;
    (meta.permissions().mode() & 0o077 != 0).then_some("has group or world access")
}

#[cfg(not(unix))]
fn pgpass_permission_problem(_: &std::fs::Metadata) -> Option<&'static str> {
    None
}

/// The password of the first line of a password file (`host:port:database:username:password`)
/// that matches, as libpq reads it: `#` starts a comment line, a field that is exactly `*` matches
/// anything, `\:` and `\\` are a literal `:` and `\`, and the password ends at the line's end (or
/// an unescaped `:`).
pub fn pgpass_lookup(text: &str, host: &str, port: &str, dbname: &str, user: &str) -> Option<String> {
    let wanted = [host, port, dbname, user];
    text.lines().filter(|l| !l.starts_with('#')).find_map(|line| {
        let line = line.strip_suffix('\r').unwrap_or(line);
        let mut chars = line.chars();
        for want in wanted {
            let field = pgpass_field(&mut chars);
            if !field.ended_by_colon || !(field.wildcard || field.text == want) {
                return None;
            }
        }
        Some(pgpass_field(&mut chars).text)
    })
}

/// One field of a password-file line.
struct PgpassField {
    /// De-escaped.
    text: String,
    /// Written as a bare `*` (an escaped `\*` is a literal asterisk).
    wildcard: bool,
    /// Ended by an unescaped `:` rather than by the end of the line.
    ended_by_colon: bool,
}

fn pgpass_field(chars: &mut std::str::Chars<'_>) -> PgpassField {
    let mut text = String::new();
    let mut escaped = false;
    let ended_by_colon = loop {
        match chars.next() {
            None => break false,
            Some(':') => break true,
            Some('\\') => {
                escaped = true;
                text.extend(chars.next());
            }
            Some(c) => text.push(c),
        }
    };
    PgpassField { wildcard: !escaped && text == "*", text, ended_by_colon }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An environment with a login name and nothing else.
    fn env() -> UrlEnv {
        UrlEnv::empty().login("clerk")
    }

    fn parse(s: &str) -> JournalUrl {
        JournalUrl::parse_in(s, &env()).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn a_url_reads_as_libpq_reads_it() {
        let u = parse("postgres://alice:s3cret@db.example.com:6543/payroll?sslmode=verify-full");
        assert_eq!(u.host(), &Host::Tcp("db.example.com".into()));
        assert_eq!((u.port(), u.user(), u.dbname()), (6543, "alice", "payroll"));
        assert_eq!(u.password().map(|p| p.expose_secret()), Some("s3cret"));
        assert_eq!(u.sslmode(), Some(SslMode::VerifyFull));
        let u = parse("postgresql://bob@[::1]/books");
        assert_eq!((u.host(), u.port()), (&Host::Tcp("::1".into()), 5432));
        // %-escapes everywhere, a password with '@', ':' and '/' in it.
        let u = parse("postgres://al%20ice:p%40ss%3Aw%2Fd@db.example.com/pay%20roll");
        assert_eq!((u.user(), u.dbname()), ("al ice", "pay roll"));
        assert_eq!(u.password().map(|p| p.expose_secret()), Some("p@ss:w/d"));
        // An unescaped '@' in the password still reads (libpq would fail on it).
        assert_eq!(parse("postgres://u:p@ss@h/d").password().map(|p| p.expose_secret()), Some("p@ss"));
        // Query parameters override, as in libpq.
        let u = parse("postgres://h/d?user=carol&password=pw&port=7000&host=other");
        assert_eq!((u.host(), u.port(), u.user()), (&Host::Tcp("other".into()), 7000, "carol"));
        // A socket directory as the host.
        let u = parse("postgres://%2Frun%2Fpostgresql/d");
        assert_eq!(u.host(), &Host::Socket("/run/postgresql".into()));
        assert_eq!(u.tls(), Tls::Off);
    }

    #[test]
    fn a_key_value_string_reads_as_libpq_reads_it() {
        let u = parse("host=db.example.com port = 6543 dbname='pay roll' user=alice sslmode=require");
        assert_eq!(u.host(), &Host::Tcp("db.example.com".into()));
        assert_eq!((u.port(), u.user(), u.dbname()), (6543, "alice", "pay roll"));
        // Inside quotes, \' and \\ are a quote and a backslash.
        let u = parse(r"host=h password='it\'s a \\secret'");
        assert_eq!(u.password().map(|p| p.expose_secret()), Some(r"it's a \secret"));
        let u = parse(r"host=/run/postgresql user=a\ b");
        assert_eq!((u.host(), u.user()), (&Host::Socket("/run/postgresql".into()), "a b"));
    }

    #[test]
    fn what_is_not_written_comes_from_the_environment_then_the_defaults() {
        let u = parse("postgres://");
        assert_eq!(
            (u.host(), u.port(), u.user(), u.dbname()),
            (&Host::Tcp("localhost".into()), 5432, "clerk", "clerk")
        );
        assert!(u.password().is_none());
        let e = env()
            .var("PGHOST", "db.internal")
            .var("PGPORT", "6000")
            .var("PGUSER", "payroll_bot")
            .var("PGDATABASE", "journal")
            .var("PGPASSWORD", "from-env");
        let u = JournalUrl::parse_in("postgres://", &e).expect("parse");
        assert_eq!(
            (u.host(), u.port(), u.user(), u.dbname()),
            (&Host::Tcp("db.internal".into()), 6000, "payroll_bot", "journal")
        );
        assert_eq!(u.password().map(|p| p.expose_secret()), Some("from-env"));
        // What is written wins over the environment.
        let u = JournalUrl::parse_in("postgres://ann:pw@h:1/db", &e).expect("parse");
        assert_eq!((u.port(), u.user(), u.dbname()), (1, "ann", "db"));
        assert_eq!(u.password().map(|p| p.expose_secret()), Some("pw"));
        assert_eq!(JournalUrl::parse_in("postgres://h/d", &UrlEnv::empty()).err(), Some(UrlError::NoUser));
        assert_eq!(JournalUrl::parse_in("postgres://h/d", &env().var("PGPORT", "x")).err(), Some(UrlError::BadEnvPort));
    }

    #[test]
    fn the_password_is_never_shown() {
        let secret = "Sup3r-S3cret";
        for s in [
            format!("postgres://alice:{secret}@db.example.com:5432/payroll"),
            format!("postgres://alice@db.example.com/payroll?password={secret}"),
            format!("host=db.example.com user=alice password={secret} dbname=payroll"),
        ] {
            let u = parse(&s);
            assert_eq!(u.password().map(|p| p.expose_secret()), Some(secret));
            assert_eq!(u.to_string(), "postgres://alice@db.example.com:5432/payroll?sslmode=verify-full");
            assert_eq!(u.display(), u.to_string());
            let debug = format!("{u:?} {u:#?}");
            assert!(!debug.contains(secret), "{debug}");
            assert!(debug.contains("REDACTED"), "{debug}");
            assert!(!format!("{:?}", u.pg_config()).contains(secret));
        }
        // Nor in an error about the text around it.
        for bad in [
            format!("postgres://alice:{secret}@db.example.com:port/x"),
            format!("postgres://alice:{secret}@h1,h2/x"),
            format!("postgres://alice:{secret}@h/x?sslmode={secret}"),
            format!("postgres://alice:{secret}@h/x?{secret}=1"),
            format!("postgres://alice:{secret}@h/x?{secret}"),
            format!("host=h password={secret} {secret}"),
            format!("host=h password='{secret}"),
            format!("postgres://alice:{secret}%FF@h/x"),
            format!("{secret}"),
        ] {
            let e = JournalUrl::parse_in(&bad, &env()).expect_err(&bad);
            assert!(!e.to_string().contains(secret) && !format!("{e:?}").contains(secret), "{e}");
        }
    }

    #[test]
    fn unknown_or_several_things_are_refused_by_name() {
        assert_eq!(
            JournalUrl::parse_in("postgres://h/d?sslmdoe=disable", &env()).err(),
            Some(UrlError::UnknownParameter("sslmdoe".into()))
        );
        assert_eq!(JournalUrl::parse_in("postgres://h1,h2/d", &env()).err(), Some(UrlError::SeveralHosts));
        assert_eq!(JournalUrl::parse_in("host=h1,h2", &env()).err(), Some(UrlError::SeveralHosts));
        assert_eq!(JournalUrl::parse_in("postgres://h:0/d", &env()).err(), Some(UrlError::BadPort));
        assert_eq!(JournalUrl::parse_in("postgres://h:99999/d", &env()).err(), Some(UrlError::BadPort));
        assert_eq!(JournalUrl::parse_in("postgres://h/d?sslmode=off", &env()).err(), Some(UrlError::BadSslMode));
        assert_eq!(JournalUrl::parse_in("mysql://h/d", &env()).err(), Some(UrlError::NotPostgres));
        assert_eq!(JournalUrl::parse_in("/var/lib/payrun", &env()).err(), Some(UrlError::NotPostgres));
        assert!(JournalUrl::is_postgres("postgres://h/d"));
        assert!(JournalUrl::is_postgres("host=db dbname=x"));
        assert!(!JournalUrl::is_postgres("/home/me/state"));
        assert!(!JournalUrl::is_postgres("./a=b"));
    }

    #[test]
    fn tls_rules() {
        let tls = |s: &str| parse(s).tls();
        // Local: none by default; on request, verified.
        for local in ["localhost", "LocalHost", "127.0.0.1", "127.9.8.7", "[::1]", "%2Frun%2Fpostgresql"] {
            assert_eq!(tls(&format!("postgres://{local}/d")), Tls::Off, "{local}");
            assert_eq!(tls(&format!("postgres://{local}/d?sslmode=prefer")), Tls::Off, "{local}");
            assert_eq!(tls(&format!("postgres://{local}/d?sslmode=require")), Tls::Verified, "{local}");
            assert_eq!(tls(&format!("postgres://{local}/d?sslmode=verify-full")), Tls::Verified, "{local}");
            assert!(parse(&format!("postgres://{local}/d?sslmode=disable")).warnings().is_empty());
        }
        // Anywhere else: verified, whatever the mode, except a written `disable`.
        for remote in ["db.example.com", "10.0.0.5", "[2001:db8::1]", "localhost.example.com", "128.0.0.1"] {
            for mode in [
                "",
                "?sslmode=allow",
                "?sslmode=prefer",
                "?sslmode=require",
                "?sslmode=verify-ca",
                "?sslmode=verify-full",
            ] {
                let u = parse(&format!("postgres://{remote}/d{mode}"));
                assert_eq!(u.tls(), Tls::Verified, "{remote}{mode}");
                assert!(u.warnings().is_empty());
                assert!(u.to_string().ends_with("?sslmode=verify-full"), "{u}");
            }
            let u = parse(&format!("postgres://{remote}/d?sslmode=disable"));
            assert_eq!(u.tls(), Tls::Off);
            assert_eq!(u.warnings().len(), 1);
            assert!(u.warnings()[0].starts_with("TLS is off for the journal database at "), "{:?}", u.warnings());
            assert!(u.warnings()[0].ends_with("the password and every payment cross the network in clear"));
            assert!(u.to_string().ends_with("?sslmode=disable"), "{u}");
        }
        assert_eq!(parse("postgres://db.example.com/d").root_certs(), &RootCerts::Platform);
        assert_eq!(parse("postgres://db.example.com/d?sslrootcert=system").root_certs(), &RootCerts::Platform);
        let u = parse("postgres://db.example.com/d?sslrootcert=%2Fetc%2Fpayrun%2Fca.pem");
        assert_eq!(u.root_certs(), &RootCerts::File("/etc/payrun/ca.pem".into()));
        assert_eq!(
            u.to_string(),
            "postgres://clerk@db.example.com:5432/d?sslmode=verify-full&sslrootcert=%2Fetc%2Fpayrun%2Fca.pem"
        );
    }

    #[test]
    fn the_display_reads_back_as_the_same_address() {
        for s in [
            "postgres://alice:pw@db.example.com:6543/payroll?sslmode=disable",
            "postgres://a%20b@[::1]/d%2Fx?sslmode=require&connect_timeout=5",
            "host=/run/postgresql dbname=j user=u",
            "postgres://u@h/d?sslrootcert=ca.pem",
        ] {
            let u = parse(s);
            let again = parse(&u.to_string());
            assert_eq!(again.to_string(), u.to_string());
            assert_eq!(
                (again.host(), again.port(), again.user(), again.dbname()),
                (u.host(), u.port(), u.user(), u.dbname())
            );
            assert_eq!((again.tls(), again.root_certs()), (u.tls(), u.root_certs()));
        }
        assert_eq!(parse("postgres://u@h/d?connect_timeout=1").connect_timeout(), Some(Duration::from_secs(2)));
        assert_eq!(parse("postgres://u@h/d?connect_timeout=0").connect_timeout(), None);
    }

    #[test]
    fn password_file_lines_match_as_in_libpq() {
        let file = "# a comment line: *:*:*:*:nope\n\
                    db.example.com:5432:payroll:alice:first\n\
                    db.example.com:5432:payroll:alice:second\n\
                    *:*:*:bob:bobs\\:pass\\\\word\n\
                    h\\:x:*:d\\*:carol:escaped\n\
                    localhost:6543:*:*:anyone-local\r\n\
                    short:line\n";
        let look = |h, p, d, u| pgpass_lookup(file, h, p, d, u);
        assert_eq!(
            look("db.example.com", "5432", "payroll", "alice").as_deref(),
            Some("first"),
            "the first match wins"
        );
        assert_eq!(look("db.example.com", "5433", "payroll", "alice"), None);
        assert_eq!(look("anywhere", "1", "any", "bob").as_deref(), Some(r"bobs:pass\word"));
        assert_eq!(look("h:x", "5432", "d*", "carol").as_deref(), Some("escaped"));
        assert_eq!(look("h:x", "5432", "dx", "carol"), None, "an escaped * is no wildcard");
        assert_eq!(look("localhost", "6543", "x", "y").as_deref(), Some("anyone-local"), "CRLF line ends");
        assert_eq!(look("short", "line", "", ""), None);
        assert_eq!(look("#", "a", "b", "c"), None);
        // The password may contain '*' and stops at an unescaped ':' (libpq drops the rest).
        assert_eq!(pgpass_lookup("h:1:d:u:a*b:ignored", "h", "1", "d", "u").as_deref(), Some("a*b"));
        assert_eq!(pgpass_lookup("h:1:d:u:", "h", "1", "d", "u").as_deref(), Some(""));
    }

    #[cfg(unix)]
    #[test]
    fn the_password_file_is_used_only_when_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("pgpass");
        std::fs::write(&path, "db.example.com:*:payroll:alice:from-file\n").expect("write");
        let e = env().var("PGPASSFILE", &path.display().to_string());
        let url = "postgres://alice@db.example.com/payroll";

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let u = JournalUrl::parse_in(url, &e).expect("parse");
        assert_eq!(u.password().map(|p| p.expose_secret()), Some("from-file"));
        assert!(u.warnings().is_empty());
        // The URL's password and PGPASSWORD come first.
        let u = JournalUrl::parse_in("postgres://alice:mine@db.example.com/payroll", &e).expect("parse");
        assert_eq!(u.password().map(|p| p.expose_secret()), Some("mine"));
        let u = JournalUrl::parse_in(url, &e.clone().var("PGPASSWORD", "env")).expect("parse");
        assert_eq!(u.password().map(|p| p.expose_secret()), Some("env"));

        for mode in [0o640, 0o604, 0o610] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
            let u = JournalUrl::parse_in(url, &e).expect("parse");
            assert!(u.password().is_none(), "{mode:o}");
            assert_eq!(u.warnings().len(), 1, "{mode:o}");
            assert!(u.warnings()[0].contains("group or world access"), "{:?}", u.warnings());
            assert!(u.warnings()[0].contains(&path.display().to_string()));
            assert!(!u.warnings()[0].contains("from-file"));
        }

        // ~/.pgpass when PGPASSFILE is not set.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        std::fs::rename(&path, dir.path().join(".pgpass")).expect("rename");
        let u = JournalUrl::parse_in(url, &env().home(dir.path())).expect("parse");
        assert_eq!(u.password().map(|p| p.expose_secret()), Some("from-file"));
        // A socket connection in a default directory matches `localhost` lines.
        std::fs::write(dir.path().join(".pgpass"), "localhost:5432:*:*:sock\n").expect("write");
        let u = JournalUrl::parse_in("host=/run/postgresql user=u", &env().home(dir.path())).expect("parse");
        assert_eq!(u.password().map(|p| p.expose_secret()), Some("sock"));
    }
}
