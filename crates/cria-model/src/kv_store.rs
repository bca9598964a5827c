//! Where a step's sequences keep their keys and values: each its own flat [`KvCache`], or blocks of one shared
//! [`KvPool`] through block tables. The forward pass is written once against [`KvStore`].

use cria_kernels::ops::KvView;

use crate::ModelError;
use crate::kv_cache::{KvCache, KvPool};
use crate::runner::Logits;

/// One sequence's part of a step as the forward pass sees it, whatever stores its cache.
#[derive(Clone, Copy)]
pub(crate) struct SeqStep<'a> {
    pub tokens: &'a [u32],
    pub logits: Logits,
    /// Positions already in the cache: the tokens go to `start..start + tokens.len()`.
    pub start: usize,
    /// The sequence's context size (LongRoPE picks its factors by it).
    pub ctx: usize,
}

/// The caches of a step's sequences, by their index in the step.
pub(crate) trait KvStore: Sync {
    fn store(&mut self, seq: usize, layer: usize, pos: usize, k: &[f32], v: &[f32]);
    fn view(&self, seq: usize, layer: usize) -> KvView<'_>;
}

/// One flat cache per sequence.
pub(crate) struct FlatCaches<'a>(pub Vec<&'a mut KvCache>);

impl KvStore for FlatCaches<'_> {
    fn store(&mut self, seq: usize, layer: usize, pos: usize, k: &[f32], v: &[f32]) {
        self.0[seq].store(layer, pos, k, v);
    }

    fn view(&self, seq: usize, layer: usize) -> KvView<'_> {
        self.0[seq].view(layer)
    }
}

/// One pool, a block table per sequence.
pub(crate) struct PagedCaches<'a> {
    pub pool: &'a mut KvPool,
    pub tables: Vec<&'a [u32]>,
}

impl KvStore for PagedCaches<'_> {
    fn store(&mut self, seq: usize, layer: usize, pos: usize, k: &[f32], v: &[f32]) {
        self.pool.store(self.tables[seq], layer, pos, k, v);
    }

    fn view(&self, seq: usize, layer: usize) -> KvView<'_> {
        self.pool.view(self.tables[seq], layer)
    }
}

impl PagedCaches<'_> {
    /// Errors unless each table covers its sequence's positions after the step and names only pool blocks.
    pub fn check(&self, steps: &[SeqStep<'_>]) -> Result<(), ModelError> {
        let bs = self.pool.block_size();
        for (table, step) in self.tables.iter().zip(steps) {
            let needed = step.start + step.tokens.len();
            let capacity = table.len() * bs;
            if needed > capacity {
                return Err(ModelError::ContextFull { needed, capacity });
            }
            if let Some(&b) = table.iter().find(|&&b| b as usize >= self.pool.n_blocks()) {
                return Err(ModelError::NoSuchBlock {
                    block: b,
                    n_blocks: self.pool.n_blocks(),
                });
            }
        }
        Ok(())
    }
}
