//! Input: reading a payout file and checking every row against SPEC section 2.
//!
//! This module owns what a valid row is. It reads a CSV file or an .xlsx workbook ([`reader`],
//! [`sheet`]), maps the header ([`columns`]) and applies every rule ([`rules`]), reporting every
//! problem of every row in one pass with its physical line, column and stable code. It never
//! sends, stores or prints anything itself: the `validate` and `run` commands decide what to do
//! with the verdicts.

pub mod columns;
pub mod reader;
pub mod rules;
pub mod sheet;

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use columns::{Columns, Field};
pub use reader::{CellKind, Encoding, Format, Record, Source};
pub use rules::{RuleOptions, Validator};

use crate::money::Amount;

/// A file-level problem: nothing in the file can be used.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("cannot read {}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{} is empty: no header row", path.display())]
    Empty { path: PathBuf },
    /// The sheet read (the first visible one, or `--sheet`'s) of a workbook with several is empty.
    #[error("{}: sheet '{sheet}' is empty; the workbook's sheets are {}: --sheet NAME reads another", path.display(), quoted(sheets))]
    EmptySheet { path: PathBuf, sheet: String, sheets: Vec<String> },
    #[error("{} has no data rows (only a header)", path.display())]
    NoRows { path: PathBuf },
    #[error("cannot check {} for duplicates: {why}", path.display())]
    Index { path: PathBuf, why: String },
    #[error("{}: {why}", path.display())]
    Ambiguous { path: PathBuf, why: String },
    /// Another kind of file given as a payout file (a PDF, an old .xls, a zip, an image...). The
    /// message names it and never shows its bytes.
    #[error("{} is {what}, not a CSV or .xlsx file: {hint}", path.display())]
    NotTabular { path: PathBuf, what: &'static str, hint: &'static str },
    /// A workbook that cannot be read (damaged, or a sheet too large to lay out).
    #[error("cannot read the workbook {}: {why}", path.display())]
    Workbook { path: PathBuf, why: String },
    #[error("{} has no sheet named '{sheet}'; its sheets are {}", path.display(), quoted(sheets))]
    NoSheet { path: PathBuf, sheet: String, sheets: Vec<String> },
    #[error("{} is a CSV file, which has no sheets: leave out --sheet '{sheet}'", path.display())]
    SheetOfCsv { path: PathBuf, sheet: String },
    #[error("missing required column{}: {} (header is: {}{sheet}). Accepted headings include {}{}",
        if missing.len() > 1 { "s" } else { "" }, missing.join(", "), header.join(" | "), hint.join("; "),
        if *mode { ". Without a mode column use --mode-auto or set run.default_mode" } else { "" })]
    MissingColumns {
        missing: Vec<String>,
        hint: Vec<String>,
        /// The header as shown: control characters replaced, long headings cut.
        header: Vec<String>,
        mode: bool,
        /// For a workbook of several sheets: which one was read (`, in sheet 'X' of ...`).
        sheet: String,
    },
}

fn quoted(names: &[String]) -> String {
    if names.is_empty() {
        return "none (it has no worksheet)".into();
    }
    names.iter().map(|n| format!("'{n}'")).collect::<Vec<_>>().join(", ")
}

impl InputError {
    /// The same error about the file at `path` (for errors found before the path was known).
    pub fn with_path(self, path: &std::path::Path) -> InputError {
        match self {
            InputError::Ambiguous { why, .. } => InputError::Ambiguous { path: path.to_path_buf(), why },
            other => other,
        }
    }
}

/// A transfer rail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Mode {
    #[serde(rename = "NEFT")]
    Neft,
    #[serde(rename = "IMPS")]
    Imps,
    #[serde(rename = "RTGS")]
    Rtgs,
}

impl Mode {
    pub const ALL: [Mode; 3] = [Mode::Neft, Mode::Imps, Mode::Rtgs];

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Neft => "NEFT",
            Mode::Imps => "IMPS",
            Mode::Rtgs => "RTGS",
        }
    }

    /// Case-insensitive NEFT, IMPS or RTGS.
    pub fn parse(s: &str) -> Option<Mode> {
        Mode::ALL.into_iter().find(|m| m.as_str().eq_ignore_ascii_case(s))
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The stable problem codes of SPEC section 2 (and warnings of payrun's own).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Code {
    MissingField,
    BadIfsc,
    UnknownIfsc,
    BadAmount,
    BadMode,
    ModeLimit,
    BadAccount,
    SpreadsheetMangled,
    BadName,
    BadRef,
    DuplicateRow,
    BadRow,
    /// Warning: the branch's directory entry does not report the chosen rail.
    RailNotReported,
    /// Warning: a workbook's account number is a number cell, not text (leading zeros are lost).
    AccountAsNumber,
    /// Warning: the remarks have characters bank rails do not carry; their ASCII spelling is sent.
    RemarksChanged,
    /// Warning: one account paid under two payee ids (or two names) in one file (SPEC 3.3).
    SharedAccount,
    /// Warning (`validate --state`): this payee id was last paid to another account (SPEC 3.3).
    PayeeChanged,
    /// Warning: a workbook row Excel hides (by hand or by a filter): it is read and paid like the
    /// others, though the operator does not see it on screen.
    HiddenRow,
    /// A `retry_of` cell that is not `<batch id>:<line>` as `payrun failed` writes it (SPEC 3.2b).
    BadRetryOf,
    /// `validate` with a journal: `run` would hold this row as a repeat payment (SPEC 3.2).
    RepeatPayment,
    /// `validate` with a journal: `run` would hold this row, its obligation already paid or being
    /// paid by another retry (SPEC 3.2b).
    AlreadyRetried,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::MissingField => "MISSING_FIELD",
            Code::BadIfsc => "BAD_IFSC",
            Code::UnknownIfsc => "UNKNOWN_IFSC",
            Code::BadAmount => "BAD_AMOUNT",
            Code::BadMode => "BAD_MODE",
            Code::ModeLimit => "MODE_LIMIT",
            Code::BadAccount => "BAD_ACCOUNT",
            Code::SpreadsheetMangled => "SPREADSHEET_MANGLED",
            Code::BadName => "BAD_NAME",
            Code::BadRef => "BAD_REF",
            Code::DuplicateRow => "DUPLICATE_ROW",
            Code::BadRow => "BAD_ROW",
            Code::RailNotReported => "RAIL_NOT_REPORTED",
            Code::AccountAsNumber => "ACCOUNT_AS_NUMBER",
            Code::RemarksChanged => "REMARKS_CHANGED",
            Code::SharedAccount => "SHARED_ACCOUNT",
            Code::PayeeChanged => "PAYEE_CHANGED",
            Code::HiddenRow => "HIDDEN_ROW",
            Code::BadRetryOf => "BAD_RETRY_OF",
            Code::RepeatPayment => "REPEAT_PAYMENT",
            Code::AlreadyRetried => "ALREADY_RETRIED",
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One problem of one row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// Physical line of the file (1 is the header).
    pub line: u64,
    /// The column's heading as written in the file (or the field's name when there is no column).
    pub column: String,
    pub code: Code,
    pub severity: Severity,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = if self.severity == Severity::Warning { "warning " } else { "" };
        if self.column.is_empty() {
            write!(f, "line {}: {sev}{}: {}", self.line, self.code, self.message)
        } else {
            // A heading written on two lines in its cell (`"Account\nNo"`) is shown on one, so every
            // problem stays one line of the terminal; `--json` keeps the heading exactly.
            let column: std::borrow::Cow<'_, str> = if self.column.contains(['\n', '\r']) {
                self.column.split(['\n', '\r']).filter(|p| !p.is_empty()).collect::<Vec<_>>().join(" ").into()
            } else {
                self.column.as_str().into()
            };
            write!(f, "line {}, column '{column}': {sev}{}: {}", self.line, self.code, self.message)
        }
    }
}

/// A row that passed every rule, as a view into its record (no copies): what payrun will pay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowView<'a> {
    pub name: &'a str,
    /// Digits only.
    pub account: std::borrow::Cow<'a, str>,
    /// Upper case.
    pub ifsc: std::borrow::Cow<'a, str>,
    pub amount: Amount,
    pub mode: Mode,
    /// ASCII only: what is sent (the file's cell, transliterated when it had other characters).
    pub remarks: std::borrow::Cow<'a, str>,
    pub reference: Option<&'a str>,
    pub payee_list_id: &'a str,
    pub email: &'a str,
    pub phone: &'a str,
    /// The organisation's id of the payee (empty without a payee id column).
    pub payee_id: &'a str,
    /// The obligation a retry row pays again (`retry_of`, lower case), empty when none (SPEC 3.2b).
    pub retry_of: &'a str,
}

impl RowView<'_> {
    /// An owned copy.
    pub fn to_owned(&self) -> ValidRow {
        ValidRow {
            name: self.name.to_string(),
            account: self.account.to_string(),
            ifsc: self.ifsc.to_string(),
            amount: self.amount,
            mode: self.mode,
            remarks: self.remarks.to_string(),
            reference: self.reference.map(str::to_string),
            payee_list_id: self.payee_list_id.to_string(),
            email: self.email.to_string(),
            phone: self.phone.to_string(),
            payee_id: self.payee_id.to_string(),
            retry_of: self.retry_of.to_string(),
        }
    }
}

/// A row that passed every rule, normalised and owned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidRow {
    pub name: String,
    /// Digits only.
    pub account: String,
    /// Upper case.
    pub ifsc: String,
    pub amount: Amount,
    pub mode: Mode,
    /// ASCII only (see [`RowView::remarks`]).
    pub remarks: String,
    /// The file's own reference, when the row has one.
    pub reference: Option<String>,
    pub payee_list_id: String,
    pub email: String,
    pub phone: String,
    pub payee_id: String,
    #[serde(default)]
    pub retry_of: String,
}

/// A row as the scanner saw it: the record, its problems, and the normalised row when valid.
pub struct Verdict<'a> {
    pub record: &'a Record,
    pub row: Option<RowView<'a>>,
    pub problems: &'a [Problem],
}

impl Verdict<'_> {
    pub fn has_error(&self) -> bool {
        self.problems.iter().any(|p| p.severity == Severity::Error)
    }
}

/// How many non-blank lines above the header payrun looks through for it (a letterhead: company
/// name, title, period, an empty line or two).
const TITLE_LINES: usize = 5;

/// When the first non-blank line is not a header but a title (`ACME Pvt Ltd - Salary Nov 2026`,
/// a merged cell over the table), finds the header on one of the next [`TITLE_LINES`] lines:
/// the first that maps every required column, when the lines above it name no field at all (a
/// header with a misspelt heading is reported as such, never skipped). Then `source.header` is
/// that line and the columns carry a note naming the lines skipped. `None` leaves the header to
/// the caller's mapping: the first line (the usual file, or no header found), or a line below a
/// title that names at least two required fields but not all (the error is then about it).
fn header_below_title(source: &mut Source, mode_required: bool) -> Result<Option<Columns>, InputError> {
    if Columns::map(&source.header, mode_required).is_ok() || columns::recognised(&source.header) > 0 {
        return Ok(None);
    }
    let first = source.header.clone();
    let mut title = vec![first.iter().find(|c| !c.is_empty()).cloned().unwrap_or_default()];
    let mut rec = Record::default();
    for _ in 0..TITLE_LINES {
        if !source.next_record(&mut rec)? {
            break;
        }
        let header: Vec<String> = rec.iter().map(|h| reader::trim(h).to_string()).collect();
        if let Ok(mut columns) = Columns::map(&header, mode_required) {
            let shown: Vec<String> = title
                .iter()
                .filter(|t| !t.is_empty())
                .map(|t| format!("'{}'", t.chars().take(60).collect::<String>()))
                .collect();
            columns.notes.insert(
                0,
                format!(
                    "the header is on line {}: the line{} above it ({}) {} not part of the table, so not read",
                    rec.line,
                    if title.len() == 1 { "" } else { "s" },
                    shown.join(", "),
                    if title.len() == 1 { "is" } else { "are" }
                ),
            );
            source.header = header;
            return Ok(Some(columns));
        }
        match columns::recognised(&header) {
            0 => {}
            // Plainly the header, but incomplete (the mode column without --mode-auto, a
            // misspelt heading): the caller reports what it lacks, about this line.
            n if n >= 2 => {
                source.header = header;
                return Ok(None);
            }
            _ => break,
        }
        title.push(header.iter().find(|c| !c.is_empty()).cloned().unwrap_or_default());
    }
    // Not found: report the first line as the header, as it is.
    source.header = first;
    Ok(None)
}

/// Reads and checks a file row by row: the loop `validate` and `run` share.
pub struct Scanner {
    source: Source,
    validator: Validator,
    rec: Record,
    problems: Vec<Problem>,
    rows: u64,
}

impl Scanner {
    /// Opens the file (CSV or workbook: its content decides; `opts.sheet` names a workbook's
    /// sheet) and maps its header, remembering duplicates in memory. `hash` computes the file's
    /// SHA-256 on the way (for `run`).
    pub fn open(path: &std::path::Path, hash: bool, opts: RuleOptions) -> Result<Scanner, InputError> {
        Scanner::open_with(path, hash, opts, |source, columns| {
            // Size the index once instead of growing it. Capped: a huge file grows the index as it
            // goes rather than reserving it all up front.
            let estimate = source.rows_estimate().min(4_000_000) as usize;
            Box::new(rules::MemoryIndex::with_capacity(estimate, columns.of(Field::Reference).is_some()))
        })
    }

    /// Like [`Scanner::open`], with the duplicate index `index` builds (see [`rules::SeenIndex`]).
    pub fn open_with(
        path: &std::path::Path,
        hash: bool,
        opts: RuleOptions,
        index: impl FnOnce(&Source, &Columns) -> Box<dyn rules::SeenIndex>,
    ) -> Result<Scanner, InputError> {
        let mut source = Source::open(path, hash, opts.sheet.as_deref())?;
        let mode_required = !(opts.mode_auto || opts.default_mode.is_some());
        let columns = header_below_title(&mut source, mode_required)?;
        let columns = columns.map_or_else(|| Columns::map(&source.header, mode_required), Ok).map_err(|e| match e {
            InputError::MissingColumns { missing, hint, header, mode, .. } if source.sheets.len() > 1 => {
                let sheet = format!(
                    ", in sheet '{}' of {}: --sheet NAME reads another",
                    source.sheet.as_deref().unwrap_or_default(),
                    quoted(&source.sheets)
                );
                InputError::MissingColumns { missing, hint, header, mode, sheet }
            }
            // A CSV file separated by another character (`|` or `^`, as some bank portals and HRMS
            // write): its header is one field. Say so, rather than list every heading as missing.
            InputError::MissingColumns { .. } if source.sheet.is_none() && source.header.len() == 1 => {
                match ['|', '^', ':', '~'].into_iter().find(|c| source.header[0].contains(*c)) {
                    Some(sep) => InputError::Ambiguous {
                        path: source.path.clone(),
                        why: format!(
                            "the header line is one column ('{}'): payrun reads fields separated by commas, or by semicolons or tabs when the header line shows them, and this file looks separated by '{sep}': export it as CSV{}",
                            source.header[0].chars().take(60).collect::<String>(),
                            if sep == '|' { ", or add the line sep=| above the header" } else { "" }
                        ),
                    },
                    None => e.with_path(&source.path),
                }
            }
            e => e.with_path(&source.path),
        })?;
        let seen = index(&source, &columns);
        let validator = Validator::with_index(columns, opts, seen);
        Ok(Scanner { source, validator, rec: Record::default(), problems: Vec::new(), rows: 0 })
    }

    pub fn source(&self) -> &Source {
        &self.source
    }

    pub fn columns(&self) -> &Columns {
        self.validator.columns()
    }

    /// Data rows read so far (blank lines not counted).
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// The next row's verdict, or `None` at the end of the file.
    pub fn next(&mut self) -> Result<Option<Verdict<'_>>, InputError> {
        if !self.source.next_record(&mut self.rec)? {
            return Ok(None);
        }
        self.rows += 1;
        self.problems.clear();
        let row = self.validator.check(&self.rec, &mut self.problems);
        if let Some(why) = self.validator.index_failure() {
            return Err(InputError::Index { path: self.source.path.clone(), why });
        }
        Ok(Some(Verdict { record: &self.rec, row, problems: &self.problems }))
    }
}
