//! End-to-end tests of `payrun validate` (SPEC section 2): exit codes, the `--json` document,
//! `--rejects`, file-level errors and the encoding note.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use payrun::input::{Mode, RuleOptions, Scanner};
use payrun::money::Amount;
use serde_json::Value;

fn sample(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("samples").join(name)
}

/// Runs `payrun validate ARGS` in an empty directory (no `payrun.toml` can change the rules).
fn validate(args: &[&std::ffi::OsStr]) -> Output {
    let dir = tempfile::tempdir().expect("tempdir");
    Command::new(env!("CARGO_BIN_EXE_payrun"))
        .arg("validate")
        .args(args)
        .current_dir(dir.path())
        .env_remove("PAYRUN_CONFIG")
        .output()
        .expect("payrun runs")
}

fn run(file: &Path, extra: &[&str]) -> Output {
    let mut args: Vec<&std::ffi::OsStr> = vec![file.as_os_str()];
    args.extend(extra.iter().map(std::ffi::OsStr::new));
    validate(&args)
}

fn json(out: &Output) -> Value {
    let text = String::from_utf8(out.stdout.clone()).expect("stdout is UTF-8");
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{text}"))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn amount(v: &Value) -> Amount {
    v.as_str().and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("not an amount: {v}"))
}

/// Checks that the per-mode totals add up to the total and returns them.
fn check_totals(doc: &Value) -> Vec<(String, u64, Amount)> {
    let totals = doc["totals"].as_object().expect("totals is an object");
    let mut sum_count = 0;
    let mut sum_amount = Amount::ZERO;
    let mut per_mode = Vec::new();
    for m in ["NEFT", "IMPS", "RTGS"] {
        let t = &totals[m];
        let count = t["count"].as_u64().expect("count");
        let amt = amount(&t["amount"]);
        sum_count += count;
        sum_amount += amt;
        per_mode.push((m.to_string(), count, amt));
    }
    assert_eq!(totals["total"]["count"].as_u64(), Some(sum_count));
    assert_eq!(amount(&totals["total"]["amount"]), sum_amount);
    assert_eq!(doc["valid"].as_u64(), Some(sum_count), "the totals count the valid rows");
    per_mode
}

#[test]
fn the_good_samples_exit_0() {
    for name in ["salary-2026-11.csv", "vendors-2026-11.csv"] {
        let out = run(&sample(name), &[]);
        assert_eq!(out.status.code(), Some(0), "{name}: {}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
        let out = run(&sample(name), &["--json"]);
        assert_eq!(out.status.code(), Some(0), "{name}");
        let doc = json(&out);
        assert_eq!(doc["invalid"].as_u64(), Some(0), "{name}");
        assert_eq!(doc["valid"], doc["rows"], "{name}");
        assert!(doc["rows"].as_u64().expect("rows") > 0);
        assert_eq!(doc["problems"].as_array().map(|p| p.iter().filter(|p| p["severity"] == "error").count()), Some(0));
    }
}

#[test]
fn totals_per_mode_add_up_and_match_the_rows() {
    for name in ["salary-2026-11.csv", "vendors-2026-11.csv", "mistakes.csv"] {
        let path = sample(name);
        let doc = json(&run(&path, &["--json"]));
        let totals = check_totals(&doc);
        // The same sums computed independently from the library's verdicts.
        let mut sc = Scanner::open(&path, false, RuleOptions::default()).expect("opens");
        let mut expected: Vec<(String, u64, Amount)> =
            Mode::ALL.iter().map(|m| (m.as_str().to_string(), 0, Amount::ZERO)).collect();
        while let Some(v) = sc.next().expect("reads") {
            if let Some(r) = &v.row {
                let e = expected.iter_mut().find(|e| e.0 == r.mode.as_str()).expect("mode");
                e.1 += 1;
                e.2 += r.amount;
            }
        }
        assert_eq!(totals, expected, "{name}");
    }
    // The vendors sample uses all three rails.
    let doc = json(&run(&sample("vendors-2026-11.csv"), &["--json"]));
    for m in ["NEFT", "IMPS", "RTGS"] {
        assert!(doc["totals"][m]["count"].as_u64().expect("count") > 0, "{m}");
    }
}

#[test]
fn mistakes_exit_1_and_json_reports_every_code() {
    let path = sample("mistakes.csv");
    let out = run(&path, &[]);
    assert_eq!(out.status.code(), Some(1));

    let out = run(&path, &["--json"]);
    assert_eq!(out.status.code(), Some(1));
    let doc = json(&out);
    for key in ["file", "encoding", "rows", "valid", "invalid", "totals", "problems"] {
        assert!(doc.get(key).is_some(), "missing key {key}: {doc}");
    }
    assert_eq!(doc["encoding"], "utf-8");
    assert_eq!(doc["rows"].as_u64(), Some(15));
    assert_eq!(doc["valid"].as_u64(), Some(1));
    assert_eq!(doc["invalid"].as_u64(), Some(14));
    let problems = doc["problems"].as_array().expect("problems is an array");
    for p in problems {
        assert!(p["line"].as_u64().is_some_and(|l| l >= 2), "{p}");
        assert!(p["column"].is_string(), "{p}");
        assert!(p["code"].is_string(), "{p}");
        assert!(p["severity"] == "error" || p["severity"] == "warning", "{p}");
        assert!(p["message"].as_str().is_some_and(|m| !m.is_empty()), "{p}");
    }
    let codes: BTreeSet<&str> = problems.iter().filter_map(|p| p["code"].as_str()).collect();
    for code in [
        "SPREADSHEET_MANGLED",
        "BAD_IFSC",
        "UNKNOWN_IFSC",
        "BAD_AMOUNT",
        "MODE_LIMIT",
        "BAD_NAME",
        "MISSING_FIELD",
        "BAD_MODE",
        "DUPLICATE_ROW",
        "BAD_REF",
        "BAD_ACCOUNT",
        "BAD_ROW",
    ] {
        assert!(codes.contains(code), "{code} not reported: {codes:?}");
    }
    // Line, column and code of a few, as the file has them.
    let has = |line: u64, column: &str, code: &str| {
        problems.iter().any(|p| p["line"].as_u64() == Some(line) && p["column"] == column && p["code"] == code)
    };
    assert!(has(3, "Account No", "SPREADSHEET_MANGLED"));
    assert!(has(10, "Amount", "MISSING_FIELD"));
    assert!(has(12, "Account No", "DUPLICATE_ROW"));
    assert!(has(13, "Reference", "BAD_REF"));
    assert!(has(16, "", "BAD_ROW"));
}

#[test]
fn rejects_file_has_the_input_header_plus_line_code_and_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rejects = dir.path().join("rejects.csv");
    let out = run(&sample("mistakes.csv"), &["--rejects", rejects.to_str().expect("utf-8 path")]);
    assert_eq!(out.status.code(), Some(1));
    let mut r = csv::ReaderBuilder::new().flexible(true).from_path(&rejects).expect("rejects written");
    let header: Vec<String> = r.headers().expect("header").iter().map(str::to_string).collect();
    assert_eq!(
        header,
        ["Beneficiary Name", "Account No", "IFSC Code", "Amount", "Mode", "Reference", "line", "code", "reason"]
    );
    let rows: Vec<csv::StringRecord> = r.records().map(|x| x.expect("row")).collect();
    assert_eq!(rows.len(), 14);
    // Every row has the header's width, so line, code and reason are always in the same columns,
    // also for the BAD_ROW line (7 cells: one is cut, and kept in the reason).
    for row in &rows {
        assert_eq!(row.len(), 9, "{row:?}");
    }
    let lines: Vec<&str> = rows.iter().map(|row| &row[6]).collect();
    assert_eq!(lines, ["3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "16"]);
    // The code column has the row's first error; the reasons carry every code.
    assert_eq!(&rows[0][7], "SPREADSHEET_MANGLED", "{:?}", rows[0]);
    assert!(rows[0][8].contains("SPREADSHEET_MANGLED"), "{:?}", rows[0]);
    assert_eq!(&rows[8][7], "BAD_MODE", "{:?}", rows[8]);
    let bad_row = rows.last().expect("last");
    let cells: Vec<&str> = bad_row.iter().take(6).collect();
    assert_eq!(cells, ["Tanvi Joshi", "990011223344", "BKID0000001", "14", "500", "NEFT"]);
    assert_eq!(&bad_row[6], "16");
    assert_eq!(&bad_row[7], "BAD_ROW");
    assert!(bad_row[8].contains("BAD_ROW") && bad_row[8].contains("'NOV-015'"), "the cut cell is kept: {bad_row:?}");
}

#[test]
fn rejects_of_a_short_row_are_padded_to_the_header() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("short.csv");
    std::fs::write(
        &input,
        "Name,Account,IFSC,Amount,Mode,Remarks
Ravi Kumar,111111111,SBIN0000001
",
    )
    .expect("write");
    let rejects = dir.path().join("rejects.csv");
    let out = run(&input, &["--rejects", rejects.to_str().expect("utf-8 path")]);
    assert_eq!(out.status.code(), Some(1));
    let mut r = csv::Reader::from_path(&rejects).expect("rejects written");
    assert_eq!(r.headers().expect("header").len(), 9);
    let rows: Vec<csv::StringRecord> = r.records().map(|x| x.expect("a row as wide as the header")).collect();
    assert_eq!(rows.len(), 1);
    let cells: Vec<&str> = rows[0].iter().collect();
    assert_eq!(cells[..6], ["Ravi Kumar", "111111111", "SBIN0000001", "", "", ""]);
    assert_eq!((&rows[0][6], &rows[0][7]), ("2", "BAD_ROW"));
}

#[test]
fn rejects_cells_that_look_like_formulas_are_made_inert() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("formulas.csv");
    std::fs::write(
        &input,
        "Name,Account,IFSC,Amount,Mode,Reference,Remarks\n\
         \"=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\",+919999999999,@SUM(A1),-100,NEFT,-ref,=1+1\n\
         Ravi Kumar,111111111,SBIN0000001,100,NEFT,,plain\n",
    )
    .expect("write");
    let rejects = dir.path().join("rejects.csv");
    let out = run(&input, &["--rejects", rejects.to_str().expect("utf-8 path")]);
    assert_eq!(out.status.code(), Some(1));
    let mut r = csv::ReaderBuilder::new().flexible(true).from_path(&rejects).expect("rejects written");
    let rows: Vec<csv::StringRecord> = r.records().map(|x| x.expect("row")).collect();
    assert_eq!(rows.len(), 1, "only the invalid row");
    let row = &rows[0];
    assert_eq!(&row[0], "'=HYPERLINK(\"http://x\",\"y\")");
    assert_eq!(&row[1], "'+919999999999");
    assert_eq!(&row[2], "'@SUM(A1)");
    assert_eq!(&row[3], "'-100");
    assert_eq!(&row[4], "NEFT");
    assert_eq!(&row[5], "'-ref");
    assert_eq!(&row[6], "'=1+1");
    assert_eq!(&row[7], "2");
    // Every code of the row, in the order found (the reason has them all with their messages).
    assert_eq!(&row[8], "BAD_NAME;BAD_ACCOUNT;BAD_IFSC;BAD_AMOUNT");
    // ("-ref" is a well-formed reference: only made inert, not an error.)
    for code in ["BAD_NAME", "BAD_ACCOUNT", "BAD_IFSC", "BAD_AMOUNT"] {
        assert!(row[9].contains(code), "{code} in {:?}", &row[9]);
    }
}

#[test]
fn a_missing_required_column_exits_1_with_one_message_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("nocol.csv");
    std::fs::write(&input, "Name,IFSC,Amount,Mode\nRavi Kumar,SBIN0000001,100,NEFT\n").expect("write");
    let out = run(&input, &[]);
    assert_eq!(out.status.code(), Some(1));
    // One message (wrapped to 80 columns: undone here).
    let err = crate::support::work::unwrapped(&stderr(&out));
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one message: {err}");
    assert!(lines[0].contains("account number"), "{err}");
    assert!(lines[0].to_lowercase().contains("missing"), "{err}");
    assert!(out.stdout.is_empty(), "no per-row output: {}", String::from_utf8_lossy(&out.stdout));

    // Without a mode column the message points at --mode-auto; with it the file is fine.
    let input = dir.path().join("nomode.csv");
    std::fs::write(&input, "Name,Account,IFSC,Amount\nRavi Kumar,111111111,SBIN0000001,250000\n").expect("write");
    let out = run(&input, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("transfer mode") && stderr(&out).contains("--mode-auto"), "{}", stderr(&out));
    let out = run(&input, &["--mode-auto", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(json(&out)["totals"]["RTGS"]["count"].as_u64(), Some(1));
}

#[test]
fn a_header_only_file_and_an_empty_file_exit_1() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, content) in [("header.csv", "Name,Account,IFSC,Amount,Mode\n\n,,,,\n"), ("empty.csv", "")] {
        let input = dir.path().join(name);
        std::fs::write(&input, content).expect("write");
        let out = run(&input, &[]);
        assert_eq!(out.status.code(), Some(1), "{name}");
        let err = stderr(&out);
        assert!(err.contains(name), "{name}: the message names the file: {err}");
    }
    let out = run(&dir.path().join("header.csv"), &[]);
    assert!(stderr(&out).contains("no data rows"), "{}", stderr(&out));
}

#[test]
fn a_windows_1252_file_is_read_and_said_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("excel.csv");
    std::fs::write(
        &input,
        b"Name,Account,IFSC,Amount,Mode,Remarks\r\nRavi Kumar,111111111,SBIN0000001,100,NEFT,Caf\xe9 bill\r\n",
    )
    .expect("write");
    let out = run(&input, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("Windows-1252"), "{}", stderr(&out));
    let out = run(&input, &["--json"]);
    assert_eq!(json(&out)["encoding"], "windows-1252");

    // A plain UTF-8 file gets no such note.
    let out = run(&sample("salary-2026-11.csv"), &[]);
    assert!(!stderr(&out).contains("Windows-1252"), "{}", stderr(&out));
}

#[test]
fn warnings_alone_exit_0_and_the_switches_reach_the_rules() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("warn.csv");
    std::fs::write(
        &input,
        "Name,Account,IFSC,Amount,Mode\n\
         Kavya Iyer,123456789012,ABCD0123456,40000,NEFT\n\
         Ravi Kumar,39628544321,SBIN0000001,1500,IMPS\n\
         Ravi Kumar,39628544321,SBIN0000001,\"1,500.00\",IMPS\n",
    )
    .expect("write");
    let out = run(&input, &["--json"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json(&out)["invalid"].as_u64(), Some(2));

    let out = run(&input, &["--json", "--allow-unknown-ifsc", "--allow-duplicates"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc = json(&out);
    assert_eq!(doc["valid"].as_u64(), Some(3));
    assert_eq!(doc["warnings"].as_u64(), Some(2));
    let sev: Vec<&str> =
        doc["problems"].as_array().expect("problems").iter().filter_map(|p| p["severity"].as_str()).collect();
    assert_eq!(sev, ["warning", "warning"]);
    let totals = check_totals(&doc);
    assert_eq!(totals[0], ("NEFT".to_string(), 1, Amount::from_rupees(40000)));
    assert_eq!(totals[1], ("IMPS".to_string(), 2, Amount::from_rupees(3000)));
}

// Regressions: both were bugs found by this suite and fixed in src/cli/validate.rs.

#[test]
fn json_on_a_header_only_file_is_one_document() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("header.csv");
    std::fs::write(&input, "Name,Account,IFSC,Amount,Mode\n").expect("write");
    let out = run(&input, &["--json"]);
    assert_eq!(out.status.code(), Some(1));
    let doc = json(&out);
    assert!(doc["error"].as_str().is_some_and(|e| e.contains("no data rows")), "{doc}");
}

#[test]
fn rejects_header_and_reason_cells_are_inert_too() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("eq.csv");
    std::fs::write(&input, "=Name,Account,IFSC,Amount,Mode\nZoë,111111111,SBIN0000001,1,NEFT\n").expect("write");
    let rejects = dir.path().join("rejects.csv");
    let out = run(&input, &["--rejects", rejects.to_str().expect("utf-8 path")]);
    assert_eq!(out.status.code(), Some(1));
    let mut r = csv::ReaderBuilder::new().flexible(true).has_headers(false).from_path(&rejects).expect("rejects");
    for rec in r.records() {
        let rec = rec.expect("row");
        for cell in rec.iter() {
            assert!(!cell.starts_with(['=', '+', '-', '@']), "live formula cell {cell:?}");
        }
    }
}

#[test]
fn a_windows_1252_semicolon_or_tab_export_validates() {
    // The reported bug: a German/French Excel export (Windows-1252, semicolons) was refused with
    // "missing required columns ... (header is: Name;Account No;IFSC;Amount;Mode;Remarks)".
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, sep) in [("semicolon.csv", ";"), ("tab.txt", "\t")] {
        let text = "Name;Account No;IFSC;Amount;Mode;Remarks\r\n\
                    Jurgen Gross;111111111;SBIN0000001;1,500.00;NEFT;Gehalt für November\r\n\
                    Francois Dupont;111111112;SBIN0000001;2,50,000;RTGS;Prime € 50\r\n"
            .replace(';', sep);
        let (bytes, _, bad) = encoding_rs::WINDOWS_1252.encode(&text);
        assert!(!bad);
        let input = dir.path().join(name);
        std::fs::write(&input, &bytes).expect("write");
        let out = run(&input, &["--json"]);
        assert_eq!(out.status.code(), Some(0), "{name}: {}", stderr(&out));
        let doc = json(&out);
        assert_eq!(doc["encoding"], "windows-1252");
        assert_eq!(doc["delimiter"], if sep == ";" { "semicolon" } else { "tab" });
        assert_eq!(doc["valid"].as_u64(), Some(2));
        assert_eq!(doc["warnings"].as_u64(), Some(2), "the remarks are sent in ASCII: {doc}");
        assert_eq!(amount(&doc["totals"]["total"]["amount"]), Amount::from_rupees(251_500));
    }
}

#[test]
fn a_last_error_column_from_payrun_failed_is_kept_not_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("retry.csv");
    std::fs::write(
        &input,
        "Name,Account,IFSC,Amount,Mode,Remarks,last_error\n\
         Ravi Kumar,111111111,SBIN0000001,100,NEFT,Salary,BE1234: account closed\n",
    )
    .expect("write");
    let out = run(&input, &["--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(json(&out)["valid"].as_u64(), Some(1));
    let mut sc = Scanner::open(&input, false, RuleOptions::default()).expect("opens");
    assert_eq!(sc.columns().header[6], "last_error", "kept as a column");
    let v = sc.next().expect("reads").expect("a row");
    assert_eq!(v.row.as_ref().map(|r| r.remarks.to_string()), Some("Salary".into()), "not read as remarks");
}

#[test]
fn help_lists_the_headings_the_exit_codes_and_every_flag() {
    let help = |cmd: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_payrun")).args([cmd, "--help"]).output().expect("runs");
        assert_eq!(out.status.code(), Some(0));
        String::from_utf8(out.stdout).expect("utf-8")
    };
    let v = help("validate");
    for alias in payrun::input::Field::ALL.iter().flat_map(|f| f.aliases()) {
        assert!(v.contains(alias), "validate --help lacks {alias}");
    }
    assert!(v.contains("Exit codes") && v.contains("0  every row is valid"), "{v}");
    // Every option has a description: no option line stands alone.
    let lines: Vec<&str> = v.lines().collect();
    for (i, l) in lines.iter().enumerate() {
        let t = l.trim_start();
        if t.starts_with("--") || t.starts_with("-v") || t.starts_with("-h") {
            let described = t.split("  ").filter(|s| !s.trim().is_empty()).count() > 1
                || lines.get(i + 1).is_some_and(|n| n.starts_with("          ") && !n.trim_start().starts_with('-'));
            assert!(described, "undescribed flag: {l}");
        }
    }
    for flag in ["--sheet", "--rejects", "--json", "--mode-auto", "--allow-duplicates", "--allow-unknown-ifsc"] {
        assert!(v.contains(flag), "{flag}");
    }
    let r = help("run");
    assert!(r.contains("--sheet") && r.contains("Beneficiary Name"), "{r}");
    assert!(r.contains("2  the batch ran, but some rows need someone: FAILED, PENDING, HELD,"), "{r}");
    assert!(r.contains("3  aborted"), "{r}");
}

#[test]
fn the_xlsx_salary_sample_validates_like_the_csv_one() {
    let csv = json(&run(&sample("salary-2026-11.csv"), &["--json"]));
    let out = run(&sample("salary-2026-11.xlsx"), &["--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let xlsx = json(&out);
    assert_eq!(xlsx["format"], "xlsx");
    assert_eq!(xlsx["invalid"].as_u64(), Some(0));
    assert_eq!(xlsx["warnings"].as_u64(), Some(0), "accounts are text cells: {xlsx}");
    assert_eq!(xlsx["valid"], csv["valid"]);
    assert_eq!(xlsx["totals"], csv["totals"]);
    assert!(xlsx["valid"].as_u64().expect("valid") >= 200);
}
