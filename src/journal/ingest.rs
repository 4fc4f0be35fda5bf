//! Storing a file as a batch: every row of the scanner goes into the journal in one transaction,
//! valid rows as `ready` with their reference, invalid rows as `invalid` with their problems.
//!
//! A file with an invalid row is not stored at all unless `skip_invalid` (SPEC section 2): then
//! nothing can be sent from it by accident later. Two checks need the journal, so they live here
//! rather than in the validator:
//!
//! - a file's own reference that an earlier batch already used is `BAD_REF`: the gateway would take
//!   it for that payout (TE0005, or worse, an answer about last month's payment to the same person);
//! - a file whose bytes differ from an earlier batch's but whose rows are the same (name, account,
//!   IFSC, amount, mode, remarks, reference: a re-saved spreadsheet) is not paid again unless the
//!   operator says so (`--new-batch`), unless that batch paid none of them (a retry file of rows
//!   it proved unpaid is a new payment);
//! - rows that repeat another batch's payment, or pay a payee id to a new account, are held in the
//!   same transaction that stores the batch ([`super::holds`]), so no stored batch ever has
//!   unchecked rows.

use sha2::{Digest, Sha256};

use crate::input::rules::reference_ok;
use crate::input::{Code, Field, InputError, Mode, Problem, RowView, Scanner, Severity};
use crate::money::{Amount, Tally};

use super::actions::{Approved, Selection};
use super::holds::{HoldReport, HoldRules};
use super::{Batch, BatchSettings, Journal, JournalError, NewRow, batch_id, now};

/// What became of a file.
#[derive(Debug)]
pub enum Ingested {
    /// Stored as this batch, with the rows it holds (and those `--allow-repeat` released).
    Stored { batch: Batch, holds: HoldReport, allowed: Option<Approved> },
    /// Not stored: rows with errors and no `skip_invalid`.
    HasErrors { invalid_rows: u64, total: u64, valid: Tally },
    /// Not stored: no data rows, or no valid row.
    NothingToSend { total: u64 },
    /// Not stored: the same rows as this earlier batch, in a file with other bytes.
    SameRowsAs(Batch),
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error(transparent)]
    Journal(#[from] JournalError),
}

/// How a file becomes a batch.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// 1 for a file's first batch; 2, 3, ... for repeat payments (`--new-batch`).
    pub generation: u32,
    /// `embedded` or the gateway's URL.
    pub gateway: String,
    pub settings: BatchSettings,
    /// Store a file with invalid rows (they are reported INVALID, the rest paid).
    pub skip_invalid: bool,
    /// Store it even when an earlier batch had the same rows (`--new-batch`).
    pub allow_same_rows: bool,
    /// The cross-batch rules (SPEC 3.2).
    pub holds: HoldRules,
    /// `--allow-repeat`: release every `REPEAT_PAYMENT` hold at once, recorded as this operator's.
    pub allow_repeat: Option<String>,
}

/// Feeds a valid row into the fingerprint of a file's payments.
fn fingerprint(h: &mut Sha256, v: &RowView<'_>) {
    for part in
        [v.name, &v.account, &v.ifsc, &v.amount.to_string(), v.mode.as_str(), &v.remarks, v.reference.unwrap_or("")]
    {
        h.update(part.as_bytes());
        h.update([0x1f]);
    }
    h.update([0x1e]);
}

/// Reads every row of `scanner` into a new batch. `on_problem` sees each row problem as it is found
/// (to print them).
pub fn ingest(
    journal: &Journal,
    scanner: &mut Scanner,
    opts: IngestOptions,
    mut on_problem: impl FnMut(&Problem),
) -> Result<Ingested, IngestError> {
    let sha = scanner.source().sniffed.sha256.ok_or_else(|| InputError::Io {
        path: scanner.source().path.clone(),
        source: std::io::Error::other("file was not hashed"),
    })?;
    let batch = Batch {
        id: batch_id(&sha, opts.generation),
        file_sha256: hex::encode(sha),
        generation: opts.generation,
        file_path: scanner.source().path.display().to_string(),
        encoding: scanner.source().sniffed.encoding.label().to_string(),
        delimiter: scanner.source().delimiter_label().to_string(),
        header: scanner.columns().header.clone(),
        created_at: now(),
        gateway: opts.gateway.clone(),
        settings: opts.settings.clone(),
        confirmed_at: None,
        finished_at: None,
        cancelled_at: None,
        result_path: None,
        total_rows: 0,
        valid: Tally::default(),
    };
    let amount_col = scanner.columns().of(Field::Amount);
    let mode_col = scanner.columns().of(Field::Mode);
    let ref_col = scanner.columns().of(Field::Reference);
    let retry_col = scanner.columns().of(Field::RetryOf);
    let ref_heading = scanner.columns().heading(Field::Reference);
    let mut store = journal.begin_batch(&batch)?;
    let mut rows_hash = Sha256::new();
    let mut invalid_rows = 0u64;
    let mut extra: Vec<Problem> = Vec::new();
    while let Some(v) = scanner.next()? {
        v.problems.iter().for_each(&mut on_problem);
        // A reference an earlier batch used (only the first generation uses the file's own).
        let mut valid = v.row.as_ref();
        extra.clear();
        if let (Some(row), 1) = (valid, opts.generation) {
            if let Some(r) = row.reference {
                if let Some(earlier) = journal.batch_using_reference(r, &batch.id)? {
                    extra.push(Problem {
                        line: v.record.line,
                        column: ref_heading.clone(),
                        code: Code::BadRef,
                        severity: Severity::Error,
                        message: format!(
                            "reference '{r}' was already used by batch {earlier}: the gateway would take it for that payout; use a new reference"
                        ),
                    });
                    on_problem(&extra[0]);
                    valid = None;
                }
            }
        }
        match valid {
            Some(row) => fingerprint(&mut rows_hash, row),
            None => invalid_rows += 1,
        }
        let cells: Vec<&str> = v.record.iter().collect();
        // An invalid row's amount and mode still count in the totals when that cell alone is
        // readable, and it keeps its own reference in the result when that cell alone is fine.
        let cell = |c: Option<usize>| c.map(|c| crate::input::reader::trim(v.record.get(c)));
        let (amount, mode, reference) = if valid.is_none() {
            let bad_ref = v.problems.iter().chain(&extra).any(|p| p.code == Code::BadRef);
            (
                cell(amount_col).and_then(|a| Amount::parse_cell(a).ok()),
                cell(mode_col).and_then(Mode::parse),
                cell(ref_col).filter(|r| !bad_ref && reference_ok(r)),
            )
        } else {
            (None, None, None)
        };
        let problems: Vec<Problem>;
        let problems: &[Problem] = if extra.is_empty() {
            v.problems
        } else {
            problems = v.problems.iter().chain(&extra).cloned().collect();
            &problems
        };
        let seq = store.added() + 1;
        // SPEC 3.2b: a retry row pays its original's obligation (`retry_of`), not a new one; an
        // invalid row too, when that cell alone is fine (its line is exported again by `failed`).
        let retry_cell = match valid {
            Some(r) => r.retry_of.to_string(),
            None => cell(retry_col)
                .map(str::to_ascii_lowercase)
                .filter(|r| crate::input::rules::retry_of_ok(r))
                .unwrap_or_default(),
        };
        let retry_of = if retry_cell.is_empty() { None } else { Some(journal.obligation_named(&retry_cell)?) };
        store.add(NewRow {
            seq,
            line: v.record.line,
            cells: &cells,
            valid,
            problems,
            amount,
            mode,
            reference,
            obligation: retry_of.as_deref(),
        })?;
    }
    let (total, valid) = store.totals()?;
    if total == 0 || valid.count == 0 {
        return Ok(Ingested::NothingToSend { total });
    }
    if invalid_rows > 0 && !opts.skip_invalid {
        return Ok(Ingested::HasErrors { invalid_rows, total, valid });
    }
    let rows_hash = hex::encode(rows_hash.finalize());
    if !opts.allow_same_rows {
        if let Some(earlier) = journal.batch_with_rows(&rows_hash, &batch.id)? {
            if journal.batch_paid_anything(&earlier.id)? {
                return Ok(Ingested::SameRowsAs(earlier));
            }
        }
    }
    // The batch's first record in its evidence log, then its holds.
    let mut created = crate::audit::Record::new("batch");
    created.detail = Some(format!(
        "file {} (sha256 {}), {} rows, {} valid, ₹{}, generation {}",
        batch.file_path,
        batch.file_sha256,
        total,
        valid.count,
        valid.amount.to_indian(),
        batch.generation
    ));
    journal.audit(&batch.id, &mut [created])?;
    let holds = journal.hold_rows(&batch, &opts.holds)?;
    let allowed = match &opts.allow_repeat {
        Some(operator) if holds.repeat_payment > 0 => {
            Some(journal.approve(&batch, &Selection::AllRepeats, operator, "--allow-repeat", &opts.holds)?)
        }
        _ => None,
    };
    store.commit(&rows_hash)?;
    let stored =
        journal.batch(&batch.id)?.ok_or_else(|| JournalError::Corrupt("batch just stored is missing".into()))?;
    Ok(Ingested::Stored { batch: stored, holds, allowed })
}
