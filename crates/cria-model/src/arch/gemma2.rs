//! `gemma2`: Gemma 2.

use cria_gguf::GgufFile;

use super::{base, count_or, float_opt, swa_layers};
use crate::ModelError;
use crate::spec::{ArchSpec, FfnKind, RopeKind, RopeSpec, SlidingWindow};

/// Even layers slide, odd ones are global.
const SWA_PERIOD: usize = 2;
/// llama.cpp's defaults where the file has no key.
const DEFAULT_WINDOW: usize = 4096;
const DEFAULT_ATTN_SOFTCAP: f32 = 50.0;
const DEFAULT_FINAL_SOFTCAP: f32 = 30.0;
/// Gemma 2 27B scales queries by the model width per head instead of the head size.
const LAYERS_OF_27B: usize = 46;

/// GeGLU, norms before and after attention and FFN, sqrt(d) embedding scale, NeoX RoPE, soft-capped attention
/// scores and logits, alternating sliding-window layers.
pub fn spec(file: &GgufFile) -> Result<ArchSpec, ModelError> {
    let a = "gemma2";
    let mut spec = base(file, a, FfnKind::GeGlu, RopeKind::Neox)?;
    spec.post_norms = true;
    spec.embed_scale = Some((spec.n_embd as f32).sqrt());
    let scale_dim = if spec.n_layer == LAYERS_OF_27B {
        spec.n_embd / spec.n_head
    } else {
        spec.head_dim
    };
    spec.attn_scale = 1.0 / (scale_dim.max(1) as f32).sqrt();
    let cap = |key, default| -> Result<Option<f32>, ModelError> {
        Ok(Some(float_opt(file, a, key)?.unwrap_or(default)).filter(|c| *c > 0.0))
    };
    spec.attn_softcap = cap("attn_logit_softcapping", DEFAULT_ATTN_SOFTCAP)?;
    spec.final_logit_softcap = cap("final_logit_softcapping", DEFAULT_FINAL_SOFTCAP)?;
    spec.sliding_window = Some(SlidingWindow {
        size: count_or(file, a, "attention.sliding_window", DEFAULT_WINDOW)?,
        layers: swa_layers(file, a, SWA_PERIOD)?,
        rope: RopeSpec {
            freq_base: float_opt(file, a, "rope.freq_base_swa")?.unwrap_or(spec.rope.freq_base),
            ..spec.rope.clone()
        },
    });
    Ok(spec)
}
