//! The real models behind [`EmbedBackend`]: a decoder run over the input (its last hidden states after the
//! output norm, as llama.cpp pools them) and a BERT-family [`Encoder`].

use std::sync::Arc;

use cria_model::encoder::l2_normalize;
use cria_model::{Encoder, KvCache, Logits, Model, Pooling, Runner, SeqBatch};

use crate::{EmbedBackend, EngineError};

/// Tokens fed to the decoder per forward pass (bounds the activations of a long input; attention reads the
/// earlier chunks from the cache, so the result is the same as one pass).
const CHUNK: usize = 512;

/// A decoder model as an embedding model: its own runner and one KV cache of `ctx` tokens.
pub struct DecoderEmbedder {
    model: Arc<Model>,
    runner: Runner,
    cache: Option<KvCache>,
    ctx: usize,
    pooling: Pooling,
}

impl DecoderEmbedder {
    /// `pooling` must pool (not [`Pooling::None`]); inputs up to `ctx` tokens, run on `threads` threads.
    pub fn new(
        model: Arc<Model>,
        pooling: Pooling,
        ctx: usize,
        threads: usize,
    ) -> Result<Self, EngineError> {
        check_pools(pooling)?;
        let runner = Runner::new(&model, threads);
        Ok(DecoderEmbedder {
            model,
            runner,
            cache: None,
            ctx,
            pooling,
        })
    }
}

impl EmbedBackend for DecoderEmbedder {
    fn n_embd(&self) -> usize {
        self.model.spec().n_embd
    }

    fn embed(&mut self, ids: &[u32]) -> Result<Vec<f32>, EngineError> {
        // Allocated on first use and sized like a generation slot (LongRoPE picks its factors by it).
        let cache = self
            .cache
            .get_or_insert_with(|| self.model.new_cache(self.ctx));
        cache.clear();
        let mut states = Vec::with_capacity(ids.len() * self.model.spec().n_embd);
        for chunk in ids.chunks(CHUNK) {
            let mut batch = [SeqBatch {
                cache: &mut *cache,
                tokens: chunk,
                logits: Logits::None,
            }];
            let rows = self.runner.hidden_states(&self.model, &mut batch)?;
            states.extend(rows.into_iter().flatten());
        }
        cache.clear();
        Ok(pool_and_normalize(&states, self.pooling, self.n_embd()))
    }
}

/// A BERT-family encoder with the pooling it is served with.
pub struct EncoderEmbedder {
    encoder: Encoder,
    pooling: Pooling,
}

impl EncoderEmbedder {
    pub fn new(encoder: Encoder, pooling: Pooling) -> Result<Self, EngineError> {
        check_pools(pooling)?;
        Ok(EncoderEmbedder { encoder, pooling })
    }
}

impl EmbedBackend for EncoderEmbedder {
    fn n_embd(&self) -> usize {
        self.encoder.n_embd()
    }

    fn embed(&mut self, ids: &[u32]) -> Result<Vec<f32>, EngineError> {
        let states = self.encoder.hidden_states(ids)?;
        Ok(pool_and_normalize(&states, self.pooling, self.n_embd()))
    }
}

fn check_pools(pooling: Pooling) -> Result<(), EngineError> {
    if pooling == Pooling::None {
        return Err(EngineError::Backend(
            "pooling none gives one vector per token, not one per input".into(),
        ));
    }
    Ok(())
}

/// One vector from `n_tok` rows of `d`, at unit length (llama-embedding's default `--embd-normalize 2`).
fn pool_and_normalize(states: &[f32], pooling: Pooling, d: usize) -> Vec<f32> {
    let mut v = pooling.apply(states, d);
    l2_normalize(&mut v);
    v
}
