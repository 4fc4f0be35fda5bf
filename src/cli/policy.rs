//! `payrun policy`: the approval policy of a team journal (SPEC 8.2), kept in the database.
//!
//! ```text
//! payrun policy set --rule "total>=1000000:2" [--rule "max_row>=500000:2" ...] [--journal URL]
//! payrun policy show [--journal URL]
//! ```
//!
//! Each rule: batches whose total (or largest row) is at least the amount, in rupees, need that
//! many distinct checkers; a batch takes the highest count of the rules it meets; a batch no rule
//! covers, and every batch when there is no policy, needs one. `set` replaces the whole policy and
//! is for the database's owner alone (the roles have no grant to change it).

use anyhow::Context as _;
use payrun::config::ConfigFile;
use payrun::journal::team::approvals::Rule;
use payrun::say;

use super::{Exit, StateArgs};

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Replace the approval policy (the database's owner).
    Set(SetArgs),
    /// Show the approval policy.
    Show(ShowArgs),
}

#[derive(clap::Args, Debug)]
pub struct SetArgs {
    /// A rule: total>=AMOUNT:N or max_row>=AMOUNT:N (rupees; N distinct checkers). Repeat it.
    #[arg(long = "rule", value_name = "RULE", required = true)]
    rules: Vec<String>,
    #[command(flatten)]
    state: StateArgs,
}

#[derive(clap::Args, Debug)]
pub struct ShowArgs {
    #[command(flatten)]
    state: StateArgs,
}

pub fn run(command: Command, config: &ConfigFile, operator: &str) -> anyhow::Result<Exit> {
    match command {
        Command::Set(a) => {
            let rules = a
                .rules
                .iter()
                .map(|r| Rule::parse(r).map_err(|e| anyhow::anyhow!("--rule {e}")))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let session = team(&a.state, config, operator)?;
            session.journal.set_policy(&rules).context("cannot set the policy (only the database's owner may)")?;
            say!("approval policy of {} set by {}:", session.journal.place().describe(), session.operator);
            show(&rules);
            Ok(Exit::Ok)
        }
        Command::Show(a) => {
            let session = team(&a.state, config, operator)?;
            show(&session.journal.policy()?);
            Ok(Exit::Ok)
        }
    }
}

fn team(state: &StateArgs, config: &ConfigFile, operator: &str) -> anyhow::Result<payrun::batch::Session> {
    if state.journal_url(config)?.is_none() {
        anyhow::bail!("the approval policy lives in a team journal: --journal URL (or PAYRUN_JOURNAL)");
    }
    state.session(config, operator, false)
}

fn show(rules: &[Rule]) {
    if rules.is_empty() {
        say!("no policy: every batch needs one checker");
        return;
    }
    for r in rules {
        say!("  {}", r.describe());
    }
    say!("  a batch takes the highest count of the rules it meets; a batch none covers needs one checker");
}
