//! `payrun journal`: the team journal in PostgreSQL (SPEC 8.1), for the database's owner.
//!
//! ```text
//! payrun journal init [--journal URL]                 # create or upgrade the schema, the roles
//! payrun journal import [--journal URL] [--state DIR] # copy a state directory's SQLite journal in
//! ```
//!
//! `init` applies the numbered migrations not applied yet, each in one transaction, recorded in
//! the database, and creates the group roles of SPEC 8.2 (`payrun_maker`, `payrun_checker`,
//! `payrun_sender`); a schema newer than this payrun is refused, naming both versions. It needs the
//! owner of the database (not a superuser: a rented database's owner with CREATEROLE will do).
//! `import` copies batches, rows, actions, exports and evidence logs; running it twice imports
//! nothing twice.

use anyhow::Context as _;
use payrun::config::ConfigFile;
use payrun::journal::Journal;
use payrun::journal::store::postgres::PgStore;
use payrun::journal::team::schema;
use payrun::report::{plural, plural_of};
use payrun::say;

use super::run::print_command;
use super::{Exit, StateArgs};

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Create or upgrade the team journal's schema and its roles (the database's owner).
    Init(Args),
    /// Copy a state directory's SQLite journal into the team journal (idempotent).
    Import(Args),
}

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    state: StateArgs,
}

pub fn run(command: Command, config: &ConfigFile, operator: &str) -> anyhow::Result<Exit> {
    match command {
        Command::Init(a) => init(a, config),
        Command::Import(a) => import(a, config, operator),
    }
}

fn init(a: Args, config: &ConfigFile) -> anyhow::Result<Exit> {
    let Some(url) = a.state.journal_url(config)? else {
        anyhow::bail!("journal init needs the team database: --journal URL (or PAYRUN_JOURNAL)");
    };
    let mut db = PgStore::connect(&url).with_context(|| format!("cannot connect to {}", url.display()))?;
    let applied =
        schema::migrate(&mut db, &url.display()).with_context(|| format!("journal init on {}", url.display()))?;
    match applied.as_slice() {
        [] => say!("the journal at {} is up to date (schema version {})", url.display(), schema::PG_SCHEMA_VERSION),
        v => say!(
            "the journal at {} has schema version {} (migrations {} applied); roles payrun_maker, payrun_checker, payrun_sender exist",
            url.display(),
            schema::PG_SCHEMA_VERSION,
            v.iter().map(i64::to_string).collect::<Vec<_>>().join(", ")
        ),
    }
    say!("grant each person's login role the part they play, for example:");
    payrun::outln!("  GRANT payrun_maker, payrun_sender TO priya;   -- prepares and sends");
    payrun::outln!("  GRANT payrun_checker TO arjun;               -- approves");
    say!("then the first shared batch: a maker runs");
    print_command(&format!("payrun run FILE --journal {}", payrun::batch::shell_quote(&url.display())), 2);
    Ok(Exit::Ok)
}

fn import(a: Args, config: &ConfigFile, operator: &str) -> anyhow::Result<Exit> {
    let Some(url) = a.state.journal_url(config)? else {
        anyhow::bail!("journal import needs the team database: --journal URL (or PAYRUN_JOURNAL)");
    };
    let dir = a.state.dir()?;
    if !dir.path.join("journal.sqlite3").is_file() {
        anyhow::bail!("no payrun journal in {} to import (--state DIR names another)", dir.path.display());
    }
    let from =
        Journal::open(&dir.path).with_context(|| format!("cannot open the journal in {}", dir.path.display()))?;
    let _lock = from.lock()?;
    let _ = operator;
    let to = Journal::open_postgres(&url, &dir.path)
        .with_context(|| format!("cannot open the journal at {}", url.display()))?;
    let done = payrun::journal::team::import::import(&from, &to)?;
    let batches = |n: u64| plural_of(n, "batch", "batches");
    let skipped = match done.skipped {
        0 => String::new(),
        n => format!("; {} already there, left as {}", batches(n), if n == 1 { "it was" } else { "they were" }),
    };
    say!(
        "imported from {} into {}: {}, {}, {} of evidence{skipped}",
        dir.path.display(),
        url.display(),
        batches(done.batches),
        plural(done.rows, "row"),
        plural(done.records, "record"),
    );
    for id in &done.replaced {
        say!(
            "batch {id}: the team had stored the same file and sent nothing of it; its copy is replaced by this journal's, which sent rows (a checker's approval of the team's copy went with it)"
        );
    }
    if done.conflicts.is_empty() {
        return Ok(Exit::Ok);
    }
    for id in &done.conflicts {
        say!(
            "batch {id}: NOT imported. The team's database and this journal each sent rows of the same file: compare the gateway's statement with both (`payrun status {id}` here and in the team's database) before anything more is sent"
        );
    }
    Ok(Exit::Aborted)
}
