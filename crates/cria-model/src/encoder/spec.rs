//! `EncoderSpec`: what makes one BERT-family encoder differ from another, as data read from GGUF.

use cria_gguf::{GgufError, GgufFile};
use cria_kernels::ops::{RopeParams, RopeStyle};

use super::pooling::Pooling;
use crate::ModelError;

/// How token positions enter the encoder.
#[derive(Clone, Debug, PartialEq)]
pub enum Positions {
    /// Learned absolute position embeddings added to the input (`position_embd`, BERT).
    Absolute,
    /// Rotary embedding of Q and K in every layer (nomic-bert: NEOX pairs).
    Rope(RopeParams),
}

/// The feed-forward network of every layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EncoderFfn {
    /// `down(gelu(up x + b) ) + b` (BERT; biases where present).
    Gelu,
    /// `down(silu(gate x) * up x)` without biases (nomic-bert; llama.cpp ignores any stored there).
    SwiGlu,
}

/// A declarative description of a BERT-family encoder: post-norm layers with LayerNorm (weight and bias),
/// non-causal attention over the whole input, no KV cache.
#[derive(Clone, Debug, PartialEq)]
pub struct EncoderSpec {
    pub arch: String,
    pub n_layer: usize,
    pub n_embd: usize,
    pub n_head: usize,
    pub n_head_kv: usize,
    pub head_dim: usize,
    pub n_ff: usize,
    pub n_vocab: usize,
    /// Longest input (the position table's rows for BERT).
    pub n_ctx_train: usize,
    /// `{arch}.attention.layer_norm_epsilon`.
    pub norm_eps: f32,
    pub positions: Positions,
    pub ffn: EncoderFfn,
    /// The model's pooling (`{arch}.pooling_type`), used unless the caller asks for another.
    pub pooling: Pooling,
}

/// The encoder architectures Cria runs.
pub const ENCODER_ARCHS: &[&str] = &["bert", "nomic-bert"];

impl EncoderSpec {
    /// The spec a GGUF file describes; an error for decoder or unknown architectures.
    pub fn from_gguf(file: &GgufFile) -> Result<EncoderSpec, ModelError> {
        let arch = file.architecture()?.to_string();
        let (positions, ffn) = match arch.as_str() {
            "bert" => (Positions::Absolute, EncoderFfn::Gelu),
            "nomic-bert" => (
                Positions::Rope(nomic_rope(file, &arch)?),
                EncoderFfn::SwiGlu,
            ),
            _ => return Err(ModelError::NotAnEncoder(arch)),
        };
        let key = |k: &str| format!("{arch}.{k}");
        let n_embd = count(file, &key("embedding_length"))?;
        let n_head = count(file, &key("attention.head_count"))?;
        let head_dim = n_embd.checked_div(n_head).unwrap_or(0);
        if head_dim == 0 || head_dim * n_head != n_embd {
            return Err(bad(
                &key("attention.head_count"),
                "must divide embedding_length",
            ));
        }
        let n_head_kv = count_or(file, &key("attention.head_count_kv"), n_head)?;
        if n_head_kv == 0 || !n_head.is_multiple_of(n_head_kv) {
            return Err(bad(
                &key("attention.head_count_kv"),
                "must divide head_count",
            ));
        }
        if file.get("tokenizer.ggml.token_type_count").is_none() {
            // llama.cpp refuses these files too ("model needs to define token type count")
            return Err(bad("tokenizer.ggml.token_type_count", "missing"));
        }
        let mut spec = EncoderSpec {
            n_layer: count(file, &key("block_count"))?,
            n_embd,
            n_head,
            n_head_kv,
            head_dim,
            n_ff: count(file, &key("feed_forward_length"))?,
            n_vocab: n_vocab(file)?,
            n_ctx_train: count_or(file, &key("context_length"), 512)?,
            norm_eps: file.f32(&key("attention.layer_norm_epsilon"))?,
            positions,
            ffn,
            pooling: Pooling::from_gguf(file, &key("pooling_type"))?,
            arch,
        };
        let rot_key = spec.key("rope.dimension_count");
        if let Positions::Rope(p) = &mut spec.positions {
            p.n_rot = count_or(file, &rot_key, head_dim)?;
            if p.n_rot > head_dim || !p.n_rot.is_multiple_of(2) {
                return Err(bad(&rot_key, "must be even and at most the head size"));
            }
        }
        Ok(spec)
    }

    fn key(&self, k: &str) -> String {
        format!("{}.{k}", self.arch)
    }

    /// Width of Q (and of K and V times `n_head / n_head_kv`).
    pub fn q_dim(&self) -> usize {
        self.n_head * self.head_dim
    }

    pub fn kv_dim(&self) -> usize {
        self.n_head_kv * self.head_dim
    }
}

/// nomic-bert's RoPE: NEOX pairs, `rope.freq_base` (llama.cpp's default 10000 when absent).
fn nomic_rope(file: &GgufFile, arch: &str) -> Result<RopeParams, ModelError> {
    let base = match file.f32(&format!("{arch}.rope.freq_base")) {
        Ok(v) => v,
        Err(GgufError::MissingKey { .. }) => 10_000.0,
        Err(e) => return Err(e.into()),
    };
    // n_rot is filled in once the head size is known
    Ok(RopeParams::new(RopeStyle::Neox, 0, base))
}

fn count(file: &GgufFile, key: &str) -> Result<usize, ModelError> {
    let v = file.u64(key)?;
    usize::try_from(v).map_err(|_| bad(key, "does not fit in memory"))
}

fn count_or(file: &GgufFile, key: &str, default: usize) -> Result<usize, ModelError> {
    match count(file, key) {
        Err(ModelError::Gguf(GgufError::MissingKey { .. })) => Ok(default),
        other => other,
    }
}

fn bad(key: &str, why: &str) -> ModelError {
    ModelError::BadHyperparameter {
        key: key.to_string(),
        why: why.to_string(),
    }
}

/// The vocabulary size: the embedding matrix's row count.
fn n_vocab(file: &GgufFile) -> Result<usize, ModelError> {
    let name = "token_embd.weight";
    let t = file
        .tensor(name)
        .ok_or_else(|| ModelError::MissingTensor(name.to_string()))?;
    match t.shape() {
        [_, rows] => usize::try_from(*rows).map_err(|_| bad(name, "too many rows")),
        other => Err(ModelError::BadShape {
            name: name.to_string(),
            expected: vec![0, 0],
            found: other.to_vec(),
        }),
    }
}
