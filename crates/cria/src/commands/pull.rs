//! `cria pull`.

/// Arguments of `cria pull`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs `cria pull`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("cria pull is being built")
}
