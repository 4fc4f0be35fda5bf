//! What the library-level input tests share: a file scanned row by row into an [`Outcome`] they
//! can assert on, the (line, column, code, severity) shape of a problem, and a file stored as a
//! batch of the embedded gateway.

use std::path::Path;

use payrun::input::{Code, Encoding, Format, InputError, Problem, RuleOptions, Scanner, Severity, ValidRow};
use payrun::journal::ingest::{IngestOptions, Ingested, ingest};
use payrun::journal::{Batch, BatchSettings, Journal};

/// One data row as the scanner returned it.
#[derive(Debug)]
pub struct Scanned {
    pub line: u64,
    pub cells: Vec<String>,
    pub row: Option<ValidRow>,
    pub problems: Vec<Problem>,
}

/// A whole file as the scanner returned it.
#[derive(Debug)]
pub struct Outcome {
    pub format: Format,
    pub encoding: Encoding,
    pub delimiter: u8,
    pub sheet: Option<String>,
    pub sha: Option<[u8; 32]>,
    pub header: Vec<String>,
    pub rows: Vec<Scanned>,
}

impl Outcome {
    /// Every problem of every row: (line, column, code, severity).
    pub fn problems(&self) -> Vec<(u64, String, Code, Severity)> {
        self.rows
            .iter()
            .flat_map(|r| r.problems.iter().map(|p| (p.line, p.column.clone(), p.code, p.severity)))
            .collect()
    }

    pub fn row(&self, i: usize) -> &Scanned {
        &self.rows[i]
    }

    pub fn valid(&self, i: usize) -> &ValidRow {
        let r = &self.rows[i];
        r.row.as_ref().unwrap_or_else(|| panic!("row {i} (line {}) should be valid: {:?}", r.line, r.problems))
    }

    /// The message of the problem `code` on `line`.
    pub fn message(&self, line: u64, code: Code) -> String {
        self.rows
            .iter()
            .flat_map(|r| &r.problems)
            .find(|p| p.line == line && p.code == code)
            .map(|p| p.message.clone())
            .unwrap_or_else(|| panic!("no {code} on line {line}: {:?}", self.problems()))
    }
}

/// Scans `path` (a workbook too when `workbooks`), checking on the way that each verdict's
/// `has_error` agrees with the row being absent and that the scanner counted every row.
pub fn try_scan(path: &Path, workbooks: bool, opts: RuleOptions) -> Result<Outcome, InputError> {
    let mut sc = Scanner::open(path, workbooks, opts)?;
    let src = sc.source();
    let (format, encoding, delimiter) = (src.sniffed.format, src.sniffed.encoding, src.delimiter);
    let (sheet, sha) = (src.sheet.clone(), src.sniffed.sha256);
    let header = sc.columns().header.clone();
    let mut rows = Vec::new();
    while let Some(v) = sc.next()? {
        rows.push(Scanned {
            line: v.record.line,
            cells: v.record.iter().map(str::to_string).collect(),
            row: v.row.as_ref().map(|r| r.to_owned()),
            problems: v.problems.to_vec(),
        });
        assert_eq!(v.has_error(), v.row.is_none(), "line {}: {:?}", v.record.line, v.problems);
    }
    assert_eq!(sc.rows(), rows.len() as u64);
    Ok(Outcome { format, encoding, delimiter, sheet, sha, header, rows })
}

pub fn err(line: u64, column: &str, code: Code) -> (u64, String, Code, Severity) {
    (line, column.to_string(), code, Severity::Error)
}

pub fn warn(line: u64, column: &str, code: Code) -> (u64, String, Code, Severity) {
    (line, column.to_string(), code, Severity::Warning)
}

/// Stores `file` in `journal` as a first batch for the embedded gateway, with the default rules.
pub fn store(journal: &Journal, file: &Path) -> Batch {
    let mut scanner = Scanner::open(file, true, RuleOptions::default()).expect("open");
    let opts = IngestOptions {
        generation: 1,
        gateway: "embedded".into(),
        settings: BatchSettings::default(),
        skip_invalid: false,
        allow_same_rows: false,
        holds: Default::default(),
        allow_repeat: None,
    };
    match ingest(journal, &mut scanner, opts, |_| {}).expect("ingest") {
        Ingested::Stored { batch, .. } => batch,
        other => panic!("{other:?}"),
    }
}
