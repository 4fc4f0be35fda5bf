//! The result workbook on paper, and the summary's per-mode count of INVALID rows (SPEC 5).
//!
//! calamine does not read page setup, so the workbook is opened as the zip it is and its parts are
//! read: `xl/workbook.xml` (sheet names, the `_xlnm.Print_Titles` defined names that repeat the
//! heading row), `xl/_rels/workbook.xml.rels` (which part is which sheet), each sheet's
//! `<pageSetup>` and `<sheetPr><pageSetUpPr fitToPage="1"/>`, and `xl/styles.xml`.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use calamine::{Data, DataType, Reader, Xlsx, open_workbook};

use crate::support::work::{Out, Work, s};

/// Embedded sandbox, clean profile, fast pace.
const FAST: [&str; 8] = ["--sandbox-profile", "clean", "--rate", "2000", "--burst", "200", "--concurrency", "16"];

/// A workbook's parts as text, by name.
fn parts(path: &Path) -> HashMap<String, String> {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut zip = zip::ZipArchive::new(file).expect("an xlsx is a zip");
    let mut out = HashMap::new();
    for i in 0..zip.len() {
        let mut part = zip.by_index(i).expect("part");
        let Ok(name) = part.name().map(|n| n.to_string()) else { continue };
        let mut text = String::new();
        if part.read_to_string(&mut text).is_ok() {
            out.insert(name, text);
        }
    }
    out
}

/// The value of `name="..."` in one XML start tag.
fn attr(tag: &str, name: &str) -> Option<String> {
    let at = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    Some(tag[at..].split('"').next()?.to_string())
}

/// Every start tag `<name ...>` in `xml`.
fn tags<'a>(xml: &'a str, name: &str) -> Vec<&'a str> {
    let open = format!("<{name} ");
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find(&open) {
        let tag = &rest[i..];
        let end = tag.find('>').map_or(tag.len(), |e| e + 1);
        out.push(&tag[..end]);
        rest = &tag[end..];
    }
    out
}

/// Sheet name → (its index in the workbook, its part's text).
fn sheets(parts: &HashMap<String, String>) -> HashMap<String, (usize, String)> {
    let rels = &parts["xl/_rels/workbook.xml.rels"];
    let targets: HashMap<String, String> =
        tags(rels, "Relationship").into_iter().filter_map(|t| Some((attr(t, "Id")?, attr(t, "Target")?))).collect();
    tags(&parts["xl/workbook.xml"], "sheet")
        .into_iter()
        .enumerate()
        .map(|(i, t)| {
            let name = attr(t, "name").expect("sheet name");
            let target = targets[&attr(t, "r:id").expect("r:id")].trim_start_matches('/').to_string();
            let path = if target.starts_with("xl/") { target } else { format!("xl/{target}") };
            let xml = parts.get(&path).unwrap_or_else(|| panic!("no part {path}")).clone();
            (name, (i, xml))
        })
        .collect()
}

/// `payrun run FILE --state S` through the embedded sandbox, with `extra`; expects exit `code`.
fn pay(w: &Work, file: &Path, extra: &[&str], code: i32) -> Out {
    let file = s(file);
    let mut args = vec!["run", file.as_str(), "--state", "S", "--poll-timeout", "5s"];
    args.extend(FAST);
    args.extend(extra);
    let out = w.run(&args);
    out.expect_code(code, "run");
    out
}

/// A file with two rows that fail at the bank (so Needs attention has rows), a long name, and
/// ordinary rows.
fn input(w: &Work) -> std::path::PathBuf {
    let path = w.path().join("salaries.csv");
    std::fs::write(
        &path,
        "Employee ID,Beneficiary Name,Department,Account No,IFSC Code,Net Pay,Payment Mode,Narration,Email\n\
         E1,Diya Sharma,Sales,85307524353311,HDFC0000001,\"16,170.80\",NEFT,Salary Nov 2026,diya@example.in\n\
         E2,Saanvi Patel,Finance,999900000001,HDFC0000001,\"96,507.56\",IMPS,Salary Nov 2026,saanvi@example.in\n\
         E3,Venkatesh Ramachandran Subramanian Iyer,Operations,82129779195124,SBIN0000001,\"1,02,904.19\",NEFT,Salary Nov 2026,v@example.in\n\
         E4,Gurpreet Gupta,Legal,999900000001,SBIN0000001,\"64,562.51\",IMPS,Salary Nov 2026,g@example.in\n",
    )
    .expect("input");
    path
}

/// Every sheet prints landscape, one page wide and as many tall as it takes; the row sheets repeat
/// their heading on every page; a Print sheet shows each row's status beside its line; an amount
/// keeps a space's padding before the next column.
#[test]
fn the_workbook_prints_landscape_one_page_wide_with_the_heading_on_every_page() {
    let w = Work::new();
    let file = input(&w);
    // Two rows fail at the bank: exit 2.
    pay(&w, &file, &["--out", "R.xlsx"], 2);
    let xlsx = w.path().join("R.xlsx");

    let parts = parts(&xlsx);
    let sheets = sheets(&parts);
    let names: Vec<&str> = {
        let mut v: Vec<(&usize, &str)> = sheets.iter().map(|(n, (i, _))| (i, n.as_str())).collect();
        v.sort();
        v.into_iter().map(|(_, n)| n).collect()
    };
    assert_eq!(names, ["Results", "Summary", "Needs attention", "Print"]);
    let workbook = &parts["xl/workbook.xml"];
    for (name, (index, xml)) in &sheets {
        let setup = tags(xml, "pageSetup");
        assert_eq!(setup.len(), 1, "{name}: one <pageSetup>");
        let setup = setup[0];
        assert_eq!(attr(setup, "orientation").as_deref(), Some("landscape"), "{name}: {setup}");
        // fitToWidth's default in the schema is 1, and writers leave a default out.
        assert_eq!(attr(setup, "fitToWidth").as_deref().unwrap_or("1"), "1", "{name}: one page wide: {setup}");
        assert_eq!(attr(setup, "fitToHeight").as_deref(), Some("0"), "{name}: any number tall: {setup}");
        let fit = tags(xml, "pageSetUpPr");
        assert!(
            fit.iter().any(|t| attr(t, "fitToPage").as_deref() == Some("1")),
            "{name}: <sheetPr><pageSetUpPr fitToPage=\"1\"/> turns the fitting on: {fit:?}"
        );
        if name == "Summary" {
            continue;
        }
        let quoted = if name.contains(' ') { format!("'{name}'") } else { name.clone() };
        let titles = tags(workbook, "definedName")
            .into_iter()
            .filter(|t| {
                attr(t, "name").as_deref() == Some("_xlnm.Print_Titles")
                    && attr(t, "localSheetId") == Some(index.to_string())
            })
            .count();
        assert_eq!(titles, 1, "{name}: a Print_Titles defined name");
        assert!(workbook.contains(&format!("{quoted}!$1:$1</definedName>")), "{name}: the heading row repeats");
    }

    // Needs attention is laid out for a page: its text columns wrap in bounded widths.
    let needs = &sheets["Needs attention"].1;
    let width: f64 = tags(needs, "col").iter().filter_map(|t| attr(t, "width")?.parse::<f64>().ok()).sum();
    assert!(width < 220.0, "Needs attention is {width} characters wide: it would print too small");
    assert!(parts["xl/styles.xml"].contains("wrapText=\"1\""), "long text wraps");
    // An amount keeps a space's width before the next column (`₹96,507.56FAILED` no more).
    assert!(parts["xl/styles.xml"].contains("0.00_)"), "the rupee format pads the amount on its right");

    // The Print sheet: every row, in input order, its status beside the line number.
    let mut wb: Xlsx<_> = open_workbook(&xlsx).expect("open");
    let print = wb.worksheet_range("Print").expect("Print sheet");
    let rows: Vec<Vec<Data>> = print.rows().map(|r| r.to_vec()).collect();
    let heading: Vec<String> = rows[0].iter().map(|d| d.to_string()).collect();
    assert_eq!(&heading[..3], ["Line", "Status", "Code"]);
    let statuses: Vec<(String, String)> = rows[1..].iter().map(|r| (r[0].to_string(), r[1].to_string())).collect();
    assert_eq!(
        statuses,
        [("2", "SUCCESS"), ("3", "FAILED"), ("4", "SUCCESS"), ("5", "FAILED")]
            .map(|(l, s)| (l.to_string(), s.to_string()))
    );
    let name_col = heading.iter().position(|h| h == "Name").expect("Name");
    assert_eq!(rows[3][name_col].to_string(), "Venkatesh Ramachandran Subramanian Iyer");
    // Its wrapped name gets the lines it needs: the row is taller than one line.
    let print_xml = &sheets["Print"].1;
    let row4 = tags(print_xml, "row").into_iter().find(|t| attr(t, "r").as_deref() == Some("4")).expect("row 4");
    assert!(attr(row4, "ht").and_then(|h| h.parse::<f64>().ok()).is_some_and(|h| h >= 30.0), "{row4}");
}

/// An INVALID row counts under the transfer mode its file gives, when that cell is readable: in
/// `--json` (and so the terminal, which shares the summary) and in the workbook's Summary.
#[test]
fn invalid_rows_count_under_the_mode_their_file_gives() {
    let w = Work::new();
    let path = w.path().join("mixed.csv");
    std::fs::write(
        &path,
        "Name,Account Number,IFSC,Amount,Mode\n\
         Asha Rao,123456789012,HDFC0000001,1000.00,NEFT\n\
         Ravi Das,123456789013,NOT-AN-IFSC,2000.00,NEFT\n\
         Mira Sen,12,SBIN0000001,3000.00,imps\n\
         Kiran Rao,123456789014,SBIN0000001,4000.00,CHEQUE\n",
    )
    .expect("input");
    // Rows skipped as INVALID need someone: exit 2.
    let summary = pay(&w, &path, &["--skip-invalid", "--json", "--out", "R.xlsx"], 2).json();
    let invalid = &summary["statuses"]["INVALID"];
    assert_eq!(invalid["NEFT"]["count"], 1, "{summary}");
    assert_eq!(invalid["NEFT"]["amount"], "2000.00", "{summary}");
    assert_eq!(invalid["IMPS"]["count"], 1, "{summary}");
    // A mode the file gives that is not one (CHEQUE) counts under no mode.
    assert_eq!(invalid["-"]["count"], 1, "{summary}");
    assert_eq!(summary["status_totals"]["INVALID"]["count"], 3);
    // The valid rows' per-mode totals are not changed by the invalid ones.
    assert_eq!(summary["mode_totals"]["NEFT"]["count"], 1, "{summary}");
    assert_eq!(summary["mode_totals"]["IMPS"]["count"], 0, "{summary}");

    let mut wb: Xlsx<_> = open_workbook(w.path().join("R.xlsx")).expect("open");
    let sum = wb.worksheet_range("Summary").expect("Summary");
    let rows: Vec<Vec<Data>> = sum.rows().map(|r| r.to_vec()).collect();
    let heading = rows.iter().find(|r| r[0].to_string() == "Status").expect("the status table");
    let col = |h: &str| heading.iter().position(|c| c.to_string() == h).unwrap_or_else(|| panic!("{h}"));
    let row = rows.iter().find(|r| r[0].to_string() == "INVALID").expect("INVALID row");
    let count = |d: &Data| d.get_float().or_else(|| d.get_int().map(|i| i as f64)).unwrap_or(-1.0);
    assert_eq!(count(&row[col("NEFT rows")]), 1.0, "{row:?}");
    assert_eq!(count(&row[col("IMPS rows")]), 1.0, "{row:?}");
    assert_eq!(count(&row[col("RTGS rows")]), 0.0, "{row:?}");
}
