//! `cria pull`.

/// Arguments of `cria pull`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs `cria pull`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("cria pull is being built")
}

/// The GGUF file a `-m` argument names: an existing path as it is, or a known model's name,
/// pulled on first use.
pub fn resolve_model(spec: &str) -> anyhow::Result<std::path::PathBuf> {
    let path = std::path::PathBuf::from(spec);
    if path.exists() {
        return Ok(path);
    }
    anyhow::bail!("no such model file: {spec}")
}
