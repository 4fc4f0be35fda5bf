//! The controls a finance team is asked for before real money (issue 9): the payee-change hold
//! (SPEC 3.3) and the tamper-evident evidence log (SPEC 3.4).
//!
//! - a two-month payroll where one employee's bank account changed: that row is HELD
//!   `PAYEE_CHANGED`, showing the earlier account masked and when it was paid, and is released only
//!   by an approval naming its line (never by `--allow-repeat` or `approve --all-held`);
//! - the evidence log of a run verifies; a one-byte change, a removed record, two swapped records
//!   and a changed last record are each detected and named;
//! - one row's story shows every attempt and inquiry of a row that was in doubt.

use std::path::{Path, PathBuf};

use crate::support::work::{Out, Work, embedded_world, result_rows, status_count};

fn sample(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("samples").join(name)
}

const FAST: [&str; 8] = ["--sandbox-profile", "clean", "--rate", "2000", "--burst", "200", "--concurrency", "16"];

fn run(w: &Work, args: &[&str]) -> Out {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(FAST);
    w.run(&all)
}

fn payroll(month: &str, emp2_account: &str) -> String {
    format!(
        "Employee ID,Name,Account Number,IFSC,Amount,Mode,Remarks\n\
         EMP001,Asha Rao,123456789012,HDFC0000003,50000.00,NEFT,Salary {month}\n\
         EMP002,Ravi Das,{emp2_account},SBIN0000001,62000.00,NEFT,Salary {month}\n\
         EMP003,Mira Sen,323456789012,ICIC0000001,48000.00,NEFT,Salary {month}\n"
    )
}

#[test]
fn a_changed_bank_account_is_held_until_its_own_approval() {
    let w = Work::new();
    std::fs::write(w.path().join("oct.csv"), payroll("Oct", "223456789012")).expect("write");
    run(&w, &["run", "oct.csv", "--state", "S"]).expect_code(0, "October");
    // November: Ravi's "please update my salary account" email.
    std::fs::write(w.path().join("nov.csv"), payroll("Nov", "998877665544")).expect("write");
    // HR sees it before the run: validate with the journal warns (and still exits 0).
    let v = w.run(&["validate", "nov.csv", "--state", "S"]);
    v.expect_code(0, "a warning is not an error");
    assert!(v.stdout.contains("line 3, column 'Employee ID': warning PAYEE_CHANGED"), "{}", v.stdout);
    assert!(v.stdout.contains("XXXXXXXX9012"), "{}", v.stdout);
    assert_eq!(v.stdout.matches("PAYEE_CHANGED").count(), 1, "{}", v.stdout);
    // Without the journal, nothing to compare with.
    let plain = w.run(&["validate", "nov.csv"]);
    assert!(!plain.stdout.contains("PAYEE_CHANGED"), "{}", plain.stdout);
    // --allow-repeat releases the repeats of the other two (paid minutes ago), never the change.
    let out = run(&w, &["run", "nov.csv", "--state", "S", "--allow-repeat", "--json"]);
    out.expect_code(2, "one row held");
    let summary = out.json();
    assert_eq!(status_count(&summary, "SUCCESS"), 2, "{summary}");
    assert_eq!(status_count(&summary, "HELD"), 1, "{summary}");
    let batch = summary["batch"].as_str().expect("batch").to_string();
    let path = PathBuf::from(summary["result"].as_str().expect("result"));
    let rows = result_rows(&if path.is_absolute() { path } else { w.path().join(path) });
    let ravi = &rows[1];
    assert_eq!((ravi["status"].as_str(), ravi["code"].as_str()), ("HELD", "PAYEE_CHANGED"), "{ravi:?}");
    assert!(ravi["message"].contains("XXXXXXXX9012"), "the earlier account, masked: {ravi:?}");
    assert!(!ravi["message"].contains("223456789012"), "never in full: {ravi:?}");
    // The date it was paid, in the operator's time zone with the zone named (issue 19).
    let today = chrono::Utc::now().with_timezone(&chrono_tz::Asia::Kolkata).format("%Y-%m-%d IST").to_string();
    assert!(ravi["message"].contains(&today), "the date it was paid: {ravi:?}");
    assert!(out.stderr.contains("PAYEE_CHANGED"), "{}", out.stderr);
    let state = w.path().join("S");
    assert_eq!(embedded_world(&state).len(), 5, "nothing sent to the new account");

    // --all-held does not release a changed bank account.
    let all = w.run(&["approve", &batch, "--all-held", "--reason", "month end", "--state", "S"]);
    all.expect_code(1, "nothing released");
    // Naming its line, with the whole command to approve it (issue 19), as run did.
    let said = crate::support::work::unwrapped(&all.stderr);
    assert!(said.contains("1 changed bank account left held (PAYEE_CHANGED): line 3."), "{said}");
    let command = format!("payrun approve {batch} --rows 3 --reason '...' --state S");
    assert!(all.stderr.lines().any(|l| l.trim() == command), "{command:?} in:\n{}", all.stderr);
    assert!(out.stderr.lines().any(|l| l.trim() == command), "{command:?} in:\n{}", out.stderr);
    // Its own approval, naming its line, does.
    let one = w.run(&["approve", &batch, "--rows", "3", "--reason", "confirmed by phone with Ravi", "--state", "S"]);
    one.expect_code(0, "approve line 3");
    let resumed = run(&w, &["resume", &batch, "--state", "S", "--json"]);
    resumed.expect_code(0, "paid");
    assert_eq!(status_count(&resumed.json(), "SUCCESS"), 3);
    let world = embedded_world(&state);
    assert_eq!(world.values().filter(|(_, a)| a == "998877665544").count(), 1, "the new account, paid once");
    // December: the new account is now the one last paid: no hold.
    std::fs::write(w.path().join("dec.csv"), payroll("Dec", "998877665544")).expect("write");
    let dec = run(&w, &["run", "dec.csv", "--state", "S", "--allow-repeat", "--json"]);
    dec.expect_code(0, "December");
    assert_eq!(status_count(&dec.json(), "HELD"), 0);
    // The approval is in the evidence log, with the operator's name.
    let story = w.run(&["audit", &batch, "--row", "3", "--state", "S"]);
    story.expect_code(0, "story");
    assert!(story.stdout.contains("held") && story.stdout.contains("PAYEE_CHANGED"), "{}", story.stdout);
    assert!(story.stdout.contains("by test-operator"), "{}", story.stdout);
}

/// One account paid for two payees in one file: a warning, by payee id, or by name without one.
#[test]
fn one_account_for_two_payees_is_a_shared_account_warning() {
    let w = Work::new();
    std::fs::write(
        w.path().join("ids.csv"),
        "Employee ID,Name,Account Number,IFSC,Amount,Mode
         EMP001,Asha Rao,123456789012,HDFC0000003,50000.00,NEFT
         EMP002,Ravi Das,0123456789012,HDFC0000003,62000.00,NEFT
         EMP001,Asha Rao,123456789012,HDFC0000003,1500.00,NEFT
",
    )
    .expect("write");
    let v = w.run(&["validate", "ids.csv"]);
    v.expect_code(0, "warnings only");
    assert!(v.stdout.contains("line 3, column 'Account Number': warning SHARED_ACCOUNT"), "{}", v.stdout);
    assert_eq!(v.stdout.matches("SHARED_ACCOUNT").count(), 1, "the same payee twice is no warning: {}", v.stdout);
    std::fs::write(
        w.path().join("names.csv"),
        "Name,Account Number,IFSC,Amount,Mode
         Asha Rao,123456789012,HDFC0000003,50000.00,NEFT
         asha  rao,123456789012,HDFC0000003,1000.00,NEFT
         Ravi Das,123456789012,HDFC0000003,62000.00,NEFT
",
    )
    .expect("write");
    let v = w.run(&["validate", "names.csv"]);
    v.expect_code(0, "warnings only");
    assert!(v.stdout.contains("line 4, column 'Account Number': warning SHARED_ACCOUNT"), "{}", v.stdout);
    assert_eq!(v.stdout.matches("SHARED_ACCOUNT").count(), 1, "{}", v.stdout);
}

/// The evidence log of a magic run: verified as written, then tampered with four ways on copies.
#[test]
fn the_evidence_log_verifies_and_every_tampering_is_named() {
    let w = Work::new();
    let magic = sample("sandbox-magic.csv").display().to_string();
    let out = run(&w, &["run", &magic, "--state", "S", "--json", "--poll-timeout", "3s"]);
    out.expect_code(2, "magic");
    let batch = out.json()["batch"].as_str().expect("batch").to_string();
    let ok = w.run(&["audit", &batch, "--verify", "--state", "S"]);
    ok.expect_code(0, "verifies");
    assert!(ok.stdout.contains("chain intact, the journal agrees (21 rows)"), "{}", ok.stdout);
    let log = w.path().join("S").join("audit").join(format!("{batch}.jsonl"));
    let text = std::fs::read_to_string(&log).expect("log");
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() > 40, "{} records", lines.len());
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&log).expect("meta").permissions().mode() & 0o777, 0o600);

    let tampered = |name: &str, new: Vec<String>| -> Out {
        let copy = w.path().join(name);
        let status = std::process::Command::new("cp").args(["-r", "S", name]).current_dir(w.path()).status();
        assert!(status.expect("cp").success());
        std::fs::write(copy.join("audit").join(format!("{batch}.jsonl")), new.join("\n") + "\n").expect("write");
        w.run(&["audit", &batch, "--verify", "--state", name])
    };
    let own: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    // One byte: an amount in record 10.
    let mut edited = own.clone();
    let k = (5..own.len() - 2).find(|i| own[*i].contains("\"amount\":\"10")).expect("a request with an amount");
    edited[k] = edited[k].replacen("\"amount\":\"10", "\"amount\":\"90", 1);
    let o = tampered("S-byte", edited);
    o.expect_code(1, "one byte changed");
    assert!(o.stdout.contains(&format!("record {} was changed", k + 1)), "{}", o.stdout);
    // A removed record.
    let mut removed = own.clone();
    removed.remove(20);
    let o = tampered("S-removed", removed);
    o.expect_code(1, "a record removed");
    assert!(o.stdout.contains("record 21 was removed"), "{}", o.stdout);
    // Two records swapped.
    let mut swapped = own.clone();
    swapped.swap(30, 31);
    let o = tampered("S-swapped", swapped);
    o.expect_code(1, "two records swapped");
    assert!(o.stdout.contains("record 31 is out of order"), "{}", o.stdout);
    // The last record changed, and the last record removed: the journal's anchor tells.
    let mut last = own.clone();
    let n = last.len();
    last[n - 1] = last[n - 1].replacen("\"kind\"", "\"kind\" ", 1);
    let o = tampered("S-last", last);
    o.expect_code(1, "the last record changed");
    assert!(o.stdout.contains(&format!("record {n} (the last one the journal committed) was changed")), "{}", o.stdout);
    let mut cut = own.clone();
    cut.pop();
    let o = tampered("S-cut", cut);
    o.expect_code(1, "the last record removed");
    assert!(o.stdout.contains(&format!("records {n}..{n} were removed")), "{}", o.stdout);
}

/// A row that was in doubt: its story, request by request, readable without JSON.
#[test]
fn a_rows_story_shows_every_attempt_and_inquiry() {
    let w = Work::new();
    let magic = sample("sandbox-magic.csv").display().to_string();
    let out = run(&w, &["run", &magic, "--state", "S", "--json", "--poll-timeout", "3s"]);
    out.expect_code(2, "magic");
    let batch = out.json()["batch"].as_str().expect("batch").to_string();
    // Line 8: 999900000006, HTTP 500 before applying: in doubt, unknown twice, sent again.
    let story = w.run(&["audit", &batch, "--row", "8", "--state", "S"]);
    story.expect_code(0, "story");
    let text = &story.stdout;
    assert!(text.contains("Server Error First"), "{text}");
    let order = [
        "→ payout request, attempt 1",
        "← payout HTTP 500",
        "(sending → in doubt)",
        "→ status inquiry by",
        "TE0011",
        "→ payout request, attempt 2",
        "SU0000",
        "(accepted → success)",
    ];
    let mut at = 0;
    for step in order {
        let found = text[at..].find(step).unwrap_or_else(|| panic!("{step:?} after byte {at} in:\n{text}"));
        at += found + step.len();
    }
    assert!(!text.contains('{'), "no JSON in a story:\n{text}");
}
