//! Retry lineage (SPEC 3.2b): a retry file pays again what a batch owed and did not pay, and the
//! *obligation* (this payee, this line of that batch) outlives the payout that failed. Every row
//! carries its obligation (`rows.obligation`: `<batch>:<line>` of the original line); `payrun
//! failed` writes it as `retry_of` and records each export here; `run` of such a file links its
//! rows to it, and [`super::holds`] holds a row whose obligation another row pays or may pay
//! (`ALREADY_RETRIED`).
//!
//! This module owns what the journal records about exports and what it answers about an
//! obligation paid again; a row's [`super::Repaid`] is read with the row itself.

use super::{Journal, PAYS_OBLIGATION, Result, now};
use crate::vals;

/// What an export of a batch's unpaid rows holds back: rows whose obligation another batch pays
/// (or may), per paying batch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PaidAgain {
    /// (paying batch, rows of this batch it pays again), in batch order.
    pub by_batch: Vec<(String, u64)>,
}

impl PaidAgain {
    pub fn total(&self) -> u64 {
        self.by_batch.iter().map(|(_, n)| n).sum()
    }

    pub(crate) fn add(&mut self, batch: &str) {
        match self.by_batch.iter_mut().find(|(b, _)| b == batch) {
            Some((_, n)) => *n += 1,
            None => self.by_batch.push((batch.to_string(), 1)),
        }
    }
}

impl Journal {
    /// Records an export of `batch`'s unpaid rows (`payrun failed`): the file, the operator, the
    /// time and the lines, in the journal and in the batch's evidence log.
    pub fn record_export(&self, batch: &str, operator: &str, file: &str, lines: &[u64]) -> Result<()> {
        let text = lines.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
        self.atomic(|| {
            self.x(
                "INSERT INTO exports (batch_id, at, operator, file, rows, lines) VALUES ($1, $2, $3, $4, $5, $6)",
                &vals![batch, now(), operator, file, lines.len() as u64, &text],
            )?;
            self.record_action(
                batch,
                operator,
                "failed",
                &text,
                "",
                &format!("{} rows exported to {file}", lines.len()),
            )
        })
    }

    /// The obligation a `retry_of` cell names (SPEC 3.2b: "for a row of a retry batch, the
    /// original's"): when the journal has the line it names, that line's own obligation, so a
    /// `retry_of` pointing at a retry row (an operator relinking a file by hand, or an export
    /// written before the link was followed) still names the original line; else the cell as it
    /// stands (a line of a journal this one never saw). One probe of the line index.
    pub fn obligation_named(&self, retry_of: &str) -> Result<String> {
        let cell = retry_of.trim().to_ascii_lowercase();
        let Some((batch, line)) = cell.split_once(':') else { return Ok(cell) };
        let Ok(line) = line.parse::<u64>() else { return Ok(cell) };
        let found = super::store::first(
            self.q("SELECT obligation FROM rows WHERE batch_id = $1 AND line = $2", &vals![batch, line])?,
        );
        Ok(match found.map(|r| r.get::<String>("obligation")).transpose()? {
            Some(o) if !o.is_empty() => o,
            _ => cell,
        })
    }

    /// How many FAILED and how many INVALID rows of `batch` another batch pays again, or may:
    /// they need nobody any more.
    pub fn repaid_counts(&self, batch: &str) -> Result<(u64, u64)> {
        let sql = format!(
            "SELECT n.state, COUNT(*) AS k FROM rows n WHERE n.batch_id = $1 AND n.state IN ('failed', 'invalid')
               AND EXISTS (SELECT 1 FROM rows o WHERE o.obligation = n.obligation AND o.batch_id <> n.batch_id
                           AND o.state IN {PAYS_OBLIGATION})
             GROUP BY n.state"
        );
        let (mut failed, mut invalid) = (0, 0);
        for r in self.q(&sql, &vals![batch])? {
            match r.get::<String>("state")?.as_str() {
                "failed" => failed = r.get("k")?,
                _ => invalid = r.get("k")?,
            }
        }
        Ok((failed, invalid))
    }
}
