//! One small function per architecture: GGUF metadata in, `ArchSpec` out.

pub mod gemma2;
pub mod gemma3;
pub mod gpt_oss;
pub mod llama;
pub mod olmo2;
pub mod phi3;
pub mod qwen2;

use cria_gguf::{GgufError, GgufFile, Value};

use crate::ModelError;
use crate::spec::{
    ArchSpec, ExpertGating, FfnKind, MoeSpec, NoRope, QkNorm, RopeKind, RopeSpec, SwaLayers,
};

/// Reads `{arch}.{key}` as a count.
fn count(file: &GgufFile, arch: &str, key: &str) -> Result<usize, ModelError> {
    let full = format!("{arch}.{key}");
    let value = file.u64(&full)?;
    usize::try_from(value).map_err(|_| ModelError::BadHyperparameter {
        key: full,
        why: format!("{value} does not fit in memory"),
    })
}

/// Reads `{arch}.{key}` as a count, `default` when absent.
fn count_or(file: &GgufFile, arch: &str, key: &str, default: usize) -> Result<usize, ModelError> {
    match count(file, arch, key) {
        Err(ModelError::Gguf(GgufError::MissingKey { .. })) => Ok(default),
        other => other,
    }
}

/// Reads `{arch}.{key}` as a float, `None` when absent.
fn float_opt(file: &GgufFile, arch: &str, key: &str) -> Result<Option<f32>, ModelError> {
    match file.f32(&format!("{arch}.{key}")) {
        Ok(v) => Ok(Some(v)),
        Err(GgufError::MissingKey { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The vocabulary size: the embedding matrix's row count.
fn n_vocab(file: &GgufFile) -> Result<usize, ModelError> {
    let name = "token_embd.weight";
    let t = file
        .tensor(name)
        .ok_or_else(|| ModelError::MissingTensor(name.to_string()))?;
    match t.shape() {
        [_, rows] => usize::try_from(*rows).map_err(|_| ModelError::BadShape {
            name: name.to_string(),
            expected: vec![],
            found: t.shape().to_vec(),
        }),
        other => Err(ModelError::BadShape {
            name: name.to_string(),
            expected: vec![0, 0],
            found: other.to_vec(),
        }),
    }
}

/// Reads `{arch}.{key}` as a flag, `None` when absent.
fn bool_opt(file: &GgufFile, arch: &str, key: &str) -> Result<Option<bool>, ModelError> {
    match file.bool(&format!("{arch}.{key}")) {
        Ok(v) => Ok(Some(v)),
        Err(GgufError::MissingKey { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Which layers slide: `{arch}.attention.sliding_window_pattern` as a flag a layer or a period, else
/// `default_period` (llama.cpp's `load_swa_pattern`).
fn swa_layers(file: &GgufFile, arch: &str, default_period: usize) -> Result<SwaLayers, ModelError> {
    let key = format!("{arch}.attention.sliding_window_pattern");
    match file.get(&key) {
        None => Ok(SwaLayers::Period(default_period)),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| v.as_bool())
            .collect::<Option<Vec<bool>>>()
            .map(SwaLayers::Flags)
            .ok_or_else(|| ModelError::BadHyperparameter {
                key,
                why: "an array pattern must hold booleans".to_string(),
            }),
        Some(_) => Ok(SwaLayers::Period(count(
            file,
            arch,
            "attention.sliding_window_pattern",
        )?)),
    }
}

/// YaRN's rotations-per-context bounds (llama.cpp's defaults, not read from GGUF for these architectures).
pub(crate) const YARN_BETA_FAST: f32 = 32.0;
pub(crate) const YARN_BETA_SLOW: f32 = 1.0;

/// RoPE as llama.cpp's `load_hparams` and context set it up: `rope.scaling.type` (default linear) with
/// `rope.scaling.factor` (freq_scale = 1 / factor, none for type `none`), `original_context_length`, and the
/// magnitude factor: `rope.scaling.attn_factor` times, for YaRN, llama.cpp's `get_mscale(factor) / (1 + 0.1 ln
/// factor)` (the kernel multiplies `1 + 0.1 ln factor` back in).
fn rope_spec(
    file: &GgufFile,
    arch: &str,
    kind: RopeKind,
    n_rot: usize,
    n_ctx_train: usize,
) -> Result<RopeSpec, ModelError> {
    let scaling = match file.str(&format!("{arch}.rope.scaling.type")) {
        Ok(t) => t.to_string(),
        Err(GgufError::MissingKey { .. }) => "linear".to_string(),
        Err(e) => return Err(e.into()),
    };
    if !matches!(scaling.as_str(), "none" | "linear" | "yarn" | "longrope") {
        return Err(ModelError::BadHyperparameter {
            key: format!("{arch}.rope.scaling.type"),
            why: format!("'{scaling}' is not one of none, linear, yarn, longrope"),
        });
    }
    let factor = float_opt(file, arch, "rope.scaling.factor")?
        .or(float_opt(file, arch, "rope.scale_linear")?)
        .unwrap_or(0.0);
    let freq_scale = if factor == 0.0 || scaling == "none" {
        1.0
    } else {
        1.0 / factor
    };
    let yarn = scaling == "yarn";
    let mut attn_factor = 1.0f32;
    if yarn {
        let factor = 1.0 / freq_scale;
        let mscale = if factor <= 1.0 {
            1.0
        } else {
            0.1 * factor.ln() + 1.0
        };
        attn_factor = mscale * (1.0 / (1.0 + 0.1 * factor.ln()));
    }
    attn_factor *= float_opt(file, arch, "rope.scaling.attn_factor")?.unwrap_or(1.0);
    Ok(RopeSpec {
        kind,
        n_rot,
        freq_base: float_opt(file, arch, "rope.freq_base")?.unwrap_or(10_000.0),
        freq_scale,
        yarn,
        n_ctx_orig: count_or(
            file,
            arch,
            "rope.scaling.original_context_length",
            n_ctx_train,
        )?,
        attn_factor,
    })
}

/// Experts where `{arch}.expert_count` > 0: `expert_used_count` of them a token, each as wide as
/// `expert_feed_forward_length` (else `feed_forward_length`), weights renormalized (architectures that do not
/// renormalize say so afterwards), softmax gating, the architecture's activation `act`.
fn moe_spec(file: &GgufFile, arch: &str, act: FfnKind) -> Result<Option<MoeSpec>, ModelError> {
    let n_expert = count_or(file, arch, "expert_count", 0)?;
    if n_expert == 0 {
        return Ok(None);
    }
    let n_ff = count(file, arch, "feed_forward_length")?;
    Ok(Some(MoeSpec {
        n_expert,
        n_expert_used: count_or(file, arch, "expert_used_count", 0)?,
        n_ff_exp: count_or(file, arch, "expert_feed_forward_length", n_ff)?,
        norm_weights: true,
        weights_scale: float_opt(file, arch, "expert_weights_scale")?
            .filter(|s| *s != 0.0 && *s != 1.0),
        n_ff_shared: None,
        gating: ExpertGating::Softmax,
        act,
    }))
}

/// The hyperparameters every LLaMA-like architecture stores under the same keys.
fn base(file: &GgufFile, arch: &str, ffn: FfnKind, rope: RopeKind) -> Result<ArchSpec, ModelError> {
    let n_embd = count(file, arch, "embedding_length")?;
    let n_head = count(file, arch, "attention.head_count")?;
    let default_head_dim = n_embd.checked_div(n_head).unwrap_or(0);
    let head_dim = count_or(file, arch, "attention.key_length", default_head_dim)?;
    let n_rot = count_or(file, arch, "rope.dimension_count", head_dim)?;
    let n_ctx_train = count_or(file, arch, "context_length", 2048)?;
    Ok(ArchSpec {
        arch: arch.to_string(),
        n_layer: count(file, arch, "block_count")?,
        n_embd,
        n_head,
        n_head_kv: count_or(file, arch, "attention.head_count_kv", n_head)?,
        head_dim,
        n_ff: count(file, arch, "feed_forward_length")?,
        n_vocab: n_vocab(file)?,
        n_ctx_train,
        norm_eps: float_opt(file, arch, "attention.layer_norm_rms_epsilon")?.unwrap_or(1e-5),
        rope: rope_spec(file, arch, rope, n_rot, n_ctx_train)?,
        sliding_window: None,
        no_rope: NoRope::Never,
        ffn,
        moe: moe_spec(file, arch, ffn)?,
        qkv_bias: false,
        qk_norm: QkNorm::None,
        pre_norms: true,
        post_norms: false,
        embed_scale: None,
        attn_scale: 1.0 / (head_dim.max(1) as f32).sqrt(),
        attn_softcap: None,
        residual_scale: None,
        logit_scale: None,
        final_logit_softcap: float_opt(file, arch, "final_logit_softcapping")?.filter(|c| *c > 0.0),
        attn_sinks: false,
        ffn_norm_name: "ffn_norm",
    })
}
