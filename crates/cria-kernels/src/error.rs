//! Kernel errors.

/// What a kernel refuses.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    /// `CRIA_ISA` named a path this CPU cannot run, or a name Cria does not know.
    #[error("CRIA_ISA={0}: {1}")]
    UnsupportedIsa(String, &'static str),
}
