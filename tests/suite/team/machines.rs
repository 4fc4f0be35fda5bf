//! Several processes on one team database (SPEC 8.1, issue 17), each state directory standing for a
//! machine: the guards of 3.2 see every machine's batches; two makers storing at the same moment
//! cannot both pass them; one driver per batch, anywhere (refused naming the holder, given back on
//! the way out, taken over after its holder dies, fenced when a paused holder wakes up); a checker
//! acting on a batch while a sender drives it; and a PostgreSQL restarted, or gone for longer than
//! `--db-timeout`, under a running batch.

use std::process::Child;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use super::{
    Office, Team, Who, awaiting, batch_of, by_name, nobody_twice, pay_on, payrun_cmd, resume, resume_after_a_death,
    store,
};
use crate::support::fake::{FakeGateway, FakeOptions};
use crate::support::pg::PrivateCluster;
use crate::support::work::{Out, exec, s, status_count, unwrapped};

/// A fake gateway that takes its time (no behaviours by account number): a batch of 30 takes a
/// few seconds, long enough to be caught in the middle.
fn slow_fake() -> FakeGateway {
    FakeGateway::start_with(FakeOptions { latency_ms: (40, 80), behaviours: false })
}

/// `n` plain rows, accounts `<prefix><30 + row, 4 digits>` (never ending 01-14: the fake's
/// behaviours).
fn rows(n: u64, prefix: &str) -> String {
    let mut text = String::from("Name,Account Number,IFSC,Amount,Mode\n");
    for i in 1..=n {
        text.push_str(&format!("Payee {i},{prefix}{:04},HDFC0000003,{}.00,IMPS\n", 30 + i, 1000 + i));
    }
    text
}

/// A batch of `n` rows stored by the maker and approved by the checker, ready for a sender.
fn approved_batch(o: &Office, n: u64, prefix: &str) -> String {
    let batch = store(o, &o.file(&format!("{prefix}.csv"), &rows(n, prefix)));
    o.checker(&["approve", &batch, "--batch", "--reason", "checked"]).expect_code(0, "approve");
    batch
}

/// The sender's `resume BATCH --yes` from `machine`, started.
fn start_resume(o: &Office, machine: &str, batch: &str, extra: &[&str]) -> Child {
    let mut args = vec!["resume", batch, "--yes", "--json", "--rate", "40", "--concurrency", "4"];
    args.extend_from_slice(extra);
    o.cmd_on(Who::Sender, machine, &args).spawn().expect("spawn resume")
}

/// Waits until the fake has applied `n` payouts (the child still running).
fn wait_for_payouts(o: &Office, child: &mut Child, n: usize) {
    let t = Instant::now();
    while o.fake.ledger().len() < n {
        assert!(child.try_wait().expect("try_wait").is_none(), "the resume ended before {n} payouts");
        assert!(t.elapsed() < Duration::from_secs(30), "fewer than {n} payouts in 30 s");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits for `child` (at most `limit`), its output read.
fn wait_out(child: Child, limit: Duration) -> Out {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let o = rx.recv_timeout(limit).unwrap_or_else(|_| panic!("process {pid} still running after {limit:?}"));
    let o = o.expect("wait");
    Out {
        code: o.status.code(),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: unwrapped(&String::from_utf8_lossy(&o.stderr)),
    }
}

/// Every row of a finished 30-row batch SUCCESS, each account paid once, the log verified.
fn all_paid_once(o: &Office, out: &Out, batch: &str, n: usize) {
    out.expect_code(0, "the batch is finished");
    assert_eq!(status_count(&out.json(), "SUCCESS"), n as u64, "{}", out.stderr);
    assert_eq!(nobody_twice(&o.fake), n);
    assert!(o.fake.ledger().iter().all(|p| p.times_applied == 1), "{:?}", o.fake.ledger());
    o.maker(&["audit", batch, "--verify"]).expect_code(0, "the evidence log verifies");
}

#[test]
fn a_repeat_of_another_machines_payments_is_held() {
    let o = Office::new(super::Backend::Postgres);
    let first = pay_on(&o, "A", &o.file("a.csv", &rows(3, "6100000")), &[]);
    first.expect_code(0, "machine A pays");
    let batch_a = batch_of(&first);
    // Machine B, whose state directory has never seen A's batch, pays two of the same payees.
    let text = rows(3, "6100000").replace("Payee 1,61000000031,HDFC0000003,1001.00,IMPS\n", "");
    let second = pay_on(&o, "B", &o.file("b-part.csv", &text), &[]);
    second.expect_code(2, "held");
    assert_eq!(status_count(&second.json(), "HELD"), 2, "{}", second.stderr);
    for r in o.result_of(&second) {
        assert_eq!((r["status"].as_str(), r["code"].as_str()), ("HELD", "REPEAT_PAYMENT"), "{r:?}");
        assert!(r["message"].contains(&batch_a) && r["message"].contains("a.csv"), "{r:?}");
    }
    assert!(!second.stderr.contains("holds no earlier batch"), "the database holds A's: {}", second.stderr);
    assert_eq!(nobody_twice(&o.fake), 3);
}

#[test]
fn two_makers_storing_at_the_same_moment_never_both_pass() {
    let o = Office::new(super::Backend::Postgres);
    let t = o.team();
    let other = t.person("maker", &["payrun_maker"]);
    let tries = crate::support::env_num("PAYRUN_RACE_TRIES", 20);
    let mut second_held = [0u32; 2];
    for i in 0..tries {
        // Two files paying the same 40 payees (other amounts, so other bytes), one per machine.
        let prefix = format!("62{i:03}00");
        let x = o.file(&format!("x{i}.csv"), &rows(40, &prefix));
        let y = o.file(&format!("y{i}.csv"), &rows(40, &prefix).replace(".00,IMPS", ".50,IMPS"));
        let barrier = Arc::new(Barrier::new(2));
        let runs: Vec<_> = [(&t.maker, "A", &x), (&other, "B", &y)]
            .into_iter()
            .map(|(p, machine, f)| {
                let cmd = payrun_cmd(&o.w, Some(&p.url), Some(machine), &["run", &s(f), "--gateway", &o.fake.url]);
                let barrier = Arc::clone(&barrier);
                std::thread::spawn(move || {
                    barrier.wait();
                    exec(cmd)
                })
            })
            .collect();
        let outs: Vec<Out> = runs.into_iter().map(|h| h.join().expect("thread")).collect();
        let batches: Vec<String> = outs
            .iter()
            .map(|out| awaiting(out).unwrap_or_else(|| panic!("try {i}: not stored: {}", out.stderr)))
            .collect();
        let held: Vec<usize> = batches
            .iter()
            .map(|b| {
                t.row_states(b)
                    .values()
                    .filter(|(state, code)| state == "held" && code.as_deref() == Some("REPEAT_PAYMENT"))
                    .count()
            })
            .collect();
        assert!(
            held == [0, 40] || held == [40, 0],
            "try {i}: exactly one batch holds every row of the other, never both sendable: held {held:?}"
        );
        second_held[usize::from(held[0] == 40)] += 1;
    }
    println!(
        "the batch stored second was held: machine B's {} times, machine A's {} times",
        second_held[0], second_held[1]
    );
}

#[test]
fn a_second_driver_is_refused_naming_the_holder() {
    let o = Office::with_fake(super::Backend::Postgres, slow_fake());
    let t = o.team();
    let batch = approved_batch(&o, 30, "6300000");
    let mut a = start_resume(&o, "A", &batch, &[]);
    let pid = i64::from(a.id());
    let t0 = Instant::now();
    while t.lease_holder(&batch) != Some((t.sender.role.clone(), pid)) {
        assert!(a.try_wait().expect("try_wait").is_none(), "A ended before taking the lease");
        assert!(t0.elapsed() < Duration::from_secs(20), "A never took the lease");
        std::thread::sleep(Duration::from_millis(10));
    }
    let b = o.on(Who::Sender, "B", &["resume", &batch, "--yes"]);
    b.expect_code(1, "a second driver is refused");
    assert!(
        b.stderr.contains(&format!("batch {batch} is being driven by {} on ", t.sender.role))
            && b.stderr.contains(&format!("(process {pid}) since ")),
        "{}",
        b.stderr
    );
    let a = wait_out(a, Duration::from_secs(60));
    all_paid_once(&o, &a, &batch, 30);
    // A gave its lease back on the way out: B is not refused, and finds nothing to do.
    assert_eq!(t.lease_holder(&batch), None);
    let again = o.on(Who::Sender, "B", &["resume", &batch, "--yes"]);
    again.expect_code(0, "finished");
    assert!(again.stderr.contains("is finished"), "{}", again.stderr);
}

#[test]
fn a_killed_driver_is_taken_over_by_another_machine() {
    let o = Office::with_fake(super::Backend::Postgres, slow_fake());
    let t = o.team();
    let batch = approved_batch(&o, 30, "6400000");
    let mut a = start_resume(&o, "A", &batch, &[]);
    let pid = a.id();
    wait_for_payouts(&o, &mut a, 5);
    a.kill().expect("SIGKILL");
    a.wait().expect("reap");
    assert!(o.fake.ledger().len() < 30, "killed mid-batch");
    // Its lease has not run out yet: B is told who drives the batch.
    let early = o.on(Who::Sender, "B", &["resume", &batch, "--yes"]);
    early.expect_code(1, "the dead process's lease still runs");
    assert!(early.stderr.contains(&format!("(process {pid})")), "{}", early.stderr);
    t.wait_for_lease_expiry(&batch);
    let b = resume(&o, "B", &batch, &["--rate", "40", "--concurrency", "4"]);
    all_paid_once(&o, &b, &batch, 30);
    let paid = by_name(&o.result_of(&b));
    assert_eq!(paid.len(), 30);
}

#[test]
fn an_interrupted_driver_gives_its_lease_back() {
    let o = Office::with_fake(super::Backend::Postgres, slow_fake());
    let t = o.team();
    let batch = approved_batch(&o, 30, "6700000");
    let mut a = start_resume(&o, "A", &batch, &[]);
    wait_for_payouts(&o, &mut a, 5);
    // Ctrl-C: stop sending, wait for the requests in flight, record them, exit 3.
    // SAFETY: kill(2) on a child of ours that has not been reaped.
    assert_eq!(unsafe { libc::kill(a.id() as libc::pid_t, libc::SIGINT) }, 0);
    let out = wait_out(a, Duration::from_secs(60));
    out.expect_code(3, "stopped by the operator");
    assert_eq!(t.lease_holder(&batch), None, "the lease was given back on the way out");
    // Another machine continues at once: not refused.
    let b = resume(&o, "B", &batch, &["--rate", "40", "--concurrency", "4"]);
    all_paid_once(&o, &b, &batch, 30);
}

#[test]
fn a_driver_paused_past_its_lease_sends_nothing_beside_the_one_that_took_over() {
    let o = Office::with_fake(super::Backend::Postgres, slow_fake());
    let t = o.team();
    let batch = approved_batch(&o, 30, "6800000");
    let mut a = start_resume(&o, "A", &batch, &[]);
    wait_for_payouts(&o, &mut a, 5);
    // A stalls (a laptop lid closed, a VM paused) past its lease; B takes the batch over.
    // SAFETY: kill(2) on a child of ours that has not been reaped.
    assert_eq!(unsafe { libc::kill(a.id() as libc::pid_t, libc::SIGSTOP) }, 0);
    t.wait_for_lease_expiry(&batch);
    let mut b = start_resume(&o, "B", &batch, &[]);
    let b_pid = i64::from(b.id());
    let t0 = Instant::now();
    while t.lease_holder(&batch).map(|(_, pid)| pid) != Some(b_pid) {
        if b.try_wait().expect("try_wait").is_some() {
            let out = wait_out(b, Duration::from_secs(5));
            panic!("B ended before it took the lease: exit {:?}\n{}\n{}", out.code, out.stderr, out.stdout);
        }
        assert!(t0.elapsed() < Duration::from_secs(30), "B never took the lease");
        std::thread::sleep(Duration::from_millis(10));
    }
    // A wakes up beside B: the database refuses its claims, whatever it had queued.
    assert_eq!(unsafe { libc::kill(a.id() as libc::pid_t, libc::SIGCONT) }, 0);
    let a = wait_out(a, Duration::from_secs(60));
    let b = wait_out(b, Duration::from_secs(90));
    println!("A, woken: exit {:?}; B: exit {:?}", a.code, b.code);
    assert_ne!(a.code, Some(0), "A did not finish the batch beside B: {}", a.stderr);
    assert!(o.fake.ledger().iter().all(|p| p.times_applied == 1), "{:?}", o.fake.ledger());
    nobody_twice(&o.fake);
    // And B, which holds the lease, is not stopped by what A wrote on waking.
    all_paid_once(&o, &b, &batch, 30);
}

#[test]
fn a_checkers_action_while_a_sender_drives_the_batch_breaks_neither() {
    // The default fake: an account ending 09 stays pending for as long as anyone asks.
    let o = Office::new(super::Backend::Postgres);
    let t = o.team();
    pay_on(&o, "A", &o.file("nov.csv", &rows(2, "6900000")), &[]).expect_code(0, "November");
    // December: Payee 1 again (held, a repeat), Payee 2 paid, a payee whose payout stays pending.
    let dec = "Name,Account Number,IFSC,Amount,Mode\nPayee 1,69000000031,HDFC0000003,1001.50,IMPS\nPayee 3,69000000033,HDFC0000003,1003.00,IMPS\nSlow Bank,69000000009,HDFC0000003,1009.00,IMPS\n";
    let batch = store(&o, &o.file("dec.csv", dec));
    o.checker(&["approve", &batch, "--batch", "--reason", "checked"]).expect_code(0, "approve");
    assert_eq!(t.row_states(&batch)[&2].0, "held");
    let mut a = start_resume(&o, "A", &batch, &["--poll-timeout", "6s"]);
    // While the sender follows the pending payout, the checker releases the held row.
    let t0 = Instant::now();
    while o.fake.ledger().len() < 4 {
        assert!(a.try_wait().expect("try_wait").is_none(), "the resume ended early");
        assert!(t0.elapsed() < Duration::from_secs(20), "nothing sent");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(500));
    let released = o.on(Who::Checker, "B", &["approve", &batch, "--rows", "2", "--reason", "arrears, agreed"]);
    released.expect_code(0, "the checker's release, while the sender drives");
    let a = wait_out(a, Duration::from_secs(60));
    assert_eq!(a.code, Some(2), "the sender's run ends as it would have (PENDING), not stopped:\n{}", a.stderr);
    o.maker(&["audit", &batch, "--verify"]).expect_code(0, "one chain, both writers' records in it");
    // The released row, confirmed by the sender, is paid once.
    let paid = o.on(Who::Sender, "A", &["resume", &batch, "--confirm-total", "1001.50", "--poll-timeout", "1s"]);
    paid.expect_code(2, "the slow bank still pending");
    let paid = o.fake.paid_per_account();
    assert_eq!(paid.get("69000000031"), Some(&2), "paid again on purpose, once: {paid:?}");
    o.maker(&["audit", &batch, "--verify"]).expect_code(0, "verifies");
}

/// A team on a PostgreSQL cluster of the test's own, and the slow fake.
fn private_office() -> (PrivateCluster, Office) {
    let cluster = PrivateCluster::new();
    let team = Team::on(cluster.test_db());
    (cluster, Office::with_team(team, slow_fake()))
}

#[test]
fn a_postgres_restart_in_the_middle_of_a_batch_loses_nothing() {
    let (cluster, o) = private_office();
    let batch = approved_batch(&o, 30, "6500000");
    let mut a = start_resume(&o, "A", &batch, &["--db-timeout", "30s"]);
    wait_for_payouts(&o, &mut a, 5);
    let t = Instant::now();
    cluster.restart();
    println!("PostgreSQL restarted in {:.1}s", t.elapsed().as_secs_f64());
    // The same process goes on by itself, within --db-timeout.
    let out = wait_out(a, Duration::from_secs(90));
    all_paid_once(&o, &out, &batch, 30);
    drop(o);
}

#[test]
fn a_database_gone_longer_than_db_timeout_exits_3_and_a_later_resume_finishes() {
    let (cluster, o) = private_office();
    let batch = approved_batch(&o, 30, "6600000");
    let mut a = start_resume(&o, "A", &batch, &["--db-timeout", "2s"]);
    wait_for_payouts(&o, &mut a, 5);
    cluster.stop();
    let t = Instant::now();
    let out = wait_out(a, Duration::from_secs(60));
    out.expect_code(3, "aborted, resumable");
    println!("exit 3 {:.1}s after the database went", t.elapsed().as_secs_f64());
    assert!(t.elapsed() < Duration::from_secs(15), "gave up soon after --db-timeout");
    assert!(out.stderr.contains("lost the connection to the journal database"), "{}", out.stderr);
    assert!(out.stderr.contains(&format!("payrun resume {batch} --state A")), "how to continue: {}", out.stderr);
    let sent = o.fake.ledger().len();
    assert!(sent < 30, "stopped sending: {sent} applied");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(o.fake.ledger().len(), sent, "nothing sent once it stopped");
    cluster.start();
    let b = resume_after_a_death(&o, "A", &batch, &["--rate", "40", "--concurrency", "4"]);
    all_paid_once(&o, &b, &batch, 30);
    drop(o);
}
