//! `llama`: LLaMA 1/2/3, SmolLM, Alpaca, Vicuna, Mistral.

use cria_gguf::GgufFile;

use super::base;
use crate::ModelError;
use crate::spec::{ArchSpec, FfnKind, RopeKind};

/// Plain pre-norm blocks, SwiGLU, adjacent-pair RoPE (LLaMA-3 frequency factors come from `rope_freqs.weight`).
pub fn spec(file: &GgufFile) -> Result<ArchSpec, ModelError> {
    base(file, "llama", FfnKind::SwiGlu, RopeKind::Normal)
}
