//! A loaded model: its spec, its weights (memory-mapped) and the RoPE tables of its layer kinds.

use std::path::Path;

use cria_gguf::GgufFile;
use cria_kernels::ops::{RopeParams, RopeStyle};

use crate::ModelError;
use crate::kv_cache::KvCache;
use crate::spec::{ArchSpec, RopeKind, RopeSpec};
use crate::weights::Weights;

/// An immutable model, shareable across threads; run it with a [`crate::Runner`].
pub struct Model {
    file: GgufFile,
    spec: ArchSpec,
    weights: Weights,
    /// RoPE of each layer (global and sliding layers may differ).
    layer_rope: Vec<RopeParams>,
}

impl Model {
    /// Opens, validates and maps a GGUF model file.
    pub fn load(path: &Path) -> Result<Model, ModelError> {
        Model::from_gguf(GgufFile::open(path)?)
    }

    /// Builds a model from an already opened file.
    pub fn from_gguf(file: GgufFile) -> Result<Model, ModelError> {
        let spec = ArchSpec::from_gguf(&file)?;
        let weights = Weights::load(&file, &spec)?;
        let layer_rope = (0..spec.n_layer)
            .map(|il| rope_params(spec.layer_attention(il).rope, weights.rope_freqs.as_deref()))
            .collect();
        Ok(Model {
            file,
            spec,
            weights,
            layer_rope,
        })
    }

    /// The GGUF file (metadata, tokenizer data).
    pub fn gguf(&self) -> &GgufFile {
        &self.file
    }

    /// The architecture's description.
    pub fn spec(&self) -> &ArchSpec {
        &self.spec
    }

    /// Vocabulary size (logits per position).
    pub fn n_vocab(&self) -> usize {
        self.spec.n_vocab
    }

    /// The context length the model was trained for.
    pub fn n_ctx_train(&self) -> usize {
        self.spec.n_ctx_train
    }

    /// A KV cache for one sequence of up to `max_tokens` positions.
    pub fn new_cache(&self, max_tokens: usize) -> KvCache {
        KvCache::new(self.spec.n_layer, self.spec.kv_dim(), max_tokens)
    }

    /// Bytes of weight data read per generated token (every matrix once, one embedding row aside).
    pub fn weight_bytes_per_token(&self) -> usize {
        let w = &self.weights;
        let layers: usize = w
            .layers
            .iter()
            .map(|l| {
                [&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down]
                    .iter()
                    .map(|m| m.view(self.file.data()).data.len())
                    .sum::<usize>()
            })
            .sum();
        layers + w.output_matrix().view(self.file.data()).data.len()
    }

    pub(crate) fn weights(&self) -> &Weights {
        &self.weights
    }

    pub(crate) fn data(&self) -> &[u8] {
        self.file.data()
    }

    pub(crate) fn layer_rope(&self, il: usize) -> &RopeParams {
        &self.layer_rope[il]
    }
}

fn rope_params(rope: &RopeSpec, freq_factors: Option<&[f32]>) -> RopeParams {
    RopeParams {
        style: match rope.kind {
            RopeKind::Normal => RopeStyle::Normal,
            RopeKind::Neox => RopeStyle::Neox,
        },
        n_rot: rope.n_rot,
        freq_base: rope.freq_base,
        freq_scale: rope.freq_scale,
        freq_factors: freq_factors.map(<[f32]>::to_vec),
    }
}
