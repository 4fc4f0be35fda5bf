//! Everything payrun prints goes through here: the lines themselves, how wide they may be, words
//! wrapped to that width, and tables laid out from their cells.
//!
//! **A closed output never stops a batch** (SPEC 5). `println!` and `eprintln!` panic when the
//! write fails (a pipe to `head` that has closed, a terminal that went away), and a panic in the
//! middle of a batch exits 101 with rows in flight. The writers here ([`Sink`], and the macros
//! [`outln!`](crate::outln), [`errln!`](crate::errln), [`say!`](crate::say),
//! [`say_out!`](crate::say_out)) drop what cannot be printed instead: the batch goes on to the end
//! or its next safe stop and exits with its usual code. Nothing payrun must know was printed goes
//! through them (the journal and the result file are files, written and checked elsewhere).
//!
//! **Width.** A line printed to a terminal fits the terminal ([`Stream::width`]: its columns, 80
//! when it does not say); printed to a pipe or a file it fits 80 columns, so logs and mail stay
//! readable. Prose is wrapped at word boundaries ([`wrap`], built on `textwrap`), never inside a
//! word, a reference or a path; a word longer than the whole width stays whole on its own line.
//! Commands the operator is to type are never wrapped as prose: they go on lines of their own,
//! continued with ` \` ([`command_lines`]), so they still paste as one. Columns are counted as a
//! terminal shows them (`unicode-width`: `₹` is one column), escape codes not counted. Log events
//! ([`LogLine`]) are wrapped the same way.
//!
//! One wrapping helper, in three shapes: [`wrap`] (words), [`wrap_units`] (units that never break:
//! the progress display's counts, a command's options), [`wrap_phrases`] (words, a change `a → b`
//! kept on one line); [`fill`] and the `say!` macros apply [`wrap`] to every line of a text.

use std::borrow::Cow;
use std::io::{self, IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};

/// The width of everything printed to a pipe or a file, and to a terminal that does not say.
pub const WIDTH: usize = 80;

/// The narrowest width payrun lays out for (a terminal narrower than this gets this).
const NARROWEST: usize = 40;

/// One of the two outputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// Whether a write to stdout / stderr failed because nobody reads it any more.
static CLOSED: [AtomicBool; 2] = [AtomicBool::new(false), AtomicBool::new(false)];

impl Stream {
    fn index(self) -> usize {
        match self {
            Stream::Stdout => 0,
            Stream::Stderr => 1,
        }
    }

    /// Whether this output is a terminal.
    pub fn is_terminal(self) -> bool {
        match self {
            Stream::Stdout => io::stdout().is_terminal(),
            Stream::Stderr => io::stderr().is_terminal(),
        }
    }

    /// The columns a line printed here may take: the terminal's (80 when it does not say), else 80.
    pub fn width(self) -> usize {
        let size = match self {
            Stream::Stdout => terminal_size::terminal_size_of(io::stdout()),
            Stream::Stderr => terminal_size::terminal_size_of(io::stderr()),
        };
        match size {
            Some((terminal_size::Width(w), _)) if w > 0 => usize::from(w).max(NARROWEST),
            _ => WIDTH,
        }
    }

    /// Whether a write here has already failed with a broken pipe (what comes next is dropped).
    pub fn closed(self) -> bool {
        CLOSED[self.index()].load(Ordering::Relaxed)
    }

    /// Writes `text` as it is; what cannot be written is dropped.
    pub fn write_str(self, text: &str) {
        let _ = Sink(self).write_all(text.as_bytes());
    }

    /// Writes `text` and a newline.
    pub fn line(self, text: &str) {
        let mut s = String::with_capacity(text.len() + 1);
        s.push_str(text);
        s.push('\n');
        self.write_str(&s);
    }

    /// Writes `text` wrapped at word boundaries to this output's width: every line of it (split
    /// at `\n`) keeps its own indentation, and its continuation lines are indented two more.
    pub fn prose(self, text: &str) {
        let width = self.width();
        let mut s = String::with_capacity(text.len() + 8);
        for l in fill(text, width) {
            s.push_str(&l);
            s.push('\n');
        }
        self.write_str(&s);
    }
}

/// stdout or stderr as a [`Write`] that never fails: on a closed pipe or a terminal that went away
/// it reports everything written and drops it.
pub struct Sink(pub Stream);

/// stdout, never failing.
pub fn stdout() -> Sink {
    Sink(Stream::Stdout)
}

/// stderr, never failing.
pub fn stderr() -> Sink {
    Sink(Stream::Stderr)
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.0.closed() {
            return Ok(buf.len());
        }
        let written = match self.0 {
            Stream::Stdout => io::stdout().lock().write(buf),
            Stream::Stderr => io::stderr().lock().write(buf),
        };
        match written {
            Ok(n) => Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(e) => {
                // A broken pipe stays broken; anything else (a terminal that went away answers
                // EIO) is dropped write by write.
                if e.kind() == io::ErrorKind::BrokenPipe {
                    CLOSED[self.0.index()].store(true, Ordering::Relaxed);
                }
                Ok(buf.len())
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        let _ = match self.0 {
            Stream::Stdout => io::stdout().lock().flush(),
            Stream::Stderr => io::stderr().lock().flush(),
        };
        Ok(())
    }
}

/// One log event on its way to stderr: collected, then printed wrapped to stderr's width when the
/// logger lets go of it (`tracing` writes each event whole, then drops its writer).
#[derive(Default)]
pub struct LogLine(Vec<u8>);

/// A [`LogLine`], for `tracing_subscriber`'s `with_writer`.
pub fn log_line() -> LogLine {
    LogLine::default()
}

impl Write for LogLine {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for LogLine {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.0);
        if !text.is_empty() {
            Stream::Stderr.prose(text.trim_end_matches('\n'));
        }
    }
}

/// A line to stdout (formatted like `println!`), dropped if stdout is closed.
#[macro_export]
macro_rules! outln {
    () => { $crate::out::Stream::Stdout.line("") };
    ($($t:tt)*) => { $crate::out::Stream::Stdout.line(&format!($($t)*)) };
}

/// A line to stderr (formatted like `eprintln!`), dropped if stderr is closed.
#[macro_export]
macro_rules! errln {
    () => { $crate::out::Stream::Stderr.line("") };
    ($($t:tt)*) => { $crate::out::Stream::Stderr.line(&format!($($t)*)) };
}

/// Text to stderr without a newline (a prompt), dropped if stderr is closed.
#[macro_export]
macro_rules! err {
    ($($t:tt)*) => {{
        $crate::out::Stream::Stderr.write_str(&format!($($t)*));
        let _ = std::io::Write::flush(&mut $crate::out::stderr());
    }};
}

/// Prose to stderr, wrapped at word boundaries to its width ([`Stream::prose`]).
#[macro_export]
macro_rules! say {
    ($($t:tt)*) => { $crate::out::Stream::Stderr.prose(&format!($($t)*)) };
}

/// Prose to stdout, wrapped at word boundaries to its width ([`Stream::prose`]).
#[macro_export]
macro_rules! say_out {
    ($($t:tt)*) => { $crate::out::Stream::Stdout.prose(&format!($($t)*)) };
}

/// Columns `text` takes on a terminal (`₹` is one; escape codes take none).
pub fn cols(text: &str) -> usize {
    textwrap::core::display_width(text)
}

/// `text` (one line) wrapped at spaces to `width` columns, the first line after `first`, the others
/// after `rest`. Never breaks inside a word, and never at a hyphen: a reference, an IFSC or a path
/// stays whole (a word wider than the line gets a line of its own).
pub fn wrap(text: &str, width: usize, first: &str, rest: &str) -> Vec<String> {
    let opts = textwrap::Options::new(width.max(1))
        .initial_indent(first)
        .subsequent_indent(rest)
        .break_words(false)
        .word_separator(textwrap::WordSeparator::AsciiSpace)
        .word_splitter(textwrap::WordSplitter::NoHyphenation);
    let text = text.trim_end();
    if text.trim().is_empty() {
        return vec![first.trim_end().to_string()];
    }
    textwrap::wrap(text, opts).into_iter().map(Cow::into_owned).collect()
}

/// One unit [`wrap_units`] never breaks, with what follows it inside a line and what ends a line
/// after it.
#[derive(Debug)]
struct Unit {
    width: usize,
    sep: usize,
    mark: usize,
}

impl textwrap::core::Fragment for Unit {
    fn width(&self) -> f64 {
        self.width as f64
    }
    fn whitespace_width(&self) -> f64 {
        self.sep as f64
    }
    fn penalty_width(&self) -> f64 {
        self.mark as f64
    }
}

/// `units` joined by `sep` into lines of at most `width` columns, the first line after `first`,
/// the others after `rest`: a line breaks only between units (a unit wider than the line gets a
/// line of its own), and every line but the last ends with `mark` (` \` for a command).
pub fn wrap_units(units: &[&str], sep: &str, mark: &str, width: usize, first: &str, rest: &str) -> Vec<String> {
    let n = units.len();
    let frags: Vec<Unit> = units
        .iter()
        .enumerate()
        .map(|(i, u)| Unit { width: cols(u), sep: cols(sep), mark: if i + 1 == n { 0 } else { cols(mark) } })
        .collect();
    let widths = [width.saturating_sub(cols(first)) as f64, width.saturating_sub(cols(rest)) as f64];
    let mut lines = Vec::new();
    let mut at = 0;
    for line in textwrap::wrap_algorithms::wrap_first_fit(&frags, &widths) {
        let mut text = if lines.is_empty() { first.to_string() } else { rest.to_string() };
        text.push_str(&units[at..at + line.len()].join(sep));
        at += line.len();
        if at < n {
            text.push_str(mark);
        }
        lines.push(text);
    }
    lines
}

/// [`wrap`] for text that shows a change as `a → b`: a line never breaks beside an arrow (`→`,
/// `←`), so `(accepted → success)` and `→ status inquiry` stay on one line.
pub fn wrap_phrases(text: &str, width: usize, first: &str, rest: &str) -> Vec<String> {
    let arrow = |w: &str| w == "→" || w == "←";
    let mut units: Vec<String> = Vec::new();
    let mut glue_next = false;
    // Words of an open parenthesis, kept whole when the group holds an arrow: `(in doubt → sending)`.
    let mut group: Vec<&str> = Vec::new();
    let push = |units: &mut Vec<String>, w: &str, glue: bool| match units.last_mut() {
        Some(last) if glue => {
            last.push(' ');
            last.push_str(w);
        }
        _ => units.push(w.to_string()),
    };
    for w in text.split(' ').filter(|w| !w.is_empty()) {
        let opens_group = w.starts_with('(') && !w.ends_with(')');
        if group.is_empty() && !opens_group {
            push(&mut units, w, glue_next || arrow(w));
            glue_next = arrow(w);
            continue;
        }
        group.push(w);
        if w.ends_with(')') {
            if group.iter().any(|g| arrow(g)) {
                push(&mut units, &group.join(" "), glue_next);
            } else {
                for g in &group {
                    push(&mut units, g, glue_next || arrow(g));
                    glue_next = arrow(g);
                }
            }
            glue_next = false;
            group.clear();
        }
    }
    for g in &group {
        push(&mut units, g, glue_next || arrow(g));
        glue_next = arrow(g);
    }
    let units: Vec<&str> = units.iter().map(String::as_str).collect();
    wrap_units(&units, " ", "", width, first, rest)
}

/// A command as lines of at most `width` columns after `indent` spaces, continued with ` \` so
/// the lines still paste into a shell as one command. A line breaks only before an option, so an
/// option stays with its value (`--as paid|unpaid`, `--state 'my state'`).
pub fn command_lines(command: &str, indent: usize, width: usize) -> Vec<String> {
    let mut groups: Vec<String> = Vec::new();
    for w in command.split(' ') {
        match groups.last_mut() {
            Some(last) if !w.starts_with("--") => {
                last.push(' ');
                last.push_str(w);
            }
            _ => groups.push(w.to_string()),
        }
    }
    let units: Vec<&str> = groups.iter().map(String::as_str).collect();
    wrap_units(&units, " ", " \\", width, &" ".repeat(indent), &" ".repeat(indent + 2))
}

impl Stream {
    /// Prints a command the operator is to type, after `indent` spaces, on lines of its own
    /// continued with ` \` ([`command_lines`]).
    pub fn command(self, command: &str, indent: usize) {
        let mut s = String::new();
        for l in command_lines(command, indent, self.width()) {
            s.push_str(&l);
            s.push('\n');
        }
        self.write_str(&s);
    }
}

/// Every line of `text` (split at `\n`) wrapped to `width` at word boundaries, keeping its
/// indentation; continuation lines are indented two columns more than their line.
pub fn fill(text: &str, width: usize) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.split('\n') {
        let line = line.trim_end_matches('\r');
        let body = line.trim_start_matches(' ');
        let indent = &line[..line.len() - body.len()];
        if cols(line) <= width {
            out.push(line.trim_end().to_string());
            continue;
        }
        let rest = format!("{indent}  ");
        out.extend(wrap(body, width, indent, &rest));
    }
    out
}

/// `s` cut to `max` columns, with `…` when cut (for a name in a table, never for a reason or a
/// command).
pub fn truncate(s: &str, max: usize) -> String {
    if cols(s) <= max {
        return s.to_string();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let w = cols(c.encode_utf8(&mut [0; 4]));
        if used + w + 1 > max {
            break;
        }
        used += w;
        out.push(c);
    }
    out.push('…');
    out
}

/// How a table column is aligned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// A table laid out from its cells: each column as wide as its widest cell (escape codes not
/// counted), columns `gap` apart, every line after `indent`, no trailing spaces. A row may have
/// fewer cells than there are columns.
#[derive(Clone, Debug)]
pub struct Table {
    indent: String,
    gap: usize,
    aligns: Vec<Align>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(indent: &str, gap: usize, aligns: &[Align]) -> Table {
        Table { indent: indent.to_string(), gap, aligns: aligns.to_vec(), rows: Vec::new() }
    }

    /// Adds a row.
    pub fn row<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) -> &mut Table {
        self.rows.push(cells.into_iter().map(Into::into).collect());
        self
    }

    /// Each column's width: its widest cell.
    pub fn widths(&self) -> Vec<usize> {
        let n = self.rows.iter().map(Vec::len).max().unwrap_or(0).max(self.aligns.len());
        let mut w = vec![0; n];
        for r in &self.rows {
            for (i, c) in r.iter().enumerate() {
                w[i] = w[i].max(cols(c));
            }
        }
        w
    }

    /// The columns' widths summed with the gaps and the indent: the widest line.
    pub fn width(&self) -> usize {
        let w = self.widths();
        cols(&self.indent) + w.iter().sum::<usize>() + self.gap * w.len().saturating_sub(1)
    }

    /// The lines, in the order the rows were added.
    pub fn lines(&self) -> Vec<String> {
        let widths = self.widths();
        self.rows.iter().map(|r| self.line(r, &widths)).collect()
    }

    fn line(&self, cells: &[String], widths: &[usize]) -> String {
        let mut line = self.indent.clone();
        for (i, c) in cells.iter().enumerate() {
            if i > 0 {
                line.push_str(&" ".repeat(self.gap));
            }
            let pad = " ".repeat(widths[i].saturating_sub(cols(c)));
            match self.aligns.get(i).copied().unwrap_or(Align::Left) {
                Align::Left => {
                    line.push_str(c);
                    line.push_str(&pad);
                }
                Align::Right => {
                    line.push_str(&pad);
                    line.push_str(c);
                }
            }
        }
        line.trim_end().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapping_keeps_words_whole() {
        let text = "line 5, column 'IFSC Code': UNKNOWN_IFSC: 'ABCD0123456' is well-formed but no bank branch has it in the directory razorpay-ifsc-2.0.61 (RBI update 2026-06-30)";
        let lines = fill(text, 80);
        assert!(lines.len() > 1);
        for l in &lines {
            assert!(cols(l) <= 80, "{l:?}");
        }
        assert_eq!(lines.join(" ").split_whitespace().collect::<Vec<_>>(), text.split_whitespace().collect::<Vec<_>>());
        assert!(lines[1].starts_with("  ") && !lines[1].starts_with("   "), "a hanging indent: {lines:?}");
        // Never at a hyphen, never inside a long word.
        let refs = "reference MAGIC-REUSED-0008-WITH-A-VERY-LONG-TAIL ".repeat(4);
        for l in wrap(&refs, 30, "", "") {
            assert!(l.split(' ').all(|w| w.is_empty() || w == "reference" || w.starts_with("MAGIC-")), "{l:?}");
        }
        let story = "← payout HTTP 500 <html><head><title>500 Internal Server Error (sending → in doubt)";
        for w in [20, 30, 40, 80] {
            let lines = wrap_phrases(story, w, "  ", "    ");
            assert!(lines.iter().any(|l| l.contains("(sending → in doubt)")), "{w}: {lines:?}");
            assert!(lines[0].contains("← payout"), "{w}: {lines:?}");
            let two = wrap_phrases("→ payout request, attempt 2, ₹1005.00 (in doubt → sending) (a note)", w, "", "");
            assert!(two.iter().any(|l| l.contains("(in doubt → sending)")), "{w}: {two:?}");
            assert_eq!(two.join(" "), "→ payout request, attempt 2, ₹1005.00 (in doubt → sending) (a note)");
        }
        let path = format!("see /{}", "p".repeat(100));
        assert_eq!(wrap(&path, 40, "", "  "), ["see", &format!("  /{}", "p".repeat(100))]);
        // Indentation is kept, lines that fit are left alone.
        assert_eq!(fill("    short\nx", 80), ["    short", "x"]);
        let indented = fill(&format!("    {}", "word ".repeat(30)), 40);
        assert!(indented.iter().skip(1).all(|l| l.starts_with("      w")), "{indented:?}");
    }

    #[test]
    fn columns_count_as_a_terminal_shows_them() {
        assert_eq!(cols("₹1,000.00"), 9);
        assert_eq!(cols("\x1b[31mFAILED\x1b[0m"), 6);
        assert_eq!(truncate("Bank Failure Demo", 10), "Bank Fail…");
        assert_eq!(truncate("short", 10), "short");
    }

    #[test]
    fn tables_are_as_wide_as_their_cells() {
        let mut t = Table::new("  ", 2, &[Align::Left, Align::Right, Align::Left]);
        t.row(["batch", "rows", "created"]);
        t.row(["ab242d90b82f", "200", "2026-12-06 04:30 IST"]);
        t.row(["\x1b[1mx\x1b[0m", "3", ""]);
        let lines = t.lines();
        assert_eq!(lines[0], "  batch         rows  created");
        assert_eq!(lines[1], "  ab242d90b82f   200  2026-12-06 04:30 IST");
        assert_eq!(lines[2], "  \x1b[1mx\x1b[0m                3");
        assert_eq!(t.width(), cols(&lines[1]));
    }

    #[test]
    fn a_closed_pipe_is_not_an_error() {
        // The sink reports success whatever happens underneath; here stdout is the test harness's.
        let mut s = stdout();
        assert!(s.write_all(b"").is_ok());
        assert!(s.flush().is_ok());
    }
}
