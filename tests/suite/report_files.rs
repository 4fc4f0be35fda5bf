//! What accounting and the operator receive (SPEC section 5), through the `payrun` binary against
//! the embedded sandbox: the CSV's `amount_inr`, the `.xlsx` workbook read back with calamine
//! (sheets, text cells that keep every digit, amounts that add up to the paisa, real date-times in
//! the operator's time zone, the rows that need someone), the 80-column terminal summary, and
//! `payrun failed`'s `last_error` column.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::process::{Command, Stdio};

use crate::support::work::{CONFIG, RESULT_COLUMNS, mode_of, read_csv, result_rows, s, sample};
use crate::support::{BIN, EXAMPLE_CREDS};
use calamine::{Data, Reader, Xlsx, open_workbook};
use payrun::money::Amount;

/// Embedded sandbox, clean profile, fast pace.
const FAST: [&str; 8] = ["--sandbox-profile", "clean", "--rate", "2000", "--burst", "200", "--concurrency", "16"];

struct Work {
    dir: tempfile::TempDir,
}

#[derive(Debug)]
struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Out {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}\nstderr:\n{}", self.stdout, self.stderr))
    }
    fn expect_code(&self, code: i32, what: &str) -> &Out {
        assert_eq!(self.code, Some(code), "{what}: exit code\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }
}

impl Work {
    fn new() -> Work {
        Work::with_config(CONFIG)
    }

    fn with_config(config: &str) -> Work {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("payrun.toml"), config).expect("config");
        Work { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `payrun ARGS` here, this directory's config, no credentials, stdin and stdout not terminals.
    fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Out {
        let mut c = Command::new(BIN);
        c.args(args)
            .current_dir(self.path())
            .env("PAYRUN_CONFIG", self.path().join("payrun.toml"))
            .env_remove("PAYRUN_LOG")
            .env_remove("NO_COLOR")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, _) in EXAMPLE_CREDS {
            c.env_remove(k);
        }
        for (k, v) in env {
            c.env(k, v);
        }
        let o = c.output().expect("run payrun");
        Out {
            code: o.status.code(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    fn run(&self, args: &[&str]) -> Out {
        self.run_env(args, &[])
    }

    /// Runs `input` through the embedded sandbox (clean profile, short poll timeout) with `extra`.
    fn pay(&self, input: &Path, extra: &[&str], code: i32) -> Out {
        let input = s(input);
        let mut args = vec!["run", &input, "--state", "S", "--poll-timeout", "3s"];
        args.extend(FAST);
        args.extend(extra);
        let out = self.run(&args);
        out.expect_code(code, "run");
        out
    }
}

/// A sheet as rows of cells (trailing empty cells as `Data::Empty`).
fn sheet(path: &Path, name: &str) -> Vec<Vec<Data>> {
    let mut wb: Xlsx<_> = open_workbook(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let range = wb.worksheet_range(name).unwrap_or_else(|e| panic!("sheet {name}: {e}"));
    // Rows from A1, whatever the first used cell.
    let (r0, c0) = range.start().expect("non-empty sheet");
    assert_eq!((r0, c0), (0, 0), "{name} starts at A1");
    range.rows().map(|r| r.to_vec()).collect()
}

fn text(d: &Data) -> String {
    match d {
        Data::String(s) => s.clone(),
        Data::Empty => String::new(),
        other => panic!("expected a text cell, got {other:?}"),
    }
}

/// An amount cell: a number whose shortest text reads back as an exact amount.
fn amount(d: &Data) -> Amount {
    match d {
        Data::Float(x) => format!("{x}").parse::<Amount>().unwrap_or_else(|e| panic!("{x}: {e}")),
        Data::Int(i) => i.to_string().parse::<Amount>().expect("amount"),
        other => panic!("expected a number, got {other:?}"),
    }
}

fn amount_json(v: &serde_json::Value) -> Amount {
    v.as_str().expect("amount as a string").parse::<Amount>().expect("amount")
}

/// An RFC 3339 time as an Excel serial date-time in a fixed offset of `offset_minutes`.
fn excel_serial(rfc3339: &str, offset_minutes: i64) -> f64 {
    let t = chrono::DateTime::parse_from_rfc3339(rfc3339).expect("time").naive_utc()
        + chrono::Duration::minutes(offset_minutes);
    let epoch = chrono::NaiveDate::from_ymd_opt(1899, 12, 30).expect("date").and_hms_opt(0, 0, 0).expect("time");
    (t - epoch).num_milliseconds() as f64 / 86_400_000.0
}

// -------------------------------------------------------------------------------------------------

#[test]
fn the_workbook_of_the_magic_run_has_every_row_the_totals_and_the_rows_that_need_someone() {
    let w = Work::new();
    let input = sample("sandbox-magic.csv");
    let out = w.pay(&input, &["--json", "--out", "R.xlsx"], 2);
    let summary = out.json();
    let batch = summary["batch"].as_str().expect("batch").to_string();
    let xlsx = w.path().join("R.xlsx");
    assert_eq!(mode_of(&xlsx), 0o600, "owner-only");
    let leftovers: Vec<_> = std::fs::read_dir(w.path())
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.') || n.contains("tmp"))
        .collect();
    assert!(leftovers.is_empty(), "no temporary files left: {leftovers:?}");
    // The same batch as CSV, to compare with.
    w.run(&["report", &batch, "--state", "S", "--out", "R.csv"]).expect_code(0, "report csv");
    let csv = result_rows(&w.path().join("R.csv"));

    let wb: Xlsx<_> = open_workbook(&xlsx).expect("open");
    assert_eq!(wb.sheet_names(), ["Results", "Summary", "Needs attention", "Print"]);

    // Results: the input's header, then payrun's columns; every input row in input order.
    let results = sheet(&xlsx, "Results");
    let (in_header, in_rows) = read_csv(&input);
    let mut header = in_header.clone();
    header.extend(RESULT_COLUMNS.iter().map(|c| c.to_string()));
    assert_eq!(results[0].iter().map(text).collect::<Vec<_>>(), header);
    assert_eq!(results.len(), 1 + in_rows.len(), "every input row");
    let col = |name: &str| header.iter().position(|h| h == name).expect(name);
    let mut total = Amount::ZERO;
    for (i, (row, input_row)) in results[1..].iter().zip(&in_rows).enumerate() {
        for (c, cell) in input_row.iter().enumerate() {
            assert_eq!(&text(&row[c]), cell, "row {i} column {c}: the input's text");
        }
        let a = amount(&row[col("amount_inr")]);
        assert_eq!(a.to_string(), csv[i]["amount_inr"], "row {i}: the CSV's amount");
        total += a;
        for t in ["status", "code", "external_ref", "gateway_ref", "utr"] {
            assert_eq!(text(&row[col(t)]), csv[i][t], "row {i} {t}");
        }
        for t in ["submitted_at", "completed_at"] {
            match (&row[col(t)], csv[i][t].as_str()) {
                (Data::Empty, "") => {}
                (Data::DateTime(d), rfc) => {
                    // Asia/Kolkata: UTC + 5:30, to the millisecond.
                    let diff = (d.as_f64() - excel_serial(rfc, 330)).abs() * 86_400_000.0;
                    assert!(diff < 1.5, "row {i} {t}: {} vs {rfc} (IST) off by {diff} ms", d.as_f64());
                }
                (other, rfc) => panic!("row {i} {t}: {other:?} for {rfc:?}: not a date-time"),
            }
        }
        assert!(matches!(row[col("attempts")], Data::Float(_) | Data::Int(_)), "row {i}: attempts is a number");
    }
    let control = amount_json(&summary["control"]["file_valid"]["amount"]);
    assert_eq!(total, control, "the amounts add up to the control total, to the paisa");

    // Summary: per status and per mode, and the control check.
    let sum = sheet(&xlsx, "Summary");
    let find = |label: &str| {
        sum.iter().find(|r| matches!(&r[0], Data::String(s) if s == label)).unwrap_or_else(|| panic!("{label} row"))
    };
    for status in ["SUCCESS", "FAILED", "PENDING", "HELD", "CANCELLED", "NOT_SENT", "INVALID"] {
        let r = find(status);
        let n = match &r[1] {
            Data::Float(x) => *x as u64,
            Data::Int(i) => *i as u64,
            other => panic!("{status} count {other:?}"),
        };
        assert_eq!(n, summary["status_totals"][status]["count"].as_u64().expect("count"), "{status}");
        assert_eq!(amount(&r[2]), amount_json(&summary["status_totals"][status]["amount"]), "{status}");
    }
    assert_eq!(amount(&find("IMPS")[2]), control, "per mode");
    assert!(sum.iter().any(|r| matches!(&r[0], Data::String(s) if s == "Control check")));
    assert_eq!(text(&find("Result")[1]), "OK");
    assert!(text(&find("Time zone")[1]).starts_with("Asia/Kolkata"), "the time zone is named");

    // Needs attention: exactly the FAILED and PENDING rows, with the next step for each.
    let needs = sheet(&xlsx, "Needs attention");
    assert_eq!(
        needs[0].iter().map(text).collect::<Vec<_>>(),
        ["Line", "Name", "Account", "Amount (₹)", "Status", "Code", "Reason", "Reference", "Next step"]
    );
    let expected: BTreeSet<u64> = csv
        .iter()
        .enumerate()
        .filter(|(_, r)| r["status"] == "FAILED" || r["status"] == "PENDING")
        .map(|(i, _)| i as u64 + 2)
        .collect();
    assert_eq!(expected.len(), 10);
    let mut listed = BTreeSet::new();
    for r in &needs[1..] {
        let line = match &r[0] {
            Data::Float(x) => *x as u64,
            Data::Int(i) => *i as u64,
            other => panic!("line {other:?}"),
        };
        listed.insert(line);
        let source = &csv[line as usize - 2];
        assert_eq!(text(&r[2]), source["Account Number"], "account as text");
        assert_eq!(amount(&r[3]).to_string(), source["amount_inr"]);
        assert_eq!(text(&r[4]), source["status"]);
        assert_eq!(text(&r[5]), source["code"]);
        assert_eq!(text(&r[7]), source["external_ref"]);
        let next = text(&r[8]);
        let want = match (source["status"].as_str(), source["code"].as_str()) {
            ("FAILED", _) => format!("payrun failed {batch} --state S --out retry.csv"),
            ("PENDING", "PAYEE_MISMATCH" | "AMOUNT_MISMATCH" | "REF_ALREADY_USED") => {
                format!("payrun resolve {batch} --state S --row {line} --as paid|unpaid --reason")
            }
            ("PENDING", _) => format!("payrun resume {batch} --state S"),
            other => panic!("{other:?} needs nobody"),
        };
        assert!(next.contains(&want), "line {line}: {next:?} should contain {want:?}");
    }
    assert_eq!(listed, expected, "exactly the FAILED and PENDING rows");

    // --json lists them too, with the same fields.
    let json_needs = summary["needs_attention"].as_array().expect("needs_attention");
    assert_eq!(json_needs.iter().map(|r| r["line"].as_u64().expect("line")).collect::<BTreeSet<_>>(), expected);
    for r in json_needs {
        for field in ["line", "name", "amount", "status", "code", "reason", "next_step"] {
            assert!(!r[field].is_null(), "{field} in {r}");
        }
    }
    assert_eq!(summary["needs_attention_total"], 10);
}

#[test]
fn the_workbook_keeps_every_digit_as_text_and_formulas_inert() {
    // Times in UTC by configuration; .XLSX in capitals is still a workbook.
    let w = Work::with_config(&format!("{CONFIG}[report]\ntimezone = \"UTC\"\n"));
    let input = w.path().join("zeros.csv");
    std::fs::write(
        &input,
        "Name,Account Number,IFSC,Amount,Mode,Remarks,Reference\n\
         Asha Rao,000123456789,HDFC0000003,\"4,99,000.00\",NEFT,\"=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\",00042\n\
         Ravi Das,1234567890123456,SBIN0000001,1600.05,IMPS,+91 98,REF-0001\n\
         Mira Sen,0000987654321,ICIC0000001,0.01,IMPS,-5,0007E3\n",
    )
    .expect("input");
    let out = w.pay(&input, &["--json", "--out", "OUT.XLSX"], 0);
    let summary = out.json();
    let xlsx = w.path().join("OUT.XLSX");
    let rows = sheet(&xlsx, "Results");
    let header: Vec<String> = rows[0].iter().map(text).collect();
    let col = |name: &str| header.iter().position(|h| h == name).expect(name);
    let accounts: Vec<String> = rows[1..].iter().map(|r| text(&r[col("Account Number")])).collect();
    assert_eq!(accounts, ["000123456789", "1234567890123456", "0000987654321"], "leading zeros and all 16 digits");
    let refs: Vec<String> = rows[1..].iter().map(|r| text(&r[col("Reference")])).collect();
    assert_eq!(refs, ["00042", "REF-0001", "0007E3"], "references as text, not numbers");
    assert_eq!(rows[1][col("external_ref")], Data::String("00042".into()));
    let remarks: Vec<String> = rows[1..].iter().map(|r| text(&r[col("Remarks")])).collect();
    assert_eq!(remarks, ["=HYPERLINK(\"http://x\",\"y\")", "+91 98", "-5"], "the input's text, unchanged");
    // ...as plain strings: no cell of the workbook is a formula.
    let mut wb: Xlsx<_> = open_workbook(&xlsx).expect("open");
    for name in wb.sheet_names() {
        let formulas = wb.worksheet_formula(&name).expect("formulas");
        assert!(formulas.used_cells().all(|(_, _, f)| f.is_empty()), "{name} has a formula");
    }
    let amounts: Vec<Amount> = rows[1..].iter().map(|r| amount(&r[col("amount_inr")])).collect();
    assert_eq!(amounts.iter().map(Amount::to_string).collect::<Vec<_>>(), ["499000.00", "1600.05", "0.01"]);
    let total = amounts.into_iter().fold(Amount::ZERO, |a, b| a + b);
    assert_eq!(total, amount_json(&summary["control"]["file_valid"]["amount"]));
    // UTC by configuration: the CSV's time exactly.
    let batch = summary["batch"].as_str().expect("batch");
    w.run(&["report", batch, "--state", "S", "--out", "R.csv"]).expect_code(0, "report");
    let csv = result_rows(&w.path().join("R.csv"));
    match &rows[1][col("completed_at")] {
        Data::DateTime(d) => {
            let diff = (d.as_f64() - excel_serial(&csv[0]["completed_at"], 0)).abs() * 86_400_000.0;
            assert!(diff < 1.5, "UTC time off by {diff} ms");
        }
        other => panic!("completed_at is not a date-time: {other:?}"),
    }
    assert!(sheet(&xlsx, "Needs attention").len() == 1, "nothing needs anyone");
}

#[test]
fn a_time_zone_that_is_not_one_is_refused_before_anything_is_sent() {
    let w = Work::with_config(&format!("{CONFIG}[report]\ntimezone = \"Mumbai\"\n"));
    let out = w.run(&["run", &s(&sample("sandbox-magic.csv")), "--state", "S", "--out", "R.xlsx"]);
    out.expect_code(1, "bad time zone");
    assert!(out.stderr.contains("Mumbai") && out.stderr.contains("time zone"), "{}", out.stderr);
    assert!(!w.path().join("S").join("sandbox").exists(), "no gateway was started");
}

#[test]
fn csv_amount_inr_is_plain_two_decimals_and_sums_to_the_control_total() {
    let w = Work::new();
    let out = w.pay(&sample("salary-2026-11.csv"), &["--json", "--out", "R.csv"], 0);
    let summary = out.json();
    let rows = result_rows(&w.path().join("R.csv"));
    assert_eq!(rows.len(), 200);
    let (in_header, _) = read_csv(&sample("salary-2026-11.csv"));
    let (header, _) = read_csv(&w.path().join("R.csv"));
    let at = header.iter().position(|h| h == "amount_inr").expect("amount_inr");
    assert_eq!(at, in_header.len() + 1, "right after external_ref");
    let mut total = Amount::ZERO;
    for r in &rows {
        let a = &r["amount_inr"];
        let (int, frac) = a.split_once('.').unwrap_or_else(|| panic!("{a:?}: no decimals"));
        assert!(int.bytes().all(|b| b.is_ascii_digit()) && !int.is_empty(), "{a:?}: plain digits");
        assert_eq!(frac.len(), 2, "{a:?}: exactly 2 decimals");
        let parsed = a.parse::<Amount>().expect("amount");
        assert_eq!(parsed, Amount::parse_cell(&r["Net Pay"]).expect("input amount"), "the row's own amount");
        total += parsed;
    }
    assert_eq!(total, amount_json(&summary["control"]["file_valid"]["amount"]));
    assert_eq!(total, amount_json(&summary["status_totals"]["SUCCESS"]["amount"]));

    // An invalid row: its amount when readable, else empty.
    let w = Work::new();
    let out = w.pay(&sample("mistakes.csv"), &["--skip-invalid", "--out", "M.csv"], 2);
    let rows = result_rows(&w.path().join("M.csv"));
    let by_ref: HashMap<&str, &str> =
        rows.iter().map(|r| (r["Reference"].as_str(), r["amount_inr"].as_str())).collect();
    assert_eq!(by_ref["NOV-009"], "", "no amount: empty\n{}", out.stderr);
    assert_eq!(by_ref["NOV-005"], "", "1,500.555 is not an amount");
    assert_eq!(by_ref["NOV-004"], "40000.00");
}

#[test]
fn the_terminal_summary_fits_80_columns_and_lists_the_rows_that_need_someone() {
    // 20 rows that fail at the bank, and the magic file's variety: more than a screenful.
    let w = Work::new();
    let input = w.path().join("bounced.csv");
    let mut text = String::from("Name,Account Number,IFSC,Amount,Mode,Remarks\n");
    for i in 0..20 {
        text.push_str(&format!("Bounced Payee {i},999900000001,SBIN0000001,{}.00,IMPS,salary\n", 1000 + i));
    }
    text.push_str("Waiting Payee,999900000003,SBIN0000018,5000.00,IMPS,salary\n");
    std::fs::write(&input, text).expect("input");
    // NO_COLOR set, and not set (stdout is a pipe either way).
    for (state, env) in [("S1", [("NO_COLOR", "1")]), ("S2", [("PAYRUN_UNUSED", "")])] {
        let inp = s(&input);
        let mut args = vec!["run", &inp, "--state", state, "--poll-timeout", "3s"];
        args.extend(FAST);
        let out = w.run_env(&args, &env);
        out.expect_code(2, "bounced rows");
        assert!(!out.stdout.contains('\x1b'), "no escape codes when piped or NO_COLOR:\n{}", out.stdout);
        for line in out.stdout.lines() {
            assert!(line.chars().count() <= 80, "{} columns: {line:?}", line.chars().count());
        }
        let o = &out.stdout;
        assert!(o.contains("needs someone: 21 rows (20 FAILED, 1 PENDING)"), "{o}");
        assert!(o.contains("control check: OK"), "{o}");
        assert!(o.contains("PENDING (1 row): wait, then"), "singular: {o}");
        assert!(!o.contains(" 1 rows") && !o.contains("(1 rows"), "no '1 rows': {o}");
        // A screenful of rows (line, name, amount, status, code, reason), then the command for the rest.
        let listed: Vec<&str> = o.lines().filter(|l| l.contains("Bounced Payee")).collect();
        assert_eq!(listed.len(), 15, "a screenful:\n{o}");
        assert!(listed[0].contains("     2  Bounced Payee 0") && listed[0].contains("1,000.00"), "{}", listed[0]);
        assert!(listed[0].contains("FAILED") && listed[0].contains("BE1001"), "{}", listed[0]);
        assert!(o.contains("... and 6 more"), "{o}");
        let batch = o.strip_prefix("batch ").and_then(|t| t.get(..12)).expect("batch id on the first line");
        assert!(o.contains(&format!("payrun report {batch} --state {state} --out needs.xlsx")), "{o}");
        assert!(o.contains(&format!("payrun failed {batch} --state {state} --out retry.csv")), "{o}");
        assert!(o.contains(&format!("payrun resume {batch} --state {state}")), "{o}");
        // The commands shown really work: report writes the workbook with all 21.
        let report = w.run(&["report", batch, "--state", state, "--out", "needs.xlsx"]);
        report.expect_code(0, "report needs.xlsx");
        assert_eq!(sheet(&w.path().join("needs.xlsx"), "Needs attention").len(), 22);
    }
}

#[test]
fn failed_keeps_the_reason_in_last_error_and_its_file_validates() {
    let w = Work::new();
    let input = sample("sandbox-magic.csv");
    let out = w.pay(&input, &["--json", "--out", "R.csv"], 2);
    let batch = out.json()["batch"].as_str().expect("batch").to_string();
    let failed = w.run(&["failed", &batch, "--state", "S", "--out", "RETRY.csv"]);
    failed.expect_code(0, "failed");
    assert!(failed.stderr.contains("4 rows written to RETRY.csv"), "{}", failed.stderr);
    assert!(failed.stderr.contains(&format!("6 rows of batch {batch} are not final yet")), "{}", failed.stderr);
    let (in_header, in_rows) = read_csv(&input);
    let (header, rows) = read_csv(&w.path().join("RETRY.csv"));
    let mut expected_header = in_header.clone();
    expected_header.extend(["last_error".into(), "retry_of".into()]);
    assert_eq!(header, expected_header);
    let result = result_rows(&w.path().join("R.csv"));
    // A row's own reference gets -R1 in the retry file (the gateway has seen the original).
    let ref_col = in_header.iter().position(|h| h == "Reference").expect("Reference column");
    // The sample has no blank line: row k (from 0) is on line k + 2.
    let expected: Vec<(Vec<String>, String, String)> = result
        .iter()
        .zip(&in_rows)
        .enumerate()
        .filter(|(_, (r, _))| r["status"] == "FAILED")
        .map(|(k, (r, i))| {
            let mut cells = i.clone();
            if !cells[ref_col].is_empty() {
                cells[ref_col] = format!("{}-R1", cells[ref_col]);
            }
            (cells, format!("{}: {}", r["code"], r["message"]), format!("{batch}:{}", k + 2))
        })
        .collect();
    assert_eq!(expected.len(), 4);
    let got: Vec<(Vec<String>, String, String)> =
        rows.iter().map(|r| (r[..r.len() - 2].to_vec(), r[r.len() - 2].clone(), r[r.len() - 1].clone())).collect();
    assert_eq!(got, expected, "only FAILED rows, input cells, then CODE: message and the line retried");
    assert!(got.iter().any(|(_, e, _)| e.starts_with("BE1001: ")), "{got:?}");
    // The retry file runs: last_error is an unknown column, kept and ignored.
    w.run(&["validate", "RETRY.csv"]).expect_code(0, "validate RETRY.csv");

    // A batch with nothing failed: "no rows written".
    let w = Work::new();
    let out = w.pay(&sample("vendors-2026-11.csv"), &["--json"], 0);
    let batch = out.json()["batch"].as_str().expect("batch").to_string();
    let none = w.run(&["failed", &batch, "--state", "S", "--out", "NONE.csv"]);
    none.expect_code(0, "failed, none");
    assert!(none.stderr.contains("no rows written to NONE.csv"), "{}", none.stderr);
}
