//! `payrun run`: validate a file and pay every valid row exactly once.
//!
//! ```text
//! payrun run FILE [--gateway embedded|URL] [--out RESULT.csv] [--state DIR]
//!                 [--rate N] [--burst N] [--concurrency N] [--poll-timeout DUR]
//!                 [--skip-invalid] [--mode-auto] [--allow-duplicates] [--allow-unknown-ifsc]
//!                 [--new-batch] [--yes | --confirm-total AMOUNT] [--json]
//! ```
//!
//! The batch id comes from the file's bytes: running the same file again resumes its batch, and a
//! file whose batch finished is refused (`--new-batch` pays it again, with new references). The
//! embedded sandbox is the default gateway; any other gateway first shows the control totals and
//! asks for confirmation (or needs `--yes` / `--confirm-total` without a terminal).

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use payrun::config::ConfigFile;
use payrun::engine::{self, EngineConfig, Stop};
use payrun::input::{InputError, Scanner};
use payrun::journal::ingest::{IngestError, IngestOptions, Ingested, ingest};
use payrun::journal::scratch::DiskIndex;
use payrun::journal::{Batch, BatchSettings, Journal, RowState};
use payrun::money::{Amount, Tally};
use payrun::report::{self, Summary};
use payrun::sandbox::Profile;
use payrun::shutdown::Shutdown;

use super::validate::{RuleArgs, encoding_note};
use super::{Exit, GatewayChoice, connect};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The payout file (CSV with a header row).
    file: PathBuf,
    #[command(flatten)]
    pub drive: DriveArgs,
    /// Send the valid rows of a file that has invalid ones (reported as INVALID).
    #[arg(long)]
    skip_invalid: bool,
    #[command(flatten)]
    rules: RuleArgs,
    /// Pay a file whose batch already finished again, as a new batch with new references.
    #[arg(long)]
    new_batch: bool,
}

/// Options `run` and `resume` share.
#[derive(clap::Args, Debug, Clone)]
pub struct DriveArgs {
    /// `embedded` (the built-in sandbox: no money moves) or the gateway's base URL.
    #[arg(long, value_name = "embedded|URL")]
    pub gateway: Option<String>,
    /// Where to write the result file (default: <state>/results/<file>-<batch>.csv).
    #[arg(long, value_name = "RESULT.csv")]
    pub out: Option<PathBuf>,
    /// State directory holding the journal.
    #[arg(long, default_value = ".payrun", value_name = "DIR")]
    pub state: PathBuf,
    /// Gateway requests per second, all calls counted (default 10).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub rate: Option<u32>,
    /// Requests allowed at once above the rate (default: rate/10, at least 1).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub burst: Option<u32>,
    /// Requests in flight at most (default 8).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub concurrency: Option<u32>,
    /// How long to keep polling pending payouts once all are sent (default 10m).
    #[arg(long, value_name = "DUR", value_parser = humantime::parse_duration)]
    pub poll_timeout: Option<Duration>,
    /// Confirm sending to a non-embedded gateway without asking.
    #[arg(long, conflicts_with = "confirm_total")]
    pub yes: bool,
    /// Confirm by stating the total about to be sent (must match exactly).
    #[arg(long, value_name = "AMOUNT")]
    pub confirm_total: Option<String>,
    /// Print one JSON summary on stdout.
    #[arg(long)]
    pub json: bool,
    /// Profile of the embedded sandbox (default: realistic; on resume, the one the batch ran with).
    #[arg(long, value_enum)]
    pub sandbox_profile: Option<Profile>,
}

/// How many row problems `run` prints before pointing at `payrun validate`.
const SHOWN_PROBLEMS: usize = 20;

pub async fn run(args: Args, config: &ConfigFile) -> anyhow::Result<Exit> {
    let opts = args.rules.options(config)?;
    let journal = Journal::open(&args.drive.state)
        .with_context(|| format!("cannot open the journal in {}", args.drive.state.display()))?;
    let _lock = journal.lock()?;
    // Duplicates are remembered on disk: memory stays flat however long the file.
    let index = DiskIndex::create(&args.drive.state).context("cannot create the scratch duplicate index")?;
    let mut scanner = match Scanner::open_with(&args.file, true, opts, |_, _| Box::new(index)) {
        Ok(s) => s,
        Err(e) => {
            return Ok(refuse(&args, format!("{e}")));
        }
    };
    encoding_note(&scanner);
    let sha = scanner.source().sniffed.sha256.context("file hash missing")?;
    let sha_hex = hex::encode(sha);
    let previous = journal.latest_batch_for(&sha_hex)?;
    let generation = match (&previous, args.new_batch) {
        (Some(b), false) if b.finished_at.is_some() => {
            return Ok(refuse(
                &args,
                format!(
                    "{} was already paid as batch {} (finished {}; result: {}). Nothing sent.\n       To pay the same file again as a new batch with new references, use --new-batch.",
                    args.file.display(),
                    b.id,
                    b.finished_at.as_deref().unwrap_or("?"),
                    b.result_path.as_deref().unwrap_or("see payrun report")
                ),
            ));
        }
        (Some(b), false) => {
            eprintln!("batch {} of this file is not finished: resuming it (nothing already sent is sent again)", b.id);
            let batch = b.clone();
            drop(scanner);
            return drive(&journal, batch, &args.drive, config).await;
        }
        (Some(b), true) if b.finished_at.is_none() => {
            return Ok(refuse(
                &args,
                format!(
                    "batch {} of this file is not finished; finish it first (payrun resume {}), then pay the file again with --new-batch.",
                    b.id, b.id
                ),
            ));
        }
        (Some(b), true) => b.generation + 1,
        (None, _) => 1,
    };
    let settings = settings_for(&args.drive, config, args.skip_invalid, &args.rules, None);
    let choice = GatewayChoice::resolve(args.drive.gateway.as_deref(), config);
    let mut shown = 0usize;
    let opts = IngestOptions {
        generation,
        gateway: gateway_label(&choice),
        settings,
        skip_invalid: args.skip_invalid,
        allow_same_rows: args.new_batch,
    };
    let ingested = ingest(&journal, &mut scanner, opts, |p| {
        if shown < SHOWN_PROBLEMS {
            eprintln!("{p}");
        }
        shown += 1;
    });
    if shown > SHOWN_PROBLEMS {
        eprintln!("... and {} more (payrun validate {} lists them all)", shown - SHOWN_PROBLEMS, args.file.display());
    }
    // The scanner (and its duplicate index) is done: free it before the long part.
    drop(scanner);
    let batch = match ingested {
        Ok(Ingested::Stored(b)) => b,
        Ok(Ingested::HasErrors { invalid_rows, total, valid }) => {
            return Ok(refuse(
                &args,
                format!(
                    "{invalid_rows} of {total} rows have errors; nothing sent. Fix them (payrun validate shows every problem), or use --skip-invalid to send the {} valid rows.",
                    valid.count
                ),
            ));
        }
        Ok(Ingested::SameRowsAs(earlier)) => {
            return Ok(refuse(
                &args,
                format!(
                    "{} pays the same rows as batch {} ({}, created {}), though its bytes differ (saved again?). Nothing sent.\n       If this is a new payment of the same rows, use --new-batch.",
                    args.file.display(),
                    earlier.id,
                    earlier.file_path,
                    earlier.created_at
                ),
            ));
        }
        Ok(Ingested::NothingToSend { total: 0 }) => {
            return Ok(refuse(&args, format!("{}", InputError::NoRows { path: args.file.clone() })));
        }
        Ok(Ingested::NothingToSend { .. }) => {
            return Ok(refuse(&args, format!("no valid rows in {}; nothing to send", args.file.display())));
        }
        Err(IngestError::Input(e)) => {
            return Ok(refuse(&args, format!("{e}")));
        }
        Err(IngestError::Journal(e)) => return Err(e.into()),
    };
    let invalid = batch.total_rows - batch.valid.count;
    eprintln!(
        "batch {}: {} rows, {} valid (₹{}){}",
        batch.id,
        batch.total_rows,
        batch.valid.count,
        batch.valid.amount.to_indian(),
        if invalid > 0 { format!(", {invalid} invalid (skipped)") } else { String::new() }
    );
    drive(&journal, batch, &args.drive, config).await
}

/// Refuses the file: the reason on stderr, and with `--json` one JSON document on stdout too. Exit 1:
/// nothing was sent.
fn refuse(args: &Args, message: String) -> Exit {
    eprintln!("error: {message}");
    if args.drive.json {
        let doc =
            serde_json::json!({"file": args.file.display().to_string(), "error": message, "exit": Exit::Input as u8});
        println!("{doc}");
    }
    Exit::Input
}

/// One batch, one gateway: half a batch "paid" by one gateway and half by another is no batch at
/// all, and its in-doubt rows would be asked about where they were never sent (and sent again).
pub fn same_gateway(batch: &Batch, choice: &GatewayChoice) -> Result<(), String> {
    let now = gateway_label(choice);
    if now == batch.gateway {
        return Ok(());
    }
    Err(format!(
        "batch {} ran against {}; it cannot continue against {now}. Finish it there, or pay the file as a new batch (--new-batch) once it is finished.",
        batch.id, batch.gateway
    ))
}

/// The gateway as the journal records it: `embedded`, or the URL without any user:password part.
pub fn gateway_label(choice: &GatewayChoice) -> String {
    match choice {
        GatewayChoice::Embedded => "embedded".into(),
        GatewayChoice::Url(u) => match reqwest::Url::parse(u) {
            Ok(mut url) => {
                let _ = url.set_username("");
                let _ = url.set_password(None);
                url.to_string().trim_end_matches('/').to_string()
            }
            Err(_) => u.clone(),
        },
    }
}

/// Settings for a batch: flags, else the batch's own (on resume), else payrun.toml, else defaults.
pub fn settings_for(
    a: &DriveArgs,
    config: &ConfigFile,
    skip_invalid: bool,
    rules: &RuleArgs,
    previous: Option<&BatchSettings>,
) -> BatchSettings {
    let r = &config.run;
    let prev = previous.cloned();
    let rate = a.rate.or(prev.as_ref().map(|p| p.rate)).or(r.rate).unwrap_or(10).max(1);
    let burst = a.burst.or(prev.as_ref().map(|p| p.burst)).or(r.burst).unwrap_or((rate / 10).max(1)).max(1);
    let concurrency = a.concurrency.or(prev.as_ref().map(|p| p.concurrency)).or(r.concurrency).unwrap_or(8).max(1);
    let poll_timeout = a
        .poll_timeout
        .or(prev.as_ref().map(|p| Duration::from_millis(p.poll_timeout_ms)))
        .or(r.poll_timeout)
        .unwrap_or(Duration::from_secs(600));
    BatchSettings {
        rate,
        burst,
        concurrency,
        poll_timeout_ms: u64::try_from(poll_timeout.as_millis()).unwrap_or(u64::MAX),
        mode_auto: prev.as_ref().map(|p| p.mode_auto).unwrap_or(rules.mode_auto),
        skip_invalid: prev.as_ref().map(|p| p.skip_invalid).unwrap_or(skip_invalid),
        allow_duplicates: prev.as_ref().map(|p| p.allow_duplicates).unwrap_or(rules.allow_duplicates),
        allow_unknown_ifsc: prev.as_ref().map(|p| p.allow_unknown_ifsc).unwrap_or(rules.allow_unknown_ifsc),
        latitude: prev.as_ref().map(|p| p.latitude.clone()).or(r.latitude.clone()).unwrap_or_default(),
        longitude: prev.as_ref().map(|p| p.longitude.clone()).or(r.longitude.clone()).unwrap_or_default(),
        payee_list_id: prev.as_ref().map(|p| p.payee_list_id.clone()).or(r.payee_list_id.clone()).unwrap_or_default(),
        sandbox_profile: a
            .sandbox_profile
            .and_then(|p| clap::ValueEnum::to_possible_value(&p).map(|v| v.get_name().to_string()))
            .or(prev.as_ref().and_then(|p| p.sandbox_profile.clone())),
    }
}

/// The engine's configuration from a batch's settings and payrun.toml.
pub fn engine_config(s: &BatchSettings, config: &ConfigFile) -> EngineConfig {
    let r = &config.run;
    let d = EngineConfig::default();
    EngineConfig {
        concurrency: s.concurrency as usize,
        poll_timeout: Duration::from_millis(s.poll_timeout_ms),
        first_poll: r.first_poll.unwrap_or(d.first_poll),
        pending_poll: r.first_poll.map(|f| f.saturating_mul(4)).unwrap_or(d.pending_poll),
        max_poll_interval: r.max_poll_interval.unwrap_or(d.max_poll_interval),
        resend_grace: r.resend_grace.unwrap_or(d.resend_grace),
        latitude: s.latitude.clone(),
        longitude: s.longitude.clone(),
        payee_list_id: s.payee_list_id.clone(),
        ..d
    }
}

/// Asks for (or checks) confirmation before the first payout to a real gateway.
fn confirm(journal: &Journal, batch: &Batch, a: &DriveArgs) -> anyhow::Result<bool> {
    let counts = journal.counts(&batch.id)?;
    let mut to_send = Tally::default();
    let mut by_mode: Vec<String> = Vec::new();
    for m in payrun::input::Mode::ALL {
        let mut t = Tally::default();
        for (s, mode, tally) in &counts.cells {
            if *s == RowState::Ready && *mode == Some(m) {
                t += *tally;
            }
        }
        if t.count > 0 {
            by_mode.push(format!("{} {} rows ₹{}", m, t.count, t.amount.to_indian()));
        }
        to_send += t;
    }
    let in_flight = counts.open() - to_send.count;
    eprintln!("about to pay through {}:", batch.gateway);
    eprintln!("  {} rows, ₹{} ({})", to_send.count, to_send.amount.to_indian(), by_mode.join(", "));
    if in_flight > 0 {
        eprintln!("  and follow {in_flight} row(s) already sent");
    }
    if a.yes {
        return Ok(true);
    }
    if let Some(stated) = &a.confirm_total {
        let stated = Amount::parse_cell(stated.trim()).map_err(|e| anyhow::anyhow!("--confirm-total: {e}"))?;
        if stated == to_send.amount {
            return Ok(true);
        }
        eprintln!(
            "error: --confirm-total ₹{} does not match the total about to be sent, ₹{}",
            stated.to_indian(),
            to_send.amount.to_indian()
        );
        return Ok(false);
    }
    if !std::io::stdin().is_terminal() {
        eprintln!("error: not a terminal: confirm with --yes or --confirm-total {}", to_send.amount);
        return Ok(false);
    }
    eprint!("Send these payouts? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}

/// Runs (or resumes) a stored batch to the end, writes its result and prints the summary. The
/// caller holds the state directory's lock ([`Journal::lock`]).
pub async fn drive(journal: &Journal, batch: Batch, a: &DriveArgs, config: &ConfigFile) -> anyhow::Result<Exit> {
    let state = journal.dir().to_path_buf();
    let choice = match &a.gateway {
        Some(g) => GatewayChoice::resolve(Some(g), config),
        None => GatewayChoice::resolve(Some(&batch.gateway), config),
    };
    // One batch, one gateway: half a batch "paid" by the sandbox and half by the real API is no
    // batch at all, and in-doubt rows would be asked about at a gateway that never saw them.
    if let Err(msg) = same_gateway(&batch, &choice) {
        eprintln!("error: {msg}");
        return Ok(Exit::Input);
    }
    let rules = RuleArgs::default();
    let settings = settings_for(a, config, false, &rules, Some(&batch.settings));
    if settings != batch.settings {
        journal.update_settings(&batch.id, &settings)?;
    }
    let profile = embedded_profile(&settings);
    let conn =
        connect(&choice, config, &state, Some((settings.rate, settings.burst)), settings.concurrency as usize, profile)
            .await?;
    if conn.sandbox.is_some() {
        eprintln!("gateway: embedded sandbox ({profile:?} profile) — simulated, NO REAL MONEY MOVES");
    } else if batch.confirmed_at.is_none() && journal.counts(&batch.id)?.state(RowState::Ready).count > 0 {
        if !confirm(journal, &batch, a)? {
            eprintln!("nothing sent. The batch is stored: payrun resume {} continues it.", batch.id);
            conn.close().await;
            return Ok(Exit::Input);
        }
        journal.set_confirmed(&batch.id)?;
    }
    let shutdown = Shutdown::new();
    shutdown.on_signals(|| {
        eprintln!("\nstopping: no new payouts; waiting for the requests in flight (Ctrl-C again to exit at once)");
    });
    let mut progress = payrun::engine::progress::for_stderr(a.json);
    let cfg = engine_config(&settings, config);
    let outcome = engine::run(journal, &batch, Arc::clone(&conn.client), cfg, shutdown, progress.as_mut()).await;
    conn.close().await;
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => {
            // Payouts may already have gone out: this is an abort, not "nothing sent".
            eprintln!("error: the run stopped on a journal error, and sent nothing after it: {e}");
            eprintln!("to continue once the cause is fixed: payrun resume {} --state {}", batch.id, state.display());
            return Ok(Exit::Aborted);
        }
    };
    finish(journal, &batch, a, &state, Some(&outcome.stop), Some(&outcome.stats))
}

/// The embedded sandbox's profile recorded in a batch's settings (realistic when none is).
pub fn embedded_profile(settings: &BatchSettings) -> Profile {
    use clap::ValueEnum;
    settings.sandbox_profile.as_deref().and_then(|p| Profile::from_str(p, true).ok()).unwrap_or(Profile::Realistic)
}

/// Writes the result file, marks the batch finished when it is, prints the summary; the exit code.
pub fn finish(
    journal: &Journal,
    batch: &Batch,
    a: &DriveArgs,
    state: &Path,
    stop: Option<&Stop>,
    stats: Option<&payrun::engine::Snapshot>,
) -> anyhow::Result<Exit> {
    let out = a.out.clone().unwrap_or_else(|| report::default_result_path(state, batch));
    report::write_result(journal, batch, &out)?;
    journal.set_result_path(&batch.id, &out.display().to_string())?;
    let counts = journal.counts(&batch.id)?;
    let open = counts.open();
    if open == 0 {
        journal.set_finished(&batch.id)?;
    }
    let summary = Summary::new(batch, &counts, Some(&out));
    let aborted = matches!(stop, Some(Stop::Interrupted | Stop::CredentialsRefused(_) | Stop::Unreachable(_)));
    let exit = if aborted {
        Exit::Aborted
    } else if open > 0 || summary.count("FAILED") > 0 {
        Exit::Partial
    } else {
        Exit::Ok
    };
    if a.json {
        let mut v = serde_json::to_value(&summary)?;
        v["stop"] = serde_json::json!(stop.map(stop_word));
        v["exit"] = serde_json::json!(exit as u8);
        if let Some(s) = stats {
            v["stats"] = serde_json::json!({
                "sends": s.sends_started, "inquiries": s.inquiries, "resends": s.resends,
                "lost_answers": s.lost_answers, "not_sent": s.not_sent, "elapsed_s": s.elapsed.as_secs_f64(),
            });
        }
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        let stdout = std::io::stdout();
        let mut o = stdout.lock();
        summary.print(&mut o)?;
        if let Some(s) = stats {
            writeln!(
                o,
                "  {} postings, {} status inquiries, {} resends, {} lost answers resolved, in {:.1}s",
                s.sends_started,
                s.inquiries,
                s.resends,
                s.lost_answers,
                s.elapsed.as_secs_f64()
            )?;
        }
    }
    match stop {
        Some(Stop::CredentialsRefused(m)) => eprintln!("stopped: the gateway refused the credentials: {m}"),
        Some(Stop::Unreachable(m)) => eprintln!("stopped: the gateway could not be reached: {m}"),
        Some(Stop::Interrupted) => eprintln!("stopped by the operator."),
        Some(Stop::PollTimeout) => eprintln!("poll timeout: {open} row(s) still pending are written as PENDING."),
        _ => {}
    }
    if open > 0 {
        eprintln!("to continue: payrun resume {} --state {}", batch.id, state.display());
    }
    Ok(exit)
}

fn stop_word(s: &Stop) -> &'static str {
    match s {
        Stop::Finished => "finished",
        Stop::PollTimeout => "poll_timeout",
        Stop::Interrupted => "interrupted",
        Stop::CredentialsRefused(_) => "credentials_refused",
        Stop::Unreachable(_) => "unreachable",
        Stop::Refreshed => "refreshed",
    }
}

/// Finds a batch by id (or unique prefix) or by the path of its input file (its latest batch).
pub fn find_batch(journal: &Journal, key: &str) -> anyhow::Result<Batch> {
    let path = Path::new(key);
    if path.is_file() {
        let sniffed = payrun::input::reader::sniff(path, true)?;
        let sha = sniffed.sha256.map(hex::encode).unwrap_or_default();
        if let Some(b) = journal.latest_batch_for(&sha)? {
            return Ok(b);
        }
        bail!("no batch of {} in {}", key, journal.dir().display());
    }
    match journal.batch(key)? {
        Some(b) => Ok(b),
        None => bail!("no batch '{key}' in {} (payrun status lists them)", journal.dir().display()),
    }
}
