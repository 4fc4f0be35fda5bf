//! `payrun status`: list batches, or show one batch's progress; `--refresh` asks the gateway about
//! every row that is not final yet (one status inquiry each, nothing is sent).
//!
//! ```text
//! payrun status [BATCH] [--state DIR] [--refresh] [--json]
//! ```

use std::path::PathBuf;
use std::sync::Arc;

use payrun::config::ConfigFile;
use payrun::engine::{self, progress::Silent};
use payrun::journal::Journal;
use payrun::report::Summary;
use payrun::shutdown::Shutdown;
use serde_json::json;

use super::run::{engine_config, find_batch};
use super::{Exit, GatewayChoice, connect};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Batch id (or unique prefix) or the input file's path; all batches when omitted.
    batch: Option<String>,
    #[arg(long, default_value = ".payrun", value_name = "DIR")]
    state: PathBuf,
    /// Ask the gateway for the status of every row that is not final (sends nothing).
    #[arg(long, requires = "batch")]
    refresh: bool,
    /// `embedded` or a URL, for --refresh (default: the batch's own gateway).
    #[arg(long, value_name = "embedded|URL")]
    gateway: Option<String>,
    #[arg(long)]
    json: bool,
}

pub async fn run(args: Args, config: &ConfigFile) -> anyhow::Result<Exit> {
    let journal = Journal::open(&args.state)?;
    let Some(key) = &args.batch else {
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
                .map(|(b, s, open)| json!({"batch": b.id, "file": b.file_path, "created_at": b.created_at, "finished_at": b.finished_at, "open": open, "statuses": s.status_totals, "result": b.result_path}))
                .collect();
            println!("{}", serde_json::to_string_pretty(&v)?);
        } else if list.is_empty() {
            println!("no batches in {}", args.state.display());
        } else {
            println!(
                "{:<13} {:<25} {:>6} {:>8} {:>7} {:>8} {:>7}  file",
                "batch", "created", "rows", "success", "failed", "pending", "ready"
            );
            for (b, s, _) in &list {
                println!(
                    "{:<13} {:<25} {:>6} {:>8} {:>7} {:>8} {:>7}  {}{}",
                    b.id,
                    b.created_at,
                    s.rows,
                    s.count("SUCCESS"),
                    s.count("FAILED"),
                    s.count("PENDING"),
                    s.count("NOT_SENT"),
                    b.file_path,
                    if b.finished_at.is_some() { "" } else { "  (open)" }
                );
            }
        }
        return Ok(Exit::Ok);
    };
    let batch = find_batch(&journal, key)?;
    if args.refresh && journal.counts(&batch.id)?.open() > 0 {
        let _lock = journal.lock()?;
        let choice = GatewayChoice::resolve(Some(args.gateway.as_deref().unwrap_or(&batch.gateway)), config);
        if let Err(msg) = super::run::same_gateway(&batch, &choice) {
            anyhow::bail!(msg);
        }
        let s = &batch.settings;
        let conn = connect(
            &choice,
            config,
            &args.state,
            Some((s.rate.max(1), s.burst.max(1))),
            s.concurrency.max(1) as usize,
            super::run::embedded_profile(s),
        )
        .await?;
        let mut cfg = engine_config(s, config);
        cfg.inquire_only = true;
        let outcome = engine::run(&journal, &batch, Arc::clone(&conn.client), cfg, Shutdown::new(), &mut Silent).await;
        conn.close().await;
        let outcome = outcome?;
        eprintln!("refreshed: {} status inquiries", outcome.stats.inquiries);
        if journal.counts(&batch.id)?.open() == 0 {
            journal.set_finished(&batch.id)?;
        }
    }
    let batch = find_batch(&journal, &batch.id)?;
    let summary =
        Summary::new(&batch, &journal.counts(&batch.id)?, batch.result_path.as_deref().map(std::path::Path::new))
            .with_attention(&journal, &batch, &super::report::state_arg(&args.state))?;
    if args.json {
        let mut v = serde_json::to_value(&summary)?;
        v["finished_at"] = json!(batch.finished_at);
        v["open"] = json!(journal.counts(&batch.id)?.open());
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        summary.print(&mut std::io::stdout().lock())?;
        match &batch.finished_at {
            Some(f) => println!("  finished {f}"),
            None => println!("  open: payrun resume {} --state {}", batch.id, args.state.display()),
        }
    }
    Ok(Exit::Ok)
}
