//! A real PostgreSQL for the team-mode tests (SPEC 8).
//!
//! - [`server`]: the server this test process uses, found once: `PAYRUN_TEST_DATABASE_URL` if set
//!   (a superuser, or a role with CREATEDB and CREATEROLE); else one on 127.0.0.1:5432 that lets
//!   `postgres`, `root` or the login name in without a password (database `postgres` or `test`);
//!   else a throwaway cluster started here with `initdb`/`pg_ctl` (from `PATH`, else Debian's
//!   `/usr/lib/postgresql/*/bin`), stopped and deleted by a small watcher process once this test
//!   process has ended (Rust tests have no atexit). As root, the server tools run as the
//!   `postgres` system user (`runuser`), since `initdb` refuses root.
//! - [`TestDb::new`]: a fresh database `payrun_t_<random hex>` owned by a fresh non-superuser role
//!   with CREATEROLE (a rented database's owner: SPEC 8.1's `journal init` must work for it), and
//!   dropped, with every role made for it, when the `TestDb` is dropped. Names never repeat, so
//!   tests run side by side and what a killed run leaves behind trips nobody.
//! - [`PrivateCluster::new`]: always a cluster of the test's own (to stop, start and restart in the
//!   middle of a batch, or to run with TLS).
//!
//! Team-mode tests never skip: with no server to be had they fail, saying how to get one.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use payrun::journal::store::Store;
use payrun::journal::store::pgurl::{Host, JournalUrl, RootCerts, Tls, UrlEnv};
use payrun::journal::store::postgres::PgStore;
use secrecy::ExposeSecret;

const HOW_TO: &str = "team-mode tests need PostgreSQL. Install its server (`apt-get install postgresql`: the tests \
start a throwaway cluster with its initdb and pg_ctl), or run one that lets user postgres in on 127.0.0.1:5432 \
without a password, or set PAYRUN_TEST_DATABASE_URL=postgres://USER:PASSWORD@HOST:PORT/DB (a superuser, or a role \
with CREATEDB and CREATEROLE)";

/// A PostgreSQL server the tests may create databases and roles on.
#[derive(Clone, Debug)]
pub struct Server {
    /// Host as written in a URL (`127.0.0.1`, `[::1]`, a %-escaped socket directory).
    host: String,
    pub port: u16,
    /// A role allowed to create databases and roles.
    superuser: String,
    password: Option<String>,
    /// The database to connect to when creating and dropping others.
    maintenance_db: String,
    /// `sslmode=...&sslrootcert=...` for every URL to this server (empty on loopback).
    params: String,
}

impl Server {
    /// A URL to database `db` as `role` (a password only when one is given).
    pub fn url_as(&self, role: &str, password: Option<&str>, db: &str) -> String {
        let auth = match password {
            Some(p) => format!("{}:{}", esc(role), esc(p)),
            None => esc(role),
        };
        let q = if self.params.is_empty() { String::new() } else { format!("?{}", self.params) };
        format!("postgres://{auth}@{}:{}/{}{q}", self.host, self.port, esc(db))
    }

    /// The superuser's URL to database `db`.
    pub fn admin_url(&self, db: &str) -> String {
        self.url_as(&self.superuser, self.password.as_deref(), db)
    }

    /// A connection to the maintenance database as the superuser.
    pub fn admin(&self) -> Result<PgStore, String> {
        connect(&self.admin_url(&self.maintenance_db))
    }
}

/// A store connected to `url`, read with this process's environment.
pub fn connect(url: &str) -> Result<PgStore, String> {
    let parsed = JournalUrl::parse(url).map_err(|e| e.to_string())?;
    PgStore::connect(&parsed).map_err(|e| format!("{parsed}: {e}"))
}

/// A URL component, %-escaped.
fn esc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A SQL string literal.
pub fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// 16 random hex digits, for names that never repeat.
pub fn random_hex() -> String {
    use std::io::Read;
    let mut b = [0u8; 8];
    let from_os = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b)).is_ok();
    if !from_os {
        use std::hash::{BuildHasher, Hasher};
        static COUNT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos());
        h.write_u32(std::process::id());
        h.write_u64(COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        b = h.finish().to_le_bytes();
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

static SHARED: OnceLock<Result<Server, String>> = OnceLock::new();
/// The throwaway cluster behind [`server`], when one had to be started (kept for the process).
static SHARED_CLUSTER: OnceLock<Cluster> = OnceLock::new();

/// The server this test process uses (found or started on first use). Panics, saying how to get
/// one, when there is none.
pub fn server() -> &'static Server {
    match SHARED.get_or_init(find_or_start) {
        Ok(s) => s,
        Err(why) => panic!("{why}\n{HOW_TO}"),
    }
}

fn find_or_start() -> Result<Server, String> {
    if let Ok(url) = std::env::var("PAYRUN_TEST_DATABASE_URL") {
        return from_env_url(&url);
    }
    if let Some(s) = local_server() {
        return Ok(s);
    }
    let cluster = Cluster::create(&[], &[]).map_err(|e| {
        format!("no PostgreSQL answered on 127.0.0.1:5432 without a password, and none could be started: {e}")
    })?;
    cluster.watch();
    cluster.start().map_err(|e| format!("could not start a throwaway PostgreSQL cluster: {e}"))?;
    let server = cluster.server();
    let _ = SHARED_CLUSTER.set(cluster);
    Ok(server)
}

/// The server `PAYRUN_TEST_DATABASE_URL` names, checked.
fn from_env_url(url: &str) -> Result<Server, String> {
    let parsed = JournalUrl::parse(url).map_err(|e| format!("PAYRUN_TEST_DATABASE_URL: {e}"))?;
    let host = match parsed.host() {
        Host::Tcp(h) if h.contains(':') => format!("[{h}]"),
        Host::Tcp(h) => esc(h),
        Host::Socket(p) => esc(&p.to_string_lossy()),
    };
    let mut params = Vec::new();
    if parsed.tls() == Tls::Verified {
        params.push("sslmode=verify-full".to_string());
    } else if !parsed.host().is_local() {
        params.push("sslmode=disable".to_string());
    }
    if let RootCerts::File(p) = parsed.root_certs() {
        params.push(format!("sslrootcert={}", esc(&p.to_string_lossy())));
    }
    let server = Server {
        host,
        port: parsed.port(),
        superuser: parsed.user().to_string(),
        password: parsed.password().map(|p| p.expose_secret().to_string()),
        maintenance_db: parsed.dbname().to_string(),
        params: params.join("&"),
    };
    let mut admin = server.admin().map_err(|e| format!("PAYRUN_TEST_DATABASE_URL: cannot connect: {e}"))?;
    check_privileges(&mut admin).map_err(|e| format!("PAYRUN_TEST_DATABASE_URL: {e}"))?;
    Ok(server)
}

/// A server on 127.0.0.1:5432 letting a likely user in without a password, if any.
fn local_server() -> Option<Server> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], 5432));
    std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    let login = UrlEnv::from_process();
    let login = JournalUrl::parse_in("host=127.0.0.1", &login).ok().map(|u| u.user().to_string());
    let users = ["postgres", "root"].into_iter().map(String::from).chain(login);
    for user in users {
        for db in ["postgres", "test"] {
            let server = Server {
                host: "127.0.0.1".into(),
                port: 5432,
                superuser: user.clone(),
                password: None,
                maintenance_db: db.into(),
                params: String::new(),
            };
            // Trust only: no password from the environment or a password file is tried.
            let Ok(url) = JournalUrl::parse_in(&server.admin_url(db), &UrlEnv::empty()) else { continue };
            let Ok(mut admin) = PgStore::connect(&url) else { continue };
            if check_privileges(&mut admin).is_ok() {
                return Some(server);
            }
        }
    }
    None
}

fn check_privileges(admin: &mut PgStore) -> Result<(), String> {
    let rows = admin
        .query(
            "SELECT rolsuper OR (rolcreatedb AND rolcreaterole) AS ok FROM pg_roles WHERE rolname = current_user",
            &[],
        )
        .map_err(|e| e.to_string())?;
    match rows.first().map(|r| r.get::<bool>("ok")) {
        Some(Ok(true)) => Ok(()),
        _ => Err("the role may not create databases and roles (it needs SUPERUSER, or CREATEDB and CREATEROLE)".into()),
    }
}

/// A fresh database for one test, and the roles made for it; all dropped on drop.
pub struct TestDb {
    server: Server,
    /// `payrun_t_<16 hex>`.
    pub name: String,
    /// The database's owner: LOGIN, CREATEROLE, not a superuser.
    pub owner: String,
    owner_password: String,
    /// Roles to drop with the database (the owner first, then [`TestDb::create_login_role`]'s).
    roles: Mutex<Vec<String>>,
}

impl TestDb {
    /// A fresh database on [`server`].
    pub fn new() -> TestDb {
        TestDb::on(server())
    }

    /// A fresh database on `server` (a [`PrivateCluster`]'s).
    pub fn on(server: &Server) -> TestDb {
        let name = format!("payrun_t_{}", random_hex());
        let owner = format!("{name}_owner");
        let owner_password = random_hex();
        let db = TestDb {
            server: server.clone(),
            name: name.clone(),
            owner: owner.clone(),
            owner_password: owner_password.clone(),
            roles: Mutex::new(vec![owner.clone()]),
        };
        let mut admin = server.admin().unwrap_or_else(|e| panic!("test database server: {e}\n{HOW_TO}"));
        admin
            .execute_batch(&format!("CREATE ROLE {owner} LOGIN CREATEROLE PASSWORD {}", lit(&owner_password)))
            .unwrap_or_else(|e| panic!("create role {owner}: {e}"));
        // UTF-8 whatever the cluster's default; the server's locale when it allows UTF-8, else C.
        let create = format!("CREATE DATABASE {name} OWNER {owner} TEMPLATE template0 ENCODING 'UTF8'");
        if let Err(first) = admin.execute_batch(&create) {
            admin
                .execute_batch(&format!("{create} LC_COLLATE 'C' LC_CTYPE 'C'"))
                .unwrap_or_else(|e| panic!("create database {name}: {first}; with the C locale: {e}"));
        }
        db
    }

    /// The URL payrun is given (`--journal`): the database's owner, who is not a superuser.
    pub fn url(&self) -> String {
        self.server.url_as(&self.owner, Some(&self.owner_password), &self.name)
    }

    /// [`TestDb::url`] through another address (`127.0.0.1:PORT`: a proxy in front of the server).
    pub fn url_at(&self, host_port: &str) -> String {
        let q = if self.server.params.is_empty() { String::new() } else { format!("?{}", self.server.params) };
        format!("postgres://{}:{}@{host_port}/{}{q}", esc(&self.owner), esc(&self.owner_password), esc(&self.name))
    }

    /// A superuser's URL to this database.
    pub fn admin_url(&self) -> String {
        self.server.admin_url(&self.name)
    }

    /// [`TestDb::url`], read.
    pub fn journal_url(&self) -> JournalUrl {
        JournalUrl::parse(&self.url()).unwrap_or_else(|e| panic!("test database URL: {e}"))
    }

    /// A store connected as the owner.
    pub fn store(&self) -> PgStore {
        connect(&self.url()).unwrap_or_else(|e| panic!("connect as the owner: {e}"))
    }

    /// A store connected as a superuser.
    pub fn admin_store(&self) -> PgStore {
        connect(&self.admin_url()).unwrap_or_else(|e| panic!("connect as a superuser: {e}"))
    }

    /// Creates a login role `<prefix>_<random hex>` with `password` (dropped with the database)
    /// and returns its name. `prefix`: lower-case letters, digits and `_`.
    pub fn create_login_role(&self, prefix: &str, password: &str) -> String {
        assert!(
            !prefix.is_empty() && prefix.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
            "role prefix {prefix:?}: lower-case letters, digits and _"
        );
        let role = format!("{prefix}_{}", &random_hex()[..10]);
        let mut admin = self.server.admin().unwrap_or_else(|e| panic!("{e}"));
        admin
            .execute_batch(&format!("CREATE ROLE {role} LOGIN PASSWORD {}", lit(password)))
            .unwrap_or_else(|e| panic!("create role {role}: {e}"));
        self.roles.lock().unwrap_or_else(|p| p.into_inner()).push(role.clone());
        role
    }

    /// A URL to this database as `role` with `password`.
    pub fn url_as(&self, role: &str, password: &str) -> String {
        self.server.url_as(role, Some(password), &self.name)
    }

    /// A new login role `<prefix>_<random hex>` (password `<prefix> password`) made a member of
    /// `group` (`payrun_maker`, ...) by the database's owner: the URL to this database as it.
    pub fn member_url(&self, prefix: &str, group: &str) -> String {
        let password = format!("{prefix} password");
        let name = self.create_login_role(prefix, &password);
        self.store()
            .execute_batch(&format!("GRANT {group} TO {name}"))
            .unwrap_or_else(|e| panic!("grant {group}: {e}"));
        self.url_as(&name, &password)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let mut admin = match self.server.admin() {
            Ok(a) => a,
            Err(e) => {
                eprintln!("test database {}: not dropped: {e}", self.name);
                return;
            }
        };
        if let Err(e) = admin.execute_batch(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)) {
            eprintln!("test database {}: not dropped: {e}", self.name);
        }
        // Roles are the cluster's, not the database's. Newest first: a later one may have been
        // granted something by an earlier one.
        let roles = std::mem::take(&mut *self.roles.lock().unwrap_or_else(|p| p.into_inner()));
        for role in roles.iter().rev() {
            // What the role holds outside the dropped database (PostgreSQL 16 counts the role
            // memberships it granted), then the role.
            if let Err(e) = admin.execute_batch(&format!("DROP OWNED BY {role}; DROP ROLE IF EXISTS {role}")) {
                eprintln!("test role {role}: not dropped: {e}");
            }
        }
    }
}

/// A PostgreSQL cluster of one test's own, on a free loopback port, deleted on drop (or, should
/// the test process be killed, by a watcher once it has gone).
pub struct PrivateCluster {
    cluster: Cluster,
    server: Server,
}

impl PrivateCluster {
    /// A new cluster, started.
    pub fn new() -> PrivateCluster {
        PrivateCluster::with(&[], &[])
    }

    /// A new cluster with `conf` lines added to its `postgresql.conf` and `files` written into its
    /// data directory, private to the server (`ssl_key_file` must be), then started. For example
    /// `with(&["ssl = on", "ssl_cert_file = 'server.crt'", "ssl_key_file = 'server.key'"], &[("server.crt", CRT), ("server.key", KEY)])`.
    pub fn with(conf: &[&str], files: &[(&str, &[u8])]) -> PrivateCluster {
        let cluster =
            Cluster::create(conf, files).unwrap_or_else(|e| panic!("a private PostgreSQL cluster: {e}\n{HOW_TO}"));
        cluster.watch();
        cluster.start().unwrap_or_else(|e| panic!("start a private PostgreSQL cluster: {e}"));
        let server = cluster.server();
        PrivateCluster { cluster, server }
    }

    pub fn server(&self) -> &Server {
        &self.server
    }

    pub fn port(&self) -> u16 {
        self.cluster.port()
    }

    /// A fresh database on this cluster.
    pub fn test_db(&self) -> TestDb {
        TestDb::on(&self.server)
    }

    /// Stops the server at once (`pg_ctl stop -m immediate`: like a crash or a power cut to the
    /// server process; what was committed is recovered from the WAL on the next start).
    pub fn stop(&self) {
        self.cluster.stop("immediate").unwrap_or_else(|e| panic!("stop PostgreSQL: {e}"));
    }

    /// Stops the server politely (`-m fast`: sessions are ended, a checkpoint is written).
    pub fn stop_fast(&self) {
        self.cluster.stop("fast").unwrap_or_else(|e| panic!("stop PostgreSQL: {e}"));
    }

    /// Starts it again on the same port, and waits until it accepts connections.
    pub fn start(&self) {
        self.cluster.start().unwrap_or_else(|e| panic!("start PostgreSQL: {e}"));
    }

    /// [`PrivateCluster::stop`] then [`PrivateCluster::start`].
    pub fn restart(&self) {
        self.stop();
        self.start();
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        let _ = self.cluster.stop("immediate");
        let _ = std::fs::remove_dir_all(&self.cluster.base);
    }
}

/// One throwaway cluster: a directory holding the data directory, the socket and the logs.
struct Cluster {
    /// Deleted with the cluster.
    base: PathBuf,
    /// Where `initdb`, `pg_ctl` and `postgres` are.
    bin: PathBuf,
    /// The system user the server runs as when this process is root (`postgres`).
    run_as: Option<String>,
    port: Mutex<u16>,
}

impl Cluster {
    fn create(conf: &[&str], files: &[(&str, &[u8])]) -> Result<Cluster, String> {
        let bin = server_bin_dir()?;
        let run_as = if is_root() {
            let uid = id("-u")?;
            let gid = id("-g")?;
            Some((uid, gid))
        } else {
            None
        };
        let base = tempfile::Builder::new()
            .prefix("payrun-pg-")
            .tempdir()
            .map_err(|e| format!("temporary directory: {e}"))?
            .keep();
        let cluster =
            Cluster { base: base.clone(), bin, run_as: run_as.map(|_| "postgres".to_string()), port: Mutex::new(0) };
        let fail = |e: String| {
            let _ = std::fs::remove_dir_all(&base);
            e
        };
        if let Some((uid, gid)) = run_as {
            std::os::unix::fs::chown(&base, Some(uid), Some(gid))
                .map_err(|e| fail(format!("chown {}: {e}", base.display())))?;
        }
        cluster
            .tool(
                "initdb",
                &[
                    "-D",
                    &cluster.data().to_string_lossy(),
                    "-U",
                    "postgres",
                    "-A",
                    "trust",
                    "-E",
                    "UTF8",
                    "--no-locale",
                    "--no-sync",
                ],
            )
            .map_err(fail)?;
        let mut settings = format!(
            "\n# payrun tests\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\nfsync = off\nmax_connections = 200\nshared_buffers = 32MB\n",
            base.display()
        );
        for line in conf {
            settings.push_str(line);
            settings.push('\n');
        }
        let conf_path = cluster.data().join("postgresql.conf");
        let mut text =
            std::fs::read_to_string(&conf_path).map_err(|e| fail(format!("{}: {e}", conf_path.display())))?;
        text.push_str(&settings);
        std::fs::write(&conf_path, text).map_err(|e| fail(format!("{}: {e}", conf_path.display())))?;
        for (name, bytes) in files {
            let path = cluster.data().join(name);
            std::fs::write(&path, bytes).map_err(|e| fail(format!("{}: {e}", path.display())))?;
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(|e| fail(e.to_string()))?;
            if let Some((uid, gid)) = run_as {
                std::os::unix::fs::chown(&path, Some(uid), Some(gid)).map_err(|e| fail(e.to_string()))?;
            }
        }
        Ok(cluster)
    }

    fn data(&self) -> PathBuf {
        self.base.join("data")
    }

    fn port(&self) -> u16 {
        *self.port.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn server(&self) -> Server {
        Server {
            host: "127.0.0.1".into(),
            port: self.port(),
            superuser: "postgres".into(),
            password: None,
            maintenance_db: "postgres".into(),
            params: String::new(),
        }
    }

    /// Runs one of the server's tools (as the server's user when root), its output in a file
    /// (never a pipe: the server it starts must not hold one of ours open).
    fn tool(&self, name: &str, args: &[&str]) -> Result<(), String> {
        let out_path = self.base.join(format!("{name}.out"));
        let out = std::fs::File::create(&out_path).map_err(|e| format!("{}: {e}", out_path.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let exe = self.bin.join(name);
        let mut cmd = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(&exe);
                c
            }
            None => Command::new(&exe),
        };
        let status = cmd
            .args(args)
            .current_dir(&self.base)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .status()
            .map_err(|e| format!("{}: {e}", exe.display()))?;
        if status.success() {
            Ok(())
        } else {
            let said = std::fs::read_to_string(&out_path).unwrap_or_default();
            Err(format!("{name} {}: {status}: {}", args.join(" "), said.trim()))
        }
    }

    /// Starts the server and waits until it accepts connections. The first start picks a free
    /// port (again, should another process take it first); later starts keep it.
    fn start(&self) -> Result<(), String> {
        let keep = self.port();
        let mut last = String::new();
        for _ in 0..5 {
            let port = if keep != 0 { keep } else { free_port()? };
            let log = self.base.join("server.log");
            let r = self.tool(
                "pg_ctl",
                &[
                    "-D",
                    &self.data().to_string_lossy(),
                    "-l",
                    &log.to_string_lossy(),
                    "-o",
                    &format!("-p {port}"),
                    "-w",
                    "-t",
                    "60",
                    "start",
                ],
            );
            match r {
                Ok(()) => {
                    *self.port.lock().unwrap_or_else(|p| p.into_inner()) = port;
                    return Ok(());
                }
                Err(e) => {
                    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
                    let tail: Vec<&str> = log_text.lines().rev().take(5).collect();
                    last = format!("{e}; server log: {}", tail.into_iter().rev().collect::<Vec<_>>().join(" | "));
                    if keep != 0 || !log_text.contains("could not bind") {
                        break;
                    }
                }
            }
        }
        Err(last)
    }

    fn stop(&self, mode: &str) -> Result<(), String> {
        self.tool("pg_ctl", &["-D", &self.data().to_string_lossy(), "-m", mode, "-w", "stop"])
    }

    /// Starts a watcher that, once this test process has ended, stops the server and deletes the
    /// directory. In a process group of its own, so a Ctrl-C to the tests does not stop it first.
    fn watch(&self) {
        use std::os::unix::process::CommandExt;
        let pg_ctl = self.bin.join("pg_ctl");
        let as_user = match &self.run_as {
            Some(u) => format!("runuser -u {u} -- "),
            None => String::new(),
        };
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {as_user}'{pg_ctl}' -D '{data}' -m immediate stop; rm -rf '{base}'",
            pid = std::process::id(),
            pg_ctl = pg_ctl.display(),
            data = self.data().display(),
            base = self.base.display(),
        );
        let spawned = Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn();
        if let Err(e) = spawned {
            eprintln!("no watcher for the PostgreSQL cluster in {}: {e}", self.base.display());
        }
    }
}

/// The directory of `initdb` and `pg_ctl`: on `PATH`, else the newest of Debian's
/// `/usr/lib/postgresql/<version>/bin`.
fn server_bin_dir() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if dir.join("initdb").is_file() && dir.join("pg_ctl").is_file() {
                return Ok(dir);
            }
        }
    }
    let debian = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(debian)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).ok_or_else(|| {
        "no PostgreSQL server programs (initdb, pg_ctl) on PATH or in /usr/lib/postgresql/*/bin".to_string()
    })
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// The `postgres` system user's uid (`-u`) or gid (`-g`), for running the server when root.
fn id(flag: &str) -> Result<u32, String> {
    let out = Command::new("id")
        .args([flag, "postgres"])
        .stderr(Stdio::null())
        .output()
        .map_err(|e| format!("id {flag} postgres: {e}"))?;
    if !out.status.success() {
        return Err("running as root, and there is no `postgres` system user to run the server as (initdb refuses \
                    root): install the server package (`apt-get install postgresql`), which creates it, or run the \
                    tests as another user"
            .into());
    }
    String::from_utf8_lossy(&out.stdout).trim().parse().map_err(|e| format!("id {flag} postgres: {e}"))
}

fn free_port() -> Result<u16, String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("a free port: {e}"))?;
    l.local_addr().map(|a| a.port()).map_err(|e| format!("a free port: {e}"))
}
