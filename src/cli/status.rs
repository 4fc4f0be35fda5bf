//! `payrun status`: list batches, or show one batch's progress; `--refresh` asks the gateway about
//! every row that is not final yet (one status inquiry each, nothing is sent).
//!
//! ```text
//! payrun status [BATCH] [--state DIR] [--refresh] [--json]
//! ```

use std::sync::Arc;

use payrun::batch::{self, GatewayChoice};
use payrun::config::ConfigFile;
use payrun::engine::{self, progress::Silent};
use payrun::journal::Batch;
use payrun::out::{Align, Stream, Table};
use payrun::report::Summary;
use payrun::shutdown::Shutdown;
use payrun::{outln, say, say_out};
use serde_json::json;

use super::{Exit, StateArgs};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Batch id (or unique prefix) or the input file's path; all batches when omitted.
    batch: Option<String>,
    #[command(flatten)]
    state: StateArgs,
    /// Ask the gateway for the status of every row that is not final (sends nothing).
    #[arg(long, requires = "batch")]
    refresh: bool,
    /// `embedded` or a URL, for --refresh (default: the batch's own gateway).
    #[arg(long, value_name = "embedded|URL")]
    gateway: Option<String>,
    /// Print JSON on stdout.
    #[arg(long)]
    json: bool,
}

fn batch_state(b: &Batch) -> &'static str {
    match (&b.cancelled_at, &b.finished_at) {
        (Some(_), _) => "cancelled",
        (None, Some(_)) => "finished",
        (None, None) => "open",
    }
}

/// The list of batches: a table laid out from its cells (batch, created, rows, amount, state, and
/// the file when it fits), each batch's statuses on the line under it.
fn print_list(list: &[(Batch, Summary, u64)]) {
    let width = Stream::Stdout.width();
    let aligns = [Align::Left, Align::Left, Align::Right, Align::Right, Align::Left, Align::Left];
    let head = ["batch", "created", "rows", "amount (₹)", "state", "file"];
    let cells: Vec<[String; 6]> = list
        .iter()
        .map(|(b, s, _)| {
            let name = std::path::Path::new(&b.file_path)
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_else(|| b.file_path.clone());
            [
                b.id.clone(),
                payrun::report::local_time(&b.created_at),
                s.rows.to_string(),
                b.valid.amount.to_indian(),
                batch_state(b).to_string(),
                name,
            ]
        })
        .collect();
    // The file in its column when every line fits, else first on the line under its batch.
    let mut with_file = Table::new("", 2, &aligns);
    with_file.row(head);
    for c in &cells {
        with_file.row(c.iter().cloned());
    }
    let file_column = with_file.width() <= width;
    let table = if file_column {
        with_file
    } else {
        let mut t = Table::new("", 2, &aligns[..5]);
        t.row(head.iter().take(5).copied());
        for c in &cells {
            t.row(c.iter().take(5).cloned());
        }
        t
    };
    let indent = " ".repeat(table.widths()[0] + 2);
    let lines = table.lines();
    outln!("{}", lines[0]);
    for (i, ((_, s, _), c)) in list.iter().zip(&cells).enumerate() {
        outln!("{}", lines[i + 1]);
        let first = if file_column { indent.clone() } else { format!("{indent}{}: ", c[5]) };
        let counts: Vec<String> = payrun::report::STATUSES
            .iter()
            .map(|st| (st, s.count(st)))
            .filter(|(_, n)| *n > 0)
            .map(|(st, n)| format!("{st} {n}"))
            .collect();
        let counts: Vec<&str> = counts.iter().map(String::as_str).collect();
        for l in payrun::out::wrap_units(&counts, " · ", "", width, &first, &indent) {
            outln!("{}", l.trim_end());
        }
    }
}

pub async fn run(args: Args, config: &ConfigFile, operator: &str) -> anyhow::Result<Exit> {
    let session = args.state.session(config, operator, args.refresh)?;
    let journal = &session.journal;
    let Some(key) = &args.batch else {
        let where_ =
            if session.is_team() { journal.place().describe() } else { session.state.path.display().to_string() };
        let batches = journal.batches()?;
        let mut list = Vec::new();
        for b in &batches {
            let counts = journal.counts(&b.id)?;
            let s = Summary::new(b, &counts, b.result_path.as_deref().map(std::path::Path::new));
            list.push((b.clone(), s, counts.open()));
        }
        if args.json {
            let v: Vec<_> = list
                .iter()
                .map(|(b, s, open)| json!({"batch": b.id, "file": b.file_path, "created_at": b.created_at, "finished_at": b.finished_at, "cancelled_at": b.cancelled_at, "open": open, "statuses": s.status_totals, "result": b.result_path}))
                .collect();
            outln!("{}", serde_json::to_string_pretty(&v)?);
        } else if list.is_empty() {
            say_out!("no batches in {where_}");
        } else {
            say_out!("batches in {where_}:");
            print_list(&list);
        }
        return Ok(Exit::Ok);
    };
    let batch = session.find_batch(key)?;
    if args.refresh && journal.counts(&batch.id)?.open() > 0 {
        let choice = GatewayChoice::resolve(Some(args.gateway.as_deref().unwrap_or(&batch.gateway)), config);
        batch::same_gateway(&batch, &choice)?;
        let s = &batch.settings;
        // Team mode: inquiries count against the merchant's one rate budget too (SPEC 8.1).
        let conn = payrun::batch::connect::connect_with_budget(
            &choice,
            config,
            &session.state.path,
            Some((s.rate.max(1), s.burst.max(1))),
            batch::engine_config(s, config).flights().cap(),
            batch::embedded_profile(s),
            payrun::batch::connect::SharedBudgetSpec::of(journal.place()).as_ref(),
        )
        .await?;
        // Team mode: asking about rows drives the batch too: one process at a time (SPEC 8.1).
        let lease =
            journal.take_lease(&batch.id, config.journal.lease.unwrap_or(payrun::journal::team::lease::LEASE))?;
        let _lease = match lease {
            Ok(lease) => lease,
            Err(h) => anyhow::bail!(
                "batch {} is being driven by {} on {} (process {}) since {}: it answers for its rows; try again when it is done",
                batch.id,
                h.role,
                h.host,
                h.pid,
                payrun::report::local_time(&h.since)
            ),
        };
        let mut cfg = batch::engine_config(s, config);
        cfg.inquire_only = true;
        let outcome = engine::run(journal, &batch, Arc::clone(&conn.client), cfg, Shutdown::new(), &mut Silent).await;
        conn.close().await;
        let outcome = outcome?;
        say!("refreshed: {}", payrun::report::plural_of(outcome.stats.inquiries, "status inquiry", "status inquiries"));
        if journal.counts(&batch.id)?.open() == 0 {
            journal.set_finished(&batch.id)?;
        }
    }
    let batch = session.find_batch(&batch.id)?;
    let summary =
        Summary::new(&batch, &journal.counts(&batch.id)?, batch.result_path.as_deref().map(std::path::Path::new))
            .with_attention(journal, &batch, &session.where_args())?;
    if args.json {
        let mut v = serde_json::to_value(&summary)?;
        v["finished_at"] = json!(batch.finished_at);
        v["cancelled_at"] = json!(batch.cancelled_at);
        v["open"] = json!(journal.counts(&batch.id)?.open());
        outln!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        summary.print(&mut payrun::out::stdout())?;
        match (&batch.cancelled_at, &batch.finished_at) {
            (Some(c), _) => outln!("  cancelled {}", payrun::report::local_time(c)),
            (None, Some(f)) => outln!("  finished {}", payrun::report::local_time(f)),
            (None, None) => {
                outln!("  open; to continue it:");
                Stream::Stdout.command(&session.command(&format!("resume {}", batch.id)), 4);
            }
        }
    }
    Ok(Exit::Ok)
}
