//! The result as an Excel workbook (`--out RESULT.xlsx`, SPEC section 5), made for the accountant
//! who opens it.
//!
//! This module owns the workbook's shape: four sheets, **Results** (every input row in input
//! order, the input's columns then payrun's, the same columns as the CSV), **Summary** (count and
//! amount per status and per mode, the control check), **Needs attention** (FAILED, HELD and
//! PENDING rows with the next step in words) and **Print** (every row again, laid out for paper).
//! It reads the journal and never changes it.
//!
//! On paper. Every sheet prints landscape on A4, fitted to one page wide and as many tall as it
//! takes, its heading row repeated on every page, the sheet's name and page numbers in the footer.
//! Results cannot be made legible that way: SPEC 5 fixes its columns (the input's first, then
//! payrun's ten, the same as the CSV), some twenty columns that print at under half size on one
//! page width, and printed in column bands (the old way) its status column first showed on page 9
//! of 16. Moving the status to the left of Results would break the CSV's column order that
//! accounting reconciles against, and repeated print-title columns only help a sheet printed in
//! bands. So the workbook has a separate **Print** sheet laid out for paper: the same rows in the
//! same order, with the columns a reader of a printout needs, the status and code beside the line
//! number, long text wrapped in fixed widths, so a page holds about 170 characters of text at
//! roughly 85%. Needs attention is laid out the same way (its reason, reference and next step
//! wrap instead of stretching the page). A right-aligned number never touches the text beside it:
//! amounts keep a space's padding on their right and statuses are centred.
//!
//! What it must never do, and how it avoids it:
//! - lose a digit: every input cell, account number, IFSC, reference, UTR and gateway reference is a
//!   text cell with the text format `@`, so `000123456789` stays `000123456789` and a 16-digit
//!   account is not rounded to 15 significant digits;
//! - run a formula: text cells are written as strings, which Excel and LibreOffice never evaluate,
//!   and a cell that starts with `=`, `+`, `-`, `@`, tab or CR also gets Excel's quote prefix, so
//!   editing it (F2, Enter) keeps it text. The text itself is the input's, unchanged (no `'` added as
//!   in the CSV), so the workbook reconciles cell for cell with the file that was paid;
//! - show half a file: it is written to a temporary file beside the destination (owner-only),
//!   fsynced and renamed ([`AtomicFile`]);
//! - grow with the batch: the two row sheets are written in `rust_xlsxwriter`'s constant-memory mode
//!   (row data streamed to temporary files in the destination's directory), in one pass.
//!
//! Amounts are numbers in a rupee format with Indian grouping. An xlsx number is an IEEE double,
//! so this is the one place an amount becomes a float: it is parsed from the amount's exact
//! two-decimal text, which a double holds to the paisa up to ₹90 lakh crore (2^53 paise); a total
//! beyond that is written as text rather than rounded. Times are real date-times in the
//! operator's time zone (`[report] timezone`, default Asia/Kolkata), which the Summary sheet names.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, bail};
use chrono::{Datelike, Timelike};
use rust_xlsxwriter::{Color, DocProperties, ExcelDateTime, Format, FormatAlign, FormatBorder, Workbook, Worksheet};

use super::attention::AttentionRow;
use super::{RESULT_COLUMNS, STATUSES, Summary, code_of, message_of};
use crate::files::AtomicFile;
use crate::input::{Columns, Field, Mode};
use crate::journal::{Batch, Counts, Journal, Row, RowState};
use crate::money::{Amount, Tally};

/// Sheet names, in workbook order.
pub const SHEETS: [&str; 4] = ["Results", "Summary", "Needs attention", "Print"];

/// Headings of the "Needs attention" sheet.
pub const ATTENTION_COLUMNS: [&str; 9] =
    ["Line", "Name", "Account", "Amount (₹)", "Status", "Code", "Reason", "Reference", "Next step"];

/// The widest each "Needs attention" column grows (characters); the text columns wrap within it.
const ATTENTION_CAPS: [usize; 9] = [6, 22, 18, 16, 10, 15, 28, 22, 42];

/// Headings of the "Print" sheet, and the widest each column grows (characters); name,
/// reference and message wrap within it.
pub const PRINT_COLUMNS: [(&str, usize); 11] = [
    ("Line", 6),
    ("Status", 10),
    ("Code", 15),
    ("Name", 22),
    ("Amount (₹)", 16),
    ("Mode", 6),
    ("Account", 18),
    ("UTR", 14),
    ("Completed", 17),
    ("Reference", 22),
    ("Message", 30),
];

/// Rupees with Indian digit grouping (12,34,56,789.00) in every spreadsheet program: Excel's own
/// grouping follows the reader's locale, so lakh and crore separators are spelled out by magnitude.
/// `_)` keeps a space's width free on the right, so a printed amount never runs into the text of
/// the next column (`₹96,507.56FAILED`).
pub const RUPEE_FORMAT: &str = r###"[>=10000000]"₹"##\,##\,##\,##0.00_);[>=100000]"₹"##\,##\,##0.00_);"₹"#,##0.00_)"###;

/// Date-times on the Results sheet.
pub const DATETIME_FORMAT: &str = "yyyy-mm-dd hh:mm:ss";

/// Date-times on the Print sheet (to the minute: a page has no room for seconds).
const PRINT_DATETIME_FORMAT: &str = "yyyy-mm-dd hh:mm";

/// Rows a worksheet holds below its header.
const MAX_DATA_ROWS: u64 = 1_048_575;

/// Characters a cell holds.
const MAX_CELL_CHARS: usize = 32_767;

/// The largest amount a double holds to the paisa.
const EXACT_PAISE: i128 = 1 << 53;

/// The formats the workbook uses. Row cells align to the top, so a row whose text wraps onto
/// several lines still reads across.
struct Formats {
    header: Format,
    text: Format,
    text_quoted: Format,
    /// Text that wraps within its column (and its quote-prefixed twin).
    wrapped: Format,
    wrapped_quoted: Format,
    /// A status word, centred: it never touches the amount before it.
    status: Format,
    money: Format,
    datetime: Format,
    print_datetime: Format,
    integer: Format,
    /// A line number, centred: it never touches the name after it.
    line: Format,
    bold: Format,
    indented: Format,
    ok: Format,
    mismatch: Format,
}

impl Formats {
    fn new() -> Formats {
        let text = Format::new().set_num_format("@").set_align(FormatAlign::Top);
        let wrapped = text.clone().set_text_wrap();
        Formats {
            header: Format::new()
                .set_bold()
                .set_background_color(Color::RGB(0xD9E1F2))
                .set_border_bottom(FormatBorder::Thin)
                .set_align(FormatAlign::Top),
            text_quoted: text.clone().set_quote_prefix(),
            status: text.clone().set_align(FormatAlign::Center),
            text,
            wrapped_quoted: wrapped.clone().set_quote_prefix(),
            wrapped,
            money: Format::new().set_num_format(RUPEE_FORMAT).set_align(FormatAlign::Top),
            datetime: Format::new()
                .set_num_format(DATETIME_FORMAT)
                .set_align(FormatAlign::Left)
                .set_align(FormatAlign::Top),
            print_datetime: Format::new()
                .set_num_format(PRINT_DATETIME_FORMAT)
                .set_align(FormatAlign::Left)
                .set_align(FormatAlign::Top),
            integer: Format::new().set_num_format("0").set_align(FormatAlign::Top),
            line: Format::new().set_num_format("0").set_align(FormatAlign::Center).set_align(FormatAlign::Top),
            bold: Format::new().set_bold(),
            indented: Format::new().set_indent(1),
            ok: Format::new()
                .set_bold()
                .set_font_color(Color::RGB(0x006100))
                .set_background_color(Color::RGB(0xC6EFCE)),
            mismatch: Format::new()
                .set_bold()
                .set_font_color(Color::RGB(0x9C0006))
                .set_background_color(Color::RGB(0xFFC7CE)),
        }
    }
}

/// Column widths from what was written (in characters, each column capped).
struct Widths {
    chars: Vec<usize>,
    caps: Vec<usize>,
}

impl Widths {
    /// Every column capped at `cap`.
    fn new(header: &[String], cap: usize) -> Widths {
        Widths::capped(header, &vec![cap; header.len()])
    }
    /// Column `i` capped at `caps[i]` (its heading's width when that is more).
    fn capped(header: &[String], caps: &[usize]) -> Widths {
        // Room for the filter button beside the heading.
        let chars: Vec<usize> = header.iter().map(|h| h.chars().count() + 3).collect();
        let caps = chars.iter().enumerate().map(|(i, w)| caps.get(i).copied().unwrap_or(60).max(*w)).collect();
        Widths { chars, caps }
    }
    fn see(&mut self, col: usize, chars: usize) {
        if let (Some(w), Some(cap)) = (self.chars.get_mut(col), self.caps.get(col)) {
            *w = (*w).max(chars.min(*cap));
        }
    }
    /// The lines `text` takes when it wraps in column `col`. A text longer than the column's cap
    /// makes the column that wide, so the cap is the width it wraps in.
    fn lines(&self, col: usize, text: &str) -> usize {
        wrapped_lines(text, self.caps.get(col).copied().unwrap_or(60))
    }
    fn apply(&self, ws: &mut Worksheet) -> Result<(), rust_xlsxwriter::XlsxError> {
        for (i, w) in self.chars.iter().enumerate() {
            ws.set_column_width(col(i), *w as f64 + 1.0)?;
        }
        Ok(())
    }
}

/// The lines `text` takes, word-wrapped in a column `width` characters wide. A column's width is
/// counted in digits, and text letters are on average no wider, so `width` characters fit a line
/// (a line too many would only leave space; a line too few would hide text).
fn wrapped_lines(text: &str, width: usize) -> usize {
    let room = width.max(1);
    let mut lines = 0;
    for paragraph in text.split('\n') {
        let mut used = 0usize;
        lines += 1;
        for word in paragraph.split(' ').map(|w| w.chars().count()) {
            let need = if used == 0 { word } else { used + 1 + word };
            if need <= room {
                used = need;
            } else if word <= room {
                lines += 1;
                used = word;
            } else {
                // A word longer than the line is broken across lines.
                lines += usize::from(used > 0) + (word - 1) / room;
                used = (word - 1) % room + 1;
            }
        }
    }
    lines.max(1)
}

/// Sets a row's height for the most lines one of its wrapped cells takes (Excel and LibreOffice
/// do not size rows to wrapped text when they open a file; one line needs nothing).
fn fit_row(ws: &mut Worksheet, r: u32, lines: usize) -> anyhow::Result<()> {
    if lines > 1 {
        ws.set_row_height(r, (15.0 * lines as f64).min(409.0))?;
    }
    Ok(())
}

fn col(i: usize) -> u16 {
    u16::try_from(i).unwrap_or(u16::MAX)
}

fn row_num(i: u64) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

/// A cell's text as the workbook can hold it.
fn fit(text: &str) -> std::borrow::Cow<'_, str> {
    if text.chars().count() <= MAX_CELL_CHARS {
        return text.into();
    }
    let mut cut: String = text.chars().take(MAX_CELL_CHARS - 20).collect();
    cut.push_str(" [cut: cell too long]");
    cut.into()
}

/// Whether a spreadsheet would read `text` as a formula.
fn formula_like(text: &str) -> bool {
    text.starts_with(['=', '+', '-', '@', '\t', '\r'])
}

/// Writes `text` as a text cell (quote-prefixed when it starts like a formula); nothing for "".
fn put_text(ws: &mut Worksheet, f: &Formats, widths: &mut Widths, r: u32, c: usize, text: &str) -> anyhow::Result<()> {
    put_formatted(ws, (&f.text, &f.text_quoted), widths, r, c, text)
}

/// [`put_text`] for a column whose text wraps within its width.
fn put_wrapped(
    ws: &mut Worksheet,
    f: &Formats,
    widths: &mut Widths,
    r: u32,
    c: usize,
    text: &str,
) -> anyhow::Result<()> {
    put_formatted(ws, (&f.wrapped, &f.wrapped_quoted), widths, r, c, text)
}

/// A text cell in the `(plain, quoted)` format of its column: quoted when it starts like a formula.
fn put_formatted(
    ws: &mut Worksheet,
    (plain, quoted): (&Format, &Format),
    widths: &mut Widths,
    r: u32,
    c: usize,
    text: &str,
) -> anyhow::Result<()> {
    if text.is_empty() {
        return Ok(());
    }
    let format = if formula_like(text) { quoted } else { plain };
    ws.write_string_with_format(r, col(c), fit(text), format)?;
    widths.see(c, text.chars().count());
    Ok(())
}

/// Writes a status word, centred.
fn put_status(
    ws: &mut Worksheet,
    f: &Formats,
    widths: &mut Widths,
    r: u32,
    c: usize,
    text: &str,
) -> anyhow::Result<()> {
    if text.is_empty() {
        return Ok(());
    }
    ws.write_string_with_format(r, col(c), text, &f.status)?;
    widths.see(c, text.chars().count() + 2);
    Ok(())
}

/// The amount as a spreadsheet number, from its exact decimal text (see the module docs).
pub fn amount_number(a: Amount) -> Option<f64> {
    (a.paise() <= EXACT_PAISE).then(|| a.to_string().parse::<f64>().ok()).flatten()
}

/// Writes an amount as a number in rupee format (as text when a double cannot hold it exactly).
fn put_amount(ws: &mut Worksheet, f: &Formats, r: u32, c: usize, amount: Option<Amount>) -> anyhow::Result<()> {
    match amount {
        None => {}
        Some(a) => match amount_number(a) {
            Some(x) => {
                ws.write_number_with_format(r, col(c), x, &f.money)?;
            }
            None => {
                ws.write_string_with_format(r, col(c), format!("₹{}", a.to_indian()), &f.text)?;
            }
        },
    }
    Ok(())
}

/// An RFC 3339 time as a date-time in `tz`; `None` when it cannot be read.
pub fn local_datetime(rfc3339: &str, tz: chrono_tz::Tz) -> Option<ExcelDateTime> {
    let t = chrono::DateTime::parse_from_rfc3339(rfc3339.trim()).ok()?.with_timezone(&tz);
    let milli = (t.nanosecond() / 1_000_000).min(999);
    ExcelDateTime::from_ymd(u16::try_from(t.year()).ok()?, t.month() as u8, t.day() as u8)
        .ok()?
        .and_hms_milli(t.hour() as u16, t.minute() as u8, t.second() as u8, milli as u16)
        .ok()
}

/// Writes a journal time as a date-time in `tz` (as text when it cannot be read).
fn put_time(
    ws: &mut Worksheet,
    f: &Formats,
    widths: &mut Widths,
    r: u32,
    c: usize,
    time: Option<&str>,
    tz: chrono_tz::Tz,
) -> anyhow::Result<()> {
    let Some(time) = time.filter(|t| !t.trim().is_empty()) else { return Ok(()) };
    match local_datetime(time, tz) {
        Some(dt) => {
            ws.write_datetime_with_format(r, col(c), &dt, &f.datetime)?;
            widths.see(c, DATETIME_FORMAT.len());
        }
        None => put_text(ws, f, widths, r, c, time)?,
    }
    Ok(())
}

/// Printing (see the module docs): landscape A4 with narrow margins, fitted to one page wide and
/// as many tall as it takes, the sheet's name and page numbers in the footer, and the heading on
/// every page of a row sheet.
fn print_setup(ws: &mut Worksheet, repeat_header: bool) -> anyhow::Result<()> {
    ws.set_landscape().set_paper_size(9);
    ws.set_margins(0.4, 0.4, 0.6, 0.6, 0.3, 0.3);
    ws.set_footer("&L&A&RPage &P of &N");
    ws.set_print_fit_to_pages(1, 0);
    if repeat_header {
        ws.set_repeat_rows(0, 0)?;
    }
    Ok(())
}

fn header_row(ws: &mut Worksheet, f: &Formats, header: &[String]) -> anyhow::Result<()> {
    for (i, h) in header.iter().enumerate() {
        ws.write_string_with_format(0, col(i), fit(h), &f.header)?;
    }
    ws.set_freeze_panes(1, 0)?;
    print_setup(ws, true)
}

/// Writes the result workbook of `batch` to `path` (atomically, owner-only), times in `tz`, the
/// next steps' commands naming `state_arg` (` --state DIR`, or empty for the default). Returns the
/// rows written to the Results sheet.
pub fn write(journal: &Journal, batch: &Batch, path: &Path, tz: chrono_tz::Tz, state_arg: &str) -> anyhow::Result<u64> {
    if batch.total_rows > MAX_DATA_ROWS {
        bail!(
            "batch {} has {} rows: a workbook sheet holds at most {MAX_DATA_ROWS}; write a .csv result instead",
            batch.id,
            batch.total_rows
        );
    }
    let mut file = AtomicFile::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => Path::new(".").to_path_buf(),
    };
    let f = Formats::new();
    let mut wb = Workbook::new();
    wb.set_tempdir(&dir).with_context(|| format!("cannot write temporary files in {}", dir.display()))?;
    wb.set_properties(&DocProperties::new().set_title(format!("payrun result, batch {}", batch.id)));

    let mut results = wb.new_worksheet_with_constant_memory()?;
    results.set_name(SHEETS[0])?;
    let mut needs = wb.new_worksheet_with_constant_memory()?;
    needs.set_name(SHEETS[2])?;
    let mut print = wb.new_worksheet_with_constant_memory()?;
    print.set_name(SHEETS[3])?;

    let width = batch.header.len();
    let mut header: Vec<String> = batch.header.clone();
    header.extend(RESULT_COLUMNS.iter().map(|c| c.to_string()));
    header_row(&mut results, &f, &header)?;
    let mut widths = Widths::new(&header, 60);
    let attention_header: Vec<String> = ATTENTION_COLUMNS.iter().map(|c| c.to_string()).collect();
    header_row(&mut needs, &f, &attention_header)?;
    let mut needs_widths = Widths::capped(&attention_header, &ATTENTION_CAPS);
    let print_header: Vec<String> = PRINT_COLUMNS.iter().map(|(c, _)| c.to_string()).collect();
    header_row(&mut print, &f, &print_header)?;
    let print_caps: Vec<usize> = PRINT_COLUMNS.iter().map(|(_, w)| *w).collect();
    let mut print_widths = Widths::capped(&print_header, &print_caps);
    // An invalid row has no normalised name, account or mode: the Print sheet shows its cells.
    let columns = Columns::map(&batch.header, false).ok();

    let mut tallies: HashMap<(RowState, Option<Mode>), Tally> = HashMap::new();
    let (mut n, mut n_needs) = (0u64, 0u64);
    journal.for_each_row(&batch.id, |row, cells| {
        n += 1;
        let r = row_num(n);
        for (i, cell) in cells.iter().take(width).enumerate() {
            put_text(&mut results, &f, &mut widths, r, i, cell)?;
        }
        let s = &row.status;
        let mut c = width;
        put_text(&mut results, &f, &mut widths, r, c, row.external_ref.as_deref().unwrap_or(""))?;
        c += 1;
        put_amount(&mut results, &f, r, c, row.amount)?;
        widths.see(c, 18);
        c += 1;
        put_status(&mut results, &f, &mut widths, r, c, s.state().result_status())?;
        c += 1;
        for text in [code_of(row), message_of(row, &cells, width)] {
            put_text(&mut results, &f, &mut widths, r, c, &text)?;
            c += 1;
        }
        for text in [s.gateway_ref.as_deref(), s.utr.as_deref()] {
            put_text(&mut results, &f, &mut widths, r, c, text.unwrap_or(""))?;
            c += 1;
        }
        for time in [s.submitted_at.as_deref(), s.completed_at.as_deref()] {
            put_time(&mut results, &f, &mut widths, r, c, time, tz)?;
            c += 1;
        }
        if s.state() != RowState::Invalid {
            results.write_number_with_format(r, col(c), f64::from(s.attempts), &f.integer)?;
        }

        let t = tallies.entry((s.state(), row.mode)).or_default();
        t.count += 1;
        t.amount += row.amount.unwrap_or(Amount::ZERO);

        let attention = AttentionRow::of(row, &batch.id, state_arg);
        if let Some(a) = &attention {
            n_needs += 1;
            write_attention(&mut needs, &f, &mut needs_widths, row_num(n_needs), row, a)?;
        }

        let cells_now = PrintCells { row, cells: &cells, width, columns: columns.as_ref() };
        write_print(&mut print, &f, &mut print_widths, r, &cells_now, attention.as_ref(), tz)?;
        Ok(())
    })?;

    let last_col = col(header.len().saturating_sub(1));
    results.autofilter(0, 0, row_num(n), last_col)?;
    widths.apply(&mut results)?;
    needs.autofilter(0, 0, row_num(n_needs), col(ATTENTION_COLUMNS.len() - 1))?;
    needs_widths.apply(&mut needs)?;
    print_widths.apply(&mut print)?;
    if n_needs > 0 {
        needs.set_tab_color(Color::RGB(0xC00000));
    }

    let counts = Counts { cells: tallies.into_iter().map(|((s, m), t)| (s, m, t)).collect() };
    let summary = Summary::new(batch, &counts, Some(path));
    let summary_sheet = summary_sheet(&f, &summary, tz)?;

    wb.push_worksheet(results);
    wb.push_worksheet(summary_sheet);
    wb.push_worksheet(needs);
    wb.push_worksheet(print);
    wb.save_to_writer(&mut file).with_context(|| format!("cannot write {}", path.display()))?;
    file.commit().with_context(|| format!("cannot write {}", path.display()))?;
    Ok(n)
}

fn write_attention(
    ws: &mut Worksheet,
    f: &Formats,
    widths: &mut Widths,
    r: u32,
    row: &Row,
    a: &AttentionRow,
) -> anyhow::Result<()> {
    let reference = row.external_ref.as_deref().unwrap_or("");
    let lines = [(1, a.name.as_str()), (6, &a.reason), (7, reference), (8, &a.next_step)]
        .iter()
        .map(|(c, t)| widths.lines(*c, t))
        .max()
        .unwrap_or(1);
    fit_row(ws, r, lines)?;
    ws.write_number_with_format(r, 0, a.line as f64, &f.line)?;
    put_wrapped(ws, f, widths, r, 1, &a.name)?;
    put_text(ws, f, widths, r, 2, &a.account)?;
    put_amount(ws, f, r, 3, a.amount)?;
    widths.see(3, 16);
    put_status(ws, f, widths, r, 4, &a.status)?;
    put_text(ws, f, widths, r, 5, &a.code)?;
    put_wrapped(ws, f, widths, r, 6, &a.reason)?;
    put_wrapped(ws, f, widths, r, 7, reference)?;
    // Wrapped within its column, so a printed page stays legible (see the module docs).
    put_wrapped(ws, f, widths, r, 8, &a.next_step)?;
    Ok(())
}

/// One journal row with its input cells, for the Print sheet.
struct PrintCells<'a> {
    row: &'a Row,
    cells: &'a [String],
    /// The input's columns (the header's width).
    width: usize,
    columns: Option<&'a Columns>,
}

impl PrintCells<'_> {
    /// The row's normalised value, else (an invalid row has none) the input's cell for `field`.
    fn or_input(&self, value: &str, field: Field) -> String {
        if !value.is_empty() {
            return value.to_string();
        }
        self.columns
            .and_then(|c| c.of(field))
            .and_then(|i| self.cells.get(i))
            .map(|c| c.trim().to_string())
            .unwrap_or_default()
    }
}

/// One row of the Print sheet: the row for paper, status and code beside the line number.
fn write_print(
    ws: &mut Worksheet,
    f: &Formats,
    widths: &mut Widths,
    r: u32,
    p: &PrintCells<'_>,
    attention: Option<&AttentionRow>,
    tz: chrono_tz::Tz,
) -> anyhow::Result<()> {
    let row = p.row;
    let s = &row.status;
    let name = p.or_input(&row.name, Field::Name);
    let mode = row.mode.map(|m| m.as_str().to_string()).unwrap_or_else(|| p.or_input("", Field::Mode));
    let reference = row.external_ref.as_deref().unwrap_or("");
    // A row that needs someone says why in the words of Needs attention (never "Success" beside
    // PENDING).
    let message = match attention {
        Some(a) => a.reason.clone(),
        None => message_of(row, p.cells, p.width),
    };
    let lines = [(3, name.as_str()), (9, reference), (10, &message)]
        .iter()
        .map(|(c, t)| widths.lines(*c, t))
        .max()
        .unwrap_or(1);
    fit_row(ws, r, lines)?;
    ws.write_number_with_format(r, 0, row.line as f64, &f.line)?;
    put_status(ws, f, widths, r, 1, s.state().result_status())?;
    put_text(ws, f, widths, r, 2, &code_of(row))?;
    put_wrapped(ws, f, widths, r, 3, &name)?;
    put_amount(ws, f, r, 4, row.amount)?;
    widths.see(4, 16);
    put_status(ws, f, widths, r, 5, &mode)?;
    put_text(ws, f, widths, r, 6, &p.or_input(&row.account, Field::Account))?;
    put_text(ws, f, widths, r, 7, s.utr.as_deref().unwrap_or(""))?;
    if let Some(dt) = s.completed_at.as_deref().and_then(|t| local_datetime(t, tz)) {
        ws.write_datetime_with_format(r, 8, &dt, &f.print_datetime)?;
        widths.see(8, PRINT_DATETIME_FORMAT.len());
    }
    put_wrapped(ws, f, widths, r, 9, reference)?;
    put_wrapped(ws, f, widths, r, 10, &message)?;
    Ok(())
}

/// The Summary sheet: the batch, counts and amounts per status (with rows per mode) and per mode,
/// and the control check.
fn summary_sheet(f: &Formats, s: &Summary, tz: chrono_tz::Tz) -> anyhow::Result<Worksheet> {
    let mut ws = Worksheet::new();
    ws.set_name(SHEETS[1])?;
    print_setup(&mut ws, false)?;
    ws.set_column_width(0, 40)?;
    ws.set_column_width(1, 21)?;
    ws.set_column_width(2, 20)?;
    for c in 3..9u16 {
        ws.set_column_width(c, if c % 2 == 1 { 12 } else { 19 })?;
    }
    let mut r = 0u32;
    let written = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    for (label, value) in [
        ("Batch", s.batch.clone()),
        ("File", s.file.clone()),
        ("Gateway", s.gateway.clone()),
        ("Time zone", format!("{} (every time in this workbook)", tz.name())),
    ] {
        ws.write_string_with_format(r, 0, label, &f.bold)?;
        ws.write_string_with_format(r, 1, fit(&value), &f.text)?;
        r += 1;
    }
    ws.write_string_with_format(r, 0, "Written", &f.bold)?;
    if let Some(dt) = local_datetime(&written, tz) {
        ws.write_datetime_with_format(r, 1, &dt, &f.datetime)?;
    }
    r += 2;

    let mut head = vec!["Status".to_string(), "Rows".into(), "Amount (₹)".into()];
    for m in Mode::ALL {
        head.push(format!("{m} rows"));
        head.push(format!("{m} amount (₹)"));
    }
    for (i, h) in head.iter().enumerate() {
        ws.write_string_with_format(r, col(i), h, &f.header)?;
    }
    r += 1;
    let mut all = Tally::default();
    for status in STATUSES {
        let t = s.status_totals.get(status).copied().unwrap_or_default();
        all += t;
        ws.write_string(r, 0, status)?;
        tally(&mut ws, f, r, 1, t)?;
        for (i, m) in Mode::ALL.iter().enumerate() {
            let t = s.statuses.get(status).and_then(|by| by.get(m.as_str())).copied().unwrap_or_default();
            tally(&mut ws, f, r, 3 + 2 * i, t)?;
        }
        r += 1;
    }
    ws.write_string_with_format(r, 0, "All rows", &f.bold)?;
    tally(&mut ws, f, r, 1, all)?;
    r += 2;

    for (i, h) in ["Mode (valid rows)", "Rows", "Amount (₹)"].iter().enumerate() {
        ws.write_string_with_format(r, col(i), *h, &f.header)?;
    }
    r += 1;
    for m in Mode::ALL {
        ws.write_string(r, 0, m.as_str())?;
        tally(&mut ws, f, r, 1, s.mode_totals.get(m.as_str()).copied().unwrap_or_default())?;
        r += 1;
    }
    r += 1;

    let c = &s.control;
    for (i, h) in ["Control check", "Rows", "Amount (₹)"].iter().enumerate() {
        ws.write_string_with_format(r, col(i), *h, &f.header)?;
    }
    r += 1;
    ws.write_string(r, 0, "The file's valid rows, when it was read")?;
    tally(&mut ws, f, r, 1, c.file_valid)?;
    r += 1;
    ws.write_string(r, 0, "Their statuses now")?;
    tally(&mut ws, f, r, 1, c.statuses_valid)?;
    ws.write_string_with_format(r, 3, "SUCCESS + FAILED + PENDING + HELD + CANCELLED + NOT_SENT", &f.indented)?;
    r += 1;
    ws.write_string(r, 0, "Rows accounted for")?;
    ws.write_number_with_format(r, 1, c.rows_accounted as f64, &f.integer)?;
    ws.write_string_with_format(r, 2, format!("of {} in the file", c.file_rows), &f.indented)?;
    r += 1;
    ws.write_string_with_format(r, 0, "Result", &f.bold)?;
    if c.ok {
        ws.write_string_with_format(r, 1, "OK", &f.ok)?;
    } else {
        ws.write_string_with_format(r, 1, "MISMATCH", &f.mismatch)?;
    }
    r += 2;
    let needs = s.needs_attention_total;
    ws.write_string(
        r,
        0,
        if needs == 0 {
            "No row needs anyone.".to_string()
        } else {
            format!(
                "{} need someone: see the sheet \"{}\" for the next step of each.",
                super::plural(needs, "row"),
                SHEETS[2]
            )
        },
    )?;
    r += 1;
    ws.write_string(
        r,
        0,
        format!(
            "To print the results, print the sheet \"{}\": the same rows, laid out for paper (the sheet \"{}\" keeps the CSV's columns).",
            SHEETS[3], SHEETS[0]
        ),
    )?;
    Ok(ws)
}

/// Writes a count (at `c`) and an amount (at `c + 1`).
fn tally(ws: &mut Worksheet, f: &Formats, r: u32, c: usize, t: Tally) -> anyhow::Result<()> {
    ws.write_number_with_format(r, col(c), t.count as f64, &f.integer)?;
    match amount_number(t.amount) {
        Some(x) => ws.write_number_with_format(r, col(c + 1), x, &f.money)?,
        None => ws.write_string_with_format(r, col(c + 1), format!("₹{}", t.amount.to_indian()), &f.text)?,
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_become_the_nearest_double_of_their_decimal_text() {
        for paise in [1, 99, 100, 49_900_000, 123_456_789, 10_000_000_000_000] {
            let a = Amount::from_paise(paise);
            let x = amount_number(a).expect("exact");
            // The shortest text of the double reads back as the same amount.
            assert_eq!(format!("{x}").parse::<Amount>().expect("amount"), a, "{paise}");
        }
        assert_eq!(amount_number(Amount::from_paise(i64::MAX)), None);
    }

    #[test]
    fn wrapped_text_is_given_the_lines_it_takes() {
        assert_eq!(wrapped_lines("", 10), 1);
        assert_eq!(wrapped_lines("Account closed", 30), 1);
        // "correct" / "the row if" / "needed".
        assert_eq!(wrapped_lines("correct the row if needed", 10), 3);
        assert_eq!(wrapped_lines(&"x".repeat(10), 10), 1);
        // A word longer than the line is broken.
        assert_eq!(wrapped_lines(&"x".repeat(25), 10), 3);
        assert_eq!(wrapped_lines(&format!("ab {}", "x".repeat(20)), 10), 3);
        assert_eq!(wrapped_lines("one\ntwo", 30), 2);
    }

    #[test]
    fn times_are_shown_in_the_operator_zone() {
        let dt = local_datetime("2026-11-24T21:51:51.252Z", chrono_tz::Asia::Kolkata).expect("reads");
        // 21:51:51.252 UTC is 03:21:51.252 IST the next day.
        let expected = ExcelDateTime::from_ymd(2026, 11, 25).and_then(|d| d.and_hms_milli(3, 21, 51, 252)).expect("dt");
        assert_eq!(dt.to_excel(), expected.to_excel());
        assert!(local_datetime("yesterday", chrono_tz::Asia::Kolkata).is_none());
    }
}
