//! A loaded model: its spec, its weights (memory-mapped) and the RoPE tables of its layer kinds.

use std::path::Path;

use cria_gguf::GgufFile;
use cria_kernels::ops::{RopeParams, RopeStyle, Yarn, yarn_corr_dims};

use crate::ModelError;
use crate::arch::{YARN_BETA_FAST, YARN_BETA_SLOW};
use crate::kv_cache::{KvCache, KvPool};
use crate::spec::{ArchSpec, RopeKind, RopeSpec};
use crate::weights::{FfnWeights, Weights};

/// An immutable model, shareable across threads; run it with a [`crate::Runner`].
pub struct Model {
    file: GgufFile,
    spec: ArchSpec,
    weights: Weights,
    /// The tensor data on 2 MiB pages, read in place of the map ([`crate::weights::resident_copy`]).
    resident: Option<cria_kernels::pages::HugeBytes>,
    /// RoPE of each layer (global and sliding layers may differ; `None`: the layer does not rotate), with
    /// LongRoPE's short factors where the file has them.
    layer_rope: Vec<Option<RopeParams>>,
    /// The same with LongRoPE's long factors, for sequences whose context exceeds the original one.
    layer_rope_long: Option<Vec<Option<RopeParams>>>,
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
        let resident = crate::weights::resident_copy(&file, &weights)?;
        let ropes = |factors: Option<&[f32]>| -> Vec<Option<RopeParams>> {
            (0..spec.n_layer)
                .map(|il| {
                    spec.layer_attention(il)
                        .rope
                        .map(|r| rope_params(r, factors))
                })
                .collect()
        };
        // llama.cpp's `get_rope_factors`: `rope_freqs` wins over LongRoPE's pair.
        let w = &weights;
        let short = w.rope_freqs.as_deref().or(w.rope_factors_short.as_deref());
        let layer_rope = ropes(short);
        let layer_rope_long = match (&w.rope_freqs, &w.rope_factors_long) {
            (None, Some(long)) => Some(ropes(Some(long))),
            _ => None,
        };
        Ok(Model {
            file,
            spec,
            weights,
            resident,
            layer_rope,
            layer_rope_long,
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

    /// A paged KV cache of `n_blocks` blocks of `block_size` positions, shared by many sequences; every layer
    /// reads its positions through the one block table.
    pub fn new_pool(&self, block_size: usize, n_blocks: usize) -> KvPool {
        self.new_windowed_pool(block_size, n_blocks, None)
    }

    /// A paged KV cache whose sliding-window layers, given `n_window_blocks`, keep a pool of that many blocks
    /// of their own, addressed through a second block table ([`crate::PagedSeq::window_blocks`]).
    pub fn new_windowed_pool(
        &self,
        block_size: usize,
        n_blocks: usize,
        n_window_blocks: Option<usize>,
    ) -> KvPool {
        let sliding: Vec<bool> = (0..self.spec.n_layer)
            .map(|il| self.spec.layer_attention(il).window.is_some())
            .collect();
        let n_window_blocks = n_window_blocks.filter(|_| sliding.contains(&true));
        KvPool::new(
            &sliding,
            self.spec.kv_dim(),
            block_size,
            n_blocks,
            n_window_blocks,
        )
    }

    /// The sliding window of the model's sliding-window layers, in positions, if it has any.
    pub fn sliding_window(&self) -> Option<usize> {
        (0..self.spec.n_layer).find_map(|il| self.spec.layer_attention(il).window)
    }

    /// Bytes of weight data read per generated token (every matrix once, one embedding row aside).
    pub fn weight_bytes_per_token(&self) -> usize {
        let w = &self.weights;
        let layers: usize = w
            .layers
            .iter()
            .map(|l| {
                let attn = [&l.wq, &l.wk, &l.wv, &l.wo];
                let bytes = |m: &&crate::weights::Matrix| m.view(self.file.data()).data.len();
                let ffn: usize = match &l.ffn {
                    // A token reads the router and its k experts (and the shared one).
                    FfnWeights::Experts(e) => {
                        let k = e.spec.n_expert_used;
                        let one = bytes(&&e.gate[0]) + bytes(&&e.up[0]) + bytes(&&e.down[0]);
                        let shared = e
                            .shared
                            .as_ref()
                            .map_or(0, |s| bytes(&&s.gate) + bytes(&&s.up) + bytes(&&s.down));
                        bytes(&&e.router) + k * one + shared
                    }
                    dense => dense.matrices().iter().map(bytes).sum(),
                };
                attn.iter().map(bytes).sum::<usize>() + ffn
            })
            .sum();
        layers + w.output_matrix().view(self.file.data()).data.len()
    }

    pub(crate) fn weights(&self) -> &Weights {
        &self.weights
    }

    /// The tensor data the kernels read: the copy on 2 MiB pages, or the file's map.
    pub(crate) fn data(&self) -> &[u8] {
        self.resident.as_deref().unwrap_or(self.file.data())
    }

    /// The RoPE of layer `il` for a sequence whose context holds `n_ctx_seq` tokens (LongRoPE switches to its
    /// long factors above the original context, as llama.cpp does by its configured context, not the prompt);
    /// `None` where the layer does not rotate.
    pub(crate) fn layer_rope(&self, il: usize, n_ctx_seq: usize) -> Option<&RopeParams> {
        match &self.layer_rope_long {
            Some(long) if n_ctx_seq > self.spec.rope.n_ctx_orig => long[il].as_ref(),
            _ => self.layer_rope[il].as_ref(),
        }
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
        yarn: rope.yarn.then(|| Yarn {
            ext_factor: 1.0,
            corr_dims: yarn_corr_dims(
                rope.n_rot,
                rope.n_ctx_orig,
                rope.freq_base,
                YARN_BETA_FAST,
                YARN_BETA_SLOW,
            ),
        }),
        attn_factor: rope.attn_factor,
    }
}
