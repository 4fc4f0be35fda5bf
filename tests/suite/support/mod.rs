//! What the process-level tests and the benchmark share: the payrun binary, the API document's
//! example credentials, and a `payrun sandbox` child process with a tiny HTTP client for its
//! `/__sandbox/*` instruments. Included by `tests/*.rs` as `mod support;` and by the benchmark by
//! path; each user needs only part of it.
#![allow(dead_code)]

pub mod budget;
pub mod chaos;
pub mod desk;
pub mod fake;
pub mod input;
pub mod pg;
pub mod work;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

/// The payrun binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_payrun");

/// The API document's example credentials, as `ATMOON_*` variables.
pub const EXAMPLE_CREDS: [(&str, &str); 5] = [
    ("ATMOON_ACCESS_KEY", "51a4bd18-5bc1-4eaa-97b0-c09323398883"),
    ("ATMOON_MERCHANT_KEY", "41d9eda4b67538fc8ad27e564ddde1bb7b20ad08"),
    ("ATMOON_CLIENT_ID", "61662"),
    ("ATMOON_API_PASSWORD", "a90db387a3e3b8a22d923966326327c17e9a6ed6"),
    ("ATMOON_USER_ID", "172"),
];

/// A number from the environment (underscores allowed: `10_000`), else `default`.
pub fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.replace('_', "").parse().ok()).unwrap_or(default)
}

/// A `payrun sandbox` child on a free loopback port; killed when dropped. Its stdout stays open
/// (the banner after the first line must not meet a closed pipe).
pub struct Sandbox {
    child: Child,
    _stdout: BufReader<std::process::ChildStdout>,
    pub addr: String,
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Sandbox {
    /// Starts `payrun sandbox --addr 127.0.0.1:0 ARGS...` and reads its `listening on ADDR` line.
    pub fn start(args: &[&str]) -> Sandbox {
        let mut child = Command::new(BIN)
            .args(["sandbox", "--addr", "127.0.0.1:0"])
            .args(args)
            .env_remove("PAYRUN_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start sandbox");
        let mut line = String::new();
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        stdout.read_line(&mut line).expect("first line");
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .to_string();
        Sandbox { child, _stdout: stdout, addr }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `METHOD path` over plain HTTP/1.0, the body parsed as JSON.
    pub fn request_json(&self, method: &str, path: &str) -> serde_json::Value {
        let mut s = TcpStream::connect(&self.addr).expect("connect");
        write!(s, "{method} {path} HTTP/1.0\r\nHost: {}\r\nContent-Length: 0\r\n\r\n", self.addr).expect("write");
        let mut text = String::new();
        s.read_to_string(&mut text).expect("read");
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{path} is not JSON ({e}): {body:.200}"))
    }

    pub fn get_json(&self, path: &str) -> serde_json::Value {
        self.request_json("GET", path)
    }

    /// The payouts applied for clients (not the sandbox's own "foreign" ones).
    pub fn applied(&self) -> Vec<serde_json::Value> {
        let ledger = self.get_json("/__sandbox/ledger");
        ledger["payouts"].as_array().expect("payouts").iter().filter(|p| p["foreign"] != true).cloned().collect()
    }
}
