//! Library-level tests of the input rules of SPEC section 2: every problem code with its line,
//! column heading (as written in the file) and severity, and every reading case (encodings,
//! delimiters, line endings, blank lines, header aliases, file-level errors).

use payrun::input::{Code, Encoding, Field, InputError, Mode, RuleOptions, Scanner, ValidRow};

use crate::support::input::{Outcome, err, store, try_scan, warn};

fn try_scan_bytes(bytes: &[u8], opts: RuleOptions) -> Result<Outcome, InputError> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("payout.csv");
    std::fs::write(&path, bytes).expect("write input");
    try_scan(&path, false, opts)
}

fn scan_bytes(bytes: &[u8], opts: RuleOptions) -> Outcome {
    try_scan_bytes(bytes, opts).unwrap_or_else(|e| panic!("file-level error: {e}"))
}

fn scan(text: &str) -> Outcome {
    scan_bytes(text.as_bytes(), RuleOptions::default())
}

fn scan_opts(text: &str, opts: RuleOptions) -> Outcome {
    scan_bytes(text.as_bytes(), opts)
}

/// The header most tests use: spreadsheet headings, so the column names in problems are checked
/// to be the file's own headings.
const H: &str = "Beneficiary Name,Account No,IFSC Code,Amount,Payment Mode,Reference\n";
const NAME: &str = "Beneficiary Name";
const ACCOUNT: &str = "Account No";
const IFSC: &str = "IFSC Code";
const AMOUNT: &str = "Amount";
const MODE: &str = "Payment Mode";
const REF: &str = "Reference";

// ---------------------------------------------------------------------------------------------
// One test per problem code.
// ---------------------------------------------------------------------------------------------

#[test]
fn a_well_formed_row_is_valid_and_normalised() {
    let o = scan(&format!("{H}Ravi Kumar,39628544321,SBIN0000001,\"1,500.50\",neft,NOV-001\n"));
    assert!(o.problems().is_empty(), "{:?}", o.problems());
    let r = o.valid(0);
    assert_eq!(r.name, "Ravi Kumar");
    assert_eq!(r.account, "39628544321");
    assert_eq!(r.ifsc, "SBIN0000001");
    assert_eq!(r.amount.paise(), 150050);
    assert_eq!(r.mode, Mode::Neft);
    assert_eq!(r.reference.as_deref(), Some("NOV-001"));
    assert_eq!(o.row(0).line, 2);
}

#[test]
fn missing_field_is_reported_alone_for_each_required_field() {
    let o = scan(&format!(
        "{H}\
         ,39628544321,SBIN0000001,1500,NEFT,R2\n\
         Ravi Kumar,,SBIN0000001,1500,NEFT,R3\n\
         Ravi Kumar,39628544322,,1500,NEFT,R4\n\
         Ravi Kumar,39628544323,SBIN0000001,,NEFT,R5\n\
         Ravi Kumar,39628544324,SBIN0000001,1500,,R6\n\
         \u{a0} ,  \t ,\u{a0},  , \u{a0} ,R7\n"
    ));
    assert_eq!(
        o.problems(),
        vec![
            err(2, NAME, Code::MissingField),
            err(3, ACCOUNT, Code::MissingField),
            err(4, IFSC, Code::MissingField),
            err(5, AMOUNT, Code::MissingField),
            err(6, MODE, Code::MissingField),
            // Cells of only white space (no-break space included) are empty: MISSING_FIELD and
            // nothing else (not BAD_NAME, BAD_ACCOUNT, BAD_IFSC, BAD_AMOUNT or BAD_MODE).
            err(7, NAME, Code::MissingField),
            err(7, ACCOUNT, Code::MissingField),
            err(7, IFSC, Code::MissingField),
            err(7, AMOUNT, Code::MissingField),
            err(7, MODE, Code::MissingField),
        ]
    );
    assert!(o.rows.iter().all(|r| r.row.is_none()));
}

#[test]
fn bad_ifsc() {
    let o = scan(&format!(
        "{H}\
         A,111111111,SBIN000001,100,NEFT,\n\
         A,111111112,SBIN1000001,100,NEFT,\n\
         A,111111113,SB1N0000001,100,NEFT,\n\
         A,111111114,SBIN00000@1,100,NEFT,\n\
         A,111111115,SBIN00000011,100,NEFT,\n\
         A,111111116,SBIN 000001,100,NEFT,\n\
         A,111111117,sbin0000001,100,NEFT,\n\
         A,111111118,  Hdfc0000003 ,100,NEFT,\n"
    ));
    assert_eq!(o.problems(), (2..=7).map(|l| err(l, IFSC, Code::BadIfsc)).collect::<Vec<_>>(),);
    // Lower case that is valid after upper-casing is not an error, and is normalised.
    assert_eq!(o.valid(6).ifsc, "SBIN0000001");
    assert_eq!(o.valid(7).ifsc, "HDFC0000003");
}

#[test]
fn unknown_ifsc_is_an_error_by_default_and_a_warning_when_allowed() {
    let text = format!("{H}Kavya Iyer,123456789012,ABCD0123456,40000,NEFT,NOV-004\n");
    let o = scan(&text);
    assert_eq!(o.problems(), vec![err(2, IFSC, Code::UnknownIfsc)]);
    assert!(o.row(0).row.is_none());

    let o = scan_opts(&text, RuleOptions { allow_unknown_ifsc: true, ..Default::default() });
    assert_eq!(o.problems(), vec![warn(2, IFSC, Code::UnknownIfsc)]);
    let r = o.valid(0);
    assert_eq!(r.ifsc, "ABCD0123456");
    assert_eq!(r.amount.paise(), 40000_00);
}

#[test]
fn bad_amount_for_every_spec_counterexample_and_above_100_crore() {
    let bad = [
        "10.",
        ".5",
        "+500",
        "100.000",
        "1e5",
        "\"1.234,50\"",
        "-100",
        "0",
        "0.00",
        "\"1,00,00,00,001\"",
        "1000000000.01",
        "\"12,3456\"",
        "\"1,2345\"",
        "abc",
        "\"1,000,00\"",
        "\"12,34,5678\"",
        "1500/-",
        "\"123,45,678\"",
        "\"1,23,456,789\"",
        "\"1,234,56,789\"",
        "\"1,2,345\"",
    ];
    let mut text = H.to_string();
    for (i, a) in bad.iter().enumerate() {
        text.push_str(&format!("A,{},SBIN0000001,{a},NEFT,\n", 100000000 + i));
    }
    let o = scan(&text);
    let expect: Vec<_> = (0..bad.len()).map(|i| err(i as u64 + 2, AMOUNT, Code::BadAmount)).collect();
    assert_eq!(o.problems(), expect);

    // The limit itself is fine: ₹1,00,00,00,000 (100 crore).
    let o = scan(&format!(
        "{H}A,111111111,SBIN0000001,\"1,00,00,00,000\",NEFT,\nA,111111112,SBIN0000001,1000000000.00,NEFT,\n"
    ));
    assert_eq!(o.valid(0).amount.paise(), 100_000_000_000);
    assert_eq!(o.valid(1).amount.paise(), 100_000_000_000);
}

#[test]
fn accepted_amount_forms() {
    let good: &[(&str, i128)] = &[
        ("1500", 1500_00),
        ("1500.5", 1500_50),
        ("1500.05", 1500_05),
        ("0.01", 1),
        ("₹500", 500_00),
        ("₹ 500", 500_00),
        ("Rs500", 500_00),
        ("Rs 500", 500_00),
        ("Rs.500", 500_00),
        ("Rs. 500", 500_00),
        ("rs.500", 500_00),
        ("RS 500", 500_00),
        ("rS.500.25", 500_25),
        ("INR500", 500_00),
        ("INR 500", 500_00),
        ("inr 500", 500_00),
        ("Inr500", 500_00),
        ("\"1,234,567.89\"", 1234567_89),
        ("\"12,34,567.89\"", 1234567_89),
        ("\"1,50,000\"", 150000_00),
        ("\"150,000\"", 150000_00),
        ("\"1,000\"", 1000_00),
        ("\"₹1,50,000.00\"", 150000_00),
        ("\"Rs. 1,234,567\"", 1234567_00),
        ("\"INR 12,34,567.8\"", 1234567_80),
    ];
    let mut text = H.to_string();
    for (i, (a, _)) in good.iter().enumerate() {
        text.push_str(&format!("A,{},SBIN0000001,{a},NEFT,\n", 100000000 + i));
    }
    let o = scan(&text);
    assert!(o.problems().is_empty(), "{:?}", o.problems());
    for (i, (a, paise)) in good.iter().enumerate() {
        assert_eq!(o.valid(i).amount.paise(), *paise, "{a}");
    }

    // A grouped amount must be quoted in a comma-delimited file: unquoted it is an extra field.
    let o = scan(&format!("{H}A,111111111,SBIN0000001,1,500.00,NEFT,\n"));
    assert_eq!(o.problems(), vec![err(2, "", Code::BadRow)]);
}

#[test]
fn bad_mode() {
    let o = scan(&format!(
        "{H}\
         A,111111111,SBIN0000001,100,CHEQUE,\n\
         A,111111112,SBIN0000001,100,UPI,\n\
         A,111111113,SBIN0000001,100,NEFT2,\n\
         A,111111114,SBIN0000001,100,neft,\n\
         A,111111115,SBIN0000001,100, Imps ,\n\
         A,111111116,SBIN0000001,300000,rtgs,\n"
    ));
    assert_eq!(
        o.problems(),
        vec![err(2, MODE, Code::BadMode), err(3, MODE, Code::BadMode), err(4, MODE, Code::BadMode)]
    );
    assert_eq!(o.valid(3).mode, Mode::Neft);
    assert_eq!(o.valid(4).mode, Mode::Imps);
    assert_eq!(o.valid(5).mode, Mode::Rtgs);
}

#[test]
fn mode_limit_and_its_boundaries() {
    let o = scan(&format!(
        "{H}\
         A,111111111,SBIN0000001,\"5,00,000\",IMPS,\n\
         A,111111112,SBIN0000001,500000.01,IMPS,\n\
         A,111111113,SBIN0000001,\"2,00,000.00\",RTGS,\n\
         A,111111114,SBIN0000001,199999.99,RTGS,\n\
         A,111111115,SBIN0000001,\"6,50,000\",IMPS,\n\
         A,111111116,SBIN0000001,\"1,20,000\",RTGS,\n\
         A,111111117,SBIN0000001,\"1,00,00,00,000\",NEFT,\n\
         A,111111118,SBIN0000001,1,NEFT,\n\
         A,111111119,SBIN0000001,\"1,00,00,00,000\",RTGS,\n\
         A,111111120,SBIN0000001,1,IMPS,\n"
    ));
    assert_eq!(
        o.problems(),
        vec![
            err(3, MODE, Code::ModeLimit),
            err(5, MODE, Code::ModeLimit),
            err(6, MODE, Code::ModeLimit),
            err(7, MODE, Code::ModeLimit)
        ]
    );
    assert_eq!(o.valid(0).mode, Mode::Imps);
    assert_eq!(o.valid(2).mode, Mode::Rtgs);
    for i in [0, 2, 6, 7, 8, 9] {
        assert!(o.row(i).row.is_some(), "row {i}: {:?}", o.row(i).problems);
    }
}

#[test]
fn mode_auto_derives_rtgs_from_two_lakh_else_imps() {
    let text = format!(
        "{H}\
         A,111111111,SBIN0000001,\"2,00,000\",,\n\
         A,111111112,SBIN0000001,199999.99,,\n\
         A,111111113,SBIN0000001,10,,\n\
         A,111111114,SBIN0000001,500000.01,,\n\
         A,111111115,SBIN0000001,10,NEFT,\n\
         A,111111116,SBIN0000001,abc,,\n"
    );
    let o = scan_opts(&text, RuleOptions { mode_auto: true, ..Default::default() });
    assert_eq!(o.valid(0).mode, Mode::Rtgs);
    assert_eq!(o.valid(1).mode, Mode::Imps);
    assert_eq!(o.valid(2).mode, Mode::Imps);
    assert_eq!(o.valid(3).mode, Mode::Rtgs);
    assert_eq!(o.valid(4).mode, Mode::Neft, "an explicit mode is kept");
    // A bad amount is reported; no mode can be derived, but that is not a second problem.
    assert_eq!(o.problems(), vec![err(7, AMOUNT, Code::BadAmount)]);

    // Without --mode-auto an empty mode is MISSING_FIELD.
    let o = scan(&text);
    assert_eq!(o.problems().iter().filter(|p| p.2 == Code::MissingField).count(), 5);

    // No mode column at all works with --mode-auto.
    let o = scan_opts(
        "Name,Account,IFSC,Amount\nA,111111111,SBIN0000001,250000\nB,111111112,HDFC0000003,\"1,999\"\n",
        RuleOptions { mode_auto: true, ..Default::default() },
    );
    assert!(o.problems().is_empty(), "{:?}", o.problems());
    assert_eq!(o.valid(0).mode, Mode::Rtgs);
    assert_eq!(o.valid(1).mode, Mode::Imps);
}

#[test]
fn default_mode_fills_empty_or_absent_modes() {
    let opts = || RuleOptions { default_mode: Some(Mode::Neft), ..Default::default() };
    let o = scan_opts(&format!("{H}A,111111111,SBIN0000001,900000,,\nA,111111112,SBIN0000001,900,IMPS,\n"), opts());
    assert!(o.problems().is_empty(), "{:?}", o.problems());
    assert_eq!(o.valid(0).mode, Mode::Neft);
    assert_eq!(o.valid(1).mode, Mode::Imps);

    let o = scan_opts("Name,Account,IFSC,Amount\nA,111111111,SBIN0000001,250000\n", opts());
    assert_eq!(o.valid(0).mode, Mode::Neft);

    // The default is subject to the limits like any mode; with no mode column the problem names the field.
    let o = scan_opts(
        "Name,Account,IFSC,Amount\nA,111111111,SBIN0000001,100\n",
        RuleOptions { default_mode: Some(Mode::Rtgs), ..Default::default() },
    );
    assert_eq!(o.problems(), vec![err(2, "transfer mode", Code::ModeLimit)]);
}

#[test]
fn bad_account() {
    let o = scan(&format!(
        "{H}\
         A,12345678,SBIN0000001,100,NEFT,\n\
         A,1234567890123456789,SBIN0000001,100,NEFT,\n\
         A,123456789,SBIN0000001,100,NEFT,\n\
         A,123456789012345678,SBIN0000001,100,NEFT,\n\
         A,1234 5678 9012,SBIN0000001,100,NEFT,\n\
         A,12345678A,SBIN0000001,100,NEFT,\n\
         A,1234-5678-90,SBIN0000001,100,NEFT,\n\
         A,7788,SBIN0000001,100,NEFT,\n\
         A,0012345678,SBIN0000001,100,NEFT,\n"
    ));
    assert_eq!(
        o.problems(),
        vec![
            err(2, ACCOUNT, Code::BadAccount),
            err(3, ACCOUNT, Code::BadAccount),
            err(7, ACCOUNT, Code::BadAccount),
            err(8, ACCOUNT, Code::BadAccount),
            err(9, ACCOUNT, Code::BadAccount),
        ]
    );
    assert_eq!(o.valid(2).account, "123456789");
    assert_eq!(o.valid(3).account, "123456789012345678");
    assert_eq!(o.valid(4).account, "123456789012", "spaces are removed");
    assert_eq!(o.valid(8).account, "0012345678", "leading zeros are kept");
}

#[test]
fn spreadsheet_mangled_accounts() {
    let o = scan(&format!(
        "{H}\
         A,3.96285E+10,SBIN0000001,100,NEFT,\n\
         A,1.23E+016,SBIN0000001,100,NEFT,\n\
         A,39628544321.0,SBIN0000001,100,NEFT,\n\
         A,\"39,628,544,321\",SBIN0000001,100,NEFT,\n\
         A,3.96285e10,SBIN0000001,100,NEFT,\n"
    ));
    // SPREADSHEET_MANGLED alone, not also BAD_ACCOUNT.
    assert_eq!(o.problems(), (2..=6).map(|l| err(l, ACCOUNT, Code::SpreadsheetMangled)).collect::<Vec<_>>());
    let msg = &o.row(0).problems[0].message;
    assert!(msg.to_lowercase().contains("text"), "the hint says to format the column as text: {msg}");
}

#[test]
fn bad_name() {
    let long = "A".repeat(101);
    let max = "B".repeat(100);
    let o = scan(&format!(
        "{H}\
         {long},111111111,SBIN0000001,100,NEFT,\n\
         {max},111111112,SBIN0000001,100,NEFT,\n\
         रवि शर्मा,111111113,SBIN0000001,100,NEFT,\n\
         Zoë,111111114,SBIN0000001,100,NEFT,\n\
         \"M/s. Shah & Sons (P) Ltd., O'Brien-Das\",111111115,SBIN0000001,100,NEFT,\n\
         Ravi_Kumar,111111116,SBIN0000001,100,NEFT,\n\
         Ravi@Kumar,111111117,SBIN0000001,100,NEFT,\n\
         José 2,111111118,SBIN0000001,100,NEFT,\n"
    ));
    assert_eq!(
        o.problems(),
        vec![
            err(2, NAME, Code::BadName),
            err(4, NAME, Code::BadName),
            err(5, NAME, Code::BadName),
            err(7, NAME, Code::BadName),
            err(8, NAME, Code::BadName),
            err(9, NAME, Code::BadName),
        ]
    );
    assert_eq!(o.valid(1).name, max);
    assert_eq!(o.valid(4).name, "M/s. Shah & Sons (P) Ltd., O'Brien-Das");
}

#[test]
fn bad_ref_form() {
    let r35 = "R".repeat(35);
    let r36 = "S".repeat(36);
    let o = scan(&format!(
        "{H}\
         A,111111111,SBIN0000001,100,NEFT,{r36}\n\
         A,111111112,SBIN0000001,100,NEFT,{r35}\n\
         A,111111113,SBIN0000001,100,NEFT,NOV 014\n\
         A,111111114,SBIN0000001,100,NEFT,NOV#014\n\
         A,111111115,SBIN0000001,100,NEFT,a_b-C9\n\
         A,111111116,SBIN0000001,100,NEFT,\n\
         A,111111117,SBIN0000001,100,NEFT,  \n\
         A,111111118,SBIN0000001,100,NEFT,REF.1\n"
    ));
    assert_eq!(
        o.problems(),
        vec![
            err(2, REF, Code::BadRef),
            err(4, REF, Code::BadRef),
            err(5, REF, Code::BadRef),
            err(9, REF, Code::BadRef)
        ]
    );
    assert_eq!(o.valid(1).reference.as_deref(), Some(r35.as_str()));
    assert_eq!(o.valid(4).reference.as_deref(), Some("a_b-C9"));
    // An empty reference cell means "derive one": fine, and no reference.
    assert_eq!(o.valid(5).reference, None);
    assert_eq!(o.valid(6).reference, None);
}

#[test]
fn bad_ref_reuse_ignoring_case_flags_only_the_later_row() {
    let o = scan(&format!(
        "{H}\
         A,111111111,SBIN0000001,100,NEFT,nov-001\n\
         A,111111112,SBIN0000001,100,NEFT,\n\
         A,111111113,SBIN0000001,100,NEFT,\n\
         A,111111114,SBIN0000001,100,NEFT,NOV-002\n\
         \n\
         A,111111115,SBIN0000001,100,NEFT,NOV-001\n\
         A,111111116,SBIN0000001,100,NEFT,Nov-001\n"
    ));
    assert_eq!(o.problems(), vec![err(7, REF, Code::BadRef), err(8, REF, Code::BadRef)]);
    for r in &o.rows[4..] {
        assert!(r.problems[0].message.contains("line 2"), "names the first line: {}", r.problems[0].message);
    }
    assert_eq!(o.valid(0).reference.as_deref(), Some("nov-001"));
    // Two empty references are not a reuse.
    assert!(o.row(1).row.is_some() && o.row(2).row.is_some());
}

#[test]
fn duplicate_row_after_normalising_whatever_the_references() {
    let text = format!(
        "{H}\
         Ravi Kumar,39628544321,SBIN0000001,\"1,500.00\",IMPS,NOV-001\n\
         Ravi K,39628544321,SBIN0000001,1500,NEFT,NOV-002\n\
         Ravi Kumar,3962 8544 321,sbin0000001,Rs. 1500.0,IMPS,\n\
         Ravi Kumar,39628544321,SBIN0000001,1500.01,IMPS,NOV-004\n\
         Ravi Kumar,39628544321,HDFC0000003,1500,IMPS,NOV-005\n\
         Ravi Kumar,39628544322,SBIN0000001,1500,IMPS,NOV-006\n"
    );
    let o = scan(&text);
    // Line 3 also names the account's payee differently ("Ravi K"): a SHARED_ACCOUNT warning.
    assert_eq!(
        o.problems(),
        vec![
            err(3, ACCOUNT, Code::DuplicateRow),
            warn(3, ACCOUNT, Code::SharedAccount),
            err(4, ACCOUNT, Code::DuplicateRow)
        ]
    );
    assert!(o.row(1).problems[0].message.contains("line 2"), "{}", o.row(1).problems[0].message);
    assert!(o.row(0).row.is_some(), "the first occurrence is fine");
    for i in 3..6 {
        assert!(o.row(i).row.is_some(), "row {i} differs in amount, IFSC or account");
    }

    let o = scan_opts(&text, RuleOptions { allow_duplicates: true, ..Default::default() });
    assert_eq!(
        o.problems(),
        vec![
            warn(3, ACCOUNT, Code::DuplicateRow),
            warn(3, ACCOUNT, Code::SharedAccount),
            warn(4, ACCOUNT, Code::DuplicateRow)
        ]
    );
    assert_eq!(o.rows.iter().filter(|r| r.row.is_some()).count(), 6);
    assert_eq!(o.valid(2).account, "39628544321");
}

#[test]
fn bad_row_for_too_few_and_too_many_fields() {
    let o = scan(&format!(
        "{H}\
         A,111111111,SBIN0000001,100,NEFT\n\
         A,111111112,SBIN0000001,100,NEFT,R1,extra\n\
         Tanvi Joshi,990011223344,BKID0000001,14,500,NEFT,NOV-015\n\
         A\n\
         A,111111113,SBIN0000001,100,NEFT,R2\n"
    ));
    assert_eq!(
        o.problems(),
        vec![err(2, "", Code::BadRow), err(3, "", Code::BadRow), err(4, "", Code::BadRow), err(5, "", Code::BadRow)]
    );
    assert!(o.row(0).problems[0].message.contains('5') && o.row(0).problems[0].message.contains('6'));
    assert!(o.row(4).row.is_some());
}

#[test]
fn every_problem_of_a_row_is_reported_at_once() {
    let o = scan(&format!("{H}Zoë,1234,SBIN0000001,0,NEFT,REF 1\n"));
    assert_eq!(
        o.problems(),
        vec![
            err(2, NAME, Code::BadName),
            err(2, ACCOUNT, Code::BadAccount),
            err(2, AMOUNT, Code::BadAmount),
            err(2, REF, Code::BadRef)
        ]
    );
    let o = scan(&format!("{H}Zoë,3.96285E+10,SBIN00001,1e5,CHEQUE,REF#1\n"));
    let codes: Vec<Code> = o.problems().iter().map(|p| p.2).collect();
    assert_eq!(
        codes,
        vec![Code::BadName, Code::SpreadsheetMangled, Code::BadIfsc, Code::BadAmount, Code::BadMode, Code::BadRef]
    );
    let o = scan(&format!("{H},,ABCD0123456,600000,IMPS,\n"));
    assert_eq!(
        o.problems(),
        vec![
            err(2, NAME, Code::MissingField),
            err(2, ACCOUNT, Code::MissingField),
            err(2, IFSC, Code::UnknownIfsc),
            err(2, MODE, Code::ModeLimit)
        ]
    );
}

#[test]
fn every_row_is_checked() {
    let o = scan(&format!(
        "{H}\
         Ravi Kumar,39628544321,SBIN0000001,1500,NEFT,N1\n\
         Zoë,39628544322,SBIN0000001,1500,NEFT,N2\n\
         Ravi Kumar,39628544323,SBIN000001,1500,NEFT,N3\n\
         Ravi Kumar,39628544324,SBIN0000001,1500,NEFT,N4\n\
         Ravi Kumar,39628544325,SBIN0000001,-5,NEFT,N5\n\
         Ravi Kumar,39628544326,SBIN0000001,1500,NEFT,N6\n"
    ));
    assert_eq!(o.rows.len(), 6);
    assert_eq!(
        o.problems(),
        vec![err(3, NAME, Code::BadName), err(4, IFSC, Code::BadIfsc), err(6, AMOUNT, Code::BadAmount)]
    );
    let valid: Vec<u64> = o.rows.iter().filter(|r| r.row.is_some()).map(|r| r.line).collect();
    assert_eq!(valid, vec![2, 5, 7]);
}

// ---------------------------------------------------------------------------------------------
// Reading.
// ---------------------------------------------------------------------------------------------

const ROW_OK: &str = "Ravi Kumar,39628544321,SBIN0000001,1500,NEFT";

#[test]
fn utf8_with_bom() {
    let mut bytes = vec![0xEF, 0xBB, 0xBF];
    bytes.extend_from_slice(
        format!("Name,Account,IFSC,Amount,Mode\n{ROW_OK}\n,111111111,SBIN0000001,1,NEFT\n").as_bytes(),
    );
    let o = scan_bytes(&bytes, RuleOptions::default());
    assert_eq!(o.encoding, Encoding::Utf8Bom);
    assert_eq!(o.header[0], "Name", "the BOM is not part of the first heading");
    assert_eq!(o.valid(0).name, "Ravi Kumar");
    assert_eq!(o.problems(), vec![err(3, "Name", Code::MissingField)]);

    let o = scan(&format!("Name,Account,IFSC,Amount,Mode\n{ROW_OK}\n"));
    assert_eq!(o.encoding, Encoding::Utf8);
}

fn utf16le(text: &str) -> Vec<u8> {
    let mut bytes = vec![0xFF, 0xFE];
    for u in text.encode_utf16() {
        bytes.extend_from_slice(&u.to_le_bytes());
    }
    bytes
}

#[test]
fn utf16le_with_bom_and_tabs_excel_unicode_text() {
    let text = "Name\tAccount No\tIFSC\tAmount\tMode\tRemarks\r\n\
                Ravi Kumar\t39628544321\tSBIN0000001\t1,500.00\tNEFT\tSalary ₹ Nov\r\n\
                Zoë\t39628544322\tHDFC0000003\t2,50,000\tRTGS\t\r\n";
    let o = scan_bytes(&utf16le(text), RuleOptions::default());
    assert_eq!(o.encoding, Encoding::Utf16le);
    assert_eq!(o.delimiter, b'\t');
    assert_eq!(o.header, vec!["Name", "Account No", "IFSC", "Amount", "Mode", "Remarks"]);
    let r = o.valid(0);
    assert_eq!(r.amount.paise(), 1500_00, "the comma is not a delimiter in a tab file");
    assert_eq!(o.row(0).cells[5], "Salary ₹ Nov", "decoded, not mangled");
    assert_eq!(r.remarks, "Salary Rs Nov", "sent in ASCII");
    assert_eq!(o.row(1).cells[0], "Zoë", "decoded, not mangled");
    assert_eq!(o.problems(), vec![warn(2, "Remarks", Code::RemarksChanged), err(3, "Name", Code::BadName)]);
}

#[test]
fn invalid_utf8_is_read_as_windows_1252() {
    let mut bytes = b"Name,Account,IFSC,Amount,Mode,Remarks\r\n".to_vec();
    bytes.extend_from_slice(b"Jos\xE9 Silva,111111111,SBIN0000001,100,NEFT,\r\n");
    bytes.extend_from_slice(b"Ravi Kumar,111111112,SBIN0000001,100,NEFT,caf\xE9 \x80 50\r\n");
    let o = scan_bytes(&bytes, RuleOptions::default());
    assert_eq!(o.encoding, Encoding::Windows1252);
    assert_eq!(o.row(0).cells[0], "José Silva");
    assert_eq!(o.row(1).cells[5], "café € 50");
    assert_eq!(o.problems(), vec![err(2, "Name", Code::BadName), warn(3, "Remarks", Code::RemarksChanged)]);
    assert_eq!(o.valid(1).remarks, "cafe EUR 50", "sent in ASCII");
}

#[test]
fn semicolon_and_tab_delimiters_are_detected() {
    let o = scan(
        "Name;Account;IFSC;Amount;Mode\nRavi Kumar;39628544321;SBIN0000001;1,500.00;NEFT\nA;111111111;SBIN0000001;12,34,567;NEFT\n",
    );
    assert_eq!(o.delimiter, b';');
    assert_eq!(o.valid(0).amount.paise(), 1500_00);
    assert_eq!(o.valid(1).amount.paise(), 1234567_00);

    let o = scan("Name\tAccount\tIFSC\tAmount\tMode\nRavi, Kumar\t39628544321\tSBIN0000001\t1,500.00\tNEFT\n");
    assert_eq!(o.delimiter, b'\t');
    assert_eq!(o.valid(0).name, "Ravi, Kumar");

    let o = scan(&format!("Name,Account,IFSC,Amount,Mode\n{ROW_OK}\n"));
    assert_eq!(o.delimiter, b',');
}

#[test]
fn crlf_and_lf_read_alike() {
    let lf = format!("{H}{ROW_OK},R1\nZoë,111111111,SBIN0000001,100,NEFT,R2\n\nA,111111112,SBIN0000001,0,NEFT,R3");
    let crlf = lf.replace('\n', "\r\n");
    let a = scan(&lf);
    let b = scan(&crlf);
    assert_eq!(a.problems(), vec![err(3, NAME, Code::BadName), err(5, AMOUNT, Code::BadAmount)]);
    assert_eq!(a.problems(), b.problems());
    assert_eq!(b.valid(0).reference.as_deref(), Some("R1"), "no stray \\r in the last field");
    assert_eq!(a.rows.iter().map(|r| r.line).collect::<Vec<_>>(), b.rows.iter().map(|r| r.line).collect::<Vec<_>>());
}

#[test]
fn blank_lines_spaces_and_delimiter_only_lines_are_skipped_with_physical_line_numbers() {
    for eol in ["\n", "\r\n"] {
        let text = [
            "Name,Account,IFSC,Amount,Mode,Remarks",      // 1
            "",                                           // 2
            "Ravi Kumar,111111111,SBIN0000001,100,NEFT,", // 3
            "    ",                                       // 4
            ",,,,,",                                      // 5
            " , ,\u{a0}, , , ",                           // 6
            "Zoë,111111112,SBIN0000001,100,NEFT,",        // 7
            "A,111111113,SBIN0000001,100,NEFT,\"first",   // 8
            "second\"",                                   // 9
            "\t",                                         // 10
            "A,111111114,SBIN0000001,0,NEFT,",            // 11
            ",,,,",                                       // 12
            "",                                           // 13
        ]
        .join(eol);
        let o = scan(&text);
        assert_eq!(o.rows.iter().map(|r| r.line).collect::<Vec<_>>(), vec![3, 7, 8, 11], "eol {eol:?}");
        assert_eq!(
            o.problems(),
            vec![err(7, "Name", Code::BadName), err(11, "Amount", Code::BadAmount)],
            "eol {eol:?}"
        );
        assert_eq!(o.valid(2).remarks, format!("first{eol}second"));
    }
}

#[test]
fn leading_blank_lines_before_the_header_count() {
    let o = scan("\n\r\nName,Account,IFSC,Amount,Mode\n\nZoë,111111111,SBIN0000001,100,NEFT\n");
    assert_eq!(o.problems(), vec![err(5, "Name", Code::BadName)]);
}

fn check_maps(header: &str, row: &str) -> ValidRow {
    let o = scan(&format!("{header}\n{row}\n"));
    assert!(o.problems().is_empty(), "{header}: {:?}", o.problems());
    o.valid(0).clone()
}

#[test]
fn header_aliases_gateway_names_and_spreadsheet_headings() {
    let r = check_maps(
        "Name,accountNumber,bankIfsc,amount,transferMode,externalRef,payeeListId,remarks",
        "Ravi Kumar,39628544321,SBIN0000001,1500,IMPS,NOV-001,PL-7,Salary",
    );
    assert_eq!((r.name.as_str(), r.account.as_str(), r.ifsc.as_str()), ("Ravi Kumar", "39628544321", "SBIN0000001"));
    assert_eq!((r.amount.paise(), r.mode), (1500_00, Mode::Imps));
    assert_eq!(r.reference.as_deref(), Some("NOV-001"));
    assert_eq!(r.payee_list_id, "PL-7");
    assert_eq!(r.remarks, "Salary");

    for mode_heading in ["Mode", "Payment Mode"] {
        let r = check_maps(
            &format!("Beneficiary Name,Account No,IFSC Code,Amount,{mode_heading},Narration,Reference"),
            "Ravi Kumar,39628544321,SBIN0000001,1500,NEFT,Salary,NOV-001",
        );
        assert_eq!(r.mode, Mode::Neft, "{mode_heading}");
        assert_eq!(r.remarks, "Salary");
        assert_eq!(r.reference.as_deref(), Some("NOV-001"));
        assert_eq!(r.account, "39628544321");
    }

    // Case, spaces, '_' and '-' are ignored.
    let r = check_maps(
        "BENEFICIARY_NAME, account-no ,ifsc code,  AMOUNT,Transfer_Mode,EXTERNAL-REF,payee list id,REMARKS",
        "Ravi Kumar,39628544321,SBIN0000001,1500,IMPS,NOV-001,PL-7,Salary",
    );
    assert_eq!(r.account, "39628544321");
    assert_eq!(r.mode, Mode::Imps);
    assert_eq!(r.reference.as_deref(), Some("NOV-001"));
    assert_eq!(r.payee_list_id, "PL-7");
    assert_eq!(r.remarks, "Salary");

    // The columns can come in any order.
    let r = check_maps("amount,Mode,IFSC,Account Number,Name", "1500,NEFT,SBIN0000001,39628544321,Ravi Kumar");
    assert_eq!((r.name.as_str(), r.amount.paise()), ("Ravi Kumar", 1500_00));
}

#[test]
fn problems_name_the_heading_as_written() {
    let o = scan("BENEFICIARY_NAME,account-no,ifsc code,Amount (₹),Transfer_Mode\nZoë,1,x,abc,UPI\n");
    assert_eq!(
        o.problems(),
        vec![
            err(2, "BENEFICIARY_NAME", Code::BadName),
            err(2, "account-no", Code::BadAccount),
            err(2, "ifsc code", Code::BadIfsc),
            err(2, "Amount (₹)", Code::BadAmount),
            err(2, "Transfer_Mode", Code::BadMode),
        ]
    );
}

#[test]
fn unknown_columns_are_kept() {
    let o = scan(
        "Employee ID,Beneficiary Name,Department,Account No,IFSC Code,Net Pay,Payment Mode,GSTIN\nEMP1001,Diya Sharma,Sales,85307524353311,SBIN0000001,\"16,170.80\",NEFT,22ABCDE8487F1Z9\n",
    );
    assert_eq!(o.header.len(), 8);
    assert_eq!(o.header[7], "GSTIN");
    let r = &o.row(0);
    assert_eq!(r.cells.len(), 8);
    assert_eq!(r.cells[0], "EMP1001");
    assert_eq!(r.cells[2], "Sales");
    assert_eq!(r.cells[7], "22ABCDE8487F1Z9");
    let v = o.valid(0);
    assert_eq!(v.name, "Diya Sharma");
    assert_eq!(v.amount.paise(), 16170_80);
}

#[test]
fn columns_map_reports_field_positions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("p.csv");
    std::fs::write(&path, "ID,Name,Account,IFSC,Amount,Mode,Extra\n1,A,111111111,SBIN0000001,1,NEFT,x\n")
        .expect("write");
    let sc = Scanner::open(&path, false, RuleOptions::default()).expect("opens");
    let c = sc.columns();
    assert_eq!(c.of(Field::Name), Some(1));
    assert_eq!(c.of(Field::Account), Some(2));
    assert_eq!(c.of(Field::Mode), Some(5));
    assert_eq!(c.of(Field::Reference), None);
    assert_eq!(c.heading(Field::Ifsc), "IFSC");
}

#[test]
fn a_missing_required_column_is_a_file_level_error_naming_it() {
    match try_scan_bytes(b"Name,IFSC,Amount,Mode\nA,SBIN0000001,1,NEFT\n", RuleOptions::default()) {
        Err(e @ InputError::MissingColumns { .. }) => {
            let InputError::MissingColumns { missing, .. } = &e else { unreachable!() };
            assert_eq!(missing, &vec!["account number".to_string()]);
            let msg = e.to_string();
            assert!(msg.contains("account number"), "{msg}");
        }
        other => panic!("expected MissingColumns, got {:?}", other.map(|o| o.rows.len())),
    }
    match try_scan_bytes(b"Name,Account,Amount\nA,111111111,1\n", RuleOptions::default()) {
        Err(InputError::MissingColumns { missing, mode, .. }) => {
            assert_eq!(missing, vec!["IFSC".to_string(), "transfer mode".to_string()]);
            assert!(mode);
        }
        other => panic!("expected MissingColumns, got {:?}", other.map(|o| o.rows.len())),
    }
    // The mode column is required unless --mode-auto or a default mode.
    let e = try_scan_bytes(b"Name,Account,IFSC,Amount\nA,111111111,SBIN0000001,1\n", RuleOptions::default())
        .err()
        .expect("error");
    let msg = e.to_string();
    assert!(msg.contains("transfer mode") && msg.contains("--mode-auto"), "{msg}");
}

#[test]
fn a_title_above_the_header_is_passed_over_with_a_note_and_lines_stay_physical() {
    // A letterhead as HR systems export it: company, title, a blank line, then the table.
    let text = format!(
        "ACME Pvt Ltd,,,,,\nSalary for November 2026,,,,,\n\n{H}Ravi Kumar,39628544321,SBIN0000001,1500,NEFT,\nSunita Devi,50100234567890,SBIN000001,100,NEFT,\n"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("payout.csv");
    std::fs::write(&path, &text).expect("write");
    let sc = Scanner::open(&path, false, RuleOptions::default()).expect("the header is found");
    let note = sc.columns().notes.first().cloned().unwrap_or_default();
    assert!(
        note.contains("line 4") && note.contains("'ACME Pvt Ltd'") && note.contains("'Salary for November 2026'"),
        "{note}"
    );
    let o = scan(&text);
    assert_eq!(o.header[0], NAME);
    assert_eq!(o.rows.iter().map(|r| r.line).collect::<Vec<_>>(), vec![5, 6]);
    assert_eq!(o.valid(0).account, "39628544321");
    assert_eq!(o.problems(), vec![err(6, IFSC, Code::BadIfsc)]);
}

#[test]
fn a_title_line_without_delimiters_leaves_the_delimiter_to_the_header() {
    // A German Excel export with a letterhead: Windows-1252, semicolons, the title in one cell.
    let text = "Gehaltsliste M\u{e4}rz 2026\r\nBeneficiary Name;Account No;IFSC Code;Amount;Payment Mode\r\n\
                Ravi Kumar;39628544321;SBIN0000001;1.500;NEFT\r\nSunita;50100234567890;SBIN0000001;250,50;NEFT\r\n";
    let bytes: Vec<u8> = text.chars().map(|c| c as u32 as u8).collect();
    let o = scan_bytes(&bytes, RuleOptions::default());
    assert_eq!(o.encoding, Encoding::Windows1252);
    assert_eq!(o.delimiter, b';');
    assert_eq!(o.header[0], NAME);
    assert_eq!(o.rows.iter().map(|r| r.line).collect::<Vec<_>>(), vec![3, 4]);
    assert_eq!(o.problems(), vec![err(3, AMOUNT, Code::BadAmount), err(4, AMOUNT, Code::BadAmount)]);
}

#[test]
fn a_header_with_a_misspelt_heading_is_never_passed_over_for_a_line_below() {
    // The first line names fields (it is the header, with a typo): the error names it, payrun
    // does not go looking for another header among the rows.
    let e = try_scan_bytes(
        b"Beneficiary Name,Acount No,IFSC Code,Amount,Mode\nRavi,39628544321,SBIN0000001,1,NEFT\n",
        RuleOptions::default(),
    )
    .err()
    .expect("error");
    assert!(matches!(e, InputError::MissingColumns { .. }), "{e}");
    assert!(e.to_string().contains("Acount No"), "{e}");
    // A file with no header at all: the error shows its first line, whatever comes after.
    let e = try_scan_bytes(
        b"Ravi,39628544321,SBIN0000001,1,NEFT\nSunita,50100234567890,SBIN0000001,2,NEFT\n",
        RuleOptions::default(),
    )
    .err()
    .expect("error");
    assert!(e.to_string().contains("header is: Ravi | 39628544321"), "{e}");
    // Below a title, a header that lacks only the mode column is the one the error is about.
    let e = try_scan_bytes(
        b"Salary Nov 2026\nName,Account,IFSC,Amount\nRavi,39628544321,SBIN0000001,1\n",
        RuleOptions::default(),
    )
    .err()
    .expect("error");
    assert!(e.to_string().contains("header is: Name | Account | IFSC | Amount"), "{e}");
    assert!(e.to_string().contains("--mode-auto"), "{e}");
    let o = scan_opts(
        "Salary Nov 2026\nName,Account,IFSC,Amount\nRavi,39628544321,SBIN0000001,1\n",
        RuleOptions { mode_auto: true, ..RuleOptions::default() },
    );
    assert_eq!(o.rows[0].line, 3);
    // More title lines than payrun looks through: the first line is reported as the header.
    let mut text = "Title\n".repeat(7);
    text.push_str(H);
    text.push_str("Ravi Kumar,39628544321,SBIN0000001,1500,NEFT,\n");
    let e = try_scan_bytes(text.as_bytes(), RuleOptions::default()).err().expect("error");
    assert!(e.to_string().contains("header is: Title"), "{e}");
}

#[test]
fn an_excel_sep_line_sets_the_delimiter_and_is_not_the_header() {
    // Excel writes `sep=;` as the first line when asked to, and reads it to pick the delimiter.
    let o = scan(
        "sep=;\r\nBeneficiary Name;Account No;IFSC Code;Amount;Payment Mode;Reference\r\n\
         Ravi Kumar;39628544321;SBIN0000001;1,500.00;NEFT;R1\r\nSunita;1;SBIN0000001;2;NEFT;R2\r\n",
    );
    assert_eq!(o.delimiter, b';');
    assert_eq!(o.header[0], NAME);
    assert_eq!(o.valid(0).amount.paise(), 150000);
    assert_eq!(o.rows.iter().map(|r| r.line).collect::<Vec<_>>(), vec![3, 4]);
    assert_eq!(o.problems(), vec![err(4, ACCOUNT, Code::BadAccount)]);
    // A comma declared over a header that has more semicolons: the declaration wins.
    let o = scan("\"sep=,\"\nName,Account;No,IFSC,Amount,Mode\nRavi,39628544321,SBIN0000001,1,NEFT\n");
    assert_eq!(o.delimiter, b',');
    assert_eq!(o.rows[0].line, 3);
}

#[test]
fn a_decimal_comma_is_bad_amount_with_a_hint_saying_so() {
    // A German or French Excel writes 1.500,00: still BAD_AMOUNT (SPEC), but the message says why.
    let o = scan(
        "Beneficiary Name;Account No;IFSC Code;Amount;Payment Mode\nRavi;39628544321;SBIN0000001;1.500,00;NEFT\n\
         Sunita;50100234567890;SBIN0000001;1500,5;NEFT\n",
    );
    assert_eq!(o.problems(), vec![err(2, AMOUNT, Code::BadAmount), err(3, AMOUNT, Code::BadAmount)]);
    for r in &o.rows {
        assert!(r.problems[0].message.contains("decimal comma"), "{:?}", r.problems);
    }
}

#[test]
fn a_header_only_file_has_no_rows() {
    for text in [
        "Name,Account,IFSC,Amount,Mode\n",
        "Name,Account,IFSC,Amount,Mode",
        "Name,Account,IFSC,Amount,Mode\r\n\r\n,,,,\n  \n",
    ] {
        let o = scan(text);
        assert!(o.rows.is_empty(), "{text:?}");
    }
}

#[test]
fn an_empty_file_is_a_file_level_error() {
    for bytes in [&b""[..], b"\n\n", b"\r\n  \r\n", b",,,,\n", b"\xEF\xBB\xBF", b"\xFF\xFE"] {
        match try_scan_bytes(bytes, RuleOptions::default()) {
            Err(InputError::Empty { .. }) => {}
            Err(e) => panic!("{bytes:?}: expected Empty, got {e}"),
            Ok(o) => panic!("{bytes:?}: expected Empty, got {} rows", o.rows.len()),
        }
    }
}

#[test]
fn fields_are_trimmed_including_no_break_space() {
    let o = scan(
        "\u{a0}Name\u{a0},  Account ,IFSC,Amount,Mode,Reference,Remarks\n\
         \u{a0}Ravi Kumar\u{a0}, 39628544321\u{a0},\u{a0}sbin0000001 ,\u{a0}₹ 1,\u{a0}neft\t,\u{a0}NOV-1 ,  Salary\u{a0}\n",
    );
    assert_eq!(o.header[0], "Name");
    assert_eq!(o.header[1], "Account");
    let r = o.valid(0);
    assert_eq!(r.name, "Ravi Kumar");
    assert_eq!(r.account, "39628544321");
    assert_eq!(r.ifsc, "SBIN0000001");
    assert_eq!(r.amount.paise(), 100);
    assert_eq!(r.mode, Mode::Neft);
    assert_eq!(r.reference.as_deref(), Some("NOV-1"));
    assert_eq!(r.remarks, "Salary");
}

#[test]
fn fields_are_trimmed_of_direction_marks_and_other_invisible_format_characters() {
    // Cells pasted from a right-to-left document, a PDF or a web page carry LRM/RLM, embeddings,
    // isolates and word joiners around the visible text: SPEC section 2 trims them before any rule,
    // and a row of nothing else is a blank line.
    let o = scan(&format!(
        "{H}\u{200f}Ravi Kumar\u{200e},\u{200e}39628544321\u{200e},\u{202a}SBIN0000001\u{202c},\u{2066}1500.00\u{2069},\u{2060}NEFT\u{2060},\u{061c}NOV-1\u{00ad}\n\
         \u{200e},\u{200f},\u{202c},,,\n\
         Sunita Devi,\u{200e}50100234567890,HDFC0000001,100,NEFT,\n"
    ));
    assert_eq!(o.rows.len(), 2, "{:?}", o.rows);
    let r = o.valid(0);
    assert_eq!(r.name, "Ravi Kumar");
    assert_eq!(r.account, "39628544321");
    assert_eq!(r.ifsc, "SBIN0000001");
    assert_eq!(r.amount.paise(), 150000);
    assert_eq!(r.mode, Mode::Neft);
    assert_eq!(r.reference.as_deref(), Some("NOV-1"));
    assert_eq!(o.row(1).line, 4, "the line of only marks is skipped, the next keeps its physical line");
    assert_eq!(o.valid(1).account, "50100234567890");
}

#[test]
fn long_fields_many_columns_and_chunk_boundaries() {
    // A field far longer than the reader's buffers, and more columns than its first guess.
    let extra: Vec<String> = (0..100).map(|i| format!("X{i}")).collect();
    let long = "y".repeat(20_000);
    let text = format!(
        "Name,Account,IFSC,Amount,Mode,Remarks,{}\nRavi Kumar,111111111,SBIN0000001,1,NEFT,{long},{}\nZoë,111111112,SBIN0000001,1,NEFT,,{}\n",
        extra.join(","),
        extra.join(","),
        extra.join(",")
    );
    let o = scan(&text);
    assert_eq!(o.header.len(), 106);
    assert_eq!(o.valid(0).remarks, long);
    assert_eq!(o.row(0).cells[105], "X99");
    assert_eq!(o.problems(), vec![err(3, "Name", Code::BadName)]);

    // A multi-byte UTF-8 character across the first pass's 64 KiB chunks is still UTF-8.
    let mut text = String::from("Name,Account,IFSC,Amount,Mode,Remarks\n");
    let mut n = 0u64;
    while text.len() < 65_536 - 200 {
        n += 1;
        text.push_str(&format!("A,{},SBIN0000001,1,NEFT,x\n", 100_000_000 + n));
    }
    let pad = 65_536 - 1 - text.len() - "Z,111111111,SBIN0000001,1,NEFT,".len();
    text.push_str(&format!("Z,111111111,SBIN0000001,1,NEFT,{}₹\n", "p".repeat(pad)));
    assert!(!text.is_char_boundary(65_536), "the rupee sign straddles the chunk boundary");
    let o = scan(&text);
    assert_eq!(o.encoding, Encoding::Utf8);
    assert!(o.rows.last().expect("rows").cells[5].ends_with("p₹"));

    // One invalid byte after the first 64 KiB makes the whole file Windows-1252.
    let mut bytes = text.into_bytes();
    bytes.extend_from_slice(b"Jos\xE9,111111112,SBIN0000001,1,NEFT,x\n");
    let o = scan_bytes(&bytes, RuleOptions::default());
    assert_eq!(o.encoding, Encoding::Windows1252);
    let last = o.rows.last().expect("rows");
    assert_eq!(last.cells[0], "José");
    assert_eq!(last.line, n + 3);
    assert_eq!(last.problems.iter().map(|p| p.code).collect::<Vec<_>>(), vec![Code::BadName]);
}

#[test]
fn large_utf16_files_keep_their_delimiter_and_lines() {
    let mut text = String::from("Name\tAccount\tIFSC\tAmount\tMode\r\n");
    for i in 0..3000 {
        text.push_str(&format!("Ravi Kumar\t{}\tSBIN0000001\t1,500.00\tNEFT\r\n", 100_000_000 + i));
    }
    text.push_str("Zoë\t111111111\tSBIN0000001\t1\tNEFT\r\n");
    let o = scan_bytes(&utf16le(&text), RuleOptions::default());
    assert_eq!(o.delimiter, b'\t');
    assert_eq!(o.rows.len(), 3001);
    assert_eq!(o.problems(), vec![err(3002, "Name", Code::BadName)]);

    let mut be = vec![0xFE, 0xFF];
    for u in text.encode_utf16() {
        be.extend_from_slice(&u.to_be_bytes());
    }
    let o = scan_bytes(&be, RuleOptions::default());
    assert_eq!(o.encoding, Encoding::Utf16be);
    assert_eq!(o.problems(), vec![err(3002, "Name", Code::BadName)]);
}

// ---------------------------------------------------------------------------------------------
// Delimiters whatever the encoding, remarks sent in ASCII, the name hint.
// ---------------------------------------------------------------------------------------------

/// Text as Windows-1252 bytes (every character used here is in Windows-1252).
fn cp1252(text: &str) -> Vec<u8> {
    let (bytes, _, unmappable) = encoding_rs::WINDOWS_1252.encode(text);
    assert!(!unmappable, "{text} has a character Windows-1252 cannot hold");
    bytes.into_owned()
}

#[test]
fn windows_1252_with_semicolons_or_tabs_keeps_its_delimiter() {
    // A German or French Excel's "CSV": Windows-1252, semicolons (or tabs), decimal commas are not
    // used here; accented names and the euro sign are single bytes that are not UTF-8.
    for (delimiter, sep) in [(b';', ";"), (b'\t', "\t")] {
        let text = [
            "Name;Account No;IFSC;Amount;Mode;Remarks",
            "Jürgen Groß;111111111;SBIN0000001;1,500.00;NEFT;Gehalt für November",
            "Ravi Kumar;111111112;SBIN0000001;2,50,000;RTGS;Prämie € 50 – netto",
            "Zoë Dupont;111111113;SBIN0000001;750;IMPS;",
        ]
        .join("\r\n")
        .replace(';', sep);
        let o = scan_bytes(&cp1252(&text), RuleOptions::default());
        assert_eq!(o.encoding, Encoding::Windows1252);
        assert_eq!(o.delimiter, delimiter, "{sep:?}");
        assert_eq!(o.header, vec!["Name", "Account No", "IFSC", "Amount", "Mode", "Remarks"]);
        assert_eq!(o.rows.len(), 3);
        assert_eq!(o.row(0).cells[0], "Jürgen Groß");
        assert_eq!(o.valid(1).amount.paise(), 2_50_000_00, "the comma is not the delimiter");
        assert_eq!(o.valid(1).remarks, "Pramie EUR 50 - netto");
        assert_eq!(o.row(1).cells[5], "Prämie € 50 – netto", "the file's cell is kept");
        assert_eq!(
            o.problems(),
            vec![
                err(2, "Name", Code::BadName),
                warn(2, "Remarks", Code::RemarksChanged),
                warn(3, "Remarks", Code::RemarksChanged),
                err(4, "Name", Code::BadName),
            ]
        );
    }
}

#[test]
fn utf16_without_a_byte_order_mark_is_read() {
    let text = "Name,Account,IFSC,Amount,Mode\r\nRavi Kumar,111111111,SBIN0000001,100,NEFT\r\n";
    let le: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let o = scan_bytes(&le, RuleOptions::default());
    assert_eq!(o.encoding, Encoding::Utf16le);
    assert_eq!(o.valid(0).name, "Ravi Kumar");
    let be: Vec<u8> = text.encode_utf16().flat_map(u16::to_be_bytes).collect();
    let o = scan_bytes(&be, RuleOptions::default());
    assert_eq!(o.encoding, Encoding::Utf16be);
    assert_eq!(o.valid(0).account, "111111111");
}

#[test]
fn remarks_with_other_characters_are_sent_in_ascii_with_a_warning_saying_what() {
    let o = scan(
        "Name,Account,IFSC,Amount,Mode,Remarks\n\
         Ravi Kumar,111111111,SBIN0000001,100,NEFT,Gehalt für Nov – ₹ 500\n\
         Ravi Kumar,111111112,SBIN0000001,100,NEFT,Salary Nov\n\
         Ravi Kumar,111111113,SBIN0000001,0,NEFT,bonus ₹\n",
    );
    assert_eq!(
        o.problems(),
        vec![
            warn(2, "Remarks", Code::RemarksChanged),
            err(4, "Amount", Code::BadAmount),
            warn(4, "Remarks", Code::RemarksChanged)
        ]
    );
    assert_eq!(o.valid(0).remarks, "Gehalt fur Nov - Rs 500");
    assert_eq!(o.row(0).cells[5], "Gehalt für Nov – ₹ 500", "the record keeps the file's cell");
    let m = &o.row(0).problems[0].message;
    assert!(m.contains("'Gehalt für Nov – ₹ 500'") && m.contains("will send 'Gehalt fur Nov - Rs 500'"), "{m}");
    assert_eq!(o.valid(1).remarks, "Salary Nov");
    assert!(o.row(1).problems.is_empty(), "ASCII remarks: no warning");
}

#[test]
fn the_journal_stores_the_ascii_remarks_and_the_original_cells() {
    use payrun::journal::{Journal, RowState};
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("remarks.csv");
    std::fs::write(&path, "Name,Account,IFSC,Amount,Mode,Remarks\nRavi Kumar,111111111,SBIN0000001,100,NEFT,für – ₹\n")
        .expect("write");
    let journal = Journal::open(&dir.path().join("state")).expect("journal");
    let batch = store(&journal, &path);
    let rows = journal.rows_in_state(&batch.id, RowState::Ready, 0, 10).expect("rows");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].remarks, "fur - Rs", "what the engine sends");
}

#[test]
fn bad_name_hint_says_ascii_letters_and_suggests_the_bank_spelling() {
    let o = scan(&format!("{H}Jürgen Schmidt,111111111,SBIN0000001,100,NEFT,\n"));
    assert_eq!(o.problems(), vec![err(2, NAME, Code::BadName)]);
    let m = &o.row(0).problems[0].message;
    assert!(m.contains("ASCII letters"), "{m}");
    assert!(m.contains("'Jurgen Schmidt'"), "{m}");
}

// ---------------------------------------------------------------------------------------------
// Real exports, second round: DOS end-of-file mark, headings on two lines, bank-template headings.
// ---------------------------------------------------------------------------------------------

#[test]
fn a_dos_end_of_file_mark_after_the_last_line_is_not_a_row() {
    // `copy /a` and DOS-era HRMS exports end the file with Ctrl-Z (0x1A) after the last CRLF.
    let text = b"Name,Account,IFSC,Amount,Mode\r\nRavi Kumar,111111111,SBIN0000001,100,NEFT\r\n\x1a";
    let o = scan_bytes(text, RuleOptions::default());
    assert_eq!(o.rows.len(), 1, "{:?}", o.rows);
    assert!(o.problems().is_empty(), "{:?}", o.problems());
    // Inside a field it is a character like any other, and fails the field's rule.
    let o = scan_bytes(
        b"Name,Account,IFSC,Amount,Mode\nRavi Kumar,111111111,SBIN0000001,100,NEFT\x1a\n",
        RuleOptions::default(),
    );
    assert_eq!(o.problems(), vec![err(2, "Mode", Code::BadMode)]);
}

#[test]
fn a_heading_written_on_two_lines_maps_and_is_named_as_written() {
    let o = scan("Beneficiary Name,\"Account\nNo\",\"IFSC\r\nCode\",Amount,Mode\nRavi Kumar,12,SBIN0000001,100,NEFT\n");
    // The header spans lines 1 to 3; the row is on line 4.
    assert_eq!(o.problems(), vec![err(4, "Account\nNo", Code::BadAccount)]);
    let shown = o.row(0).problems[0].to_string();
    assert!(shown.starts_with("line 4, column 'Account No': BAD_ACCOUNT"), "one terminal line: {shown}");
}

#[test]
fn a_line_break_inside_a_name_is_named_as_one() {
    let o = scan("Name,Account,IFSC,Amount,Mode\n\"Ravi Kumar\n(Emp 12)\",111111111,SBIN0000001,100,NEFT\n");
    assert_eq!(o.problems(), vec![err(2, "Name", Code::BadName)]);
    let m = &o.row(0).problems[0].message;
    assert!(m.contains("a line break (U+000A)"), "{m}");
}

#[test]
fn bank_template_headings_with_a_currency_word_map() {
    let o = scan(
        "BENE NAME,BENEFICIARY A/C NO.,IFS CODE,NET AMOUNT (INR),PAYMENT MODE\n\
         Ravi Kumar,111111111,SBIN0000001,\"1,500.00\",NEFT\n",
    );
    assert!(o.problems().is_empty(), "{:?}", o.problems());
    assert_eq!(o.valid(0).amount.to_string(), "1500.00");
}

#[test]
fn account_shapes_from_spreadsheets_are_refused_with_a_hint_saying_why() {
    let o = scan(
        "Name,Account,IFSC,Amount,Mode\n\
         Ravi Kumar,'0012345678,SBIN0000001,100,NEFT\n\
         Ravi Kumar,\"=\"\"0012345678\"\"\",SBIN0000001,101,NEFT\n\
         Ravi Kumar,1234-5678-9012,SBIN0000001,102,NEFT\n\
         Ravi Kumar,１２３４５６７８９,SBIN0000001,103,NEFT\n\
         Ravi Kumar,AB12,SBIN0000001,104,NEFT\n",
    );
    assert_eq!(o.problems(), (2..=6).map(|l| err(l, "Account", Code::BadAccount)).collect::<Vec<_>>());
    let m = |i: usize| o.row(i).problems[0].message.clone();
    assert!(m(0).contains("leading apostrophe"), "{}", m(0));
    assert!(m(1).contains("spreadsheet formula"), "{}", m(1));
    assert!(m(2).contains("without '-'"), "{}", m(2));
    assert!(m(3).contains("type them as 0-9"), "{}", m(3));
    assert!(m(4).ends_with("9 to 18 digits"), "{}", m(4));
}

#[test]
fn a_pipe_separated_file_is_one_clear_error() {
    let e = try_scan_bytes(
        b"Name|Account No|IFSC|Amount|Mode\nRavi|111111111|SBIN0000001|100|NEFT\n",
        RuleOptions::default(),
    )
    .err()
    .expect("file-level error");
    let m = e.to_string();
    assert!(m.contains("looks separated by '|'") && m.contains("sep=|"), "{m}");
    // With the `sep=|` line Excel also understands, it reads.
    let o = scan("sep=|\nName|Account No|IFSC|Amount|Mode\nRavi|111111111|SBIN0000001|100|NEFT\n");
    assert!(o.problems().is_empty(), "{:?}", o.problems());
}

#[test]
fn amount_shapes_from_accounting_exports_are_refused_with_a_hint_saying_why() {
    let cells = [
        ("Rs. 1,500/-", "'/-'"),
        ("(1500)", "negative"),
        ("-1500", "negative"),
        ("1500.00 Cr", "Cr or Dr"),
        ("1500 INR", "currency goes before"),
        ("$1500", "in rupees"),
        ("१५००", "0-9"),
        ("1500 rupees", ""),
    ];
    let mut text = String::from("Name,Account,IFSC,Amount,Mode\n");
    for (i, (cell, _)) in cells.iter().enumerate() {
        text.push_str(&format!("Ravi Kumar,11111111{i},SBIN0000001,\"{cell}\",NEFT\n"));
    }
    let o = scan(&text);
    assert_eq!(o.problems(), (2..=9).map(|l| err(l, "Amount", Code::BadAmount)).collect::<Vec<_>>());
    for (i, (cell, hint)) in cells.iter().enumerate() {
        let m = &o.row(i).problems[0].message;
        assert!(m.contains(hint), "{cell}: {m}");
        assert_eq!(m.contains(" ("), !hint.is_empty(), "{cell}: {m}");
    }
}

#[test]
fn ifsc_slips_and_a_lost_rupee_sign_say_what_to_fix() {
    let o = scan(
        "Name,Account,IFSC,Amount,Mode\n\
         Ravi Kumar,111111111,SBIN 0000001,100,NEFT\n\
         Ravi Kumar,111111112,sbino000001,101,NEFT\n\
         Ravi Kumar,111111113,SBIN00001,102,NEFT\n\
         Ravi Kumar,111111114,SBIN0000001,\"? 1,500.00\",NEFT\n",
    );
    assert_eq!(
        o.problems(),
        vec![
            err(2, "IFSC", Code::BadIfsc),
            err(3, "IFSC", Code::BadIfsc),
            err(4, "IFSC", Code::BadIfsc),
            err(5, "Amount", Code::BadAmount)
        ]
    );
    let m = |i: usize| o.row(i).problems[0].message.clone();
    assert!(m(0).contains("without spaces"), "{}", m(0));
    assert!(m(1).contains("not the letter O"), "{}", m(1));
    assert!(m(2).ends_with("(e.g. SBIN0011243)"), "{}", m(2));
    assert!(m(3).contains("CSV UTF-8"), "{}", m(3));
}

/// Issue 19: a well-formed IFSC no branch has, with the letter O where a known branch has the digit
/// zero, says so before it suggests --allow-unknown-ifsc.
#[test]
fn an_unknown_ifsc_with_a_letter_o_names_the_known_branch_first() {
    let o = scan(
        "Name,Account,IFSC,Amount,Mode\n\
         Ravi Kumar,111111111,HDFC000O003,100,NEFT\n\
         Asha Rao,111111112,sbin0ooooo1,101,NEFT\n\
         Bala Iyer,111111113,ABCD0123456,102,NEFT\n",
    );
    assert_eq!(
        o.problems(),
        vec![err(2, "IFSC", Code::UnknownIfsc), err(3, "IFSC", Code::UnknownIfsc), err(4, "IFSC", Code::UnknownIfsc)]
    );
    let m = |i: usize| o.row(i).problems[0].message.clone();
    for (i, known) in [(0, "HDFC0000003"), (1, "SBIN0000001")] {
        let text = m(i);
        let hint = text.find(&format!("perhaps {known}")).unwrap_or_else(|| panic!("{known}: {text}"));
        assert!(text.contains("not the letter O"), "{text}");
        let flag = text.find("--allow-unknown-ifsc").expect("the flag is still named");
        assert!(hint < flag, "the letter-O hint first: {text}");
    }
    assert!(!m(2).contains("perhaps"), "no O, no guess: {}", m(2));
}

/// Issue 19: one NUL byte in a text file is that row's problem, named U+0000 by the field's rule;
/// the rest of the file is read. Many control bytes (a real binary file) are still refused whole.
#[test]
fn a_stray_nul_is_the_rows_problem_not_a_binary_file() {
    let mut text = String::from("Name,Account,IFSC,Amount,Mode,Remarks\n");
    for i in 0..300 {
        text.push_str(&format!("Payee Number {i},{},SBIN0000001,{}.00,NEFT,salary\n", 111_111_111 + i, 100 + i));
    }
    let mut bytes = text.into_bytes();
    // Line 3's name, line 5's amount, line 7's remarks: a NUL each, within the first KiB.
    let mut nul_after = |needle: &str| {
        let at = bytes.windows(needle.len()).position(|w| w == needle.as_bytes()).expect("needle") + needle.len();
        bytes.insert(at, 0);
    };
    nul_after("Payee Number 1");
    nul_after("103.");
    nul_after("105.00,NEFT,sal");
    assert!(bytes.len() > 10_000 && bytes[..1024].iter().filter(|b| **b == 0).count() == 3);
    let o = scan_bytes(&bytes, RuleOptions::default());
    assert_eq!(
        o.problems(),
        vec![
            err(3, "Name", Code::BadName),
            err(5, "Amount", Code::BadAmount),
            warn(7, "Remarks", Code::RemarksChanged)
        ],
    );
    for i in [1, 3, 5] {
        let m = &o.row(i).problems[0].message;
        assert!(m.contains("U+0000") && !m.contains('\0'), "named, never raw: {m}");
    }
    // What is sent has no NUL: the remarks' one is a space.
    assert_eq!(o.valid(5).remarks, "sal ary");
    assert_eq!(o.rows.len(), 300);

    // A binary file with NULs and other control bytes everywhere is still refused as a whole.
    let mut binary = b"\x7fELF\x02\x01\x01\0".to_vec();
    binary.extend((0..2048u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8));
    let refused = try_scan_bytes(&binary, RuleOptions::default()).err();
    assert!(matches!(refused, Some(InputError::NotTabular { what: "a binary file", .. })), "{refused:?}");
}
