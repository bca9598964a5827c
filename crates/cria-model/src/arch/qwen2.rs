//! `qwen2`: Qwen 2 / 2.5.

use cria_gguf::GgufFile;

use super::base;
use crate::ModelError;
use crate::spec::{ArchSpec, FfnKind, RopeKind};

/// LLaMA's block with biases on Q, K and V, and NeoX RoPE.
pub fn spec(file: &GgufFile) -> Result<ArchSpec, ModelError> {
    let mut spec = base(file, "qwen2", FfnKind::SwiGlu, RopeKind::Neox)?;
    spec.qkv_bias = true;
    Ok(spec)
}
