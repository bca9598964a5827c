//! `cria pull` and model lookup: a small registry of known models, fetched into `$CRIA_HOME`
//! (default `~/.cache/cria`), checked against their sha256 and renamed into place atomically.
//! See docs/MODELS.md.
#![cfg_attr(test, allow(clippy::unwrap_used))] // tests may unwrap

mod error;
mod fetch;
mod hash;
mod hf;
mod home;
mod list;
mod pip;
mod progress;
mod registry;
mod stage;

use std::path::PathBuf;

use super::settings;
use error::PullError;
use hf::HfFile;
pub use home::Home;
use registry::DEFAULT_MODEL;
pub use registry::Registry;

/// Arguments of `cria pull`.
#[derive(clap::Args)]
pub struct Args {
    /// A known model's name or alias, or hf:owner/repo/path/file.gguf [default: smollm2-135m-instruct]
    pub name: Option<String>,
    /// List the known models and whether each is already on disk.
    #[arg(long, conflicts_with_all = ["name", "verify"])]
    pub list: bool,
    /// Hash a model already on disk instead of trusting its size; pull it again if it is wrong.
    #[arg(long)]
    pub verify: bool,
}

/// Runs `cria pull`: prints the local path of the model on stdout once it is there.
pub fn run(args: Args) -> anyhow::Result<()> {
    let home = Home::from_env()?;
    let registry = Registry::load(home.root())?;
    if args.list {
        list::write(&mut std::io::stdout().lock(), &registry, &home)?;
        return Ok(());
    }
    let spec = args.name.as_deref().unwrap_or(DEFAULT_MODEL);
    let path = fetch(&home, &registry, spec, args.verify)?;
    println!("{}", path.display());
    Ok(())
}

/// The GGUF file a `-m` argument names: an existing path as it is, or a known model's name or
/// alias, or `hf:owner/repo/file.gguf`, pulled on first use.
pub fn resolve_model(spec: &str) -> anyhow::Result<PathBuf> {
    let path = PathBuf::from(spec);
    if settings::looks_like_path(spec) {
        settings::existing_file("model", &path)?;
    }
    if path.is_file() {
        return Ok(path);
    }
    let home = Home::from_env()?;
    let registry = Registry::load(home.root())?;
    match fetch(&home, &registry, spec, false) {
        Ok(path) => Ok(path),
        Err(e @ PullError::UnknownModel { .. }) => settings::refuse(e.to_string()),
        Err(e) => Err(e.into()),
    }
}

/// The local file of a known model or `hf:` spec, pulled if needed.
fn fetch(home: &Home, registry: &Registry, spec: &str, verify: bool) -> Result<PathBuf, PullError> {
    if let Some(file) = HfFile::parse(spec) {
        return fetch::ensure_hf(home, &file?);
    }
    match registry.find(spec) {
        Some(entry) => fetch::ensure_known(home, entry, verify),
        None => Err(PullError::UnknownModel {
            spec: spec.to_owned(),
            known: registry.names(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_name_lists_the_known_ones() {
        let root = tempfile::tempdir().unwrap();
        let home = Home::at(root.path());
        let err = fetch(&home, &Registry::builtin(), "llama-9000", false).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("smollm2-135m-instruct, gemma-3-270m"), "{msg}");
        assert!(msg.contains("llama-9000"), "{msg}");
    }

    #[test]
    fn a_malformed_hf_spec_is_rejected_before_any_download() {
        let root = tempfile::tempdir().unwrap();
        let home = Home::at(root.path());
        let err = fetch(&home, &Registry::builtin(), "hf:owner/repo", false).unwrap_err();
        assert!(matches!(err, PullError::BadHfSpec { .. }), "{err}");
        assert!(!root.path().join("tmp").exists());
    }

    #[test]
    fn an_alias_finds_the_file_already_pulled() {
        let root = tempfile::tempdir().unwrap();
        let home = Home::at(root.path());
        let dest = home.models_dir().join("gemma-3-270m.gguf");
        std::fs::create_dir_all(home.models_dir()).unwrap();
        std::fs::File::create(&dest)
            .unwrap()
            .set_len(253_113_024)
            .unwrap();
        let found = fetch(&home, &Registry::builtin(), "GEMMA-3-270M-Q4_K_M", false).unwrap();
        assert_eq!(found, dest);
    }
}
