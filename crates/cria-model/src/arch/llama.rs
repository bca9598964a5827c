//! `llama` and its close relatives: LLaMA 1/2/3, SmolLM, Mistral; `granite` (multipliers), `smollm3` (NoPE
//! every 4th layer), `exaone` (EXAONE 3.x: NeoX RoPE).

use cria_gguf::GgufFile;

use super::{base, bool_opt, float_opt};
use crate::ModelError;
use crate::spec::{ArchSpec, FfnKind, NoRope, RopeKind};

/// SmolLM3 skips RoPE on layers 3, 7, 11... (fixed by the architecture, no GGUF key).
const SMOLLM3_NO_ROPE_PERIOD: usize = 4;

/// Plain pre-norm blocks, SwiGLU, adjacent-pair RoPE (LLaMA-3 frequency factors come from `rope_freqs.weight`).
pub fn spec(file: &GgufFile) -> Result<ArchSpec, ModelError> {
    base(file, "llama", FfnKind::SwiGlu, RopeKind::Normal)
}

/// LLaMA with its embedding, attention, residual and logit multipliers; `rope.scaling.finetuned = false`
/// turns RoPE off.
pub fn spec_granite(file: &GgufFile) -> Result<ArchSpec, ModelError> {
    let a = "granite";
    let mut spec = base(file, a, FfnKind::SwiGlu, RopeKind::Normal)?;
    let nonzero = |v: Option<f32>| v.filter(|x| *x != 0.0);
    spec.embed_scale = nonzero(float_opt(file, a, "embedding_scale")?);
    if let Some(scale) = nonzero(float_opt(file, a, "attention.scale")?) {
        spec.attn_scale = scale;
    }
    spec.residual_scale = nonzero(float_opt(file, a, "residual_scale")?);
    let logit_scale = float_opt(file, a, "logit_scale")?;
    spec.logit_scale = Some(logit_scale.ok_or_else(|| ModelError::BadHyperparameter {
        key: format!("{a}.logit_scale"),
        why: "required by granite".to_string(),
    })?);
    if bool_opt(file, a, "rope.scaling.finetuned")? == Some(false) {
        spec.no_rope = NoRope::Always;
    }
    Ok(spec)
}

/// LLaMA without RoPE on every 4th layer.
pub fn spec_smollm3(file: &GgufFile) -> Result<ArchSpec, ModelError> {
    let mut spec = base(file, "smollm3", FfnKind::SwiGlu, RopeKind::Normal)?;
    spec.no_rope = NoRope::EveryNth(SMOLLM3_NO_ROPE_PERIOD);
    Ok(spec)
}

/// EXAONE 3.0/3.5: LLaMA's block with NeoX RoPE.
pub fn spec_exaone(file: &GgufFile) -> Result<ArchSpec, ModelError> {
    base(file, "exaone", FfnKind::SwiGlu, RopeKind::Neox)
}
