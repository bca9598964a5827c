//! What the engine needs from a model and a tokenizer, as two small traits (plain data across the boundary,
//! so the scheduler can be tested without a model).

use crate::EngineError;

/// One sequence's share of a step: store `tokens` at positions `start..` through the block table `blocks`
/// (the positions before `start` are there already), and return the last row's logits when `want_logits`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step<'a> {
    /// The sequence's slot (which request it is; the KV lives in `blocks`).
    pub slot: usize,
    /// The KV pool blocks of the sequence's positions, in order; they cover `start + tokens.len()`.
    pub blocks: &'a [u32],
    /// Where the backend keeps its sliding-window layers in a pool of their own
    /// ([`Backend::sliding_window`]): their block table, holding the positions the step's queries see (the
    /// window before `start` on); blocks behind the window are given back (`u32::MAX`).
    pub window_blocks: Option<&'a [u32]>,
    pub start: usize,
    pub tokens: &'a [u32],
    pub want_logits: bool,
}

/// A model with a paged KV pool that sequences address through block tables.
pub trait Backend {
    /// A slot is taken by a new sequence or given back (a backend that keeps per-slot state resets it).
    fn reset_slot(&mut self, slot: usize);
    /// Runs one batched step; returns, per step in order, the last row's logits (empty when not wanted).
    fn forward(&mut self, steps: &[Step<'_>]) -> Result<Vec<Vec<f32>>, EngineError>;
    /// Bytes of KV cache allocated.
    fn kv_bytes(&self) -> usize;
    /// The window of the sliding-window layers, when the backend keeps them in a pool of their own of
    /// [`EngineConfig::window_blocks`](crate::EngineConfig::window_blocks) blocks: then each step carries
    /// their block table, and blocks behind the window may be given back.
    fn sliding_window(&self) -> Option<usize> {
        None
    }
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
