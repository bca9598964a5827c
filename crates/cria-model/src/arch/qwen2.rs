//! `qwen2` (Qwen 2 / 2.5), `qwen3`, and their mixtures of experts `qwen2moe` and `qwen3moe`.

use cria_gguf::GgufFile;

use super::{base, count, count_or};
use crate::ModelError;
use crate::spec::{ArchSpec, FfnKind, MoeSpec, QkNorm, RopeKind};

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

/// Qwen 1.5/2-MoE: Qwen 2's attention, experts whose weights are not renormalized, and a shared expert behind a
/// sigmoid gate. Without `expert_feed_forward_length` an expert is `feed_forward_length / k` wide.
pub fn spec_qwen2moe(file: &GgufFile) -> Result<ArchSpec, ModelError> {
    let a = "qwen2moe";
    let mut spec = base(file, a, FfnKind::SwiGlu, RopeKind::Neox)?;
    spec.qkv_bias = true;
    let n_ff_shared = count_or(file, a, "expert_shared_feed_forward_length", spec.n_ff)?;
    let moe = require_experts(&mut spec, file, a)?;
    moe.norm_weights = false;
    moe.n_ff_shared = Some(n_ff_shared);
    Ok(spec)
}

/// Qwen 3-MoE: Qwen 3's attention with experts in every layer.
pub fn spec_qwen3moe(file: &GgufFile) -> Result<ArchSpec, ModelError> {
    let a = "qwen3moe";
    let mut spec = base(file, a, FfnKind::SwiGlu, RopeKind::Neox)?;
    spec.qk_norm = QkNorm::PerHead;
    require_experts(&mut spec, file, a)?;
    Ok(spec)
}

/// The spec's experts, which these architectures require; an expert width defaults to n_ff / k.
fn require_experts<'s>(
    spec: &'s mut ArchSpec,
    file: &GgufFile,
    arch: &str,
) -> Result<&'s mut MoeSpec, ModelError> {
    let n_ff = spec.n_ff;
    let moe = spec
        .moe
        .as_mut()
        .ok_or_else(|| ModelError::BadHyperparameter {
            key: format!("{arch}.expert_count"),
            why: format!("{arch} needs experts"),
        })?;
    if count(file, arch, "expert_feed_forward_length").is_err() {
        moe.n_ff_exp = n_ff.checked_div(moe.n_expert_used).unwrap_or(0);
    }
    Ok(moe)
}
