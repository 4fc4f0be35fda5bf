//! Team mode (SPEC 8) against a real PostgreSQL: the tests of issues 17 and 18.
//!
//! - [`conformance`]: one suite, run on both backends (SQLite in a state directory; PostgreSQL
//!   through `--journal`): the lifecycle against the fake gateway's ambiguous answers, the holds,
//!   lineage, the operator's actions, the evidence log, and a resume after a kill;
//! - [`crash`]: the sender's `resume` killed with SIGKILL at random moments against the chaos
//!   sandbox, taken over by another machine each time, then finished;
//! - [`machines`]: several processes on one database, state directories standing for machines: the
//!   repeat hold across machines, two makers storing at the same moment, two drivers of one batch, a
//!   takeover after `kill -9`, the lease given back on Ctrl-C, a driver paused past its lease, a
//!   checker acting while a sender drives, PostgreSQL restarted or gone under a running batch;
//! - [`maker_checker`]: who may release money, with login roles per test, and raw SQL on the wrong
//!   role's own connection to show that the database refuses, not payrun;
//! - [`import`]: a laptop's SQLite journal imported into the team's database (a finished one, and
//!   one killed half-way);
//! - [`schema`]: `journal init` twice, and a schema newer than this payrun.
//!
//! The harness below plays the people. An [`Office`] is one test's payroll office on one backend: a
//! working directory, the fake gateway, and in team mode a [`Team`] (a fresh database, `journal
//! init` run by its owner, and login roles with random names: a maker, a checker and a sender). With
//! SQLite everyone is `test-operator`; in team mode each command runs as the role whose part it is,
//! with no `PAYRUN_OPERATOR` (the operator is the database role). [`pay`] is what an operator does to
//! pay a file: `run` with SQLite; the maker's `run`, a checker's `approve --batch` and the sender's
//! `resume` in team mode, so one test reads the same on both.
//!
//! Team-mode tests never skip: without PostgreSQL they fail, saying how to get one
//! (`support::pg`).

mod conformance;
mod crash;
mod guards;
mod import;
mod machines;
mod maker_checker;
mod schema;

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use payrun::journal::store::Store;
use payrun::journal::store::postgres::PgStore;

use crate::support::fake::FakeGateway;
use crate::support::pg::{TestDb, connect, random_hex};
use crate::support::work::{CONFIG, Out, Work, exec, result_rows, s, unwrapped};

/// The fast configuration of `support::work`, with a short lease (a killed driver is taken over
/// after 2 s) and a short wait for a lost database.
pub fn team_config() -> String {
    format!("{CONFIG}[journal]\nlease = \"2s\"\ndb_timeout = \"10s\"\n")
}

/// Which journal a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// SQLite in the state directory.
    Sqlite,
    /// The team's PostgreSQL database (`--journal URL`).
    Postgres,
}

/// One person of a team: a login role and the URL that signs in as it.
#[derive(Clone, Debug)]
pub struct Person {
    pub role: String,
    pub password: String,
    pub url: String,
}

/// A team journal: a fresh database whose owner ran `payrun journal init`, and three people.
pub struct Team {
    pub db: TestDb,
    password: String,
    /// `payrun_maker`.
    pub maker: Person,
    /// `payrun_checker`.
    pub checker: Person,
    /// `payrun_sender`.
    pub sender: Person,
}

impl Team {
    /// A team on a fresh database of the shared server.
    pub fn new() -> Team {
        Team::on(TestDb::new())
    }

    /// A team on `db` (a `PrivateCluster`'s).
    pub fn on(db: TestDb) -> Team {
        let w = Work::new();
        let init = payrun_as(&w, Some(&db.url()), None, &["journal", "init"]);
        init.expect_code(0, "journal init by the database's owner");
        let password = random_hex();
        let mut team = Team {
            db,
            password,
            maker: Person { role: String::new(), password: String::new(), url: String::new() },
            checker: Person { role: String::new(), password: String::new(), url: String::new() },
            sender: Person { role: String::new(), password: String::new(), url: String::new() },
        };
        team.maker = team.person("maker", &["payrun_maker"]);
        team.checker = team.person("checker", &["payrun_checker"]);
        team.sender = team.person("sender", &["payrun_sender"]);
        team
    }

    /// A new login role `<prefix>_<random>`, granted `groups` by the database's owner.
    pub fn person(&self, prefix: &str, groups: &[&str]) -> Person {
        let role = self.db.create_login_role(prefix, &self.password);
        if !groups.is_empty() {
            self.owner()
                .execute_batch(&format!("GRANT {} TO {role}", groups.join(", ")))
                .unwrap_or_else(|e| panic!("grant {groups:?} to {role}: {e}"));
        }
        let url = self.db.url_as(&role, &self.password);
        Person { role, password: self.password.clone(), url }
    }

    /// The database's owner (who ran `journal init`): a connection.
    pub fn owner(&self) -> PgStore {
        self.db.store()
    }

    /// A connection of `p`'s own, for raw SQL as that person.
    pub fn connect_as(&self, p: &Person) -> PgStore {
        connect(&p.url).unwrap_or_else(|e| panic!("connect as {}: {e}", p.role))
    }

    /// One text value from the database, as the owner.
    pub fn text(&self, sql: &str) -> Option<String> {
        let rows = self.owner().query(sql, &[]).unwrap_or_else(|e| panic!("{sql}: {e}"));
        rows.first().and_then(|r| r.at::<Option<String>>(0).unwrap_or_else(|e| panic!("{sql}: {e}")))
    }

    /// The rows of `batch`: line → (state, code).
    pub fn row_states(&self, batch: &str) -> HashMap<u64, (String, Option<String>)> {
        let rows = self
            .owner()
            .query("SELECT line, state, code FROM rows WHERE batch_id = $1", &payrun::vals![batch])
            .expect("row states");
        rows.iter()
            .map(|r| {
                let line: i64 = r.get("line").expect("line");
                (line as u64, (r.get("state").expect("state"), r.get("code").expect("code")))
            })
            .collect()
    }

    /// Who holds the lease of `batch` now: (role, pid), if anyone's lease is unexpired.
    pub fn lease_holder(&self, batch: &str) -> Option<(String, i64)> {
        let rows = self
            .owner()
            .query(
                "SELECT holder, pid FROM leases WHERE batch_id = $1 AND expires_at > clock_timestamp()",
                &payrun::vals![batch],
            )
            .expect("lease");
        rows.first().map(|r| (r.get("holder").expect("holder"), r.get("pid").expect("pid")))
    }

    /// Waits until nobody's lease on `batch` is unexpired (a killed driver's runs out).
    pub fn wait_for_lease_expiry(&self, batch: &str) {
        let t = Instant::now();
        while self.lease_holder(batch).is_some() {
            assert!(t.elapsed() < Duration::from_secs(15), "the lease of {batch} never expired");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// `payrun ARGS [--state MACHINE]` in `w`, with the example credentials; with `journal`, as the
/// role that URL signs in as (`--journal URL`, no `PAYRUN_OPERATOR`).
pub fn payrun_cmd(w: &Work, journal: Option<&str>, machine: Option<&str>, args: &[&str]) -> Command {
    let mut all: Vec<&str> = args.to_vec();
    if let Some(m) = machine {
        all.extend(["--state", m]);
    }
    if let Some(url) = journal {
        all.extend(["--journal", url]);
    }
    let mut c = w.cmd_with_creds(&all);
    if journal.is_some() {
        c.env_remove("PAYRUN_OPERATOR");
    }
    c
}

/// [`payrun_cmd`], run; messages unwrapped from 80 columns.
pub fn payrun_as(w: &Work, journal: Option<&str>, machine: Option<&str>, args: &[&str]) -> Out {
    finish(exec(payrun_cmd(w, journal, machine, args)))
}

fn finish(mut out: Out) -> Out {
    out.stderr = unwrapped(&out.stderr);
    out
}

/// Whose part a command is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Who {
    Maker,
    Checker,
    Sender,
}

/// One test's payroll office on one backend (see the module doc).
pub struct Office {
    pub backend: Backend,
    pub w: Work,
    pub fake: FakeGateway,
    pub team: Option<Team>,
    /// `PAYRUN_CLOCK_OFFSET` for the commands from now on.
    clock: RefCell<Option<String>>,
}

impl Office {
    pub fn new(backend: Backend) -> Office {
        Office::with_fake(backend, FakeGateway::start())
    }

    pub fn with_fake(backend: Backend, fake: FakeGateway) -> Office {
        let team = (backend == Backend::Postgres).then(Team::new);
        Office { backend, w: Work::with_config(&team_config()), fake, team, clock: RefCell::new(None) }
    }

    /// An office in team mode with `team` (on a `PrivateCluster`, say).
    pub fn with_team(team: Team, fake: FakeGateway) -> Office {
        let w = Work::with_config(&team_config());
        Office { backend: Backend::Postgres, w, fake, team: Some(team), clock: RefCell::new(None) }
    }

    pub fn team(&self) -> &Team {
        self.team.as_ref().expect("team mode")
    }

    pub fn path(&self) -> &Path {
        self.w.path()
    }

    /// Moves payrun's clock this far ahead for the commands from now on (`PAYRUN_CLOCK_OFFSET`).
    pub fn set_clock(&self, offset: &str) {
        *self.clock.borrow_mut() = Some(offset.to_string());
    }

    /// The name an action of `who` is recorded under.
    pub fn name(&self, who: Who) -> String {
        match &self.team {
            None => "test-operator".into(),
            Some(t) => t.role_of(who).role.clone(),
        }
    }

    /// `payrun ARGS --state MACHINE` as `who`.
    pub fn cmd_on(&self, who: Who, machine: &str, args: &[&str]) -> Command {
        let url = self.team.as_ref().map(|t| t.role_of(who).url.clone());
        let mut c = payrun_cmd(&self.w, url.as_deref(), Some(machine), args);
        if let Some(offset) = self.clock.borrow().as_deref() {
            c.env("PAYRUN_CLOCK_OFFSET", offset);
        }
        c
    }

    pub fn on(&self, who: Who, machine: &str, args: &[&str]) -> Out {
        finish(exec(self.cmd_on(who, machine, args)))
    }

    /// `payrun ARGS --state S` as the maker (with SQLite: the operator).
    pub fn maker(&self, args: &[&str]) -> Out {
        self.on(Who::Maker, "S", args)
    }

    pub fn checker(&self, args: &[&str]) -> Out {
        self.on(Who::Checker, "S", args)
    }

    pub fn sender(&self, args: &[&str]) -> Out {
        self.on(Who::Sender, "S", args)
    }

    /// Writes `text` as `name` in the working directory.
    pub fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path().join(name);
        std::fs::write(&p, text).expect("write file");
        p
    }

    /// The result file a `--json` summary names.
    pub fn result_of(&self, out: &Out) -> Vec<HashMap<String, String>> {
        let path = PathBuf::from(
            out.json()["result"].as_str().unwrap_or_else(|| panic!("no result in {}\n{}", out.stdout, out.stderr)),
        );
        result_rows(&if path.is_absolute() { path } else { self.path().join(path) })
    }

    /// `report BATCH --out FILE`, read.
    pub fn report(&self, batch: &str) -> Vec<HashMap<String, String>> {
        let out = self.path().join(format!("report-{}.csv", random_hex()));
        self.maker(&["report", batch, "--out", &s(&out)]).expect_code(0, "report");
        result_rows(&out)
    }
}

impl Team {
    fn role_of(&self, who: Who) -> &Person {
        match who {
            Who::Maker => &self.maker,
            Who::Checker => &self.checker,
            Who::Sender => &self.sender,
        }
    }
}

/// The batch id of a file's first batch: the first 12 hex digits of its SHA-256.
pub fn batch_of_file(path: &Path) -> String {
    use sha2::{Digest, Sha256};
    let sha: [u8; 32] = Sha256::digest(std::fs::read(path).expect("read input")).into();
    payrun::journal::batch_id(&sha, 1)
}

/// The batch a `--json` summary is about.
pub fn batch_of(out: &Out) -> String {
    out.json()["batch"].as_str().unwrap_or_else(|| panic!("no batch: {}\n{}", out.stdout, out.stderr)).to_string()
}

/// The batch a maker's `run` stored and left `AWAITING_APPROVAL` (team mode), if it did.
pub fn awaiting(out: &Out) -> Option<String> {
    if out.code != Some(2) {
        return None;
    }
    let (before, _) = out.stderr.split_once(" is stored and AWAITING_APPROVAL")?;
    before.rsplit("batch ").next().map(|id| id.trim().to_string())
}

/// Flags of `run` that `resume` does not take.
const RUN_ONLY: [&str; 3] = ["--new-batch", "--allow-repeat", "--skip-invalid"];

/// Pays `file` as an operator does, from state directory `S` (see [`pay_on`]).
pub fn pay(o: &Office, file: &Path, extra: &[&str]) -> Out {
    pay_on(o, "S", file, extra)
}

/// Pays `file` from state directory `machine`: `run FILE --gateway FAKE --yes --json EXTRA` with
/// SQLite; in team mode the maker's `run FILE --json EXTRA` (which stores the batch and stops, exit
/// 2), a checker's `approve BATCH --batch`, and the sender's `resume BATCH --yes --json`: the
/// last command's output. A run that does not stop `AWAITING_APPROVAL` (a refused file) is
/// returned as it is. `--poll-timeout 20s` unless `extra` says otherwise.
pub fn pay_on(o: &Office, machine: &str, file: &Path, extra: &[&str]) -> Out {
    let f = s(file);
    let mut drive: Vec<&str> = Vec::new();
    let mut i = 0;
    while i < extra.len() {
        if !RUN_ONLY.contains(&extra[i]) {
            drive.push(extra[i]);
        }
        i += 1;
    }
    if !extra.contains(&"--poll-timeout") {
        drive.extend(["--poll-timeout", "20s"]);
    }
    let mut run: Vec<&str> = vec!["run", &f, "--gateway", &o.fake.url, "--json"];
    run.extend_from_slice(extra);
    match o.backend {
        Backend::Sqlite => {
            run.push("--yes");
            if !extra.contains(&"--poll-timeout") {
                run.extend(["--poll-timeout", "20s"]);
            }
            o.on(Who::Maker, machine, &run)
        }
        Backend::Postgres => {
            let stored = o.on(Who::Maker, machine, &run);
            let Some(batch) = awaiting(&stored) else { return stored };
            assert!(stored.stdout.trim().is_empty() || stored.json()["exit"] == 2, "{}", stored.stdout);
            o.on(Who::Checker, machine, &["approve", &batch, "--batch", "--reason", "totals checked against payroll"])
                .expect_code(0, "a checker approves the batch");
            let mut resume = vec!["resume", batch.as_str(), "--yes", "--json"];
            resume.extend(drive);
            o.on(Who::Sender, machine, &resume)
        }
    }
}

/// Stores `file` as a batch without sending anything: `run` without a confirmation with SQLite
/// (exit 1), the maker's `run` in team mode (exit 2, awaiting approval). The batch id.
pub fn store(o: &Office, file: &Path) -> String {
    let f = s(file);
    let out = o.maker(&["run", &f, "--gateway", &o.fake.url]);
    match o.backend {
        Backend::Sqlite => {
            out.expect_code(1, "not confirmed: stored, nothing sent");
            assert!(out.stderr.contains("nothing sent. The batch is stored"), "{}", out.stderr);
            batch_of_file(file)
        }
        Backend::Postgres => awaiting(&out).unwrap_or_else(|| panic!("not awaiting approval:\n{}", out.stderr)),
    }
}

/// Continues `batch` as its sender from `machine`: `resume BATCH --yes --json EXTRA`
/// (`--poll-timeout 20s` unless given). Never tried again: a process that stopped by itself gave
/// its lease back (SPEC 8.1), so this resume is not refused.
pub fn resume(o: &Office, machine: &str, batch: &str, extra: &[&str]) -> Out {
    o.on(Who::Sender, machine, &resume_args(batch, extra))
}

/// [`resume`] after a driver died without giving its lease back (killed, or its database gone):
/// in team mode `resume` is refused (exit 1, naming the holder) until that lease runs out, and is
/// tried again until then.
pub fn resume_after_a_death(o: &Office, machine: &str, batch: &str, extra: &[&str]) -> Out {
    let args = resume_args(batch, extra);
    let t = Instant::now();
    loop {
        let out = o.on(Who::Sender, machine, &args);
        let busy = out.code == Some(1) && out.stderr.contains("is being driven by");
        if !busy || t.elapsed() > Duration::from_secs(20) {
            return out;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn resume_args<'a>(batch: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["resume", batch, "--yes", "--json"];
    args.extend_from_slice(extra);
    if !extra.contains(&"--poll-timeout") {
        args.extend(["--poll-timeout", "20s"]);
    }
    args
}

/// Every account credited at most once (a bank failure returns the money); how many were.
pub fn nobody_twice(fake: &FakeGateway) -> usize {
    let credited = fake.credited_per_account();
    assert!(credited.values().all(|n| *n == 1), "paid twice: {credited:?}\nledger: {:?}", fake.ledger());
    credited.len()
}

/// The result rows keyed by the `Name` column.
pub fn by_name(rows: &[HashMap<String, String>]) -> HashMap<String, HashMap<String, String>> {
    rows.iter().map(|r| (r["Name"].clone(), r.clone())).collect()
}
