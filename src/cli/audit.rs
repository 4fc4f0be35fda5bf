//! `payrun audit`: a batch's evidence log (SPEC 3.4). `--verify` checks it cannot have been
//! quietly changed (the hash chain, the journal's anchor, and that the journal's row states agree
//! with the log); `--row LINE` tells one row's story, request by request, in the operator's time
//! zone, for a person rather than a JSON reader.
//!
//! ```text
//! payrun audit BATCH [--row LINE] [--verify] [--export FILE.jsonl] [--state DIR | --journal URL]
//! ```
//!
//! The log is a file beside a SQLite journal (`<state>/audit/<batch>.jsonl`), and a table of the
//! database in team mode; `--verify` checks it where it lives, and `--export` writes its file form
//! (the same lines, byte for byte, so the chain verifies outside payrun too).
//!
//! Exit 0 when the log verifies (or for a story), 1 when it does not (naming the first bad record).

use payrun::audit::verify::{self, describe};
use payrun::config::ConfigFile;

use payrun::out::Stream;
use payrun::report::plural;
use payrun::{outln, say_out};

use super::{Exit, StateArgs};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Batch id (or unique prefix) or the input file's path.
    batch: String,
    /// Tell the story of the row at this line of the input file.
    #[arg(long, value_name = "LINE")]
    row: Option<u64>,
    /// Check the chain of records and that the journal agrees with it (exit 1 naming the first bad
    /// record).
    #[arg(long)]
    verify: bool,
    /// Write the log's records, one JSON line each, to this file (owner-only).
    #[arg(long, value_name = "FILE.jsonl")]
    export: Option<std::path::PathBuf>,
    #[command(flatten)]
    state: StateArgs,
}

pub fn run(args: Args, config: &ConfigFile, operator: &str) -> anyhow::Result<Exit> {
    let session = args.state.session(config, operator, false)?;
    let batch = session.find_batch(&args.batch)?;
    let journal = &session.journal;
    let place = match journal.place() {
        payrun::journal::Place::Sqlite { .. } => payrun::audit::path_of(journal.dir(), &batch.id).display().to_string(),
        payrun::journal::Place::Postgres { url, .. } => format!("{} (table evidence)", url.display()),
    };
    let mut exit = Exit::Ok;
    if let Some(out) = &args.export {
        let mut file = payrun::files::AtomicFile::create(out)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", out.display()))?;
        let mut n = 0u64;
        journal.each_evidence_line(&batch.id, |_, line| {
            use std::io::Write;
            file.write_all(line).and_then(|()| file.write_all(b"\n"))?;
            n += 1;
            Ok(true)
        })?;
        file.commit()?;
        say_out!("{} of batch {} written to {}", plural(n, "record"), batch.id, out.display());
        if !args.verify && args.row.is_none() {
            return Ok(exit);
        }
    }
    if args.verify || args.row.is_none() {
        match verify::verify(journal, &batch)? {
            Ok(v) => {
                say_out!(
                    "evidence log of batch {}: chain intact, the journal agrees ({})",
                    batch.id,
                    plural(v.rows, "row")
                );
                outln!("  {} in {place}", plural(v.records, "record"));
                if v.uncommitted > 0 {
                    say_out!(
                        "  {} of a run that stopped before committing them {} not counted",
                        plural(v.uncommitted, "record"),
                        if v.uncommitted == 1 { "is" } else { "are" }
                    );
                }
            }
            Err(f) => {
                say_out!("evidence log of batch {}: NOT INTACT at record {}:", batch.id, f.record);
                say_out!("  {}", f.what);
                outln!("  {place}");
                exit = Exit::Input;
            }
        }
    }
    if let Some(line) = args.row {
        let Some(row) = journal.row_at_line(&batch.id, line)? else {
            anyhow::bail!("batch {} has no row at line {line}", batch.id);
        };
        let amount = row.amount.map(|a| format!("₹{}", a.to_indian())).unwrap_or_else(|| "-".into());
        say_out!("line {line} of {} (batch {}):", batch.file_path, batch.id);
        say_out!(
            "  {}, account {}, {amount}, reference {}",
            if row.name.is_empty() { "(invalid row)" } else { &row.name },
            payrun::journal::holds::mask_account(&row.account),
            row.external_ref.as_deref().unwrap_or("-")
        );
        say_out!(
            "now: {}{}",
            row.status.state().result_status(),
            row.status.code.as_deref().map(|c| format!(" {c}")).unwrap_or_default()
        );
        let records = verify::row_records(journal, &batch, line)?;
        if records.is_empty() {
            say_out!("  (no record: the row was never held, sent or asked about)");
        }
        let width = Stream::Stdout.width();
        for (r, committed) in records {
            let at = format!("  {}  ", payrun::report::local_time_secs(&r.at));
            let text = format!(
                "{}{}",
                describe(&r),
                if committed { "" } else { "  [not committed: the run stopped before the journal took it]" }
            );
            // Continuation lines under the description, the time standing out on the left.
            for l in payrun::out::wrap_phrases(&text, width, &at, &" ".repeat(payrun::out::cols(&at))) {
                outln!("{l}");
            }
        }
    }
    Ok(exit)
}
