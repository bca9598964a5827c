//! What loading or running a model can refuse.

use cria_gguf::{GgmlType, GgufError};

/// A model error: a file that does not describe a model Cria can run, or a batch it cannot take.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(transparent)]
    Gguf(#[from] GgufError),
    #[error(
        "unsupported architecture '{0}' (supported: {supported})",
        supported = crate::spec::SUPPORTED_ARCHITECTURES.join(", ")
    )]
    UnsupportedArchitecture(String),
    #[error("'{0}' is not an embedding encoder (supported: bert, nomic-bert)")]
    NotAnEncoder(String),
    #[error("missing tensor '{0}'")]
    MissingTensor(String),
    #[error("tensor '{name}' has shape {found:?}, expected {expected:?}")]
    BadShape {
        name: String,
        expected: Vec<u64>,
        found: Vec<u64>,
    },
    #[error("tensor '{name}' has type {ty:?}, which cannot be used there")]
    BadTensorType { name: String, ty: GgmlType },
    #[error("invalid hyperparameter {key}: {why}")]
    BadHyperparameter { key: String, why: String },
    #[error("context full: {needed} tokens needed, the sequence holds at most {capacity}")]
    ContextFull { needed: usize, capacity: usize },
    #[error(
        "the sliding-window layers' block table does not hold positions {from}..{to} (their window) in their pool of {n_blocks} blocks"
    )]
    WindowNotHeld {
        from: usize,
        to: usize,
        n_blocks: usize,
    },
    #[error("KV block {block} is outside the pool ({n_blocks} blocks)")]
    NoSuchBlock { block: u32, n_blocks: usize },
    #[error("token id {id} is outside the vocabulary ({n_vocab} tokens)")]
    TokenOutOfRange { id: u32, n_vocab: usize },
    #[error(transparent)]
    Kernel(#[from] cria_kernels::KernelError),
    #[error(transparent)]
    Gpu(#[from] cria_gpu::GpuError),
    /// A model part the GPU runner has no kernels for yet (the caller runs the model on the CPU).
    #[error("no GPU path for {0}")]
    NoGpuPath(String),
    /// A KV cache made by one device's runner handed to the other's.
    #[error("the KV cache was made for another device")]
    WrongDevice,
}
