//! Reading one sheet of an Excel workbook (.xlsx) as [`Record`]s, laid out as Excel's own "Save as
//! CSV" would lay them out, so that the rules see a sheet's rows exactly as a CSV file's.
//!
//! This module owns choosing the sheet (the one named, else the first visible worksheet), turning
//! each typed cell into text, and the line numbers: a record's line is its row number in the
//! sheet (row 1 is Excel's row 1, whatever the used range starts with; empty rows are skipped but
//! counted). Every row has one field per column of the sheet's used range, from its leftmost to
//! its rightmost non-empty cell.
//!
//! Cells become text by their type, and the type is kept ([`CellKind`]) for the rules that need
//! it. A number is written as its shortest exact decimal text (Rust's `Display` for `f64`: `1500`,
//! `1500.5`, `0.30000000000000004`), never rounded or computed with, so an amount cell meets the
//! same rules as typed text. A date becomes ISO text (`2026-11-30`), a logical value `TRUE` or
//! `FALSE`, an error its code (`#N/A`). A formula's value is the one Excel saved with it.
//!
//! It must never judge a cell (that is [`super::rules`]), and never print one. The workbook is read
//! whole by calamine, cell by cell into one text buffer (no string per cell).

use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use calamine::{DataRef, Reader, SheetType, SheetVisible, Xlsx, XlsxError};

use super::InputError;
use super::reader::{CellKind, Record};

/// The most cells (rows × used columns) a sheet may lay out: a stray cell far from the table would
/// otherwise make every row millions of empty fields.
const MAX_CELLS: u64 = 50_000_000;

/// One non-empty cell: its position (0-based) and where its text is in [`Sheet::text`].
#[derive(Clone, Copy, Debug)]
struct At {
    row: u32,
    col: u32,
    start: u32,
    end: u32,
    kind: CellKind,
}

/// A sheet read into memory, handing out its rows as records.
pub struct Sheet {
    /// The sheet read.
    pub name: String,
    /// Every worksheet's name, in workbook order.
    pub names: Vec<String>,
    /// Whether it is the sheet read when none is named.
    pub is_default: bool,
    /// Every non-empty cell's text, one after another.
    text: String,
    /// The non-empty cells in row, then column order.
    cells: Vec<At>,
    /// The leftmost used column, and how many columns a row has.
    first_col: u32,
    width: u32,
    /// The next cell to hand out.
    next: usize,
    /// How many rows have a non-empty cell.
    rows: usize,
    /// The sheet's hidden rows (0-based, sorted): hidden by hand or filtered out by an autofilter.
    hidden: Vec<u32>,
    /// Empty cells (0-based row, column; sorted) that hold a formula whose value was never saved.
    unsaved: Vec<(u32, u32)>,
}

/// `A`, `B`, ..., `Z`, `AA`, ... for a 0-based column.
pub fn column_name(col: u32) -> String {
    let mut n = col as u64 + 1;
    let mut out = Vec::new();
    while n > 0 {
        let rem = ((n - 1) % 26) as u8;
        out.push(b'A' + rem);
        n = (n - 1) / 26;
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// Writes a cell's text into `out`, returning what kind of cell it was (`None`: empty).
fn render(cell: &DataRef<'_>, out: &mut String) -> Option<CellKind> {
    let kind = match cell {
        DataRef::Empty => return None,
        DataRef::String(s) => {
            out.push_str(s);
            CellKind::Text
        }
        DataRef::SharedString(s) => {
            out.push_str(s);
            CellKind::Text
        }
        // The shortest text that reads back as the same float: what the cell shows, unrounded.
        DataRef::Float(f) => {
            let _ = write!(out, "{f}");
            CellKind::Number
        }
        DataRef::Int(i) => {
            let _ = write!(out, "{i}");
            CellKind::Number
        }
        DataRef::Bool(b) => {
            out.push_str(if *b { "TRUE" } else { "FALSE" });
            CellKind::Bool
        }
        DataRef::Error(e) => {
            let _ = write!(out, "{e}");
            CellKind::Error
        }
        DataRef::DateTime(dt) if dt.is_duration() => {
            let secs = (dt.as_f64() * 86_400.0).round() as i64;
            let _ = write!(out, "{}:{:02}:{:02}", secs / 3600, (secs / 60) % 60, secs % 60);
            CellKind::Date
        }
        DataRef::DateTime(dt) => {
            let (y, mo, d, h, mi, s, ms) = dt.to_ymd_hms_milli();
            let _ = write!(out, "{y:04}-{mo:02}-{d:02}");
            if (h, mi, s, ms) != (0, 0, 0, 0) {
                let _ = write!(out, "T{h:02}:{mi:02}:{s:02}");
            }
            CellKind::Date
        }
        DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => {
            out.push_str(s);
            CellKind::Date
        }
    };
    Some(kind)
}

/// Maps calamine's error opening a workbook to payrun's.
fn open_error(path: &Path, e: XlsxError) -> InputError {
    match e {
        XlsxError::Io(source) => InputError::Io { path: path.to_path_buf(), source },
        XlsxError::Password => InputError::NotTabular {
            path: path.to_path_buf(),
            what: "a password-protected Excel workbook",
            hint: "remove the password in Excel (File > Info > Protect Workbook) and save it again",
        },
        // A zip container without a workbook's parts.
        XlsxError::FileNotFound(_) | XlsxError::RelationshipNotFound | XlsxError::WorksheetNotFound(_) => {
            InputError::NotTabular {
                path: path.to_path_buf(),
                what: "a zip archive",
                hint: "export the sheet as CSV or .xlsx",
            }
        }
        other => InputError::Workbook {
            path: path.to_path_buf(),
            why: format!("{other}: it may be damaged or incomplete; open it in Excel and save it again"),
        },
    }
}

impl Sheet {
    /// Opens the workbook at `path` and reads the sheet named `wanted` (compared exactly, else
    /// ignoring case and surrounding spaces), else its first visible worksheet.
    pub fn open(path: &Path, wanted: Option<&str>) -> Result<Sheet, InputError> {
        let file = File::open(path).map_err(|e| InputError::Io { path: path.to_path_buf(), source: e })?;
        let mut book: Xlsx<_> = Xlsx::new(BufReader::new(file)).map_err(|e| open_error(path, e))?;
        let meta: Vec<calamine::Sheet> =
            book.sheets_metadata().iter().filter(|s| s.typ == SheetType::WorkSheet).cloned().collect();
        let names: Vec<String> = meta.iter().map(|s| s.name.clone()).collect();
        let default = meta.iter().find(|s| s.visible == SheetVisible::Visible).or(meta.first()).map(|s| &s.name);
        let name = match wanted {
            None => default,
            Some(w) => names.iter().find(|n| *n == w).or_else(|| {
                let mut close = names.iter().filter(|n| n.trim().eq_ignore_ascii_case(w.trim()));
                match (close.next(), close.next()) {
                    (Some(one), None) => Some(one),
                    _ => None,
                }
            }),
        }
        .cloned();
        let Some(name) = name else {
            if wanted.is_none() {
                return Err(InputError::Workbook { path: path.to_path_buf(), why: "it has no worksheet".into() });
            }
            return Err(InputError::NoSheet {
                path: path.to_path_buf(),
                sheet: wanted.unwrap_or_default().to_string(),
                sheets: names,
            });
        };
        let is_default = default == Some(&name);
        let mut sheet = Sheet {
            name,
            names: Vec::new(),
            is_default,
            text: String::new(),
            cells: Vec::new(),
            first_col: 0,
            width: 0,
            next: 0,
            rows: 0,
            hidden: Vec::new(),
            unsaved: Vec::new(),
        };
        sheet.load(&mut book).map_err(|e| match e {
            LoadError::Xlsx(e) => open_error(path, e),
            LoadError::TooLarge(why) | LoadError::TooMuchText(why) => {
                InputError::Workbook { path: path.to_path_buf(), why }
            }
        })?;
        sheet.names = names;
        // Best effort: a workbook calamine read whole is not refused for this.
        let marks = sheet_marks(path, &sheet.name).unwrap_or_default();
        sheet.hidden = marks.hidden;
        // Only the formulas without a saved value matter: the others read as their value.
        let cells = &sheet.cells;
        sheet.unsaved = marks
            .formulas
            .into_iter()
            .filter(|at| cells.binary_search_by_key(at, |c| (c.row, c.col)).is_err())
            .collect();
        Ok(sheet)
    }

    /// Reads the sheet's non-empty cells, in row order.
    fn load(&mut self, book: &mut Xlsx<BufReader<File>>) -> Result<(), LoadError> {
        let mut reader = book.worksheet_cells_reader(&self.name).map_err(LoadError::Xlsx)?;
        let (mut min_col, mut max_col) = (u32::MAX, 0u32);
        let mut sorted = true;
        while let Some(cell) = reader.next_cell().map_err(LoadError::Xlsx)? {
            let start = self.text.len();
            let Some(kind) = render(cell.get_value(), &mut self.text) else { continue };
            if self.text.len() == start {
                continue;
            }
            let (Ok(start), Ok(end)) = (u32::try_from(start), u32::try_from(self.text.len())) else {
                return Err(LoadError::TooMuchText(format!(
                    "sheet '{}' holds over 4 GB of text; payrun reads sheets up to 4 GB",
                    self.name
                )));
            };
            let (row, col) = cell.get_position();
            if let Some(last) = self.cells.last() {
                sorted &= (last.row, last.col) < (row, col);
            }
            min_col = min_col.min(col);
            max_col = max_col.max(col);
            self.cells.push(At { row, col, start, end, kind });
        }
        if !sorted {
            self.cells.sort_by_key(|c| (c.row, c.col));
        }
        self.rows =
            self.cells.windows(2).filter(|w| w[0].row != w[1].row).count() + usize::from(!self.cells.is_empty());
        if let (Some(first), Some(last)) = (self.cells.first(), self.cells.last()) {
            self.first_col = min_col;
            self.width = max_col - min_col + 1;
            if u64::from(self.width) * self.rows as u64 > MAX_CELLS {
                return Err(LoadError::TooLarge(format!(
                    "sheet '{}' uses cells from {}{} to {}{}, {} columns by {} rows: delete the stray cells outside the table (Ctrl+End in Excel goes to the last one) and save it again",
                    self.name,
                    column_name(min_col),
                    first.row + 1,
                    column_name(max_col),
                    last.row + 1,
                    self.width,
                    self.rows
                )));
            }
        }
        Ok(())
    }

    /// Rows with at least one non-empty cell.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Reads the next row that has a non-empty cell into `rec`; `false` after the last one.
    pub fn read(&mut self, rec: &mut Record) -> bool {
        let Some(first) = self.cells.get(self.next) else { return false };
        let row = first.row;
        rec.begin(u64::from(row) + 1);
        rec.hidden = self.hidden.binary_search(&row).is_ok();
        let mut col = self.first_col;
        while let Some(cell) = self.cells.get(self.next).filter(|c| c.row == row) {
            while col < cell.col {
                rec.push_with(self.empty_kind(row, col), |_| {});
                col += 1;
            }
            let text = self.text.get(cell.start as usize..cell.end as usize).unwrap_or("");
            rec.push_with(cell.kind, |out| out.push_str(text));
            col += 1;
            self.next += 1;
        }
        while col < self.first_col + self.width {
            rec.push_with(self.empty_kind(row, col), |_| {});
            col += 1;
        }
        true
    }

    /// The kind of an empty cell: [`CellKind::Unsaved`] for a formula whose value was never saved.
    fn empty_kind(&self, row: u32, col: u32) -> CellKind {
        if !self.unsaved.is_empty() && self.unsaved.binary_search(&(row, col)).is_ok() {
            CellKind::Unsaved
        } else {
            CellKind::Text
        }
    }
}

/// The value of attribute `name` in the attributes of one start tag (`r="12" hidden="1"`), XML
/// entities of names and paths undone.
fn attribute(attrs: &[u8], name: &str) -> Option<String> {
    attribute_in(&String::from_utf8_lossy(attrs), name)
}

fn attribute_in(attrs: &str, name: &str) -> Option<String> {
    let mut rest = attrs;
    while let Some(eq) = rest.find('=') {
        let key = rest[..eq].trim();
        let after = rest[eq + 1..].trim_start();
        let quote = after.chars().next()?;
        if quote != '"' && quote != '\'' {
            return None;
        }
        let end = after[1..].find(quote)? + 1;
        let value = &after[1..end];
        // `r:id` matches `id` only when asked for the prefixed name itself.
        if key == name {
            if !value.contains('&') {
                return Some(value.to_string());
            }
            return Some(
                value
                    .replace("&lt;", "<")
                    .replace("&gt;", ">")
                    .replace("&quot;", "\"")
                    .replace("&apos;", "'")
                    .replace("&amp;", "&"),
            );
        }
        rest = &after[end + 1..];
    }
    None
}

/// Calls `each(name, attributes)` for every start tag whose local name (any namespace prefix) is
/// one of `wanted`, of an XML stream read in chunks (a sheet of a million rows is never held whole;
/// other tags are only looked at, not copied).
fn start_tags(mut r: impl Read, wanted: &[&str], mut each: impl FnMut(&str, &[u8])) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1 << 16);
    let mut chunk = vec![0u8; 1 << 16];
    loop {
        let n = r.read(&mut chunk)?;
        buf.extend_from_slice(&chunk[..n]);
        let mut from = 0;
        while let Some(lt) = buf[from..].iter().position(|b| *b == b'<').map(|p| from + p) {
            let Some(gt) = buf[lt..].iter().position(|b| *b == b'>').map(|p| lt + p) else { break };
            let tag = &buf[lt + 1..gt];
            let name_end = tag.iter().position(|b| b.is_ascii_whitespace() || *b == b'/').unwrap_or(tag.len());
            let qname = &tag[..name_end];
            let local = qname.rsplit(|b| *b == b':').next().unwrap_or(qname);
            if let Some(name) = wanted.iter().find(|w| w.as_bytes() == local) {
                let attrs = &tag[name_end..];
                each(name, attrs.strip_suffix(b"/").unwrap_or(attrs));
            }
            from = gt + 1;
        }
        buf.drain(..from);
        if n == 0 {
            return Ok(());
        }
    }
}

/// A cell reference's 0-based (row, column): `D4` is (3, 3).
fn cell_ref(r: &str) -> Option<(u32, u32)> {
    let split = r.find(|c: char| c.is_ascii_digit())?;
    let (letters, digits) = r.split_at(split);
    if letters.is_empty() || !letters.bytes().all(|b| b.is_ascii_uppercase()) {
        return None;
    }
    let col = letters.bytes().try_fold(0u32, |n, b| n.checked_mul(26)?.checked_add(u32::from(b - b'A') + 1))?;
    let row = digits.parse::<u32>().ok()?;
    Some((row.checked_sub(1)?, col.checked_sub(1)?))
}

/// What calamine does not say about a sheet, from its XML read once more (tags only).
#[derive(Debug, Default)]
struct Marks {
    /// Rows (0-based, sorted) Excel hides: `<row hidden="1">`, written for a row hidden by hand
    /// and for every row an autofilter filters out.
    hidden: Vec<u32>,
    /// Cells (0-based row, column; sorted) that hold a formula (`<f>`): the ones with no saved
    /// value read as empty, and a person looking at the sheet in Excel sees a number there.
    formulas: Vec<(u32, u32)>,
}

/// The [`Marks`] of sheet `name`; `None` when the workbook's parts cannot be found.
fn sheet_marks(path: &Path, name: &str) -> Option<Marks> {
    let mut zip = zip::ZipArchive::new(BufReader::new(File::open(path).ok()?)).ok()?;
    let mut rel_id = None;
    start_tags(zip.by_name("xl/workbook.xml").ok()?, &["sheet"], |_, attrs| {
        if rel_id.is_none() && attribute(attrs, "name").as_deref() == Some(name) {
            rel_id = attribute(attrs, "r:id");
        }
    })
    .ok()?;
    let rel_id = rel_id?;
    let mut target = None;
    start_tags(zip.by_name("xl/_rels/workbook.xml.rels").ok()?, &["Relationship"], |_, attrs| {
        if attribute(attrs, "Id").as_deref() == Some(rel_id.as_str()) {
            target = attribute(attrs, "Target");
        }
    })
    .ok()?;
    let target = target?;
    let part = match target.strip_prefix('/') {
        Some(absolute) => absolute.to_string(),
        None => format!("xl/{}", target.trim_start_matches("./")),
    };
    let mut marks = Marks::default();
    let (mut row, mut next_row, mut cells_in_row) = (0u32, 0u32, 0u32);
    // The last cell's attributes, kept as bytes and read only when the cell has a formula (most
    // cells have none: no allocation for them).
    let mut cell: Vec<u8> = Vec::with_capacity(64);
    let mut in_cell = false;
    start_tags(zip.by_name(&part).ok()?, &["row", "c", "f"], |tag, attrs| match tag {
        "row" => {
            row = attribute(attrs, "r").and_then(|r| r.parse::<u32>().ok()).map_or(next_row, |r| r.saturating_sub(1));
            if matches!(attribute(attrs, "hidden").as_deref(), Some("1" | "true")) {
                marks.hidden.push(row);
            }
            next_row = row.saturating_add(1);
            cells_in_row = 0;
        }
        "c" => {
            cell.clear();
            cell.extend_from_slice(attrs);
            cells_in_row = cells_in_row.saturating_add(1);
            in_cell = true;
        }
        _ => {
            if std::mem::take(&mut in_cell) {
                // A cell without a reference (rare: Excel always writes one) counts from the row's start.
                let at = attribute(&cell, "r").and_then(|r| cell_ref(&r)).unwrap_or((row, cells_in_row - 1));
                marks.formulas.push(at);
            }
        }
    })
    .ok()?;
    marks.hidden.sort_unstable();
    marks.formulas.sort_unstable();
    Some(marks)
}

enum LoadError {
    Xlsx(XlsxError),
    TooLarge(String),
    TooMuchText(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_tags_and_their_attributes() {
        let xml = br#"<?xml version="1.0"?><x:worksheet><x:sheetData><x:row r="2" hidden='1'><c r="A2"><v>1</v></c></x:row><row spans="1:5"/><row r="7" hidden="0"/><rows/></x:sheetData>"#;
        let mut seen = Vec::new();
        start_tags(&xml[..], &["row"], |_, attrs| seen.push((attribute(attrs, "r"), attribute(attrs, "hidden"))))
            .expect("reads");
        assert_eq!(
            seen,
            vec![(Some("2".into()), Some("1".into())), (None, None), (Some("7".into()), Some("0".into()))]
        );
        assert_eq!(attribute_in(r#"name="R&amp;D &lt;Nov&gt;" r:id="rId3""#, "name").as_deref(), Some("R&D <Nov>"));
        assert_eq!(attribute_in(r#"name="a" r:id="rId3""#, "r:id").as_deref(), Some("rId3"));
        assert_eq!(attribute_in(r#"r:id="rId3""#, "id"), None);
        assert_eq!(attribute_in(r#"broken="#, "r"), None);
    }

    #[test]
    fn cell_references() {
        assert_eq!(cell_ref("A1"), Some((0, 0)));
        assert_eq!(cell_ref("D4"), Some((3, 3)));
        assert_eq!(cell_ref("AA10"), Some((9, 26)));
        assert_eq!(cell_ref("XFD1048576"), Some((1_048_575, 16_383)));
        assert_eq!(cell_ref("4"), None);
        assert_eq!(cell_ref("A0"), None);
        assert_eq!(cell_ref("a1"), None);
    }

    #[test]
    fn column_names() {
        assert_eq!(column_name(0), "A");
        assert_eq!(column_name(25), "Z");
        assert_eq!(column_name(26), "AA");
        assert_eq!(column_name(701), "ZZ");
        assert_eq!(column_name(702), "AAA");
        assert_eq!(column_name(16_383), "XFD");
    }

    fn text(cell: DataRef<'_>) -> (String, Option<CellKind>) {
        let mut out = String::new();
        let kind = render(&cell, &mut out);
        (out, kind)
    }

    #[test]
    fn numbers_are_their_shortest_exact_text() {
        assert_eq!(text(DataRef::Float(1500.0)), ("1500".into(), Some(CellKind::Number)));
        assert_eq!(text(DataRef::Float(1500.5)), ("1500.5".into(), Some(CellKind::Number)));
        assert_eq!(text(DataRef::Float(1500.123)).0, "1500.123");
        assert_eq!(text(DataRef::Float(0.1 + 0.2)).0, "0.30000000000000004");
        assert_eq!(text(DataRef::Float(39628544321.0)).0, "39628544321");
        assert_eq!(text(DataRef::Float(3456789012345678.0)).0, "3456789012345678");
        assert_eq!(text(DataRef::Float(1e21)).0, "1000000000000000000000", "never an exponent");
        assert_eq!(text(DataRef::Float(-100.0)).0, "-100");
        assert_eq!(text(DataRef::Int(42)), ("42".into(), Some(CellKind::Number)));
    }

    #[test]
    fn other_cells() {
        use calamine::{CellErrorType, ExcelDateTime, ExcelDateTimeType};
        assert_eq!(text(DataRef::Empty), (String::new(), None));
        assert_eq!(text(DataRef::SharedString("Ravi")), ("Ravi".into(), Some(CellKind::Text)));
        assert_eq!(text(DataRef::Bool(true)), ("TRUE".into(), Some(CellKind::Bool)));
        assert_eq!(text(DataRef::Error(CellErrorType::NA)), ("#N/A".into(), Some(CellKind::Error)));
        assert_eq!(text(DataRef::Error(CellErrorType::Ref)).0, "#REF!");
        // 46356 is 2026-11-30 in Excel's 1900 date system.
        let date = ExcelDateTime::new(46356.0, ExcelDateTimeType::DateTime, false);
        assert_eq!(text(DataRef::DateTime(date)), ("2026-11-30".into(), Some(CellKind::Date)));
        let noon = ExcelDateTime::new(46356.5, ExcelDateTimeType::DateTime, false);
        assert_eq!(text(DataRef::DateTime(noon)).0, "2026-11-30T12:00:00");
        let span = ExcelDateTime::new(1.5, ExcelDateTimeType::TimeDelta, false);
        assert_eq!(text(DataRef::DateTime(span)).0, "36:00:00");
    }
}
