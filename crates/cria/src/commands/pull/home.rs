//! `$CRIA_HOME`: where models are stored (`models/`) and staged while they download (`tmp/`).

use std::path::{Path, PathBuf};

use super::error::{PullError, Result};

/// The root of cria's model store.
#[derive(Debug, Clone)]
pub struct Home {
    root: PathBuf,
}

impl Home {
    /// `$CRIA_HOME`, or `$HOME/.cache/cria` when it is unset or empty.
    pub fn from_env() -> Result<Self> {
        let var = |name| std::env::var_os(name).filter(|v| !v.is_empty());
        let root = match (var("CRIA_HOME"), var("HOME")) {
            (Some(home), _) => PathBuf::from(home),
            (None, Some(user)) => PathBuf::from(user).join(".cache").join("cria"),
            (None, None) => return Err(PullError::NoHome),
        };
        Ok(Self { root })
    }

    /// A store rooted at `root` (tests use temporary ones).
    #[cfg(test)]
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where finished model files live.
    pub fn models_dir(&self) -> PathBuf {
        self.root.join("models")
    }

    /// Where pulls stage their files; always on the same file system as `models/`, so that the
    /// final rename is atomic.
    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }
}
