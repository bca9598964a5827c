//! What the engine needs from a model and a tokenizer, as two small traits (plain data across the boundary,
//! so the scheduler can be tested without a model).

use crate::EngineError;

/// One sequence's share of a step: append `tokens` to slot `slot`'s cache, and return the last row's logits
/// when `want_logits`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step<'a> {
    pub slot: usize,
    pub tokens: &'a [u32],
    pub want_logits: bool,
}

/// A model with `n` sequence slots, each with its own KV cache.
pub trait Backend {
    /// Empties slot `slot`'s cache for a new sequence.
    fn reset_slot(&mut self, slot: usize);
    /// Runs one batched step; returns, per step in order, the last row's logits (empty when not wanted).
    fn forward(&mut self, steps: &[Step<'_>]) -> Result<Vec<Vec<f32>>, EngineError>;
    /// Bytes of KV cache allocated across all slots.
    fn kv_bytes(&self) -> usize;
}

/// The token facts the stop rules need.
pub trait Vocab: Send + Sync {
    /// The raw bytes token `id` stands for.
    fn token_bytes(&self, id: u32) -> &[u8];
    /// True for end-of-generation tokens (EOS, EOT, `<|im_end|>`...).
    fn is_eog(&self, id: u32) -> bool;
    /// Every end-of-generation token id (for `ignore_eos`).
    fn end_of_generation_ids(&self) -> Vec<u32>;
}

#[cfg(feature = "model")]
impl Vocab for cria_tokenizer::Tokenizer {
    fn token_bytes(&self, id: u32) -> &[u8] {
        cria_tokenizer::Tokenizer::token_bytes(self, id)
    }

    fn is_eog(&self, id: u32) -> bool {
        self.is_end_of_generation(id)
    }

    fn end_of_generation_ids(&self) -> Vec<u32> {
        cria_tokenizer::Tokenizer::end_of_generation_ids(self).to_vec()
    }
}
