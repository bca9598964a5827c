//! `qwen2` (Qwen 2 / 2.5) and `qwen3`.

use cria_gguf::GgufFile;

use super::base;
use crate::ModelError;
use crate::spec::{ArchSpec, FfnKind, QkNorm, RopeKind};

/// LLaMA's block with biases on Q, K and V, and NeoX RoPE.
pub fn spec(file: &GgufFile) -> Result<ArchSpec, ModelError> {
    let mut spec = base(file, "qwen2", FfnKind::SwiGlu, RopeKind::Neox)?;
    spec.qkv_bias = true;
    Ok(spec)
}

/// Qwen 3: Qwen 2 without the QKV biases, with a per-head RMS norm on Q and K before RoPE.
pub fn spec_qwen3(file: &GgufFile) -> Result<ArchSpec, ModelError> {
    let mut spec = base(file, "qwen3", FfnKind::SwiGlu, RopeKind::Neox)?;
    spec.qk_norm = QkNorm::PerHead;
    Ok(spec)
}
