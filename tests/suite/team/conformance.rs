//! One meaning on both backends (SPEC 8.1, issue 17): each test is a function of the [`Backend`],
//! run once with SQLite in a state directory (`team::conformance::sqlite::NAME`) and once with the
//! team's PostgreSQL database (`team::conformance::postgres::NAME`), where the harness plays the
//! maker, the checker and the sender ([`pay`]). Each asserts the same statuses, codes, exit codes
//! and gateway ledger on both.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use super::{Backend, Office, Who, batch_of, by_name, nobody_twice, pay, resume, resume_after_a_death, store};
use crate::support::fake::{FakeGateway, FakeOptions};
use crate::support::work::{read_csv, s, status_count};

macro_rules! on_both {
    ($($check:ident),* $(,)?) => {
        mod sqlite {
            $(#[test] fn $check() { super::$check(super::Backend::Sqlite) })*
        }
        mod postgres {
            $(#[test] fn $check() { super::$check(super::Backend::Postgres) })*
        }
    };
}

on_both!(
    ambiguous_answers_settle_alike,
    a_repeat_from_another_batch_is_held_until_its_line_is_approved,
    a_changed_bank_account_is_released_only_by_naming_its_line,
    validate_given_the_journal_warns_of_a_changed_bank_account,
    a_retry_file_keeps_its_lineage,
    a_cancelled_batch_no_longer_holds_another_batchs_row,
    resolve_records_a_finding_and_refuses_a_decided_row,
    the_evidence_log_verifies_and_its_export_chains_to_the_journal,
    a_killed_run_is_finished_by_the_next_resume,
);

/// The lifecycle against the fake gateway's ambiguous answers (SPEC 3 rules 2, 3, 7): every answer
/// that proves nothing is in doubt until an inquiry settles it; FAILED only on proof; PENDING with a
/// code for a person otherwise.
fn ambiguous_answers_settle_alike(b: Backend) {
    let o = Office::new(b);
    // The fake's behaviour goes by the account's last two digits.
    let rows = [
        ("Normal", "420000000000", "SUCCESS", "SU0000"),
        ("Applied 500 TE0020", "420000000001", "SUCCESS", "SU0000"),
        ("Applied 503 TE0005", "420000000002", "SUCCESS", "SU0000"),
        ("Charges", "420000000003", "PENDING", "AMOUNT_MISMATCH"),
        ("Answer lost", "420000000004", "SUCCESS", "SU0000"),
        ("TE0020 not applied", "420000000005", "FAILED", "TE0020"),
        ("TE0020 applied", "420000000006", "SUCCESS", "SU0000"),
        ("502 first", "420000000007", "SUCCESS", "SU0000"),
        ("Stays pending", "420000000009", "PENDING", "ENQ001"),
        ("Fails at bank", "420000000014", "FAILED", "BE1001"),
    ];
    let mut text = String::from("Name,Account Number,IFSC,Amount,Mode\n");
    for (i, (name, account, _, _)) in rows.iter().enumerate() {
        text.push_str(&format!("{name},{account},HDFC0000003,{}.00,IMPS\n", 2000 + i));
    }
    let f = o.file("ambiguous.csv", &text);
    let out = pay(&o, &f, &["--poll-timeout", "4s"]);
    out.expect_code(2, "FAILED and PENDING rows need a person");
    let summary = out.json();
    assert_eq!(summary["exit"], 2, "{summary}");
    let got = by_name(&o.result_of(&out));
    for (name, _, status, code) in rows {
        let r = &got[name];
        assert_eq!((r["status"].as_str(), r["code"].as_str()), (status, code), "{name}: {r:?}\n{}", out.stderr);
    }
    assert_eq!(got["502 first"]["attempts"], "2", "not received, then sent again with the same reference");
    assert_eq!(status_count(&summary, "SUCCESS"), 6, "{summary}");
    assert_eq!(status_count(&summary, "PENDING"), 2, "{summary}");
    assert_eq!(status_count(&summary, "FAILED"), 2, "{summary}");
    // The ledger: applied once each, except the posting TE0020 refused.
    let paid = o.fake.paid_per_account();
    assert!(paid.values().all(|n| *n == 1), "{paid:?}");
    let applied: HashSet<&str> = paid.keys().map(String::as_str).collect();
    let expect: HashSet<&str> =
        rows.iter().map(|r| r.1).filter(|a| !a.ends_with("05")).map(|a| a.trim_start_matches('0')).collect();
    assert_eq!(applied, expect);
    // `status` and `report` say the same from the journal alone.
    let batch = batch_of(&out);
    let status = o.maker(&["status", &batch, "--json"]);
    status.expect_code(0, "status");
    for (st, n) in [("SUCCESS", 6), ("PENDING", 2), ("FAILED", 2)] {
        assert_eq!(status_count(&status.json(), st), n, "{}", status.stdout);
    }
    let report = by_name(&o.report(&batch));
    for (name, _, status, code) in rows {
        assert_eq!((report[name]["status"].as_str(), report[name]["code"].as_str()), (status, code), "{name}");
    }
}

/// SPEC 3.2: a payee paid by one batch is held in the next, named with the other batch, file and
/// line; `approve --rows` naming its line releases it, and only then is it paid again.
fn a_repeat_from_another_batch_is_held_until_its_line_is_approved(b: Backend) {
    let o = Office::new(b);
    let a = o.file(
        "a.csv",
        "Name,Account Number,IFSC,Amount,Mode\nAsha,500000004031,HDFC0000003,45000.00,NEFT\nRavi,500000004032,SBIN0000001,52000.00,NEFT\n",
    );
    let first = pay(&o, &a, &[]);
    first.expect_code(0, "the first file is paid");
    let batch_a = batch_of(&first);
    // Ravi again, at another branch of the same bank, leading zeros, another amount; and Mira.
    let c = o.file(
        "c.csv",
        "Name,Account Number,IFSC,Amount,Mode\nRavi,000500000004032,SBIN0000777,52500.00,NEFT\nMira,500000004033,ICIC0000001,48000.00,NEFT\n",
    );
    let second = pay(&o, &c, &[]);
    second.expect_code(2, "Ravi held");
    let batch_c = batch_of(&second);
    assert_eq!(status_count(&second.json(), "HELD"), 1, "{}", second.stderr);
    assert_eq!(status_count(&second.json(), "SUCCESS"), 1, "{}", second.stderr);
    let got = by_name(&o.result_of(&second));
    let ravi = &got["Ravi"];
    assert_eq!((ravi["status"].as_str(), ravi["code"].as_str()), ("HELD", "REPEAT_PAYMENT"), "{ravi:?}");
    assert!(ravi["message"].contains(&batch_a) && ravi["message"].contains("a.csv"), "{ravi:?}");
    assert_eq!(o.fake.paid_per_account().get("500000004032"), Some(&1), "not sent");
    // Naming its line releases it; the sender then pays it (a release is confirmed again: --yes).
    let approved = o.checker(&["approve", &batch_c, "--rows", "2", "--reason", "arrears, agreed with HR"]);
    approved.expect_code(0, "approve line 2");
    let resumed = resume(&o, "S", &batch_c, &[]);
    resumed.expect_code(0, "everything paid");
    assert_eq!(status_count(&resumed.json(), "SUCCESS"), 2, "{}", resumed.stderr);
    let paid = o.fake.paid_per_account();
    assert_eq!(paid.get("500000004032"), Some(&2), "paid again on purpose, once: {paid:?}");
    assert_eq!((paid.get("500000004031"), paid.get("500000004033")), (Some(&1), Some(&1)), "{paid:?}");
}

/// SPEC 3.3: a payee id paid before to another account is held PAYEE_CHANGED; `approve --all-held`
/// leaves it held; `approve --rows` naming its line releases it.
fn a_changed_bank_account_is_released_only_by_naming_its_line(b: Backend) {
    let o = Office::new(b);
    let head = "Name,Employee ID,Account Number,IFSC,Amount,Mode\n";
    let oct = o.file(
        "oct.csv",
        &format!(
            "{head}Asha,E1,500000005031,HDFC0000003,45000.00,NEFT\nRavi,E2,500000005032,SBIN0000001,52000.00,NEFT\n"
        ),
    );
    pay(&o, &oct, &[]).expect_code(0, "October");
    // November, 25 days later (no repeat of the same amount): Ravi's account "changed".
    o.set_clock("25d");
    let nov = o.file(
        "nov.csv",
        &format!(
            "{head}Asha,E1,500000005031,HDFC0000003,45000.00,NEFT\nRavi,E2,500000009932,ICIC0000001,52000.00,NEFT\n"
        ),
    );
    let out = pay(&o, &nov, &[]);
    out.expect_code(2, "Ravi held");
    let batch = batch_of(&out);
    let got = by_name(&o.result_of(&out));
    assert_eq!((got["Asha"]["status"].as_str(), got["Asha"]["code"].as_str()), ("SUCCESS", "SU0000"));
    let ravi = &got["Ravi"];
    assert_eq!((ravi["status"].as_str(), ravi["code"].as_str()), ("HELD", "PAYEE_CHANGED"), "{ravi:?}");
    assert!(ravi["message"].contains("XXXXXXXX5032") && !ravi["message"].contains("500000005032"), "{ravi:?}");
    let all = o.checker(&["approve", &batch, "--all-held", "--reason", "month end"]);
    all.expect_code(1, "a changed account is not released with the repeats");
    assert!(all.stderr.contains("1 changed bank account left held (PAYEE_CHANGED): line 3."), "{}", all.stderr);
    assert!(!o.fake.paid_per_account().contains_key("500000009932"));
    o.checker(&["approve", &batch, "--rows", "3", "--reason", "confirmed with Ravi by phone"])
        .expect_code(0, "approve line 3");
    let resumed = resume(&o, "S", &batch, &[]);
    resumed.expect_code(0, "Ravi paid to the new account");
    let paid = o.fake.paid_per_account();
    assert_eq!(paid.get("500000009932"), Some(&1), "{paid:?}");
    assert_eq!((paid.get("500000005031"), paid.get("500000005032")), (Some(&2), Some(&1)), "{paid:?}");
}

/// SPEC 3.3, 1: `validate` given the journal (`--state DIR`, or `--journal URL` in team mode: "every
/// command that uses the journal") warns of a changed bank account before the run, as a warning.
fn validate_given_the_journal_warns_of_a_changed_bank_account(b: Backend) {
    let o = Office::new(b);
    let head = "Name,Employee ID,Account Number,IFSC,Amount,Mode\n";
    let oct = o.file(
        "oct.csv",
        &format!(
            "{head}Asha,E1,500000006031,HDFC0000003,45000.00,NEFT\nRavi,E2,500000006032,SBIN0000001,52000.00,NEFT\n"
        ),
    );
    pay(&o, &oct, &[]).expect_code(0, "October");
    o.set_clock("25d");
    let nov = o.file(
        "nov.csv",
        &format!(
            "{head}Asha,E1,500000006031,HDFC0000003,45000.00,NEFT\nRavi,E2,500000009962,ICIC0000001,52000.00,NEFT\n"
        ),
    );
    let v = o.maker(&["validate", &s(&nov)]);
    v.expect_code(0, "a warning is not an error");
    assert!(v.stdout.contains("line 3, column 'Employee ID': warning PAYEE_CHANGED"), "{}\n{}", v.stdout, v.stderr);
    assert_eq!(v.stdout.matches("PAYEE_CHANGED").count(), 1, "{}", v.stdout);
}

/// SPEC 3.2b: `failed` → the retry file → paid and linked; `failed` again leaves the paid rows out;
/// the retry file run again (amounts corrected) is held ALREADY_RETRIED.
fn a_retry_file_keeps_its_lineage(b: Backend) {
    let o = Office::new(b);
    let mut text = String::from("Name,Employee ID,Account Number,IFSC,Amount,Mode\n");
    for i in 1..=3u64 {
        let account = format!("5200000000{:02}", 30 + i);
        if i <= 2 {
            o.fake.fail_next(&account);
        }
        text.push_str(&format!("Payee {i},E{i},{account},HDFC0000003,{}.00,NEFT\n", 30_000 + i * 1_111));
    }
    let f = o.file("december.csv", &text);
    let first = pay(&o, &f, &[]);
    first.expect_code(2, "two bounces");
    let batch = batch_of(&first);
    assert_eq!(status_count(&first.json(), "FAILED"), 2, "{}", first.stderr);
    o.maker(&["failed", &batch, "--out", "retry.csv"]).expect_code(0, "failed");
    let (header, rows) = read_csv(&o.path().join("retry.csv"));
    assert_eq!(header.last().map(String::as_str), Some("retry_of"));
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r.last().is_some_and(|c| c.starts_with(&format!("{batch}:")))), "{rows:?}");
    let retry = pay(&o, &o.path().join("retry.csv"), &[]);
    retry.expect_code(0, "the retry pays both");
    let retry_batch = batch_of(&retry);
    let again = o.maker(&["failed", &batch, "--out", "retry-2.csv"]);
    again.expect_code(0, "failed again");
    assert!(again.stderr.contains(&format!("2 rows were paid again in batch {retry_batch}")), "{}", again.stderr);
    assert_eq!(read_csv(&o.path().join("retry-2.csv")).1.len(), 0, "nothing exported twice");
    let report = o.report(&batch);
    let repaid: Vec<_> = report.iter().filter(|r| r["status"] == "FAILED").collect();
    assert_eq!(repaid.len(), 2);
    assert!(repaid.iter().all(|r| r["message"].starts_with(&format!("paid again in batch {retry_batch} line "))));
    // The kept retry file, amounts corrected: linked to rows already paid, held.
    let corrected = std::fs::read_to_string(o.path().join("retry.csv")).expect("retry").replace(".00,NEFT", ".50,NEFT");
    let g = o.file("retry-corrected.csv", &corrected);
    let held = pay(&o, &g, &[]);
    held.expect_code(2, "held");
    assert_eq!(status_count(&held.json(), "HELD"), 2, "{}", held.stderr);
    assert!(o.result_of(&held).iter().all(|r| r["code"] == "ALREADY_RETRIED"));
    assert_eq!(nobody_twice(&o.fake), 3);
}

/// SPEC 3.2: a stored batch that may still be paid holds another batch's row of its payee; once it is
/// cancelled (its rows CANCELLED, never sent), the held row's reason is gone, and the next `resume`
/// releases it and pays it.
fn a_cancelled_batch_no_longer_holds_another_batchs_row(b: Backend) {
    let o = Office::new(b);
    let x = o.file(
        "draft.csv",
        "Name,Account Number,IFSC,Amount,Mode\nAsha,530000000031,HDFC0000003,45000.00,NEFT\nRavi,530000000032,SBIN0000001,52000.00,NEFT\n",
    );
    let draft = store(&o, &x);
    // The final file pays Asha too (another amount), and Mira.
    let y = o.file(
        "final.csv",
        "Name,Account Number,IFSC,Amount,Mode\nAsha,530000000031,HDFC0000003,45500.00,NEFT\nMira,530000000033,ICIC0000001,48000.00,NEFT\n",
    );
    let out = pay(&o, &y, &[]);
    out.expect_code(2, "Asha held");
    let batch = batch_of(&out);
    let got = by_name(&o.result_of(&out));
    assert_eq!((got["Asha"]["status"].as_str(), got["Asha"]["code"].as_str()), ("HELD", "REPEAT_PAYMENT"));
    assert!(got["Asha"]["message"].contains(&draft), "{:?}", got["Asha"]);
    assert_eq!(got["Mira"]["status"], "SUCCESS");
    // The draft was the mistake: cancelled, it sends nothing and holds nothing.
    let cancelled = o.checker(&["cancel", &draft, "--reason", "replaced by final.csv"]);
    cancelled.expect_code(0, "cancel");
    let draft_rows = o.report(&draft);
    assert!(draft_rows.iter().all(|r| r["status"] == "CANCELLED"), "{draft_rows:?}");
    let resumed = resume(&o, "S", &batch, &[]);
    let got = by_name(&o.result_of(&resumed));
    assert_eq!(
        (got["Asha"]["status"].as_str(), resumed.code),
        ("SUCCESS", Some(0)),
        "released once its reason was gone, and paid:\n{}",
        resumed.stderr
    );
    // Released by `resume` (SQLite), or in team mode by the checker's cancel (only a checker may
    // release a held row there); either way the operator is told.
    let told = format!("{}{}", cancelled.stderr, resumed.stderr);
    assert!(
        told.contains("line 2: ") || told.contains(&format!("batch {batch} line 2: released")),
        "why it was released: {told}"
    );
    let paid = o.fake.paid_per_account();
    assert!(!paid.contains_key("530000000032"), "the draft's Ravi never paid: {paid:?}");
    assert_eq!(nobody_twice(&o.fake), 2);
}

/// SPEC 3 rule 9: `resolve` records a person's finding on a row payrun cannot decide (the gateway
/// reports another amount: AMOUNT_MISMATCH), with who made it, and refuses a row payrun decided.
fn resolve_records_a_finding_and_refuses_a_decided_row(b: Backend) {
    let o = Office::new(b);
    let f = o.file(
        "charges.csv",
        "Name,Account Number,IFSC,Amount,Mode\nAsha,560000000031,HDFC0000003,45000.00,NEFT\nMira,560000000003,ICIC0000001,48000.00,NEFT\n",
    );
    let out = pay(&o, &f, &["--poll-timeout", "3s"]);
    out.expect_code(2, "Mira for a person");
    let batch = batch_of(&out);
    let got = by_name(&o.result_of(&out));
    assert_eq!((got["Mira"]["status"].as_str(), got["Mira"]["code"].as_str()), ("PENDING", "AMOUNT_MISMATCH"));
    let before = o.fake.timeline().requests;
    // The bank statement shows Mira credited (the difference was charges).
    let found = o.checker(&[
        "resolve",
        &batch,
        "--row",
        "3",
        "--as",
        "paid",
        "--utr",
        "UTR-FROM-BANK-7",
        "--reason",
        "bank statement shows the credit",
    ]);
    found.expect_code(0, "resolve");
    let settled = o.checker(&["resolve", &batch, "--row", "2", "--as", "unpaid", "--reason", "x"]);
    settled.expect_code(1, "a SUCCESS row is not a person's to resolve");
    assert!(settled.stderr.contains("only a PENDING row"), "{}", settled.stderr);
    assert_eq!(o.fake.timeline().requests, before, "resolve sends nothing");
    let report = by_name(&o.report(&batch));
    let mira = &report["Mira"];
    assert_eq!(
        (mira["status"].as_str(), mira["code"].as_str(), mira["utr"].as_str()),
        ("SUCCESS", "RESOLVED", "UTR-FROM-BANK-7"),
        "{mira:?}"
    );
    assert!(mira["message"].contains(&o.name(Who::Checker)), "the finding names who made it: {mira:?}");
    let status = o.maker(&["status", &batch, "--json"]);
    assert_eq!(status.json()["needs_attention_total"], 0, "{}", status.stdout);
    assert_eq!(nobody_twice(&o.fake), 2);
}

/// SPEC 3.4, 8.1: `audit --verify` passes after a run with a row in doubt and a person's finding;
/// `audit --export` writes the log's records, whose chain runs from the batch's genesis to the
/// journal's anchor, with the operators' names in them.
fn the_evidence_log_verifies_and_its_export_chains_to_the_journal(b: Backend) {
    let o = Office::new(b);
    let f = o.file(
        "evidence.csv",
        "Name,Account Number,IFSC,Amount,Mode\nNormal,540000000000,HDFC0000003,1000.00,IMPS\nApplied 500,540000000001,HDFC0000003,1001.00,IMPS\nCharges,540000000003,HDFC0000003,1003.00,IMPS\n",
    );
    let out = pay(&o, &f, &["--poll-timeout", "3s"]);
    out.expect_code(2, "charges for a person");
    let batch = batch_of(&out);
    o.checker(&["resolve", &batch, "--row", "4", "--as", "paid", "--reason", "statement shows it"])
        .expect_code(0, "resolve");
    let verified = o.maker(&["audit", &batch, "--verify"]);
    verified.expect_code(0, "the log verifies");
    assert!(verified.stdout.contains("chain intact, the journal agrees (3 rows)"), "{}", verified.stdout);
    let export = o.path().join("evidence.jsonl");
    o.maker(&["audit", &batch, "--export", &s(&export)]).expect_code(0, "export");
    let text = std::fs::read_to_string(&export).expect("export");
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() > 10, "{text}");
    // The chain, checked here without payrun's verifier.
    let mut prev = payrun::audit::genesis(&batch);
    for (i, line) in lines.iter().enumerate() {
        let r: serde_json::Value = serde_json::from_str(line).expect("a record");
        assert_eq!(r["n"], i as u64 + 1, "numbered in order");
        assert_eq!(r["prev"].as_str(), Some(prev.as_str()), "record {} chains to the one before", i + 1);
        prev = payrun::audit::line_hash(line.as_bytes());
    }
    let anchor = match &o.team {
        None => payrun::journal::Journal::open(&o.path().join("S")).expect("journal").audit_anchor(&batch),
        Some(t) => payrun::journal::Journal::open_postgres(&t.db.journal_url(), &o.path().join("S"))
            .expect("journal")
            .audit_anchor(&batch),
    }
    .expect("anchor")
    .expect("an anchor");
    assert_eq!((anchor.n, anchor.hash.as_str()), (lines.len() as u64, prev.as_str()), "the export ends at the anchor");
    if b == Backend::Sqlite {
        let file = std::fs::read_to_string(o.path().join("S").join("audit").join(format!("{batch}.jsonl")));
        assert_eq!(file.expect("the log beside the journal"), text, "the export is the log, byte for byte");
    }
    // What is in it: the answer that proved nothing, and who did what.
    assert!(text.contains("\"http\":500"), "the 500 answer is recorded");
    let checker = o.name(Who::Checker);
    assert!(
        lines.iter().any(|l| l.contains("\"action\":\"resolve") && l.contains(&format!("\"operator\":\"{checker}\""))),
        "the finding, with who made it"
    );
    assert!(!text.contains("faketoken"), "never a token");
}

/// SPEC 3 rule 6: the process sending a batch is killed with SIGKILL mid-batch; the next `resume`
/// (in team mode, once the dead process's lease has run out) finishes it, and nothing is paid twice.
fn a_killed_run_is_finished_by_the_next_resume(b: Backend) {
    let fake = FakeGateway::start_with(FakeOptions { latency_ms: (40, 80), behaviours: false });
    let o = Office::with_fake(b, fake);
    let mut text = String::from("Name,Account Number,IFSC,Amount,Mode\n");
    for i in 1..=30u64 {
        text.push_str(&format!("Payee {i},55000000{i:04},HDFC0000003,{}.00,IMPS\n", 1000 + i));
    }
    let f = o.file("killed.csv", &text);
    let fs = s(&f);
    let pace = ["--rate", "40", "--concurrency", "4", "--poll-timeout", "20s"];
    let mut args = vec![];
    let batch = match b {
        Backend::Sqlite => {
            args.extend(["run", fs.as_str(), "--gateway", o.fake.url.as_str(), "--yes"]);
            super::batch_of_file(&f)
        }
        Backend::Postgres => {
            let batch = store(&o, &f);
            o.checker(&["approve", &batch, "--batch", "--reason", "ok"]).expect_code(0, "approve");
            args.extend(["resume", fs.as_str(), "--yes"]);
            batch
        }
    };
    args.extend(pace);
    let mut child = o.cmd_on(Who::Sender, "S", &args).spawn().expect("spawn");
    let t = Instant::now();
    while o.fake.ledger().len() < 5 {
        assert!(child.try_wait().expect("try_wait").is_none(), "finished before it could be killed");
        assert!(t.elapsed() < Duration::from_secs(30), "nothing sent");
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    let sent_before = o.fake.ledger().len();
    assert!(sent_before < 30, "killed mid-batch: {sent_before} applied");
    let out = resume_after_a_death(&o, "S", &batch, &pace[..4]);
    out.expect_code(0, "the resume finishes the batch");
    assert_eq!(status_count(&out.json(), "SUCCESS"), 30, "{}", out.stderr);
    assert_eq!(nobody_twice(&o.fake), 30);
    assert!(o.fake.ledger().iter().all(|p| p.times_applied == 1));
    o.maker(&["audit", &batch, "--verify"]).expect_code(0, "the log verifies after the kill");
}
