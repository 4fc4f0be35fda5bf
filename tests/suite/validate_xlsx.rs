//! Excel input (SPEC section 2): workbooks built here with rust_xlsxwriter, read by the library and
//! by `payrun validate`. Cells are read by their type (numbers in account and amount cells, dates,
//! formulas, errors), line numbers are the sheet's row numbers, `--sheet` picks a sheet, a workbook
//! is recognised by its content whatever its name, and other formats are refused in one line.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use payrun::input::{Code, Format, InputError, RuleOptions, Scanner};

use crate::support::input::{Outcome, err, try_scan, warn};
use rust_xlsxwriter::{ExcelDateTime, Format as CellFormat, Formula, Workbook, Worksheet};
use serde_json::Value;

/// A cell to write.
#[derive(Clone, Copy)]
enum C<'a> {
    S(&'a str),
    N(f64),
    B(bool),
    /// A formula and the value Excel saved with it.
    F(&'a str, &'a str),
    /// A date, formatted as one.
    D(u16, u8, u8),
}

/// Writes `rows` into `ws` with their top-left cell at (row, col), both 0-based.
fn put(ws: &mut Worksheet, row: u32, col: u16, rows: &[&[C<'_>]]) {
    let date = CellFormat::new().set_num_format("yyyy-mm-dd");
    for (r, cells) in rows.iter().enumerate() {
        for (c, cell) in cells.iter().enumerate() {
            let (r, c) = (row + r as u32, col + c as u16);
            match *cell {
                C::S("") => {}
                C::S(s) => {
                    ws.write_string(r, c, s).expect("write");
                }
                C::N(n) => {
                    ws.write_number(r, c, n).expect("write");
                }
                C::B(b) => {
                    ws.write_boolean(r, c, b).expect("write");
                }
                C::F(f, v) => {
                    ws.write_formula(r, c, Formula::new(f).set_result(v)).expect("write");
                }
                C::D(y, m, d) => {
                    let dt = ExcelDateTime::from_ymd(y, m, d).expect("date");
                    ws.write_datetime_with_format(r, c, &dt, &date).expect("write");
                }
            }
        }
    }
}

/// A workbook of named sheets, each written at its own top-left cell.
fn book(path: &Path, sheets: &[(&str, u32, u16, &[&[C<'_>]])]) {
    let mut wb = Workbook::new();
    for (name, row, col, rows) in sheets {
        let mut ws = Worksheet::new();
        ws.set_name(*name).expect("name");
        put(&mut ws, *row, *col, rows);
        wb.push_worksheet(ws);
    }
    wb.save(path).expect("save workbook");
}

const HEADER: &[C<'static>] =
    &[C::S("Beneficiary Name"), C::S("Account No"), C::S("IFSC Code"), C::S("Amount"), C::S("Mode"), C::S("Remarks")];

/// A valid row with the account as text and the amount as a number.
fn ok_row<'a>(account: &'a str, amount: f64) -> [C<'a>; 6] {
    [C::S("Ravi Kumar"), C::S(account), C::S("SBIN0000001"), C::N(amount), C::S("NEFT"), C::S("Salary")]
}

fn scan(path: &Path) -> Outcome {
    try_scan(path, true, RuleOptions::default()).unwrap_or_else(|e| panic!("file-level error: {e}"))
}

/// Runs `payrun validate ARGS` in an empty directory.
fn validate(file: &Path, extra: &[&str]) -> Output {
    let dir = tempfile::tempdir().expect("tempdir");
    Command::new(env!("CARGO_BIN_EXE_payrun"))
        .arg("validate")
        .arg(file)
        .args(extra)
        .current_dir(dir.path())
        .env_remove("PAYRUN_CONFIG")
        .output()
        .expect("payrun runs")
}

/// stderr with payrun's 80-column wrapping undone: one message, one line.
fn stderr(out: &Output) -> String {
    crate::support::work::unwrapped(&String::from_utf8_lossy(&out.stderr))
}

fn json(out: &Output) -> Value {
    let text = String::from_utf8(out.stdout.clone()).expect("stdout is UTF-8");
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("not one JSON document ({e}):\n{text}"))
}

fn tmp() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().to_path_buf();
    (dir, p)
}

#[test]
fn numbers_in_account_cells_warn_when_short_and_are_mangled_from_16_digits() {
    let (_d, dir) = tmp();
    let path = dir.join("accounts.xlsx");
    let rows: &[&[C<'_>]] = &[
        HEADER,
        &[C::S("A One"), C::N(39628544321.0), C::S("SBIN0000001"), C::N(100.0), C::S("NEFT"), C::S("")],
        &[C::S("A Two"), C::N(3456789012345678.0), C::S("SBIN0000001"), C::N(100.0), C::S("NEFT"), C::S("")],
        &[C::S("A Three"), C::S("0012345678901"), C::S("SBIN0000001"), C::N(100.0), C::S("NEFT"), C::S("")],
        &[C::S("A Four"), C::N(12345678.0), C::S("SBIN0000001"), C::N(100.0), C::S("NEFT"), C::S("")],
        &[C::S("A Five"), C::N(1.0e17), C::S("SBIN0000001"), C::N(100.0), C::S("NEFT"), C::S("")],
    ];
    book(&path, &[("Salary", 0, 0, rows)]);
    let o = scan(&path);
    assert_eq!(o.format, Format::Xlsx);
    assert_eq!(
        o.problems(),
        vec![
            warn(2, "Account No", Code::AccountAsNumber),
            err(3, "Account No", Code::SpreadsheetMangled),
            err(5, "Account No", Code::BadAccount),
            err(6, "Account No", Code::SpreadsheetMangled),
        ]
    );
    // The short number is valid, with the integer's digits; the warning says to format as text.
    assert_eq!(o.valid(0).account, "39628544321");
    let m = o.message(2, Code::AccountAsNumber);
    assert!(m.contains("Text") && m.contains("leading zeros"), "{m}");
    assert!(o.message(3, Code::SpreadsheetMangled).contains("15 significant digits"));
    assert!(o.message(5, Code::BadAccount).contains("number cell"));
    // A text cell keeps its leading zeros and gets no warning.
    assert_eq!(o.valid(2).account, "0012345678901");
    assert_eq!(o.rows[0].cells[1], "39628544321", "the integer's digits, no '.0'");
}

#[test]
fn amounts_as_numbers_and_as_text_meet_the_same_rules() {
    let (_d, dir) = tmp();
    let path = dir.join("amounts.xlsx");
    let row = |acc: &'static str, amount: C<'static>| -> Vec<C<'static>> {
        vec![C::S("Ravi Kumar"), C::S(acc), C::S("SBIN0000001"), amount, C::S("NEFT"), C::S("")]
    };
    let data = [
        row("111111111", C::N(1500.0)),
        row("111111112", C::N(1500.5)),
        row("111111113", C::N(1500.123)),
        row("111111114", C::S("₹4,99,000.00")),
        row("111111115", C::N(0.1 + 0.2)),
        row("111111116", C::N(-100.0)),
        row("111111117", C::D(2026, 11, 30)),
        row("111111118", C::S("1,500.00")),
        row("111111119", C::N(1_000_000_001.0)),
    ];
    let mut rows: Vec<&[C<'_>]> = vec![HEADER];
    rows.extend(data.iter().map(Vec::as_slice));
    book(&path, &[("Pay", 0, 0, &rows)]);
    let o = scan(&path);
    assert_eq!(
        o.problems(),
        vec![
            err(4, "Amount", Code::BadAmount),
            err(6, "Amount", Code::BadAmount),
            err(7, "Amount", Code::BadAmount),
            err(8, "Amount", Code::BadAmount),
            err(10, "Amount", Code::BadAmount),
        ]
    );
    assert_eq!(o.valid(0).amount.paise(), 1500_00);
    assert_eq!(o.rows[0].cells[3], "1500", "an integral number reads without '.0'");
    assert_eq!(o.valid(1).amount.paise(), 1500_50);
    assert_eq!(o.valid(3).amount.paise(), 4_99_000_00, "text cells are text");
    assert_eq!(o.valid(7).amount.paise(), 1500_00);
    assert!(o.message(4, Code::BadAmount).contains("1500.123"));
    let m = o.message(6, Code::BadAmount);
    assert!(m.contains("0.30000000000000004") && m.contains("ROUND"), "never rounded: {m}");
    let m = o.message(8, Code::BadAmount);
    assert!(m.contains("date") && m.contains("2026-11-30"), "{m}");
}

#[test]
fn dates_are_errors_in_account_cells_and_iso_text_elsewhere() {
    let (_d, dir) = tmp();
    let path = dir.join("dates.xlsx");
    let rows: &[&[C<'_>]] = &[
        &[C::S("Name"), C::S("Account"), C::S("IFSC"), C::S("Amount"), C::S("Mode"), C::S("Pay Date")],
        &[C::S("A One"), C::D(2026, 1, 2), C::S("SBIN0000001"), C::N(1.0), C::S("NEFT"), C::D(2026, 11, 30)],
        &[C::S("A Two"), C::S("111111111"), C::S("SBIN0000001"), C::N(1.0), C::S("NEFT"), C::D(2026, 11, 30)],
    ];
    book(&path, &[("S", 0, 0, rows)]);
    let o = scan(&path);
    assert_eq!(o.problems(), vec![err(2, "Account", Code::BadAccount)]);
    assert!(o.message(2, Code::BadAccount).contains("date"));
    assert_eq!(o.rows[1].cells[5], "2026-11-30");
}

#[test]
fn empty_rows_in_the_middle_keep_the_sheet_row_numbers() {
    let (_d, dir) = tmp();
    let path = dir.join("gaps.xlsx");
    let r2 = ok_row("111111111", 100.0);
    let r5 = ok_row("111111112", 100.0);
    let r8 = [C::S("Zoë"), C::S("111111113"), C::S("SBIN0000001"), C::N(100.0), C::S("NEFT"), C::S("")];
    let rows: &[&[C<'_>]] = &[
        HEADER,                                   // 1
        &r2,                                      // 2
        &[],                                      // 3
        &[],                                      // 4
        &r5,                                      // 5
        &[C::S("   "), C::S(""), C::S("\u{a0}")], // 6: only spaces
        &[],                                      // 7
        &r8,                                      // 8
    ];
    book(&path, &[("Salary", 0, 0, rows)]);
    let o = scan(&path);
    assert_eq!(o.rows.iter().map(|r| r.line).collect::<Vec<_>>(), vec![2, 5, 8]);
    assert_eq!(o.problems(), vec![err(8, "Beneficiary Name", Code::BadName)]);
}

#[test]
fn a_used_range_not_starting_at_a1_is_read_with_excel_row_numbers() {
    let (_d, dir) = tmp();
    let path = dir.join("offset.xlsx");
    let r1 = ok_row("111111111", 250.0);
    let r3 = [C::S("Ravi Kumar"), C::S("111111112"), C::S("SBIN0000001"), C::S("abc"), C::S("NEFT"), C::S("")];
    let rows: &[&[C<'_>]] = &[HEADER, &r1, &[], &r3];
    // Header in C4: rows 4 to 7 of the sheet, columns C to H.
    book(&path, &[("Offset", 3, 2, rows)]);
    let o = scan(&path);
    assert_eq!(o.header, ["Beneficiary Name", "Account No", "IFSC Code", "Amount", "Mode", "Remarks"]);
    assert_eq!(o.rows.iter().map(|r| r.line).collect::<Vec<_>>(), vec![5, 7]);
    assert_eq!(o.valid(0).amount.paise(), 250_00);
    assert_eq!(o.rows[0].cells.len(), 6, "no empty columns A and B in front");
    assert_eq!(o.problems(), vec![err(7, "Amount", Code::BadAmount)]);
}

#[test]
fn formulas_give_their_saved_values_and_errors_and_booleans_fail_clearly() {
    let (_d, dir) = tmp();
    let path = dir.join("formulas.xlsx");
    let rows: &[&[C<'_>]] = &[
        HEADER,
        &[C::S("A One"), C::S("111111111"), C::S("SBIN0000001"), C::F("=1500*2", "3000"), C::S("NEFT"), C::S("")],
        &[C::S("A Two"), C::S("111111112"), C::S("SBIN0000001"), C::F("=NA()", "#N/A"), C::S("NEFT"), C::S("")],
        &[C::S("A Three"), C::F("=B2", "#REF!"), C::S("SBIN0000001"), C::N(1.0), C::S("NEFT"), C::S("")],
        &[C::S("A Four"), C::S("111111114"), C::S("SBIN0000001"), C::N(1.0), C::B(true), C::S("")],
        &[C::S("A Five"), C::S("111111115"), C::S("SBIN0000001"), C::N(1.0), C::F("=\"IM\"&\"PS\"", "IMPS"), C::S("")],
    ];
    book(&path, &[("S", 0, 0, rows)]);
    let o = scan(&path);
    assert_eq!(o.valid(0).amount.paise(), 3000_00, "the cached value of the formula");
    assert_eq!(
        o.problems(),
        vec![err(3, "Amount", Code::BadAmount), err(4, "Account No", Code::BadAccount), err(5, "Mode", Code::BadMode)]
    );
    let m = o.message(3, Code::BadAmount);
    assert!(m.contains("#N/A") && m.contains("spreadsheet error"), "{m}");
    assert!(o.message(4, Code::BadAccount).contains("#REF!"));
    let m = o.message(5, Code::BadMode);
    assert!(m.contains("TRUE") && m.contains("TRUE/FALSE"), "{m}");
    assert_eq!(o.valid(4).mode, payrun::input::Mode::Imps);
}

#[test]
fn sheet_picks_a_sheet_and_an_unknown_one_lists_them() {
    let (_d, dir) = tmp();
    let path = dir.join("two.xlsx");
    let summary: &[&[C<'_>]] = &[&[C::S("Month"), C::S("Total")], &[C::S("Nov"), C::N(100.0)]];
    let r = ok_row("111111111", 100.0);
    let salary: &[&[C<'_>]] = &[HEADER, &r];
    book(&path, &[("Summary", 0, 0, summary), ("Salary", 0, 0, salary)]);

    // The first sheet is read by default: here it is not a payout table.
    let e = try_scan(&path, true, RuleOptions::default()).err().expect("missing columns");
    assert!(matches!(e, InputError::MissingColumns { .. }), "{e}");
    let opts = |s: &str| RuleOptions { sheet: Some(s.to_string()), ..Default::default() };
    let o = try_scan(&path, true, opts("Salary")).expect("reads");
    assert_eq!(o.sheet.as_deref(), Some("Salary"));
    assert_eq!(o.valid(0).amount.paise(), 100_00);
    // Case and surrounding spaces are forgiven when that names one sheet.
    assert_eq!(try_scan(&path, true, opts(" salary ")).expect("reads").sheet.as_deref(), Some("Salary"));

    let e = try_scan(&path, true, opts("Bonus")).err().expect("no such sheet");
    let m = e.to_string();
    assert!(m.contains("'Bonus'") && m.contains("'Summary', 'Salary'"), "{m}");

    // The CLI: exit 1 with one line naming the sheets; with --sheet, exit 0 and the sheet is said.
    let out = validate(&path, &["--sheet", "Bonus"]);
    assert_eq!(out.status.code(), Some(1));
    let lines: Vec<String> = stderr(&out).lines().map(str::to_string).collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("'Summary', 'Salary'"), "{lines:?}");
    let out = validate(&path, &["--sheet", "Salary"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("sheet 'Salary'"));
    let out = validate(&path, &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("in sheet 'Summary' of 'Summary', 'Salary': --sheet NAME reads another"), "{err}");
    // A workbook of several sheets that reads fine says which one it read.
    let out = validate(&path, &["--sheet", "Salary"]);
    assert!(stderr(&out).contains("read sheet 'Salary' of 2"), "{}", stderr(&out));
}

#[test]
fn each_sheet_of_a_workbook_is_its_own_batch_and_the_default_keeps_the_file_hash() {
    let (_d, dir) = tmp();
    let path = dir.join("two.xlsx");
    let a = ok_row("111111111", 100.0);
    let b = ok_row("111111112", 200.0);
    book(&path, &[("Salary", 0, 0, &[HEADER, &a]), ("Bonus", 0, 0, &[HEADER, &b])]);
    let opts = |s: Option<&str>| RuleOptions { sheet: s.map(str::to_string), ..Default::default() };
    let default = try_scan(&path, true, opts(None)).expect("reads");
    let named_default = try_scan(&path, true, opts(Some("Salary"))).expect("reads");
    let bonus = try_scan(&path, true, opts(Some("Bonus"))).expect("reads");
    let file_sha = payrun::input::reader::sniff(&path, true).expect("sniff").sha256;
    assert!(file_sha.is_some());
    assert_eq!(default.sha, file_sha, "the batch id of the default sheet is the file's");
    assert_eq!(named_default.sha, file_sha);
    assert_ne!(bonus.sha, file_sha, "another sheet is another batch");
}

#[test]
fn the_first_visible_sheet_is_the_default() {
    let (_d, dir) = tmp();
    let path = dir.join("hidden.xlsx");
    let mut wb = Workbook::new();
    let mut hidden = Worksheet::new();
    hidden.set_name("Old").expect("name");
    put(&mut hidden, 0, 0, &[&[C::S("x")]]);
    hidden.set_hidden(true);
    let mut pay = Worksheet::new();
    pay.set_name("Pay").expect("name");
    let r = ok_row("111111111", 100.0);
    put(&mut pay, 0, 0, &[HEADER, &r]);
    pay.set_active(true);
    wb.push_worksheet(hidden);
    wb.push_worksheet(pay);
    wb.save(&path).expect("save");
    let o = scan(&path);
    assert_eq!(o.sheet.as_deref(), Some("Pay"));
    assert_eq!(o.rows.len(), 1);
}

#[test]
fn a_title_row_above_the_table_is_passed_over_and_rows_keep_their_excel_numbers() {
    let (_d, dir) = tmp();
    let path = dir.join("titled.xlsx");
    let r = ok_row("111111111", 100.0);
    let bad = ok_row("1", 100.0);
    let title: &[C<'_>] = &[C::S("ACME Pvt Ltd: Salary Nov 2026")];
    book(&path, &[("Pay", 0, 0, &[title, &[], HEADER, &r, &bad])]);
    let o = scan(&path);
    assert_eq!(o.header[0], "Beneficiary Name");
    assert_eq!(o.rows.iter().map(|r| r.line).collect::<Vec<_>>(), vec![4, 5]);
    assert_eq!(o.problems(), vec![err(5, "Account No", Code::BadAccount)]);
    let out = validate(&path, &[]);
    assert!(stderr(&out).contains("the header is on line 3"), "{}", stderr(&out));
}

#[test]
fn an_empty_first_sheet_names_the_others() {
    let (_d, dir) = tmp();
    let path = dir.join("empty-first.xlsx");
    let r = ok_row("111111111", 100.0);
    book(&path, &[("Sheet1", 0, 0, &[]), ("Data", 0, 0, &[HEADER, &r])]);
    match try_scan(&path, true, RuleOptions::default()) {
        Err(e @ InputError::EmptySheet { .. }) => {
            let m = e.to_string();
            assert!(m.contains("'Sheet1' is empty") && m.contains("'Data'") && m.contains("--sheet"), "{m}");
        }
        other => panic!("expected EmptySheet, got {:?}", other.map(|o| o.rows.len())),
    }
    let o = try_scan(&path, true, RuleOptions { sheet: Some("Data".into()), ..RuleOptions::default() }).expect("reads");
    assert_eq!(o.rows.len(), 1);
}

#[test]
fn a_workbook_named_csv_is_read_as_a_workbook() {
    let (_d, dir) = tmp();
    let path = dir.join("payroll.csv");
    let r = ok_row("111111111", 1500.0);
    book(&path, &[("Salary", 0, 0, &[HEADER, &r])]);
    let out = validate(&path, &["--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc = json(&out);
    assert_eq!(doc["format"], "xlsx");
    assert_eq!(doc["sheet"], "Salary");
    assert_eq!(doc["valid"].as_u64(), Some(1));
    assert_eq!(doc["totals"]["total"]["amount"], "1500.00");
}

#[test]
fn sheet_on_a_csv_file_is_an_error() {
    let (_d, dir) = tmp();
    let path = dir.join("plain.csv");
    std::fs::write(&path, "Name,Account,IFSC,Amount,Mode\nRavi Kumar,111111111,SBIN0000001,1,NEFT\n").expect("write");
    let out = validate(&path, &["--sheet", "Salary"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("has no sheets"), "{}", stderr(&out));
}

#[test]
fn validate_json_and_rejects_on_a_workbook() {
    let (_d, dir) = tmp();
    let path = dir.join("mixed.xlsx");
    let rows: &[&[C<'_>]] = &[
        HEADER,
        &ok_row("111111111", 1500.0),
        &[],
        &[C::S("=HYPERLINK(\"x\")"), C::N(39628544321.0), C::S("SBIN000001"), C::N(12.345), C::S("NEFT"), C::S("")],
        &[C::S("Kavya"), C::N(111111112.0), C::S("SBIN0000001"), C::N(99.0), C::S("NEFT"), C::S("Gehalt für Nov – ₹")],
    ];
    book(&path, &[("Salary", 0, 0, rows)]);
    let out = validate(&path, &["--json"]);
    assert_eq!(out.status.code(), Some(1));
    let doc = json(&out);
    assert_eq!(doc["format"], "xlsx");
    assert_eq!(doc["rows"].as_u64(), Some(3));
    assert_eq!(doc["valid"].as_u64(), Some(2));
    assert_eq!(doc["warnings"].as_u64(), Some(3));
    let problems = doc["problems"].as_array().expect("problems");
    let has = |line: u64, code: &str, sev: &str| {
        problems.iter().any(|p| p["line"].as_u64() == Some(line) && p["code"] == code && p["severity"] == sev)
    };
    assert!(has(4, "BAD_NAME", "error") && has(4, "BAD_IFSC", "error") && has(4, "BAD_AMOUNT", "error"));
    assert!(has(4, "ACCOUNT_AS_NUMBER", "warning"));
    assert!(has(5, "ACCOUNT_AS_NUMBER", "warning") && has(5, "REMARKS_CHANGED", "warning"));
    let remark = problems.iter().find(|p| p["code"] == "REMARKS_CHANGED").expect("remarks warning");
    assert!(remark["message"].as_str().is_some_and(|m| m.contains("'Gehalt fur Nov - Rs'")), "{remark}");

    let rejects = dir.join("rejects.csv");
    let out = validate(&path, &["--rejects", rejects.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(1));
    let mut r = csv::Reader::from_path(&rejects).expect("rejects");
    let header: Vec<String> = r.headers().expect("header").iter().map(str::to_string).collect();
    assert_eq!(
        header,
        ["Beneficiary Name", "Account No", "IFSC Code", "Amount", "Mode", "Remarks", "line", "code", "reason"]
    );
    let rows: Vec<csv::StringRecord> = r.records().map(|x| x.expect("row")).collect();
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(&row[0], "'=HYPERLINK(\"x\")", "inert");
    assert_eq!(&row[1], "39628544321", "a number cell as its digits");
    assert_eq!(&row[3], "12.345");
    assert_eq!((&row[6], &row[7]), ("4", "BAD_NAME;BAD_IFSC;BAD_AMOUNT"), "every code of the row");
    assert!(row[8].contains("BAD_AMOUNT"));
}

/// CRC-32 (IEEE), for the hand-made zip below.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for b in data {
        crc ^= u32::from(*b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// A zip archive holding one stored file.
fn zip_with(name: &str, data: &[u8]) -> Vec<u8> {
    let crc = crc32(data);
    let mut z = Vec::new();
    let le16 = |v: u16| v.to_le_bytes();
    let le32 = |v: u32| v.to_le_bytes();
    z.extend(b"PK\x03\x04");
    z.extend(le16(20));
    z.extend([0, 0, 0, 0, 0, 0, 0, 0]); // flags, method (stored), time, date
    z.extend(le32(crc));
    z.extend(le32(data.len() as u32));
    z.extend(le32(data.len() as u32));
    z.extend(le16(name.len() as u16));
    z.extend(le16(0));
    z.extend(name.as_bytes());
    z.extend(data);
    let central = z.len() as u32;
    z.extend(b"PK\x01\x02");
    z.extend(le16(20));
    z.extend(le16(20));
    z.extend([0, 0, 0, 0, 0, 0, 0, 0]);
    z.extend(le32(crc));
    z.extend(le32(data.len() as u32));
    z.extend(le32(data.len() as u32));
    z.extend(le16(name.len() as u16));
    z.extend([0u8; 12]); // extra, comment, disk, internal attrs, external attrs (4)
    z.extend([0u8; 2]);
    z.extend(le32(0)); // local header offset
    z.extend(name.as_bytes());
    let size = z.len() as u32 - central;
    z.extend(b"PK\x05\x06");
    z.extend([0u8; 4]);
    z.extend(le16(1));
    z.extend(le16(1));
    z.extend(le32(size));
    z.extend(le32(central));
    z.extend(le16(0));
    z
}

#[test]
fn other_formats_get_one_line_naming_the_format_and_exit_1() {
    let (_d, dir) = tmp();
    let mut ole2 = vec![0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];
    ole2.resize(4096, 0);
    let mut binary = Vec::new();
    let mut x: u32 = 12345;
    for _ in 0..4096 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        binary.push((x >> 16) as u8);
    }
    binary[100] = 0;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "payroll.csv",
            b"%PDF-1.7\n%\xE2\xE3\xCF\xD3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n".to_vec(),
            "a PDF document",
        ),
        ("salary.xls", ole2, ".xls"),
        ("archive.csv", zip_with("hello.txt", b"hello, world\n"), "a zip archive"),
        ("letter.xlsx", zip_with("word/document.xml", b"<w:document/>"), "a Word document"),
        ("noise.csv", binary, "a binary file"),
        ("page.xls", b"<!DOCTYPE html>\n<html><table><tr><td>Name</td></tr></table></html>\n".to_vec(), "HTML"),
    ];
    for (name, bytes, what) in cases {
        let path = dir.join(name);
        std::fs::write(&path, &bytes).expect("write");
        let out = validate(&path, &[]);
        assert_eq!(out.status.code(), Some(1), "{name}");
        assert!(out.stdout.is_empty(), "{name}: nothing on stdout");
        let err = stderr(&out);
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 1, "{name}: one line: {err:?}");
        assert!(lines[0].contains(name) && lines[0].contains(what), "{name}: {err}");
        assert!(lines[0].contains("not a CSV or .xlsx file"), "{name}: {err}");
        assert!(err.chars().all(|c| !c.is_control() || c == '\n'), "{name}: no raw bytes: {err:?}");
        // The library error is the same, and --json says it too.
        let e = Scanner::open(&path, false, RuleOptions::default()).err().expect("refused");
        assert!(matches!(e, InputError::NotTabular { .. }), "{name}: {e}");
        let doc = json(&validate(&path, &["--json"]));
        assert!(doc["error"].as_str().is_some_and(|e| e.contains(what)), "{name}: {doc}");
    }
}

#[test]
fn a_damaged_workbook_is_one_line_too() {
    let (_d, dir) = tmp();
    let path = dir.join("cut.xlsx");
    let r = ok_row("111111111", 1500.0);
    book(&path, &[("Salary", 0, 0, &[HEADER, &r])]);
    let bytes = std::fs::read(&path).expect("read");
    std::fs::write(&path, &bytes[..bytes.len() / 2]).expect("truncate");
    let out = validate(&path, &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("cut.xlsx") && err.contains("save it again"), "{err}");
}

/// `payrun run ARGS` against the embedded sandbox, clean and fast, in `dir` with state `dir/S`.
fn pay(dir: &Path, file: &Path, extra: &[&str]) -> Output {
    std::fs::write(
        dir.join("payrun.toml"),
        "[gateway]\ntimeout = \"1s\"\n[run]\nfirst_poll = \"100ms\"\nmax_poll_interval = \"500ms\"\n",
    )
    .expect("config");
    Command::new(env!("CARGO_BIN_EXE_payrun"))
        .arg("run")
        .arg(file)
        .args(["--state", "S", "--sandbox-profile", "clean", "--rate", "2000", "--burst", "200", "--json"])
        .args(extra)
        .current_dir(dir)
        .env("PAYRUN_CONFIG", dir.join("payrun.toml"))
        .stdin(std::process::Stdio::null())
        .output()
        .expect("payrun runs")
}

#[test]
fn run_pays_a_workbook_sheet_by_sheet_and_keeps_the_cells_in_the_result() {
    let (_d, dir) = tmp();
    let path = dir.join("payroll.xlsx");
    let salary_rows: &[&[C<'_>]] = &[
        HEADER,
        &[C::S("Ravi Kumar"), C::N(39628544321.0), C::S("SBIN0000001"), C::N(1500.5), C::S("NEFT"), C::S("für Nov")],
        &ok_row("111111112", 2000.0),
    ];
    let bonus = ok_row("111111113", 700.0);
    book(&path, &[("Salary", 0, 0, salary_rows), ("Bonus", 0, 0, &[HEADER, &bonus])]);

    let out = pay(&dir, &path, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc = json(&out);
    let result = doc["result"].as_str().map(PathBuf::from).unwrap_or_else(|| {
        let dir = dir.join("S").join("results");
        std::fs::read_dir(&dir).expect("results").next().expect("one result").expect("entry").path()
    });
    let mut r = csv::Reader::from_path(dir.join(&result)).expect("result file");
    let header: Vec<String> = r.headers().expect("header").iter().map(str::to_string).collect();
    assert_eq!(header[..6], ["Beneficiary Name", "Account No", "IFSC Code", "Amount", "Mode", "Remarks"]);
    let rows: Vec<csv::StringRecord> = r.records().map(|x| x.expect("row")).collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(&rows[0][1], "39628544321");
    assert_eq!(&rows[0][5], "für Nov", "the result keeps the file's cell");
    let status = header.iter().position(|h| h == "status").expect("status column");
    assert!(rows.iter().all(|row| &row[status] == "SUCCESS"), "{rows:?}");

    // The other sheet is another payment: paid as its own batch, not refused as "already paid".
    let out = pay(&dir, &path, &["--sheet", "Bonus"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // Paying the same sheet again is refused.
    let out = pay(&dir, &path, &["--sheet", "Bonus"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("already paid"), "{}", stderr(&out));

    // Another format is refused by run too, in one line, nothing sent.
    let pdf = dir.join("payroll.csv");
    std::fs::write(&pdf, b"%PDF-1.7\n%\xE2\xE3\xCF\xD3\n").expect("write");
    let out = pay(&dir, &pdf, &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("is a PDF document, not a CSV or .xlsx file"), "{err}");
}

#[test]
fn hidden_and_filtered_out_rows_are_read_with_a_warning() {
    // An operator filters the sheet (say to one department) or hides rows, then hands the workbook
    // over: Excel's own "Save as CSV" writes the hidden rows too, so payrun reads them, and says so
    // for each, since nobody looking at the sheet saw them. The second sheet's name needs escaping
    // in the workbook's XML.
    let (_d, dir) = tmp();
    let path = dir.join("filtered.xlsx");
    let mut wb = Workbook::new();
    let mut first = Worksheet::new();
    first.set_name("R&D <Nov>").expect("name");
    let (a, b, c) = (ok_row("111111111", 100.0), ok_row("111111112", 200.0), ok_row("111111113", 300.0));
    put(&mut first, 0, 0, &[HEADER, &a, &b, &c]);
    first.set_row_hidden(2).expect("hide");
    let mut second = Worksheet::new();
    second.set_name("Other").expect("name");
    put(&mut second, 0, 0, &[HEADER, &a, &b, &c]);
    second.autofilter(0, 0, 3, 5).expect("filter");
    second.filter_column(4, &rust_xlsxwriter::FilterCondition::new().add_list_filter("IMPS")).expect("filter");
    wb.push_worksheet(first);
    wb.push_worksheet(second);
    wb.save(&path).expect("save");

    let o = scan(&path);
    assert_eq!(o.rows.len(), 3, "hidden rows are read");
    assert_eq!(o.problems(), vec![warn(3, "", Code::HiddenRow)]);
    assert!(o.message(3, Code::HiddenRow).contains("hidden in the sheet"));
    assert!(o.valid(1).amount.paise() == 200_00, "still a valid row");

    // Every row the filter hides (all three: none is IMPS), on the named sheet.
    let o = try_scan(&path, true, RuleOptions { sheet: Some("Other".into()), ..Default::default() }).expect("reads");
    assert_eq!(
        o.problems(),
        vec![warn(2, "", Code::HiddenRow), warn(3, "", Code::HiddenRow), warn(4, "", Code::HiddenRow)]
    );

    let out = validate(&path, &["--json"]);
    assert_eq!(out.status.code(), Some(0), "a warning: {}", stderr(&out));
    let doc = json(&out);
    let codes: Vec<&str> =
        doc["problems"].as_array().expect("problems").iter().filter_map(|p| p["code"].as_str()).collect();
    assert_eq!(codes, vec!["HIDDEN_ROW"]);
}

/// Replaces, in the zip at `path`, every `<v>` element of the first sheet's formula cells with
/// nothing: a workbook as a program writes it (openpyxl, some HRMS exports), never calculated.
fn drop_saved_formula_values(path: &Path) {
    use std::io::{Read, Write};
    let file = std::fs::File::open(path).expect("open");
    let mut zip = zip::ZipArchive::new(file).expect("zip");
    let out_path = path.with_extension("tmp.xlsx");
    let mut out = zip::ZipWriter::new(std::fs::File::create(&out_path).expect("create"));
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).expect("entry");
        let name = entry.name().expect("entry name").to_string();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).expect("read");
        if name == "xl/worksheets/sheet1.xml" {
            let mut text = String::from_utf8(data).expect("utf-8");
            // `<c ...><f>...</f><v>...</v></c>` → `<c ...><f>...</f></c>`
            while let Some(f_end) = text.find("</f><v>") {
                let v_end = text[f_end..].find("</v>").expect("closed") + f_end;
                text.replace_range(f_end + 4..v_end + 4, "");
            }
            data = text.into_bytes();
        }
        out.start_file(name, zip::write::SimpleFileOptions::default()).expect("start");
        out.write_all(&data).expect("write");
    }
    out.finish().expect("finish");
    std::fs::rename(&out_path, path).expect("rename");
}

#[test]
fn a_formula_never_calculated_is_empty_and_the_message_says_why() {
    let (_d, dir) = tmp();
    let path = dir.join("generated.xlsx");
    let ok = ok_row("111111111", 100.0);
    let amount_formula = [
        C::S("Ravi Kumar"),
        C::S("111111112"),
        C::S("SBIN0000001"),
        C::F("=1500*1.1", "1650"),
        C::S("NEFT"),
        C::S("Salary"),
    ];
    let mode_formula = [
        C::S("Ravi Kumar"),
        C::S("111111113"),
        C::S("SBIN0000001"),
        C::N(300000.0),
        C::F("=IF(D4>=200000,\"RTGS\",\"NEFT\")", "RTGS"),
        C::S("Salary"),
    ];
    book(&path, &[("Pay", 0, 0, &[HEADER, &ok, &amount_formula, &mode_formula])]);
    // As Excel saved it: the saved values are read.
    assert!(scan(&path).problems().is_empty());

    drop_saved_formula_values(&path);
    let o = try_scan(&path, true, RuleOptions { mode_auto: true, ..Default::default() }).expect("reads");
    assert_eq!(o.problems(), vec![err(3, "Amount", Code::MissingField), err(4, "Mode", Code::MissingField)]);
    assert!(o.message(3, Code::MissingField).contains("formula whose value was never saved"));
    assert!(o.message(4, Code::MissingField).contains("open the workbook in Excel and save it"));
}
