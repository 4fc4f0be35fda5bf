//! What the kill -9 tests share (`crash.rs` with a SQLite journal, `team::crash` with the team's
//! PostgreSQL one): a replayable random source, the input file they pay, a child killed at a random
//! moment, and the judgement of a result file against the `payrun sandbox` ledger.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

use payrun::money::Amount;

/// xorshift64*: enough randomness for kill times and amounts, replayable from the seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

/// `PAYRUN_CRASH_SEED`, else one from the clock (odd, never 0).
pub fn seed() -> u64 {
    super::env_num(
        "PAYRUN_CRASH_SEED",
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1)
            | 1,
    )
}

pub const HEADER: &str = "Name,Account Number,IFSC,Amount,Mode,Remarks\n";

/// Writes `rows` payees (`Payee 1`, account `7` + 11 digits of the row number, random amounts and
/// modes) to `path` with the header; returns the data lines.
pub fn write_input(path: &Path, rows: u64, rng: &mut Rng) -> Vec<String> {
    const IFSC: [&str; 6] = ["SBIN0000001", "HDFC0000003", "ICIC0000001", "UTIB0000001", "PUNB0000010", "KKBK0000141"];
    let mut lines = Vec::new();
    for i in 1..=rows {
        let paise = rng.range(10_000, 9_999_999);
        let mode = if rng.range(0, 1) == 0 { "IMPS" } else { "NEFT" };
        lines.push(format!(
            "Payee {i},7{i:011},{},{}.{:02},{mode},crash test\n",
            IFSC[(i % 6) as usize],
            paise / 100,
            paise % 100
        ));
    }
    std::fs::write(path, format!("{HEADER}{}", lines.concat())).expect("write input");
    lines
}

/// Lets `child` run for a random 50-1500 ms, then kills it with SIGKILL. `None` when it was
/// killed; its exit status when it ended by itself first.
pub fn kill_at_random(mut child: Child, rng: &mut Rng) -> Option<ExitStatus> {
    let wait = Duration::from_millis(rng.range(50, 1500));
    let t = Instant::now();
    while t.elapsed() < wait {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    None
}

/// The payouts of a `payrun sandbox` ledger document made for clients (not its planted foreign
/// ones), by reference. Panics when a reference was applied twice.
pub fn applied_by_ref(ledger: &serde_json::Value) -> HashMap<String, serde_json::Value> {
    let mut by_ref = HashMap::new();
    for p in ledger["payouts"].as_array().expect("payouts").iter().filter(|p| p["foreign"] != true) {
        assert_eq!(p["times_applied"], 1, "applied more than once: {p}");
        let reference = p["reference"].as_str().unwrap_or_default().to_string();
        assert!(by_ref.insert(reference, p.clone()).is_none(), "reference applied twice: {p}");
    }
    by_ref
}

/// What a result file came to, checked against the ledger.
#[derive(Debug, Default)]
pub struct Judged {
    /// Data rows in the result.
    pub rows: u64,
    pub statuses: HashMap<String, u64>,
    /// The SUCCESS rows' amounts.
    pub success_total: Amount,
}

/// Reads the result file of a batch of [`write_input`]'s rows and checks it against `by_ref` (the
/// ledger's payouts): every row is there, in input order; a row whose account is in `held` is HELD
/// and was never applied; every other row was applied (to its own account, for its amount) and has
/// the ledger's status.
pub fn judge_result(result: &Path, by_ref: &HashMap<String, serde_json::Value>, held: &HashSet<String>) -> Judged {
    let mut rdr = csv::Reader::from_path(result).expect("result");
    let headers = rdr.headers().expect("headers").clone();
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap_or_else(|| panic!("no column {name}"));
    let (c_ref, c_status, c_amount, c_account, c_name) =
        (col("external_ref"), col("status"), col("Amount"), col("Account Number"), col("Name"));
    let mut judged = Judged { success_total: Amount::ZERO, ..Judged::default() };
    for rec in rdr.records() {
        let rec = rec.expect("record");
        judged.rows += 1;
        let n = judged.rows;
        assert_eq!(&rec[c_name], format!("Payee {n}"), "rows in input order");
        let status = rec[c_status].to_string();
        *judged.statuses.entry(status.clone()).or_default() += 1;
        if held.contains(&rec[c_account]) {
            assert_eq!(status, "HELD", "row {n}: a repeat of an earlier batch, never approved");
            assert!(!by_ref.contains_key(&rec[c_ref]), "row {n}: held, yet applied");
            continue;
        }
        assert_ne!(status, "HELD", "row {n}: held without a reason");
        let l = by_ref.get(&rec[c_ref]).unwrap_or_else(|| panic!("row {n} ({status}) is not in the ledger"));
        assert_eq!(l["account"].as_str(), Some(&rec[c_account]), "row {n}: the ledger's payout is this row's");
        assert_eq!(l["state"].as_str(), Some(status.as_str()), "row {n}: result {status}, ledger {}", l["state"]);
        let amount = Amount::parse_cell(&rec[c_amount]).expect("amount");
        let ledger_amount: Amount = l["amount"].as_str().and_then(|a| a.parse().ok()).expect("ledger amount");
        assert_eq!(amount, ledger_amount, "row {n}: amount paid");
        if status == "SUCCESS" {
            judged.success_total += amount;
        }
    }
    judged
}

/// The SUCCESS total of the ledger's payouts whose reference starts with `prefix`.
pub fn ledger_success_total(by_ref: &HashMap<String, serde_json::Value>, prefix: &str) -> Amount {
    let mut total = Amount::ZERO;
    for (reference, p) in by_ref {
        if reference.starts_with(prefix) && p["state"] == "SUCCESS" {
            total += p["amount"].as_str().and_then(|a| a.parse::<Amount>().ok()).expect("amount");
        }
    }
    total
}
