//! The team journal's schema (SPEC 8.1): `journal init` run again changes nothing, and a database
//! whose schema is newer than this payrun is refused by every command, naming both versions, before
//! anything is read, stored or sent.

use payrun::journal::store::Store;

use super::{Backend, Office, Who, batch_of, pay, payrun_as};
use crate::support::work::s;

fn migrations(o: &Office) -> Vec<i64> {
    let rows = o.team().owner().query("SELECT version FROM payrun_migrations ORDER BY version", &[]).expect("q");
    rows.iter().map(|r| r.get::<i64>("version").expect("version")).collect()
}

#[test]
fn journal_init_twice_changes_nothing() {
    let o = Office::new(Backend::Postgres);
    let f = o.file("before.csv", "Name,Account Number,IFSC,Amount,Mode\nAsha,600000000031,HDFC0000003,45000.00,NEFT\n");
    pay(&o, &f, &[]).expect_code(0, "paid before the second init");
    let again = payrun_as(&o.w, Some(&o.team().db.url()), None, &["journal", "init"]);
    again.expect_code(0, "init again");
    assert!(again.stderr.contains("is up to date (schema version 1)"), "{}", again.stderr);
    assert_eq!(migrations(&o), [1]);
    // The journal and the people's grants are as they were.
    let status = o.maker(&["status", &batch_of_first(&o), "--json"]);
    status.expect_code(0, "status");
    let g = o.file("after.csv", "Name,Account Number,IFSC,Amount,Mode\nRavi,600000000032,SBIN0000001,52000.00,NEFT\n");
    pay(&o, &g, &[]).expect_code(0, "paid after it");
}

/// The only batch of the database.
fn batch_of_first(o: &Office) -> String {
    o.team().text("SELECT id FROM batches ORDER BY created_at LIMIT 1").expect("a batch")
}

#[test]
fn a_newer_schema_is_refused_by_every_command_naming_both_versions() {
    let o = Office::new(Backend::Postgres);
    let t = o.team();
    let f = o.file("paid.csv", "Name,Account Number,IFSC,Amount,Mode\nAsha,610000000031,HDFC0000003,45000.00,NEFT\n");
    let batch = batch_of(&pay(&o, &f, &[]));
    // A laptop's journal, for import.
    let laptop =
        o.file("laptop.csv", "Name,Account Number,IFSC,Amount,Mode\nRavi,610000000032,SBIN0000001,52000.00,NEFT\n");
    payrun_as(&o.w, None, Some("L"), &["run", &s(&laptop), "--gateway", &o.fake.url, "--yes"])
        .expect_code(0, "paid on a laptop");
    let g = o.file("next.csv", "Name,Account Number,IFSC,Amount,Mode\nMira,610000000033,ICIC0000001,48000.00,NEFT\n");
    let (g, requests) = (s(&g), o.fake.timeline().requests);
    // A newer payrun upgraded the database.
    t.owner()
        .execute("INSERT INTO payrun_migrations (version, description) VALUES (99, 'from a newer payrun')", &[])
        .expect("a newer migration");
    let b = batch.as_str();
    let url = o.fake.url.as_str();
    let commands: Vec<(Who, Vec<&str>)> = vec![
        (Who::Maker, vec!["run", &g, "--gateway", url]),
        (Who::Maker, vec!["run", &g, "--gateway", url, "--yes"]),
        (Who::Sender, vec!["resume", b, "--yes"]),
        (Who::Maker, vec!["status"]),
        (Who::Maker, vec!["status", b, "--json"]),
        (Who::Sender, vec!["status", b, "--refresh"]),
        (Who::Maker, vec!["report", b, "--out", "r.csv"]),
        (Who::Maker, vec!["failed", b, "--out", "f.csv"]),
        (Who::Checker, vec!["approve", b, "--batch", "--reason", "x"]),
        (Who::Checker, vec!["approve", b, "--rows", "2", "--reason", "x"]),
        (Who::Checker, vec!["cancel", b, "--reason", "x"]),
        (Who::Checker, vec!["reject", b, "--reason", "x"]),
        (Who::Checker, vec!["resolve", b, "--row", "2", "--as", "paid", "--reason", "x"]),
        (Who::Maker, vec!["audit", b, "--verify"]),
        (Who::Maker, vec!["audit", b, "--row", "2"]),
        (Who::Maker, vec!["audit", b, "--export", "e.jsonl"]),
        (Who::Maker, vec!["policy", "show"]),
    ];
    let mut refused = Vec::new();
    for (who, args) in &commands {
        refused.push((format!("{who:?}: payrun {}", args.join(" ")), o.on(*who, "S", args)));
    }
    // The owner's commands.
    let owner = t.db.url();
    for args in [vec!["journal", "init"], vec!["policy", "set", "--rule", "total>0:1"]] {
        refused.push((format!("owner: payrun {}", args.join(" ")), payrun_as(&o.w, Some(&owner), Some("S"), &args)));
    }
    refused.push((
        "owner: payrun journal import".into(),
        payrun_as(&o.w, Some(&owner), Some("L"), &["journal", "import"]),
    ));
    for (what, out) in &refused {
        assert_eq!(out.code, Some(1), "{what}: exit code\n{}", out.stderr);
        assert!(
            out.stderr.contains("has schema version 99; this payrun knows version 1: use a newer payrun"),
            "{what}: names both versions:\n{}",
            out.stderr
        );
    }
    assert_eq!(o.fake.timeline().requests, requests, "nothing sent, not even a token asked for");
    assert!(!o.path().join("r.csv").exists() && !o.path().join("e.jsonl").exists());
    let n: i64 = t.owner().query("SELECT COUNT(*) AS n FROM batches", &[]).expect("count")[0].get("n").expect("n");
    assert_eq!(n, 1, "nothing stored");
    assert_eq!(migrations(&o), [1, 99], "nothing changed by init");
}
