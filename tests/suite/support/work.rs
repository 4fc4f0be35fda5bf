//! Running the `payrun` binary as an operator would, in a temporary directory of its own: the
//! working directory, `payrun.toml`, and a state directory that is never the user's real journal
//! (`PAYRUN_STATE` and `XDG_DATA_HOME` point inside the temporary directory even when a test
//! forgets `--state`). Reading what it wrote: CSV files, result rows, the embedded world.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{BIN, EXAMPLE_CREDS};

/// A fast configuration: short client timeout and poll schedule.
pub const CONFIG: &str = "[gateway]\ntimeout = \"1s\"\n[run]\nfirst_poll = \"100ms\"\nmax_poll_interval = \"500ms\"\nresend_grace = \"600ms\"\n";

/// Columns payrun appends to the input's, as SPEC section 5 lists them (written out here, not
/// taken from the library, so a change to the library's list fails the tests).
pub const RESULT_COLUMNS: [&str; 10] = [
    "external_ref",
    "amount_inr",
    "status",
    "code",
    "message",
    "gateway_ref",
    "utr",
    "submitted_at",
    "completed_at",
    "attempts",
];

/// A file of the repo's `samples/`.
pub fn sample(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("samples").join(name)
}

/// A path as an argument.
pub fn s(p: &Path) -> String {
    p.display().to_string()
}

/// Text as it was before payrun wrapped it to 80 columns: every continuation line (indented two
/// columns more than the line it continues) joined to that line with one space. For checking a
/// message's words; never for checking its width.
pub fn unwrapped(text: &str) -> String {
    let indent = |l: &str| l.len() - l.trim_start_matches(' ').len();
    let mut out: Vec<(usize, String)> = Vec::new();
    for line in text.lines() {
        match out.last_mut() {
            Some((base, last)) if !line.trim().is_empty() && indent(line) == *base + 2 => {
                last.push(' ');
                last.push_str(line.trim());
            }
            _ => out.push((indent(line), line.to_string())),
        }
    }
    out.into_iter().map(|(_, l)| l + "\n").collect()
}

/// One test's working directory: `payrun.toml` and, by convention, the state directory `S`.
pub struct Work {
    pub dir: tempfile::TempDir,
}

/// What a finished command left.
#[derive(Debug)]
pub struct Out {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}\nstderr:\n{}", self.stdout, self.stderr))
    }
    pub fn expect_code(&self, code: i32, what: &str) -> &Out {
        assert_eq!(self.code, Some(code), "{what}: exit code\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }
}

impl Work {
    pub fn new() -> Work {
        Work::with_config(CONFIG)
    }

    pub fn with_config(config: &str) -> Work {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("payrun.toml"), config).expect("config");
        Work { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `payrun ARGS` in this directory, with this directory's config, no gateway credentials from
    /// the environment of the test process, stdin not a terminal, and a default state directory
    /// inside this directory.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args)
            .current_dir(self.path())
            .env("PAYRUN_CONFIG", self.path().join("payrun.toml"))
            .env("PAYRUN_STATE", self.path().join("default-state"))
            .env("XDG_DATA_HOME", self.path().join("xdg-data"))
            .env("PAYRUN_OPERATOR", "test-operator")
            .env_remove("PAYRUN_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, _) in EXAMPLE_CREDS {
            c.env_remove(k);
        }
        c
    }

    /// The same, with the API document's example credentials (for a separately started sandbox).
    pub fn cmd_with_creds(&self, args: &[&str]) -> Command {
        let mut c = self.cmd(args);
        c.envs(EXAMPLE_CREDS);
        c
    }

    pub fn run(&self, args: &[&str]) -> Out {
        exec(self.cmd(args))
    }

    pub fn run_with_creds(&self, args: &[&str]) -> Out {
        exec(self.cmd_with_creds(args))
    }
}

pub fn exec(mut c: Command) -> Out {
    let o = c.output().expect("run payrun");
    Out {
        code: o.status.code(),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// A CSV file as its header and records.
pub fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let header = rdr.headers().expect("header").iter().map(str::to_string).collect();
    let rows = rdr.records().map(|r| r.expect("record").iter().map(str::to_string).collect()).collect();
    (header, rows)
}

/// The result file as rows of column → cell.
pub fn result_rows(path: &Path) -> Vec<HashMap<String, String>> {
    let (header, rows) = read_csv(path);
    rows.into_iter().map(|r| header.iter().cloned().zip(r).collect()).collect()
}

pub fn count_status(rows: &[HashMap<String, String>], status: &str) -> usize {
    rows.iter().filter(|r| r["status"] == status).count()
}

pub fn status_count(summary: &serde_json::Value, status: &str) -> u64 {
    summary["status_totals"][status]["count"].as_u64().unwrap_or_else(|| panic!("no {status} count in {summary}"))
}

pub fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
}

/// The embedded sandbox's world as it keeps it under `<state>/sandbox/world.jsonl`: reference →
/// (times applied, account), the last record of each reference winning.
pub fn embedded_world(state: &Path) -> HashMap<String, (u64, String)> {
    let text = std::fs::read_to_string(state.join("sandbox").join("world.jsonl")).expect("embedded sandbox world");
    let mut out = HashMap::new();
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        if v["kind"] != "payout" || v["foreign"] == true {
            continue;
        }
        out.insert(
            v["reference"].as_str().unwrap_or_default().to_string(),
            (v["times_applied"].as_u64().unwrap_or(0), v["account"].as_str().unwrap_or_default().to_string()),
        );
    }
    out
}
