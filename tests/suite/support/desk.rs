//! An operator's desk for the model test (`model.rs`): every command an operator types between
//! runs (`run`, `resume`, `cancel`, `approve`, `resolve`, `failed`), done either through the
//! library in this process, wired as the command line wires it (`src/cli/*.rs`: the same calls in
//! the same order), or through the `payrun` binary; `run` and `resume` optionally killed at a known
//! request (the fake gateway freezes there, see [`crate::support::fake::FakeGateway::freeze_at`]).
//!
//! In-process, a kill drops the `drive` future while the gateway holds a request: the engine's
//! tasks are aborted at their next await, rows left `sending` are in doubt on the next resume, as
//! after a crash. What it does not lose is what the journal writer was already handed (its threads
//! finish the group when dropped); a real `kill -9` of the binary loses that too, which is why some
//! kills go through the binary.
//!
//! The library's clock is moved with `journal::clock::advance` (process-wide: this runs only in the
//! model test's own process); the binary gets the same offset through `PAYRUN_CLOCK_OFFSET`.

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use payrun::batch::{
    self, BatchError, Confirm, Driven, FileOptions, GatewayChoice, Opened, Overrides, Plan, ReadSwitches, Session,
    StateDir,
};
use payrun::config::ConfigFile;
use payrun::engine::progress::Silent;
use payrun::journal::actions::Selection;
use payrun::journal::{Batch, Journal};
use payrun::shutdown::Shutdown;

use super::fake::FakeGateway;
use super::work::Work;

/// Who carries out a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Driver {
    /// The library, in this process.
    Lib,
    /// The `payrun` binary, a process of its own.
    Bin,
}

/// Where a `run` or `resume` is killed: at the gateway's `at`-th request from the start of the
/// command (token requests count), after that posting's effect or before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kill {
    pub at: u64,
    pub effect: bool,
}

/// How a `run` or `resume` ended.
#[derive(Clone, Debug)]
pub enum Ran {
    /// Refused before anything was sent (the message).
    Refused(String),
    /// It ran to its end (the engine's stop, or what the binary's exit code says).
    Done(String),
    /// Killed at the frozen request.
    Killed,
    /// Something payrun must never do in this model: a journal stop, an illegal transition, a
    /// panic, a run that hangs. The model fails on it.
    Broken(String),
}

/// An operator's desk: a work directory with `payrun.toml` and the state directory `S`, the fake
/// gateway, and the offset of payrun's clock.
pub struct Desk {
    pub work: Work,
    pub state: PathBuf,
    pub config: ConfigFile,
    pub gateway: String,
    /// How far this desk has moved payrun's clock (since the desk was made).
    pub clock: Duration,
}

/// How far payrun's clock is ahead of the real one in this process, all desks together (the
/// library's offset cannot be read back, and the binary needs it).
static OFFSET_MS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Confirms every plan, as `--yes` does.
struct Yes;

impl Confirm for Yes {
    fn confirm(&mut self, _: &Plan) -> anyhow::Result<bool> {
        Ok(true)
    }
    fn show(&mut self, _: &Plan) {}
}

/// A run that takes longer than this hangs (the model's runs take well under a second).
const HANG: Duration = Duration::from_secs(90);

/// The operator's name recorded with every action.
pub const OPERATOR: &str = "model-operator";

impl Desk {
    /// A desk whose `payrun.toml` is `config` (credentials included, so the library finds them
    /// too), paying through `gateway`.
    pub fn new(config: &str, gateway: &str) -> Desk {
        let work = Work::with_config(config);
        let (config, _) = ConfigFile::load(Some(&work.path().join("payrun.toml"))).expect("payrun.toml");
        let state = work.path().join("S");
        Desk { work, state, config, gateway: gateway.to_string(), clock: Duration::ZERO }
    }

    /// Moves payrun's clock forward (this process's and every later binary's), for good.
    pub fn advance(&mut self, by: Duration) {
        payrun::journal::clock::advance(by);
        OFFSET_MS.fetch_add(by.as_millis() as u64, std::sync::atomic::Ordering::Relaxed);
        self.clock += by;
    }

    /// The journal, opened for reading.
    pub fn journal(&self) -> Journal {
        Journal::open(&self.state).expect("open the journal")
    }

    fn session(&self) -> Result<Session, BatchError> {
        Session::open(StateDir { path: self.state.clone(), is_default: false }, OPERATOR.into(), true)
    }

    /// `payrun ARGS --state S` with this desk's clock; its exit code and output.
    fn bin(&self, args: &[&str]) -> std::process::Command {
        let mut all: Vec<&str> = args.to_vec();
        let state = self.state.display().to_string();
        all.extend(["--state", &state]);
        let mut c = self.work.cmd_with_creds(&all);
        c.env("PAYRUN_OPERATOR", OPERATOR);
        let offset = OFFSET_MS.load(std::sync::atomic::Ordering::Relaxed);
        if offset > 0 {
            c.env("PAYRUN_CLOCK_OFFSET", format!("{offset}ms"));
        }
        c
    }

    /// Runs a short command of the binary; `Err` with its output when it exits other than 0.
    fn bin_short(&self, args: &[&str]) -> Result<String, String> {
        let out = super::work::exec(self.bin(args));
        let text = format!("exit {:?}: {}", out.code, last_line(&out.stderr));
        match out.code {
            Some(0) => Ok(text),
            Some(1) => Err(text),
            _ => Err(format!("BROKEN {text}\n{}", out.stderr)),
        }
    }

    /// `payrun run FILE --gateway URL --yes [--new-batch]`.
    pub fn run(&self, fake: &FakeGateway, file: &Path, new_batch: bool, driver: Driver, kill: Option<Kill>) -> Ran {
        match driver {
            Driver::Bin => {
                let f = file.display().to_string();
                let mut args = vec!["run", f.as_str(), "--gateway", self.gateway.as_str(), "--yes", "--json"];
                if new_batch {
                    args.push("--new-batch");
                }
                self.bin_drive(fake, &args, kill)
            }
            Driver::Lib => {
                let session = match self.session() {
                    Ok(s) => s,
                    Err(e) => return Ran::Broken(format!("cannot open the journal: {e}")),
                };
                let opts = FileOptions {
                    rules: Default::default(),
                    switches: ReadSwitches::default(),
                    new_batch,
                    allow_repeat: false,
                    gateway: GatewayChoice::Url(self.gateway.clone()),
                    overrides: Overrides::default(),
                };
                let opened = batch::open_file(&session, file, &opts, &self.config, |_| {}, |_| {});
                let b = match opened {
                    Ok(Opened::Refused(r)) => return Ran::Refused(first_line(&r.message(file, &session))),
                    Ok(Opened::Unfinished(b)) | Ok(Opened::Stored { batch: b, .. }) => b,
                    Err(e) => return Ran::Broken(format!("run: {e}")),
                };
                self.lib_drive(fake, &session, &b, Some(&self.gateway), kill)
            }
        }
    }

    /// `payrun resume BATCH --yes`.
    pub fn resume(&self, fake: &FakeGateway, batch: &str, driver: Driver, kill: Option<Kill>) -> Ran {
        match driver {
            Driver::Bin => self.bin_drive(fake, &["resume", batch, "--yes", "--json"], kill),
            Driver::Lib => {
                let session = match self.session() {
                    Ok(s) => s,
                    Err(e) => return Ran::Broken(format!("cannot open the journal: {e}")),
                };
                let b = match session.find_batch(batch) {
                    Ok(b) => b,
                    Err(e) => return Ran::Broken(format!("resume: {e}")),
                };
                if b.finished_at.is_some() {
                    return match batch::finish(&session, &b, None, None) {
                        Ok(_) => Ran::Done("finished before".into()),
                        Err(e) => Ran::Broken(format!("resume of a finished batch: {e}")),
                    };
                }
                if let Err(e) = batch::recheck_holds(&session, &b, &self.config) {
                    return Ran::Broken(format!("resume: holds: {e}"));
                }
                self.lib_drive(fake, &session, &b, None, kill)
            }
        }
    }

    /// Drives a stored batch in this process, as `run` and `resume` do, killed at `kill`.
    fn lib_drive(
        &self,
        fake: &FakeGateway,
        session: &Session,
        b: &Batch,
        gateway: Option<&str>,
        kill: Option<Kill>,
    ) -> Ran {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        if let Some(k) = kill {
            fake.freeze_at(k.at, k.effect);
        }
        let (overrides, mut yes, mut silent) = (Overrides::default(), Yes, Silent);
        let driven = rt.block_on(async {
            let drive =
                batch::drive(session, b, gateway, &overrides, &self.config, &mut yes, &mut silent, Shutdown::new());
            let frozen = async {
                loop {
                    if fake.frozen() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            };
            tokio::select! {
                d = drive => Some(d),
                _ = frozen, if kill.is_some() => None,
                _ = tokio::time::sleep(HANG) => Some(Err(BatchError::Connect("HANG".into()))),
            }
        });
        // The engine's tasks and connections end with the runtime: the crash. Requests the gateway
        // holds are let go only after it (answered to nobody).
        drop(rt);
        if kill.is_some() {
            std::thread::sleep(Duration::from_millis(5));
            fake.thaw();
        }
        match driven {
            None => Ran::Killed,
            Some(Ok(Driven::Ran(o))) => match batch::finish(session, b, None, Some(&o.stop)) {
                Ok(f) => Ran::Done(format!("{:?}, {} open", o.stop, f.open)),
                Err(e) => Ran::Broken(format!("finish: {e}")),
            },
            Some(Ok(Driven::JournalStopped(e))) => Ran::Broken(format!("the journal stopped the run: {e}")),
            Some(Ok(other)) => Ran::Broken(format!("{other:?}")),
            Some(Err(e @ BatchError::OtherGateway { .. })) => Ran::Refused(e.to_string()),
            Some(Err(e)) => Ran::Broken(format!("drive: {e}")),
        }
    }

    /// Runs the binary for `run`/`resume`, killed with SIGKILL once the gateway froze.
    fn bin_drive(&self, fake: &FakeGateway, args: &[&str], kill: Option<Kill>) -> Ran {
        if let Some(k) = kill {
            fake.freeze_at(k.at, k.effect);
        }
        let mut child: Child = self.bin(args).spawn().expect("spawn payrun");
        // Drain the pipes so the child never blocks on a full one.
        let out = child.stdout.take().map(|o| std::thread::spawn(move || read_all(o)));
        let err = child.stderr.take().map(|e| std::thread::spawn(move || read_all(e)));
        let started = Instant::now();
        let mut killed = false;
        let status = loop {
            if let Some(s) = child.try_wait().expect("wait for payrun") {
                break Some(s);
            }
            if kill.is_some() && fake.frozen() {
                let _ = child.kill();
                let _ = child.wait();
                killed = true;
                break None;
            }
            if started.elapsed() > HANG {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        let _stdout = out.map(|h| h.join().unwrap_or_default()).unwrap_or_default();
        let stderr = err.map(|h| h.join().unwrap_or_default()).unwrap_or_default();
        if kill.is_some() {
            std::thread::sleep(Duration::from_millis(5));
            fake.thaw();
        }
        if killed {
            return Ran::Killed;
        }
        match status.and_then(|s| s.code()) {
            None => Ran::Broken(format!("payrun {} hung or died:\n{stderr}", args.join(" "))),
            Some(c @ (0 | 2)) => Ran::Done(format!("exit {c}")),
            Some(1) => Ran::Refused(first_line(stderr.lines().rev().find(|l| l.contains("error")).unwrap_or(""))),
            Some(c) => Ran::Broken(format!("payrun {} exited {c}:\n{stderr}", args.join(" "))),
        }
    }

    /// `payrun cancel BATCH --reason ...`. `Err`: refused (or broken, said so).
    pub fn cancel(&self, batch: &str, driver: Driver) -> Result<String, String> {
        if driver == Driver::Bin {
            return self.bin_short(&["cancel", batch, "--reason", "model: abandoned"]);
        }
        let session = self.session().map_err(|e| format!("BROKEN {e}"))?;
        let b = session.find_batch(batch).map_err(|e| format!("BROKEN {e}"))?;
        if b.finished_at.is_some() && b.cancelled_at.is_none() {
            return Err("finished: nothing to cancel".into());
        }
        let c = batch::cancel(&session, &b, "model: abandoned", &self.config).map_err(|e| e.to_string())?;
        Ok(format!("{} rows cancelled, {} still followed", c.rows, c.still_followed))
    }

    /// `payrun approve BATCH --rows LINE --reason ...`.
    pub fn approve(&self, batch: &str, line: u64, driver: Driver) -> Result<String, String> {
        if driver == Driver::Bin {
            return self.bin_short(&["approve", batch, "--rows", &line.to_string(), "--reason", "model: checked"]);
        }
        let session = self.session().map_err(|e| format!("BROKEN {e}"))?;
        let b = session.find_batch(batch).map_err(|e| format!("BROKEN {e}"))?;
        let a = batch::approve(&session, &b, &Selection::Lines(vec![line]), "model: checked", &self.config)
            .map_err(|e| e.to_string())?;
        Ok(format!("released {:?}, held again {:?}", a.released, a.held_again))
    }

    /// `payrun resolve BATCH --row LINE --as paid|unpaid --reason ...`.
    pub fn resolve(&self, batch: &str, line: u64, paid: bool, driver: Driver) -> Result<String, String> {
        let verdict = if paid { "paid" } else { "unpaid" };
        if driver == Driver::Bin {
            let l = line.to_string();
            let args = ["resolve", batch, "--row", &l, "--as", verdict, "--reason", "model: the gateway's ledger"];
            return self.bin_short(&args);
        }
        let session = self.session().map_err(|e| format!("BROKEN {e}"))?;
        let b = session.find_batch(batch).map_err(|e| format!("BROKEN {e}"))?;
        let (_, to) =
            batch::resolve(&session, &b, line, paid, None, "model: the gateway's ledger").map_err(|e| e.to_string())?;
        Ok(format!("now {}", to.state()))
    }

    /// `payrun failed BATCH --out OUT`: the lines written.
    pub fn failed(&self, batch: &str, out: &Path, driver: Driver) -> Result<String, String> {
        if driver == Driver::Bin {
            let o = out.display().to_string();
            return self.bin_short(&["failed", batch, "--out", &o]);
        }
        let session = Session::open(StateDir { path: self.state.clone(), is_default: false }, OPERATOR.into(), false)
            .map_err(|e| format!("BROKEN {e}"))?;
        let b = session.find_batch(batch).map_err(|e| format!("BROKEN {e}"))?;
        let done = payrun::report::write_failed(&session.journal, &b, out, false).map_err(|e| format!("BROKEN {e}"))?;
        session
            .journal
            .record_export(&b.id, &session.operator, &out.display().to_string(), &done.lines)
            .map_err(|e| format!("BROKEN {e}"))?;
        Ok(format!("lines {:?}, paid again elsewhere {:?}", done.lines, done.paid_again.by_batch))
    }

    /// `payrun audit BATCH --verify` (the library's check the command prints).
    pub fn verify(&self, batch: &Batch) -> Result<(), String> {
        let journal = self.journal();
        match payrun::audit::verify::verify(&journal, batch) {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(f)) => Err(format!("record {}: {}", f.record, f.what)),
            Err(e) => Err(format!("cannot verify: {e}")),
        }
    }

    /// `payrun audit BATCH --verify` through the binary: its exit code is 0.
    pub fn verify_bin(&self, batch: &str) -> Result<(), String> {
        self.bin_short(&["audit", batch, "--verify"]).map(|_| ())
    }
}

fn read_all(mut r: impl std::io::Read) -> String {
    let mut s = String::new();
    let _ = r.read_to_string(&mut s);
    s
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or("").trim().to_string()
}

fn last_line(text: &str) -> String {
    text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim().to_string()
}
