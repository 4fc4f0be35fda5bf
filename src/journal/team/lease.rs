//! One driver per batch (SPEC 8.1): at most one process anywhere drives a batch (`run`, `resume`,
//! `status --refresh`). It holds a lease in the database — its role, machine, process and expiry —
//! renewed while it drives, and given back when it stops by itself (exit 2 or 3, Ctrl-C), so an
//! immediate `resume` is not refused by it.
//!
//! A second driver is refused, told who drives the batch and since when. When the holder dies, its
//! lease expires (default 30 s after its last renewal) and another machine may take the batch over;
//! the rows it left `sending` are then in doubt (rule 2), resolved by inquiry before anything is
//! sent again. The lease is also a fence: the database refuses a claim (`→ sending`) from a
//! connection that does not carry the batch's current lease token ([`super::roles`]), so a holder
//! that was paused past its expiry and woke up cannot send beside the process that took over.

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::journal::store::pgurl::JournalUrl;
use crate::journal::store::postgres::PgStore;
use crate::journal::store::{Store, first};
use crate::journal::{Journal, JournalError, Place, Result};
use crate::vals;

/// How long a lease lasts without renewal, by default.
pub const LEASE: Duration = Duration::from_secs(30);

/// A lease held by this process; renewed by a thread of its own, given back when dropped.
pub struct Lease {
    batch: String,
    token: String,
    url: JournalUrl,
    stop: Option<mpsc::Sender<()>>,
    renewer: Option<JoinHandle<()>>,
}

/// Who drives a batch now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    pub role: String,
    pub host: String,
    pub pid: u64,
    /// RFC 3339.
    pub since: String,
}

/// SQL: a lease's expiry, `$n` seconds from now by the database's clock.
fn expiry(param: &str) -> String {
    format!("clock_timestamp() + CAST({param} AS BIGINT) * interval '1 millisecond'")
}

/// A random token naming one holding of a lease.
fn new_token() -> String {
    use sha2::{Digest, Sha256};
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let seed = format!("{nanos}:{}:{:p}", std::process::id(), &nanos);
    hex::encode(&Sha256::digest(seed.as_bytes())[..16])
}

impl Journal {
    /// Takes the lease of `batch` for this process (team mode), or says who holds it. With SQLite
    /// there is nothing to take: the state directory's lock keeps other processes out.
    pub fn take_lease(&self, batch: &str, duration: Duration) -> Result<std::result::Result<Option<Lease>, Holder>> {
        let Place::Postgres { url, .. } = self.place() else { return Ok(Ok(None)) };
        let token = new_token();
        let host = whoami::hostname().unwrap_or_else(|_| "unknown host".into());
        let ms = duration.as_millis() as u64;
        // A holder writing a group keeps the lease row locked (its commit checks the lease FOR
        // SHARE): a takeover waits for that commit, so the rows it read are the ones that holder
        // left; but not for ever (a holder paused in the middle of a commit still holds the batch).
        let taken = self.atomic(|| {
            self.x("SET LOCAL lock_timeout = '15s'", &[])?;
            self.q(
                &format!(
                    "INSERT INTO leases (batch_id, token, holder, host, pid, since, expires_at)
                     VALUES ($1, $2, current_user, $3, $4, clock_timestamp(), {})
                     ON CONFLICT (batch_id) DO UPDATE SET token = excluded.token, holder = excluded.holder,
                         host = excluded.host, pid = excluded.pid, since = clock_timestamp(), expires_at = {}
                     WHERE leases.expires_at < clock_timestamp()
                     RETURNING token",
                    expiry("$5"),
                    // Counted again when the row is taken: waiting for a locked lease row must not
                    // give a lease that is already over.
                    expiry("$5")
                ),
                &vals![batch, &token, &host, u64::from(std::process::id()), ms],
            )
        });
        let taken = match taken {
            Err(JournalError::Store(e)) if e.to_string().contains("lock timeout") => {
                return Err(JournalError::Refused(format!(
                    "batch {batch} is being written by the process that drives it (its lease row is locked): try again in a moment"
                )));
            }
            other => other?,
        };
        if taken.is_empty() {
            let holder = first(self.q(
                "SELECT holder, host, pid,
                        to_char(since AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') AS since
                 FROM leases WHERE batch_id = $1",
                &vals![batch],
            )?);
            let Some(h) = holder else {
                return Err(JournalError::Refused(format!("the lease of batch {batch} changed hands: try again")));
            };
            return Ok(Err(Holder {
                role: h.get("holder")?,
                host: h.get("host")?,
                pid: h.get("pid")?,
                since: h.get("since")?,
            }));
        }
        self.hold_lease(batch, &token);
        let (tx, rx) = mpsc::channel::<()>();
        let (url2, batch2, token2) = (url.clone(), batch.to_string(), token.clone());
        let renewer = std::thread::Builder::new().name("payrun-lease".into()).spawn(move || {
            let mut db: Option<PgStore> = None;
            let every = (duration / 3).max(Duration::from_millis(100));
            while let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(every) {
                if db.is_none() {
                    db = PgStore::connect(&url2).ok();
                }
                let Some(store) = db.as_mut() else { continue };
                let renewed = store.execute(
                    &format!("UPDATE leases SET expires_at = {} WHERE batch_id = $1 AND token = $2", expiry("$3")),
                    &vals![&batch2, &token2, ms],
                );
                match renewed {
                    Ok(1) => {}
                    Ok(_) => {
                        tracing::error!(
                            "lost the lease of batch {batch2}: another process took it over; this one claims nothing more"
                        );
                        return;
                    }
                    Err(e) => tracing::warn!("could not renew the lease of batch {batch2}: {e}"),
                }
            }
        })?;
        Ok(Ok(Some(Lease {
            batch: batch.to_string(),
            token,
            url: url.clone(),
            stop: Some(tx),
            renewer: Some(renewer),
        })))
    }
}

impl Lease {
    pub fn token(&self) -> &str {
        &self.token
    }
}

impl Drop for Lease {
    /// Gives the lease back (a process that stops by itself does not make the next driver wait).
    fn drop(&mut self) {
        self.stop.take();
        if let Some(h) = self.renewer.take() {
            let _ = h.join();
        }
        if let Ok(mut db) = PgStore::connect(&self.url) {
            let _ =
                db.execute("DELETE FROM leases WHERE batch_id = $1 AND token = $2", &vals![&self.batch, &self.token]);
        }
    }
}
