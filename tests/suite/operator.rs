//! The operator's first day (issue 11): every message true, complete and copy-pasteable.
//!
//! - every usage error (a mistyped flag, a missing argument, a bad value) exits 1, never 2;
//! - the command printed after a declined start works when pasted, with a `--state` that is not
//!   the default (a folder name with a space in it);
//! - credentials are checked before the operator is asked anything, and a confirmation counts
//!   only for a batch that then started sending;
//! - the ETA of a run at a fixed rate is within a factor of two of the time it really took, once
//!   a tenth of the rows are final;
//! - on a terminal (a pseudo-terminal 80 columns wide) no line is longer than 80 characters and
//!   the summary has colour; with `NO_COLOR` or piped, it has none;
//! - at 80 columns (issue 19) nothing wraps inside a word or is cut: validate's messages, the hold
//!   lines with the real lines to approve, `status` laid out from its cells, the sandbox's banner,
//!   every frame of the progress display (a small terminal emulator keeps each frame) and the
//!   reasons of the rows that need someone; once everything is sent the progress says what it waits
//!   for, not an ETA;
//! - one exit-code table in `payrun --help`, `run --help` and `resume --help`;
//! - a closed stdout, or a stderr closed in the middle of a batch, never stops or crashes it
//!   (issue 16): the usual exit code, every row final.

use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::support::work::{Out, Work, exec};
use crate::support::{BIN, Sandbox};

fn sample(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("samples").join(name)
}

#[test]
fn every_usage_error_exits_1_and_help_exits_0() {
    let w = Work::new();
    let salary = sample("salary-2026-11.csv").display().to_string();
    for args in [
        vec!["run", "--bogus", "x"],
        vec!["run"],
        vec!["frobnicate"],
        vec!["run", &salary, "--rate", "0"],
        vec!["run", &salary, "--rate", "fast"],
        vec!["run", &salary, "--yes", "--confirm-total", "10"],
        vec!["approve", "abcd"],
        vec!["approve", "abcd", "--rows", "2"],
        vec!["resolve", "abcd", "--row", "x", "--as", "paid", "--reason", "r"],
        vec!["resolve", "abcd", "--row", "2", "--as", "maybe", "--reason", "r"],
        vec!["audit"],
        vec!["validate", &salary, "--no-such-flag"],
        vec!["sandbox", "--profile", "nonsense"],
    ] {
        let o = w.run(&args);
        o.expect_code(1, &format!("{args:?}"));
        assert!(!o.stderr.is_empty(), "{args:?}: says why");
    }
    for args in [vec!["--help"], vec!["run", "--help"], vec!["--version"]] {
        w.run(&args).expect_code(0, &format!("{args:?}"));
    }
    let help = w.run(&["run", "--help"]);
    assert!(help.stdout.contains("Exit codes") && help.stdout.contains("HELD"), "{}", help.stdout);
}

/// The exit-code table of `payrun --help`, `run --help` and `resume --help` (issue 19): one table,
/// the same everywhere, true to what the commands do (0 only when every valid row is SUCCESS).
#[test]
fn the_exit_codes_are_one_table_in_every_help() {
    let w = Work::new();
    let table = |args: &[&str]| -> String {
        let o = w.run(args);
        o.expect_code(0, &format!("{args:?}"));
        let at = o.stdout.find("Exit codes:").unwrap_or_else(|| panic!("{args:?}: no exit codes:\n{}", o.stdout));
        o.stdout[at..].trim_end().to_string()
    };
    let top = table(&["--help"]);
    assert_eq!(table(&["run", "--help"]), top);
    assert_eq!(table(&["resume", "--help"]), top);
    let flat = top.replace("\n     ", " ");
    for line in [
        "0  every valid row reached SUCCESS (validate: no row has an error)",
        "1  usage or input error",
        "2  the batch ran, but some rows need someone: FAILED, PENDING, HELD, or INVALID and skipped by --skip-invalid",
        "3  aborted (credentials refused, gateway unreachable, journal lost, Ctrl-C): rows not sent stay resumable",
    ] {
        assert!(flat.contains(line), "{line:?} in:\n{top}");
    }
    assert!(!top.contains("final status"), "FAILED is final and exits 2:\n{top}");
    for l in top.lines() {
        assert!(l.chars().count() <= 80, "{l:?}");
    }
}

/// The first command printed on lines of its own in `text` (continued with ` \\`), as one line.
fn quoted_command(text: &str) -> String {
    let mut lines = text.lines().skip_while(|l| !l.trim_start().starts_with("payrun "));
    let mut command = lines.next().unwrap_or_else(|| panic!("no command in:\n{text}")).trim().to_string();
    while let Some(head) = command.strip_suffix(" \\") {
        let next = lines.next().expect("the continued line");
        command = format!("{head} {}", next.trim());
    }
    command
}

/// Runs a printed `payrun ...` command through a shell, as an operator pasting it would.
fn paste(w: &Work, command: &str, extra: &str) -> Out {
    let line = format!("{} {extra}", command.replacen("payrun", &format!("'{BIN}'"), 1));
    let mut c = w.cmd_with_creds(&[]);
    c.env_remove("PAYRUN_STATE");
    let mut sh = Command::new("sh");
    sh.arg("-c").arg(&line).current_dir(w.path()).stdin(Stdio::null());
    for (k, v) in c.get_envs() {
        match v {
            Some(v) => sh.env(k, v),
            None => sh.env_remove(k),
        };
    }
    sh.env_remove("PAYRUN_STATE");
    exec(sh)
}

#[test]
fn the_printed_commands_work_when_pasted_with_a_state_that_is_not_the_default() {
    let sb = Sandbox::start(&["--profile", "clean"]);
    let w = Work::new();
    let vendors = sample("vendors-2026-11.csv").display().to_string();
    let state = w.path().join("my state");
    let state_s = state.display().to_string();
    // No terminal and no --yes: stored, nothing sent; the printed command continues it.
    let first = w.run_with_creds(&["run", &vendors, "--gateway", &sb.url(), "--state", &state_s]);
    first.expect_code(1, "not confirmed");
    assert!(first.stderr.contains("nothing sent"), "{}", first.stderr);
    let command = quoted_command(&first.stderr);
    assert!(command.contains("--state '"), "the non-default state, quoted: {command}");
    assert!(sb.applied().is_empty());
    // A wrong --confirm-total prints it too.
    let wrong = paste(&w, &command, "--confirm-total 1");
    wrong.expect_code(1, "a wrong total");
    assert!(wrong.stderr.contains("does not match"), "{}", wrong.stderr);
    assert_eq!(quoted_command(&wrong.stderr), command);
    // Pasted as printed, with the confirmation: it pays.
    let pasted = paste(&w, &command, "--yes");
    pasted.expect_code(0, "the pasted command");
    assert_eq!(sb.applied().len(), 40);
    // And the hint after a finished run's refusal names the same state directory.
    let again = w.run_with_creds(&["status", "--state", &state_s]);
    again.expect_code(0, "status");
    assert!(again.stdout.contains("my state"), "{}", again.stdout);
}

#[test]
fn credentials_are_checked_before_the_operator_is_asked() {
    let sb = Sandbox::start(&["--profile", "clean", "--api-password", "the-right-one"]);
    let w = Work::new();
    let vendors = sample("vendors-2026-11.csv").display().to_string();
    // The document's example password is wrong for this gateway: refused before any prompt.
    let refused = w.run_with_creds(&["run", &vendors, "--gateway", &sb.url(), "--state", "S"]);
    refused.expect_code(3, "credentials refused");
    assert!(!refused.stderr.contains("about to pay"), "asked before checking:\n{}", refused.stderr);
    assert!(!refused.stderr.contains("Send these payouts"), "{}", refused.stderr);
    assert!(refused.stderr.contains("refused the credentials"), "{}", refused.stderr);
    assert!(!refused.stdout.contains("posting"), "no stats of postings never made: {}", refused.stdout);
    // Also with --yes: nothing sent, and the confirmation is not kept for later.
    let mut c = w.cmd_with_creds(&["run", &vendors, "--gateway", &sb.url(), "--state", "S", "--yes"]);
    c.env("ATMOON_API_PASSWORD", "wrong-again");
    exec(c).expect_code(3, "refused with --yes");
    assert!(sb.applied().is_empty());
    // The right credentials: asked again (no terminal here, so refused for want of --yes).
    let mut c = w.cmd_with_creds(&["resume", &vendors, "--state", "S"]);
    c.env("ATMOON_API_PASSWORD", "the-right-one");
    let asked = exec(c);
    asked.expect_code(1, "asks again");
    assert!(asked.stderr.contains("about to pay") && asked.stderr.contains("confirm with --yes"), "{}", asked.stderr);
    assert!(sb.applied().is_empty(), "nothing sent without a confirmation");
}

/// `[    5s] 15/200 final · ... · ETA 38s` → (elapsed s, final, ETA s).
fn progress_line(line: &str) -> Option<(f64, u64, f64)> {
    let rest = line.strip_prefix('[')?;
    let (elapsed, rest) = rest.split_once("s]")?;
    let elapsed: f64 = elapsed.trim().parse().ok()?;
    let done: u64 = rest.trim().split('/').next()?.parse().ok()?;
    let eta = line.split("· ETA ").nth(1)?;
    let secs = parse_short(eta.trim())?;
    Some((elapsed, done, secs))
}

fn parse_short(t: &str) -> Option<f64> {
    if let Some((m, s)) = t.split_once('m') {
        return Some(m.parse::<f64>().ok()? * 60.0 + s.trim_end_matches('s').parse::<f64>().ok()?);
    }
    t.trim_end_matches('s').parse().ok()
}

#[test]
fn the_eta_is_within_a_factor_of_two_of_the_real_time() {
    let w = Work::new();
    let salary = sample("salary-2026-11.csv").display().to_string();
    let mut c = w.cmd(&["run", &salary, "--state", "S", "--sandbox-profile", "clean", "--rate", "40", "--burst", "1"]);
    c.env("PAYRUN_PROGRESS_EVERY", "500ms");
    let out = exec(c);
    out.expect_code(0, "paid");
    let total: f64 = out
        .stdout
        .split(" in ")
        .last()
        .and_then(|t| t.trim().trim_end_matches('s').parse().ok())
        .unwrap_or_else(|| panic!("no total time in:\n{}", out.stdout));
    assert!(total > 8.0, "200 rows at 40 requests/s take at least 10 s: {total}");
    let mut checked = 0;
    // A report that does not fit 80 columns goes on over indented lines: read them as one.
    let mut reports: Vec<String> = Vec::new();
    for line in out.stderr.lines() {
        assert!(line.chars().count() <= 80, "the plain progress lines fit 80 columns: {line:?}");
        match reports.last_mut() {
            Some(last) if line.starts_with("  ") => {
                last.push_str(" · ");
                last.push_str(line.trim());
            }
            _ => reports.push(line.to_string()),
        }
    }
    for line in &reports {
        let Some((elapsed, done, eta)) = progress_line(line) else { continue };
        if done < 20 {
            continue;
        }
        let left = total - elapsed;
        assert!(
            eta <= 2.0 * left + 1.5 && eta >= left / 2.0 - 1.5,
            "at {elapsed}s ({done}/200 final) the ETA was {eta}s, the run took {left:.1}s more:\n{line}"
        );
        checked += 1;
    }
    assert!(checked >= 5, "progress lines with an ETA once 10% were final:\n{}", out.stderr);
}

/// Runs `args` with stdout and stderr on a pseudo-terminal `cols` wide; what it showed.
fn on_a_terminal(w: &Work, args: &[&str], cols: u16, env: &[(&str, &str)]) -> (Option<i32>, String) {
    let (master, slave) = pty(cols);
    let mut c = w.cmd(args);
    c.envs(env.iter().copied());
    c.stdout(Stdio::from(slave.try_clone().expect("dup"))).stderr(Stdio::from(slave));
    let mut child = c.spawn().expect("spawn");
    drop(c);
    let mut reader = std::fs::File::from(master);
    let mut bytes = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match reader.read(&mut buf) {
            Ok(0) | Err(_) => break, // EIO once the last writer is gone
            Ok(n) => bytes.extend_from_slice(&buf[..n]),
        }
    }
    let status = child.wait().expect("wait");
    (status.code(), String::from_utf8_lossy(&bytes).into_owned())
}

/// A pseudo-terminal `cols` wide: (master, slave). Both ends are opened close-on-exec, so a child
/// that another test spawns meanwhile does not inherit the slave and keep the master from ever
/// reading end-of-file; the child given it as stdout gets its own copy, which exec keeps.
fn pty(cols: u16) -> (OwnedFd, OwnedFd) {
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
    // SAFETY: posix_openpt returns a new descriptor (or -1), which is owned here alone.
    let master = unsafe { libc::posix_openpt(flags) };
    assert!(master >= 0, "posix_openpt");
    // SAFETY: as above.
    let master = unsafe { OwnedFd::from_raw_fd(master) };
    let mut name = [0 as libc::c_char; 128];
    // SAFETY: grantpt/unlockpt take the master just opened; ptsname_r writes at most name.len() bytes.
    let rc = unsafe {
        libc::grantpt(master.as_raw_fd())
            | libc::unlockpt(master.as_raw_fd())
            | libc::ptsname_r(master.as_raw_fd(), name.as_mut_ptr(), name.len())
    };
    assert_eq!(rc, 0, "grantpt/unlockpt/ptsname_r");
    // SAFETY: name is NUL-terminated by ptsname_r; open returns a new descriptor (or -1).
    let slave = unsafe { libc::open(name.as_ptr(), flags) };
    assert!(slave >= 0, "open the slave");
    // SAFETY: as above.
    let slave = unsafe { OwnedFd::from_raw_fd(slave) };
    let size = libc::winsize { ws_row: 50, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCSWINSZ reads one winsize from the pointer given.
    let rc = unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSWINSZ, &size) };
    assert_eq!(rc, 0, "set the window size");
    (master, slave)
}

fn has_colour(text: &str) -> bool {
    let b = text.as_bytes();
    (0..b.len()).any(|i| {
        b[i] == 0x1b
            && b.get(i + 1) == Some(&b'[')
            && b[i + 2..].iter().position(|x| !(x.is_ascii_digit() || *x == b';')).is_some_and(|p| b[i + 2 + p] == b'm')
    })
}

#[test]
fn on_an_80_column_terminal_every_line_fits_and_colour_is_shown_unless_no_color() {
    let w = Work::new();
    let magic = sample("sandbox-magic.csv").display().to_string();
    let args =
        ["run", magic.as_str(), "--state", "S", "--sandbox-profile", "clean", "--rate", "2000", "--poll-timeout", "3s"];
    let (code, shown) = on_a_terminal(&w, &args, 80, &[]);
    assert_eq!(code, Some(2), "{shown}");
    // Every line ever shown, frames of the progress display included, within 80 columns.
    let (lines, overflows) = screen(&shown, 80);
    assert!(overflows.is_empty(), "lines longer than 80 columns: {overflows:#?}");
    for l in &lines {
        assert!(width_of(l) <= 80, "{} columns: {l:?}", width_of(l));
    }
    assert!(lines.iter().any(|l| l.contains("FAILED")), "{shown}");
    assert!(has_colour(&shown), "colour on a terminal:\n{shown}");

    // NO_COLOR: the same run (the finished batch is reported again) has no colour.
    let (_, plain) = on_a_terminal(&w, &["report", &magic, "--state", "S", "--out", "r.csv"], 80, &[("NO_COLOR", "1")]);
    assert!(!has_colour(&plain), "NO_COLOR:\n{plain}");
    assert!(plain.contains("FAILED"), "{plain}");
    let (_, coloured) = on_a_terminal(&w, &["report", &magic, "--state", "S", "--out", "r.csv"], 80, &[]);
    assert!(has_colour(&coloured), "{coloured}");
    // Piped: none either.
    let piped = w.run(&["report", &magic, "--state", "S", "--out", "r.csv"]);
    assert!(!piped.stdout.contains('\u{1b}') && !piped.stderr.contains('\u{1b}'), "{piped:?}");
}

/// Every row of the batch in `state` is final (the run went on to the end), per `payrun status`.
fn every_row_final(w: &Work, batch: &str, state: &str) {
    let st = w.run(&["status", batch, "--state", state, "--json"]);
    st.expect_code(0, "status");
    let doc = st.json();
    assert_eq!(doc["open"], 0, "every row final: {doc}");
    assert!(doc["finished_at"].is_string(), "the batch finished: {doc}");
    assert_eq!(doc["status_totals"]["SUCCESS"]["count"], 200, "{doc}");
}

/// The batch id of `file` (as `payrun status FILE --json` finds it).
fn batch_of(w: &Work, file: &str, state: &str) -> String {
    let st = w.run(&["status", file, "--state", state, "--json"]);
    st.expect_code(0, "status of the file");
    st.json()["batch"].as_str().expect("batch id").to_string()
}

/// Issue 16: `payrun run FILE | head -4` exited 101 (a panic in println! on a closed pipe). With
/// stdout closed before anything is printed on it, the batch goes on to the end and exits with
/// its usual code; nothing panics.
#[test]
fn a_closed_stdout_never_stops_or_crashes_a_batch() {
    let w = Work::new();
    let salary = sample("salary-2026-11.csv").display().to_string();
    let args = ["run", salary.as_str(), "--state", "S", "--sandbox-profile", "clean", "--rate", "400"];
    // The reader goes away at once, as `head` does after its lines: every write to stdout fails.
    let mut child = w.cmd(&args).spawn().expect("spawn");
    drop(child.stdout.take());
    let mut err = String::new();
    child.stderr.take().expect("stderr").read_to_string(&mut err).expect("read stderr");
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(0), "the usual code, never 101:\n{err}");
    assert!(!err.contains("panicked"), "{err}");
    every_row_final(&w, &batch_of(&w, &salary, "S"), "S");
    // `--json` and `status` print on a closed stdout too, and exit as usual.
    for args in [vec!["status", "--state", "S"], vec!["report", salary.as_str(), "--state", "S", "--out", "r.csv"]] {
        let mut child = w.cmd(&args).spawn().expect("spawn");
        drop(child.stdout.take());
        let mut err = String::new();
        child.stderr.take().expect("stderr").read_to_string(&mut err).expect("read stderr");
        assert_eq!(child.wait().expect("wait").code(), Some(0), "{args:?}: {err}");
    }
}

/// The same with stderr (progress lines, messages) closed in the middle of the batch, after a few
/// progress lines were read.
#[test]
fn a_stderr_closed_mid_batch_never_stops_or_crashes_it() {
    let w = Work::new();
    let salary = sample("salary-2026-11.csv").display().to_string();
    let args = ["run", salary.as_str(), "--state", "S", "--sandbox-profile", "clean", "--rate", "100"];
    let mut c = w.cmd(&args);
    c.env("PAYRUN_PROGRESS_EVERY", "50ms");
    let mut child = c.spawn().expect("spawn");
    let mut stderr = std::io::BufReader::new(child.stderr.take().expect("stderr"));
    let mut seen = Vec::new();
    while seen.len() < 4 {
        let mut line = String::new();
        if std::io::BufRead::read_line(&mut stderr, &mut line).expect("read") == 0 {
            break;
        }
        seen.push(line);
    }
    assert!(seen.iter().any(|l| l.contains(" final · ")), "progress lines before the close: {seen:?}");
    drop(stderr);
    let mut out = String::new();
    child.stdout.take().expect("stdout").read_to_string(&mut out).expect("read stdout");
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(0), "the usual code, never 101:\n{out}");
    assert!(out.contains("control check: OK"), "the summary on stdout:\n{out}");
    every_row_final(&w, &batch_of(&w, &salary, "S"), "S");
}

/// Columns a line takes on a terminal (`unicode-width`: `₹` is one, `█` one).
fn width_of(line: &str) -> usize {
    unicode_width::UnicodeWidthStr::width(line)
}

/// What a terminal `cols` wide showed for `raw`: every line it ever showed, frames of the progress
/// display included (a line is kept when it is erased or redrawn, and at the end), and the lines
/// that ran past the right edge (the terminal wrapped them itself). A small terminal: printable
/// characters with auto-wrap, CR, LF, and the cursor and erase sequences indicatif uses.
fn screen(raw: &str, cols: usize) -> (Vec<String>, Vec<String>) {
    let mut rows: Vec<Vec<char>> = vec![Vec::new()];
    let (mut r, mut c) = (0usize, 0usize);
    let mut shown: Vec<String> = Vec::new();
    let mut overflows: Vec<String> = Vec::new();
    let text = |row: &[char]| row.iter().collect::<String>().trim_end().to_string();
    let mut chars = raw.chars().peekable();
    while let Some(ch) = chars.next() {
        while rows.len() <= r {
            rows.push(Vec::new());
        }
        match ch {
            '\u{1b}' => {
                if chars.peek() != Some(&'[') {
                    continue;
                }
                chars.next();
                let mut param = String::new();
                let mut fin = ' ';
                for d in chars.by_ref() {
                    if ('@'..='~').contains(&d) {
                        fin = d;
                        break;
                    }
                    param.push(d);
                }
                let n: usize = param.trim_start_matches('?').parse().unwrap_or(1).max(1);
                match fin {
                    'A' => r = r.saturating_sub(n),
                    'B' => r += n,
                    'C' => c = (c + n).min(cols),
                    'D' => c = c.saturating_sub(n),
                    'G' => c = n - 1,
                    'K' => {
                        let row = &mut rows[r];
                        if !text(row).is_empty() {
                            shown.push(text(row));
                        }
                        if param == "2" || param == "1" {
                            row.clear();
                        } else {
                            row.truncate(c);
                        }
                    }
                    _ => {}
                }
            }
            '\r' => c = 0,
            '\n' => r += 1,
            ch if ch.is_control() => {}
            ch => {
                if c >= cols {
                    // Past the right edge: the terminal wraps. Fine after padding, not in text.
                    if rows[r].get(cols - 1).is_some_and(|x| *x != ' ') {
                        overflows.push(format!("{}|{ch}", text(&rows[r])));
                    }
                    r += 1;
                    c = 0;
                    while rows.len() <= r {
                        rows.push(Vec::new());
                    }
                }
                let row = &mut rows[r];
                while row.len() < c {
                    row.push(' ');
                }
                if c < row.len() {
                    row[c] = ch;
                } else {
                    row.push(ch);
                }
                c += unicode_width::UnicodeWidthChar::width(ch).unwrap_or(1).max(1);
            }
        }
    }
    shown.extend(rows.iter().map(|row| text(row)));
    (shown, overflows)
}

/// Every line at most `cols` columns; every word of `words` shown whole, never split across lines.
fn fits_and_whole(shown: &str, cols: usize, words: &[&str], what: &str) -> Vec<String> {
    let (lines, overflows) = screen(shown, cols);
    assert!(overflows.is_empty(), "{what}: lines longer than {cols} columns: {overflows:#?}\n{}", lines.join("\n"));
    for l in &lines {
        assert!(width_of(l) <= cols, "{what}: {} columns: {l:?}\n{}", width_of(l), lines.join("\n"));
    }
    let text = lines.join("\n");
    for w in words {
        assert!(text.contains(w), "{what}: {w:?} whole in:\n{text}");
    }
    for pair in lines.windows(2) {
        let (a, b) = (pair[0].trim_end(), pair[1].trim_start());
        for w in words {
            for i in (1..w.len()).filter(|i| w.is_char_boundary(*i)) {
                assert!(
                    !(a.ends_with(&w[..i]) && b.starts_with(&w[i..])),
                    "{what}: {w:?} split across lines:\n{}\n{}",
                    pair[0],
                    pair[1]
                );
            }
        }
    }
    lines
}

/// Runs `args` on a pseudo-terminal `cols` wide until `marker` has been shown (a server that does
/// not stop by itself), then stops it; what it showed.
fn on_a_terminal_until(w: &Work, args: &[&str], cols: u16, marker: &str) -> String {
    let (master, slave) = pty(cols);
    let mut c = w.cmd(args);
    c.stdout(Stdio::from(slave.try_clone().expect("dup"))).stderr(Stdio::from(slave));
    let mut child = c.spawn().expect("spawn");
    drop(c);
    let mut reader = std::fs::File::from(master);
    let mut bytes = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !String::from_utf8_lossy(&bytes).contains(marker) && std::time::Instant::now() < deadline {
        match reader.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => bytes.extend_from_slice(&buf[..n]),
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Issue 19, item 1: at 80 columns nothing payrun prints is cut or wraps inside a word: validate's
/// messages, the hold lines and their commands, `status` (its table's headers over their values),
/// and the sandbox's banner.
#[test]
fn at_80_columns_validate_holds_status_and_the_banner_fit_and_keep_words_whole() {
    let w = Work::new();
    // validate: long messages, wrapped at word boundaries.
    let mistakes = sample("mistakes.csv").display().to_string();
    let (code, shown) = on_a_terminal(&w, &["validate", &mistakes], 80, &[]);
    assert_eq!(code, Some(1), "{shown}");
    fits_and_whole(
        &shown,
        80,
        &["branch", "SPREADSHEET_MANGLED", "--allow-unknown-ifsc", "--allow-duplicates", "spreadsheet", "delimiter"],
        "validate",
    );

    // A file paid, then paid again on purpose: every row held, the lines named in the command.
    let salary = sample("salary-2026-11.csv").display().to_string();
    let fast = ["--state", "S", "--sandbox-profile", "clean", "--rate", "2000"];
    let mut args = vec!["run", salary.as_str()];
    args.extend(fast);
    let (code, _) = on_a_terminal(&w, &args, 80, &[]);
    assert_eq!(code, Some(0));
    args.push("--new-batch");
    let (code, shown) = on_a_terminal(&w, &args, 80, &[]);
    assert_eq!(code, Some(2), "every row held: {shown}");
    let lines = fits_and_whole(&shown, 80, &["REPEAT_PAYMENT", "approved", "HELD"], "holds");
    let text = lines.join("\n");
    assert!(text.contains("200 rows HELD, not sent until approved"), "{text}");
    assert!(!text.contains("LINES"), "the real lines, no placeholder:\n{text}");
    assert!(text.contains("--rows 2-31 "), "the first lines, as a range:\n{text}");
    assert!(text.contains("payrun report") && text.contains("--out needs.xlsx"), "where to see all:\n{text}");

    // status: the list and one batch, from the cells' widths.
    let (code, shown) = on_a_terminal(&w, &["status", "--state", "S"], 80, &[]);
    assert_eq!(code, Some(0), "{shown}");
    let lines = fits_and_whole(&shown, 80, &["salary-2026-11.csv", "SUCCESS", "finished"], "status");
    let head = lines.iter().find(|l| l.starts_with("batch ")).expect("the header line");
    let row = lines.iter().find(|l| l.contains(" IST ") && l.contains(" open")).expect("the held batch's line");
    let date = row.find("20").expect("a date");
    assert_eq!(head.find("created"), Some(date), "'created' over its date:\n{head}\n{row}");
    let rows_end = head.find("rows").expect("rows") + 4;
    assert_eq!(&row[rows_end - 3..rows_end], "200", "'rows' over its count, right-aligned:\n{head}\n{row}");
    let batch = row.split_whitespace().next().expect("batch id").to_string();
    let (code, shown) = on_a_terminal(&w, &["status", &batch, "--state", "S"], 80, &[]);
    assert_eq!(code, Some(0), "{shown}");
    fits_and_whole(&shown, 80, &["CANCELLED", "NOT_SENT", "REPEAT_PAYMENT", "continue"], "status BATCH");

    // The sandbox's banner.
    let shown = on_a_terminal_until(&w, &["sandbox", "--addr", "127.0.0.1:0"], 80, "--yes");
    fits_and_whole(&shown, 80, &["MONEY", "MOVES", "ATMOON_MERCHANT_KEY", "__sandbox/ledger"], "sandbox");
    assert!(screen(&shown, 80).0.iter().any(|l| l.contains("NO REAL MONEY MOVES")), "{shown}");
}

/// Issue 19, items 1 and 8: a run at 80 columns shows every count of its progress (two lines),
/// the reasons of the rows that need someone whole, and once everything is sent says what it waits
/// for instead of an ETA.
#[test]
fn at_80_columns_the_progress_and_the_reasons_are_whole() {
    let w = Work::new();
    let magic = sample("sandbox-magic.csv").display().to_string();
    let args =
        // At 20 requests/s the sending lasts over a second, long enough for the speed to show.
        ["run", magic.as_str(), "--state", "S", "--sandbox-profile", "clean", "--rate", "20", "--poll-timeout", "4s"];
    let (code, shown) = on_a_terminal(&w, &args, 80, &[]);
    assert_eq!(code, Some(2), "{shown}");
    let lines = fits_and_whole(
        &shown,
        80,
        &["inquire", "REF_ALREADY_USED", "PAYEE_MISMATCH", "NO REAL MONEY MOVES", "postings", "resolved"],
        "run",
    );
    let text = lines.join("\n");
    for count in ["final · sent ", " · failed ", "pending ", " · in doubt ", "req/s of 20", "ETA "] {
        assert!(text.contains(count), "the progress shows {count:?}:\n{text}");
    }
    assert!(text.contains("all sent, waiting for final statuses"), "what the run waits for:\n{text}");
    assert!(text.contains("gives up at ") && text.contains(" IST (--poll-timeout 4s)"), "{text}");
    // A reason is never cut: joined back, it is the whole message.
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(flat.contains("Please inquire status after some time"), "{text}");
    assert!(!text.contains('…'), "nothing cut:\n{text}");
}
