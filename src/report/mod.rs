//! Report: the result file of SPEC section 5 (CSV, or an Excel workbook for `--out X.xlsx`), the
//! retry file of `payrun failed`, and the summary (terminal table and `--json`).
//!
//! This module owns what accounting receives. It reads the journal and writes files; it never
//! changes a row's state and never talks to the gateway. The result file lists every input row in
//! input order (input columns first, then payrun's), is written to a temporary file and renamed, and
//! makes formula-like cells inert. The summary's control check compares the totals taken when the
//! file was read with the sum over the rows' current statuses, so a row lost or changed on the way
//! shows as a broken check. It never writes a secret: nothing it reads holds one.

pub mod attention;
pub mod cells;
pub mod terminal;
pub mod xlsx;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Serialize;

pub use cells::inert;

use crate::files::AtomicFile;
use crate::input::Mode;
use crate::journal::{Batch, Counts, Journal, Row, RowState};
use crate::money::Tally;

/// Columns payrun appends to the input's (SPEC section 5).
pub const RESULT_COLUMNS: [&str; 10] = [
    "external_ref",
    "amount_inr",
    "status",
    "code",
    "message",
    "gateway_ref",
    "utr",
    "submitted_at",
    "completed_at",
    "attempts",
];

/// The result-file statuses, in the order summaries show them.
pub const STATUSES: [&str; 7] = ["SUCCESS", "FAILED", "PENDING", "HELD", "CANCELLED", "NOT_SENT", "INVALID"];

/// The column `payrun failed` adds to the input's: the row's reason, `CODE: message`.
pub const LAST_ERROR: &str = "last_error";

/// The operator's time zone for times in the workbook, unless set by [`set_time_zone`].
pub const DEFAULT_TIME_ZONE: chrono_tz::Tz = chrono_tz::Asia::Kolkata;

static TIME_ZONE: std::sync::OnceLock<chrono_tz::Tz> = std::sync::OnceLock::new();

/// Sets the operator's time zone (`[report] timezone` of `payrun.toml`) for this process. The
/// command line calls it once at start; later calls are ignored.
pub fn set_time_zone(tz: chrono_tz::Tz) {
    let _ = TIME_ZONE.set(tz);
}

/// The operator's time zone: the configured one, else [`DEFAULT_TIME_ZONE`].
pub fn time_zone() -> chrono_tz::Tz {
    TIME_ZONE.get().copied().unwrap_or(DEFAULT_TIME_ZONE)
}

/// A time from the journal (RFC 3339) in the operator's time zone, to the minute, with the zone
/// named: `2026-12-06 04:30 IST`. Every time payrun prints goes through this (or
/// [`local_time_secs`], [`local_date`]); files keep RFC 3339 (SPEC 5). Text that is not a time is
/// returned as it is.
pub fn local_time(t: &str) -> String {
    local_format(t, "%Y-%m-%d %H:%M %Z")
}

/// [`local_time`] to the second (the evidence log's story).
pub fn local_time_secs(t: &str) -> String {
    local_format(t, "%Y-%m-%d %H:%M:%S %Z")
}

/// The date of a journal time in the operator's time zone, with the zone named: `2026-12-06 IST`
/// (a UTC date is another day for five and a half hours of every Indian morning).
pub fn local_date(t: &str) -> String {
    local_format(t, "%Y-%m-%d %Z")
}

/// A moment in the operator's time zone, with the zone named: the time of day (`05:52 IST`) when
/// it is today there, else with its date (`2026-12-07 05:52 IST`). For times payrun announces
/// ahead ("gives up at").
pub fn local_clock(t: chrono::DateTime<chrono::Utc>) -> String {
    let tz = time_zone();
    let local = t.with_timezone(&tz);
    if local.date_naive() == chrono::Utc::now().with_timezone(&tz).date_naive() {
        local.format("%H:%M %Z").to_string()
    } else {
        local.format("%Y-%m-%d %H:%M %Z").to_string()
    }
}

fn local_format(t: &str, fmt: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(t)
        .map(|d| d.with_timezone(&time_zone()).format(fmt).to_string())
        .unwrap_or_else(|_| t.to_string())
}

/// `n` rows in words: `no rows`, `1 row`, `3 rows` (any noun with a plain `s` plural).
pub fn plural(n: u64, noun: &str) -> String {
    plural_of(n, noun, &format!("{noun}s"))
}

/// [`plural`] for a noun whose plural is not a plain `s`: `no status inquiries`, `1 status
/// inquiry`, `2 status inquiries`.
pub fn plural_of(n: u64, one: &str, many: &str) -> String {
    match n {
        0 => format!("no {many}"),
        1 => format!("1 {one}"),
        _ => format!("{n} {many}"),
    }
}

/// Whether `path` asks for an Excel workbook (`.xlsx`, any case).
pub fn is_xlsx(path: &Path) -> bool {
    path.extension().is_some_and(|e| e.eq_ignore_ascii_case("xlsx"))
}

/// The default result path: `<state>/results/<file stem>-<batch id>.csv`.
pub fn default_result_path(state: &Path, batch: &Batch) -> PathBuf {
    state.join("results").join(format!("{}-{}.csv", batch.file_stem(), batch.id))
}

/// The code shown for a row: its own, or what its state implies.
pub fn code_of(row: &Row) -> String {
    let s = &row.status;
    match s.state() {
        RowState::InDoubt | RowState::Sending => "IN_DOUBT".into(),
        // Accepted by the gateway, final bank status not asked yet: not SU0000, which reads as paid.
        RowState::Accepted => "ACCEPTED".into(),
        _ => s.code.clone().unwrap_or_default(),
    }
}

/// Writes the result file of `batch` to `path` (atomically, owner-only): an Excel workbook when
/// the path ends in `.xlsx` (any case, see [`xlsx`]), else CSV. Commands the workbook shows name
/// the journal's directory with `--state`; [`write_result_with`] leaves it out for the default.
/// Returns the rows written.
pub fn write_result(journal: &Journal, batch: &Batch, path: &Path) -> anyhow::Result<u64> {
    let state = crate::batch::StateDir::resolve(Some(journal.dir().to_path_buf()))
        .unwrap_or(crate::batch::StateDir { path: journal.dir().to_path_buf(), is_default: false });
    write_result_with(journal, batch, path, &state.arg())
}

/// [`write_result`], with `state_arg` (` --state DIR`, or empty when the state directory is the
/// default) for the commands the workbook shows.
pub fn write_result_with(journal: &Journal, batch: &Batch, path: &Path, state_arg: &str) -> anyhow::Result<u64> {
    if is_xlsx(path) {
        xlsx::write(journal, batch, path, time_zone(), state_arg)
    } else {
        write_csv(journal, batch, path)
    }
}

/// The row's amount for the result: plain decimal with 2 places, empty when it has none.
pub fn amount_text(row: &Row) -> String {
    row.amount.map(|a| a.to_string()).unwrap_or_default()
}

/// The row's `attempts` cell: empty for a row that was never valid.
fn attempts_text(row: &Row) -> String {
    if row.status.state() == RowState::Invalid { String::new() } else { row.status.attempts.to_string() }
}

/// The message cell: the row's message (for an unpaid row another batch pays again, that first:
/// SPEC 3.2b), and any cells beyond the header (never silently dropped).
pub(crate) fn message_of(row: &Row, cells: &[String], width: usize) -> String {
    let mut message = row.status.message.clone().unwrap_or_default();
    if let Some(again) = &row.repaid {
        message = if message.is_empty() { again.describe() } else { format!("{}; here: {message}", again.describe()) };
    }
    if cells.len() > width {
        message.push_str(&format!(" (cells beyond the header: {})", cells[width..].join(" | ")));
    }
    message
}

/// The CSV result file.
fn write_csv(journal: &Journal, batch: &Batch, path: &Path) -> anyhow::Result<u64> {
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
        let s = &row.status;
        for cell in [
            row.external_ref.clone().unwrap_or_default(),
            amount_text(row),
            s.state().result_status().to_string(),
            code_of(row),
            message_of(row, &cells, width),
            s.gateway_ref.clone().unwrap_or_default(),
            s.utr.clone().unwrap_or_default(),
            s.submitted_at.clone().unwrap_or_default(),
            s.completed_at.clone().unwrap_or_default(),
            attempts_text(row),
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

/// The column `payrun failed` adds beside `last_error`: the original obligation a row pays
/// (`<batch id>:<line>`, SPEC 3.2b), which `run` links the retry row to.
pub const RETRY_OF: &str = "retry_of";

/// What [`write_failed`] wrote.
#[derive(Clone, Debug, Default)]
pub struct Exported {
    /// Lines of the batch written.
    pub lines: Vec<u64>,
    /// Own references given a `-R` suffix.
    pub renamed: u64,
    /// Rows left out because another batch pays their obligation again, or may.
    pub paid_again: crate::journal::lineage::PaidAgain,
}

/// Writes the rows of `batch` proven unpaid in input format (original header and cells), ready to
/// be corrected and run as a new file: FAILED rows, and INVALID rows (never sent) unless
/// `only_failed`. Each row's reason goes in a trailing `last_error` column (`CODE: message`) and its
/// original obligation in `retry_of` (SPEC 3.2b: for a row of a retry batch, the original's); a file
/// that already has those columns, a retry of a retry, gets them replaced. Never PENDING, HELD,
/// NOT_SENT, CANCELLED or in-doubt rows, whose money may still move, nor a row whose obligation
/// another batch pays again or may. A row's own reference that the gateway has already seen gets a
/// `-R1` suffix (`-R2` if it had `-R1`, ...), since sending it again as it was would be refused as
/// a duplicate (TE0005).
pub fn write_failed(journal: &Journal, batch: &Batch, path: &Path, only_failed: bool) -> anyhow::Result<Exported> {
    let file = AtomicFile::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut w = csv::WriterBuilder::new().flexible(true).from_writer(file);
    let width = batch.header.len();
    let mut header = batch.header.clone();
    let mut column = |name: &str| match header.iter().position(|h| h.trim().eq_ignore_ascii_case(name)) {
        Some(i) => i,
        None => {
            header.push(name.to_string());
            header.len() - 1
        }
    };
    let error_col = column(LAST_ERROR);
    let retry_col = column(RETRY_OF);
    w.write_record(&header)?;
    let ref_col =
        crate::input::Columns::map(&batch.header, false).ok().and_then(|c| c.of(crate::input::Field::Reference));
    let mut out = Exported::default();
    journal.for_each_row(&batch.id, |row, mut cells| {
        let st = row.status.state();
        if !(st == RowState::Failed || (!only_failed && st == RowState::Invalid)) {
            return Ok(());
        }
        if let Some(again) = &row.repaid {
            out.paid_again.add(&again.batch);
            return Ok(());
        }
        if let (Some(col), RowState::Failed) = (ref_col, st) {
            if let Some(cell) = cells.get_mut(col) {
                // The gateway has seen this reference (our failed payout, or someone else's for
                // REF_CONFLICT): the corrected row needs a new one.
                if !cell.trim().is_empty() {
                    *cell = next_retry_reference(cell.trim());
                    out.renamed += 1;
                }
            }
        }
        let code = code_of(row);
        let message = row.status.message.as_deref().map(str::trim).unwrap_or("");
        let last_error = match (code.is_empty(), message.is_empty()) {
            (false, false) => format!("{code}: {message}"),
            (false, true) => code,
            (true, _) => message.to_string(),
        };
        // A short row (trailing cells left out) is padded so the reasons land under their
        // headings; a row with cells beyond the header (only an INVALID one) keeps them in its
        // last_error, never silently dropped.
        if cells.len() > width {
            let beyond = cells.split_off(width);
            let last_error = format!("{last_error} (cells beyond the header: {})", beyond.join(" | "));
            cells.resize(header.len(), String::new());
            cells[error_col] = inert(&last_error).into_owned();
        } else {
            cells.resize(header.len(), String::new());
            cells[error_col] = inert(&last_error).into_owned();
        }
        cells[retry_col] = row.obligation.clone();
        w.write_record(&cells)?;
        out.lines.push(row.line);
        Ok(())
    })?;
    let file = w.into_inner().map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    file.commit()?;
    Ok(out)
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
    /// Rows that need someone (FAILED, HELD, PENDING), in input order: the first
    /// [`ATTENTION_LISTED`] of them, once [`Summary::with_attention`] has read them.
    pub needs_attention: Vec<attention::AttentionRow>,
    /// How many rows need someone in all.
    pub needs_attention_total: u64,
    /// FAILED and INVALID rows whose obligation another batch pays again, or may (SPEC 3.2b):
    /// counted under their status, not among the rows that need someone.
    pub repaid: (u64, u64),
    /// ` --state DIR` for the commands the summary shows, empty for the default state directory.
    #[serde(skip)]
    pub state_arg: String,
}

/// How many rows needing someone the summary lists (`--json`; the terminal shows fewer).
pub const ATTENTION_LISTED: usize = 1000;

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
        let needs_attention_total =
            attention::ATTENTION_STATUSES.iter().map(|s| status_totals.get(*s).map_or(0, |t| t.count)).sum();
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
            needs_attention: Vec::new(),
            needs_attention_total,
            repaid: (0, 0),
            state_arg: String::new(),
        }
    }

    /// The summary with the rows that need someone read from the journal, their commands naming
    /// `state_arg` (` --state DIR`, or empty for the default state directory).
    pub fn with_attention(mut self, journal: &Journal, batch: &Batch, state_arg: &str) -> anyhow::Result<Summary> {
        self.needs_attention = attention::collect(journal, batch, state_arg, ATTENTION_LISTED)?;
        // Unpaid rows another batch pays again need nobody (SPEC 3.2b).
        self.repaid = journal.repaid_counts(&batch.id)?;
        self.needs_attention_total = self.needs_attention_total.saturating_sub(self.repaid.0 + self.repaid.1);
        self.state_arg = state_arg.to_string();
        Ok(self)
    }

    pub fn count(&self, status: &str) -> u64 {
        self.status_totals.get(status).map(|t| t.count).unwrap_or(0)
    }

    /// Rows of `status` that need someone: all of them, less the FAILED and INVALID rows another
    /// batch pays again (SPEC 3.2b).
    pub fn attention_count(&self, status: &str) -> u64 {
        let repaid = match status {
            "FAILED" => self.repaid.0,
            "INVALID" => self.repaid.1,
            _ => 0,
        };
        self.count(status).saturating_sub(repaid)
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
