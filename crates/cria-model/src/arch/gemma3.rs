//! `gemma3`: Gemma 3 (text).

use cria_gguf::GgufFile;

use super::{base, count_or, swa_layers};
use crate::ModelError;
use crate::spec::{ArchSpec, FfnKind, QkNorm, RopeKind, RopeSpec, SlidingWindow};

/// Gemma 3 groups its layers by six: five sliding-window layers, then one global one.
const SWA_PERIOD: usize = 6;
/// RoPE base of the sliding-window layers (fixed by the architecture, not stored in GGUF).
const LOCAL_ROPE_BASE: f32 = 10_000.0;
/// Gemma 3 27B scales attention by the model width per head instead of the head size.
const LAYERS_OF_27B: usize = 62;

/// GeGLU, QK-norm, norms before and after attention and FFN, sqrt(d) embedding scale, NeoX RoPE,
/// sliding-window layers with their own RoPE base.
pub fn spec(file: &GgufFile) -> Result<ArchSpec, ModelError> {
    let mut spec = base(file, "gemma3", FfnKind::GeGlu, RopeKind::Neox)?;
    spec.qk_norm = QkNorm::PerHead;
    spec.post_norms = true;
    spec.embed_scale = Some((spec.n_embd as f32).sqrt());
    let scale_dim = if spec.n_layer == LAYERS_OF_27B {
        spec.n_embd / spec.n_head
    } else {
        spec.head_dim
    };
    spec.attn_scale = 1.0 / (scale_dim.max(1) as f32).sqrt();
    let window = count_or(file, "gemma3", "attention.sliding_window", 0)?;
    if window > 0 {
        spec.sliding_window = Some(SlidingWindow {
            size: window,
            layers: swa_layers(file, "gemma3", SWA_PERIOD)?,
            rope: RopeSpec {
                freq_base: LOCAL_ROPE_BASE,
                freq_scale: 1.0,
                ..spec.rope.clone()
            },
        });
    }
    Ok(spec)
}
