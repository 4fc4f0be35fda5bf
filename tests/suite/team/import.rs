//! `payrun journal import` (SPEC 8.1): a team that started on one laptop keeps its memory of what
//! was paid. The laptop's SQLite journal (state directory `L`, files paid there against the fake
//! gateway) is imported into the team's database by its owner, twice (the second imports nothing);
//! each imported batch's evidence log verifies in the database; the file already paid is refused in
//! team mode; its payees paid again from another machine are held; what the laptop's batch owes is
//! still offered by `failed`.

use std::time::{Duration, Instant};

use payrun::journal::store::Store;

use super::{Backend, Office, batch_of, nobody_twice, pay_on, payrun_as, payrun_cmd};
use crate::support::fake::{FakeGateway, FakeOptions};
use crate::support::work::{Out, read_csv, s, status_count};

/// The number of rows of `table` in the team's database.
fn count(o: &Office, table: &str) -> i64 {
    let rows = o.team().owner().query(&format!("SELECT COUNT(*) AS n FROM {table}"), &[]).expect("count");
    rows[0].get("n").expect("n")
}

const OCTOBER: &str = "Name,Account Number,IFSC,Amount,Mode\nAsha,590000000031,HDFC0000003,45000.00,NEFT\nRavi,590000000032,SBIN0000001,52000.00,NEFT\nMira,590000000033,ICIC0000001,48000.00,NEFT\n";

#[test]
fn a_laptops_journal_imported_keeps_the_teams_memory_of_what_was_paid() {
    let o = Office::new(Backend::Postgres);
    let t = o.team();
    // On the laptop, with SQLite: October paid, and a bonus that bounced at the bank.
    let laptop = |args: &[&str]| -> Out { payrun_as(&o.w, None, Some("L"), args) };
    let oct = o.file("october.csv", OCTOBER);
    let paid = laptop(&["run", &s(&oct), "--gateway", &o.fake.url, "--yes", "--json", "--poll-timeout", "20s"]);
    paid.expect_code(0, "October, on the laptop");
    let october = batch_of(&paid);
    o.fake.fail_next("590000000034");
    let bonus =
        o.file("bonus.csv", "Name,Account Number,IFSC,Amount,Mode\nDev,590000000034,UTIB0000001,9000.00,IMPS\n");
    let bounced = laptop(&["run", &s(&bonus), "--gateway", &o.fake.url, "--yes", "--json", "--poll-timeout", "20s"]);
    bounced.expect_code(2, "the bonus bounced");
    let bonus_batch = batch_of(&bounced);
    let records = std::fs::read_to_string(o.path().join("L").join("audit").join(format!("{october}.jsonl")))
        .expect("the laptop's log")
        .lines()
        .count() as i64;

    // The owner imports it, twice.
    let owner = t.db.url();
    let first = payrun_as(&o.w, Some(&owner), Some("L"), &["journal", "import"]);
    first.expect_code(0, "import");
    assert!(first.stderr.contains("2 batches, 4 rows,"), "{}", first.stderr);
    let evidence = count(&o, "evidence");
    assert!(evidence > records, "both logs: {evidence} records");
    let second = payrun_as(&o.w, Some(&owner), Some("L"), &["journal", "import"]);
    second.expect_code(0, "import again");
    assert!(
        second
            .stderr
            .contains("no batches, no rows, no records of evidence; 2 batches already there, left as they were"),
        "{}",
        second.stderr
    );
    assert_eq!((count(&o, "batches"), count(&o, "rows"), count(&o, "evidence")), (2, 4, evidence), "nothing twice");

    // The logs verify in the database, read by anyone of the team.
    for batch in [&october, &bonus_batch] {
        let v = o.checker(&["audit", batch, "--verify"]);
        v.expect_code(0, "an imported log verifies in the database");
        assert!(v.stdout.contains("chain intact, the journal agrees"), "{}", v.stdout);
        assert!(v.stdout.contains("(table evidence)"), "checked where it lives: {}", v.stdout);
    }
    let rec: i64 = t
        .owner()
        .query("SELECT COUNT(*) AS n FROM evidence WHERE batch_id = $1", &payrun::vals![&october])
        .expect("count")[0]
        .get("n")
        .expect("n");
    assert_eq!(rec, records, "the laptop's records, every one");

    // The file already paid on the laptop is refused in team mode, from any machine.
    let again = o.on(super::Who::Maker, "M", &["run", &s(&oct), "--gateway", &o.fake.url]);
    again.expect_code(1, "already paid");
    assert!(again.stderr.contains(&format!("was already paid as batch {october}")), "{}", again.stderr);
    // Its payees in another file, from another machine: held.
    let copy = o.file("october-copy.csv", &OCTOBER.replace("Asha,", "Asha R,").replace("Ravi,", "Ravi D,"));
    let held = pay_on(&o, "M", &copy, &[]);
    held.expect_code(2, "held");
    assert_eq!(status_count(&held.json(), "HELD"), 3, "{}", held.stderr);
    for r in o.result_of(&held) {
        assert_eq!(r["code"], "REPEAT_PAYMENT", "{r:?}");
        assert!(r["message"].contains(&october), "names the laptop's batch: {r:?}");
    }
    assert_eq!(nobody_twice(&o.fake), 3, "October once each; the bonus bounced");
    // What the laptop's batch owes is still owed: `failed` offers the bounced bonus.
    o.maker(&["failed", &bonus_batch, "--out", "retry.csv"]).expect_code(0, "failed");
    let (_, retry) = read_csv(&o.path().join("retry.csv"));
    assert_eq!(retry.len(), 1, "{retry:?}");
    assert!(retry[0].last().is_some_and(|c| c.starts_with(&format!("{bonus_batch}:"))), "{retry:?}");
    assert_eq!(count(&o, "batches"), 3, "the laptop's two and the held copy");
}

/// A batch killed half-way on the laptop, imported: it waits for a checker like any other, and the
/// sender's resume finishes it; the rows the laptop left `sending` are in doubt, asked about, never
/// paid twice.
#[test]
fn a_batch_killed_on_the_laptop_and_imported_is_finished_by_the_team_once() {
    let fake = FakeGateway::start_with(FakeOptions { latency_ms: (40, 80), behaviours: false });
    let o = Office::with_fake(Backend::Postgres, fake);
    let t = o.team();
    let mut text = String::from("Name,Account Number,IFSC,Amount,Mode\n");
    for i in 1..=30u64 {
        text.push_str(&format!("Payee {i},5910000{:04},HDFC0000003,{}.00,IMPS\n", 30 + i, 1000 + i));
    }
    let f = o.file("killed.csv", &text);
    let fs = s(&f);
    let args = ["run", fs.as_str(), "--gateway", o.fake.url.as_str(), "--yes", "--rate", "40", "--concurrency", "4"];
    let mut child = payrun_cmd(&o.w, None, Some("L"), &args).spawn().expect("spawn");
    let t0 = Instant::now();
    while o.fake.ledger().len() < 5 {
        assert!(child.try_wait().expect("try_wait").is_none(), "finished before it could be killed");
        assert!(t0.elapsed() < Duration::from_secs(30), "nothing sent");
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    let sent = o.fake.ledger().len();
    assert!(sent < 30, "killed half-way: {sent}");
    payrun_as(&o.w, Some(&t.db.url()), Some("L"), &["journal", "import"]).expect_code(0, "import");
    let batch = super::batch_of_file(&f);
    let early = o.sender(&["resume", &batch, "--yes"]);
    early.expect_code(2, "waits for a checker");
    assert!(early.stderr.contains("AWAITING_APPROVAL"), "{}", early.stderr);
    assert_eq!(o.fake.ledger().len(), sent, "nothing sent before the approval");
    o.checker(&["approve", &batch, "--batch", "--reason", "the laptop's run, checked"]).expect_code(0, "approve");
    let done = o.sender(&["resume", &batch, "--yes", "--json", "--rate", "40", "--poll-timeout", "20s"]);
    done.expect_code(0, "finished by the team");
    assert_eq!(status_count(&done.json(), "SUCCESS"), 30, "{}", done.stderr);
    assert_eq!(nobody_twice(&o.fake), 30);
    assert!(o.fake.ledger().iter().all(|p| p.times_applied == 1));
    o.maker(&["audit", &batch, "--verify"]).expect_code(0, "the laptop's records and the team's, one chain");
}
