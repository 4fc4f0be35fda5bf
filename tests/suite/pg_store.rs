//! The storage interface under the journal (`journal::store`), against both backends.
//!
//! `conformance`: one meaning, specified once: each check is a function taking `&mut dyn Store`,
//! run once on a SQLite file in a temporary directory and once on a fresh PostgreSQL database
//! (support/pg.rs). Then what only the PostgreSQL backend does: losing and regaining its
//! connection, the database refusing a writer (a trigger, a missing grant, row-level security),
//! type checks that are errors and not panics, being called from inside a tokio runtime, and TLS.
//!
//! The TLS fixtures: `pg-test-ca.crt` is a test CA; `pg-localhost.crt`/`.key` a server certificate
//! it issued for the name `localhost` only (no IP address), valid 2020-2120. (`selfsigned.crt`
//! cannot serve here: it is its own CA, and webpki refuses a CA certificate as a server's.) Made
//! with `openssl ca -selfsign` and `openssl ca` (`-extensions` CA:TRUE for the CA; CA:FALSE,
//! serverAuth, `subjectAltName = DNS:localhost` for the server), P-256 keys.

use payrun::journal::store::pgurl::{JournalUrl, Tls, UrlEnv};
use payrun::journal::store::postgres::{PgStore, connect_async};
use payrun::journal::store::sqlite::SqliteStore;
use payrun::journal::store::{Backend, Store, StoreError, Value};
use payrun::vals;

use crate::support::pg::{PrivateCluster, TestDb, connect};

/// A SQLite store in a temporary directory (kept alive with it).
struct Sqlite {
    store: SqliteStore,
    _dir: tempfile::TempDir,
}

fn sqlite() -> Sqlite {
    let dir = tempfile::tempdir().expect("tmp");
    let store = SqliteStore::open(&dir.path().join("journal.sqlite3")).expect("open");
    Sqlite { store, _dir: dir }
}

/// A PostgreSQL store on a fresh database, connected as its owner. The store is dropped before the
/// database (fields drop in order).
struct Pg {
    store: PgStore,
    db: TestDb,
}

fn pg() -> Pg {
    let db = TestDb::new();
    Pg { store: db.store(), db }
}

/// The count of rows in `table`.
fn count(s: &mut dyn Store, table: &str) -> i64 {
    let rows = s.query(&format!("SELECT COUNT(*) AS n FROM {table}"), &[]).expect("count");
    rows[0].get::<i64>("n").expect("n")
}

mod conformance {
    //! Each check runs on both backends: `conformance::sqlite::NAME` and `conformance::postgres::NAME`.
    use super::*;

    macro_rules! on_both {
        ($($check:ident),* $(,)?) => {
            mod sqlite {
                $(#[test] fn $check() { super::$check(&mut super::super::sqlite().store) })*
            }
            mod postgres {
                $(#[test] fn $check() { super::$check(&mut super::super::pg().store) })*
            }
        };
    }

    on_both!(
        values_round_trip,
        exists_and_comparisons_read_as_0_or_1,
        execute_many_in_a_transaction,
        execute_many_runs_in_order,
        a_unique_violation_is_a_constraint_error,
        parameters_bind_by_number_not_by_position,
        a_sum_cast_to_bigint_reads_as_an_integer,
    );

    fn values_round_trip(s: &mut dyn Store) {
        s.execute_batch("CREATE TABLE v (id BIGINT PRIMARY KEY, n BIGINT, t TEXT)").expect("table");
        let cases: Vec<(i64, Value, Value)> = vec![
            (1, Value::Null, Value::Null),
            (2, Value::Int(0), Value::Text(String::new())),
            (3, Value::Int(-1), Value::Text("₹1,00,000.50 to Zoë Ñúñez 名前".into())),
            (4, Value::Int(i64::MIN), Value::Text("it's \"quoted\"; $1 -- not a parameter".into())),
            (5, Value::Int(i64::MAX), Value::Text("line\nbreak\ttab".into())),
            (6, Value::Int(9_007_199_254_740_993), Value::Text("x".repeat(10_000))),
        ];
        for (id, n, t) in &cases {
            let changed = s
                .execute("INSERT INTO v (id, n, t) VALUES ($1, $2, $3)", &[Value::Int(*id), n.clone(), t.clone()])
                .expect("insert");
            assert_eq!(changed, 1);
        }
        let rows = s.query("SELECT id, n, t FROM v ORDER BY id", &[]).expect("query");
        assert_eq!(rows.len(), cases.len());
        for (row, (id, n, t)) in rows.iter().zip(&cases) {
            assert_eq!(row.get::<i64>("id").expect("id"), *id);
            assert_eq!(&Value::from(row.get::<Option<i64>>("n").expect("n")), n, "n of {id}");
            assert_eq!(&Value::from(row.get::<Option<String>>("t").expect("t")), t, "t of {id}");
        }
        // By position too, and NULL as a parameter in a comparison.
        let rows = s.query("SELECT t FROM v WHERE n IS NULL AND CAST($1 AS TEXT) IS NULL", &[Value::Null]).expect("q");
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].at::<Option<String>>(0).expect("t"), None);
        let rows = s.query("SELECT id FROM v WHERE t = $1", &vals!["₹1,00,000.50 to Zoë Ñúñez 名前"]).expect("q");
        assert_eq!(rows[0].get::<i64>("id").expect("id"), 3);
        // Types are checked on the way out.
        assert!(matches!(rows[0].get::<String>("id"), Err(StoreError::Corrupt(_))));
        assert!(matches!(rows[0].get::<i64>("nope"), Err(StoreError::Corrupt(_))));
    }

    fn exists_and_comparisons_read_as_0_or_1(s: &mut dyn Store) {
        s.execute_batch("CREATE TABLE e (id BIGINT PRIMARY KEY)").expect("table");
        s.execute("INSERT INTO e (id) VALUES ($1)", &vals![7i64]).expect("insert");
        let q = "SELECT EXISTS (SELECT 1 FROM e WHERE id = $1) AS found, CAST($1 AS BIGINT) > 5 AS big";
        let yes = s.query(q, &vals![7i64]).expect("query");
        assert_eq!(yes[0].get::<i64>("found").expect("found"), 1);
        assert!(yes[0].get::<bool>("found").expect("found"));
        assert_eq!(yes[0].get::<i64>("big").expect("big"), 1);
        let no = s.query(q, &vals![3i64]).expect("query");
        assert_eq!(no[0].get::<i64>("found").expect("found"), 0);
        assert!(!no[0].get::<bool>("big").expect("big"));
    }

    fn execute_many_in_a_transaction(s: &mut dyn Store) {
        s.execute_batch("CREATE TABLE m (id BIGINT PRIMARY KEY, who TEXT NOT NULL)").expect("table");
        let sets: Vec<Vec<Value>> = (0..1000i64).map(|i| vals![i, format!("payee {i}")]).collect();
        s.begin().expect("begin");
        let counts = s.execute_many("INSERT INTO m (id, who) VALUES ($1, $2)", &sets).expect("insert");
        assert_eq!(counts, vec![1u64; 1000]);
        s.execute_batch("COMMIT").expect("commit");
        assert_eq!(count(s, "m"), 1000);
        let rows = s.query("SELECT who FROM m WHERE id = $1", &vals![999i64]).expect("q");
        assert_eq!(rows[0].get::<String>("who").expect("who"), "payee 999");
        // Counts are per execution; a rolled-back transaction leaves nothing.
        s.begin().expect("begin");
        let counts =
            s.execute_many("DELETE FROM m WHERE id < $1", &[vals![10i64], vals![10i64], vals![20i64]]).expect("delete");
        assert_eq!(counts, vec![10, 0, 10]);
        s.execute_batch("ROLLBACK").expect("rollback");
        assert_eq!(count(s, "m"), 1000);
        assert_eq!(s.execute_many("DELETE FROM m WHERE id = $1", &[]).expect("nothing"), Vec::<u64>::new());
    }

    fn execute_many_runs_in_order(s: &mut dyn Store) {
        s.execute_batch("CREATE TABLE o (id BIGINT PRIMARY KEY, n BIGINT NOT NULL, trail TEXT NOT NULL)").expect("t");
        s.execute("INSERT INTO o (id, n, trail) VALUES (1, 0, '')", &[]).expect("insert");
        let sets: Vec<Vec<Value>> = (1..=300i64).map(|i| vals![i, i.to_string()]).collect();
        s.begin().expect("begin");
        s.execute_many("UPDATE o SET n = $1, trail = trail || ',' || $2 WHERE id = 1", &sets).expect("update");
        s.execute_batch("COMMIT").expect("commit");
        let rows = s.query("SELECT n, trail FROM o", &[]).expect("q");
        assert_eq!(rows[0].get::<i64>("n").expect("n"), 300, "the last execution is the last applied");
        let want: String = (1..=300).map(|i| format!(",{i}")).collect();
        assert_eq!(rows[0].get::<String>("trail").expect("trail"), want);
    }

    fn a_unique_violation_is_a_constraint_error(s: &mut dyn Store) {
        s.execute_batch("CREATE TABLE u (ref TEXT PRIMARY KEY)").expect("table");
        s.execute("INSERT INTO u (ref) VALUES ($1)", &vals!["PAY-1"]).expect("first");
        let e = s.execute("INSERT INTO u (ref) VALUES ($1)", &vals!["PAY-1"]).expect_err("second");
        assert!(matches!(e, StoreError::Constraint(_)), "{e:?}");
        // Within a pipelined batch too: the error is the failing execution's, and the transaction
        // can be rolled back and the store used again.
        s.begin().expect("begin");
        let e = s
            .execute_many("INSERT INTO u (ref) VALUES ($1)", &[vals!["PAY-2"], vals!["PAY-1"], vals!["PAY-3"]])
            .expect_err("duplicate in a batch");
        assert!(matches!(e, StoreError::Constraint(_)), "{e:?}");
        s.execute_batch("ROLLBACK").expect("rollback");
        assert_eq!(count(s, "u"), 1);
        // ON CONFLICT DO NOTHING is no error: it changes nothing.
        let n = s.execute("INSERT INTO u (ref) VALUES ($1) ON CONFLICT DO NOTHING", &vals!["PAY-1"]).expect("odn");
        assert_eq!(n, 0);
    }

    fn parameters_bind_by_number_not_by_position(s: &mut dyn Store) {
        s.execute_batch("CREATE TABLE p (a BIGINT, b TEXT)").expect("table");
        s.execute("INSERT INTO p (b, a) VALUES ($2, $1)", &vals![7i64, "seven"]).expect("insert");
        let rows = s.query("SELECT a, b FROM p WHERE b = $2 AND a = $1", &vals![7i64, "seven"]).expect("q");
        assert_eq!(rows.len(), 1);
        assert_eq!((rows[0].get::<i64>("a").expect("a"), rows[0].get::<String>("b").expect("b")), (7, "seven".into()));
        // One parameter used twice.
        let rows = s.query("SELECT COUNT(*) AS n FROM p WHERE a = $1 OR a = $1 + 1", &vals![6i64]).expect("q");
        assert_eq!(rows[0].get::<i64>("n").expect("n"), 1);
    }

    fn a_sum_cast_to_bigint_reads_as_an_integer(s: &mut dyn Store) {
        s.execute_batch("CREATE TABLE amounts (batch TEXT, paise BIGINT)").expect("table");
        let q = "SELECT CAST(SUM(paise) AS BIGINT) AS total, COUNT(*) AS n FROM amounts WHERE batch = $1";
        let empty = s.query(q, &vals!["b1"]).expect("q");
        assert_eq!(empty[0].get::<Option<i64>>("total").expect("total"), None, "SUM of nothing is NULL");
        assert_eq!(empty[0].get::<i64>("n").expect("n"), 0);
        let sets =
            vec![vals!["b1", 4_000_000_000i64], vals!["b1", 4_000_000_000i64], vals!["b1", -1i64], vals!["b2", 5i64]];
        s.execute_many("INSERT INTO amounts (batch, paise) VALUES ($1, $2)", &sets).expect("insert");
        let rows = s.query(q, &vals!["b1"]).expect("q");
        assert_eq!(rows[0].get::<i64>("total").expect("total"), 7_999_999_999);
        assert_eq!(rows[0].get::<i64>("n").expect("n"), 3);
    }
}

#[test]
fn the_backends_say_which_they_are() {
    assert_eq!(sqlite().store.backend(), Backend::Sqlite);
    assert_eq!(pg().store.backend(), Backend::Postgres);
}

/// The backend's process id of a store's connection.
fn backend_pid(s: &mut dyn Store) -> i64 {
    s.query("SELECT pg_backend_pid() AS pid", &[]).expect("pid")[0].get::<i64>("pid").expect("pid")
}

#[test]
fn a_terminated_connection_is_lost_once_then_regained() {
    let Pg { mut store, db } = pg();
    store.execute_batch("CREATE TABLE t (id BIGINT)").expect("table");
    let pid = backend_pid(&mut store);
    let mut admin = db.admin_store();
    // Waits (up to 5 s) until the backend has gone, so the next call cannot race it.
    let rows = admin.query("SELECT pg_terminate_backend($1, 5000) AS done", &vals![pid]).expect("terminate");
    assert!(rows[0].get::<bool>("done").expect("done"));

    let e = store.execute("INSERT INTO t (id) VALUES ($1)", &vals![1i64]).expect_err("the connection is gone");
    assert!(matches!(e, StoreError::ConnectionLost(_)), "{e:?}");
    // The next call connects again first, and works; the failed statement was not sent again.
    assert_eq!(store.execute("INSERT INTO t (id) VALUES ($1)", &vals![2i64]).expect("after reconnecting"), 1);
    assert_ne!(backend_pid(&mut store), pid);
    let ids: Vec<i64> =
        store.query("SELECT id FROM t", &[]).expect("q").iter().map(|r| r.get::<i64>("id").expect("id")).collect();
    assert_eq!(ids, vec![2]);

    // An explicit reconnect gives a new session too.
    let before = backend_pid(&mut store);
    store.reconnect().expect("reconnect");
    assert_ne!(backend_pid(&mut store), before);
    // A transaction cut by a lost connection is gone: the server rolled it back.
    store.begin().expect("begin");
    store.execute("INSERT INTO t (id) VALUES ($1)", &vals![3i64]).expect("insert");
    let pid = backend_pid(&mut store);
    admin.query("SELECT pg_terminate_backend($1, 5000) AS done", &vals![pid]).expect("terminate");
    assert!(matches!(store.execute_batch("COMMIT"), Err(StoreError::ConnectionLost(_))));
    assert_eq!(count(&mut store, "t"), 1);
}

#[test]
fn a_server_restart_is_a_lost_connection_and_loses_nothing_committed() {
    let cluster = PrivateCluster::new();
    let db = cluster.test_db();
    let mut s = db.store();
    s.execute_batch("CREATE TABLE t (id BIGINT PRIMARY KEY)").expect("table");
    s.begin().expect("begin");
    s.execute_many("INSERT INTO t (id) VALUES ($1)", &[vals![1i64], vals![2i64]]).expect("insert");
    s.execute_batch("COMMIT").expect("commit");
    s.begin().expect("begin");
    s.execute("INSERT INTO t (id) VALUES ($1)", &vals![3i64]).expect("uncommitted");

    cluster.stop(); // immediate: the server process dies as in a crash
    assert!(matches!(s.execute_batch("COMMIT"), Err(StoreError::ConnectionLost(_))));
    // While it is down, every call tries once to connect, and says the connection is lost.
    for _ in 0..2 {
        let e = s.query("SELECT 1 AS one", &[]).expect_err("down");
        assert!(matches!(e, StoreError::ConnectionLost(_)), "{e:?}");
    }
    cluster.start();
    let ids: Vec<i64> = s
        .query("SELECT id FROM t ORDER BY id", &[])
        .expect("back")
        .iter()
        .map(|r| r.get::<i64>("id").expect("id"))
        .collect();
    assert_eq!(ids, vec![1, 2], "the committed rows survived, the uncommitted one did not");

    cluster.restart();
    assert!(matches!(s.execute("INSERT INTO t (id) VALUES (4)", &[]), Err(StoreError::ConnectionLost(_))));
    assert_eq!(s.execute("INSERT INTO t (id) VALUES (5)", &[]).expect("reconnected"), 1);
    assert_eq!(count(&mut s, "t"), 3);
}

#[test]
fn a_server_that_is_not_there_is_a_lost_connection() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let url = JournalUrl::parse(&format!("postgres://nobody@127.0.0.1:{port}/none")).expect("url");
    let e = PgStore::connect(&url).err().expect("nothing listens there");
    assert!(matches!(e, StoreError::ConnectionLost(_)), "{e:?}");
}

#[test]
fn a_trigger_refusal_is_denied_with_its_words() {
    let Pg { mut store, db: _db } = pg();
    store
        .execute_batch(
            "CREATE TABLE approvals (batch TEXT, maker TEXT, checker TEXT);
             CREATE FUNCTION no_self_approval() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
               IF NEW.maker = NEW.checker THEN
                 RAISE EXCEPTION 'the maker of batch % cannot approve it', NEW.batch;
               END IF;
               RETURN NEW;
             END $$;
             CREATE TRIGGER approvals_check BEFORE INSERT ON approvals
               FOR EACH ROW EXECUTE FUNCTION no_self_approval();",
        )
        .expect("schema");
    let insert = "INSERT INTO approvals (batch, maker, checker) VALUES ($1, $2, $3)";
    assert_eq!(store.execute(insert, &vals!["b1", "asha", "ravi"]).expect("another person approves"), 1);
    let e = store.execute(insert, &vals!["b2", "asha", "asha"]).expect_err("self-approval");
    match e {
        StoreError::Denied(words) => assert_eq!(words, "the maker of batch b2 cannot approve it"),
        other => panic!("{other:?}"),
    }
    // In a pipelined batch the same.
    store.begin().expect("begin");
    let e = store.execute_many(insert, &[vals!["b3", "a", "b"], vals!["b4", "c", "c"]]).expect_err("refused");
    assert!(matches!(&e, StoreError::Denied(w) if w.contains("b4")), "{e:?}");
    store.execute_batch("ROLLBACK").expect("rollback");
}

#[test]
fn a_role_without_the_grant_is_denied() {
    let Pg { mut store, db } = pg();
    store
        .execute_batch(
            "CREATE TABLE rows (id BIGINT, state TEXT);
             INSERT INTO rows VALUES (1, 'queued');
             CREATE TABLE holds (id BIGINT, owner TEXT);
             ALTER TABLE holds ENABLE ROW LEVEL SECURITY;",
        )
        .expect("schema");
    let clerk = db.create_login_role("clerk", "clerk's password");
    store
        .execute_batch(&format!(
            "GRANT SELECT ON rows TO {clerk};
             GRANT SELECT, INSERT ON holds TO {clerk};
             CREATE POLICY own_holds ON holds FOR ALL TO {clerk} USING (owner = current_user) WITH CHECK (owner = current_user);"
        ))
        .expect("grants");
    let mut as_clerk = connect(&db.url_as(&clerk, "clerk's password")).expect("connect as the clerk");
    assert_eq!(as_clerk.query("SELECT id FROM rows", &[]).expect("may read").len(), 1);
    let e =
        as_clerk.execute("INSERT INTO rows (id, state) VALUES ($1, $2)", &vals![2i64, "queued"]).expect_err("no grant");
    assert!(matches!(&e, StoreError::Denied(w) if w.contains("permission denied")), "{e:?}");
    let e = as_clerk.execute("UPDATE rows SET state = $1", &vals!["sent"]).expect_err("no grant");
    assert!(matches!(e, StoreError::Denied(_)), "{e:?}");
    // Row-level security: the clerk may insert holds only in their own name.
    let n =
        as_clerk.execute("INSERT INTO holds (id, owner) VALUES ($1, $2)", &vals![1i64, clerk.as_str()]).expect("own");
    assert_eq!(n, 1);
    let e = as_clerk
        .execute("INSERT INTO holds (id, owner) VALUES ($1, $2)", &vals![2i64, "someone_else"])
        .expect_err("another's");
    assert!(matches!(&e, StoreError::Denied(w) if w.contains("row-level security")), "{e:?}");
    // The display of the clerk's URL shows no password.
    assert!(!as_clerk.url().to_string().contains("password"));
}

#[test]
fn type_mismatches_are_errors_not_panics() {
    let Pg { mut store, db: _db } = pg();
    store.execute_batch("CREATE TABLE k (small SMALLINT, mid INTEGER, big BIGINT, t TEXT, d NUMERIC)").expect("t");
    let ins = "INSERT INTO k (small, mid, big, t) VALUES ($1, $2, $3, $4)";
    store.execute(ins, &vals![32_767i64, 2_147_483_647i64, i64::MAX, "x"]).expect("in range");
    for bad in [
        vals![32_768i64, 1i64, 1i64, "x"],
        vals![1i64, 2_147_483_648i64, 1i64, "x"],
        vals![1i64, 1i64, "not a number", "x"],
        vals![1i64, 1i64, 1i64, 5i64],
    ] {
        let e = store.execute(ins, &bad).expect_err("mismatch");
        assert!(matches!(e, StoreError::Other(_)), "{e:?}");
    }
    let rows = store.query("SELECT small, mid, big FROM k", &[]).expect("q");
    assert_eq!(rows[0].get::<i64>("small").expect("small"), 32_767);
    assert_eq!(rows[0].get::<i64>("mid").expect("mid"), 2_147_483_647);
    // A column payrun does not read is refused, naming its type, even when NULL or absent.
    for q in ["SELECT d FROM k", "SELECT SUM(big) AS s FROM k WHERE false", "SELECT now() AS t"] {
        let e = store.query(q, &[]).expect_err(q);
        assert!(matches!(&e, StoreError::Corrupt(w) if w.contains("type")), "{q}: {e:?}");
    }
    let e = store.query("SELECT d FROM k", &[]).expect_err("numeric");
    assert!(e.to_string().contains("numeric"), "{e}");
    // Too few parameters, and SQL the server cannot read: errors, and the store goes on.
    assert!(matches!(store.execute(ins, &vals![1i64]), Err(StoreError::Other(_))));
    assert!(matches!(store.execute("SELEKT 1", &[]), Err(StoreError::Other(_))));
    assert_eq!(count(&mut store, "k"), 1);
}

/// A TCP proxy that delays every chunk by `delay` in each direction (a network's latency, not its
/// bandwidth: chunks are not delayed behind each other). Runs on `rt`.
fn latency_proxy(rt: &tokio::runtime::Runtime, upstream: String, delay: std::time::Duration) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    async fn pipe(
        mut from: tokio::net::tcp::OwnedReadHalf,
        mut to: tokio::net::tcp::OwnedWriteHalf,
        delay: std::time::Duration,
    ) {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(tokio::time::Instant, Vec<u8>)>();
        let read = async move {
            let mut buf = vec![0u8; 1 << 16];
            while let Ok(n @ 1..) = from.read(&mut buf).await {
                if tx.send((tokio::time::Instant::now(), buf[..n].to_vec())).is_err() {
                    break;
                }
            }
        };
        let write = async move {
            while let Some((at, bytes)) = rx.recv().await {
                tokio::time::sleep_until(at + delay).await;
                if to.write_all(&bytes).await.is_err() {
                    break;
                }
            }
            let _ = to.shutdown().await;
        };
        tokio::join!(read, write);
    }
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind");
    let port = listener.local_addr().expect("addr").port();
    rt.spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else { continue };
            let (cr, cw) = client.into_split();
            let (sr, sw) = server.into_split();
            tokio::spawn(pipe(cr, sw, delay));
            tokio::spawn(pipe(sr, cw, delay));
        }
    });
    port
}

#[test]
fn execute_many_does_not_wait_for_each_answer() {
    // Over a link with 10 ms each way, one statement at a time costs 20 ms each; pipelined, the
    // whole batch costs about one round trip. (Not a benchmark: the margin is tenfold.)
    let cluster = PrivateCluster::new();
    let db = cluster.test_db();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("rt");
    let port = latency_proxy(&rt, format!("127.0.0.1:{}", cluster.port()), std::time::Duration::from_millis(10));
    let mut s = connect(&db.url_at(&format!("127.0.0.1:{port}"))).expect("connect through the proxy");
    s.execute_batch("CREATE TABLE w (id BIGINT PRIMARY KEY, n BIGINT)").expect("table");
    let n = 40i64;
    let insert = "INSERT INTO w (id, n) VALUES ($1, $2)";
    s.begin().expect("begin");
    let t = std::time::Instant::now();
    for i in 0..n {
        s.execute(insert, &vals![i, 0i64]).expect("insert");
    }
    let one_by_one = t.elapsed();
    let sets: Vec<Vec<Value>> = (n..2 * n).map(|i| vals![i, 0i64]).collect();
    let t = std::time::Instant::now();
    assert_eq!(s.execute_many(insert, &sets).expect("insert many"), vec![1; n as usize]);
    let pipelined = t.elapsed();
    s.execute_batch("COMMIT").expect("commit");
    assert_eq!(count(&mut s, "w"), 2 * n);
    assert!(one_by_one >= std::time::Duration::from_millis(20 * n as u64 - 50), "{one_by_one:?}: the proxy delays");
    assert!(pipelined * 4 < one_by_one, "pipelined {pipelined:?} vs one by one {one_by_one:?}");
    drop(s);
    drop(db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usable_from_inside_a_tokio_runtime() {
    // The engine calls the store from async code; a store that block_on'd here would panic.
    let db = TestDb::new();
    let mut store = db.store();
    store.execute_batch("CREATE TABLE r (id BIGINT)").expect("table");
    store.execute_many("INSERT INTO r (id) VALUES ($1)", &[vals![1i64], vals![2i64]]).expect("insert");
    assert_eq!(count(&mut store, "r"), 2);
    // And the async connection for the rate budget and the lease renewer, on this runtime.
    let client = connect_async(&db.journal_url()).await.expect("connect_async");
    let row = client.query_one("SELECT CAST(COUNT(*) AS BIGINT) FROM r", &[]).await.expect("query");
    assert_eq!(row.get::<_, i64>(0), 2);
    // A store moved to a plain thread works there too (the journal's writer thread).
    let handle = std::thread::spawn(move || count(&mut store, "r"));
    assert_eq!(handle.join().expect("thread"), 2);
    drop(db);
}

mod tls {
    //! TLS against a private cluster serving `pg-localhost.crt` (issued by `pg-test-ca.crt` for the
    //! name `localhost` only).
    use super::*;

    const CA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/pg-test-ca.crt");

    fn cluster() -> PrivateCluster {
        PrivateCluster::with(
            &["ssl = on", "ssl_cert_file = 'server.crt'", "ssl_key_file = 'server.key'"],
            &[
                ("server.crt", include_bytes!("../fixtures/pg-localhost.crt")),
                ("server.key", include_bytes!("../fixtures/pg-localhost.key")),
            ],
        )
    }

    fn ssl_in_use(s: &mut PgStore) -> bool {
        s.query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[]).expect("q")[0]
            .get::<bool>("ssl")
            .expect("ssl")
    }

    fn url(host: &str, port: u16, params: &str) -> JournalUrl {
        JournalUrl::parse(&format!("postgres://postgres@{host}:{port}/postgres?{params}")).expect("url")
    }

    #[test]
    fn a_certificate_is_trusted_only_from_a_known_ca_and_for_its_name() {
        let c = cluster();
        let port = c.port();
        let esc_ca = CA.replace('/', "%2F");

        // The platform's roots do not know the test CA: refused at the handshake.
        let e = PgStore::connect(&url("localhost", port, "sslmode=verify-full")).err().expect("unknown CA");
        assert!(matches!(&e, StoreError::Other(w) if w.starts_with("TLS")), "{e:?}");
        // require and verify-ca verify as much as verify-full.
        for mode in ["require", "verify-ca"] {
            let e = PgStore::connect(&url("localhost", port, &format!("sslmode={mode}"))).err().expect(mode);
            assert!(matches!(&e, StoreError::Other(w) if w.starts_with("TLS")), "{mode}: {e:?}");
        }
        // Another CA (the self-signed gateway fixture) is no better.
        let other = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/selfsigned.crt").replace('/', "%2F");
        let e = PgStore::connect(&url("localhost", port, &format!("sslmode=verify-full&sslrootcert={other}")))
            .err()
            .expect("another CA");
        assert!(matches!(&e, StoreError::Other(w) if w.starts_with("TLS")), "{e:?}");

        // The right CA and the name the certificate was issued for: accepted, and encrypted.
        let good = url("localhost", port, &format!("sslmode=verify-full&sslrootcert={esc_ca}"));
        assert_eq!(good.tls(), Tls::Verified);
        let mut s = PgStore::connect(&good).expect("trusted CA, right name");
        assert!(ssl_in_use(&mut s));

        // The right CA but an address the certificate does not name: refused (the host name is
        // checked, not only the chain).
        let e = PgStore::connect(&url("127.0.0.1", port, &format!("sslmode=verify-full&sslrootcert={esc_ca}")))
            .err()
            .expect("wrong name");
        assert!(matches!(&e, StoreError::Other(w) if w.starts_with("TLS") && w.contains("name")), "{e:?}");

        // Loopback without sslmode: no TLS, by design.
        let plain = url("127.0.0.1", port, "");
        assert_eq!(plain.tls(), Tls::Off);
        let mut s = PgStore::connect(&plain).expect("plain on loopback");
        assert!(!ssl_in_use(&mut s));
    }

    #[test]
    fn passwords_over_verified_tls() {
        // Superuser `postgres` in without a password (the test's own setup); everyone else with
        // SCRAM, over TLS only.
        let hba = "local all all trust\n\
                   host all postgres 127.0.0.1/32 trust\n\
                   hostssl all all 127.0.0.1/32 scram-sha-256\n\
                   hostssl all all ::1/128 scram-sha-256\n";
        let c = PrivateCluster::with(
            &["ssl = on", "ssl_cert_file = 'server.crt'", "ssl_key_file = 'server.key'"],
            &[
                ("server.crt", include_bytes!("../fixtures/pg-localhost.crt")),
                ("server.key", include_bytes!("../fixtures/pg-localhost.key")),
                ("pg_hba.conf", hba.as_bytes()),
            ],
        );
        let db = c.test_db();
        let secret = "correct horse: battery@staple/";
        let role = db.create_login_role("payer", secret);
        let esc_ca = CA.replace('/', "%2F");
        let base = format!("localhost:{}/{}?sslmode=verify-full&sslrootcert={esc_ca}", c.port(), db.name);
        let as_role = |password: Option<&str>| {
            let auth = match password {
                Some(p) => format!(
                    "{role}:{}",
                    p.replace('%', "%25")
                        .replace(':', "%3A")
                        .replace('@', "%40")
                        .replace('/', "%2F")
                        .replace(' ', "%20")
                ),
                None => role.clone(),
            };
            JournalUrl::parse_in(&format!("postgres://{auth}@{base}"), &UrlEnv::empty()).expect("url")
        };

        let e = PgStore::connect(&as_role(None)).err().expect("no password");
        assert!(matches!(&e, StoreError::Denied(w) if w.contains("password")), "{e:?}");
        let e = PgStore::connect(&as_role(Some("Tr0ub4dor&3"))).err().expect("wrong password");
        assert!(matches!(&e, StoreError::Denied(w) if w.contains("password authentication failed")), "{e:?}");
        assert!(!e.to_string().contains("Tr0ub4dor"));

        let good = as_role(Some(secret));
        assert!(!good.to_string().contains("horse") && !format!("{good:?}").contains("horse"));
        let mut s = PgStore::connect(&good).expect("the right password");
        assert!(ssl_in_use(&mut s));
        let who = s.query("SELECT CAST(current_user AS TEXT) AS who", &[]).expect("q");
        assert_eq!(who[0].get::<String>("who").expect("who"), role);

        // The password from a password file (0600), escapes and all.
        let dir = tempfile::tempdir().expect("tmp");
        let pgpass = dir.path().join("pgpass");
        let escaped = secret.replace('\\', "\\\\").replace(':', "\\:");
        std::fs::write(&pgpass, format!("localhost:*:{}:{role}:{escaped}\n", db.name)).expect("write");
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        }
        let env = UrlEnv::empty().var("PGPASSFILE", &pgpass.display().to_string());
        let from_file = JournalUrl::parse_in(&format!("postgres://{role}@{base}"), &env).expect("url");
        assert!(from_file.warnings().is_empty(), "{:?}", from_file.warnings());
        PgStore::connect(&from_file).expect("the password file's password");

        // Without TLS the server has no door for this role.
        let plain = JournalUrl::parse_in(
            &format!("postgres://{role}@127.0.0.1:{}/{}?sslmode=disable", c.port(), db.name),
            &env,
        )
        .expect("url");
        let e = PgStore::connect(&plain).err().expect("no entry for plain connections");
        assert!(matches!(e, StoreError::Denied(_)), "{e:?}");
        drop(s);
        drop(db);
    }

    #[test]
    fn a_server_without_tls_is_refused_when_tls_is_required() {
        let c = PrivateCluster::new();
        let esc_ca = CA.replace('/', "%2F");
        let e = PgStore::connect(&url("localhost", c.port(), &format!("sslmode=require&sslrootcert={esc_ca}")))
            .err()
            .expect("no TLS there");
        assert!(!matches!(e, StoreError::ConnectionLost(_)), "not something waiting will fix: {e:?}");
    }
}
