//! The PostgreSQL backend: the journal of a team (SPEC 8), in a database the team already runs.
//!
//! [`Store`] is synchronous and is called both from the engine's tokio runtime (async code that
//! must not `block_on`: that panics inside a runtime) and from plain threads (the journal's writer).
//! So a [`PgStore`] runs its asynchronous driver, tokio-postgres, on a thread of its own: a
//! current-thread runtime there owns the `Client` and its connection task, and the trait's methods
//! send it a job over a channel and block on the answer. One thread per connection; a job at a
//! time, since the store is `&mut self`.
//!
//! Statements are prepared once per connection and cached by their text. [`Store::execute_many`]
//! pipelines: every execution is sent before the first answer is awaited, so the group commit's
//! hundreds of row changes cost about one round trip, not hundreds.
//!
//! Errors are sorted by SQLSTATE into [`StoreError`]: `42501` (a missing grant, row-level
//! security), `P0001` (a trigger's `RAISE EXCEPTION`) and class `28` (authentication) are
//! `Denied`; class `23` is `Constraint`; `40001`/`40P01` are `Busy`; a closed connection, an I/O
//! error, class `08` and `57P01`-`57P03` (the server shutting down or starting) are
//! `ConnectionLost`. After `ConnectionLost` the next call first connects again, once, with the same
//! settings; the statement that failed is never sent again by the store: it may have been applied,
//! and only the caller knows whether sending it twice is harmless.
//!
//! TLS (decided by [`JournalUrl`]): rustls with ring; the server's certificate must chain to the
//! platform's roots (or to `sslrootcert`'s) and name the host. There is no way to turn
//! verification off: payrun has no `sslmode` that accepts any certificate.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::mpsc;
use std::task::Poll;
use std::time::Duration;

use bytes::BytesMut;
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls_platform_verifier::BuilderVerifierExt;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use tokio_postgres::{Client, Statement};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::pgurl::{JournalUrl, RootCerts, Tls};
use super::{Backend, Result, Row, Store, StoreError, Value};

/// How long a connection attempt may take when the URL sets no `connect_timeout` (libpq waits as
/// long as the system does, which for a silent host is minutes; team mode has its own, longer,
/// `--db-timeout` for waiting on a database that is down).
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// More distinct statement texts than the journal has: past this the cache starts again, so a
/// caller that builds SQL text per call cannot grow the server's prepared statements without end.
const MAX_PREPARED: usize = 512;

/// A connection to a PostgreSQL journal. See the module's documentation.
pub struct PgStore {
    /// Where it connects (and reconnects) to.
    url: JournalUrl,
    /// The TLS connector, built once (loading the platform's roots takes tens of milliseconds).
    tls: MakeRustlsConnect,
    /// The thread that owns the connection.
    driver: Driver,
    /// The last call lost the connection: the next one connects again first.
    lost: bool,
}

impl PgStore {
    /// Connects to the journal database at `url`.
    pub fn connect(url: &JournalUrl) -> Result<PgStore> {
        let tls = tls_connector(url)?;
        let driver = Driver::start(url, &tls)?;
        Ok(PgStore { url: url.clone(), tls, driver, lost: false })
    }

    /// Drops the current connection (if any) and connects again with the same settings. A
    /// transaction in progress on the old connection is rolled back by the server.
    pub fn reconnect(&mut self) -> Result<()> {
        match Driver::start(&self.url, &self.tls) {
            Ok(driver) => {
                self.driver = driver;
                self.lost = false;
                Ok(())
            }
            Err(e) => {
                self.lost = true;
                Err(e)
            }
        }
    }

    /// The address this store connects to (prints without the password).
    pub fn url(&self) -> &JournalUrl {
        &self.url
    }

    fn run<T>(&mut self, job: impl FnOnce(Reply<T>) -> Job) -> Result<T> {
        if self.lost {
            self.reconnect()?;
        }
        let r = self.driver.call(job);
        if matches!(r, Err(StoreError::ConnectionLost(_))) {
            self.lost = true;
        }
        r
    }
}

impl Store for PgStore {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64> {
        self.run(|reply| Job::Execute { sql: sql.to_string(), params: params.to_vec(), reply })
    }

    /// Pipelined. Inside a transaction (where the journal calls it) a failure voids the whole
    /// transaction; outside one, executions after a failing one may already have been applied,
    /// since they were sent before its answer came back.
    fn execute_many(&mut self, sql: &str, params: &[Vec<Value>]) -> Result<Vec<u64>> {
        if params.is_empty() {
            return Ok(Vec::new());
        }
        self.run(|reply| Job::ExecuteMany { sql: sql.to_string(), params: params.to_vec(), reply })
    }

    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>> {
        self.run(|reply| Job::Query { sql: sql.to_string(), params: params.to_vec(), reply })
    }

    fn execute_batch(&mut self, sql: &str) -> Result<()> {
        self.run(|reply| Job::Batch { sql: sql.to_string(), reply })
    }

    fn begin(&mut self) -> Result<()> {
        self.execute_batch("BEGIN")
    }

    fn rows_per_statement(&self) -> bool {
        true
    }

    /// A transaction-level advisory lock on the key's hash: released at COMMIT or ROLLBACK.
    fn lock(&mut self, key: &str) -> Result<()> {
        self.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[Value::Text(key.to_string())]).map(|_| ())
    }
}

/// Connects for async users (the shared rate budget, the lease renewer): the connection task is
/// spawned on the caller's runtime. Same TLS rules and timeouts as [`PgStore`]; map its errors with
/// `StoreError::from`.
pub async fn connect_async(url: &JournalUrl) -> Result<Client> {
    let tls = tls_connector(url)?;
    let (client, connection) = open(url, tls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!("journal database connection ended: {e}");
        }
    });
    Ok(client)
}

type Connection = tokio_postgres::Connection<
    tokio_postgres::Socket,
    <MakeRustlsConnect as tokio_postgres::tls::MakeTlsConnect<tokio_postgres::Socket>>::Stream,
>;

/// Connects, within the URL's `connect_timeout` (else [`DEFAULT_CONNECT_TIMEOUT`]).
async fn open(url: &JournalUrl, tls: MakeRustlsConnect) -> Result<(Client, Connection)> {
    let timeout = url.connect_timeout().unwrap_or(DEFAULT_CONNECT_TIMEOUT);
    match tokio::time::timeout(timeout, url.pg_config().connect(tls)).await {
        Ok(r) => r.map_err(StoreError::from),
        Err(_) => Err(StoreError::ConnectionLost(format!(
            "no answer from {}:{} within {} s",
            url.host(),
            url.port(),
            timeout.as_secs()
        ))),
    }
}

/// The rustls configuration for `url`: the platform's roots, or `sslrootcert`'s CA certificates
/// instead. With TLS off it is never used (tokio-postgres is told `sslmode=disable`), and it trusts
/// nothing, so it would fail closed if it ever were.
fn tls_connector(url: &JournalUrl) -> Result<MakeRustlsConnect> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Other(format!("TLS setup: {e}")))?;
    let config = match (url.tls(), url.root_certs()) {
        (Tls::Off, _) => builder.with_root_certificates(RootCertStore::empty()).with_no_client_auth(),
        (Tls::Verified, RootCerts::Platform) => builder
            .with_platform_verifier()
            .map_err(|e| StoreError::Other(format!("TLS setup (the platform's certificate roots): {e}")))?
            .with_no_client_auth(),
        (Tls::Verified, RootCerts::File(path)) => {
            let shown = path.display();
            let pem = std::fs::read(path).map_err(|e| StoreError::Other(format!("sslrootcert {shown}: {e}")))?;
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| StoreError::Other(format!("sslrootcert {shown}: {e}")))?;
                roots.add(cert).map_err(|e| StoreError::Other(format!("sslrootcert {shown}: {e}")))?;
            }
            if roots.is_empty() {
                return Err(StoreError::Other(format!("sslrootcert {shown}: no PEM certificate in the file")));
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
    };
    Ok(MakeRustlsConnect::new(config))
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> StoreError {
        if let Some(db) = e.as_db_error() {
            let code = db.code().code();
            let message = db.message().to_string();
            return match code {
                "42501" | "P0001" => StoreError::Denied(message),
                "40001" | "40P01" => StoreError::Busy(message),
                "57P01" | "57P02" | "57P03" => StoreError::ConnectionLost(message),
                c if c.starts_with("08") => StoreError::ConnectionLost(message),
                c if c.starts_with("28") => StoreError::Denied(message),
                c if c.starts_with("23") => match db.detail() {
                    Some(detail) => StoreError::Constraint(format!("{message} ({detail})")),
                    None => StoreError::Constraint(message),
                },
                c => StoreError::Other(format!("{message} (SQLSTATE {c})")),
            };
        }
        let text = chain(&e);
        // tokio-postgres' words when the server asks for a password and none was given.
        if text.ends_with("password missing") {
            return StoreError::Denied(
                "the server asks for a password and none was given (the journal URL's, PGPASSWORD, or the password \
                 file ~/.pgpass)"
                    .into(),
            );
        }
        if e.is_closed() {
            return StoreError::ConnectionLost(text);
        }
        // A refused certificate arrives as an I/O error wrapping rustls' error: it is not a lost
        // connection (waiting will not fix it), so it is told apart first.
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
        let mut io = false;
        while let Some(s) = source {
            if s.downcast_ref::<rustls::Error>().is_some() {
                return StoreError::Other(format!("TLS: {text}"));
            }
            if let Some(ioe) = s.downcast_ref::<std::io::Error>() {
                if ioe.get_ref().is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some()) {
                    return StoreError::Other(format!("TLS: {text}"));
                }
                io = true;
            }
            source = s.source();
        }
        if io { StoreError::ConnectionLost(text) } else { StoreError::Other(text) }
    }
}

/// An error and its causes, on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(c) = source {
        let t = c.to_string();
        if !s.ends_with(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        source = c.source();
    }
    s
}

/// A [`Value`] as a parameter of the type the server inferred for it. The type is known only per
/// value, so `accepts` says yes to every type and `to_sql` refuses a mismatch with an error (never
/// a panic): an integer binds to `INT8`, and to `INT4`/`INT2` when it fits; text to the text types;
/// NULL to anything.
impl ToSql for Value {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(i) => {
                if *ty == Type::INT8 {
                    out.extend_from_slice(&i.to_be_bytes());
                } else if *ty == Type::INT4 {
                    let v = i32::try_from(*i).map_err(|_| format!("{i} does not fit a parameter of type integer"))?;
                    out.extend_from_slice(&v.to_be_bytes());
                } else if *ty == Type::INT2 {
                    let v = i16::try_from(*i).map_err(|_| format!("{i} does not fit a parameter of type smallint"))?;
                    out.extend_from_slice(&v.to_be_bytes());
                } else {
                    return Err(format!("an integer cannot be a parameter of type {ty}").into());
                }
                Ok(IsNull::No)
            }
            Value::Text(s) => {
                if [Type::TEXT, Type::VARCHAR, Type::BPCHAR, Type::NAME, Type::UNKNOWN].contains(ty) {
                    out.extend_from_slice(s.as_bytes());
                    Ok(IsNull::No)
                } else {
                    Err(format!("text cannot be a parameter of type {ty}").into())
                }
            }
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// How a column of an answer is read.
#[derive(Clone, Copy)]
enum Column {
    Bool,
    Int2,
    Int4,
    Int8,
    Text,
}

impl Column {
    fn of(ty: &Type, name: &str) -> Result<Column> {
        Ok(if *ty == Type::BOOL {
            Column::Bool
        } else if *ty == Type::INT2 {
            Column::Int2
        } else if *ty == Type::INT4 {
            Column::Int4
        } else if *ty == Type::INT8 {
            Column::Int8
        } else if [Type::TEXT, Type::VARCHAR, Type::BPCHAR, Type::NAME, Type::UNKNOWN].contains(ty) {
            Column::Text
        } else {
            // Refused even when the answer is empty or the value NULL, so a query with a column
            // payrun cannot read fails the first time it runs, not the first time it has data.
            return Err(StoreError::Corrupt(format!(
                "column {name} is of type {ty}, which payrun does not read (CAST it to BIGINT or TEXT)"
            )));
        })
    }

    fn read(self, row: &tokio_postgres::Row, i: usize) -> std::result::Result<Value, tokio_postgres::Error> {
        Ok(match self {
            Column::Bool => row.try_get::<_, Option<bool>>(i)?.map_or(Value::Null, |b| Value::Int(i64::from(b))),
            Column::Int2 => row.try_get::<_, Option<i16>>(i)?.map_or(Value::Null, |v| Value::Int(i64::from(v))),
            Column::Int4 => row.try_get::<_, Option<i32>>(i)?.map_or(Value::Null, |v| Value::Int(i64::from(v))),
            Column::Int8 => row.try_get::<_, Option<i64>>(i)?.map_or(Value::Null, Value::Int),
            Column::Text => row.try_get::<_, Option<String>>(i)?.map_or(Value::Null, Value::Text),
        })
    }
}

/// One answer to the caller, sent back from the driver thread.
type Reply<T> = mpsc::SyncSender<Result<T>>;

/// What the driver thread is asked to do. Parameters are copied: the thread outlives the call.
enum Job {
    Execute { sql: String, params: Vec<Value>, reply: Reply<u64> },
    ExecuteMany { sql: String, params: Vec<Vec<Value>>, reply: Reply<Vec<u64>> },
    Query { sql: String, params: Vec<Value>, reply: Reply<Vec<Row>> },
    Batch { sql: String, reply: Reply<()> },
}

/// The thread that owns one connection. Dropping it ends the connection (politely: the server is
/// told, so it does not log an unexpected EOF) and joins the thread.
struct Driver {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Driver {
    /// Starts the thread and connects; returns once connected (or with why not).
    fn start(url: &JournalUrl, tls: &MakeRustlsConnect) -> Result<Driver> {
        let (jobs, inbox) = mpsc::channel::<Job>();
        let (ready_tx, ready) = mpsc::sync_channel::<Result<()>>(1);
        let (url, tls) = (url.clone(), tls.clone());
        let thread = std::thread::Builder::new()
            .name("payrun-journal-pg".into())
            .spawn(move || drive(url, tls, inbox, ready_tx))
            .map_err(|e| StoreError::Other(format!("cannot start the journal database thread: {e}")))?;
        let started = ready.recv();
        match started {
            Ok(Ok(())) => Ok(Driver { jobs: Some(jobs), thread: Some(thread) }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => {
                let _ = thread.join();
                Err(StoreError::Other("the journal database thread stopped while connecting".into()))
            }
        }
    }

    fn call<T>(&self, job: impl FnOnce(Reply<T>) -> Job) -> Result<T> {
        let gone = || StoreError::ConnectionLost("the journal database thread has stopped".into());
        let jobs = self.jobs.as_ref().ok_or_else(gone)?;
        let (reply, answer) = mpsc::sync_channel(1);
        jobs.send(job(reply)).map_err(|_| gone())?;
        answer.recv().map_err(|_| gone())?
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.jobs.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The driver thread: a current-thread runtime, one connection, one job at a time. The connection
/// task runs only while a job is being served, which is all it needs: the server sends nothing
/// unasked that cannot wait in the socket until the next job.
fn drive(url: JournalUrl, tls: MakeRustlsConnect, inbox: mpsc::Receiver<Job>, ready: mpsc::SyncSender<Result<()>>) {
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            let _ = ready.send(Err(StoreError::Other(format!("cannot start the journal database runtime: {e}"))));
            return;
        }
    };
    let mut conn = match rt.block_on(Conn::open(&url, tls)) {
        Ok(c) => Some(c),
        Err(e) => {
            let _ = ready.send(Err(e));
            // Not waiting for a name lookup that outlived the connect timeout on a blocking
            // thread: the caller is waiting for this thread to end.
            rt.shutdown_background();
            return;
        }
    };
    let _ = ready.send(Ok(()));
    while let Ok(job) = inbox.recv() {
        rt.block_on(serve(&mut conn, job));
    }
    if let Some(c) = conn {
        rt.block_on(c.close());
    }
    rt.shutdown_background();
}

/// Serves one job; a lost connection is dropped, and every later job is told so (until the store
/// replaces this driver with a new one).
async fn serve(slot: &mut Option<Conn>, job: Job) {
    fn answer<T>(reply: Reply<T>, r: Result<T>) -> bool {
        let lost = matches!(r, Err(StoreError::ConnectionLost(_)));
        let _ = reply.send(r);
        lost
    }
    let lost = match (slot.as_mut(), job) {
        (None, job) => {
            fn e<T>() -> Result<T> {
                Err(StoreError::ConnectionLost("the connection to the journal database was lost".into()))
            }
            match job {
                Job::Execute { reply, .. } => answer(reply, e()),
                Job::ExecuteMany { reply, .. } => answer(reply, e()),
                Job::Query { reply, .. } => answer(reply, e()),
                Job::Batch { reply, .. } => answer(reply, e()),
            }
        }
        (Some(c), Job::Execute { sql, params, reply }) => answer(reply, c.execute(&sql, &params).await),
        (Some(c), Job::ExecuteMany { sql, params, reply }) => answer(reply, c.execute_many(&sql, &params).await),
        (Some(c), Job::Query { sql, params, reply }) => answer(reply, c.query(&sql, &params).await),
        (Some(c), Job::Batch { sql, reply }) => answer(reply, c.batch(&sql).await),
    };
    if lost && let Some(c) = slot.take() {
        c.task.abort();
    }
}

/// A statement prepared on this connection, with what reading its answer needs.
struct Prepared {
    statement: Statement,
    names: Arc<[String]>,
    /// How each column is read; `Err` for a column payrun cannot read (reported when queried).
    columns: std::result::Result<Vec<Column>, String>,
}

/// One open connection and its prepared statements.
struct Conn {
    client: Client,
    task: tokio::task::JoinHandle<()>,
    prepared: HashMap<String, Prepared>,
}

impl Conn {
    async fn open(url: &JournalUrl, tls: MakeRustlsConnect) -> Result<Conn> {
        let (client, connection) = open(url, tls).await?;
        let task = tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!("journal database connection ended: {e}");
            }
        });
        Ok(Conn { client, task, prepared: HashMap::new() })
    }

    /// Ends the connection with a Terminate message, waiting briefly for it to go out.
    async fn close(self) {
        let Conn { client, task, .. } = self;
        drop(client);
        let _ = tokio::time::timeout(Duration::from_secs(2), task).await;
    }

    async fn prepare(&mut self, sql: &str) -> Result<&Prepared> {
        if !self.prepared.contains_key(sql) {
            let statement = self.client.prepare(sql).await?;
            let names: Arc<[String]> = statement.columns().iter().map(|c| c.name().to_string()).collect();
            let columns = statement
                .columns()
                .iter()
                .map(|c| Column::of(c.type_(), c.name()).map_err(|e| e.to_string()))
                .collect::<std::result::Result<Vec<_>, _>>();
            if self.prepared.len() >= MAX_PREPARED {
                self.prepared.clear();
            }
            self.prepared.insert(sql.to_string(), Prepared { statement, names, columns });
        }
        self.prepared.get(sql).ok_or_else(|| StoreError::Other("a prepared statement vanished".into()))
    }

    /// Maps a failed statement's error, forgetting the statement when the server no longer has it
    /// as prepared (`26000`) or its plan went stale under a schema change (`0A000`, "cached plan
    /// must not change result type"): the next call prepares it again.
    fn failed(&mut self, sql: &str, e: tokio_postgres::Error) -> StoreError {
        if matches!(e.code().map(|c| c.code()), Some("26000" | "0A000")) {
            self.prepared.remove(sql);
        }
        StoreError::from(e)
    }

    async fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64> {
        let statement = self.prepare(sql).await?.statement.clone();
        let r = self.client.execute_raw(&statement, params.iter()).await;
        r.map_err(|e| self.failed(sql, e))
    }

    /// Sends every execution before awaiting any answer. The first poll of each execution, in
    /// order, puts its messages in the connection's queue (tokio-postgres sends a request when its
    /// future is first polled); the answers are then awaited in order. Not `try_join_all`: the
    /// order in which it first polls its futures is not something it promises, and the order in
    /// which statements reach the server is the order they run in.
    async fn execute_many(&mut self, sql: &str, sets: &[Vec<Value>]) -> Result<Vec<u64>> {
        let statement = self.prepare(sql).await?.statement.clone();
        let client = &self.client;
        let outcome: std::result::Result<Vec<u64>, tokio_postgres::Error> = async {
            let mut pending: Vec<Pin<Box<_>>> =
                sets.iter().map(|p| Box::pin(client.execute_raw(&statement, p.iter()))).collect();
            let mut early: Vec<Option<std::result::Result<u64, tokio_postgres::Error>>> =
                (0..pending.len()).map(|_| None).collect();
            std::future::poll_fn(|cx| {
                for (f, slot) in pending.iter_mut().zip(early.iter_mut()) {
                    if let Poll::Ready(r) = f.as_mut().poll(cx) {
                        *slot = Some(r);
                    }
                }
                Poll::Ready(())
            })
            .await;
            let mut counts = Vec::with_capacity(pending.len());
            for (f, done) in pending.into_iter().zip(early) {
                counts.push(match done {
                    Some(r) => r?,
                    None => f.await?,
                });
            }
            Ok(counts)
        }
        .await;
        outcome.map_err(|e| self.failed(sql, e))
    }

    async fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>> {
        let p = self.prepare(sql).await?;
        let (statement, names) = (p.statement.clone(), Arc::clone(&p.names));
        let columns = p.columns.clone().map_err(StoreError::Corrupt)?;
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
        let rows = match self.client.query(&statement, &refs).await {
            Ok(rows) => rows,
            Err(e) => return Err(self.failed(sql, e)),
        };
        rows.iter()
            .map(|r| {
                let values = columns
                    .iter()
                    .enumerate()
                    .map(|(i, c)| c.read(r, i).map_err(|e| StoreError::Corrupt(chain(&e))))
                    .collect::<Result<Vec<_>>>()?;
                Ok(Row::new(Arc::clone(&names), values))
            })
            .collect()
    }

    async fn batch(&mut self, sql: &str) -> Result<()> {
        Ok(self.client.batch_execute(sql).await?)
    }
}
