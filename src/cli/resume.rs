//! Coming with its issue.
use super::Exit;
use payrun::config::ConfigFile;

#[derive(clap::Args, Debug)]
pub struct Args {}

pub async fn run(_args: Args, _config: &ConfigFile) -> anyhow::Result<Exit> {
    anyhow::bail!("not implemented yet")
}
