//! The exactly-once claim of `crash.rs`, in team mode: a maker stores the file, a checker approves
//! it, and the sender's `resume` against `payrun sandbox --profile chaos` is killed with SIGKILL at
//! random moments, each time from one of two machines (state directories) at random, so the next
//! driver is as often another machine taking the batch over once the dead one's lease has run out
//! (rows it left `sending` are in doubt, resolved by inquiry). Then `resume` until it exits by
//! itself. The sandbox's ledger judges: no reference applied twice, no account paid under two
//! references, every row's status the ledger's, the SUCCESS totals equal; `audit --verify` passes
//! in the database.
//!
//! Short by default (60 rows, 4 kills); the knobs of `crash.rs`, and its seed for a replay:
//!
//! ```text
//! PAYRUN_CRASH_ROWS=2000 PAYRUN_CRASH_KILLS=30 cargo test --test suite team::crash -- --nocapture
//! PAYRUN_CRASH_SEED=1234 cargo test --test suite team::crash -- --nocapture
//! ```

use std::collections::HashSet;
use std::process::Stdio;
use std::time::Instant;

use super::{Team, awaiting, payrun_as, payrun_cmd};
use crate::support::chaos::{self, Rng, write_input};
use crate::support::work::{Work, s};
use crate::support::{Sandbox, env_num};

#[test]
fn a_sender_killed_at_random_moments_never_pays_twice() {
    let rows = env_num("PAYRUN_CRASH_ROWS", 60).max(20);
    let kills = env_num("PAYRUN_CRASH_KILLS", 4);
    let seed = chaos::seed();
    println!("team crash test: rows {rows}, kills {kills}, seed {seed} (replay with PAYRUN_CRASH_SEED={seed})");
    let mut rng = Rng(seed);
    let team = Team::new();
    let w = Work::with_config(
        "[gateway]\ntimeout = \"1500ms\"\nconnect_timeout = \"1s\"\n[run]\nfirst_poll = \"200ms\"\nmax_poll_interval = \"2s\"\nresend_grace = \"1s\"\n[journal]\nlease = \"2s\"\ndb_timeout = \"10s\"\n",
    );
    let input = w.path().join("payouts.csv");
    write_input(&input, rows, &mut rng);
    let seed_text = seed.to_string();
    let sandbox = Sandbox::start(&["--profile", "chaos", "--token-ttl", "4s", "--seed", &seed_text]);
    let url = sandbox.url();
    let stored = payrun_as(&w, Some(&team.maker.url), Some("A"), &["run", &s(&input), "--gateway", &url]);
    let batch = awaiting(&stored).unwrap_or_else(|| panic!("stored: {}", stored.stderr));
    payrun_as(&w, Some(&team.checker.url), Some("B"), &["approve", &batch, "--batch", "--reason", "payroll checked"])
        .expect_code(0, "approve");
    // Slow enough that most kills land while payouts are being sent, not only while they are followed.
    let pace = ["--rate", "60", "--burst", "10", "--concurrency", "8", "--poll-timeout", "90s"];

    let (mut killed, mut attempts) = (0, 0);
    while killed < kills {
        attempts += 1;
        assert!(attempts < kills * 5, "the resume kept finishing before it could be killed");
        let machine = ["A", "B"][rng.range(0, 1) as usize];
        let mut args = vec!["resume", batch.as_str(), "--yes"];
        args.extend(pace);
        let mut cmd = payrun_cmd(&w, Some(&team.sender.url), Some(machine), &args);
        let child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("spawn");
        match chaos::kill_at_random(child, &mut rng) {
            Some(status) => println!("  resume {attempts} on {machine}: exited by itself ({status}) before its kill"),
            None => {
                killed += 1;
                println!("  resume {attempts} on {machine}: killed, {} payouts applied", sandbox.applied().len());
                // The dead driver's lease runs out before anyone else may drive the batch.
                team.wait_for_lease_expiry(&batch);
            }
        }
    }

    // Resume until it exits by itself.
    let t = Instant::now();
    let mut last = None;
    for _ in 0..10 {
        let out = payrun_as(
            &w,
            Some(&team.sender.url),
            Some("A"),
            &["resume", &batch, "--yes", "--poll-timeout", "120s", "--rate", "60", "--burst", "10"],
        );
        let done = matches!(out.code, Some(0) | Some(2));
        last = Some(out);
        if done {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    let last = last.expect("a final resume");
    println!("final resume: {:?} after {:.1}s", last.code, t.elapsed().as_secs_f64());
    assert!(matches!(last.code, Some(0) | Some(2)), "the final resume must finish the batch: {}", last.stderr);

    payrun_as(&w, Some(&team.maker.url), Some("B"), &["audit", &batch, "--verify"])
        .expect_code(0, "the evidence log verifies in the database after every kill");
    let result = w.path().join("result.csv");
    payrun_as(&w, Some(&team.maker.url), Some("B"), &["report", &batch, "--out", &s(&result)]).expect_code(0, "report");

    let ledger = sandbox.get_json("/__sandbox/ledger");
    let by_ref = chaos::applied_by_ref(&ledger);
    println!(
        "ledger: {} applied, {} duplicate postings refused, {} requests",
        by_ref.len(),
        ledger["duplicate_attempts"],
        ledger["requests"]
    );
    let mut accounts = HashSet::new();
    for p in by_ref.values() {
        assert!(accounts.insert(p["account"].as_str().unwrap_or_default().to_string()), "paid twice: {p}");
    }
    let judged = chaos::judge_result(&result, &by_ref, &HashSet::new());
    let ledger_total = chaos::ledger_success_total(&by_ref, &format!("PR{batch}"));
    println!(
        "result: {:?}; SUCCESS ₹{} = ledger ₹{}",
        judged.statuses,
        judged.success_total.to_indian(),
        ledger_total.to_indian()
    );
    assert_eq!(judged.rows, rows, "every input row is in the result");
    assert_eq!(accounts.len() as u64, rows, "every row applied, once");
    assert_eq!(judged.success_total, ledger_total);
}
