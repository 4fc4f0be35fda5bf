//! Report: the result file of SPEC section 5 and the summary (terminal table and `--json`).
//!
//! This module owns what accounting receives. It reads the journal and writes files; it never
//! changes a row's state and never talks to the gateway. The result file lists every input row in
//! input order (input columns first, then payrun's), is written to a temporary file and renamed, and
//! makes formula-like cells inert. The summary's control check compares the totals taken when the
//! file was read with the sum over the rows' current statuses, so a row lost or changed on the way
//! shows as a broken check.

pub mod cells;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Serialize;

pub use cells::inert;

use crate::files::AtomicFile;
use crate::input::Mode;
use crate::journal::{Batch, Counts, Journal, Row, RowState};
use crate::money::Tally;

/// Columns payrun appends to the input's (SPEC section 5).
pub const RESULT_COLUMNS: [&str; 9] =
    ["external_ref", "status", "code", "message", "gateway_ref", "utr", "submitted_at", "completed_at", "attempts"];

/// The result-file statuses, in the order summaries show them.
pub const STATUSES: [&str; 7] = ["SUCCESS", "FAILED", "PENDING", "HELD", "CANCELLED", "NOT_SENT", "INVALID"];

/// The default result path: `<state>/results/<file stem>-<batch id>.csv`.
pub fn default_result_path(state: &Path, batch: &Batch) -> PathBuf {
    state.join("results").join(format!("{}-{}.csv", batch.file_stem(), batch.id))
}

/// The code shown for a row: its own, or what its state implies.
fn code_of(row: &Row) -> String {
    let s = &row.status;
    match s.state() {
        RowState::InDoubt | RowState::Sending => "IN_DOUBT".into(),
        // Accepted by the gateway, final bank status not asked yet: not SU0000, which reads as paid.
        RowState::Accepted => "ACCEPTED".into(),
        _ => s.code.clone().unwrap_or_default(),
    }
}

/// Writes the result file of `batch` to `path` (atomically, owner-only). Returns the rows written.
pub fn write_result(journal: &Journal, batch: &Batch, path: &Path) -> anyhow::Result<u64> {
    let file = AtomicFile::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut w = csv::WriterBuilder::new().flexible(false).from_writer(file);
    let width = batch.header.len();
    let mut header: Vec<&str> = batch.header.iter().map(String::as_str).collect();
    header.extend(RESULT_COLUMNS);
    w.write_record(&header)?;
    let mut n = 0u64;
    journal.for_each_row(&batch.id, |row, cells| {
        let mut out: Vec<String> = Vec::with_capacity(width + RESULT_COLUMNS.len());
        for i in 0..width {
            out.push(inert(cells.get(i).map(String::as_str).unwrap_or("")).into_owned());
        }
        let mut message = row.status.message.clone().unwrap_or_default();
        if cells.len() > width {
            message.push_str(&format!(" (cells beyond the header: {})", cells[width..].join(" | ")));
        }
        let s = &row.status;
        for cell in [
            row.external_ref.clone().unwrap_or_default(),
            s.state().result_status().to_string(),
            code_of(row),
            message,
            s.gateway_ref.clone().unwrap_or_default(),
            s.utr.clone().unwrap_or_default(),
            s.submitted_at.clone().unwrap_or_default(),
            s.completed_at.clone().unwrap_or_default(),
            if s.state() == RowState::Invalid { String::new() } else { s.attempts.to_string() },
        ] {
            out.push(inert(&cell).into_owned());
        }
        w.write_record(&out)?;
        n += 1;
        Ok(())
    })?;
    let file = w.into_inner().map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    file.commit().with_context(|| format!("cannot write {}", path.display()))?;
    Ok(n)
}

/// Writes the FAILED rows of `batch` in input format (original header and cells), ready to be
/// corrected and run as a new file. A row's own reference that the gateway has already seen gets a
/// `-R1` suffix (`-R2` if it had `-R1`, ...), since sending it again as it was would be refused as
/// a duplicate (TE0005). Returns (rows written, references changed).
pub fn write_failed(
    journal: &Journal,
    batch: &Batch,
    path: &Path,
    include_invalid: bool,
) -> anyhow::Result<(u64, u64)> {
    let file = AtomicFile::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut w = csv::WriterBuilder::new().flexible(true).from_writer(file);
    w.write_record(&batch.header)?;
    let ref_col =
        crate::input::Columns::map(&batch.header, false).ok().and_then(|c| c.of(crate::input::Field::Reference));
    let (mut n, mut renamed) = (0u64, 0u64);
    journal.for_each_row(&batch.id, |row, mut cells| {
        let st = row.status.state();
        if !(st == RowState::Failed || (include_invalid && st == RowState::Invalid)) {
            return Ok(());
        }
        if let (Some(col), RowState::Failed) = (ref_col, st) {
            if let Some(cell) = cells.get_mut(col) {
                // The gateway has seen this reference (our failed payout, or someone else's for
                // REF_CONFLICT): the corrected row needs a new one.
                if !cell.trim().is_empty() {
                    *cell = next_retry_reference(cell.trim());
                    renamed += 1;
                }
            }
        }
        w.write_record(&cells)?;
        n += 1;
        Ok(())
    })?;
    let file = w.into_inner().map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    file.commit()?;
    Ok((n, renamed))
}

/// `INV-7` → `INV-7-R1`, `INV-7-R1` → `INV-7-R2`; kept within 35 characters.
pub fn next_retry_reference(r: &str) -> String {
    let (base, n) = match r.rsplit_once("-R") {
        Some((b, k)) if !k.is_empty() && k.bytes().all(|c| c.is_ascii_digit()) => {
            (b, k.parse::<u32>().unwrap_or(0) + 1)
        }
        _ => (r, 1),
    };
    let suffix = format!("-R{n}");
    let keep = 35usize.saturating_sub(suffix.len()).min(base.len());
    format!("{}{suffix}", &base[..keep])
}

/// Counts and amounts by result status and mode, with the control check.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub batch: String,
    pub file: String,
    pub gateway: String,
    pub result: Option<String>,
    pub rows: u64,
    /// Status → mode (or "-" for rows without one) → tally.
    pub statuses: BTreeMap<String, BTreeMap<String, Tally>>,
    pub status_totals: BTreeMap<String, Tally>,
    pub mode_totals: BTreeMap<String, Tally>,
    pub control: Control,
}

/// The control check: the valid rows' total when the file was read, against the sum of the
/// statuses those rows have now; and every row accounted for.
#[derive(Clone, Debug, Serialize)]
pub struct Control {
    pub file_rows: u64,
    pub file_valid: Tally,
    pub statuses_valid: Tally,
    pub rows_accounted: u64,
    pub ok: bool,
}

impl Summary {
    pub fn new(batch: &Batch, counts: &Counts, result: Option<&Path>) -> Summary {
        let mut statuses: BTreeMap<String, BTreeMap<String, Tally>> = BTreeMap::new();
        let mut status_totals: BTreeMap<String, Tally> =
            STATUSES.iter().map(|s| (s.to_string(), Tally::default())).collect();
        let mut mode_totals: BTreeMap<String, Tally> =
            Mode::ALL.iter().map(|m| (m.as_str().to_string(), Tally::default())).collect();
        let mut statuses_valid = Tally::default();
        let mut rows = 0;
        for (state, mode, tally) in &counts.cells {
            let status = state.result_status().to_string();
            let mode_name = mode.map(|m| m.as_str().to_string()).unwrap_or_else(|| "-".into());
            *statuses.entry(status.clone()).or_default().entry(mode_name.clone()).or_default() += *tally;
            *status_totals.entry(status).or_default() += *tally;
            if *state != RowState::Invalid {
                *mode_totals.entry(mode_name).or_default() += *tally;
                statuses_valid += *tally;
            }
            rows += tally.count;
        }
        let ok = statuses_valid == batch.valid && rows == batch.total_rows;
        Summary {
            batch: batch.id.clone(),
            file: batch.file_path.clone(),
            gateway: batch.gateway.clone(),
            result: result.map(|p| p.display().to_string()),
            rows,
            statuses,
            status_totals,
            mode_totals,
            control: Control {
                file_rows: batch.total_rows,
                file_valid: batch.valid,
                statuses_valid,
                rows_accounted: rows,
                ok,
            },
        }
    }

    pub fn count(&self, status: &str) -> u64 {
        self.status_totals.get(status).map(|t| t.count).unwrap_or(0)
    }

    /// The terminal table.
    pub fn print(&self, out: &mut dyn Write) -> std::io::Result<()> {
        writeln!(out, "batch {}  {}  (gateway: {})", self.batch, self.file, self.gateway)?;
        write!(out, "  {:<9} {:>7} {:>20}", "status", "rows", "amount (₹)")?;
        for m in Mode::ALL {
            write!(out, " {:>20}", format!("{} (₹)", m.as_str()))?;
        }
        writeln!(out)?;
        for status in STATUSES {
            let t = self.status_totals.get(status).copied().unwrap_or_default();
            write!(out, "  {:<9} {:>7} {:>20}", status, t.count, t.amount.to_indian())?;
            for m in Mode::ALL {
                let a = self.statuses.get(status).and_then(|by| by.get(m.as_str())).copied().unwrap_or_default();
                write!(
                    out,
                    " {:>20}",
                    if a.count == 0 { "-".to_string() } else { format!("{} ({})", a.amount.to_indian(), a.count) }
                )?;
            }
            writeln!(out)?;
        }
        let c = &self.control;
        writeln!(
            out,
            "  control: SUCCESS + FAILED + PENDING + NOT_SENT = {} rows, ₹{}; file's valid rows = {} rows, ₹{}; rows accounted {}/{}: {}",
            c.statuses_valid.count,
            c.statuses_valid.amount.to_indian(),
            c.file_valid.count,
            c.file_valid.amount.to_indian(),
            c.rows_accounted,
            c.file_rows,
            if c.ok { "OK" } else { "MISMATCH" }
        )?;
        if let Some(r) = &self.result {
            writeln!(out, "  result: {r}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::next_retry_reference;

    #[test]
    fn retry_references() {
        assert_eq!(next_retry_reference("INV-7"), "INV-7-R1");
        assert_eq!(next_retry_reference("INV-7-R1"), "INV-7-R2");
        assert_eq!(next_retry_reference("INV-7-R9"), "INV-7-R10");
        assert_eq!(next_retry_reference("A-RB"), "A-RB-R1");
        let long = "X".repeat(35);
        let r = next_retry_reference(&long);
        assert_eq!(r.len(), 35);
        assert!(r.ends_with("-R1"));
    }
}
