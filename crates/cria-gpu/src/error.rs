//! The backend's errors.

use cria_gguf::GgmlType;

/// What can go wrong opening a GPU or running a step on it.
#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    /// No adapter matched the request (none at all, only software ones for `auto`, or index out of range).
    #[error("no GPU adapter: {0}")]
    NoAdapter(String),
    /// The adapter refused a device with the features and limits the kernels need.
    #[error("could not open the GPU device: {0}")]
    Device(String),
    /// A weight format without a GPU kernel (the caller keeps such a model on the CPU).
    #[error("no GPU kernel for {0:?}")]
    Unsupported(GgmlType),
    /// A buffer too large for the device's storage-binding limit.
    #[error("buffer of {bytes} bytes exceeds the device's binding limit of {limit}")]
    TooLarge { bytes: u64, limit: u64 },
    /// Reading a result back failed (device lost, mapping refused).
    #[error("reading back from the GPU failed: {0}")]
    Readback(String),
    /// An op this backend has no kernel for (its `supports` says so; asking for it anyway is refused).
    #[error("no GPU kernel for the op {0}")]
    UnsupportedOp(&'static str),
    /// A `--device` value that is not `auto`, `cpu`, `gpu` or `gpu:N`.
    #[error("unknown device {0:?} (expected auto, cpu, gpu or gpu:N)")]
    BadChoice(String),
}
