//! One small function per architecture: GGUF metadata in, `ArchSpec` out.

pub mod gemma3;
pub mod llama;
pub mod qwen2;

use cria_gguf::{GgufError, GgufFile};

use crate::ModelError;
use crate::spec::{ArchSpec, FfnKind, RopeKind, RopeSpec};

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

/// Linear RoPE scaling from `rope.scaling.type` / `rope.scaling.factor` (1.0 when absent).
fn rope_freq_scale(file: &GgufFile, arch: &str) -> Result<f32, ModelError> {
    let kind = file.str(&format!("{arch}.rope.scaling.type")).ok();
    let factor = float_opt(file, arch, "rope.scaling.factor")?;
    match (kind, factor) {
        (Some("linear") | None, Some(f)) if f > 0.0 && f != 1.0 => Ok(1.0 / f),
        _ => Ok(1.0),
    }
}

/// The hyperparameters every LLaMA-like architecture stores under the same keys.
fn base(file: &GgufFile, arch: &str, ffn: FfnKind, rope: RopeKind) -> Result<ArchSpec, ModelError> {
    let n_embd = count(file, arch, "embedding_length")?;
    let n_head = count(file, arch, "attention.head_count")?;
    let default_head_dim = n_embd.checked_div(n_head).unwrap_or(0);
    let head_dim = count_or(file, arch, "attention.key_length", default_head_dim)?;
    let n_rot = count_or(file, arch, "rope.dimension_count", head_dim)?;
    Ok(ArchSpec {
        arch: arch.to_string(),
        n_layer: count(file, arch, "block_count")?,
        n_embd,
        n_head,
        n_head_kv: count_or(file, arch, "attention.head_count_kv", n_head)?,
        head_dim,
        n_ff: count(file, arch, "feed_forward_length")?,
        n_vocab: n_vocab(file)?,
        n_ctx_train: count_or(file, arch, "context_length", 2048)?,
        norm_eps: float_opt(file, arch, "attention.layer_norm_rms_epsilon")?.unwrap_or(1e-5),
        rope: RopeSpec {
            kind: rope,
            n_rot,
            freq_base: float_opt(file, arch, "rope.freq_base")?.unwrap_or(10_000.0),
            freq_scale: rope_freq_scale(file, arch)?,
        },
        sliding_window: None,
        ffn,
        qkv_bias: false,
        qk_norm: false,
        post_norms: false,
        embed_scale: None,
        attn_scale: 1.0 / (head_dim.max(1) as f32).sqrt(),
        final_logit_softcap: float_opt(file, arch, "final_logit_softcapping")?.filter(|c| *c > 0.0),
    })
}
