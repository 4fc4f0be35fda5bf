//! Never pay twice through an ordinary operator step (issue 8): each scenario an outside review
//! used to pay people twice, replayed against a gateway, ending with no account paid twice.
//!
//! - a gateway that is not ours (`support::fake`): applied payouts answered with 5xx refusal
//!   bodies or TE0020, amounts with charges, numeric references read as another payout's order id,
//!   TE0005 for this row's own earlier payout;
//! - the same file run from two state directories, and a journal deleted mid-run;
//! - a file edited while its batch is open, and the first lines of a file already paid;
//! - a person's findings (`resolve`) and what `failed` then offers for paying again.
//!
//! The gateway's ledger is the judge in every test; the result file and exit code are checked too.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use crate::support::Sandbox;
use crate::support::fake::{FakeGateway, Quirks};
use crate::support::work::{Out, Work, embedded_world, read_csv, result_rows, s, sample, status_count};
use sha2::{Digest, Sha256};

/// The batch id payrun gives a file: the first 12 hex digits of its SHA-256.
/// `payrun run INPUT --gateway URL --yes --state STATE --json EXTRA...` in `w`, with the example
/// credentials.
fn pay(w: &Work, input: &Path, gateway: &str, state: &str, extra: &[&str]) -> Out {
    let input = s(input);
    let mut args = vec!["run", input.as_str(), "--gateway", gateway, "--yes", "--state", state, "--json"];
    args.extend_from_slice(extra);
    w.run_with_creds(&args)
}

fn batch_id_of(text: &str) -> String {
    hex::encode(&Sha256::digest(text.as_bytes())[..6])
}

/// The result rows keyed by the `Name` column.
fn by_name(rows: &[HashMap<String, String>]) -> HashMap<String, HashMap<String, String>> {
    rows.iter().map(|r| (r["Name"].clone(), r.clone())).collect()
}

/// The result file named in a `--json` summary.
fn result_of(w: &Work, out: &Out) -> Vec<HashMap<String, String>> {
    let path = PathBuf::from(out.json()["result"].as_str().expect("result path"));
    result_rows(&if path.is_absolute() { path } else { w.path().join(path) })
}

/// Applied payouts per account in a `payrun sandbox` ledger (not its planted foreign ones).
fn sandbox_paid(sb: &Sandbox) -> HashMap<String, u64> {
    let mut out = HashMap::new();
    for p in sb.applied() {
        *out.entry(p["account"].as_str().unwrap_or_default().to_string()).or_insert(0) +=
            p["times_applied"].as_u64().unwrap_or(0);
    }
    out
}

/// A salary-like file of `n` rows with distinct accounts `prefix` + row number; with `own_refs`,
/// a reference column of the file's own.
fn payroll(n: usize, prefix: &str, own_refs: bool) -> String {
    let ifsc = ["SBIN0000001", "HDFC0000003", "ICIC0000001", "UTIB0000001"];
    let mut text = String::from(if own_refs {
        "Name,Account Number,IFSC,Amount,Mode,Reference\n"
    } else {
        "Name,Account Number,IFSC,Amount,Mode\n"
    });
    for i in 1..=n {
        text.push_str(&format!("Payee {i},{prefix}{i:06},{},{}.50,IMPS", ifsc[i % 4], 1000 + i));
        if own_refs {
            text.push_str(&format!(",SAL-NOV-{i:04}"));
        }
        text.push('\n');
    }
    text
}

/// Kills `child` with SIGKILL once `ready` says so (or after `limit`), and reaps it.
fn kill_when(mut child: Child, limit: Duration, ready: impl Fn() -> bool) {
    let t = Instant::now();
    while t.elapsed() < limit && !ready() {
        if child.try_wait().expect("try_wait").is_some() {
            panic!("the run finished before it could be killed");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
}

// 1 ------------------------------------------------------------------------------------------------

/// Answers the sandbox never gives, from a gateway that is not payrun's: every ambiguous answer
/// stays in doubt until an inquiry settles it, nothing is FAILED without proof, and `failed` offers
/// only what was proven unpaid.
#[test]
fn a_gateway_that_is_not_ours_never_gets_a_row_twice() {
    let fake = FakeGateway::start();
    // Someone else's payout, order id 1001: a file's numeric reference "1001" is read as it.
    fake.preload("OLD-REF-1", "222200000000", "SBIN0000001", "50.00");
    // Someone else's payout under a reference this month's file reuses.
    fake.preload("LASTMONTH-11", "333300000000", "SBIN0000001", "75.00");
    // This row's own payout, made by an earlier run whose journal is not here (own reference).
    fake.preload("EARLY-9", "111100000010", "HDFC0000003", "1009.00");
    let w = Work::new();
    let rows = [
        ("Normal", "111100000000", ""),
        ("Applied 500 TE0020", "111100000001", ""),
        ("Applied 503 TE0005", "111100000002", ""),
        ("Charges", "111100000003", ""),
        ("Numeric ref read as order id", "111100000104", "1001"),
        ("TE0020 not applied", "111100000005", ""),
        ("TE0020 applied", "111100000006", ""),
        ("502 first", "111100000007", ""),
        ("Earlier run own ref", "111100000010", "EARLY-9"),
        ("Earlier run derived ref", "111100000020", ""),
        ("Reused reference", "111100000030", "LASTMONTH-11"),
    ];
    let mut text = String::from("Name,Account Number,IFSC,Amount,Mode,Reference\n");
    for (i, (name, account, reference)) in rows.iter().enumerate() {
        text.push_str(&format!("{name},{account},HDFC0000003,{}.00,IMPS,{reference}\n", 1000 + i));
    }
    // The derived reference of row 10 (sequence 10), paid by an earlier run.
    let derived = format!("PR{}{:07}", batch_id_of(&text), 10);
    fake.preload(&derived, "111100000020", "HDFC0000003", "1009.00");
    let input = w.path().join("fake-payroll.csv");
    std::fs::write(&input, &text).expect("write");
    let out = pay(&w, &input, &fake.url, "S", &["--poll-timeout", "20s", "--rate", "200"]);
    out.expect_code(2, "some rows are for a person");
    let got = by_name(&result_of(&w, &out));
    let expect = [
        ("Normal", "SUCCESS", "SU0000"),
        ("Applied 500 TE0020", "SUCCESS", "SU0000"),
        ("Applied 503 TE0005", "SUCCESS", "SU0000"),
        ("Charges", "PENDING", "AMOUNT_MISMATCH"),
        ("Numeric ref read as order id", "PENDING", "PAYEE_MISMATCH"),
        ("TE0020 not applied", "FAILED", "TE0020"),
        ("TE0020 applied", "SUCCESS", "SU0000"),
        ("502 first", "SUCCESS", "SU0000"),
        ("Earlier run own ref", "PENDING", "REF_ALREADY_USED"),
        ("Earlier run derived ref", "SUCCESS", "SU0000"),
        ("Reused reference", "FAILED", "REF_CONFLICT"),
    ];
    for (name, status, code) in expect {
        let r = &got[name];
        assert_eq!((r["status"].as_str(), r["code"].as_str()), (status, code), "{name}: {r:?}\n{}", out.stderr);
    }
    assert_eq!(got["502 first"]["attempts"], "2", "not received, then sent again with the same reference");
    assert!(got["Earlier run derived ref"]["message"].contains("already at the gateway for this payee"));
    let paid = fake.paid_per_account();
    assert!(paid.values().all(|n| *n == 1), "an account paid twice: {paid:?}");
    for (_, account, _) in rows {
        if account != "111100000005" && account != "111100000030" {
            assert_eq!(paid.get(account.trim_start_matches('0')), Some(&1), "{account} paid once");
        }
    }
    assert!(!paid.contains_key("111100000005") && !paid.contains_key("111100000030"), "{paid:?}");

    // `failed` offers the two rows proven unpaid, and nothing a person still has to check.
    let batch = out.json()["batch"].as_str().expect("batch").to_string();
    w.run(&["failed", &batch, "--state", "S", "--out", "retry.csv"]).expect_code(0, "failed");
    let (_, retry) = read_csv(&w.path().join("retry.csv"));
    let names: Vec<&str> = retry.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(names, ["TE0020 not applied", "Reused reference"]);
    assert_eq!(retry[1][5], "LASTMONTH-11-R1", "a new reference for the reused one");
    // Paying the retry file pays the reused-reference row once, under its new reference.
    let again = w.run_with_creds(&[
        "run",
        "retry.csv",
        "--gateway",
        &fake.url,
        "--yes",
        "--state",
        "S",
        "--json",
        "--poll-timeout",
        "10s",
        "--rate",
        "200",
    ]);
    again.expect_code(2, "the TE0020 row fails again");
    let paid = fake.paid_per_account();
    assert_eq!(paid.get("111100000030"), Some(&1), "{paid:?}");
    assert!(paid.values().all(|n| *n == 1), "an account paid twice: {paid:?}");
}

// 2 ------------------------------------------------------------------------------------------------

/// Run a file from one state directory, get killed, run it again from another: the rows the first
/// run paid come back TE0005 and are followed (derived references) or left for a person (the
/// file's own references), never FAILED, never offered again.
#[test]
fn the_same_file_from_two_state_directories_pays_nobody_twice() {
    let sb = Sandbox::start(&["--profile", "clean", "--latency", "20..20"]);
    for own_refs in [false, true] {
        let w = Work::new();
        let input = w.path().join("payroll.csv");
        std::fs::write(&input, payroll(40, if own_refs { "6100" } else { "6200" }, own_refs)).expect("write");
        let before = sb.applied().len();
        let first = w
            .cmd_with_creds(&["run", &s(&input), "--gateway", &sb.url(), "--yes", "--state", "A", "--rate", "20"])
            .spawn()
            .expect("spawn");
        kill_when(first, Duration::from_secs(10), || sb.applied().len() >= before + 8);
        let paid_by_a = sb.applied().len() - before;
        assert!(paid_by_a > 0 && paid_by_a < 40, "killed midway: {paid_by_a}");

        let second = pay(&w, &input, &sb.url(), "B", &["--rate", "500", "--poll-timeout", "20s"]);
        assert!(
            second.stderr.contains("holds no earlier batch"),
            "a first batch in a state directory says so:\n{}",
            second.stderr
        );
        let rows = result_of(&w, &second);
        let paid = sandbox_paid(&sb);
        for r in &rows {
            assert_eq!(paid.get(&r["Account Number"]), Some(&1), "{r:?}");
            assert_ne!(r["status"], "FAILED", "{r:?}");
        }
        let again: Vec<&HashMap<String, String>> =
            rows.iter().filter(|r| r["message"].contains("at the gateway for this payee")).collect();
        if own_refs {
            // The file's own reference, paid before: this row's earlier payment or a reused
            // reference? A person decides.
            second.expect_code(2, "own references");
            assert!(again.iter().all(|r| r["status"] == "PENDING" && r["code"] == "REF_ALREADY_USED"), "{again:?}");
            assert!(again.len() >= paid_by_a.saturating_sub(1), "{} of {paid_by_a}", again.len());
        } else {
            second.expect_code(0, "derived references");
            assert!(again.iter().all(|r| r["status"] == "SUCCESS"), "{again:?}");
            assert!(again.len() >= paid_by_a.saturating_sub(1), "{} of {paid_by_a}", again.len());
        }
        // Nothing the first run paid is offered for paying again.
        let batch = second.json()["batch"].as_str().expect("batch").to_string();
        w.run(&["failed", &batch, "--state", "B", "--out", "retry.csv"]).expect_code(0, "failed");
        assert_eq!(read_csv(&w.path().join("retry.csv")).1.len(), 0);
    }
}

// 3 ------------------------------------------------------------------------------------------------

/// The journal is the memory of what was paid: deleted under a run, the run stops (exit 3) before
/// anything more is sent, and a new journal learns from the gateway what was paid.
#[test]
fn a_journal_deleted_mid_run_stops_the_run() {
    let sb = Sandbox::start(&["--profile", "clean", "--latency", "20..20"]);
    let w = Work::new();
    let input = w.path().join("payroll.csv");
    std::fs::write(&input, payroll(60, "6300", false)).expect("write");
    let child = w
        .cmd_with_creds(&["run", &s(&input), "--gateway", &sb.url(), "--yes", "--state", "A", "--rate", "20"])
        .spawn()
        .expect("spawn");
    let t = Instant::now();
    while sb.applied().len() < 5 && t.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::fs::remove_file(w.path().join("A").join("journal.sqlite3")).expect("delete the journal");
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("deleted or replaced"), "{stderr}");
    let applied_at_stop = sb.applied().len();
    assert!(applied_at_stop < 60, "stopped before the end: {applied_at_stop}");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(sb.applied().len(), applied_at_stop, "nothing sent after the stop");
    // A new journal (the old one is gone): the gateway tells what was paid; nobody twice.
    let again = pay(&w, &input, &sb.url(), "B", &["--rate", "500"]);
    again.expect_code(0, "a new journal");
    let paid = sandbox_paid(&sb);
    assert_eq!(paid.len(), 60);
    assert!(paid.values().all(|n| *n == 1), "{paid:?}");
}

// 4 ------------------------------------------------------------------------------------------------

/// A file saved again with one amount corrected while its batch is open: every row is HELD (the
/// other batch may still pay it), nothing is sent; cancelling the first batch releases the rows it
/// never sent, and those it paid stay held.
#[test]
fn an_edited_file_with_its_batch_open_is_held_not_paid_again() {
    let sb = Sandbox::start(&["--profile", "clean", "--latency", "20..20"]);
    let w = Work::new();
    let first_file = w.path().join("payroll.csv");
    let text = payroll(30, "6400", false);
    std::fs::write(&first_file, &text).expect("write");
    let child = w
        .cmd_with_creds(&["run", &s(&first_file), "--gateway", &sb.url(), "--yes", "--state", "S", "--rate", "20"])
        .spawn()
        .expect("spawn");
    kill_when(child, Duration::from_secs(10), || sb.applied().len() >= 6);
    let first_batch = batch_id_of(&text);

    // The same file with row 3's amount corrected.
    let edited = text.replace("Payee 3,6400000003,UTIB0000001,1003.50", "Payee 3,6400000003,UTIB0000001,1103.50");
    assert_ne!(edited, text);
    let second_file = w.path().join("payroll-corrected.csv");
    std::fs::write(&second_file, &edited).expect("write");
    let held = pay(&w, &second_file, &sb.url(), "S", &["--rate", "500", "--poll-timeout", "5s"]);
    held.expect_code(2, "held");
    assert_eq!(status_count(&held.json(), "HELD"), 30, "{}", held.stderr);
    assert!(held.stderr.contains(&first_batch) && held.stderr.contains("REPEAT_PAYMENT"), "{}", held.stderr);
    let second_batch = held.json()["batch"].as_str().expect("batch").to_string();
    let applied = sb.applied().len();

    // The operator drops the first batch; its sent rows are still followed to the end.
    let cancel = w.run(&["cancel", &first_batch, "--state", "S", "--reason", "corrected file replaces it"]);
    cancel.expect_code(0, "cancel");
    w.run_with_creds(&["resume", &first_batch, "--state", "S", "--poll-timeout", "10s"]);
    let first_rows = result_rows(&w.path().join("S").join("results").join(format!("payroll-{first_batch}.csv")));
    let paid_by_first: Vec<String> =
        first_rows.iter().filter(|r| r["status"] == "SUCCESS").map(|r| r["Account Number"].clone()).collect();
    assert!(first_rows.iter().all(|r| ["SUCCESS", "CANCELLED"].contains(&r["status"].as_str())), "{first_rows:?}");
    assert_eq!(sb.applied().len(), paid_by_first.len(), "cancelled rows were never sent");
    assert_eq!(applied, paid_by_first.len(), "nothing sent after the cancel");

    // Resume the corrected batch: rows the cancelled batch never sent are released and paid; rows
    // it paid stay held (paid within 24 hours).
    let resumed =
        w.run_with_creds(&["resume", &second_batch, "--state", "S", "--json", "--yes", "--poll-timeout", "10s"]);
    resumed.expect_code(2, "some rows stay held");
    assert!(resumed.stderr.contains("released"), "{}", resumed.stderr);
    let rows = result_of(&w, &resumed);
    for r in &rows {
        let expected = if paid_by_first.contains(&r["Account Number"]) { "HELD" } else { "SUCCESS" };
        assert_eq!(r["status"], expected, "{r:?}");
    }
    let paid = sandbox_paid(&sb);
    assert_eq!(paid.len(), 30);
    assert!(paid.values().all(|n| *n == 1), "{paid:?}");
}

// 5 ------------------------------------------------------------------------------------------------

/// The first lines of a file already paid: HELD as repeats, exit 2, nothing sent; an approval of
/// two lines (recorded) pays exactly those two again.
#[test]
fn the_first_lines_of_a_paid_file_are_held() {
    let w = Work::new();
    let salary = s(&sample("salary-2026-11.csv"));
    let fast = ["--sandbox-profile", "clean", "--rate", "2000", "--burst", "200", "--concurrency", "16"];
    let mut args = vec!["run", salary.as_str(), "--state", "S"];
    args.extend(fast);
    w.run(&args).expect_code(0, "the salary file");
    let text = std::fs::read_to_string(sample("salary-2026-11.csv")).expect("read");
    let head: String = text.split_inclusive('\n').take(21).collect();
    let part = w.path().join("first-20.csv");
    std::fs::write(&part, head).expect("write");
    let part_s = s(&part);
    let mut args = vec!["run", part_s.as_str(), "--state", "S", "--json"];
    args.extend(fast);
    let out = w.run(&args);
    out.expect_code(2, "held");
    let summary = out.json();
    assert_eq!(status_count(&summary, "HELD"), 20, "{summary}");
    assert_eq!(status_count(&summary, "SUCCESS"), 0);
    let state = w.path().join("S");
    assert_eq!(embedded_world(&state).len(), 200, "nothing sent");
    let batch = summary["batch"].as_str().expect("batch").to_string();
    let rows = result_of(&w, &out);
    assert!(rows.iter().all(|r| r["code"] == "REPEAT_PAYMENT" && r["message"].contains("salary-2026-11.csv")));
    let approve = w.run(&["approve", &batch, "--rows", "2,3", "--reason", "arrears, agreed with HR", "--state", "S"]);
    approve.expect_code(0, "approve");
    assert!(approve.stderr.contains("2 rows released by test-operator"), "{}", approve.stderr);
    let mut resume = vec!["resume", batch.as_str(), "--state", "S", "--json"];
    resume.extend(fast);
    let resumed = w.run(&resume);
    resumed.expect_code(2, "18 still held");
    assert_eq!(status_count(&resumed.json(), "SUCCESS"), 2);
    assert_eq!(status_count(&resumed.json(), "HELD"), 18);
    assert_eq!(embedded_world(&state).len(), 202, "exactly the two approved rows paid again");
    let rows = result_of(&w, &resumed);
    assert_eq!((rows[0]["status"].as_str(), rows[1]["status"].as_str()), ("SUCCESS", "SUCCESS"));
    assert!(rows[2..].iter().all(|r| r["status"] == "HELD"));
}

// 6 ------------------------------------------------------------------------------------------------

/// A person's findings on the rows payrun cannot decide: recorded, sending nothing; `failed` then
/// offers the row found unpaid, and never a PENDING one.
#[test]
fn resolve_records_a_finding_and_failed_offers_only_proven_unpaid_rows() {
    let w = Work::new();
    let magic = s(&sample("sandbox-magic.csv"));
    let out = w.run(&[
        "run",
        &magic,
        "--state",
        "S",
        "--json",
        "--sandbox-profile",
        "clean",
        "--rate",
        "2000",
        "--concurrency",
        "16",
        "--poll-timeout",
        "3s",
    ]);
    out.expect_code(2, "magic");
    let batch = out.json()["batch"].as_str().expect("batch").to_string();
    let rows = result_of(&w, &out);
    let line_of = |account: &str| {
        rows.iter().position(|r| r["Account Number"] == account && r["Reference"].is_empty()).expect("row") + 2
    };
    let world_before = embedded_world(&w.path().join("S")).len();
    // Charges: the bank statement shows the payee got the money.
    let paid = w.run(&[
        "resolve",
        &batch,
        "--row",
        &line_of("999900000017").to_string(),
        "--as",
        "paid",
        "--utr",
        "UTR-FROM-BANK-1",
        "--reason",
        "bank statement shows the credit; ₹5.90 was charges",
        "--state",
        "S",
    ]);
    paid.expect_code(0, "resolve paid");
    // The mismatch: the gateway confirmed it never paid this payee.
    let unpaid = w.run(&[
        "resolve",
        &batch,
        "--row",
        &line_of("999900000014").to_string(),
        "--as",
        "unpaid",
        "--reason",
        "gateway support: not paid",
        "--state",
        "S",
    ]);
    unpaid.expect_code(0, "resolve unpaid");
    assert!(unpaid.stderr.contains("payrun failed"), "{}", unpaid.stderr);
    // A row payrun decided is not a person's to resolve.
    let settled = w.run(&[
        "resolve",
        &batch,
        "--row",
        &line_of("501002003004").to_string(),
        "--as",
        "unpaid",
        "--reason",
        "x",
        "--state",
        "S",
    ]);
    settled.expect_code(1, "a SUCCESS row");
    assert!(settled.stderr.contains("only a PENDING row"), "{}", settled.stderr);
    assert_eq!(embedded_world(&w.path().join("S")).len(), world_before, "resolve sends nothing");

    w.run(&["report", &batch, "--state", "S", "--out", "after.csv"]).expect_code(0, "report");
    let after = result_rows(&w.path().join("after.csv"));
    let row = |account: &str| after.iter().find(|r| r["Account Number"] == account).expect("row");
    let r17 = row("999900000017");
    assert_eq!(
        (r17["status"].as_str(), r17["code"].as_str(), r17["utr"].as_str()),
        ("SUCCESS", "RESOLVED", "UTR-FROM-BANK-1")
    );
    assert!(r17["message"].contains("test-operator") && r17["message"].contains("bank statement"), "{r17:?}");
    assert_eq!(row("999900000014")["status"], "FAILED");

    w.run(&["failed", &batch, "--state", "S", "--out", "retry.csv"]).expect_code(0, "failed");
    let (_, retry) = read_csv(&w.path().join("retry.csv"));
    let accounts: Vec<&str> = retry.iter().map(|r| r[1].as_str()).collect();
    assert_eq!(accounts, ["999900000001", "999900000007", "999900000008", "999900000012", "999900000014"]);
}

// 7 ------------------------------------------------------------------------------------------------

/// The whole-file "same rows as batch X" refusal does not refuse the retry file of rows that batch
/// proved unpaid.
#[test]
fn a_retry_of_rows_proven_unpaid_is_not_refused_as_the_same_rows() {
    let w = Work::new();
    let input = w.path().join("all-fail.csv");
    std::fs::write(
        &input,
        "Name,Account Number,IFSC,Amount,Mode\nBank Failure A,999900000001,SBIN0000001,100.00,IMPS\nBank Failure B,999900000001,HDFC0000003,200.00,IMPS\n",
    )
    .expect("write");
    let fast = ["--sandbox-profile", "clean", "--rate", "2000", "--state", "S"];
    let mut args = vec!["run", "all-fail.csv", "--json"];
    args.extend(fast);
    let out = w.run(&args);
    out.expect_code(2, "both fail at the bank");
    assert_eq!(status_count(&out.json(), "FAILED"), 2);
    let batch = out.json()["batch"].as_str().expect("batch").to_string();
    w.run(&["failed", &batch, "--state", "S", "--out", "retry.csv"]).expect_code(0, "failed");
    let mut args = vec!["run", "retry.csv", "--json"];
    args.extend(fast);
    let retry = w.run(&args);
    assert!(!retry.stderr.contains("same rows"), "{}", retry.stderr);
    retry.expect_code(2, "sent again (and the magic account fails again)");
    assert_eq!(status_count(&retry.json(), "FAILED"), 2);
    assert_eq!(status_count(&retry.json(), "HELD"), 0, "a FAILED row holds nothing");
}

// 8 ------------------------------------------------------------------------------------------------

/// A status answer about another payout to the same payee is not this row's: last month's salary,
/// failed at the bank, whose order id (1001) equals this month's numeric reference, is what a
/// gateway that reads ids as order ids first answers when asked by that reference. It says so
/// (`externalRef`, `payout_id`); this month's payout, accepted and applied, is not FAILED on it, and
/// `failed` does not offer it for paying again.
#[test]
fn an_answer_about_the_same_payees_other_payout_fails_nothing() {
    last_months_bank_failure_fails_nothing(true);
}

/// Pays one November salary whose reference is October's order id, on a gateway that answers an
/// inquiry by that reference about October's payout (same payee, same amount, failed at the bank),
/// saying which payout it is about (`echo`) or not; the row must not end FAILED nor be exported
/// for paying again, and is paid once.
fn last_months_bank_failure_fails_nothing(echo: bool) {
    let fake = FakeGateway::start();
    if echo {
        fake.echo_ids();
    }
    // `..08`: accepted without an order id, so payrun asks by the reference.
    let account = "555500000008";
    let old = fake.preload_bank_failed("SAL-OCT-0001", account, "HDFC0000003", "1500.00");
    let w = Work::new();
    let text =
        format!("Name,Account Number,IFSC,Amount,Mode,Reference\nAsha,{account},HDFC0000003,1500.00,IMPS,{old}\n");
    let input = w.path().join("november.csv");
    std::fs::write(&input, &text).expect("write");
    let out = pay(&w, &input, &fake.url, "S", &["--poll-timeout", "3s", "--rate", "200"]);
    out.expect_code(2, "the row's own fate is not known yet");
    let rows = result_of(&w, &out);
    assert_eq!(rows[0]["status"], "PENDING", "not FAILED on last month's payout: {:?}\n{}", rows[0], out.stderr);
    let batch = out.json()["batch"].as_str().expect("batch").to_string();
    w.run(&["failed", &batch, "--state", "S", "--out", "retry.csv"]).expect_code(0, "failed");
    let (_, retry) = read_csv(&w.path().join("retry.csv"));
    assert!(retry.is_empty(), "offered for paying again: {retry:?}");
    let this_month: Vec<_> = fake.ledger().into_iter().filter(|p| !p.preloaded).collect();
    assert_eq!(this_month.len(), 1, "paid once this month: {this_month:?}");
}

/// The other side of the same rule: a gateway that names a payout in its status answers by an
/// internal id (the document shows `payout_id: HOAD650297148300` where the posting said
/// `Order-Id: 123456`) is still answering about this row's payout. Every row settles SUCCESS, each
/// paid once; none waits for an id that never comes back.
#[test]
fn a_status_answer_naming_the_payout_by_another_id_still_settles_it() {
    let fake = FakeGateway::start();
    fake.internal_ids();
    let w = Work::new();
    let mut text = String::from("Name,Account Number,IFSC,Amount,Mode,Reference\n");
    // Five ordinary payees (`..50`), and one whose posting's answer is lost (`..04`): in doubt, it is
    // settled by an inquiry that names it by the internal id.
    for i in 1..=6 {
        let account = if i == 6 { "777700000604".to_string() } else { format!("7777000{i:03}50") };
        text.push_str(&format!("Payee {i},{account},HDFC0000003,{i}00.00,IMPS,INV-NOV-{i:04}\n"));
    }
    let input = w.path().join("ids.csv");
    std::fs::write(&input, &text).expect("write");
    let out = pay(&w, &input, &fake.url, "S", &["--poll-timeout", "10s", "--rate", "200"]);
    let rows = result_of(&w, &out);
    assert!(rows.iter().all(|r| r["status"] == "SUCCESS"), "{rows:?}\n{}", out.stderr);
    out.expect_code(0, "every row final");
    assert!(fake.ledger().iter().all(|p| p.times_applied == 1), "{:?}", fake.ledger());
}

// 9 ------------------------------------------------------------------------------------------------

/// A row the gateway accepted and still reports pending cannot be found "unpaid" by a person: it
/// may yet be paid, and FAILED would put it in the retry file. `--as paid` stays open (a bank
/// statement), and a row parked for a person can still be found unpaid.
#[test]
fn a_row_the_gateway_still_processes_cannot_be_resolved_unpaid() {
    let fake = FakeGateway::start();
    let w = Work::new();
    // `..09`: applied, and pending for as long as anyone asks.
    let text = "Name,Account Number,IFSC,Amount,Mode\nSlow Bank,666600000009,HDFC0000003,2500.00,NEFT\n";
    let input = w.path().join("slow.csv");
    std::fs::write(&input, text).expect("write");
    let out = pay(&w, &input, &fake.url, "S", &["--poll-timeout", "2s", "--rate", "200"]);
    out.expect_code(2, "pending at the end of the run");
    let rows = result_of(&w, &out);
    assert_eq!((rows[0]["status"].as_str(), rows[0]["code"].as_str()), ("PENDING", "ENQ001"), "{:?}", rows[0]);
    let batch = out.json()["batch"].as_str().expect("batch").to_string();
    let resolve = |verdict: &str| {
        w.run(&[
            "resolve",
            &batch,
            "--row",
            "2",
            "--as",
            verdict,
            "--reason",
            "no credit on the statement yet",
            "--state",
            "S",
        ])
    };
    let unpaid = resolve("unpaid");
    unpaid.expect_code(1, "refused");
    assert!(unpaid.stderr.contains("cannot be found unpaid"), "{}", unpaid.stderr);
    w.run(&["failed", &batch, "--state", "S", "--out", "retry.csv"]).expect_code(0, "failed");
    let (_, retry) = read_csv(&w.path().join("retry.csv"));
    assert!(retry.is_empty(), "a pending payout offered for paying again: {retry:?}");
    resolve("paid").expect_code(0, "a payment seen on the statement is recorded");
    assert_eq!(fake.paid_per_account().get("666600000009"), Some(&1));
}

// 10 -----------------------------------------------------------------------------------------------

/// A gateway whose index flaps: "unknown reference", then SU0000 for that reference (naming
/// nobody), then "unknown" again. The two "unknown" answers do not follow each other, so they prove
/// nothing: the row is not sent again (this gateway would not catch the resend as a duplicate and
/// would pay it twice), and after answers that never name a payee it waits for a person.
#[test]
fn a_flapping_index_is_not_proof_enough_to_send_again() {
    let fake = FakeGateway::start();
    let w = Work::new();
    // `..11`: applied, answer lost, then a flapping index.
    let text = "Name,Account Number,IFSC,Amount,Mode\nFlaky Index,777700000011,HDFC0000003,3100.00,IMPS\n";
    let input = w.path().join("flaky.csv");
    std::fs::write(&input, text).expect("write");
    let out = pay(&w, &input, &fake.url, "S", &["--poll-timeout", "20s", "--rate", "200"]);
    out.expect_code(2, "left for a person");
    let rows = result_of(&w, &out);
    let paid = fake.paid_per_account();
    assert_eq!(paid.get("777700000011"), Some(&1), "paid twice: {:?}\n{}", rows[0], out.stderr);
    assert_eq!((rows[0]["status"].as_str(), rows[0]["attempts"].as_str()), ("PENDING", "1"), "{:?}", rows[0]);
    assert_eq!(rows[0]["code"], "IN_DOUBT", "{:?}", rows[0]);
}

// 11 -----------------------------------------------------------------------------------------------

/// A gateway whose status answer says "status 1, Success" about the request, with no code, while
/// the payout's own status, nested under `data`, says PENDING; or SU0000 (the inquiry worked)
/// beside a status FAILED: not SUCCESS (the money has not moved, or not yet, and a SUCCESS row is
/// never offered again if it then fails at the bank).
#[test]
fn a_success_about_the_request_is_not_a_success_of_the_payout() {
    let fake = FakeGateway::start();
    let w = Work::new();
    // `..12`: applied, nested status PENDING for as long as anyone asks.
    // `..13`: SU0000 (the inquiry worked) beside a top-level status FAILED.
    let text = "Name,Account Number,IFSC,Amount,Mode\nNested,888800000012,HDFC0000003,4200.00,NEFT\nCode beside status,888800000013,HDFC0000003,4300.00,NEFT\n";
    let input = w.path().join("nested.csv");
    std::fs::write(&input, text).expect("write");
    let out = pay(&w, &input, &fake.url, "S", &["--poll-timeout", "2s", "--rate", "200"]);
    out.expect_code(2, "still pending at the gateway");
    let rows = result_of(&w, &out);
    for row in &rows {
        assert_eq!(row["status"], "PENDING", "{row:?}");
    }
    assert_eq!(rows.len(), 2);
    assert_eq!(fake.paid_per_account().get("888800000012"), Some(&1));
    assert_eq!(fake.paid_per_account().get("888800000013"), Some(&1));
}

// 12 -----------------------------------------------------------------------------------------------

/// A payee's new bank account approved once is not a second payment approved: a corrected file run
/// while the first is open holds the row for the bank change (`PAYEE_CHANGED`, the only code shown)
/// though it is also a repeat payment. Approving the bank change on the corrected file, after the
/// first file paid the new account, holds the row again as `REPEAT_PAYMENT` instead of paying twice.
#[test]
fn approving_a_bank_change_does_not_approve_a_repeat_payment() {
    let w = Work::new();
    let run = |file: &str, text: &str| {
        std::fs::write(w.path().join(file), text).expect("write");
        w.run(&["run", file, "--state", "S", "--json", "--sandbox-profile", "clean", "--poll-timeout", "5s"])
    };
    let head = "Name,Employee ID,Account Number,IFSC,Amount,Mode\n";
    // October: paid to the old account.
    run("october.csv", &format!("{head}Asha,EMP001,501002003004,HDFC0000003,50000.00,NEFT\n"))
        .expect_code(0, "october");
    // November, new account: held for the bank change.
    let first = run("november.csv", &format!("{head}Asha,EMP001,601002003004,HDFC0000003,50000.00,NEFT\n"));
    first.expect_code(2, "held");
    let first_batch = first.json()["batch"].as_str().expect("batch").to_string();
    // The same month saved again with the amount corrected, while the first is open: held, and the
    // only reason shown is the bank change.
    let second = run("november-fixed.csv", &format!("{head}Asha,EMP001,601002003004,HDFC0000003,52000.00,NEFT\n"));
    second.expect_code(2, "held");
    let second_batch = second.json()["batch"].as_str().expect("batch").to_string();
    let rows = result_of(&w, &second);
    assert_eq!(rows[0]["code"], "PAYEE_CHANGED", "{:?}", rows[0]);
    // The bank change is confirmed with the payee; the first file is paid.
    let approve = |batch: &str| {
        w.run(&["approve", batch, "--rows", "2", "--reason", "new account confirmed by phone", "--state", "S"])
    };
    approve(&first_batch).expect_code(0, "approve the first");
    w.run(&["resume", &first_batch, "--state", "S", "--json", "--poll-timeout", "5s"]).expect_code(0, "paid");
    // The same confirmation on the corrected file approves the bank change, not a second salary.
    let again = approve(&second_batch);
    assert!(again.stderr.contains("held again as REPEAT_PAYMENT"), "{}", again.stderr);
    let resumed = w.run(&["resume", &second_batch, "--state", "S", "--json", "--poll-timeout", "5s"]);
    resumed.expect_code(2, "still held");
    let rows = result_of(&w, &resumed);
    assert_eq!((rows[0]["status"].as_str(), rows[0]["code"].as_str()), ("HELD", "REPEAT_PAYMENT"), "{:?}", rows[0]);
    let paid_new = embedded_world(&w.path().join("S")).values().filter(|(_, a)| a == "601002003004").count();
    assert_eq!(paid_new, 1, "the new account paid once");
}

// 15 -----------------------------------------------------------------------------------------------

/// A gateway that gives two payouts the same order id, and whose status answers name nobody: an
/// answer asked by that id may be about either payout, so it settles neither. Before, the second
/// row took the fate of the first row's payout (the one the gateway looks the id up as): the paid
/// row FAILED with the other's bank failure, and `payrun failed` offered it for paying again.
#[test]
fn an_order_id_given_to_two_payouts_settles_neither() {
    let fake = FakeGateway::start();
    fake.set_quirks(Quirks { one_order_id: true, anonymous_status: true, ..Quirks::default() });
    let w = Work::new();
    let text = "Name,Account Number,IFSC,Amount,Mode\n\
                Refused By Bank,111100000014,HDFC0000003,1000.00,IMPS\n\
                Paid,111100000000,HDFC0000003,1001.00,IMPS\n";
    let input = w.path().join("same-order-id.csv");
    std::fs::write(&input, text).expect("write");
    let out = pay(&w, &input, &fake.url, "S", &["--poll-timeout", "3s", "--rate", "200"]);
    let got = by_name(&result_of(&w, &out));
    let refused = (got["Refused By Bank"]["status"].as_str(), got["Refused By Bank"]["code"].as_str());
    let paid = (got["Paid"]["status"].as_str(), got["Paid"]["code"].as_str());
    assert_ne!(refused.0, "SUCCESS", "refused by the bank, but SUCCESS: {refused:?}\n{}", out.stderr);
    assert_ne!(paid.0, "FAILED", "paid, but FAILED: {paid:?}\n{}", out.stderr);
    // A row may have been settled while the id was still its own alone (by its own payout's
    // answer, rightly); once the id is shared, no answer by it settles anything.
    assert!(matches!(refused.0, "FAILED" | "PENDING") && matches!(paid.0, "SUCCESS" | "PENDING"), "{got:?}");
    assert!(refused.0 == "PENDING" || paid.0 == "PENDING", "one of them was settled by the other's answer: {got:?}");
    let batch = out.json()["batch"].as_str().expect("batch").to_string();
    w.run(&["failed", &batch, "--state", "S", "--out", "retry.csv"]).expect_code(0, "failed");
    let (_, retry) = read_csv(&w.path().join("retry.csv"));
    assert!(retry.iter().all(|r| r[0] != "Paid"), "the paid row is offered for paying again: {retry:?}");
    assert!(fake.paid_per_account().values().all(|n| *n == 1));
}

// 16 -----------------------------------------------------------------------------------------------

/// The same as `an_answer_about_the_same_payees_other_payout_fails_nothing`, but the gateway does
/// not say which payout its answer is about (no `externalRef`): asked by this month's reference,
/// which equals last month's order id, it answers about last month's payout to the same payee, same
/// amount, failed at the bank. Before, the account alone made that answer this row's: FAILED, and
/// `payrun failed` offered this month's paid salary again.
#[test]
fn a_numeric_reference_read_as_last_months_order_id_fails_nothing() {
    last_months_bank_failure_fails_nothing(false);
}

/// SPEC 3 rule 12, extended (an adversarial review): the API document's `payout_id` carries an
/// order id or a reference, and a gateway may look it up as a reference first. October's file (its
/// own reference column, `1002`) was paid through payrun and bounced at the bank (FAILED BE1001,
/// proven unpaid, so November is not held). November's row (a derived reference) is applied and
/// numbered `1002` by the gateway, which, asked by `1002`, answers about October's payout. The
/// journal holds a row whose reference is that id, so the id is not November's alone: it asks by
/// its reference instead. Before, the paid salary was FAILED and offered for paying again.
#[test]
fn an_order_id_equal_to_a_journal_rows_reference_fails_nothing() {
    let fake = FakeGateway::start();
    fake.set_quirks(Quirks { status_by_reference_first: true, ..Quirks::default() });
    let account = "555500000200";
    let w = Work::new();
    fake.fail_next(account);
    let october = w.path().join("october.csv");
    std::fs::write(
        &october,
        format!("Name,Account Number,IFSC,Amount,Mode,Reference\nAsha,{account},HDFC0000003,1500.00,IMPS,1002\n"),
    )
    .expect("write");
    let first = pay(&w, &october, &fake.url, "S", &["--poll-timeout", "3s", "--rate", "200"]);
    let oct_rows = result_of(&w, &first);
    assert_eq!((oct_rows[0]["status"].as_str(), oct_rows[0]["code"].as_str()), ("FAILED", "BE1001"), "{oct_rows:?}");
    let november = w.path().join("november.csv");
    std::fs::write(
        &november,
        format!("Name,Account Number,IFSC,Amount,Mode\nAsha,{account},HDFC0000003,1500.00,IMPS\n"),
    )
    .expect("write");
    let out = pay(&w, &november, &fake.url, "S", &["--poll-timeout", "3s", "--rate", "200"]);
    let rows = result_of(&w, &out);
    let ledger = fake.ledger();
    assert_eq!(ledger.len(), 2, "{ledger:?}");
    assert_eq!(
        (ledger[1].order_id, ledger[1].bank_failed),
        (1002, false),
        "November's payout, numbered 1002, moved money"
    );
    assert_ne!(
        rows[0]["status"], "FAILED",
        "November's payout moved money, but FAILED on October's answer: {:?}\n{}",
        rows[0], out.stderr
    );
    let batch = out.json()["batch"].as_str().expect("batch").to_string();
    w.run(&["failed", &batch, "--state", "S", "--out", "retry.csv"]).expect_code(0, "failed");
    let (_, retry) = read_csv(&w.path().join("retry.csv"));
    assert!(retry.is_empty(), "a paid salary offered for paying again: {retry:?}");
}
