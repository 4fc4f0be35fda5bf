//! `payrun validate`: check a payout file against every rule of SPEC section 2, sending nothing.
//!
//! ```text
//! payrun validate FILE [--sheet NAME] [--rejects OUT.csv] [--json] [--mode-auto] [--allow-duplicates]
//!                      [--allow-unknown-ifsc]
//! ```
//!
//! FILE is a CSV file or an .xlsx workbook (its content decides, not its name). Prints every
//! problem of every row (line, column, code, message) as it is found, then a summary (rows, valid,
//! invalid, warnings, count and total per mode). `--json` prints one JSON document instead:
//! `{file, format, sheet, encoding, delimiter, rows, valid, invalid, warnings, totals, problems}`.
//! `--rejects` writes the rows with errors as CSV: the input's columns (each row cut or padded to
//! the header's width), then `line`, `code` and `reason`. Exit 0 when no row has an error
//! (warnings allowed), 1 otherwise or on a file-level problem.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use payrun::config::ConfigFile;
use payrun::files::AtomicFile;
use payrun::input::{Format, InputError, Mode, Problem, RuleOptions, Scanner, Severity};
use payrun::money::Tally;
use payrun::out::{Align, Stream, Table};
use payrun::report::{inert, plural};
use payrun::{outln, say};
use serde_json::json;

use super::Exit;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The payout file: CSV with a header row, or an .xlsx workbook (told by content, not name).
    file: PathBuf,
    /// Write the rows with errors to this CSV file: their cells, then line, code and reason columns.
    #[arg(long, value_name = "OUT.csv")]
    rejects: Option<PathBuf>,
    /// Print one JSON document on stdout instead of text.
    #[arg(long)]
    json: bool,
    /// The journal to compare the file with (default: $PAYRUN_STATE, else the user's data
    /// directory, when a journal is there): every row `run` would hold is a warning with the hold's
    /// code (REPEAT_PAYMENT, ALREADY_RETRIED, PAYEE_CHANGED).
    #[arg(long, value_name = "DIR")]
    state: Option<PathBuf>,
    /// Team mode: compare the file with the team's journal in PostgreSQL (default:
    /// $PAYRUN_JOURNAL, else journal.url in payrun.toml).
    #[arg(long, env = "PAYRUN_JOURNAL", value_name = "URL")]
    journal: Option<String>,
    #[command(flatten)]
    rules: RuleArgs,
}

/// The input switches `validate` and `run` share.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct RuleArgs {
    /// The workbook sheet to read (default: the first visible sheet). Only for .xlsx files.
    #[arg(long, value_name = "NAME")]
    pub sheet: Option<String>,
    /// Derive a missing transfer mode: RTGS from ₹2,00,000, else IMPS.
    #[arg(long)]
    pub mode_auto: bool,
    /// Allow rows with the same account, IFSC and amount (reported as warnings).
    #[arg(long)]
    pub allow_duplicates: bool,
    /// Allow well-formed IFSCs missing from the bundled directory (reported as warnings).
    #[arg(long)]
    pub allow_unknown_ifsc: bool,
}

impl RuleArgs {
    pub fn options(&self, config: &ConfigFile) -> anyhow::Result<RuleOptions> {
        let default_mode = match config.run.default_mode.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(m) => Some(
                Mode::parse(m)
                    .with_context(|| format!("run.default_mode '{m}' in payrun.toml is not NEFT, IMPS or RTGS"))?,
            ),
        };
        Ok(RuleOptions {
            sheet: self.sheet.clone(),
            mode_auto: self.mode_auto,
            default_mode,
            allow_duplicates: self.allow_duplicates,
            allow_unknown_ifsc: self.allow_unknown_ifsc,
        })
    }
}

/// The text after `--help` of `validate` (`run`: false) and `run`: the accepted column headings,
/// from the alias table, and the exit codes (`run`'s: the table every command that pays shows).
pub fn after_help(run: bool) -> String {
    let mut text = payrun::input::columns::help(80);
    text.push('\n');
    if run {
        text.push_str(&super::exit_codes_help());
    } else {
        text.push_str("Exit codes:\n");
        text.push_str(
            "  0  every row is valid (warnings allowed)
  1  some row has an error, or a usage or file-level error
",
        );
    }
    text
}

/// Says aloud how the file was read when it was not plain UTF-8, or which sheet of a workbook
/// with several was read.
pub fn encoding_note(scanner: &Scanner) {
    let src = scanner.source();
    let name = src.path.display();
    if let (Some(sheet), true) = (&src.sheet, src.sheets.len() > 1) {
        let all: Vec<String> = src.sheets.iter().map(|s| format!("'{s}'")).collect();
        say!("note: {name}: read sheet '{sheet}' of {} ({}); --sheet NAME reads another", all.len(), all.join(", "));
    }
    if src.sniffed.format == Format::Xlsx {
        for n in &scanner.columns().notes {
            say!("note: {n}");
        }
        return;
    }
    match src.sniffed.encoding {
        payrun::input::Encoding::Windows1252 => say!(
            "note: {name} is not valid UTF-8; read it as a whole as Windows-1252 (Excel's \"CSV\" on Windows). Check names with accents."
        ),
        payrun::input::Encoding::Utf16le | payrun::input::Encoding::Utf16be => {
            say!("note: {name} is {} (Excel's \"Unicode text\")", src.sniffed.encoding.label())
        }
        _ => {}
    }
    for n in &scanner.columns().notes {
        say!("note: {n}");
    }
}

fn file_error(args: &Args, e: InputError) -> anyhow::Result<Exit> {
    if args.json {
        outln!("{}", json!({"file": args.file.display().to_string(), "error": e.to_string()}));
    }
    say!("error: {e}");
    Ok(Exit::Input)
}

/// A row of the rejects file: the row's cells cut or padded to the header's width (so `line`,
/// `code` and `reason` are always in the same columns), then those three. Cells cut off a row that
/// has more than the header are kept in the reason. Every cell is made inert for spreadsheets.
fn rejects_row(header: &[String], record: &payrun::input::Record, problems: &[Problem]) -> Vec<String> {
    let errors: Vec<&Problem> = problems.iter().filter(|p| p.severity == Severity::Error).collect();
    let mut reason: Vec<String> = errors
        .iter()
        .map(|p| {
            if p.column.is_empty() {
                format!("{}: {}", p.code, p.message)
            } else {
                format!("{} {}: {}", p.column, p.code, p.message)
            }
        })
        .collect();
    let extra: Vec<String> = record.iter().skip(header.len()).map(|c| format!("'{c}'")).collect();
    if !extra.is_empty() {
        reason.push(format!("cells beyond the header's {} columns: {}", header.len(), extra.join(", ")));
    }
    let mut cells: Vec<String> = record.iter().take(header.len()).map(|c| inert(c).into_owned()).collect();
    cells.resize(header.len(), String::new());
    cells.push(record.line.to_string());
    // Every code of the row, once each, in the order found: `BAD_IFSC;BAD_AMOUNT`.
    let mut codes: Vec<&str> = Vec::new();
    for p in &errors {
        if !codes.contains(&p.code.as_str()) {
            codes.push(p.code.as_str());
        }
    }
    cells.push(codes.join(";"));
    cells.push(inert(&reason.join("; ")).into_owned());
    cells
}

/// The journal `validate` compares the file with: `--state DIR` (which must hold one), else the
/// default state directory when a journal is there. None when it holds no batch (nothing to
/// compare with).
fn find_journal(args: &Args, config: &ConfigFile) -> anyhow::Result<Option<payrun::journal::Journal>> {
    let url = args.journal.clone().or_else(|| config.journal.url.clone()).filter(|u| !u.trim().is_empty());
    if let Some(text) = url {
        let url = payrun::journal::store::pgurl::JournalUrl::parse(text.trim())
            .map_err(|e| anyhow::anyhow!("--journal: {e}"))?;
        let dir = match (&args.state, payrun::batch::StateDir::default_path()) {
            (Some(d), _) => d.clone(),
            (None, Some(d)) => d,
            (None, None) => std::env::temp_dir(),
        };
        let journal = payrun::journal::Journal::open_postgres(&url, &dir)
            .with_context(|| format!("cannot open the journal at {}", url.display()))?;
        return Ok(journal.has_other_batches("")?.then_some(journal));
    }
    let dir = match &args.state {
        Some(dir) if !dir.as_os_str().is_empty() => {
            if !dir.join("journal.sqlite3").is_file() {
                anyhow::bail!("--state {}: no payrun journal there", dir.display());
            }
            dir.clone()
        }
        // $PAYRUN_STATE, else the user's data directory: used when a journal is there.
        _ => match std::env::var_os("PAYRUN_STATE")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(payrun::batch::StateDir::default_path)
        {
            Some(dir) if dir.join("journal.sqlite3").is_file() => dir,
            _ => return Ok(None),
        },
    };
    let journal = payrun::journal::Journal::open(&dir)
        .with_context(|| format!("cannot open the journal in {}", dir.display()))?;
    Ok(journal.has_other_batches("")?.then_some(journal))
}

pub fn run(args: Args, config: &ConfigFile) -> anyhow::Result<Exit> {
    let opts = args.rules.options(config)?;
    let journal = find_journal(&args, config)?;
    let rules = payrun::batch::hold_rules(config);
    let mut scanner = match Scanner::open(&args.file, journal.is_some(), opts) {
        Ok(s) => s,
        Err(e) => return file_error(&args, e),
    };
    encoding_note(&scanner);
    // The file itself already a batch: `run` resumes it or refuses it, it holds nothing.
    let own_batch = match (&journal, scanner.source().sniffed.sha256) {
        (Some(j), Some(sha)) => j.latest_batch_for(&hex::encode(sha))?,
        _ => None,
    };
    if let Some(b) = &own_batch {
        let what = if b.cancelled_at.is_some() {
            "cancelled: `run` refuses it (--new-batch pays it again, holding what may be paid)"
        } else if b.finished_at.is_some() {
            "finished: `run` refuses it (--new-batch pays it again)"
        } else {
            "not finished: `run` resumes it"
        };
        eprintln!("note: this file is batch {}, {what}", b.id);
    }
    let journal = journal.filter(|_| own_batch.is_none());
    let retry_heading = scanner.columns().heading(payrun::input::Field::RetryOf);
    let account_heading = scanner.columns().heading(payrun::input::Field::Account);
    let header = scanner.columns().header.clone();
    let payee_heading = scanner.columns().heading(payrun::input::Field::PayeeId);
    let mut rejects = match &args.rejects {
        Some(path) => {
            let file = AtomicFile::create(path).with_context(|| format!("cannot create {}", path.display()))?;
            let mut w = csv::WriterBuilder::new().flexible(true).from_writer(file);
            let mut h: Vec<String> = header.iter().map(|c| inert(c).into_owned()).collect();
            h.extend(["line".into(), "code".into(), "reason".into()]);
            w.write_record(&h)?;
            Some(w)
        }
        None => None,
    };
    // Never a panic on a closed stdout: the sink drops what cannot be written.
    let mut out = std::io::BufWriter::new(payrun::out::stdout());
    let width = Stream::Stdout.width();
    if args.json {
        let src = scanner.source();
        write!(
            out,
            "{{\"file\":{},\"format\":\"{}\",\"sheet\":{},\"encoding\":\"{}\",\"delimiter\":\"{}\",\"problems\":[",
            serde_json::to_string(&args.file.display().to_string())?,
            src.sniffed.format.label(),
            serde_json::to_string(&src.sheet)?,
            src.sniffed.encoding.label(),
            src.delimiter_label()
        )?;
    }
    let (mut valid, mut invalid, mut warnings) = (0u64, 0u64, 0u64);
    let mut totals: BTreeMap<Mode, Tally> = Mode::ALL.iter().map(|m| (*m, Tally::default())).collect();
    let mut first = true;
    loop {
        let v = match scanner.next() {
            Ok(Some(v)) => v,
            Ok(None) => break,
            Err(e) => {
                if args.json {
                    writeln!(out, "],\"error\":{}}}", serde_json::to_string(&e.to_string())?)?;
                }
                out.flush()?;
                say!("error: {e}");
                return Ok(Exit::Input);
            }
        };
        // With the journal: every hold `run` would make (SPEC 3.2, 3.2b, 3.3), with its code.
        let changed = match (&journal, &v.row) {
            (Some(j), Some(row)) => j
                .would_hold(&row.account, &row.ifsc, row.amount, row.payee_id, row.retry_of, &rules)?
                .map(|(code, message)| {
                    let (code, column) = match code {
                        "PAYEE_CHANGED" => (payrun::input::Code::PayeeChanged, payee_heading.clone()),
                        "ALREADY_RETRIED" => (payrun::input::Code::AlreadyRetried, retry_heading.clone()),
                        _ => (payrun::input::Code::RepeatPayment, account_heading.clone()),
                    };
                    Problem {
                        line: v.record.line,
                        column,
                        code,
                        severity: Severity::Warning,
                        message: format!("`run` would hold this row: {message}"),
                    }
                }),
            _ => None,
        };
        for p in v.problems.iter().chain(changed.as_ref()) {
            if p.severity == Severity::Warning {
                warnings += 1;
            }
            if args.json {
                if !first {
                    out.write_all(b",")?;
                }
                first = false;
                serde_json::to_writer(&mut out, p)?;
            } else {
                for l in payrun::out::fill(&p.to_string(), width) {
                    writeln!(out, "{l}")?;
                }
            }
        }
        match &v.row {
            Some(row) => {
                valid += 1;
                if let Some(t) = totals.get_mut(&row.mode) {
                    t.add(row.amount);
                }
            }
            None => {
                invalid += 1;
                if let Some(w) = rejects.as_mut() {
                    w.write_record(rejects_row(&header, v.record, v.problems))?;
                }
            }
        }
    }
    let rows = scanner.rows();
    if rows == 0 {
        let e = InputError::NoRows { path: args.file.clone() };
        if args.json {
            writeln!(out, "],\"rows\":0,\"error\":{}}}", serde_json::to_string(&e.to_string())?)?;
        }
        out.flush()?;
        say!("error: {e}");
        return Ok(Exit::Input);
    }
    if let Some(w) = rejects {
        let file = w.into_inner().map_err(|e| anyhow::anyhow!("cannot write rejects: {e}"))?;
        file.commit().context("cannot write the rejects file")?;
    }
    let total: Tally = totals.values().fold(Tally::default(), |mut a, t| {
        a += *t;
        a
    });
    if args.json {
        let mut t = serde_json::Map::new();
        for (m, tally) in &totals {
            t.insert(m.as_str().into(), json!({"count": tally.count, "amount": tally.amount}));
        }
        t.insert("total".into(), json!({"count": total.count, "amount": total.amount}));
        writeln!(
            out,
            "],\"rows\":{rows},\"valid\":{valid},\"invalid\":{invalid},\"warnings\":{warnings},\"totals\":{}}}",
            serde_json::Value::Object(t)
        )?;
    } else {
        let src = scanner.source();
        let how = match &src.sheet {
            Some(sheet) => format!("Excel workbook, sheet '{sheet}'"),
            None => format!("{}, {}-separated", src.sniffed.encoding.label(), src.delimiter_label()),
        };
        writeln!(out)?;
        let line = format!(
            "{}: {how}, {}: {valid} valid, {invalid} invalid, {}",
            args.file.display(),
            plural(rows, "row"),
            plural(warnings, "warning")
        );
        for l in payrun::out::fill(&line, width) {
            writeln!(out, "{l}")?;
        }
        let mut table = Table::new("  ", 2, &[Align::Left, Align::Right, Align::Right]);
        table.row(["mode", "rows", "amount (₹)"]);
        for (m, t) in &totals {
            table.row([m.as_str().to_string(), t.count.to_string(), t.amount.to_indian()]);
        }
        table.row(["total".to_string(), total.count.to_string(), total.amount.to_indian()]);
        for l in table.lines() {
            writeln!(out, "{l}")?;
        }
        if let Some(p) = &args.rejects {
            for l in payrun::out::fill(&format!("rejected rows written to {}", p.display()), width) {
                writeln!(out, "{l}")?;
            }
        }
    }
    out.flush()?;
    Ok(if invalid == 0 { Exit::Ok } else { Exit::Input })
}
