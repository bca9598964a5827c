//! Cria's GPU backend on wgpu (Vulkan; Metal and DX12 on their platforms): adapter discovery, device buffers,
//! a pipeline cache, and WGSL kernels for the ops of a transformer step, recorded into one command encoder per
//! step ([`Step`]), behind `cria_kernels::backend::Backend` ([`GpuBackend`]).
//!
//! Every kernel has the CPU kernels of `cria-kernels` as its reference: `tests/ops.rs` holds each op to them
//! with normalised-error bounds (llama.cpp's `test-backend-ops` method), on any adapter, lavapipe included.
//! The crate needs no `unsafe`: wgpu's API is safe.

mod adapters;
mod backend;
mod error;
mod gpu;
mod kernels;
mod kv;
mod pool;
mod step;

pub use adapters::{AdapterSummary, DeviceChoice, list_adapters};
pub use backend::GpuBackend;
pub use error::GpuError;
pub use gpu::{Gpu, GpuBuffer, GpuMatrix, GpuOptions};
pub use kernels::supports_format;
pub use kv::GpuKv;
pub use step::{
    ATTENTION_SPLIT_KEYS, AttentionRow, GatedAct, GpuAttention, GpuRope, INT8_MAX_TOKENS, Step,
};
