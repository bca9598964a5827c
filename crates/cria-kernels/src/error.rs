//! Kernel errors.

use crate::GgmlType;

/// What a kernel refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KernelError {
    /// `CRIA_ISA` named a path this CPU cannot run, or a name Cria does not know.
    #[error("CRIA_ISA={0}: {1}")]
    UnsupportedIsa(String, &'static str),
    /// A row length that is not a whole number of blocks of its type.
    #[error("{ty:?}: row of {n} elements is not a whole number of {block}-element blocks")]
    NotWholeBlocks {
        ty: GgmlType,
        n: usize,
        block: usize,
    },
    /// A byte buffer whose size does not match the element count.
    #[error("{ty:?}: {n} elements need {expected} bytes, got {got}")]
    ByteLength {
        ty: GgmlType,
        n: usize,
        expected: usize,
        got: usize,
    },
    /// A format Cria reads but does not write (the IQ, ternary and MXFP4 formats come from files).
    #[error("{0:?}: Cria dequantizes this format but does not quantize to it")]
    NoQuantizer(GgmlType),
    /// A matrix the 8-row interleaved layout does not take (another format, or rows not a multiple of 8).
    #[error("{0:?}: not a matrix the 8-row interleaved layout takes")]
    NotPackable(GgmlType),
}
