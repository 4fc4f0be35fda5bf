//! Property tests of the input rules (SPEC section 2):
//! (a) amounts round-trip exactly through every accepted form and through the wire form;
//! (b) a row that validates yields gateway form fields that pass the same rules, unchanged;
//! (c) no input, however malformed, makes the reader or the validator panic.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use payrun::gateway::PayoutRequest;
use payrun::input::{RuleOptions, Scanner, Severity, ValidRow};
use payrun::money::Amount;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

const MAX_PAISE: u64 = 100_000_000_000;

/// IFSCs in the bundled directory (all report NEFT, IMPS and RTGS).
const KNOWN_IFSC: &[&str] = &["SBIN0000001", "HDFC0000003", "ICIC0000001", "UTIB0000001", "PUNB0000010"];

const PREFIXES: &[&str] =
    &["", "₹", "₹ ", "Rs", "Rs ", "Rs.", "Rs. ", "rs.", "RS", "rS ", "INR", "INR ", "inr ", "Inr", "iNr"];

#[derive(Clone, Copy, Debug)]
enum Grouping {
    Plain,
    Western,
    Indian,
}

fn group(int: &str, g: Grouping) -> String {
    let (head, last3) = if int.len() > 3 { int.split_at(int.len() - 3) } else { return int.to_string() };
    let size = match g {
        Grouping::Plain => return int.to_string(),
        Grouping::Western => 3,
        Grouping::Indian => 2,
    };
    let mut groups: Vec<&str> = Vec::new();
    let mut rest = head;
    while rest.len() > size {
        let (a, b) = rest.split_at(rest.len() - size);
        groups.push(b);
        rest = a;
    }
    groups.push(rest);
    groups.reverse();
    groups.push(last3);
    groups.join(",")
}

/// Formats `paise` as an input cell: `decimals` is raised to what the value needs (0, 1 or 2).
fn format_amount(paise: u64, g: Grouping, decimals: u8, prefix: &str) -> String {
    let (rupees, frac) = (paise / 100, paise % 100);
    let needed = if frac == 0 {
        0
    } else if frac % 10 == 0 {
        1
    } else {
        2
    };
    let decimals = decimals.max(needed);
    let int = group(&rupees.to_string(), g);
    let frac = match decimals {
        0 => String::new(),
        1 => format!(".{}", frac / 10),
        _ => format!(".{frac:02}"),
    };
    format!("{prefix}{int}{frac}")
}

fn paise_value() -> impl Strategy<Value = u64> {
    prop_oneof![
        1u64..=MAX_PAISE,
        1u64..=1_000_000,
        (1u64..=1_000_000_000).prop_map(|r| (r * 100).min(MAX_PAISE)),
        prop::sample::select(vec![
            1,
            9,
            10,
            99,
            100,
            101,
            2_00_000_00 - 1,
            2_00_000_00,
            5_00_000_00,
            5_00_000_01,
            MAX_PAISE - 1,
            MAX_PAISE
        ]),
    ]
}

fn grouping() -> impl Strategy<Value = Grouping> {
    prop::sample::select(vec![Grouping::Plain, Grouping::Western, Grouping::Indian])
}

/// An amount cell in any accepted form, with the paise it means.
fn amount_cell() -> impl Strategy<Value = (u64, String)> {
    (paise_value(), grouping(), 0u8..3, prop::sample::select(PREFIXES))
        .prop_map(|(p, g, d, pre)| (p, format_amount(p, g, d, pre)))
}

#[test]
fn grouping_helper_is_right() {
    assert_eq!(group("1234567", Grouping::Western), "1,234,567");
    assert_eq!(group("1234567", Grouping::Indian), "12,34,567");
    assert_eq!(group("100000", Grouping::Indian), "1,00,000");
    assert_eq!(group("999", Grouping::Indian), "999");
    assert_eq!(format_amount(150050, Grouping::Western, 0, "₹ "), "₹ 1,500.5");
    assert_eq!(format_amount(150000, Grouping::Indian, 2, "Rs."), "Rs.1,500.00");
    assert_eq!(format_amount(7, Grouping::Plain, 0, ""), "0.07");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// (a) Every accepted form gives back exactly its paise, and the wire and Indian forms read back.
    #[test]
    fn amounts_round_trip_exactly((paise, text) in amount_cell()) {
        let a = Amount::parse_cell(&text).map_err(|e| TestCaseError::fail(format!("{text:?}: {e}")))?;
        prop_assert_eq!(a.paise(), i128::from(paise), "{}", text);
        let wire = a.to_wire();
        prop_assert!(wire.bytes().all(|b| b.is_ascii_digit() || b == b'.'), "wire form {}", wire);
        prop_assert_eq!(wire.parse::<Amount>(), Ok(a));
        prop_assert_eq!(Amount::parse_cell(&wire), Ok(a));
        prop_assert_eq!(Amount::parse_cell(&a.to_indian()), Ok(a));
    }

    /// The limits: above 100 crore, three decimals and bad grouping are all refused.
    #[test]
    fn amounts_out_of_form_are_refused(
        paise in (MAX_PAISE + 1)..(MAX_PAISE * 1000),
        small in 1u64..=MAX_PAISE,
        g in grouping(),
        pre in prop::sample::select(PREFIXES),
        third in 0u8..10,
    ) {
        let text = format_amount(paise, g, 2, pre);
        prop_assert!(Amount::parse_cell(&text).is_err(), "{}", text);
        let text = format!("{}{}", format_amount(small, g, 2, pre), third);
        prop_assert!(Amount::parse_cell(&text).is_err(), "{}", text);
        let text = format!("-{}", format_amount(small, g, 2, ""));
        prop_assert!(Amount::parse_cell(&text).is_err(), "{}", text);
    }

    /// Commas anywhere in the digits are accepted exactly when they form Western or Indian grouping.
    #[test]
    fn grouping_is_accepted_exactly_when_western_or_indian(digits in "[1-9][0-9]{0,8}", cuts in prop::collection::vec(any::<bool>(), 9)) {
        let mut text = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && cuts[i] {
                text.push(',');
            }
            text.push(c);
        }
        let canonical = text == digits || text == group(&digits, Grouping::Western) || text == group(&digits, Grouping::Indian);
        let parsed = Amount::parse_cell(&text);
        prop_assert_eq!(parsed.is_ok(), canonical, "{} -> {:?}", text, parsed);
        if let Ok(a) = parsed {
            prop_assert_eq!(a.paise(), digits.parse::<i128>().expect("digits") * 100);
        }
    }

    /// (c) Amount parsing never panics.
    #[test]
    fn amount_parsing_never_panics(s in "(₹|Rs\\.?|INR|İ|ſ|K)?[0-9,. ₹\u{a0}a-zA-Z+-]{0,24}", t in any::<String>()) {
        let _ = Amount::parse_cell(&s);
        let _ = Amount::parse_cell(&t);
    }
}

// ---------------------------------------------------------------------------------------------
// (b) A valid row's gateway form validates again, with the same normalised values.
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct GenRow {
    name: String,
    account: String,
    ifsc: String,
    amount: String,
    mode: String,
    reference: String,
    remarks: String,
}

fn decorate(s: String, pre: &str, post: &str) -> String {
    format!("{pre}{s}{post}")
}

fn pad() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["", "", "", " ", "\u{a0}", " \u{a0}"])
}

fn gen_row() -> impl Strategy<Value = GenRow> {
    let name = ("[A-Za-z0-9 .,'&()/-]{1,104}", pad(), pad()).prop_map(|(n, a, b)| decorate(n, a, b));
    let account = ("[0-9]{9,18}", any::<bool>()).prop_map(|(d, spaced)| {
        if spaced {
            d.as_bytes().chunks(4).map(|c| std::str::from_utf8(c).expect("digits")).collect::<Vec<_>>().join(" ")
        } else {
            d
        }
    });
    let ifsc = (prop::sample::select(KNOWN_IFSC), any::<bool>(), pad(), pad())
        .prop_map(|(i, lower, a, b)| decorate(if lower { i.to_lowercase() } else { i.to_string() }, a, b));
    let mode = prop::sample::select(vec!["NEFT", "IMPS", "RTGS", "neft", "Imps", "rtgs", ""]);
    let reference = prop_oneof![Just(String::new()), "[Rr][A-Za-z0-9_-]{0,34}"];
    let remarks = "[A-Za-z0-9 ]{0,20}";
    (name, account, ifsc, amount_cell(), mode, reference, remarks).prop_map(
        |(name, account, ifsc, (_, amount), mode, reference, remarks)| GenRow {
            name,
            account,
            ifsc,
            amount,
            mode: mode.to_string(),
            reference,
            remarks,
        },
    )
}

fn write_csv(path: &Path, header: &[&str], rows: &[Vec<String>]) {
    let mut w = csv::Writer::from_path(path).expect("create csv");
    w.write_record(header).expect("write header");
    for r in rows {
        w.write_record(r).expect("write row");
    }
    w.flush().expect("flush");
}

/// Scans a file; returns each row's (line, valid row, whether it has an error).
fn scan_file(path: &Path, opts: RuleOptions) -> Vec<(u64, Option<ValidRow>, bool)> {
    let mut sc = Scanner::open(path, false, opts).expect("file opens");
    let mut out = Vec::new();
    while let Some(v) = sc.next().expect("reads") {
        out.push((
            v.record.line,
            v.row.as_ref().map(|r| r.to_owned()),
            v.problems.iter().any(|p| p.severity == Severity::Error),
        ));
    }
    out
}

fn request(row: &ValidRow, line: u64) -> PayoutRequest {
    PayoutRequest {
        amount: row.amount,
        name: row.name.clone(),
        account: row.account.clone(),
        ifsc: row.ifsc.clone(),
        mode: row.mode.as_str().to_string(),
        remarks: row.remarks.clone(),
        // An empty reference is derived; derived ones start with 'D', generated ones with 'R'.
        external_ref: row.reference.clone().unwrap_or_else(|| format!("D-{line}")),
        payee_list_id: row.payee_list_id.clone(),
        latitude: "12.9716".into(),
        longitude: "77.5946".into(),
    }
}

#[test]
fn valid_rows_yield_gateway_fields_that_pass_the_same_rules() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("input.csv");
    let again = dir.path().join("again.csv");
    let (seen, accepted) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let mut runner = TestRunner::new(Config { cases: 400, failure_persistence: None, ..Config::default() });
    let strategy = (prop::collection::vec(gen_row(), 1..6), any::<bool>());
    let result = runner.run(&strategy, |(rows, mode_auto)| {
        let cells: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                vec![
                    r.name.clone(),
                    r.account.clone(),
                    r.ifsc.clone(),
                    r.amount.clone(),
                    r.mode.clone(),
                    r.reference.clone(),
                    r.remarks.clone(),
                ]
            })
            .collect();
        write_csv(
            &input,
            &["Beneficiary Name", "Account No", "IFSC Code", "Amount", "Mode", "Reference", "Remarks"],
            &cells,
        );
        let first = scan_file(&input, RuleOptions { mode_auto, ..Default::default() });
        prop_assert_eq!(first.len(), rows.len());
        let valid: Vec<(u64, ValidRow)> = first.into_iter().filter_map(|(l, r, _)| r.map(|r| (l, r))).collect();
        seen.fetch_add(rows.len(), Ordering::Relaxed);
        accepted.fetch_add(valid.len(), Ordering::Relaxed);

        let header = ["Name", "accountNumber", "bankIfsc", "amount", "transferMode", "externalRef"];
        let mut out = Vec::new();
        for (line, row) in &valid {
            let form = request(row, *line).form_fields();
            let get = |k: &str| form.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone()).expect("form has the field");
            out.push(header.iter().map(|h| get(h)).collect::<Vec<_>>());
        }
        if out.is_empty() {
            return Ok(());
        }
        write_csv(&again, &header, &out);
        let second = scan_file(&again, RuleOptions::default());
        prop_assert_eq!(second.len(), valid.len());
        for ((first_line, before), (line, after, has_error)) in valid.iter().zip(&second) {
            prop_assert!(!has_error, "line {} of the gateway form does not validate: {:?}", line, before);
            let after = after.as_ref().expect("valid");
            prop_assert_eq!(&after.name, &before.name);
            prop_assert_eq!(&after.account, &before.account);
            prop_assert_eq!(&after.ifsc, &before.ifsc);
            prop_assert_eq!(after.amount, before.amount);
            prop_assert_eq!(after.mode, before.mode);
            let expected_ref = before.reference.clone().unwrap_or_else(|| format!("D-{first_line}"));
            prop_assert_eq!(after.reference.as_deref(), Some(expected_ref.as_str()));
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let (seen, accepted) = (seen.into_inner(), accepted.into_inner());
    // The property is not vacuous: most generated rows are valid.
    assert!(accepted * 3 >= seen, "only {accepted} of {seen} generated rows were valid");
}

// ---------------------------------------------------------------------------------------------
// (c) No input makes the reader or validator panic.
// ---------------------------------------------------------------------------------------------

fn scan_everything(path: &Path, opts: RuleOptions) {
    if let Ok(mut sc) = Scanner::open(path, false, opts) {
        let mut n = 0u64;
        while let Ok(Some(v)) = sc.next() {
            n += 1;
            let _ = v.has_error();
            for p in v.problems {
                let _ = p.to_string();
                assert!(p.line >= 1);
            }
        }
        assert_eq!(sc.rows(), n);
    }
}

fn interesting_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        any::<u8>(),
        prop::sample::select(
            b",;\t\"\r\n 0123456789.Ee+-abcSBIN\xa0\xc2\xe2\x82\xb9\xe9\xef\xbb\xbf\xff\xfe\x00".to_vec()
        ),
    ]
}

fn any_options() -> impl Strategy<Value = RuleOptions> {
    (
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        prop::sample::select(vec![None, Some(payrun::input::Mode::Neft), Some(payrun::input::Mode::Rtgs)]),
    )
        .prop_map(|(mode_auto, allow_duplicates, allow_unknown_ifsc, default_mode)| RuleOptions {
            mode_auto,
            default_mode,
            allow_duplicates,
            allow_unknown_ifsc,
            ..Default::default()
        })
}

fn cell() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        ".{0,12}",
        "[0-9,. eE+₹Rs-]{0,16}",
        prop::sample::select(vec![
            "SBIN0000001",
            "sbin0000001",
            "ABCD0123456",
            "NEFT",
            "imps",
            "RTGS",
            "",
            " ",
            "\u{a0}",
            "\"",
            ",",
            "\r\n"
        ])
        .prop_map(str::to_string),
    ]
}

#[test]
fn no_whole_file_makes_the_validator_panic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bytes.csv");
    let mut runner = TestRunner::new(Config { cases: 800, failure_persistence: None, ..Config::default() });
    let bom = prop::sample::select(vec![&b""[..], b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff"]);
    let header = prop::sample::select(vec![
        &b""[..],
        b"Name,Account,IFSC,Amount,Mode,Reference\n",
        b"Name;Account;IFSC;Amount\r\n",
    ]);
    let strategy = (bom, header, prop::collection::vec(interesting_byte(), 0..600), any_options());
    let result = runner.run(&strategy, |(bom, header, body, opts)| {
        let mut bytes = bom.to_vec();
        if bom.len() == 2 {
            // UTF-16: encode the header properly so the body is read as rows.
            for u in String::from_utf8_lossy(header).encode_utf16() {
                bytes.extend_from_slice(&if bom[0] == 0xff { u.to_le_bytes() } else { u.to_be_bytes() });
            }
        } else {
            bytes.extend_from_slice(header);
        }
        bytes.extend_from_slice(&body);
        std::fs::write(&path, &bytes).expect("write");
        scan_everything(&path, opts);
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

#[test]
fn no_cell_makes_the_validator_panic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("cells.csv");
    let mut runner = TestRunner::new(Config { cases: 800, failure_persistence: None, ..Config::default() });
    let row = prop::collection::vec(cell(), 6);
    let strategy = (prop::collection::vec(row, 1..5), any::<bool>(), any_options());
    let result = runner.run(&strategy, |(rows, quoted, opts)| {
        let header = ["Name", "Account", "IFSC", "Amount", "Mode", "Reference"];
        if quoted {
            write_csv(&path, &header, &rows);
        } else {
            let mut text = header.join(",");
            text.push('\n');
            for r in &rows {
                text.push_str(&r.join(","));
                text.push('\n');
            }
            std::fs::write(&path, text).expect("write");
        }
        scan_everything(&path, opts);
        let head = std::fs::read(&path).expect("read back");
        let first = &head[..head.len().min(1024)];
        // Control bytes other than tab, line breaks, form feed and escape: a few are cells' problems
        // (each row reports its own), many near the start make a binary file.
        let controls =
            first.iter().filter(|&&b| b < 0x20 && !matches!(b, b'\t' | b'\n' | 0x0B | 0x0C | b'\r' | 0x1B)).count();
        if first.contains(&0) && controls >= 2 && controls * 32 > first.len() {
            // A binary file, not text: refused as a whole, in one line.
            let refused = Scanner::open(&path, false, RuleOptions::default()).err();
            prop_assert!(
                matches!(refused, Some(payrun::input::InputError::NotTabular { what: "a binary file", .. })),
                "{:?}",
                refused
            );
        } else if quoted {
            // Quoted, every row keeps its shape: the rows not entirely blank are all read.
            let mut sc = Scanner::open(&path, false, RuleOptions::default()).expect("opens");
            let mut n = 0;
            while sc.next().expect("reads").is_some() {
                n += 1;
            }
            let expected = rows.iter().filter(|r| !r.iter().all(|c| payrun::input::reader::trim(c).is_empty())).count();
            prop_assert_eq!(n, expected);
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}
