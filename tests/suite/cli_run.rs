//! End-to-end tests of the `payrun` binary: `run`, `resume`, `status`, `report`, `failed` and
//! `validate` as an operator uses them, against the embedded sandbox or a separately started
//! `payrun sandbox` child. Each test works in its own temporary directory with its own state
//! directory and a fast configuration (short client timeout and poll schedule).
//!
//! What is checked is behaviour (SPEC sections 1, 3, 5, 6 and 7): exit codes, the result file's
//! shape and contents, the refusal to pay a finished file twice, confirmation before a real
//! gateway, secrets never written anywhere, Ctrl-C and resume, `--skip-invalid`, and cells made
//! inert for spreadsheets. Nothing here asserts on timing.

use crate::support::work::{
    Out, RESULT_COLUMNS, Work, count_status, embedded_world, exec, mode_of, read_csv, result_rows, s, sample,
    status_count, unwrapped,
};
use crate::support::{EXAMPLE_CREDS, Sandbox};

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Embedded sandbox, clean profile, fast pace (concurrency given separately).
const FAST: [&str; 6] = ["--sandbox-profile", "clean", "--rate", "2000", "--burst", "200"];

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

fn contains_bytes(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

// 1 ------------------------------------------------------------------------------------------------

#[test]
fn run_pays_the_salary_file_and_refuses_to_pay_it_twice() {
    let w = Work::new();
    let input = sample("salary-2026-11.csv");
    let input_s = s(&input);
    let mut args = vec!["run", &input_s, "--state", "S", "--json", "--concurrency", "16"];
    args.extend(FAST);
    let first = w.run(&args);
    first.expect_code(0, "first run");
    assert!(first.stderr.contains("NO REAL MONEY MOVES"), "the embedded sandbox says so:\n{}", first.stderr);
    let summary = first.json();
    assert_eq!(status_count(&summary, "SUCCESS"), 200, "{summary}");
    for st in ["FAILED", "PENDING", "NOT_SENT", "INVALID"] {
        assert_eq!(status_count(&summary, st), 0, "{st}: {summary}");
    }
    assert_eq!(summary["control"]["ok"], true, "{summary}");
    assert_eq!(summary["exit"], 0);
    let batch = summary["batch"].as_str().expect("batch id").to_string();
    assert!(!batch.is_empty() && batch.bytes().all(|b| b.is_ascii_hexdigit()), "batch id {batch:?}");

    // The result file: default path, also in the JSON.
    let state = w.path().join("S");
    let result = state.join("results").join(format!("salary-2026-11-{batch}.csv"));
    assert!(result.is_file(), "{} exists", result.display());
    let json_result = PathBuf::from(summary["result"].as_str().expect("result path"));
    let json_result = if json_result.is_absolute() { json_result } else { w.path().join(json_result) };
    assert_eq!(
        json_result.canonicalize().expect("JSON result path exists"),
        result.canonicalize().expect("result"),
        "the JSON names the result file"
    );

    // Every input row, in input order, input columns first, then payrun's.
    let (in_header, in_rows) = read_csv(&input);
    let (out_header, out_rows) = read_csv(&result);
    assert_eq!(in_header[0], "Employee ID");
    let mut expected_header = in_header.clone();
    expected_header.extend(RESULT_COLUMNS.iter().map(|c| c.to_string()));
    assert_eq!(out_header, expected_header);
    assert_eq!(out_rows.len(), 200);
    assert_eq!(in_rows.len(), 200);
    let rows = result_rows(&result);
    let mut refs1 = HashSet::new();
    for (i, (inp, out)) in in_rows.iter().zip(&out_rows).enumerate() {
        assert_eq!(&out[..inp.len()], &inp[..], "row {i}: input cells first, unchanged, in input order");
        assert_eq!(out[0], format!("EMP{}", 1001 + i));
        let r = &rows[i];
        assert_eq!(r["status"], "SUCCESS", "row {i}");
        assert_eq!(r["code"], "SU0000", "row {i}");
        assert_eq!(r["attempts"], "1", "row {i}");
        assert!(!r["gateway_ref"].is_empty() && !r["utr"].is_empty(), "row {i}: {r:?}");
        for t in ["submitted_at", "completed_at"] {
            chrono::DateTime::parse_from_rfc3339(&r[t]).unwrap_or_else(|e| panic!("row {i} {t} {:?}: {e}", r[t]));
        }
        assert!(refs1.insert(r["external_ref"].clone()), "row {i}: references are unique");
    }
    // The embedded gateway applied each row once, under the row's reference.
    let world = embedded_world(&state);
    for r in &rows {
        let (times, account) = world.get(&r["external_ref"]).unwrap_or_else(|| panic!("not applied: {r:?}"));
        assert_eq!(*times, 1);
        assert_eq!(account, &r["Account No"]);
    }
    assert_eq!(world.len(), 200, "nothing else applied");

    // Owner-only files.
    assert_eq!(mode_of(&state), 0o700, "state dir");
    assert_eq!(mode_of(&state.join("journal.sqlite3")), 0o600, "journal");
    for side in ["journal.sqlite3-wal", "journal.sqlite3-shm"] {
        if state.join(side).exists() {
            assert_eq!(mode_of(&state.join(side)), 0o600, "{side}");
        }
    }
    assert_eq!(mode_of(&result), 0o600, "result file");
    assert_eq!(mode_of(&state.join("results")), 0o700, "results dir");

    // The same file again: refused, naming the batch, the payment and the result; nothing sent.
    let mut again = vec!["run", &input_s, "--state", "S", "--concurrency", "16"];
    again.extend(FAST);
    let second = w.run(&again);
    second.expect_code(1, "same file again");
    assert!(second.stderr.contains(&batch), "names the batch:\n{}", second.stderr);
    assert!(second.stderr.contains("already paid"), "says it was paid:\n{}", second.stderr);
    assert!(second.stderr.contains(&format!("salary-2026-11-{batch}.csv")), "names the result:\n{}", second.stderr);
    assert!(second.stderr.contains("--new-batch"), "points at --new-batch:\n{}", second.stderr);
    assert_eq!(embedded_world(&state).len(), 200, "nothing sent by the refused run");

    // --new-batch the same day: a new batch, but every row repeats a payment made within 24 hours
    // (SPEC 3.2 b): all HELD, nothing sent, exit 2.
    let mut new_args = args.clone();
    new_args.push("--new-batch");
    let held = w.run(&new_args);
    held.expect_code(2, "--new-batch within a day");
    let summary_held = held.json();
    assert_eq!(status_count(&summary_held, "HELD"), 200, "{summary_held}");
    assert!(held.stderr.contains("REPEAT_PAYMENT") && held.stderr.contains(&batch), "{}", held.stderr);
    assert_eq!(embedded_world(&state).len(), 200, "nothing sent while held");
    let held_batch = summary_held["batch"].as_str().expect("batch").to_string();
    // A held batch blocks another --new-batch until it is finished: cancel it.
    w.run(&new_args).expect_code(1, "--new-batch while the held batch is open");
    let cancel = w.run(&["cancel", &held_batch, "--reason", "paid already", "--state", "S"]);
    cancel.expect_code(0, "cancel");
    assert!(unwrapped(&cancel.stderr).contains("200 rows not sent will never be sent"), "{}", cancel.stderr);

    // --new-batch --allow-repeat: paid again on purpose, with new references, recorded.
    new_args.push("--allow-repeat");
    let third = w.run(&new_args);
    third.expect_code(0, "--new-batch --allow-repeat");
    assert!(third.stderr.contains("--allow-repeat: 200 repeat payments released"), "{}", third.stderr);
    let summary3 = third.json();
    let batch3 = summary3["batch"].as_str().expect("batch").to_string();
    assert_ne!(batch3, batch, "a different batch id");
    assert_eq!(status_count(&summary3, "SUCCESS"), 200);
    let result3 = state.join("results").join(format!("salary-2026-11-{batch3}.csv"));
    let rows3 = result_rows(&result3);
    assert_eq!(rows3.len(), 200);
    for r in &rows3 {
        assert!(!refs1.contains(&r["external_ref"]), "new references: {} reused", r["external_ref"]);
    }
    assert_eq!(rows3.iter().map(|r| &r["external_ref"]).collect::<HashSet<_>>().len(), 200);
    let world = embedded_world(&state);
    assert_eq!(world.len(), 400, "both batches applied, each row once per batch");
    assert!(world.values().all(|(t, _)| *t == 1));
    assert_eq!(mode_of(&result3), 0o600);
}

// 2 ------------------------------------------------------------------------------------------------

#[test]
fn a_real_gateway_needs_confirmation_and_the_exact_total() {
    let sandbox = Sandbox::start(&["--profile", "clean"]);
    let w = Work::new();
    let input = s(&sample("vendors-2026-11.csv"));
    let url = sandbox.url();
    let with_creds = |args: &[&str]| {
        let mut c = w.cmd(args);
        c.envs(EXAMPLE_CREDS);
        exec(c)
    };
    let base = ["run", &input, "--gateway", &url, "--state", "S", "--rate", "2000", "--burst", "200"];

    // No terminal, no --yes: refused.
    let out = with_creds(&base);
    out.expect_code(1, "no --yes, no terminal");
    assert!(out.stderr.contains("--yes") || out.stderr.contains("--confirm-total"), "{}", out.stderr);
    assert!(sandbox.applied().is_empty(), "nothing sent without confirmation");

    // The file's total, from validate.
    let v = w.run(&["validate", &input, "--json"]);
    v.expect_code(0, "validate");
    let total = v.json()["totals"]["total"]["amount"].as_str().expect("total amount").to_string();
    let exact: rust_decimal::Decimal = total.parse().expect("decimal total");
    let off_by_a_paisa = (exact + rust_decimal::Decimal::new(1, 2)).to_string();

    for wrong in ["1.00", off_by_a_paisa.as_str()] {
        let mut args = base.to_vec();
        args.extend(["--confirm-total", wrong]);
        let out = with_creds(&args);
        out.expect_code(1, &format!("--confirm-total {wrong}"));
        assert!(sandbox.applied().is_empty(), "nothing sent with a wrong total ({wrong})");
    }

    let mut args = base.to_vec();
    args.extend(["--confirm-total", &total, "--json"]);
    let out = with_creds(&args);
    out.expect_code(0, "--confirm-total exact");
    let summary = out.json();
    assert_eq!(status_count(&summary, "SUCCESS"), 40, "{summary}");
    let applied = sandbox.applied();
    assert_eq!(applied.len(), 40, "every row applied");
    assert!(applied.iter().all(|p| p["times_applied"] == 1), "each once");
    let ledger_refs: HashSet<String> =
        applied.iter().map(|p| p["reference"].as_str().unwrap_or("").to_string()).collect();
    let result = PathBuf::from(summary["result"].as_str().expect("result"));
    let result = if result.is_absolute() { result } else { w.path().join(result) };
    let rows = result_rows(&result);
    let result_refs: HashSet<String> = rows.iter().map(|r| r["external_ref"].clone()).collect();
    assert_eq!(ledger_refs, result_refs, "the ledger holds exactly the result's references");
    // The file's own references are used as they are.
    assert!(rows.iter().all(|r| r["external_ref"] == r["externalRef"]), "own references kept");
}

// 3 ------------------------------------------------------------------------------------------------

#[test]
fn secrets_never_leak_to_output_state_or_results() {
    const AK: &str = "AK-secret-7f3a91c2e5";
    const MK: &str = "MK-secret-c0ffee42b7";
    const CID: &str = "CID-4417";
    const PW: &str = "PW-secret-d00dfeed93";
    const UID: &str = "U-991";
    const WRONG_PW: &str = "PW-wrong-5ab1e77c04";
    let sandbox = Sandbox::start(&[
        "--profile",
        "clean",
        "--access-key",
        AK,
        "--merchant-key",
        MK,
        "--client-id",
        CID,
        "--api-password",
        PW,
        "--user-id",
        UID,
    ]);
    let w = Work::new();
    let creds = [
        ("ATMOON_ACCESS_KEY", AK),
        ("ATMOON_MERCHANT_KEY", MK),
        ("ATMOON_CLIENT_ID", CID),
        ("ATMOON_API_PASSWORD", PW),
        ("ATMOON_USER_ID", UID),
    ];
    let pay = |args: &[&str]| {
        let mut c = w.cmd(args);
        c.envs(creds);
        exec(c)
    };
    // A file with a FAILED row too, so `failed` has something to write.
    let input = w.path().join("pay.csv");
    std::fs::write(
        &input,
        "Name,Account Number,IFSC,Amount,Mode,Remarks\n\
         Asha Rao,123456789012,HDFC0000003,1500.00,IMPS,one\n\
         Bank Failure Demo,999900000001,SBIN0000001,1000.00,IMPS,two\n\
         Ravi Das,223456789012,SBIN0000001,1600.00,NEFT,three\n",
    )
    .expect("input");
    let input_s = s(&input);
    let url = sandbox.url();

    let mut outputs = Vec::new();
    let run = pay(&[
        "-vv",
        "run",
        &input_s,
        "--gateway",
        &url,
        "--yes",
        "--state",
        "S",
        "--rate",
        "2000",
        "--burst",
        "200",
        "--poll-timeout",
        "20s",
    ]);
    run.expect_code(2, "run with one bank failure");
    let batch = {
        let st = w.run(&["status", "--state", "S", "--json"]);
        st.expect_code(0, "status");
        st.json()[0]["batch"].as_str().expect("batch").to_string()
    };
    outputs.push(run);
    outputs.push(pay(&["-vv", "status", "--state", "S"]));
    outputs.push(pay(&["-vv", "status", &batch, "--state", "S", "--json"]));
    outputs.push(pay(&["-vv", "status", &batch, "--state", "S", "--refresh"]));
    outputs.push(pay(&["-vv", "report", &batch, "--state", "S", "--out", "report.csv"]));
    outputs.push(pay(&["-vv", "failed", &batch, "--state", "S", "--out", "retry.csv"]));
    outputs.push(pay(&["-vv", "resume", &batch, "--state", "S"]));
    for o in &outputs[1..] {
        assert!(matches!(o.code, Some(0) | Some(2)), "{o:?}");
    }
    assert!(w.path().join("report.csv").is_file() && w.path().join("retry.csv").is_file());

    // Wrong password: refused, exit 3, neither password shown.
    let mut c = w.cmd(&["-vv", "run", &input_s, "--gateway", &url, "--yes", "--state", "S2"]);
    c.envs(creds).env("ATMOON_API_PASSWORD", WRONG_PW);
    let refused = exec(c);
    refused.expect_code(3, "wrong API password");
    assert!(!refused.stderr.contains(WRONG_PW), "wrong password in stderr:\n{}", refused.stderr);
    assert!(!refused.stderr.contains(PW), "password in stderr:\n{}", refused.stderr);
    outputs.push(refused);

    let tokens: Vec<String> = sandbox.get_json("/__sandbox/tokens")["tokens"]
        .as_array()
        .expect("tokens")
        .iter()
        .map(|t| t.as_str().expect("token").to_string())
        .collect();
    assert!(!tokens.is_empty(), "the sandbox issued tokens");
    let mut secrets: Vec<&str> = vec![AK, MK, PW, WRONG_PW];
    secrets.extend(tokens.iter().map(String::as_str));

    for (i, o) in outputs.iter().enumerate() {
        for secret in &secrets {
            assert!(!o.stdout.contains(secret), "command {i}: a secret in stdout:\n{}", o.stdout);
            assert!(!o.stderr.contains(secret), "command {i}: a secret in stderr:\n{}", o.stderr);
        }
    }
    // Every file payrun wrote: the state dirs (journal, its -wal/-shm, results), report and retry.
    let files = files_under(w.path());
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    assert!(names.iter().any(|n| n.ends_with("journal.sqlite3")), "{names:?}");
    assert!(names.iter().any(|n| n.contains("results") && n.ends_with(".csv")), "{names:?}");
    assert!(names.iter().any(|n| n.contains("audit") && n.ends_with(".jsonl")), "the evidence log: {names:?}");
    for f in &files {
        let bytes = std::fs::read(f).expect("read");
        for secret in &secrets {
            assert!(!contains_bytes(&bytes, secret.as_bytes()), "a secret in {}", f.display());
        }
    }
}

// 4 ------------------------------------------------------------------------------------------------

fn magic_run(w: &Work) -> (Out, PathBuf) {
    let input = s(&sample("sandbox-magic.csv"));
    let mut args = vec!["run", &input, "--state", "S", "--poll-timeout", "3s", "--json", "--concurrency", "16"];
    args.extend(FAST);
    let out = w.run(&args);
    out.expect_code(2, "magic sample: some FAILED, one PENDING");
    let summary = out.json();
    let result = PathBuf::from(summary["result"].as_str().expect("result"));
    let result = if result.is_absolute() { result } else { w.path().join(result) };
    (out, result)
}

#[test]
fn magic_accounts_give_exit_2_with_their_statuses() {
    let w = Work::new();
    let (out, result) = magic_run(&w);
    let summary = out.json();
    assert_eq!(summary["exit"], 2);
    assert_eq!(status_count(&summary, "FAILED"), 4, "{summary}");
    assert_eq!(status_count(&summary, "PENDING"), 6, "{summary}");
    assert_eq!(status_count(&summary, "SUCCESS"), 11, "{summary}");
    assert_eq!(summary["control"]["ok"], true);
    assert!(out.stderr.contains("payrun resume"), "the pending row can be followed:\n{}", out.stderr);
    let rows = result_rows(&result);
    assert_eq!(rows.len(), 21);
    let got: HashMap<String, (&str, &str)> = rows
        .iter()
        .map(|r| {
            let own = if r["Reference"].is_empty() { "" } else { "/own" };
            (format!("{}{own}", r["Account Number"]), (r["status"].as_str(), r["code"].as_str()))
        })
        .collect();
    let expect = [
        ("501002003004", "SUCCESS", "SU0000"),
        ("999900000001", "FAILED", "BE1001"),
        ("999900000002", "SUCCESS", "SU0000"),
        ("999900000003", "PENDING", ""),
        ("999900000004", "SUCCESS", "SU0000"),
        ("999900000005", "SUCCESS", "SU0000"),
        ("999900000006", "SUCCESS", "SU0000"),
        ("999900000007", "FAILED", "TE0020"),
        ("999900000008/own", "FAILED", "REF_CONFLICT"),
        ("999900000009", "PENDING", "PAYEE_MISMATCH"),
        ("999900000010", "SUCCESS", "SU0000"),
        ("999900000011", "SUCCESS", "SU0000"),
        ("999900000012", "FAILED", "BE2002"),
        ("999900000013", "SUCCESS", "SU0000"),
        // Our own accepted payout described with another account: never final, never resent.
        ("999900000014", "PENDING", "PAYEE_MISMATCH"),
        ("999900000015", "SUCCESS", "SU0000"),
        ("999900000016", "SUCCESS", "SU0000"),
        ("999900000017", "PENDING", "AMOUNT_MISMATCH"),
        ("999900000018", "SUCCESS", "SU0000"),
        ("999900000018/own", "PENDING", "REF_ALREADY_USED"),
        ("999900000019", "PENDING", "PAYEE_MISMATCH"),
    ];
    for (account, status, code) in expect {
        let (s, c) = got[account];
        assert_eq!(s, status, "{account}");
        if code.is_empty() {
            assert!(c == "ENQ001" || c == "TE0009", "{account}: pending code {c}");
        } else {
            assert_eq!(c, code, "{account}");
        }
    }
    // Paid once each on the embedded gateway; the collision row's reference is not ours to pay.
    let world = embedded_world(&w.path().join("S"));
    for r in &rows {
        match world.get(&r["external_ref"]) {
            Some((times, account)) => {
                assert_eq!(*times, 1, "{r:?}");
                assert_eq!(account, &r["Account Number"], "{r:?}");
            }
            None => {
                assert!(
                    ["999900000007", "999900000008", "999900000009"].contains(&r["Account Number"].as_str()),
                    "{r:?}"
                )
            }
        }
    }
}

#[test]
fn refused_credentials_exit_3_and_leave_the_rest_not_sent() {
    let w = Work::new();
    let input = w.path().join("with-401.csv");
    let mut text = String::from("Name,Account,IFSC,Amount,Mode\n");
    for i in 0..30 {
        let account = if i == 10 { "999900000401".to_string() } else { format!("5000{i:08}") };
        text.push_str(&format!("Payee {i},{account},HDFC0000003,{},IMPS\n", 100 + i));
    }
    std::fs::write(&input, text).expect("input");
    let input_s = s(&input);
    let mut args = vec!["run", &input_s, "--state", "S", "--concurrency", "1", "--poll-timeout", "5s"];
    args.extend(FAST);
    let out = w.run(&args);
    out.expect_code(3, "credentials refused");
    assert!(out.stderr.contains("payrun resume"), "says how to resume:\n{}", out.stderr);
    assert!(out.stderr.contains("credentials"), "says why:\n{}", out.stderr);
    let result = files_under(&w.path().join("S").join("results"));
    assert_eq!(result.len(), 1, "{result:?}");
    let rows = result_rows(&result[0]);
    assert_eq!(rows.len(), 30);
    for (i, r) in rows.iter().enumerate() {
        match i {
            0..10 => assert!(r["status"] == "SUCCESS" || r["status"] == "PENDING", "row {i}: {r:?}"),
            10 => {
                assert_eq!(r["status"], "NOT_SENT", "the refused row: {r:?}");
                assert_eq!(r["attempts"], "0", "the refused attempt is not counted: {r:?}");
            }
            _ => assert_eq!(r["status"], "NOT_SENT", "row {i}: {r:?}"),
        }
    }
    let world = embedded_world(&w.path().join("S"));
    assert_eq!(world.len(), 10, "nothing after the refusal was applied");
    assert!(world.values().all(|(t, a)| *t == 1 && a != "999900000401"));
}

// 5 ------------------------------------------------------------------------------------------------

#[test]
fn ctrl_c_stops_with_exit_3_and_resume_finishes_the_batch() {
    let w = Work::new();
    let input = w.path().join("ctrlc.csv");
    const IFSC: [&str; 6] = ["SBIN0000001", "HDFC0000003", "ICIC0000001", "UTIB0000001", "PUNB0000010", "KKBK0000141"];
    let mut text = String::from("Name,Account Number,IFSC,Amount,Mode,Remarks\n");
    for i in 1..=300u64 {
        text.push_str(&format!("Payee {i},7{i:011},{},{}.50,IMPS,ctrl-c test\n", IFSC[(i % 6) as usize], 1000 + i));
    }
    std::fs::write(&input, text).expect("input");
    let input_s = s(&input);
    let mut c =
        w.cmd(&["run", &input_s, "--state", "S", "--sandbox-profile", "clean", "--rate", "30", "--concurrency", "16"]);
    let mut child = c.spawn().expect("spawn run");
    let started = Instant::now();
    std::thread::sleep(Duration::from_millis(700));
    // A second process on the same state directory is refused while the first works.
    let second = w.run(&["resume", &input_s, "--state", "S"]);
    second.expect_code(1, "a second payrun on the same state");
    assert!(second.stderr.contains("another payrun is working"), "{}", second.stderr);
    while started.elapsed() < Duration::from_millis(1500) {
        assert!(child.try_wait().expect("try_wait").is_none(), "300 rows at 30/s cannot finish in 1.5 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    let kill = Command::new("kill").args(["-INT", &child.id().to_string()]).status().expect("kill -INT");
    assert!(kill.success());
    let o = child.wait_with_output().expect("wait");
    let stopped = Out {
        code: o.status.code(),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    };
    stopped.expect_code(3, "Ctrl-C");
    assert!(stopped.stderr.contains("payrun resume"), "prints how to resume:\n{}", stopped.stderr);

    // Stopped midway; the requests in flight were waited for and recorded.
    let st = w.run(&["status", &input_s, "--state", "S", "--json"]);
    st.expect_code(0, "status after Ctrl-C");
    let mid = st.json();
    assert!(mid["open"].as_u64().expect("open") > 0, "stopped midway: {mid}");
    assert!(status_count(&mid, "NOT_SENT") > 0, "{mid}");
    assert!(mid["finished_at"].is_null());
    let result = files_under(&w.path().join("S").join("results"));
    assert_eq!(result.len(), 1, "a result is written on stop: {result:?}");
    let rows = result_rows(&result[0]);
    assert_eq!(rows.len(), 300);
    assert!(rows.iter().all(|r| r["code"] != "IN_DOUBT"), "in-flight requests were waited for, not abandoned");
    let applied_before = embedded_world(&w.path().join("S")).len();
    assert!(applied_before < 300);

    // The same file cannot be paid again while its batch is unfinished.
    let again = w.run(&["run", &input_s, "--state", "S", "--new-batch"]);
    again.expect_code(1, "--new-batch on an unfinished batch");
    assert!(again.stderr.contains("not finished"), "{}", again.stderr);

    // A batch begun on the sandbox cannot continue against a real gateway (nor the reverse).
    let switch = w.run(&["resume", &input_s, "--state", "S", "--gateway", "https://api.atmoondps.com"]);
    switch.expect_code(1, "switching gateways");
    assert!(switch.stderr.contains("cannot continue against"), "{}", switch.stderr);

    // Resume by file path, faster; the embedded sandbox meets the same world.
    let resumed = w.run(&["resume", &input_s, "--state", "S", "--rate", "2000", "--burst", "200"]);
    resumed.expect_code(0, "resume");
    let rows = result_rows(&result[0]);
    assert_eq!(rows.len(), 300);
    assert_eq!(count_status(&rows, "SUCCESS"), 300, "every row paid");
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(r["Name"], format!("Payee {}", i + 1), "input order");
    }
    let world = embedded_world(&w.path().join("S"));
    assert_eq!(world.len(), 300, "each row applied under one reference");
    for r in &rows {
        let (times, account) = &world[&r["external_ref"]];
        assert_eq!(*times, 1, "paid once: {r:?}");
        assert_eq!(account, &r["Account Number"]);
    }
    let st = w.run(&["status", &input_s, "--state", "S", "--json"]);
    st.expect_code(0, "status after resume");
    let done = st.json();
    let batch = done["batch"].as_str().expect("batch").to_string();
    let st = w.run(&["status", &batch, "--state", "S", "--json"]);
    st.expect_code(0, "status BATCH");
    let done = st.json();
    assert_eq!(done["open"], 0, "nothing open: {done}");
    assert!(!done["finished_at"].is_null(), "finished: {done}");
    assert_eq!(status_count(&done, "SUCCESS"), 300);
    assert_eq!(status_count(&done, "NOT_SENT"), 0);
    assert_eq!(status_count(&done, "PENDING"), 0);
}

// 6 ------------------------------------------------------------------------------------------------

#[test]
fn skip_invalid_pays_the_valid_rows_and_reports_the_rest() {
    let w = Work::new();
    let input = s(&sample("mistakes.csv"));
    let mut args = vec!["run", &input, "--state", "S", "--concurrency", "16"];
    args.extend(FAST);
    let refused = w.run(&args);
    refused.expect_code(1, "errors without --skip-invalid");
    assert!(refused.stderr.contains("--skip-invalid"), "{}", refused.stderr);
    let st = w.run(&["status", "--state", "S", "--json"]);
    st.expect_code(0, "status");
    assert_eq!(st.json(), serde_json::json!([]), "no batch stored for a refused file");

    args.extend(["--skip-invalid", "--json"]);
    let out = w.run(&args);
    out.expect_code(2, "--skip-invalid: the rows skipped as INVALID need someone");
    let summary = out.json();
    assert_eq!(status_count(&summary, "SUCCESS"), 1, "{summary}");
    assert_eq!(status_count(&summary, "INVALID"), 14, "{summary}");
    assert_eq!(summary["control"]["ok"], true);
    let result = PathBuf::from(summary["result"].as_str().expect("result"));
    let result = if result.is_absolute() { result } else { w.path().join(result) };
    let rows = result_rows(&result);
    assert_eq!(rows.len(), 15);
    assert_eq!(rows[0]["Beneficiary Name"], "Ravi Kumar");
    assert_eq!(rows[0]["status"], "SUCCESS");
    assert_eq!(rows[0]["external_ref"], "NOV-001");
    assert_eq!(rows[0]["attempts"], "1");
    let expected_codes = [
        "SPREADSHEET_MANGLED",
        "BAD_IFSC",
        "UNKNOWN_IFSC",
        "BAD_AMOUNT",
        "MODE_LIMIT",
        "MODE_LIMIT",
        "BAD_NAME",
        "MISSING_FIELD",
        "BAD_MODE",
        "DUPLICATE_ROW",
        "BAD_REF",
        "BAD_ACCOUNT",
        "BAD_REF",
        "BAD_ROW",
    ];
    for (r, code) in rows[1..].iter().zip(expected_codes) {
        assert_eq!(r["status"], "INVALID", "{r:?}");
        assert_eq!(r["code"], code, "{r:?}");
        assert_eq!(r["attempts"], "", "an invalid row has no attempts: {r:?}");
        assert!(!r["message"].is_empty(), "{r:?}");
        for c in ["gateway_ref", "utr", "submitted_at", "completed_at"] {
            assert_eq!(r[c], "", "{c}: {r:?}");
        }
    }
    let world = embedded_world(&w.path().join("S"));
    assert_eq!(world.len(), 1, "only the valid row reached the gateway");
    assert_eq!(world["NOV-001"].1, "39628544321");
}

// 7 ------------------------------------------------------------------------------------------------

#[test]
fn status_report_and_failed_after_the_magic_run() {
    let w = Work::new();
    let (out, result) = magic_run(&w);
    let batch = out.json()["batch"].as_str().expect("batch").to_string();

    // status without a batch lists the batches.
    let list = w.run(&["status", "--state", "S"]);
    list.expect_code(0, "status");
    assert!(list.stdout.contains(&batch), "{}", list.stdout);
    assert!(list.stdout.contains("sandbox-magic.csv"), "{}", list.stdout);
    let list = w.run(&["status", "--state", "S", "--json"]);
    list.expect_code(0, "status --json");
    let list = list.json();
    assert_eq!(list.as_array().expect("array").len(), 1, "{list}");
    assert_eq!(list[0]["batch"], batch.as_str());
    assert_eq!(list[0]["open"], 6);

    // status BATCH --json: six rows still open (pending forever, and five for a person).
    let one = w.run(&["status", &batch, "--state", "S", "--json"]);
    one.expect_code(0, "status BATCH");
    let one = one.json();
    assert_eq!(one["batch"], batch.as_str());
    assert_eq!(one["open"], 6, "{one}");
    assert!(one["finished_at"].is_null());
    assert_eq!(status_count(&one, "SUCCESS"), 11);
    assert_eq!(status_count(&one, "FAILED"), 4);
    assert_eq!(status_count(&one, "PENDING"), 6);
    assert_eq!(one["control"]["ok"], true);

    // report: the same content as the run's result.
    let report = w.run(&["report", &batch, "--state", "S", "--out", "X.csv"]);
    report.expect_code(0, "report");
    assert_eq!(
        std::fs::read(w.path().join("X.csv")).expect("X.csv"),
        std::fs::read(&result).expect("result"),
        "report writes the run's result"
    );
    assert_eq!(mode_of(&w.path().join("X.csv")), 0o600);

    // failed: the FAILED rows, input header and cells.
    let failed = w.run(&["failed", &batch, "--state", "S", "--out", "RETRY.csv"]);
    failed.expect_code(0, "failed");
    let input = sample("sandbox-magic.csv");
    let input_text = std::fs::read_to_string(&input).expect("input");
    let retry_text = std::fs::read_to_string(w.path().join("RETRY.csv")).expect("RETRY.csv");
    assert_eq!(
        retry_text.lines().next(),
        input_text.lines().next().map(|h| format!("{h},last_error,retry_of")).as_deref(),
        "RETRY.csv's header is the input's, byte for byte, then last_error and retry_of"
    );
    let (in_header, in_rows) = read_csv(&input);
    let (retry_header, retry_rows) = read_csv(&w.path().join("RETRY.csv"));
    assert_eq!(retry_header[..in_header.len()], in_header[..]);
    let retry_rows: Vec<Vec<String>> = retry_rows.into_iter().map(|r| r[..in_header.len()].to_vec()).collect();
    let rows = result_rows(&result);
    // The FAILED rows' input cells, in input order; a row's own reference gets -R1 (the gateway has
    // seen the original).
    let ref_col = in_header.iter().position(|h| h == "Reference").expect("Reference column");
    let expected: Vec<Vec<String>> = rows
        .iter()
        .zip(&in_rows)
        .filter(|(r, _)| r["status"] == "FAILED")
        .map(|(_, i)| {
            let mut cells = i.clone();
            if !cells[ref_col].is_empty() {
                cells[ref_col] = format!("{}-R1", cells[ref_col]);
            }
            cells
        })
        .collect();
    assert_eq!(expected.len(), 4);
    assert!(expected.iter().any(|c| c[ref_col] == "MAGIC-REUSED-0008-R1"), "{expected:?}");
    assert_eq!(retry_rows, expected, "exactly the FAILED rows' input cells, in input order");
    let v = w.run(&["validate", "RETRY.csv"]);
    v.expect_code(0, "validate RETRY.csv");
}

// 8 ------------------------------------------------------------------------------------------------

#[test]
fn result_cells_are_formula_safe() {
    let w = Work::new();
    let input = w.path().join("formulas.csv");
    std::fs::write(
        &input,
        "Name,Account Number,IFSC,Amount,Mode,Remarks\n\
         Asha Rao,123456789012,HDFC0000003,1500.00,IMPS,\"=HYPERLINK(\"\"x\"\")\"\n\
         Ravi Das,223456789012,SBIN0000001,1600.00,IMPS,+91 98\n\
         Mira Sen,323456789012,ICIC0000001,1700.00,IMPS,-5\n\
         Om Pal,423456789012,UTIB0000001,1800.00,IMPS,@SUM(A1)\n\
         Plain Person,523456789012,PUNB0000010,1900.00,NEFT,plain\n",
    )
    .expect("input");
    let v = w.run(&["validate", &s(&input)]);
    v.expect_code(0, "every row is valid");
    let input_s = s(&input);
    let mut args = vec!["run", &input_s, "--state", "S", "--json", "--concurrency", "16"];
    args.extend(FAST);
    let out = w.run(&args);
    out.expect_code(0, "run");
    let summary = out.json();
    assert_eq!(status_count(&summary, "SUCCESS"), 5);
    let result = PathBuf::from(summary["result"].as_str().expect("result"));
    let result = if result.is_absolute() { result } else { w.path().join(result) };
    let rows = result_rows(&result);
    let remarks: Vec<&str> = rows.iter().map(|r| r["Remarks"].as_str()).collect();
    assert_eq!(remarks, ["'=HYPERLINK(\"x\")", "'+91 98", "'-5", "'@SUM(A1)", "plain"]);
    // No cell of the result starts with a formula character.
    let (_, raw) = read_csv(&result);
    for row in &raw {
        for cell in row {
            assert!(!cell.starts_with(['=', '+', '-', '@', '\t', '\r']), "live formula cell {cell:?}");
        }
    }
}

// 10 -----------------------------------------------------------------------------------------------

/// A file saved again (other bytes, same rows) is not paid again without --new-batch; a file's own
/// reference already used by an earlier batch is BAD_REF.
#[test]
fn a_resaved_file_or_a_reused_reference_is_not_paid_again() {
    let w = Work::new();
    let salary = s(&sample("salary-2026-11.csv"));
    let mut args = vec!["run", salary.as_str(), "--state", "S"];
    args.extend(FAST);
    w.run(&args).expect_code(0, "first payment");

    // The same rows with LF instead of CRLF line endings: other bytes, the same payments.
    let text = std::fs::read_to_string(sample("salary-2026-11.csv")).expect("read");
    assert!(text.contains("\r\n"), "the sample is written with CRLF");
    let resaved = w.path().join("salary-resaved.csv");
    std::fs::write(&resaved, text.replace("\r\n", "\n")).expect("write");
    let resaved_s = s(&resaved);
    let mut args = vec!["run", resaved_s.as_str(), "--state", "S"];
    args.extend(FAST);
    let again = w.run(&args);
    again.expect_code(1, "a re-saved file");
    assert!(again.stderr.contains("same rows"), "{}", again.stderr);
    // With --new-batch it is a second payment of the same rows: held as repeats (paid within 24
    // hours), sent only with --allow-repeat.
    args.push("--new-batch");
    w.run(&args).expect_code(2, "--new-batch: held");

    // Vendors, then next month's file reusing one of this month's invoice references.
    let vendors = s(&sample("vendors-2026-11.csv"));
    let mut args = vec!["run", vendors.as_str(), "--state", "S"];
    args.extend(FAST);
    w.run(&args).expect_code(0, "vendors");
    let text = std::fs::read_to_string(sample("vendors-2026-11.csv")).expect("read");
    let lines: Vec<&str> = text.lines().collect();
    let fresh = lines[1].replace("INV-2026-11-0001", "INV-2026-12-0001").replace("Invoice 0001", "Invoice Dec");
    let december = format!("{}\n{fresh}\n{}\n", lines[0], lines[2]);
    let dec = w.path().join("vendors-dec.csv");
    std::fs::write(&dec, december).expect("write");
    let dec_s = s(&dec);
    let mut args = vec!["run", dec_s.as_str(), "--state", "S"];
    args.extend(FAST);
    let out = w.run(&args);
    out.expect_code(1, "a reused reference");
    let said = unwrapped(&out.stderr);
    assert!(said.contains("BAD_REF") && said.contains("already used by batch"), "{}", out.stderr);
    assert!(out.stderr.contains("line 3"), "the second row reuses INV-2026-11-0002: {}", out.stderr);
}
