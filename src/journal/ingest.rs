//! Storing a file as a batch: every row of the scanner goes into the journal in one transaction,
//! valid rows as `ready` with their reference, invalid rows as `invalid` with their problems.
//!
//! A file with an invalid row is not stored at all unless `skip_invalid` (SPEC section 2): then
//! nothing can be sent from it by accident later.

use crate::input::rules::reference_ok;
use crate::input::{Code, Field, InputError, Problem, Scanner};
use crate::money::{Amount, Tally};

use super::{Batch, BatchSettings, Journal, JournalError, NewRow, batch_id, now};

/// What became of a file.
#[derive(Debug)]
pub enum Ingested {
    /// Stored as this batch.
    Stored(Batch),
    /// Not stored: rows with errors and no `skip_invalid`.
    HasErrors { invalid_rows: u64, total: u64, valid: Tally },
    /// Not stored: no data rows, or no valid row.
    NothingToSend { total: u64 },
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error(transparent)]
    Journal(#[from] JournalError),
}

/// Reads every row of `scanner` into a new batch of generation `generation`. `on_problem` sees each
/// row problem as it is found (to print them).
pub fn ingest(
    journal: &Journal,
    scanner: &mut Scanner,
    generation: u32,
    gateway: &str,
    settings: BatchSettings,
    skip_invalid: bool,
    mut on_problem: impl FnMut(&Problem),
) -> Result<Ingested, IngestError> {
    let sha = scanner.source().sniffed.sha256.ok_or_else(|| InputError::Io {
        path: scanner.source().path.clone(),
        source: std::io::Error::other("file was not hashed"),
    })?;
    let batch = Batch {
        id: batch_id(&sha, generation),
        file_sha256: hex::encode(sha),
        generation,
        file_path: scanner.source().path.display().to_string(),
        encoding: scanner.source().sniffed.encoding.label().to_string(),
        delimiter: scanner.source().delimiter_label().to_string(),
        header: scanner.columns().header.clone(),
        created_at: now(),
        gateway: gateway.to_string(),
        settings,
        confirmed_at: None,
        finished_at: None,
        result_path: None,
        total_rows: 0,
        valid: Tally::default(),
    };
    let amount_col = scanner.columns().of(Field::Amount);
    let ref_col = scanner.columns().of(Field::Reference);
    let mut store = journal.begin_batch(&batch)?;
    let mut invalid_rows = 0u64;
    while let Some(v) = scanner.next()? {
        v.problems.iter().for_each(&mut on_problem);
        if v.row.is_none() {
            invalid_rows += 1;
        }
        let cells: Vec<&str> = v.record.iter().collect();
        // An invalid row's amount still counts in the totals when that cell alone is readable.
        let amount = match (&v.row, amount_col) {
            (None, Some(c)) => Amount::parse_cell(crate::input::reader::trim(v.record.get(c))).ok(),
            _ => None,
        };
        // An invalid row keeps its own reference in the result when that cell alone is fine.
        let reference = match (&v.row, ref_col) {
            (None, Some(c)) if !v.problems.iter().any(|p| p.code == Code::BadRef) => {
                Some(crate::input::reader::trim(v.record.get(c))).filter(|r| reference_ok(r))
            }
            _ => None,
        };
        let seq = store.totals().0 + 1;
        store.add(NewRow {
            seq,
            line: v.record.line,
            cells: &cells,
            valid: v.row.as_ref(),
            problems: v.problems,
            amount,
            reference,
        })?;
    }
    let (total, valid) = store.totals();
    if total == 0 || valid.count == 0 {
        return Ok(Ingested::NothingToSend { total });
    }
    if invalid_rows > 0 && !skip_invalid {
        return Ok(Ingested::HasErrors { invalid_rows, total, valid });
    }
    store.commit()?;
    let stored =
        journal.batch(&batch.id)?.ok_or_else(|| JournalError::Corrupt("batch just stored is missing".into()))?;
    Ok(Ingested::Stored(stored))
}
