//! `cria inspect`.

/// Arguments of `cria inspect`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs `cria inspect`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("cria inspect is being built")
}
