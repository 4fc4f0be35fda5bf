//! payrun's performance benchmark: one command, every target of issue 5, measured side by side in
//! one run against the sandbox over loopback, judged on the median of several runs.
//!
//! ```text
//! cargo bench --bench perf                               # everything, 5 runs each
//! PAYRUN_BENCH_ONLY=P1,P2 cargo bench --bench perf       # some measures
//! PAYRUN_BENCH_RUNS=1 PAYRUN_BENCH_BIG=100000 cargo bench --bench perf   # a quick look
//! ```
//!
//! | id  | measure                                                                  | target        |
//! |-----|--------------------------------------------------------------------------|---------------|
//! | P1  | `validate` of a 1,000,000-row file vs a raw csv-crate parse of it          | ≤ 3×, ≤ 150 MB |
//! | P2  | wall time / (gateway calls / rate), N=3,000, rate 300/s, 20-60 ms, clean   | ≤ 1.05        |
//! | P2b | status inquiries per settled payout in that run                           | ≤ 1.2         |
//! | P3  | payouts/s end to end, no rate limit, zero latency, durable journal; p99    | ≥ 5,000/s     |
//! | P3a | P3 with the evidence log (SPEC 3.4) / the same run without it             | ≥ 0.90        |
//! | P4  | payrun vs a plain sequential client, 1,000 rows, 20-60 ms, clean           | ≥ 20×         |
//! | P5  | `resume` start → first gateway request, 1,000,000-row batch killed midway  | ≤ 2 s         |
//! | P6  | peak RSS of `run` at 1,000,000 rows / at 10,000 rows                       | ≤ 1.5         |
//! | P8  | `validate` of a 100,000-row .xlsx vs the same rows as CSV (time, peak RSS)  | context       |
//! | P4i | P4 against an independent gateway (tests/suite/support/fake.rs), with where the time went | ≥ 20× |
//! | P7  | requests/s while sending ÷ rate, 3,000 rows at 200/s, 4% of postings and 1% of inquiries hang | ≥ 0.9 |
//! | P9  | payouts/s end to end with the PostgreSQL journal (team mode, same machine), clean sandbox, no limit; beside the SQLite figure of the same run | ≥ 1,000/s |
//! | P10 | 2 and 4 `payrun resume --journal` processes, one merchant, `--rate 100 --burst 5`: summed rate ÷ rate while all post; busiest one-second window ÷ rate | ≥ 0.9; ≤ 1.05 |
//! | P10c | the same with bare client processes (the budget and the gateway client, no journal), 6 s | ≥ 0.9; ≤ 1.05 |
//!
//! P10 needs PostgreSQL (tests/suite/support/pg.rs finds or starts one) and counts at the
//! independent fake gateway (5-20 ms). P10 is the whole product: a maker stores one batch per
//! process, a checker approves them, and the processes resume them at once as a sender. P10c's
//! processes are this benchmark started again as senders (support/budget.rs): the budget alone,
//! without the journal's writes between turns.
//!
//! No assertion here fails the build: this prints numbers. Timed asserts belong nowhere.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use support::{BIN, EXAMPLE_CREDS, Sandbox, env_num};

#[path = "../tests/suite/support/mod.rs"]
mod support;

const IFSC: [&str; 8] = [
    "SBIN0000001",
    "HDFC0000003",
    "ICIC0000001",
    "UTIB0000001",
    "PUNB0000010",
    "KKBK0000141",
    "YESB0000001",
    "BKID0000001",
];

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    if v.is_empty() { f64::NAN } else { v[v.len() / 2] }
}

/// A finished child: wall time, peak resident memory (from wait4), exit code.
struct Measured {
    wall: Duration,
    max_rss_mb: f64,
    code: i32,
    stdout: String,
}

/// Runs a command to completion and takes its peak RSS from the kernel (wait4's rusage).
fn measure(cmd: &mut Command) -> Measured {
    let t = Instant::now();
    let mut child = cmd.stdout(Stdio::piped()).spawn().expect("spawn");
    let mut out = String::new();
    if let Some(mut s) = child.stdout.take() {
        let _ = s.read_to_string(&mut out);
    }
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain old data; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid, "wait4");
    let code = if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { -1 };
    Measured { wall: t.elapsed(), max_rss_mb: usage.ru_maxrss as f64 / 1024.0, code, stdout: out }
}

/// A payout file of `rows` rows with distinct accounts; cached between runs.
fn input(dir: &Path, rows: u64) -> PathBuf {
    let path = dir.join(format!("payouts-{rows}.csv"));
    if path.exists() {
        return path;
    }
    let mut w = std::io::BufWriter::new(std::fs::File::create(&path).expect("create"));
    writeln!(w, "Employee ID,Beneficiary Name,Account No,IFSC Code,Amount,Payment Mode,Narration").expect("write");
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in 1..=rows {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let paise = 1_000_00 + x % 2_00_000_00;
        let amount = if i % 3 == 0 {
            format!("\"{}\"", payrun::money::Amount::from_paise(paise as i64).to_indian())
        } else {
            format!("{}.{:02}", paise / 100, paise % 100)
        };
        let mode = if i % 2 == 0 { "NEFT" } else { "IMPS" };
        writeln!(w, "EMP{i},Employee Number {i},5{i:011},{},{amount},{mode},Salary Nov 2026", IFSC[(i % 8) as usize])
            .expect("write");
    }
    w.flush().expect("flush");
    path
}

/// The rows of the CSV file `input(dir, rows)` as an .xlsx workbook, as a payroll team keeps it:
/// text cells, amounts as numbers. Cached between runs. Written by a child process (this bench in
/// `--write-xlsx` mode): a child forked from a process holding the workbook would report that
/// memory as its own peak RSS.
fn input_xlsx(dir: &Path, rows: u64) -> PathBuf {
    let path = dir.join(format!("payouts-{rows}.xlsx"));
    if path.exists() {
        return path;
    }
    let csv_path = input(dir, rows);
    let me = std::env::current_exe().expect("exe");
    let status = Command::new(me).arg("--write-xlsx").arg(&csv_path).arg(&path).status().expect("spawn");
    assert!(status.success(), "writing the workbook");
    path
}

/// Child mode: writes the CSV file `csv_path` as the workbook `path` (see [`input_xlsx`]).
fn write_xlsx(csv_path: &Path, path: &Path) {
    let mut rdr = csv::Reader::from_path(csv_path).expect("open csv");
    let header: Vec<String> = rdr.headers().expect("header").iter().map(str::to_string).collect();
    let amount = header.iter().position(|h| h == "Amount").expect("amount column");
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    for (c, h) in header.iter().enumerate() {
        sheet.write_string(0, c as u16, h).expect("write");
    }
    let mut r = 0u32;
    for rec in rdr.records() {
        let rec = rec.expect("row");
        r += 1;
        for (c, cell) in rec.iter().enumerate() {
            if c == amount {
                let value: f64 = cell.replace(',', "").parse().expect("amount");
                sheet.write_number(r, c as u16, value).expect("write");
            } else {
                sheet.write_string(r, c as u16, cell).expect("write");
            }
        }
    }
    book.save(path).expect("save xlsx");
}

fn payrun(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(args)
        .current_dir(dir)
        .env("PAYRUN_CONFIG", dir.join("payrun.toml"))
        .stderr(Stdio::null())
        .stdin(Stdio::null());
    c.envs(EXAMPLE_CREDS);
    c
}

fn fresh(dir: &Path, name: &str) -> PathBuf {
    let p = dir.join(name);
    let _ = std::fs::remove_dir_all(&p);
    p
}

/// Speeds of `run` against a sandbox: the gateway's rate, and "no limit".
const RATE_300: [&str; 4] = ["--rate", "300", "--concurrency", "64"];
const RATE_1000: [&str; 4] = ["--rate", "1000", "--concurrency", "64"];
const UNLIMITED: [&str; 6] = ["--rate", "1000000", "--burst", "100000", "--concurrency", "64"];

/// `payrun run FILE --gateway SANDBOX --yes --state <fresh dir named state> PACE... --json`, measured,
/// with `config` as payrun.toml when given. Returns the measurement and the state directory.
fn run_against(
    dir: &Path,
    sb: &Sandbox,
    file: &Path,
    state: &str,
    pace: &[&str],
    config: Option<&Path>,
) -> (Measured, PathBuf) {
    run_against_env(dir, sb, file, state, pace, config, &[])
}

/// [`run_against`] with more environment for the child.
fn run_against_env(
    dir: &Path,
    sb: &Sandbox,
    file: &Path,
    state: &str,
    pace: &[&str],
    config: Option<&Path>,
    env: &[(&str, &str)],
) -> (Measured, PathBuf) {
    let state = fresh(dir, state);
    let (fs, st, url) = (file.display().to_string(), state.display().to_string(), sb.url());
    let mut args = vec!["run", fs.as_str(), "--gateway", url.as_str(), "--yes", "--state", st.as_str(), "--json"];
    args.extend_from_slice(pace);
    let mut cmd = payrun(dir, &args);
    if let Some(c) = config {
        cmd.env("PAYRUN_CONFIG", c);
    }
    cmd.envs(env.iter().copied());
    (measure(&mut cmd), state)
}

struct Row {
    id: &'static str,
    measure: String,
    value: String,
    target: &'static str,
    ok: bool,
}

fn main() {
    // Child mode: the raw csv-crate parse P1 compares with (ByteRecord), or the same producing
    // checked UTF-8 StringRecords (context only).
    let args: Vec<String> = std::env::args().collect();
    if let (Some("--write-xlsx"), Some(from), Some(to)) = (args.get(1).map(String::as_str), args.get(2), args.get(3)) {
        write_xlsx(Path::new(from), Path::new(to));
        return;
    }
    if args.get(1).map(String::as_str) == Some("--budget-sender") {
        let me = support::budget::Sender::from_env().expect("a P10 sender is told what to do by its environment");
        support::budget::run_sender(&me);
        return;
    }
    if let (Some("--raw-parse"), Some(file)) = (args.get(1).map(String::as_str), args.get(2)) {
        let strings = args.get(3).map(String::as_str) == Some("strings");
        let mut rdr = csv::ReaderBuilder::new().from_path(file).expect("open");
        let (mut bytes, mut text, mut n) = (csv::ByteRecord::new(), csv::StringRecord::new(), 0u64);
        while if strings { rdr.read_record(&mut text) } else { rdr.read_byte_record(&mut bytes) }.expect("read") {
            n += 1;
        }
        println!("{n}");
        return;
    }
    let runs = env_num("PAYRUN_BENCH_RUNS", 5).max(1) as usize;
    let big = env_num("PAYRUN_BENCH_BIG", 1_000_000);
    let only: Option<Vec<String>> =
        std::env::var("PAYRUN_BENCH_ONLY").ok().map(|s| s.split(',').map(|x| x.trim().to_ascii_uppercase()).collect());
    let want = |id: &str| only.as_ref().is_none_or(|o| o.iter().any(|x| x == id));
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("payrun-bench");
    std::fs::create_dir_all(&dir).expect("bench dir");
    std::fs::write(dir.join("payrun.toml"), "[gateway]\ntimeout = \"10s\"\n").expect("config");
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    println!("payrun benchmark: {cores} cores ({cpu}), {runs} runs per figure (median), big file {big} rows");
    let mut table: Vec<Row> = Vec::new();

    if want("P1") {
        let file = input(&dir, big);
        let fs = file.display().to_string();
        let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0) as f64 / 1e6;
        let (mut v, mut r, mut v_rss, mut r_rss, mut strings) = (vec![], vec![], vec![], vec![], vec![]);
        let me = std::env::current_exe().expect("exe");
        for _ in 0..runs {
            let m = measure(Command::new(&me).args(["--raw-parse", &fs]).stderr(Stdio::null()));
            r.push(m.wall.as_secs_f64());
            r_rss.push(m.max_rss_mb);
            let m = measure(Command::new(&me).args(["--raw-parse", &fs, "strings"]).stderr(Stdio::null()));
            strings.push(m.wall.as_secs_f64());
            let m = measure(payrun(&dir, &["validate", &fs]).stdout(Stdio::null()));
            assert_eq!(m.code, 0, "the generated file validates clean");
            v.push(m.wall.as_secs_f64());
            v_rss.push(m.max_rss_mb);
        }
        let (v, r, rss) = (median(&mut v), median(&mut r), median(&mut v_rss));
        let strings = median(&mut strings);
        println!(
            "P1: validate {v:.2}s, raw csv parse {r:.2}s ({size:.0} MB file), validate peak RSS {rss:.0} MB (raw parse {:.0} MB); for context, the csv crate producing UTF-8 StringRecords takes {strings:.2}s ({:.2}× of it)",
            median(&mut r_rss),
            v / strings
        );
        table.push(Row {
            id: "P1",
            measure: format!("validate {big} rows / raw csv parse"),
            value: format!("{:.2}× ({v:.2}s / {r:.2}s), {rss:.0} MB", v / r),
            target: "≤ 3×, ≤ 150 MB",
            ok: v / r <= 3.0 && rss <= 150.0,
        });
    }

    if want("P2") {
        let file = input(&dir, 3000);
        let (mut ratios, mut per) = (vec![], vec![]);
        for i in 0..runs {
            let sb = Sandbox::start(&["--profile", "clean", "--latency", "20..60"]);
            let (m, _) = run_against(&dir, &sb, &file, &format!("p2-{i}"), &RATE_300, None);
            let stats = sb.request_json("GET", "/__sandbox/stats");
            let calls = stats["requests"].as_f64().unwrap_or(f64::NAN);
            let summary: serde_json::Value = serde_json::from_str(&m.stdout).unwrap_or_default();
            let paid = summary["status_totals"]["SUCCESS"]["count"].as_f64().unwrap_or(f64::NAN);
            let inquiries = summary["stats"]["inquiries"].as_f64().unwrap_or(f64::NAN);
            let ratio = m.wall.as_secs_f64() / (calls / 300.0);
            println!(
                "P2 run {i}: {:.2}s for {calls} calls (ideal {:.2}s): {ratio:.3}; {inquiries} inquiries for {paid} payouts",
                m.wall.as_secs_f64(),
                calls / 300.0
            );
            ratios.push(ratio);
            per.push(inquiries / paid);
        }
        let (ratio, per) = (median(&mut ratios), median(&mut per));
        table.push(Row {
            id: "P2",
            measure: "wall / (calls / rate), N=3000, 300/s, 20-60 ms".into(),
            value: format!("{ratio:.3}"),
            target: "≤ 1.05",
            ok: ratio <= 1.05,
        });
        table.push(Row {
            id: "P2b",
            measure: "status inquiries per settled payout".into(),
            value: format!("{per:.3}"),
            target: "≤ 1.2",
            ok: per <= 1.2,
        });
    }

    if want("P3") {
        let n = env_num("PAYRUN_BENCH_P3_ROWS", 50_000);
        let file = input(&dir, n);
        std::fs::write(
            dir.join("p3.toml"),
            "[gateway]\ntimeout = \"10s\"\n[run]\nfirst_poll = \"5ms\"\nmax_poll_interval = \"100ms\"\n",
        )
        .expect("config");
        let (mut rates, mut inner, mut p50s, mut p99s) = (vec![], vec![], vec![], vec![]);
        let mut without_log = vec![];
        for i in 0..runs {
            // Side by side: the same run without the evidence log (the only difference).
            let sb = Sandbox::start(&["--profile", "clean", "--latency", "0"]);
            let (m, _) = run_against_env(
                &dir,
                &sb,
                &file,
                &format!("p3-nolog-{i}"),
                &UNLIMITED,
                Some(&dir.join("p3.toml")),
                &[("PAYRUN_EVIDENCE_LOG", "off")],
            );
            let rate = n as f64 / m.wall.as_secs_f64();
            println!("P3 run {i} without the evidence log: {n} payouts in {:.2}s = {rate:.0}/s", m.wall.as_secs_f64());
            without_log.push(rate);
            drop(sb);
            let sb = Sandbox::start(&["--profile", "clean", "--latency", "0"]);
            let (m, state) = run_against(&dir, &sb, &file, &format!("p3-{i}"), &UNLIMITED, Some(&dir.join("p3.toml")));
            let stats = sb.request_json("GET", "/__sandbox/stats");
            let span = (stats["last_request_unix_ms"].as_f64().unwrap_or(0.0)
                - stats["first_request_unix_ms"].as_f64().unwrap_or(0.0))
                / 1000.0;
            let (p50, p99) = latencies(&state);
            let rate = n as f64 / m.wall.as_secs_f64();
            println!(
                "P3 run {i}: {n} payouts in {:.2}s = {rate:.0}/s end to end ({:.0}/s first to last request); latency intent→final p50 {p50:.1} ms, p99 {p99:.1} ms",
                m.wall.as_secs_f64(),
                n as f64 / span
            );
            rates.push(rate);
            inner.push(n as f64 / span);
            p50s.push(p50);
            p99s.push(p99);
        }
        let rate = median(&mut rates);
        let bare = median(&mut without_log);
        table.push(Row {
            id: "P3a",
            measure: format!("P3 with the evidence log / without it, {n} rows"),
            value: format!("{:.2} ({rate:.0}/s vs {bare:.0}/s)", rate / bare),
            target: "≥ 0.90",
            ok: rate / bare >= 0.9,
        });
        table.push(Row {
            id: "P3",
            measure: format!("payouts/s, {n} rows, no limit, 0 ms, fsync on"),
            value: format!(
                "{rate:.0}/s end to end ({:.0}/s sending); p50 {:.1} ms, p99 {:.1} ms",
                median(&mut inner),
                median(&mut p50s),
                median(&mut p99s)
            ),
            target: "≥ 5,000/s",
            ok: rate >= 5000.0,
        });
    }

    if want("P9") {
        p9(&dir, runs, &mut table);
    }

    if want("P4") {
        let file = input(&dir, 1000);
        let (mut ours, mut seq) = (vec![], vec![]);
        for i in 0..runs {
            let sb = Sandbox::start(&["--profile", "clean", "--latency", "20..60"]);
            let (m, _) = run_against(&dir, &sb, &file, &format!("p4-{i}"), &RATE_1000, None);
            drop(sb);
            let sb = Sandbox::start(&["--profile", "clean", "--latency", "20..60"]);
            let t = Instant::now();
            sequential_client(&file, &sb.url());
            let s = t.elapsed().as_secs_f64();
            println!(
                "P4 run {i}: payrun {:.2}s, sequential client {s:.2}s: {:.1}×",
                m.wall.as_secs_f64(),
                s / m.wall.as_secs_f64()
            );
            ours.push(m.wall.as_secs_f64());
            seq.push(s);
        }
        let (o, s) = (median(&mut ours), median(&mut seq));
        table.push(Row {
            id: "P4",
            measure: "sequential client / payrun, 1000 rows, 20-60 ms".into(),
            value: format!("{:.1}× ({s:.1}s / {o:.2}s)", s / o),
            target: "≥ 20×",
            ok: s / o >= 20.0,
        });
    }

    if want("P5") {
        let file = input(&dir, big);
        let fs = file.display().to_string();
        let sb = Sandbox::start(&["--profile", "clean", "--latency", "0"]);
        let url = format!("http://{}", sb.addr);
        let state = fresh(&dir, "p5");
        let st = state.display().to_string();
        let mut args = vec!["run", fs.as_str(), "--gateway", url.as_str(), "--yes", "--state", st.as_str()];
        args.extend(UNLIMITED);
        let mut child = payrun(&dir, &args).stdout(Stdio::null()).spawn().expect("run");
        // Midway: half of the calls a full run makes (two per payout).
        loop {
            std::thread::sleep(Duration::from_millis(200));
            if sb.request_json("GET", "/__sandbox/stats")["requests"].as_u64().unwrap_or(0) >= big {
                break;
            }
            if child.try_wait().ok().flatten().is_some() {
                break;
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        let batches: serde_json::Value = serde_json::from_slice(
            &payrun(&dir, &["status", "--state", &st, "--json"]).output().expect("status").stdout,
        )
        .unwrap_or_default();
        let id = batches[0]["batch"].as_str().unwrap_or_default().to_string();
        let mut firsts = vec![];
        for i in 0..runs {
            sb.request_json("POST", "/__sandbox/stats");
            let t0 = now_ms();
            let mut args = vec!["resume", id.as_str(), "--state", st.as_str()];
            args.extend(UNLIMITED);
            let mut child = payrun(&dir, &args).stdout(Stdio::null()).spawn().expect("resume");
            let mut first = 0;
            for _ in 0..600 {
                std::thread::sleep(Duration::from_millis(10));
                first = sb.request_json("GET", "/__sandbox/stats")["first_request_unix_ms"].as_u64().unwrap_or(0);
                if first > 0 {
                    break;
                }
            }
            std::thread::sleep(Duration::from_millis(300));
            let _ = child.kill();
            let _ = child.wait();
            let secs = first.saturating_sub(t0) as f64 / 1000.0;
            println!("P5 run {i}: resume of a {big}-row batch made its first request after {secs:.3}s");
            firsts.push(secs);
        }
        let f = median(&mut firsts);
        table.push(Row {
            id: "P5",
            measure: format!("resume → first request, {big}-row batch killed midway"),
            value: format!("{f:.3}s"),
            target: "≤ 2 s",
            ok: f <= 2.0,
        });
    }

    if want("P6") {
        let rss = |rows: u64| -> f64 {
            let file = input(&dir, rows);
            let mut v = vec![];
            for i in 0..runs {
                let sb = Sandbox::start(&["--profile", "clean", "--latency", "0"]);
                let (m, state) = run_against(&dir, &sb, &file, &format!("p6-{rows}-{i}"), &UNLIMITED, None);
                println!(
                    "P6 {rows} rows run {i}: peak RSS {:.1} MB in {:.1}s (exit {})",
                    m.max_rss_mb,
                    m.wall.as_secs_f64(),
                    m.code
                );
                v.push(m.max_rss_mb);
                let _ = std::fs::remove_dir_all(&state);
            }
            median(&mut v)
        };
        let small = rss(10_000);
        let large = rss(big);
        table.push(Row {
            id: "P6",
            measure: format!("peak RSS of run, {big} rows / 10,000 rows"),
            value: format!("{:.2} ({large:.0} MB / {small:.0} MB)", large / small),
            target: "≤ 1.5",
            ok: large / small <= 1.5,
        });
    }

    if want("P8") {
        let n = env_num("PAYRUN_BENCH_P8_ROWS", 100_000);
        let (csv_file, xlsx_file) = (input(&dir, n), input_xlsx(&dir, n));
        let mb = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0) as f64 / 1e6;
        let (cs, xs) = (csv_file.display().to_string(), xlsx_file.display().to_string());
        let (mut c, mut x, mut c_rss, mut x_rss) = (vec![], vec![], vec![], vec![]);
        for i in 0..runs {
            let m = measure(payrun(&dir, &["validate", &cs]).stdout(Stdio::null()));
            assert_eq!(m.code, 0, "the CSV file validates clean");
            c.push(m.wall.as_secs_f64());
            c_rss.push(m.max_rss_mb);
            let m = measure(payrun(&dir, &["validate", &xs]).stdout(Stdio::null()));
            assert_eq!(m.code, 0, "the workbook validates clean");
            x.push(m.wall.as_secs_f64());
            x_rss.push(m.max_rss_mb);
            println!("P8 run {i}: csv {:.3}s, xlsx {:.3}s", c[i], x[i]);
        }
        let (c, x, c_rss, x_rss) = (median(&mut c), median(&mut x), median(&mut c_rss), median(&mut x_rss));
        println!(
            "P8: validate of {n} rows: .xlsx {x:.2}s ({:.1} MB file, peak RSS {x_rss:.0} MB) vs CSV {c:.2}s ({:.1} MB, {c_rss:.0} MB): {:.1}×",
            mb(&xlsx_file),
            mb(&csv_file),
            x / c
        );
        table.push(Row {
            id: "P8",
            measure: format!("validate {n} rows, .xlsx / same rows as CSV"),
            value: format!("{:.1}× ({x:.2}s / {c:.2}s), peak RSS {x_rss:.0} MB / {c_rss:.0} MB", x / c),
            target: "context",
            ok: true,
        });
    }

    if want("P4I") {
        table.push(p4_independent(&dir, runs));
    }

    if want("P7") {
        table.extend(p7_hung_requests(&dir, runs));
    }

    if want("P10") {
        table.extend(p10_payrun_processes(&dir, runs));
    }

    if want("P10C") {
        table.extend(p10_shared_budget(runs));
    }

    println!("\n| id | measure | result | target | met |\n|---|---|---|---|---|");
    for r in &table {
        println!("| {} | {} | {} | {} | {} |", r.id, r.measure, r.value, r.target, if r.ok { "yes" } else { "NO" });
    }
}

/// Latency from intent (submitted_at) to final (completed_at) over a finished batch: (p50, p99) ms.
fn latencies(state: &Path) -> (f64, f64) {
    let Ok(conn) = rusqlite::Connection::open(state.join("journal.sqlite3")) else { return (f64::NAN, f64::NAN) };
    let mut st = match conn.prepare(
        "SELECT submitted_at, completed_at FROM rows WHERE completed_at IS NOT NULL AND submitted_at IS NOT NULL",
    ) {
        Ok(s) => s,
        Err(_) => return (f64::NAN, f64::NAN),
    };
    let mut v: Vec<f64> = st
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .map(|rows| {
            rows.filter_map(Result::ok)
                .filter_map(|(a, b)| {
                    let a = chrono::DateTime::parse_from_rfc3339(&a).ok()?;
                    let b = chrono::DateTime::parse_from_rfc3339(&b).ok()?;
                    Some((b - a).num_microseconds()? as f64 / 1000.0)
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    if v.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    (v[v.len() / 2], v[(v.len() * 99 / 100).min(v.len() - 1)])
}

/// The baseline of P4: one request at a time. Token, then for each row: post the payout, then ask
/// for its status, asking again every 2 s while it is pending.
fn sequential_client(file: &Path, url: &str) {
    use payrun::gateway::{GatewayClient, PayoutRequest, StatusOutcome, client::ClientOptions};
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let client =
            GatewayClient::new(&ClientOptions::new(url), payrun::config::example_credentials()).expect("client");
        let mut scanner = payrun::input::Scanner::open(file, false, Default::default()).expect("open");
        let mut i = 0u64;
        while let Some(v) = scanner.next().expect("row") {
            let Some(row) = v.row.as_ref().map(|r| r.to_owned()) else { continue };
            i += 1;
            let reference = format!("SEQ{i:07}");
            let req = PayoutRequest {
                amount: row.amount,
                name: row.name,
                account: row.account,
                ifsc: row.ifsc,
                mode: row.mode.as_str().to_string(),
                remarks: row.remarks,
                external_ref: reference.clone(),
                payee_list_id: String::new(),
                latitude: String::new(),
                longitude: String::new(),
            };
            let _ = client.payout(&req, None).await;
            while let StatusOutcome::Pending { .. } = client.status(&reference).await {
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
    });
}

/// P4 against a gateway whose code is not payrun's own (the independent fake of the tests, 20-60 ms
/// on every call, no faults): payrun vs the sequential client, and where payrun's time went (start
/// to first request, first to last request against the rate's floor, last request to exit).
fn p4_independent(dir: &Path, runs: usize) -> Row {
    use support::fake::{FakeGateway, FakeOptions};
    let file = input(dir, 1000);
    let opts = FakeOptions { latency_ms: (20, 60), behaviours: false };
    let (mut ours, mut seq, mut start, mut sending, mut end, mut floor) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    for i in 0..runs {
        let fake = FakeGateway::start_with(opts);
        let state = fresh(dir, &format!("p4i-{i}"));
        let (fs, st) = (file.display().to_string(), state.display().to_string());
        let mut args = vec!["run", fs.as_str(), "--gateway", fake.url.as_str(), "--yes", "--state", st.as_str()];
        args.extend_from_slice(&RATE_1000);
        let t0 = now_ms();
        let m = measure(payrun(dir, &args).stdout(Stdio::null()));
        let t = fake.timeline();
        drop(fake);
        let secs = |a: u64, b: u64| b.saturating_sub(a) as f64 / 1000.0;
        let exit = t0 + m.wall.as_millis() as u64;
        start.push(secs(t0, t.first_unix_ms));
        sending.push(secs(t.first_unix_ms, t.last_unix_ms));
        end.push(secs(t.last_unix_ms, exit));
        floor.push(t.requests as f64 / 1000.0);
        // PAYRUN_BENCH_SEQUENTIAL=skip: payrun's side only (a quick look at where its time goes).
        let s = if std::env::var("PAYRUN_BENCH_SEQUENTIAL").is_ok_and(|v| v == "skip") {
            f64::NAN
        } else {
            let fake = FakeGateway::start_with(opts);
            let clock = Instant::now();
            sequential_client(&file, &fake.url);
            clock.elapsed().as_secs_f64()
        };
        let o = m.wall.as_secs_f64();
        println!(
            "P4i run {i}: payrun {o:.2}s (exit {}; start {:.3}s, {} requests {:.3}s of which postings {:.3}s, last request to exit {:.3}s), sequential client {s:.2}s: {:.1}×",
            m.code,
            secs(t0, t.first_unix_ms),
            t.requests,
            secs(t.first_unix_ms, t.last_unix_ms),
            secs(t.first_unix_ms, t.last_posting_unix_ms),
            secs(t.last_unix_ms, exit),
            s / o
        );
        if std::env::var_os("PAYRUN_BENCH_TIMELINE").is_some() {
            let slots: Vec<String> = t.per_100ms.iter().map(|(p, o)| format!("{p}+{o}")).collect();
            println!("P4i run {i}: requests per 100 ms (postings+others): {}", slots.join(" "));
        }
        ours.push(o);
        seq.push(s);
    }
    let (o, s) = (median(&mut ours), median(&mut seq));
    let (a, b, c, f) = (median(&mut start), median(&mut sending), median(&mut end), median(&mut floor));
    println!(
        "P4i where payrun's {o:.2}s went (medians): start → first request {a:.3}s, first → last request {b:.3}s (the rate's floor for its calls: {f:.3}s), last request → exit {c:.3}s"
    );
    Row {
        id: "P4i",
        measure: "sequential client / payrun, 1000 rows, 20-60 ms, independent gateway".into(),
        value: format!("{:.1}× ({s:.1}s / {o:.2}s: start {a:.2}s, requests {b:.2}s, end {c:.2}s)", s / o),
        target: "≥ 20×",
        ok: s / o >= 20.0,
    }
}

/// P7: 3,000 rows at `--rate 200` (concurrency left to payrun) against the sandbox with 1% of
/// postings hanging before they are applied, 3% applied and then never answered, 1% of inquiries
/// hanging (each held past the client's 30 s timeout), 20-60 ms otherwise, the sandbox's own limit
/// at 200/s. The figure: gateway requests per second during the sending phase (first request to
/// the last row's first posting, counted by the sandbox) divided by 200. Also: the most requests
/// the sandbox saw in flight at once, 429s from its limiter (any would mean payrun broke the rate),
/// the inquiries payrun made on rows in doubt, and whether every row was paid exactly once.
fn p7_hung_requests(dir: &Path, runs: usize) -> Vec<Row> {
    let rows = env_num("PAYRUN_BENCH_P7_ROWS", 3000);
    let file = input(dir, rows);
    // The client's timeout as shipped (30 s): the hung requests cost what they cost an operator.
    let config = dir.join("p7.toml");
    std::fs::write(&config, "[gateway]\n").expect("config");
    let sandbox = [
        "--profile",
        "clean",
        "--latency",
        "20..60",
        "--rate-limit",
        "200",
        "--post-hang-before",
        "10",
        "--post-hang-after",
        "30",
        "--status-hang",
        "10",
    ];
    let (mut ratios, mut peaks, mut doubts, mut walls) = (vec![], vec![], vec![], vec![]);
    let (mut limited, mut twice) = (0u64, 0u64);
    for i in 0..runs {
        let seed = (i + 1).to_string();
        let mut args = sandbox.to_vec();
        args.extend(["--seed", seed.as_str()]);
        let sb = Sandbox::start(&args);
        let (m, _) = run_against(dir, &sb, &file, &format!("p7-{i}"), &["--rate", "200"], Some(&config));
        let st: payrun::sandbox::Stats =
            serde_json::from_value(sb.request_json("GET", "/__sandbox/stats")).unwrap_or_default();
        let applied = sb.applied();
        let once = applied.len() as u64 == rows && applied.iter().all(|p| p["times_applied"] == 1);
        twice += u64::from(!once);
        limited += st.rate_limited;
        let phase = st.last_new_reference_unix_ms.saturating_sub(st.first_request_unix_ms) as f64 / 1000.0;
        let ratio = st.requests_to_last_new_reference as f64 / phase / 200.0;
        let summary: serde_json::Value = serde_json::from_str(&m.stdout).unwrap_or_default();
        let doubt = summary["stats"]["doubt_inquiries"].as_f64().unwrap_or(f64::NAN);
        let ours = summary["stats"]["max_in_flight"].as_f64().unwrap_or(f64::NAN);
        println!(
            "P7 run {i}: {} requests in {phase:.1}s of sending = {:.1}/s: {ratio:.3} of the rate; at most {} in flight at the sandbox ({ours} by payrun's count); {doubt} inquiries on rows in doubt, {} resends; {} 429s; run {:.1}s, exit {}; paid once: {once}",
            st.requests_to_last_new_reference,
            st.requests_to_last_new_reference as f64 / phase,
            st.max_in_flight,
            summary["stats"]["resends"],
            st.rate_limited,
            m.wall.as_secs_f64(),
            m.code
        );
        ratios.push(ratio);
        peaks.push(st.max_in_flight as f64);
        doubts.push(doubt);
        walls.push(m.wall.as_secs_f64());
    }
    let (ratio, peak, doubt, wall) = (median(&mut ratios), median(&mut peaks), median(&mut doubts), median(&mut walls));
    vec![
        Row {
            id: "P7",
            measure: format!(
                "requests/s while sending ÷ rate, {rows} rows at 200/s, 4% of postings and 1% of inquiries hang"
            ),
            value: format!("{ratio:.3} (whole run {wall:.0}s)"),
            target: "≥ 0.9",
            ok: ratio >= 0.9,
        },
        Row {
            id: "P7b",
            measure: "most requests in flight at once; 429s from the gateway's limiter; paid twice".into(),
            value: format!("{peak:.0}; {limited}; {twice} runs"),
            target: "bounded; 0; 0",
            ok: limited == 0 && twice == 0,
        },
        Row {
            id: "P7c",
            measure: "status inquiries on rows in doubt (the hangs' cost)".into(),
            value: format!("{doubt:.0}"),
            target: "reported",
            ok: true,
        },
    ]
}

/// P10c: `n` processes (this benchmark again, as senders: see the module doc) sharing one
/// merchant's budget in PostgreSQL at `--rate 100 --burst 5`, each with 8 postings in flight, for
/// `PAYRUN_BENCH_P10_SECS` (6) seconds against the independent fake gateway (5-20 ms). The figures,
/// counted by the gateway: requests per second from the moment every process sends (plus 0.3 s) to
/// the deadline, ÷ rate; and the busiest one-second window (starting at any arrival) ÷ rate.
fn p10_shared_budget(runs: usize) -> Vec<Row> {
    use support::budget::{Sender, busiest, first_of, instant_of, rate_between, spawn_sender, unix_ms_in};
    use support::fake::{FakeGateway, FakeOptions};
    let rate = env_num("PAYRUN_BENCH_P10_RATE", 100) as u32;
    let burst = (rate / 20).max(1);
    let secs = env_num("PAYRUN_BENCH_P10_SECS", 6);
    let mut rows = Vec::new();
    for n in [2usize, 4] {
        let (mut used, mut peak) = (vec![], vec![]);
        for i in 0..runs {
            let db = support::pg::TestDb::new();
            payrun::journal::team::schema::migrate(&mut db.store(), "the benchmark's database").expect("migrate");
            let fake = FakeGateway::start_with(FakeOptions { latency_ms: (5, 20), behaviours: false });
            let stop_at = unix_ms_in(Duration::from_secs(secs));
            let end = instant_of(stop_at);
            let prefixes: Vec<String> = (0..n).map(|k| format!("p10s{k}r")).collect();
            let children: Vec<_> = prefixes
                .iter()
                .map(|p| {
                    let s = Sender {
                        journal: db.url(),
                        gateway: fake.url.clone(),
                        rate,
                        burst,
                        concurrency: 8,
                        prefix: p.clone(),
                        stop_at_unix_ms: stop_at,
                    };
                    spawn_sender(&["--budget-sender"], &s)
                })
                .collect();
            let mut failed = 0;
            for mut c in children {
                failed += usize::from(!c.wait().is_ok_and(|s| s.success()));
            }
            let arrivals = fake.timeline().arrivals;
            let all_sending = prefixes.iter().filter_map(|p| first_of(&arrivals, p)).max();
            let u = all_sending
                .map(|t| rate_between(&arrivals, t + Duration::from_millis(300), end) / f64::from(rate))
                .unwrap_or(f64::NAN);
            let w = busiest(&arrivals, None) as f64 / f64::from(rate);
            let parts: Vec<String> = prefixes
                .iter()
                .map(|p| {
                    arrivals.iter().filter(|a| a.call == "payout" && a.id.starts_with(p.as_str())).count().to_string()
                })
                .collect();
            println!(
                "P10c {n} processes run {i}: {} requests; summed rate {:.1}/s = {u:.3} of {rate}; busiest one-second window {} = {w:.3} of the rate (burst {burst}); postings per process {}{}",
                arrivals.len(),
                u * f64::from(rate),
                busiest(&arrivals, None),
                parts.join(" "),
                if failed > 0 { format!("; {failed} senders FAILED") } else { String::new() }
            );
            used.push(u);
            peak.push(w);
        }
        rows.push(budget_row(
            "P10c",
            format!(
                "{n} bare client processes, one merchant's shared budget, --rate {rate} --burst {burst}: summed rate ÷ rate; busiest 1 s window ÷ rate (worst run)"
            ),
            &mut used,
            &mut peak,
        ));
    }
    rows
}

/// A P10 figure from its runs: the median summed rate ÷ rate, the median busiest window ÷ rate and
/// the worst window (SPEC 8.1: at least 0.9 of the rate; no window above rate + burst, 1.05 here).
fn budget_row(id: &'static str, measure: String, used: &mut [f64], peak: &mut [f64]) -> Row {
    let worst = peak.iter().cloned().fold(f64::NAN, f64::max);
    let (u, w) = (median(used), median(peak));
    Row {
        id,
        measure,
        value: format!("{u:.3}; {w:.3} ({worst:.3})"),
        target: "≥ 0.9; ≤ 1.05",
        ok: u >= 0.9 && worst <= 1.05,
    }
}

/// P10: `n` `payrun resume` processes at `--rate 100 --burst 5` with one team journal, each driving
/// its own approved batch of `PAYRUN_BENCH_P10_ROWS` (600) ÷ `n` rows for the same merchant, against
/// the independent fake gateway (5-20 ms). The figures, counted by the gateway: requests per second
/// while every process posts payouts (from the latest first posting to the earliest last one) ÷
/// rate, and the busiest one-second window of the whole run (starting at any arrival) ÷ rate.
fn p10_payrun_processes(dir: &Path, runs: usize) -> Vec<Row> {
    use support::budget::{busiest, rate_between};
    use support::fake::{FakeGateway, FakeOptions};
    let rate = env_num("PAYRUN_BENCH_P10_RATE", 100) as u32;
    let burst = (rate / 20).max(1);
    let total_rows = env_num("PAYRUN_BENCH_P10_ROWS", 600);
    let mut rows = Vec::new();
    for n in [2usize, 4] {
        let (mut used, mut peak) = (vec![], vec![]);
        for i in 0..runs {
            let db = support::pg::TestDb::new();
            payrun::journal::team::schema::migrate(&mut db.store(), "the benchmark's database").expect("migrate");
            let (maker, checker, sender) = (
                db.member_url("maker", "payrun_maker"),
                db.member_url("checker", "payrun_checker"),
                db.member_url("sender", "payrun_sender"),
            );
            let fake = FakeGateway::start_with(FakeOptions { latency_ms: (5, 20), behaviours: false });
            let state = fresh(dir, &format!("p10-{n}-{i}"));
            std::fs::create_dir_all(&state).expect("state dir");
            let st = state.display().to_string();
            let team = |args: &[&str]| {
                let mut c = payrun(dir, args);
                c.args(["--state", st.as_str()])
                    .env_remove("PAYRUN_OPERATOR")
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped());
                c
            };
            let mut batches = Vec::new();
            for k in 0..n {
                let file = state.join(format!("p10-{k}.csv"));
                let mut text = String::from("Employee ID,Beneficiary Name,Account No,IFSC Code,Amount,Payment Mode\n");
                for r in 1..=total_rows / n as u64 {
                    text.push_str(&format!("P{k}E{r},Payee {k} {r},6{k}{r:08}00,SBIN0000001,{}.00,IMPS\n", 1000 + r));
                }
                std::fs::write(&file, text).expect("input");
                let fs = file.display().to_string();
                let out =
                    team(&["run", &fs, "--journal", &maker, "--gateway", &fake.url, "--yes"]).output().expect("run");
                let said = support::work::unwrapped(&String::from_utf8_lossy(&out.stderr));
                let id = said
                    .split("batch ")
                    .find_map(|rest| rest.split_once(" is stored and AWAITING_APPROVAL").map(|(id, _)| id.to_string()))
                    .unwrap_or_else(|| panic!("P10: the maker's run stored no batch:\n{said}"));
                let ok = team(&["approve", &id, "--batch", "--reason", "bench", "--journal", &checker])
                    .output()
                    .expect("approve");
                assert!(ok.status.success(), "P10: approve: {}", String::from_utf8_lossy(&ok.stderr));
                batches.push(id);
            }
            let (r, b) = (rate.to_string(), burst.to_string());
            let children: Vec<_> = batches
                .iter()
                .map(|id| {
                    team(&[
                        "resume",
                        id,
                        "--journal",
                        &sender,
                        "--gateway",
                        &fake.url,
                        "--yes",
                        "--rate",
                        &r,
                        "--burst",
                        &b,
                    ])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("resume")
                })
                .collect();
            let codes: Vec<String> = children
                .into_iter()
                .map(|mut c| c.wait().ok().and_then(|s| s.code()).unwrap_or(-1).to_string())
                .collect();
            let arrivals = fake.timeline().arrivals;
            let posted: Vec<Vec<Instant>> = batches
                .iter()
                .map(|id| {
                    arrivals.iter().filter(|a| a.call == "payout" && a.id.contains(id.as_str())).map(|a| a.at).collect()
                })
                .collect();
            let from = posted.iter().filter_map(|p| p.first()).max().copied();
            let to = posted.iter().filter_map(|p| p.last()).min().copied();
            let u = match (from, to) {
                (Some(f), Some(t)) if t > f => rate_between(&arrivals, f, t) / f64::from(rate),
                _ => f64::NAN,
            };
            let w = busiest(&arrivals, None) as f64 / f64::from(rate);
            let both = match (from, to) {
                (Some(f), Some(t)) if t > f => (t - f).as_secs_f64(),
                _ => 0.0,
            };
            println!(
                "P10 {n} payrun processes run {i}: {} requests, {} payouts applied; all posting for {both:.1}s at {:.1}/s = {u:.3} of {rate}; busiest one-second window {} = {w:.3} of the rate (burst {burst}); exit codes {}",
                arrivals.len(),
                fake.ledger().len(),
                u * f64::from(rate),
                busiest(&arrivals, None),
                codes.join(" ")
            );
            used.push(u);
            peak.push(w);
        }
        rows.push(budget_row(
            "P10",
            format!(
                "{n} payrun resume processes, one merchant, --rate {rate} --burst {burst}: summed rate ÷ rate while all post; busiest 1 s window ÷ rate (worst run)"
            ),
            &mut used,
            &mut peak,
        ));
    }
    rows
}

/// P9: the PostgreSQL journal (team mode) against the SQLite one, the same file against the clean
/// sandbox at no rate limit, alternating in one run. Team mode's run is its three roles' steps: the
/// maker stores the batch (`run`), a checker approves it, the sender sends it (`resume`); the
/// figure is the rows over the maker's and the sender's time together (the checker's minute at the
/// screen is not payrun's), and the sender's alone beside it.
fn p9(dir: &Path, runs: usize, table: &mut Vec<Row>) {
    let n = env_num("PAYRUN_BENCH_P9_ROWS", 20_000);
    let file = input(dir, n);
    std::fs::write(
        dir.join("p9.toml"),
        "[gateway]\ntimeout = \"10s\"\n[run]\nfirst_poll = \"5ms\"\nmax_poll_interval = \"100ms\"\n",
    )
    .expect("config");
    let (mut sqlite, mut team, mut sending) = (vec![], vec![], vec![]);
    let fs = file.display().to_string();
    for i in 0..runs {
        let sb = Sandbox::start(&["--profile", "clean", "--latency", "0"]);
        let (m, _) = run_against(dir, &sb, &file, &format!("p9-sqlite-{i}"), &UNLIMITED, Some(&dir.join("p9.toml")));
        let rate = n as f64 / m.wall.as_secs_f64();
        println!("P9 run {i}, SQLite: {n} payouts in {:.2}s = {rate:.0}/s (exit {})", m.wall.as_secs_f64(), m.code);
        sqlite.push(rate);
        drop(sb);

        let sb = Sandbox::start(&["--profile", "clean", "--latency", "0"]);
        let db = support::pg::TestDb::new();
        let owner = db.url();
        let init = payrun(dir, &["journal", "init", "--journal", &owner]).output().expect("journal init");
        assert!(init.status.success(), "journal init: {}", String::from_utf8_lossy(&init.stdout));
        let roles: Vec<String> =
            ["maker", "checker", "sender"].iter().map(|part| db.member_url(part, &format!("payrun_{part}"))).collect();
        let state = fresh(dir, &format!("p9-team-{i}"));
        let st = state.display().to_string();
        let url = sb.url();
        let team_cmd = |journal: &str, args: &[&str]| {
            let mut all: Vec<&str> = args.to_vec();
            all.extend(["--journal", journal, "--state", st.as_str()]);
            let mut c = payrun(dir, &all);
            c.env("PAYRUN_CONFIG", dir.join("p9.toml")).env_remove("PAYRUN_OPERATOR");
            c
        };
        let mut args = vec!["run", fs.as_str(), "--gateway", url.as_str(), "--yes", "--json"];
        args.extend_from_slice(&UNLIMITED);
        let stored = measure(&mut team_cmd(&roles[0], &args));
        assert_eq!(stored.code, 2, "the maker's run stops awaiting approval");
        let batch = serde_json::from_str::<serde_json::Value>(&stored.stdout)
            .ok()
            .and_then(|v| v["batch"].as_str().map(str::to_string))
            .expect("batch id");
        let approved =
            team_cmd(&roles[1], &["approve", &batch, "--batch", "--reason", "bench"]).output().expect("approve");
        assert!(approved.status.success(), "approve");
        let mut args = vec!["resume", batch.as_str(), "--yes", "--json"];
        args.extend_from_slice(&UNLIMITED);
        let sent = measure(&mut team_cmd(&roles[2], &args));
        let both = stored.wall + sent.wall;
        let rate = n as f64 / both.as_secs_f64();
        let send_rate = n as f64 / sent.wall.as_secs_f64();
        println!(
            "P9 run {i}, PostgreSQL: {n} payouts in {:.2}s (store {:.2}s + send {:.2}s) = {rate:.0}/s; sending alone {send_rate:.0}/s (exit {})",
            both.as_secs_f64(),
            stored.wall.as_secs_f64(),
            sent.wall.as_secs_f64(),
            sent.code
        );
        team.push(rate);
        sending.push(send_rate);
    }
    let (t, q, snd) = (median(&mut team), median(&mut sqlite), median(&mut sending));
    table.push(Row {
        id: "P9",
        measure: format!("payouts/s end to end, PostgreSQL journal, {n} rows, clean sandbox, no limit"),
        value: format!("{t:.0}/s (sending alone {snd:.0}/s); SQLite in the same run {q:.0}/s"),
        target: "≥ 1,000/s",
        ok: t >= 1000.0,
    });
}
