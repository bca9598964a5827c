//! CPU kernels: ggml block formats with scalar references, SIMD dot products chosen at run time,
//! a thread pool, the matmul driver and the small ops of a transformer.
//!
//! The only crate in the workspace allowed `unsafe` (SIMD intrinsics); every block carries a `// SAFETY:` line.

pub use cria_gguf::GgmlType;

// kernels-quant
pub mod dot;
pub mod error;
pub mod isa;
pub mod quant;

// kernels-compute
pub mod backend;
pub mod bandwidth;
pub mod matmul;
pub mod ops;
pub mod packed;
pub mod pages;
pub mod pool;
#[cfg(test)]
mod test_data;

pub use error::KernelError;
