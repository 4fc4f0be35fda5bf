//! Group commit: one thread owns a journal connection and writes row changes in batches, one
//! transaction (one fsync) for everything that queued while the previous commit was on disk.
//!
//! Callers either wait for their change to be durable ([`Writer::durable`], used for the intent
//! before a payout leaves: SPEC rule 1) or hand it over and go on ([`Writer::record`], used for
//! results, which rule 1 allows to be written in groups; a result lost in a crash is recovered by
//! status inquiry). Changes are applied in the order they were handed over. Every change is checked
//! against the row's state on disk; a mismatch or a failed write stops the writer for good, and every
//! later call reports it, so the engine stops instead of paying on a journal it cannot trust.
//!
//! Every change comes with its evidence-log record (the request or answer that caused it), and
//! records that change no row (a status inquiry, an answer that proves nothing) come on their own
//! ([`Writer::audit`]). A group's records are appended to the batch's evidence log and made durable
//! before the group's journal transaction commits (SPEC 3.4).
//!
//! Two threads make a pipeline: the first forms a group and makes its records durable in the log,
//! the second commits the group to the journal and answers the callers. While the journal commits
//! group N, the log already syncs group N+1, so the two `fsync`s overlap instead of adding up
//! (measured: the log then costs under 10% of P3's throughput instead of about 20%). The order
//! holds by construction: a group reaches the journal only after its records are durable, and
//! groups reach it in the order they were formed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use super::store::{Store, StoreError};
use super::{Journal, JournalError, Place, Result, RowState, RowStatus, write_anchored};
use crate::audit::{Head, Log, Record};

/// One row's change: from the state on disk to a new status (computed by the lifecycle).
#[derive(Clone, Debug)]
pub struct Change {
    pub seq: u64,
    pub from: RowState,
    pub to: RowStatus,
}

type Ack = oneshot::Sender<std::result::Result<(), String>>;

enum Cmd {
    Change(Change, Record, Option<Ack>),
    Audit(Record),
    Flush(Ack),
}

/// What the writer has been handed and what it has committed, by the position of each command in
/// the order it was handed over (see [`Writer::record`], [`Writer::committed`]).
#[derive(Default)]
struct Progress {
    /// The position the next command gets; taken together with the send, so positions follow the
    /// channel's order whichever thread hands a command over.
    next: std::sync::Mutex<u64>,
    /// Every command up to this position is committed (or the writer failed).
    committed: AtomicU64,
}

/// Handle on the writer threads of one batch.
pub struct Writer {
    tx: Option<mpsc::Sender<(u64, Cmd)>>,
    handles: Vec<JoinHandle<()>>,
    progress: Arc<Progress>,
}

/// A group on its way from the log to the journal: its changes, the callers to answer, the log's
/// head after its records (none: it had no record), or why the log could not take it.
struct Group {
    /// The position of the group's last command.
    last: u64,
    changes: Vec<Change>,
    acks: Vec<Ack>,
    head: Option<Head>,
    /// Team mode: the group's evidence records, numbered and chained by the committer inside the
    /// transaction that commits the changes, after the batch's log head (which other processes may
    /// have moved: a checker's action while a sender drives the batch).
    records: Vec<Record>,
    failed: Option<String>,
}

/// Commits one group: its row changes and the evidence-log anchor (the records are already durable
/// in the log file), or in team mode its evidence records too ([`Log`] in the database), in one
/// transaction.
///
/// Losing the database (SPEC 8.1): the commit is tried again, on a new connection, until the
/// database is back or `db_timeout` has passed; meanwhile the group's callers wait, so no intent is
/// acknowledged and no payout leaves the process. A commit whose answer was lost may have landed:
/// its last evidence record tells (a file log: the batch's anchor; the database: that record's
/// hash, which no other record can have), and such a group is not written twice. A statement the
/// database refuses for what it says (not for a lost connection) is never tried again.
///
/// In team mode each commit also proves this process still holds the batch's lease (SPEC 8.1): the
/// token goes with the transaction, where the database checks it on every claim, and a process
/// whose lease another took over writes nothing more.
#[allow(clippy::too_many_arguments)]
fn commit_group(
    db: &mut Box<dyn Store>,
    place: &Place,
    batch: &str,
    g: &Group,
    team_log: Option<&mut Log>,
    lease: Option<&str>,
    db_timeout: std::time::Duration,
) -> Result<()> {
    let started = std::time::Instant::now();
    let mut wait = std::time::Duration::from_millis(200);
    let mut team_log = team_log;
    loop {
        let mut last_hash: Option<String> = None;
        let attempt = (|| -> Result<()> {
            place.check()?;
            db.begin()?;
            let written = (|| -> Result<()> {
                if let Some(token) = lease {
                    // The lease token with this transaction (the database checks it on every
                    // claim), and a bound on how long it may sit open: a holder paused in the
                    // middle of a commit (a laptop's lid closed) is cut off by the database after
                    // this long, so its lock on the lease does not keep a takeover waiting for ever.
                    db.execute("SELECT set_config('payrun.lease', $1, true)", &crate::vals![token])?;
                    db.execute("SET LOCAL idle_in_transaction_session_timeout = '5s'", &[])?;
                    let held = !db
                        .query(
                            // FOR SHARE: a takeover waits for this transaction to end, so what a
                            // holder checked before it lost the lease is committed before the next
                            // holder reads the rows it left (its recovery would disagree otherwise).
                            "SELECT 1 AS held FROM leases WHERE batch_id = $1 AND token = $2 AND expires_at > now() FOR SHARE",
                            &crate::vals![batch, token],
                        )?
                        .is_empty();
                    if !held {
                        return Err(JournalError::Refused(format!(
                            "this process no longer holds the lease of batch {batch} (another machine took it over): it writes and sends nothing more"
                        )));
                    }
                }
                let head = match team_log.as_deref_mut() {
                    Some(log) => {
                        let mut records = g.records.clone();
                        super::append_in_db(&mut **db, log, batch, &mut records)?;
                        last_hash = Some(log.head().hash.clone());
                        log.head().clone()
                    }
                    None => g.head.clone().unwrap_or_else(|| Head { n: 0, hash: String::new() }),
                };
                write_anchored(&mut **db, batch, &g.changes, &head)
            })();
            match written {
                Ok(()) => db.execute_batch("COMMIT")?,
                Err(e) => {
                    let _ = db.execute_batch("ROLLBACK");
                    return Err(e);
                }
            }
            Ok(())
        })();
        match attempt {
            Err(JournalError::Store(StoreError::ConnectionLost(why))) if started.elapsed() < db_timeout => {
                tracing::warn!("lost the journal database ({why}): nothing is sent until it is back");
                std::thread::sleep(wait);
                wait = (wait * 2).min(std::time::Duration::from_secs(2));
                // The commit may have landed before the answer was lost.
                let landed = match (&last_hash, &g.head) {
                    (Some(hash), _) => db
                        .query(
                            "SELECT 1 AS x FROM evidence WHERE batch_id = $1 AND hash = $2",
                            &crate::vals![batch, hash],
                        )
                        .map(|r| !r.is_empty())
                        .unwrap_or(false),
                    (None, Some(head)) => {
                        super::anchor_in(&mut **db, batch).ok().flatten().is_some_and(|at| at.n >= head.n)
                    }
                    (None, None) => false,
                };
                if landed {
                    return Ok(());
                }
            }
            other => return other,
        }
    }
}

impl Writer {
    /// Starts the writer thread of `batch` on its own connection to `journal`, continuing the
    /// batch's evidence log. Before every group the writer checks the journal is still the one the
    /// run opened (a journal file deleted or replaced), and stops for good otherwise (SPEC 3 rule
    /// 10).
    pub fn start(journal: &Journal, batch: &str) -> Result<Writer> {
        let place = journal.place().clone();
        let team = place.is_team();
        // The evidence log: a file, appended and synced by the first thread; in team mode the
        // database, appended by the committer inside each group's transaction.
        let mut log = journal.open_audit(batch)?;
        let mut team_log = if team { Some(journal.open_audit(batch)?) } else { None };
        let lease = journal.lease_token(batch);
        let mut db = journal.connect_again()?;
        let db_timeout = journal.db_timeout();
        let batch = batch.to_string();
        let (tx, rx) = mpsc::channel::<(u64, Cmd)>();
        let progress = Arc::new(Progress::default());
        let watermark = Arc::clone(&progress);
        // Bounded: the log runs at most two groups ahead of the journal.
        let (gtx, grx) = mpsc::sync_channel::<Group>(2);
        let logger = std::thread::Builder::new().name("payrun-audit".into()).spawn(move || {
            let mut failed: Option<String> = None;
            while let Ok(first) = rx.recv() {
                let mut last = first.0;
                let mut cmds = vec![first.1];
                while cmds.len() < 16_384 {
                    match rx.try_recv() {
                        Ok((i, c)) => {
                            last = i;
                            cmds.push(c);
                        }
                        Err(_) => break,
                    }
                }
                tracing::trace!(group = cmds.len(), "journal group");
                let mut records = Vec::with_capacity(cmds.len());
                let mut changes = Vec::with_capacity(cmds.len());
                let mut acks = Vec::new();
                for c in cmds {
                    match c {
                        Cmd::Change(change, record, ack) => {
                            let to = &change.to;
                            records.push(record.with_change(
                                change.from.as_str(),
                                to.state().as_str(),
                                to.code.as_deref(),
                                to.message.as_deref(),
                            ));
                            changes.push(change);
                            acks.extend(ack);
                        }
                        Cmd::Audit(record) => records.push(record),
                        Cmd::Flush(ack) => acks.push(ack),
                    }
                }
                let (head, records) = if team {
                    (None, records)
                } else {
                    if failed.is_none() && !records.is_empty() {
                        if let Err(e) = log.append(&mut records) {
                            tracing::error!("evidence log write failed: {e}");
                            failed = Some(format!("evidence log: {e}"));
                        }
                    }
                    ((!records.is_empty()).then(|| log.head().clone()), Vec::new())
                };
                if gtx.send(Group { last, changes, acks, head, records, failed: failed.clone() }).is_err() {
                    break;
                }
            }
        })?;
        let committer = std::thread::Builder::new().name("payrun-journal".into()).spawn(move || {
            let mut poisoned: Option<String> = None;
            while let Ok(g) = grx.recv() {
                if poisoned.is_none() {
                    poisoned = g.failed.clone();
                }
                if poisoned.is_none() && (g.head.is_some() || !g.records.is_empty()) {
                    if let Err(e) =
                        commit_group(&mut db, &place, &batch, &g, team_log.as_mut(), lease.as_deref(), db_timeout)
                    {
                        tracing::error!("journal write failed: {e}");
                        poisoned = Some(e.to_string());
                    }
                }
                if poisoned.is_none() {
                    watermark.committed.store(g.last, Ordering::Release);
                }
                for ack in g.acks {
                    let _ = ack.send(poisoned.clone().map_or(Ok(()), Err));
                }
            }
        })?;
        Ok(Writer { tx: Some(tx), handles: vec![logger, committer], progress })
    }

    /// Hands `cmd` over; returns its position (positions start at 1).
    fn send(&self, cmd: Cmd) -> Result<u64> {
        let Some(tx) = &self.tx else { return Err(JournalError::Writer("writer closed".into())) };
        let mut next = self.progress.next.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *next += 1;
        tx.send((*next, cmd)).map_err(|_| JournalError::Writer("writer thread is gone".into()))?;
        Ok(*next)
    }

    /// Every change handed over up to this position (as [`Writer::record`] returned it) is
    /// committed to the journal.
    pub fn committed(&self) -> u64 {
        self.progress.committed.load(Ordering::Acquire)
    }

    /// Writes a change (and its evidence record) and waits until both are on disk.
    pub async fn durable(&self, change: Change, record: Record) -> Result<()> {
        let (ack, done) = oneshot::channel();
        self.send(Cmd::Change(change, record, Some(ack)))?;
        acked(done).await
    }

    /// Hands a change (and its evidence record) over; it is written with the next group. Returns
    /// its position: once [`Writer::committed`] reaches it, the journal's queries see it.
    pub fn record(&self, change: Change, record: Record) -> Result<u64> {
        self.send(Cmd::Change(change, record, None))
    }

    /// Hands an evidence record that changes no row over (a status inquiry, an answer that proves
    /// nothing); it is written with the next group.
    pub fn audit(&self, record: Record) -> Result<()> {
        self.send(Cmd::Audit(record)).map(|_| ())
    }

    /// Waits until everything handed over so far is on disk (or reports why it cannot be).
    pub async fn flush(&self) -> Result<()> {
        let (ack, done) = oneshot::channel();
        self.send(Cmd::Flush(ack))?;
        acked(done).await
    }

    /// Stops the threads after they have written everything handed over.
    pub fn close(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.tx.take();
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

/// Waits for the writer's answer to one command.
async fn acked(done: oneshot::Receiver<std::result::Result<(), String>>) -> Result<()> {
    match done.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(JournalError::Writer(e)),
        Err(_) => Err(JournalError::Writer("writer thread is gone".into())),
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop();
    }
}
