//! `olmo2` (OLMo 2, OLMo 3) and `exaone4` (EXAONE 4.0): blocks with norms after attention and the FFN only.

use cria_gguf::GgufFile;

use super::{base, count_or, float_opt, swa_layers};
use crate::ModelError;
use crate::spec::{ArchSpec, FfnKind, NoRope, QkNorm, RopeKind, RopeSpec, SlidingWindow};

/// EXAONE 4 turns on its hybrid attention only for the 64-layer (32B) model, as llama.cpp does.
const EXAONE4_HYBRID_LAYERS: usize = 64;
const EXAONE4_WINDOW: usize = 4096;
/// Three sliding layers, then a global one.
const EXAONE4_SWA_PERIOD: usize = 4;

/// OLMo 3 slides 3 layers in 4 when the file has a window.
const OLMO3_SWA_PERIOD: usize = 4;

/// Post-norms only, an RMS norm over the whole Q and K projections, NeoX RoPE. With a sliding window (OLMo 3)
/// the sliding layers rotate with plain RoPE (no scaling, no YaRN) at the global base, as llama.cpp does.
pub fn spec(file: &GgufFile) -> Result<ArchSpec, ModelError> {
    let a = "olmo2";
    let base_spec = base(file, a, FfnKind::SwiGlu, RopeKind::Neox)?;
    let mut spec = post_norm_spec(base_spec, QkNorm::Full);
    let window = count_or(file, a, "attention.sliding_window", 0)?;
    if window > 0 {
        spec.sliding_window = Some(SlidingWindow {
            size: window,
            layers: swa_layers(file, a, OLMO3_SWA_PERIOD)?,
            rope: RopeSpec {
                freq_scale: 1.0,
                yarn: false,
                attn_factor: 1.0,
                ..spec.rope.clone()
            },
        });
    }
    Ok(spec)
}

/// OLMo 2's block with per-head QK norms; the 64-layer model slides 3 layers in 4 and rotates only those.
pub fn spec_exaone4(file: &GgufFile) -> Result<ArchSpec, ModelError> {
    let a = "exaone4";
    let mut spec = post_norm_spec(
        base(file, a, FfnKind::SwiGlu, RopeKind::Neox)?,
        QkNorm::PerHead,
    );
    if spec.n_layer == EXAONE4_HYBRID_LAYERS {
        spec.sliding_window = Some(SlidingWindow {
            size: count_or(file, a, "attention.sliding_window", EXAONE4_WINDOW)?,
            layers: swa_layers(file, a, EXAONE4_SWA_PERIOD)?,
            rope: RopeSpec {
                freq_base: float_opt(file, a, "rope.freq_base_swa")?.unwrap_or(spec.rope.freq_base),
                ..spec.rope.clone()
            },
        });
        spec.no_rope = NoRope::GlobalLayers;
    }
    Ok(spec)
}

fn post_norm_spec(mut spec: ArchSpec, qk_norm: QkNorm) -> ArchSpec {
    spec.pre_norms = false;
    spec.post_norms = true;
    spec.qk_norm = qk_norm;
    spec
}
