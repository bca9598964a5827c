//! `gpt-oss`: OpenAI's open-weight mixture of experts (llama.cpp's `openai-moe.cpp`).

use cria_gguf::GgufFile;

use super::{base, count, float_opt, swa_layers};
use crate::ModelError;
use crate::spec::{ArchSpec, ExpertGating, FfnKind, RopeKind, RopeSpec, SlidingWindow};

/// Even layers slide, odd ones are global.
const SWA_PERIOD: usize = 2;

/// Pre-norm blocks with biases on Q, K, V and the output projection, a learned sink logit per head in every
/// attention softmax, NeoX RoPE (YaRN in the real files), a sliding window on alternating layers, and experts
/// in every layer: the top k by raw router logit (router bias added), weighted by a softmax over those k, each
/// with biased gate/up/down and the clamped SwiGLU. The FFN's pre-norm is stored as `post_attention_norm`.
pub fn spec(file: &GgufFile) -> Result<ArchSpec, ModelError> {
    let a = "gpt-oss";
    let mut spec = base(file, a, FfnKind::SwiGluOai, RopeKind::Neox)?;
    spec.attn_sinks = true;
    spec.ffn_norm_name = "post_attention_norm";
    spec.sliding_window = Some(SlidingWindow {
        size: count(file, a, "attention.sliding_window")?,
        layers: swa_layers(file, a, SWA_PERIOD)?,
        rope: RopeSpec {
            freq_base: float_opt(file, a, "rope.freq_base_swa")?.unwrap_or(spec.rope.freq_base),
            ..spec.rope.clone()
        },
    });
    // llama.cpp requires the expert width under its own key.
    let n_ff_exp = count(file, a, "expert_feed_forward_length")?;
    let moe = spec
        .moe
        .as_mut()
        .ok_or_else(|| ModelError::BadHyperparameter {
            key: format!("{a}.expert_count"),
            why: format!("{a} needs experts"),
        })?;
    moe.n_ff_exp = n_ff_exp;
    moe.gating = ExpertGating::SoftmaxOfChosen;
    moe.norm_weights = false;
    Ok(spec)
}
