//! `phi3`: Phi-3, Phi-3.5, Phi-4(-mini).

use cria_gguf::GgufFile;

use super::base;
use crate::ModelError;
use crate::spec::{ArchSpec, FfnKind, RopeKind};

/// LLaMA's block with NeoX RoPE (possibly partial), fused QKV and gate/up tensors (split at load), and
/// LongRoPE's short and long frequency factors (`rope_factors_{short,long}.weight`). llama.cpp reads
/// `phi3.attention.sliding_window` but runs every layer with full attention, and so does Cria.
pub fn spec(file: &GgufFile) -> Result<ArchSpec, ModelError> {
    base(file, "phi3", FfnKind::SwiGlu, RopeKind::Neox)
}
