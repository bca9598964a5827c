//! Where a step's sequences keep their keys and values: each its own flat [`KvCache`], or blocks of one shared
//! [`KvPool`] through block tables. The CPU backend reads and writes them through [`KvCaches`].

use cria_kernels::backend::KvCaches;
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

/// One flat cache per sequence.
pub(crate) struct FlatCaches<'a>(pub Vec<&'a mut KvCache>);

impl KvCaches for FlatCaches<'_> {
    fn store(&mut self, seq: usize, layer: usize, pos: usize, k: &[f32], v: &[f32]) {
        self.0[seq].store(layer, pos, k, v);
    }

    fn view(&self, seq: usize, layer: usize) -> KvView<'_> {
        self.0[seq].view(layer)
    }
}

/// One pool, a block table per sequence (and one for the sliding-window layers where they have a pool of
/// their own).
pub(crate) struct PagedCaches<'a> {
    pub pool: &'a mut KvPool,
    pub tables: Vec<&'a [u32]>,
    /// Per sequence: the sliding-window layers' table (`None`: they use `tables` too).
    pub window_tables: Vec<Option<&'a [u32]>>,
}

impl<'a> PagedCaches<'a> {
    /// The table layer `layer` of sequence `seq` goes through.
    fn table(&self, seq: usize, layer: usize) -> &'a [u32] {
        match self.window_tables[seq] {
            Some(t) if self.pool.is_windowed(layer) => t,
            _ => self.tables[seq],
        }
    }
}

impl KvCaches for PagedCaches<'_> {
    fn store(&mut self, seq: usize, layer: usize, pos: usize, k: &[f32], v: &[f32]) {
        let table = self.table(seq, layer);
        self.pool.store(table, layer, pos, k, v);
    }

    fn view(&self, seq: usize, layer: usize) -> KvView<'_> {
        self.pool.view(self.table(seq, layer), layer)
    }
}

impl PagedCaches<'_> {
    /// Errors unless each table covers its sequence's positions after the step and names only pool blocks;
    /// a sliding-window table must hold the positions the step's queries see (`window` before the first of
    /// them on); blocks before those may have been given back (`u32::MAX`).
    pub fn check(&self, steps: &[SeqStep<'_>], window: Option<usize>) -> Result<(), ModelError> {
        self.check_window_tables(steps, window)?;
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

    fn check_window_tables(
        &self,
        steps: &[SeqStep<'_>],
        window: Option<usize>,
    ) -> Result<(), ModelError> {
        let (Some(n_blocks), Some(window)) = (self.pool.n_window_blocks(), window) else {
            return Ok(());
        };
        let bs = self.pool.block_size();
        for (table, step) in self.window_tables.iter().zip(steps) {
            let to = step.start + step.tokens.len();
            let from = (step.start + 1).saturating_sub(window);
            let held = table.is_some_and(|t| {
                let blocks = t.get(from / bs..to.div_ceil(bs));
                blocks.is_some_and(|b| b.iter().all(|&id| (id as usize) < n_blocks))
            });
            if !held && !step.tokens.is_empty() {
                return Err(ModelError::WindowNotHeld { from, to, n_blocks });
            }
        }
        Ok(())
    }
}
