//! `payrun journal import`: a state directory's SQLite journal copied into the team's database
//! (SPEC 8.1), so a team that started on one laptop keeps its memory of what was paid: batches,
//! rows, actions, exports and each batch's evidence log (its committed records, chain and anchor
//! unchanged, so `audit --verify` passes in the database as it did beside the file).
//!
//! One transaction per batch; a batch already imported is left as it is (its evidence log starts
//! with the same record), so running the import twice imports nothing twice, and an import stopped
//! half-way is finished by running it again. It is the database owner's work: the rows keep the
//! states they have (history), which the triggers of [`super::roles`] allow the owner alone. An
//! imported batch that is not finished waits for a checker's approval before a sender continues it,
//! like any other.
//!
//! **The same file stored on both sides.** A batch id is taken from the file's bytes, so a maker
//! who stored the file in the team's database before the import has a batch of the same id. When
//! the laptop sent rows of it and the team's copy sent none, the team's copy is replaced by the
//! laptop's (what was paid is what the team must remember: a copy that forgets it lets a corrected
//! file through the repeat holds); when both sent rows, nothing of that batch is imported and the
//! import says so: a person compares the gateway's statement with both (`conflicts`).

use crate::journal::store::Value;
use crate::journal::{Journal, JournalError, Result};
use crate::vals;

/// What an import did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Imported {
    pub batches: u64,
    pub rows: u64,
    pub records: u64,
    /// Batches the database already had (left as they are).
    pub skipped: u64,
    /// Batches the team had stored but not sent, replaced by the laptop's copy that sent rows.
    pub replaced: Vec<String>,
    /// Batches both journals sent rows of: not imported, for a person.
    pub conflicts: Vec<String>,
}

/// What the database holds of a batch the laptop's journal also has.
enum Existing {
    /// Nothing to import: the same batch imported before, or the laptop sent nothing of it.
    Keep,
    /// The team stored the same file and sent nothing of it; the laptop did.
    UnsentCopy,
    /// Both sent rows of it.
    BothSent,
}

fn sent_any(j: &Journal, batch: &str) -> Result<bool> {
    Ok(!j.q("SELECT 1 AS x FROM rows WHERE batch_id = $1 AND attempts > 0 LIMIT 1", &vals![batch])?.is_empty())
}

fn existing(from: &Journal, to: &Journal, batch: &str) -> Result<Existing> {
    if !sent_any(from, batch)? {
        return Ok(Existing::Keep);
    }
    // Imported before: the database's log starts with the laptop's first record.
    let mut first_hash = None;
    from.each_evidence_line(batch, |_, line| {
        first_hash = Some(crate::audit::line_hash(line));
        Ok(false)
    })?;
    let theirs =
        crate::journal::store::first(to.q("SELECT hash FROM evidence WHERE batch_id = $1 AND n = 1", &vals![batch])?)
            .map(|r| r.get::<String>("hash"))
            .transpose()?;
    if first_hash.is_some() && theirs == first_hash {
        return Ok(Existing::Keep);
    }
    Ok(if sent_any(to, batch)? { Existing::BothSent } else { Existing::UnsentCopy })
}

const BATCH_COLUMNS: &str = "id, file_sha256, generation, file_path, encoding, delimiter, header, created_at, gateway, settings,
    confirmed_at, finished_at, result_path, total_rows, valid_rows, valid_paise, rows_hash, cancelled_at, audit_n, audit_head";
const ROW_COLUMNS: &str = "batch_id, seq, line, raw, name, account, ifsc, amount_paise, mode, remarks, payee_list_id,
    external_ref, state, attempts, gateway_ref, code, message, utr, submitted_at, completed_at, updated_at, sent_at, payee,
    payee_id, order_key, obligation, confirmed";

/// `$1, $2, ... $n`.
fn placeholders(n: usize) -> String {
    (1..=n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

fn values(r: &crate::journal::store::Row, n: usize) -> Result<Vec<Value>> {
    (0..n).map(|i| r.at::<Value>(i).map_err(Into::into)).collect()
}

impl crate::journal::store::FromValue for Value {
    fn from_value(v: &Value) -> std::result::Result<Value, String> {
        Ok(v.clone())
    }
}

/// Copies everything of `from` (a SQLite journal) into `to` (the team's database).
pub fn import(from: &Journal, to: &Journal) -> Result<Imported> {
    if !to.place().is_team() || from.place().is_team() {
        return Err(JournalError::Refused("import copies a SQLite journal into a team database".into()));
    }
    let mut done = Imported::default();
    let batch_cols = BATCH_COLUMNS.split(',').count();
    let row_cols = ROW_COLUMNS.split(',').count();
    for b in from.q(&format!("SELECT {BATCH_COLUMNS} FROM batches ORDER BY created_at, id"), &[])? {
        let id: String = b.get("id")?;
        let exists = !to.q("SELECT 1 AS x FROM batches WHERE id = $1", &vals![&id])?.is_empty();
        let replace = match exists.then(|| existing(from, to, &id)).transpose()? {
            None => false,
            Some(Existing::Keep) => {
                done.skipped += 1;
                continue;
            }
            Some(Existing::BothSent) => {
                done.conflicts.push(id);
                continue;
            }
            Some(Existing::UnsentCopy) => true,
        };
        let anchor: u64 = b.get("audit_n")?;
        to.atomic(|| {
            if replace {
                // In the same transaction: the team's unsent copy goes, the laptop's comes. Locked
                // first, and checked again under the lock: a sender that claimed a row meanwhile
                // makes it a conflict.
                to.x("SELECT 1 AS x FROM batches WHERE id = $1 FOR UPDATE", &vals![&id])?;
                if sent_any(to, &id)? {
                    return Err(JournalError::Refused(format!(
                        "batch {id} is being sent from the team's database: both journals sent rows of it; compare the gateway's statement with both"
                    )));
                }
                for table in ["approvals", "leases", "evidence", "exports", "actions", "rows", "batches"] {
                    let key = if table == "batches" { "id" } else { "batch_id" };
                    to.x(&format!("DELETE FROM {table} WHERE {key} = $1"), &vals![&id])?;
                }
            }
            to.x(
                &format!("INSERT INTO batches ({BATCH_COLUMNS}) VALUES ({})", placeholders(batch_cols)),
                &values(&b, batch_cols)?,
            )?;
            let mut after = 0u64;
            loop {
                let page = from.q(
                    &format!("SELECT {ROW_COLUMNS} FROM rows WHERE batch_id = $1 AND seq > $2 ORDER BY seq LIMIT 4096"),
                    &vals![&id, after],
                )?;
                let Some(last) = page.last() else { break };
                after = last.get("seq")?;
                let params = page.iter().map(|r| values(r, row_cols)).collect::<Result<Vec<_>>>()?;
                to.db().execute_many(
                    &format!("INSERT INTO rows ({ROW_COLUMNS}) VALUES ({})", placeholders(row_cols)),
                    &params,
                )?;
                done.rows += page.len() as u64;
            }
            for table in [
                "actions (batch_id, at, operator, action, lines, reason, detail)",
                "exports (batch_id, at, operator, file, rows, lines)",
            ] {
                let (name, cols) = table.split_once(' ').unwrap_or((table, ""));
                let cols = cols.trim_matches(|c| c == '(' || c == ')');
                let n = cols.split(',').count();
                let rows =
                    from.q(&format!("SELECT {cols} FROM {name} WHERE batch_id = $1 ORDER BY id"), &vals![&id])?;
                let params = rows.iter().map(|r| values(r, n)).collect::<Result<Vec<_>>>()?;
                to.db().execute_many(&format!("INSERT INTO {name} ({cols}) VALUES ({})", placeholders(n)), &params)?;
            }
            // The evidence log's committed records, as they are (their chain and the anchor agree).
            let mut lines = Vec::new();
            from.each_evidence_line(&id, |pos, line| {
                if pos > anchor {
                    return Ok(false);
                }
                let text = String::from_utf8_lossy(line).into_owned();
                lines.push(vals![&id, pos, text, crate::audit::line_hash(line)]);
                if lines.len() >= 4096 {
                    to.db().execute_many(
                        "INSERT INTO evidence (batch_id, n, line, hash) VALUES ($1, $2, $3, $4)",
                        &lines,
                    )?;
                    done.records += lines.len() as u64;
                    lines.clear();
                }
                Ok(true)
            })?;
            to.db().execute_many("INSERT INTO evidence (batch_id, n, line, hash) VALUES ($1, $2, $3, $4)", &lines)?;
            done.records += lines.len() as u64;
            Ok(())
        })?;
        done.batches += 1;
        if replace {
            done.replaced.push(id);
        }
    }
    Ok(done)
}
