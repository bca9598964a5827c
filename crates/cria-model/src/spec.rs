//! `ArchSpec`: everything that makes one architecture differ from another, as data.

use cria_gguf::GgufFile;

use crate::{ModelError, arch};

/// How the feed-forward network gates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FfnKind {
    /// silu(gate) * up (LLaMA, Qwen2, Mistral).
    SwiGlu,
    /// gelu_tanh(gate) * up (Gemma).
    GeGlu,
    /// gpt-oss's clamped SwiGLU (llama.cpp's `swiglu_oai`): with g = min(gate, limit) and u = clamp(up, -limit,
    /// limit), `g * sigmoid(alpha * g) * (u + 1)`; alpha and limit are [`SWIGLU_OAI_ALPHA`] and
    /// [`SWIGLU_OAI_LIMIT`] (constants of the model, not stored in its files).
    SwiGluOai,
}

/// gpt-oss's SwiGLU slope and clamp (llama.cpp hard-codes them too).
pub const SWIGLU_OAI_ALPHA: f32 = 1.702;
pub const SWIGLU_OAI_LIMIT: f32 = 7.0;

/// How the router turns its logits into the chosen experts and their weights (llama.cpp's
/// `llama_expert_gating_func_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpertGating {
    /// Softmax over all experts, then the top k by probability (`SOFTMAX`: Mixtral, Qwen-MoE).
    Softmax,
    /// The top k by raw logit, then a softmax over the k chosen (`SOFTMAX_WEIGHT`: gpt-oss).
    SoftmaxOfChosen,
}

/// Which pairs of dimensions RoPE rotates together.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RopeKind {
    /// Adjacent pairs (x0, x1), (x2, x3)... (llama.cpp's LLAMA_ROPE_TYPE_NORM).
    Normal,
    /// The two halves of each head (x_i, x_{i+d/2}) (LLAMA_ROPE_TYPE_NEOX: Qwen2, Gemma).
    Neox,
}

/// Rotary position embedding settings for one kind of layer.
#[derive(Clone, Debug, PartialEq)]
pub struct RopeSpec {
    pub kind: RopeKind,
    /// Dimensions rotated per head (the rest pass through).
    pub n_rot: usize,
    pub freq_base: f32,
    /// Linear scaling: positions are multiplied by this (1 / scaling factor).
    pub freq_scale: f32,
    /// YaRN (`rope.scaling.type = yarn`): angles blend interpolation and extrapolation per pair.
    pub yarn: bool,
    /// The context the model was trained on before scaling (`rope.scaling.original_context_length`): YaRN's
    /// ramp, and LongRoPE's choice of long factors for a longer sequence context.
    pub n_ctx_orig: usize,
    /// Multiplies cos and sin (llama.cpp's `yarn_attn_factor` after its own corrections).
    pub attn_factor: f32,
}

/// Which layers attend through a sliding window.
#[derive(Clone, Debug, PartialEq)]
pub enum SwaLayers {
    /// Every `n`-th layer (the last of each group) is global; the others slide (all of them for 0).
    Period(usize),
    /// One flag a layer: `true` slides (`{arch}.attention.sliding_window_pattern` as an array).
    Flags(Vec<bool>),
}

/// The attention of the layers that see only a recent window (Gemma's local layers).
#[derive(Clone, Debug, PartialEq)]
pub struct SlidingWindow {
    /// A query at position p sees keys at positions p - size + 1 ..= p.
    pub size: usize,
    pub layers: SwaLayers,
    /// RoPE of the sliding layers.
    pub rope: RopeSpec,
}

/// Which layers skip RoPE altogether (no positional rotation, "NoPE").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoRope {
    /// Every layer rotates.
    Never,
    /// Layers `il` with `(il + 1) % n == 0` (SmolLM3: every 4th).
    EveryNth(usize),
    /// The global (non-sliding) layers (EXAONE 4's hybrid attention).
    GlobalLayers,
    /// No layer (Granite files with `rope.scaling.finetuned = false`).
    Always,
}

/// RMS norms on the projected queries and keys, before RoPE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QkNorm {
    None,
    /// Each head on its own, one weight of `head_dim` (Qwen3, Gemma 3, EXAONE 4).
    PerHead,
    /// The whole projection at once, weights as wide as it (OLMo 2).
    Full,
}

/// A mixture-of-experts FFN in place of the dense one (llama.cpp's `build_moe_ffn`, softmax gating).
#[derive(Clone, Debug, PartialEq)]
pub struct MoeSpec {
    pub n_expert: usize,
    /// Experts each token runs (`expert_used_count`, top-k of the router's probabilities).
    pub n_expert_used: usize,
    /// Hidden width of one expert.
    pub n_ff_exp: usize,
    /// The chosen experts' probabilities are divided by their sum (Mixtral, Qwen3-MoE; not Qwen2-MoE).
    pub norm_weights: bool,
    /// The weights are multiplied by this (`expert_weights_scale`, where not 0 or 1).
    pub weights_scale: Option<f32>,
    /// Hidden width of the shared expert every token also runs, gated by a sigmoid (Qwen2-MoE).
    pub n_ff_shared: Option<usize>,
    pub gating: ExpertGating,
    /// The experts' gated activation.
    pub act: FfnKind,
}

/// A declarative description of a decoder-only transformer, made from GGUF metadata.
#[derive(Clone, Debug, PartialEq)]
pub struct ArchSpec {
    pub arch: String,
    pub n_layer: usize,
    pub n_embd: usize,
    pub n_head: usize,
    pub n_head_kv: usize,
    pub head_dim: usize,
    pub n_ff: usize,
    pub n_vocab: usize,
    pub n_ctx_train: usize,
    pub norm_eps: f32,
    pub rope: RopeSpec,
    pub sliding_window: Option<SlidingWindow>,
    pub no_rope: NoRope,
    pub ffn: FfnKind,
    /// Experts in place of the dense FFN, in every layer.
    pub moe: Option<MoeSpec>,
    /// Q, K and V projections carry biases (Qwen2). Other architectures use them when the file has them.
    pub qkv_bias: bool,
    pub qk_norm: QkNorm,
    /// RMS norms before attention and before the FFN (all but OLMo 2 and EXAONE 4, which only post-norm).
    pub pre_norms: bool,
    /// Extra RMS norms after attention and after the FFN, before the residual add (Gemma 2/3, OLMo 2).
    pub post_norms: bool,
    /// Embeddings are multiplied by this (Gemma: sqrt(n_embd); Granite's embedding multiplier).
    pub embed_scale: Option<f32>,
    /// Attention scores are multiplied by this.
    pub attn_scale: f32,
    /// Attention scores soft-capped as cap * tanh(s / cap) after scaling (Gemma 2).
    pub attn_softcap: Option<f32>,
    /// Attention and FFN outputs are multiplied by this before the residual add (Granite).
    pub residual_scale: Option<f32>,
    /// Final logits are divided by this (Granite).
    pub logit_scale: Option<f32>,
    /// Final logits soft-capped as cap * tanh(x / cap) (Gemma 2 metadata asks for it).
    pub final_logit_softcap: Option<f32>,
    /// A learned logit per head in each layer's attention softmax (`attn_sinks`, gpt-oss).
    pub attn_sinks: bool,
    /// The tensor (`blk.N.<name>.weight`) of the RMS norm before the FFN: `ffn_norm`, or gpt-oss's
    /// `post_attention_norm`.
    pub ffn_norm_name: &'static str,
}

/// How one layer attends: the RoPE it uses (none: NoPE) and the window it sees.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerAttention<'a> {
    pub rope: Option<&'a RopeSpec>,
    pub window: Option<usize>,
}

/// The architectures [`ArchSpec::from_gguf`] reads.
pub const SUPPORTED_ARCHITECTURES: &[&str] = &[
    "llama", "qwen2", "qwen2moe", "qwen3", "qwen3moe", "gemma2", "gemma3", "phi3", "granite",
    "olmo2", "smollm3", "exaone", "exaone4", "gpt-oss",
];

impl ArchSpec {
    /// Reads the spec of the file's `general.architecture`; an unknown architecture is a clear error.
    pub fn from_gguf(file: &GgufFile) -> Result<ArchSpec, ModelError> {
        let name = file.architecture()?;
        let spec = match name {
            "llama" => arch::llama::spec(file)?,
            "qwen2" => arch::qwen2::spec(file)?,
            "qwen3" => arch::qwen2::spec_qwen3(file)?,
            "qwen2moe" => arch::qwen2::spec_qwen2moe(file)?,
            "qwen3moe" => arch::qwen2::spec_qwen3moe(file)?,
            "gemma2" => arch::gemma2::spec(file)?,
            "gemma3" => arch::gemma3::spec(file)?,
            "phi3" => arch::phi3::spec(file)?,
            "granite" => arch::llama::spec_granite(file)?,
            "olmo2" => arch::olmo2::spec(file)?,
            "smollm3" => arch::llama::spec_smollm3(file)?,
            "exaone" => arch::llama::spec_exaone(file)?,
            "exaone4" => arch::olmo2::spec_exaone4(file)?,
            "gpt-oss" => arch::gpt_oss::spec(file)?,
            other => return Err(ModelError::UnsupportedArchitecture(other.to_string())),
        };
        spec.validate()?;
        Ok(spec)
    }

    /// Width of all query heads together.
    pub fn q_dim(&self) -> usize {
        self.n_head * self.head_dim
    }

    /// Width of all key (or value) heads together.
    pub fn kv_dim(&self) -> usize {
        self.n_head_kv * self.head_dim
    }

    /// Whether layer `il` attends through the sliding window.
    pub fn is_sliding(&self, il: usize) -> bool {
        match self.sliding_window.as_ref().map(|sw| &sw.layers) {
            None => false,
            Some(SwaLayers::Period(n)) => !(il + 1).is_multiple_of(*n),
            Some(SwaLayers::Flags(f)) => f.get(il).copied().unwrap_or(false),
        }
    }

    /// The attention of layer `il`.
    pub fn layer_attention(&self, il: usize) -> LayerAttention<'_> {
        let sliding = self.is_sliding(il);
        let rope = match (&self.sliding_window, sliding) {
            (Some(sw), true) => &sw.rope,
            _ => &self.rope,
        };
        let rotates = match self.no_rope {
            NoRope::Never => true,
            NoRope::EveryNth(n) => !(il + 1).is_multiple_of(n),
            NoRope::GlobalLayers => sliding,
            NoRope::Always => false,
        };
        LayerAttention {
            rope: rotates.then_some(rope),
            window: sliding
                .then(|| self.sliding_window.as_ref().map(|sw| sw.size))
                .flatten(),
        }
    }

    fn validate(&self) -> Result<(), ModelError> {
        let bad = |key: &str, why: &str| {
            Err(ModelError::BadHyperparameter {
                key: key.to_string(),
                why: why.to_string(),
            })
        };
        let positive = [
            ("block_count", self.n_layer),
            ("embedding_length", self.n_embd),
            ("attention.head_count", self.n_head),
            ("attention.head_count_kv", self.n_head_kv),
            ("head dimension", self.head_dim),
            ("feed_forward_length", self.n_ff),
            ("vocabulary size", self.n_vocab),
        ];
        for (key, value) in positive {
            if value == 0 {
                return bad(key, "must be positive");
            }
        }
        if !self.n_head.is_multiple_of(self.n_head_kv) {
            return bad(
                "attention.head_count_kv",
                "must divide attention.head_count",
            );
        }
        if self.rope.n_rot > self.head_dim || !self.rope.n_rot.is_multiple_of(2) {
            return bad(
                "rope.dimension_count",
                "must be even and at most the head dimension",
            );
        }
        if !(self.norm_eps.is_finite() && self.norm_eps >= 0.0) {
            return bad(
                "layer_norm_rms_epsilon",
                "must be a finite non-negative number",
            );
        }
        if let Some(sw) = &self.sliding_window
            && sw.size == 0
        {
            return bad("attention.sliding_window", "must be positive");
        }
        if let Some(m) = &self.moe
            && (m.n_expert_used == 0 || m.n_expert_used > m.n_expert || m.n_ff_exp == 0)
        {
            return bad(
                "expert_used_count",
                "must be between 1 and expert_count, with a positive expert width",
            );
        }
        if self.no_rope == NoRope::EveryNth(0) {
            return bad("no-RoPE layer period", "must be positive");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use cria_gguf::{GgmlType, GgufFile, GgufWriter, Value};

    use super::*;

    /// A tiny llama-like file with only the metadata the spec reads (and the embedding for the vocabulary).
    fn file_with(arch: &str, extra: &[(&str, Value)]) -> GgufFile {
        let mut w = GgufWriter::new();
        w.add_metadata("general.architecture", Value::String(arch.into()));
        let base = [
            ("block_count", 2u32),
            ("embedding_length", 64),
            ("feed_forward_length", 128),
            ("attention.head_count", 4),
            ("attention.head_count_kv", 2),
            ("context_length", 256),
        ];
        for (k, v) in base {
            w.add_metadata(format!("{arch}.{k}"), Value::U32(v));
        }
        for (k, v) in extra {
            w.add_metadata(format!("{arch}.{k}"), v.clone());
        }
        w.add_tensor(
            "token_embd.weight",
            GgmlType::F32,
            &[64, 10],
            vec![0; 64 * 10 * 4],
        )
        .unwrap();
        GgufFile::from_bytes(w.to_bytes().unwrap()).unwrap()
    }

    #[test]
    fn unknown_architecture_is_named_in_the_error() {
        let err = ArchSpec::from_gguf(&file_with("mamba", &[])).unwrap_err();
        assert!(err.to_string().contains("'mamba'"), "{err}");
    }

    #[test]
    fn llama_defaults_follow_llama_cpp() {
        let spec = ArchSpec::from_gguf(&file_with("llama", &[])).unwrap();
        assert_eq!((spec.head_dim, spec.kv_dim(), spec.n_vocab), (16, 32, 10));
        assert_eq!(spec.rope.kind, RopeKind::Normal);
        assert_eq!(spec.rope.freq_base, 10_000.0);
        assert_eq!(spec.ffn, FfnKind::SwiGlu);
        assert!(!spec.qkv_bias && spec.sliding_window.is_none());
    }

    #[test]
    fn qwen2_has_qkv_bias_and_neox_rope() {
        let spec = ArchSpec::from_gguf(&file_with("qwen2", &[])).unwrap();
        assert!(spec.qkv_bias);
        assert_eq!(spec.rope.kind, RopeKind::Neox);
    }

    #[test]
    fn gemma3_slides_five_layers_in_six_with_their_own_rope_base() {
        let extra = [
            ("attention.sliding_window", Value::U32(512)),
            ("rope.freq_base", Value::F32(1e6)),
            ("attention.key_length", Value::U32(32)),
        ];
        let mut spec = ArchSpec::from_gguf(&file_with("gemma3", &extra)).unwrap();
        spec.n_layer = 12;
        let windows: Vec<_> = (0..12).map(|il| spec.layer_attention(il).window).collect();
        assert_eq!(windows.iter().filter(|w| w.is_none()).count(), 2);
        assert_eq!(windows[5], None);
        assert_eq!(windows[11], None);
        assert_eq!(windows[0], Some(512));
        assert_eq!(spec.layer_attention(0).rope.unwrap().freq_base, 10_000.0);
        assert_eq!(spec.layer_attention(5).rope.unwrap().freq_base, 1e6);
        assert_eq!(spec.embed_scale, Some(8.0));
        assert_eq!(spec.attn_scale, 1.0 / 32f32.sqrt());
        assert_eq!(spec.ffn, FfnKind::GeGlu);
    }

    #[test]
    fn unsupported_architecture_error_lists_the_supported_ones() {
        let err = ArchSpec::from_gguf(&file_with("mamba", &[])).unwrap_err();
        for name in SUPPORTED_ARCHITECTURES {
            assert!(err.to_string().contains(name), "{err}");
        }
    }

    #[test]
    fn yarn_interpolates_by_the_factor_from_the_original_context() {
        let extra = [
            ("rope.scaling.type", Value::String("yarn".into())),
            ("rope.scaling.factor", Value::F32(4.0)),
            ("rope.scaling.original_context_length", Value::U32(64)),
        ];
        let spec = ArchSpec::from_gguf(&file_with("qwen3", &extra)).unwrap();
        assert!(spec.rope.yarn);
        assert_eq!(spec.rope.freq_scale, 0.25);
        assert_eq!(spec.rope.n_ctx_orig, 64);
        // llama.cpp's context divides YaRN's magnitude factor back out; the kernel multiplies it in.
        assert!((spec.rope.attn_factor - 1.0).abs() < 1e-6);
        assert_eq!(spec.qk_norm, QkNorm::PerHead);
    }

    #[test]
    fn gemma2_defaults_follow_llama_cpp() {
        let mut spec = ArchSpec::from_gguf(&file_with("gemma2", &[])).unwrap();
        spec.n_layer = 4;
        assert_eq!(spec.attn_softcap, Some(50.0));
        assert_eq!(spec.final_logit_softcap, Some(30.0));
        let windows: Vec<_> = (0..4).map(|il| spec.layer_attention(il).window).collect();
        assert_eq!(windows, [Some(4096), None, Some(4096), None]);
        assert!(spec.post_norms && spec.pre_norms);
    }

    #[test]
    fn smollm3_skips_rope_on_every_fourth_layer() {
        let mut spec = ArchSpec::from_gguf(&file_with("smollm3", &[])).unwrap();
        spec.n_layer = 8;
        let rotates: Vec<_> = (0..8)
            .map(|il| spec.layer_attention(il).rope.is_some())
            .collect();
        assert_eq!(rotates, [true, true, true, false, true, true, true, false]);
    }

    #[test]
    fn granite_needs_its_logit_scale() {
        let err = ArchSpec::from_gguf(&file_with("granite", &[])).unwrap_err();
        assert!(err.to_string().contains("logit_scale"), "{err}");
        let extra = [
            ("logit_scale", Value::F32(8.0)),
            ("residual_scale", Value::F32(0.22)),
        ];
        let spec = ArchSpec::from_gguf(&file_with("granite", &extra)).unwrap();
        assert_eq!(
            (spec.logit_scale, spec.residual_scale),
            (Some(8.0), Some(0.22))
        );
    }

    #[test]
    fn olmo2_and_exaone4_only_post_norm() {
        for (arch, qk) in [("olmo2", QkNorm::Full), ("exaone4", QkNorm::PerHead)] {
            let spec = ArchSpec::from_gguf(&file_with(arch, &[])).unwrap();
            assert!(!spec.pre_norms && spec.post_norms, "{arch}");
            assert_eq!(spec.qk_norm, qk, "{arch}");
            assert!(
                spec.sliding_window.is_none(),
                "{arch}: hybrid only at 64 layers"
            );
        }
    }

    #[test]
    fn moe_architectures_read_their_experts() {
        let experts = [
            ("expert_count", Value::U32(8)),
            ("expert_used_count", Value::U32(2)),
        ];
        let llama = ArchSpec::from_gguf(&file_with("llama", &experts)).unwrap();
        let m = llama.moe.unwrap();
        // Mixtral: experts as wide as feed_forward_length, weights renormalized.
        assert_eq!((m.n_expert, m.n_expert_used, m.n_ff_exp), (8, 2, 128));
        assert!(m.norm_weights && m.n_ff_shared.is_none());
        let q3 = ArchSpec::from_gguf(&file_with("qwen3moe", &experts)).unwrap();
        assert_eq!(
            q3.moe.unwrap().n_ff_exp,
            64,
            "n_ff / k without expert_feed_forward_length"
        );
        let q2 = ArchSpec::from_gguf(&file_with("qwen2moe", &experts)).unwrap();
        let m = q2.moe.unwrap();
        assert!(!m.norm_weights && q2.qkv_bias);
        assert_eq!(m.n_ff_shared, Some(128));
        let err = ArchSpec::from_gguf(&file_with("qwen3moe", &[])).unwrap_err();
        assert!(err.to_string().contains("expert_count"), "{err}");
        let too_many = [
            ("expert_count", Value::U32(2)),
            ("expert_used_count", Value::U32(3)),
        ];
        assert!(ArchSpec::from_gguf(&file_with("llama", &too_many)).is_err());
    }

    #[test]
    fn gpt_oss_slides_even_layers_and_gates_on_raw_logits() {
        let mut extra = vec![
            ("expert_count", Value::U32(4)),
            ("expert_used_count", Value::U32(2)),
            ("expert_feed_forward_length", Value::U32(32)),
        ];
        let err = ArchSpec::from_gguf(&file_with("gpt-oss", &extra)).unwrap_err();
        assert!(err.to_string().contains("sliding_window"), "{err}");
        extra.push(("attention.sliding_window", Value::U32(128)));
        let mut spec = ArchSpec::from_gguf(&file_with("gpt-oss", &extra)).unwrap();
        spec.n_layer = 4;
        let windows: Vec<_> = (0..4).map(|il| spec.layer_attention(il).window).collect();
        assert_eq!(windows, [Some(128), None, Some(128), None]);
        assert!(spec.attn_sinks && spec.pre_norms && !spec.post_norms);
        assert_eq!(spec.ffn_norm_name, "post_attention_norm");
        assert_eq!(spec.rope.kind, RopeKind::Neox);
        let m = spec.moe.unwrap();
        assert_eq!((m.n_expert, m.n_expert_used, m.n_ff_exp), (4, 2, 32));
        assert_eq!(m.gating, ExpertGating::SoftmaxOfChosen);
        assert_eq!(m.act, FfnKind::SwiGluOai);
        assert!(!m.norm_weights);
    }

    #[test]
    fn linear_rope_scaling_divides_positions() {
        let extra = [
            ("rope.scaling.type", Value::String("linear".into())),
            ("rope.scaling.factor", Value::F32(4.0)),
        ];
        let spec = ArchSpec::from_gguf(&file_with("llama", &extra)).unwrap();
        assert_eq!(spec.rope.freq_scale, 0.25);
    }

    #[test]
    fn head_count_kv_must_divide_head_count() {
        let mut w = GgufWriter::new();
        w.add_metadata("general.architecture", Value::String("llama".into()));
        for (k, v) in [
            ("block_count", 1u32),
            ("embedding_length", 64),
            ("feed_forward_length", 8),
        ] {
            w.add_metadata(format!("llama.{k}"), Value::U32(v));
        }
        w.add_metadata("llama.attention.head_count", Value::U32(4));
        w.add_metadata("llama.attention.head_count_kv", Value::U32(3));
        w.add_tensor(
            "token_embd.weight",
            GgmlType::F32,
            &[64, 2],
            vec![0; 64 * 2 * 4],
        )
        .unwrap();
        let file = GgufFile::from_bytes(w.to_bytes().unwrap()).unwrap();
        let err = ArchSpec::from_gguf(&file).unwrap_err();
        assert!(err.to_string().contains("head_count_kv"), "{err}");
    }
}
