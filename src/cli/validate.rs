//! `payrun validate`: check a payout file against every rule of SPEC section 2, sending nothing.
//!
//! ```text
//! payrun validate FILE [--rejects OUT.csv] [--json] [--mode-auto] [--allow-duplicates]
//!                      [--allow-unknown-ifsc]
//! ```
//!
//! Prints every problem of every row (line, column, code, message) as it is found, then a summary
//! (rows, valid, invalid, warnings, count and total per mode). `--json` prints one JSON document
//! instead: `{file, encoding, delimiter, rows, valid, invalid, warnings, totals, problems}`.
//! `--rejects` writes the rows with errors, in input format plus `line` and `reason` columns.
//! Exit 0 when no row has an error (warnings allowed), 1 otherwise or on a file-level problem.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use payrun::config::ConfigFile;
use payrun::files::AtomicFile;
use payrun::input::{InputError, Mode, RuleOptions, Scanner, Severity};
use payrun::money::Tally;
use payrun::report::inert;
use serde_json::json;

use super::Exit;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The payout file (CSV with a header row).
    file: PathBuf,
    /// Write the rejected rows, with a reason column, to this CSV file.
    #[arg(long, value_name = "OUT.csv")]
    rejects: Option<PathBuf>,
    /// One JSON document on stdout instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    rules: RuleArgs,
}

/// The rule switches `validate` and `run` share.
#[derive(clap::Args, Debug, Clone)]
pub struct RuleArgs {
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
            mode_auto: self.mode_auto,
            default_mode,
            allow_duplicates: self.allow_duplicates,
            allow_unknown_ifsc: self.allow_unknown_ifsc,
        })
    }
}

/// Says aloud how the file was read when it was not plain UTF-8.
pub fn encoding_note(scanner: &Scanner) {
    let src = scanner.source();
    let name = src.path.display();
    match src.sniffed.encoding {
        payrun::input::Encoding::Windows1252 => eprintln!(
            "note: {name} is not valid UTF-8; read it as a whole as Windows-1252 (Excel's \"CSV\" on Windows). Check names with accents."
        ),
        payrun::input::Encoding::Utf16le | payrun::input::Encoding::Utf16be => {
            eprintln!("note: {name} is {} (Excel's \"Unicode text\")", src.sniffed.encoding.label())
        }
        _ => {}
    }
    for n in &scanner.columns().notes {
        eprintln!("note: {n}");
    }
}

fn file_error(args: &Args, e: InputError) -> anyhow::Result<Exit> {
    if args.json {
        println!("{}", json!({"file": args.file.display().to_string(), "error": e.to_string()}));
    }
    eprintln!("error: {e}");
    Ok(Exit::Input)
}

pub fn run(args: Args, config: &ConfigFile) -> anyhow::Result<Exit> {
    let opts = args.rules.options(config)?;
    let mut scanner = match Scanner::open(&args.file, false, opts) {
        Ok(s) => s,
        Err(e) => return file_error(&args, e),
    };
    encoding_note(&scanner);
    let header = scanner.columns().header.clone();
    let mut rejects = match &args.rejects {
        Some(path) => {
            let file = AtomicFile::create(path).with_context(|| format!("cannot create {}", path.display()))?;
            let mut w = csv::WriterBuilder::new().flexible(true).from_writer(file);
            let mut h: Vec<String> = header.iter().map(|c| inert(c).into_owned()).collect();
            h.push("line".into());
            h.push("reason".into());
            w.write_record(&h)?;
            Some(w)
        }
        None => None,
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    if args.json {
        write!(
            out,
            "{{\"file\":{},\"encoding\":\"{}\",\"delimiter\":\"{}\",\"problems\":[",
            serde_json::to_string(&args.file.display().to_string())?,
            scanner.source().sniffed.encoding.label(),
            scanner.source().delimiter_label()
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
                eprintln!("error: {e}");
                return Ok(Exit::Input);
            }
        };
        for p in v.problems {
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
                writeln!(out, "{p}")?;
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
                    let reason: Vec<String> = v
                        .problems
                        .iter()
                        .filter(|p| p.severity == Severity::Error)
                        .map(|p| {
                            if p.column.is_empty() {
                                format!("{}: {}", p.code, p.message)
                            } else {
                                format!("{} {}: {}", p.column, p.code, p.message)
                            }
                        })
                        .collect();
                    let mut cells: Vec<String> = v.record.iter().map(|c| inert(c).into_owned()).collect();
                    while cells.len() < header.len() {
                        cells.push(String::new());
                    }
                    cells.push(v.record.line.to_string());
                    cells.push(inert(&reason.join("; ")).into_owned());
                    w.write_record(&cells)?;
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
        eprintln!("error: {e}");
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
        writeln!(
            out,
            "\n{}: {}, {}-separated, {rows} rows: {valid} valid, {invalid} invalid, {warnings} warning{}",
            args.file.display(),
            src.sniffed.encoding.label(),
            src.delimiter_label(),
            if warnings == 1 { "" } else { "s" }
        )?;
        writeln!(out, "  {:<6} {:>8} {:>22}", "mode", "rows", "amount (₹)")?;
        for (m, t) in &totals {
            writeln!(out, "  {:<6} {:>8} {:>22}", m.as_str(), t.count, t.amount.to_indian())?;
        }
        writeln!(out, "  {:<6} {:>8} {:>22}", "total", total.count, total.amount.to_indian())?;
        if let Some(p) = &args.rejects {
            writeln!(out, "rejected rows written to {}", p.display())?;
        }
    }
    out.flush()?;
    Ok(if invalid == 0 { Exit::Ok } else { Exit::Input })
}
