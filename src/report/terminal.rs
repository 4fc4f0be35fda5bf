//! The terminal summary (SPEC section 5): counts and amounts per status and per mode, the control
//! check, and the rows that need someone with the next step for each kind, in 80 columns.
//!
//! This module owns how the summary looks on a terminal: layout, truncation, plurals and colour.
//! Colour marks FAILED (red), HELD and PENDING (yellow) and SUCCESS (green), and only when stdout is
//! a terminal and `NO_COLOR` is not set (any value): a pipe or a file never gets an escape code.
//! It prints what [`Summary`] holds and never reads the journal itself.

use std::io::{self, IsTerminal, Write};

use super::attention::{AttentionRow, Kind};
use super::{STATUSES, Summary, plural};
use crate::input::Mode;
use crate::out::{Align, Stream, Table, cols};

/// The width the summary fits when it is not printed to a terminal (and in tests).
pub const WIDTH: usize = crate::out::WIDTH;

/// How many rows that need someone the terminal lists before pointing at the rest.
pub const SCREENFUL: usize = 15;

/// Colour on or off, and the codes for each status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Style {
    color: bool,
}

impl Style {
    /// No escape codes.
    pub fn plain() -> Style {
        Style { color: false }
    }

    /// Colour only when stdout is a terminal and `NO_COLOR` is not set.
    pub fn for_stdout() -> Style {
        Style::decide(std::env::var_os("NO_COLOR").is_some(), io::stdout().is_terminal())
    }

    /// Colour when the output is a terminal and `NO_COLOR` is not set (to any value, empty too).
    pub fn decide(no_color_set: bool, terminal: bool) -> Style {
        Style { color: terminal && !no_color_set }
    }

    /// Colour for a terminal (tests and callers that know better).
    pub fn colored() -> Style {
        Style { color: true }
    }

    /// `text` (already padded) in the colour of `status`.
    pub fn status(&self, status: &str, text: &str) -> String {
        let code = match status {
            "FAILED" | "MISMATCH" => "31",
            "HELD" | "PENDING" => "33",
            "SUCCESS" | "OK" => "32",
            _ => return text.to_string(),
        };
        self.paint(code, text)
    }

    /// `text` in bold.
    pub fn bold(&self, text: &str) -> String {
        self.paint("1", text)
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.color { format!("\x1b[{code}m{text}\x1b[0m") } else { text.to_string() }
    }
}

/// `s` cut from the left to `max` columns (keeps a path's file name).
fn truncate_left(s: &str, max: usize) -> String {
    if cols(s) <= max {
        return s.to_string();
    }
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::new();
    let mut used = 1;
    for c in chars.iter().rev() {
        let w = cols(c.encode_utf8(&mut [0; 4]));
        if used + w > max {
            break;
        }
        used += w;
        out.insert(0, *c);
    }
    out.insert(0, '…');
    out
}

/// A command as lines of at most [`WIDTH`] columns after `indent` (see [`crate::out::command_lines`]).
pub fn command_lines(command: &str, indent: usize) -> Vec<String> {
    crate::out::command_lines(command, indent, WIDTH)
}

/// `text` wrapped at word boundaries to [`WIDTH`], the first line after `first`, the others after
/// `rest` (see [`crate::out::wrap`]).
pub fn wrap(text: &str, first: &str, rest: &str) -> Vec<String> {
    crate::out::wrap(text, WIDTH, first, rest)
}

impl Summary {
    /// The summary on stdout's terms: colour when stdout is a terminal and `NO_COLOR` is unset,
    /// as wide as stdout's terminal, else 80 columns (callers pass stdout).
    pub fn print(&self, out: &mut dyn Write) -> io::Result<()> {
        self.print_with(out, &Style::for_stdout(), Stream::Stdout.width())
    }

    /// The summary in at most `width` columns (a path or a word longer than the line excepted):
    /// every table laid out from its cells, reasons wrapped at word boundaries, never cut.
    pub fn print_with(&self, out: &mut dyn Write, style: &Style, width: usize) -> io::Result<()> {
        let head = format!("batch {}  ", self.batch);
        writeln!(out, "{head}{}", truncate_left(&self.file, width.saturating_sub(cols(&head)).max(12)))?;
        for l in crate::out::wrap(&format!("gateway: {}", self.gateway), width, "", "  ") {
            writeln!(out, "{l}")?;
        }

        // Statuses: rows and amount, and rows per mode; then rows and amount per mode, in the
        // same columns.
        let right = Align::Right;
        let mut t = Table::new("  ", 2, &[Align::Left, right, right, right, right, right]);
        let mut head = vec!["status".to_string(), "rows".into(), "amount (₹)".into()];
        head.extend(Mode::ALL.iter().map(|m| m.as_str().to_string()));
        t.row(head);
        for status in STATUSES {
            let tally = self.status_totals.get(status).copied().unwrap_or_default();
            let name = if tally.count > 0 { style.status(status, status) } else { status.to_string() };
            let mut cells = vec![name, tally.count.to_string(), tally.amount.to_indian()];
            for m in Mode::ALL {
                let n = self.statuses.get(status).and_then(|by| by.get(m.as_str())).map_or(0, |t| t.count);
                cells.push(if n == 0 { "-".to_string() } else { n.to_string() });
            }
            t.row(cells);
        }
        t.row(["mode", "rows", "amount (₹)"]);
        for m in Mode::ALL {
            let tally = self.mode_totals.get(m.as_str()).copied().unwrap_or_default();
            t.row([m.as_str().to_string(), tally.count.to_string(), tally.amount.to_indian()]);
        }
        let header_rows = [0, STATUSES.len() + 1];
        for (i, l) in t.lines().into_iter().enumerate() {
            if header_rows.contains(&i) {
                writeln!(out, "{}", style.bold(&l))?;
            } else {
                writeln!(out, "{l}")?;
            }
        }

        // The control check.
        let c = &self.control;
        let verdict = if c.ok { "OK" } else { "MISMATCH" };
        writeln!(out, "  control check: {}", style.status(verdict, verdict))?;
        let rows = |n: u64| plural(n, "row");
        let mut t = Table::new("    ", 2, &[Align::Left, right, right]);
        t.row([
            "file's valid rows".to_string(),
            rows(c.file_valid.count),
            format!("₹{}", c.file_valid.amount.to_indian()),
        ]);
        t.row([
            "their statuses now".to_string(),
            rows(c.statuses_valid.count),
            format!("₹{}", c.statuses_valid.amount.to_indian()),
        ]);
        t.row(["rows accounted".to_string(), format!("{} of {}", c.rows_accounted, c.file_rows)]);
        let lines = t.lines();
        writeln!(out, "{}", lines[0])?;
        writeln!(out, "{}", lines[1])?;
        for l in
            crate::out::wrap("(SUCCESS + FAILED + PENDING + HELD + CANCELLED + NOT_SENT)", width, "      ", "       ")
        {
            writeln!(out, "{l}")?;
        }
        writeln!(out, "{}", lines[2])?;
        if let Some(r) = &self.result {
            for l in crate::out::wrap(&format!("result: {r}"), width, "  ", "    ") {
                writeln!(out, "{l}")?;
            }
        }
        self.print_attention(out, style, width)
    }

    /// The rows that need someone (a screenful), each with its reason wrapped under it, the
    /// command that shows them all, and the next step for each kind present.
    fn print_attention(&self, out: &mut dyn Write, style: &Style, width: usize) -> io::Result<()> {
        if self.needs_attention_total == 0 {
            return Ok(());
        }
        let by_status: Vec<String> = super::attention::ATTENTION_STATUSES
            .iter()
            .filter_map(|s| {
                let n = self.attention_count(s);
                (n > 0).then(|| style.status(s, &format!("{n} {s}")))
            })
            .collect();
        writeln!(out)?;
        let count = format!("{} ({})", plural(self.needs_attention_total, "row"), by_status.join(", "));
        for l in crate::out::wrap(&format!("needs someone: {count}"), width, "  ", "    ") {
            // Bold the words `needs someone:` only (their width is unchanged).
            writeln!(out, "{}", l.replacen("needs someone:", &style.bold("needs someone:"), 1))?;
        }
        if self.needs_attention.is_empty() {
            // Not read from the journal (a caller without it): the counts above must do.
            return Ok(());
        }
        let shown: Vec<&AttentionRow> = self.needs_attention.iter().take(SCREENFUL).collect();
        let amount = |r: &AttentionRow| r.amount.map(|a| a.to_indian()).unwrap_or_default();
        // The columns without the names, to learn how wide the names may be.
        let right = Align::Right;
        let aligns = [right, Align::Left, right, Align::Left, Align::Left];
        let mut t = Table::new("  ", 2, &aligns);
        t.row(["line", "name", "amount (₹)", "status", "code"]);
        for r in &shown {
            t.row([r.line.to_string(), String::new(), amount(r), r.status.clone(), r.code.clone()]);
        }
        let name_room = width.saturating_sub(t.width()).max(8);
        let mut t = Table::new("  ", 2, &aligns);
        t.row(["line", "name", "amount (₹)", "status", "code"]);
        for r in &shown {
            let status = style.status(&r.status, &r.status);
            t.row([r.line.to_string(), crate::out::truncate(&r.name, name_room), amount(r), status, r.code.clone()]);
        }
        let under = " ".repeat(2 + t.widths()[0] + 2 + 2);
        let lines = t.lines();
        writeln!(out, "{}", style.bold(&lines[0]))?;
        for (r, l) in shown.iter().zip(&lines[1..]) {
            writeln!(out, "{l}")?;
            let reason = r.reason.replace(['\n', '\r', '\t'], " ");
            for l in crate::out::wrap(&reason, width, &under, &under) {
                writeln!(out, "{l}")?;
            }
        }
        let hidden = self.needs_attention_total.saturating_sub(shown.len() as u64);
        if hidden > 0 {
            for l in crate::out::wrap(
                &format!(
                    "... and {} more; all of them, with the next step for each, on the sheet \"Needs attention\" of:",
                    hidden
                ),
                width,
                "  ",
                "  ",
            ) {
                writeln!(out, "{l}")?;
            }
            for l in crate::out::command_lines(
                &format!("payrun report {}{} --out needs.xlsx", self.batch, self.state_arg),
                4,
                width,
            ) {
                writeln!(out, "{l}")?;
            }
        }

        // One next step per kind present.
        let complete = self.needs_attention.len() as u64 == self.needs_attention_total;
        let mut kinds: Vec<Kind> =
            Kind::ALL.into_iter().filter(|k| self.needs_attention.iter().any(|r| r.kind == *k)).collect();
        for (status, default) in [
            ("FAILED", Kind::Failed),
            ("HELD", Kind::HeldRepeat),
            ("PENDING", Kind::PendingWait),
            ("INVALID", Kind::Invalid),
        ] {
            if self.attention_count(status) > 0
                && !self.needs_attention.iter().any(|r| r.status == status)
                && !kinds.contains(&default)
            {
                kinds.push(default);
            }
        }
        kinds.sort();
        writeln!(out, "  next:")?;
        for kind in kinds {
            let lines: Vec<u64> = self.needs_attention.iter().filter(|r| r.kind == kind).map(|r| r.line).collect();
            let label = if complete {
                format!("{} ({}):", kind.label(), plural(lines.len() as u64, "row"))
            } else {
                format!("{}:", kind.label())
            };
            let color_of = kind.label().split([' ', ',']).next().unwrap_or("");
            let lines_for_command = if complete { lines.as_slice() } else { &[] };
            let text = format!("{label} {}", kind.words());
            let mut wrapped = crate::out::wrap(&text, width, "  ", "    ");
            if let Some(first) = wrapped.first_mut() {
                // Colour the label only (its width is unchanged).
                let plain_label = format!("  {}", kind.label());
                if first.starts_with(&plain_label) {
                    *first = format!("  {}{}", style.status(color_of, kind.label()), &first[plain_label.len()..]);
                }
            }
            for l in wrapped {
                writeln!(out, "{l}")?;
            }
            for l in crate::out::command_lines(&kind.command(&self.batch, &self.state_arg, lines_for_command), 6, width)
            {
                writeln!(out, "{l}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapping_and_truncation_fit_the_width() {
        let text = "word ".repeat(60);
        for l in wrap(&text, "  ", "    ") {
            assert!(cols(&l) <= WIDTH, "{l:?}");
        }
        assert_eq!(truncate_left("/a/b/c/file.csv", 9), "…file.csv");
        assert_eq!(truncate_left("/a/b/c/file.csv", 20), "/a/b/c/file.csv");
        let long = "payrun resolve 3f9a1c2b7d4e --state /srv/payrun --row 12 --as paid|unpaid --reason \"...\"";
        let lines = command_lines(long, 4);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].ends_with(" \\") && lines[1].starts_with("      --"), "{lines:?}");
        assert!(lines.iter().any(|l| l.contains("--as paid|unpaid")), "an option keeps its value: {lines:?}");
        assert!(lines.iter().all(|l| cols(l) <= WIDTH), "{lines:?}");
        // Joined back as a shell would, it is the command.
        assert_eq!(lines.join("\n").replace(" \\\n", " ").split_whitespace().collect::<Vec<_>>().join(" "), long);
        assert_eq!(command_lines("payrun resume abc", 4), ["    payrun resume abc"]);
    }

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert_eq!(Style::decide(false, true), Style::colored());
        assert_eq!(Style::decide(true, true), Style::plain());
        assert_eq!(Style::decide(false, false), Style::plain());
        assert_eq!(Style::decide(true, false), Style::plain());
    }

    /// A summary with every kind of row that needs someone, HELD ones included.
    fn every_kind() -> Summary {
        use crate::journal::{Batch, BatchSettings, Counts};
        use crate::money::{Amount, Tally};
        let batch = Batch {
            id: "3f9a1c2b7d4e".into(),
            file_sha256: String::new(),
            generation: 1,
            file_path: format!("/home/accounts/{}/salary-2026-11.csv", "very-long-folder-name".repeat(4)),
            encoding: "utf-8".into(),
            delimiter: ",".into(),
            header: vec![],
            created_at: String::new(),
            gateway: "https://api.atmoondps.com".into(),
            settings: BatchSettings::default(),
            confirmed_at: None,
            finished_at: None,
            cancelled_at: None,
            result_path: None,
            total_rows: 6,
            valid: Tally { count: 6, amount: Amount::from_rupees(6_000_000_000) },
        };
        let mut s = Summary::new(&batch, &Counts::default(), None);
        let kinds = [
            ("FAILED", "BE1001", Kind::Failed),
            ("HELD", "REPEAT_PAYMENT", Kind::HeldRepeat),
            ("HELD", "PAYEE_CHANGED", Kind::HeldPayeeChanged),
            ("PENDING", "AMOUNT_MISMATCH", Kind::PendingForPerson),
            ("PENDING", "ENQ001", Kind::PendingWait),
        ];
        for (i, (status, code, kind)) in kinds.into_iter().enumerate() {
            let line = 1_000_000 + i as u64;
            s.needs_attention.push(AttentionRow {
                line,
                name: "A Rather Long Beneficiary Name Indeed".into(),
                account: "000123456789".into(),
                amount: Some(Amount::from_rupees(999_999_999)),
                status: status.into(),
                code: code.into(),
                reason: "the gateway said something long ".repeat(5),
                next_step: kind.next_step(&s.batch, " --state /srv/payrun", line),
                kind,
            });
            s.status_totals.entry(status.into()).or_default().add(Amount::from_rupees(999_999_999));
        }
        s.needs_attention_total = 25;
        s.state_arg = " --state /srv/payrun".into();
        s
    }

    #[test]
    fn every_line_fits_80_columns_and_every_kind_gets_its_next_step() {
        let s = every_kind();
        let mut out = Vec::new();
        s.print_with(&mut out, &Style::plain(), WIDTH).expect("print");
        let text = String::from_utf8(out).expect("utf-8");
        for line in text.lines() {
            assert!(cols(line) <= WIDTH, "{} columns: {line:?}", cols(line));
        }
        assert!(!text.contains('\x1b'));
        for needle in [
            "needs someone: 25 rows (1 FAILED, 2 HELD, 2 PENDING)",
            "... and 20 more",
            "payrun report 3f9a1c2b7d4e --state /srv/payrun --out needs.xlsx",
            "payrun failed 3f9a1c2b7d4e --state /srv/payrun --out retry.csv",
            "check it is not paid twice",
            "payrun approve 3f9a1c2b7d4e --state /srv/payrun --rows LIST --reason",
            "confirm the new bank account with the payee by phone,",
            "payrun resolve 3f9a1c2b7d4e --state /srv/payrun --row LINE",
            "--as paid|unpaid",
            "payrun resume 3f9a1c2b7d4e --state /srv/payrun",
            "HELD + CANCELLED",
        ] {
            assert!(text.contains(needle), "{needle:?} in:\n{text}");
        }
        // Colour marks the statuses without changing the layout.
        let mut colored = Vec::new();
        s.print_with(&mut colored, &Style::colored(), WIDTH).expect("print");
        let colored = String::from_utf8(colored).expect("utf-8");
        assert!(colored.contains("\x1b[31mFAILED"), "{colored}");
        assert!(colored.contains("\x1b[33mHELD"), "{colored}");
        let stripped = colored.replace("\x1b[31m", "").replace("\x1b[32m", "").replace("\x1b[33m", "");
        let stripped = stripped.replace("\x1b[1m", "").replace("\x1b[0m", "");
        assert_eq!(stripped, text);
    }

    #[test]
    fn plain_style_has_no_escape_codes() {
        assert_eq!(Style::plain().status("FAILED", "FAILED"), "FAILED");
        assert!(Style::colored().status("FAILED", "FAILED").contains("\x1b[31m"));
        assert!(Style::colored().status("PENDING", "x").contains("\x1b[33m"));
        assert!(Style::colored().status("HELD", "x").contains("\x1b[33m"));
        assert!(Style::colored().status("SUCCESS", "x").contains("\x1b[32m"));
        assert_eq!(Style::colored().status("NOT_SENT", "x"), "x");
    }
}
