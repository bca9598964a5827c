//! `cria tokenize`.

/// Arguments of `cria tokenize`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs `cria tokenize`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("cria tokenize is being built")
}
