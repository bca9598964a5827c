//! Settings checked once, before any work starts, with the same rules in every subcommand. A bad one is a
//! [`SettingsError`]: `main` prints it as one line on stderr and exits with code 2 (no backtrace).
//!
//! The rules: `CRIA_ISA` must name a kernel path this CPU has; `-t` must be at least 1 and is capped at the
//! cores available (with a warning); sizes (`--ctx`, `--parallel`, ...) have a floor each; `-m` must be a
//! file, a known model name or an `hf:` spec (a directory or a missing path is refused).

use std::path::Path;

use cria_kernels::isa::Isa;

/// A setting that cannot work.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SettingsError(pub String);

/// `Err` of a [`SettingsError`] with `message`.
pub fn refuse<T>(message: impl Into<String>) -> anyhow::Result<T> {
    Err(SettingsError(message.into()).into())
}

/// The kernel path `CRIA_ISA` asks for (or the best one), checked against this CPU.
pub fn isa() -> anyhow::Result<Isa> {
    cria_kernels::isa::try_active().or_else(|e| {
        let have: Vec<&str> = Isa::available().into_iter().map(Isa::name).collect();
        refuse(format!("{e} (this CPU has: {})", have.join(", ")))
    })
}

/// Threads to use: `requested` (at least 1; capped at the available cores with a warning) or all cores.
pub fn threads(requested: Option<usize>) -> anyhow::Result<usize> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    match requested {
        None => Ok(cores),
        Some(0) => refuse("-t 0: the thread count must be at least 1"),
        Some(n) if n > cores => {
            eprintln!(
                "cria: warning: -t {n} is more than the {cores} cores available; using {cores}"
            );
            Ok(cores)
        }
        Some(n) => Ok(n),
    }
}

/// Refuses `value` below `min` for `flag`.
pub fn at_least(flag: &str, value: usize, min: usize) -> anyhow::Result<()> {
    if value < min {
        return refuse(format!("{flag} {value}: must be at least {min}"));
    }
    Ok(())
}

/// Refuses a path that is a directory or does not exist, for the file option `flag`.
pub fn existing_file(flag: &str, path: &Path) -> anyhow::Result<()> {
    if path.is_dir() {
        return refuse(format!(
            "{flag} {}: is a directory, not a file",
            path.display()
        ));
    }
    if !path.exists() {
        return refuse(format!("{flag} {}: no such file", path.display()));
    }
    Ok(())
}

/// Whether a model spec is meant as a file path rather than a known model's name or an `hf:` spec.
pub fn looks_like_path(spec: &str) -> bool {
    !spec.starts_with("hf:")
        && (spec.contains('/')
            || spec.contains('\\')
            || spec.to_ascii_lowercase().ends_with(".gguf")
            || Path::new(spec).is_dir())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn paths_names_and_hf_specs_are_told_apart() {
        assert!(looks_like_path("./model.gguf"));
        assert!(looks_like_path("model.GGUF"));
        assert!(looks_like_path("/tmp"));
        assert!(!looks_like_path("smollm2-135m-instruct"));
        assert!(!looks_like_path("hf:owner/repo/file.gguf"));
    }

    #[test]
    fn zero_threads_are_refused_and_too_many_capped() {
        assert!(threads(Some(0)).is_err());
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(threads(Some(cores + 1000)).unwrap(), cores);
        assert_eq!(threads(Some(1)).unwrap(), 1);
        assert_eq!(threads(None).unwrap(), cores);
    }
}
