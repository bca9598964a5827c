//! The CPU runner: the decoder block of [`crate::block`] on the CPU backend
//! (`cria_kernels::backend::cpu`), over flat caches or a paged pool.

use cria_kernels::backend::KvCaches;
use cria_kernels::backend::cpu::{CpuBackend, CpuMatrix, CpuScratch};
use cria_kernels::pool::ThreadPool;

use crate::ModelError;
use crate::block::{self, Output};
use crate::block_weights::{BlockWeights, cpu_weights};
use crate::kv_cache::{KvCache, KvPool};
use crate::kv_store::{FlatCaches, PagedCaches, SeqStep};
use crate::model::Model;

/// Which logits a sequence wants back from a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Logits {
    None,
    /// Only the last token's (generation).
    Last,
    /// Every token's (evaluation, perplexity).
    All,
}

/// One sequence's part of a step: the tokens to append to its cache.
pub struct SeqBatch<'a> {
    pub cache: &'a mut KvCache,
    pub tokens: &'a [u32],
    pub logits: Logits,
}

/// One sequence's part of a step on a paged cache ([`Runner::forward_paged`]): the tokens to append at
/// positions `start..`, through its block table.
pub struct PagedSeq<'a> {
    /// The pool blocks holding the sequence's positions, in order; they must cover `start + tokens.len()`.
    pub blocks: &'a [u32],
    /// Where the pool's sliding-window layers have a pool of their own ([`Model::new_windowed_pool`]): their
    /// block table, in position order like `blocks`, holding at least the positions the step's queries see
    /// (a window before the first); blocks before those may be given back (`u32::MAX`). `None` otherwise.
    pub window_blocks: Option<&'a [u32]>,
    /// Positions already in the cache (computed earlier, by this sequence or one it shares blocks with).
    pub start: usize,
    /// The sequence's context size (LongRoPE picks its factors by it).
    pub ctx: usize,
    pub tokens: &'a [u32],
    pub logits: Logits,
}

/// Runs a model: its thread pool and scratch buffers. One per engine thread.
pub struct Runner {
    pool: ThreadPool,
    scratch: CpuScratch,
    /// The model's weights as the CPU backend takes them, and the tensor data they were made for.
    weights: (DataId, CpuWeights),
}

type CpuWeights = BlockWeights<CpuMatrix, Vec<f32>>;

/// Which model's tensor data (its address and length) a weight table points into.
type DataId = (usize, usize);

fn data_id(model: &Model) -> DataId {
    (model.data().as_ptr() as usize, model.data().len())
}

impl Runner {
    /// A runner of `model` with `n_threads` threads (the caller's included).
    pub fn new(model: &Model, n_threads: usize) -> Runner {
        Runner {
            pool: ThreadPool::new(n_threads.max(1)),
            scratch: CpuScratch::default(),
            weights: (data_id(model), cpu_weights(model)),
        }
    }

    /// The runner's thread pool.
    pub fn pool(&self) -> &ThreadPool {
        &self.pool
    }

    /// Appends each entry's tokens to its cache and returns, per entry, the logits rows it asked for
    /// (`n_vocab` floats a row).
    pub fn forward(
        &mut self,
        model: &Model,
        batch: &mut [SeqBatch<'_>],
    ) -> Result<Vec<Vec<f32>>, ModelError> {
        self.forward_flat(model, batch, Output::Logits)
    }

    /// Appends each entry's tokens to its cache and returns, per entry, every token's last-layer output after
    /// the output norm (`n_embd` floats a row): llama.cpp's `result_norm`, what its embeddings pool for a
    /// decoder model. The entries' `logits` are ignored.
    pub fn hidden_states(
        &mut self,
        model: &Model,
        batch: &mut [SeqBatch<'_>],
    ) -> Result<Vec<Vec<f32>>, ModelError> {
        self.forward_flat(model, batch, Output::Hidden)
    }

    /// [`forward`](Self::forward) or [`hidden_states`](Self::hidden_states) on each entry's own cache.
    fn forward_flat(
        &mut self,
        model: &Model,
        batch: &mut [SeqBatch<'_>],
        output: Output,
    ) -> Result<Vec<Vec<f32>>, ModelError> {
        for entry in batch.iter() {
            let needed = entry.cache.len() + entry.tokens.len();
            if needed > entry.cache.capacity() {
                return Err(ModelError::ContextFull {
                    needed,
                    capacity: entry.cache.capacity(),
                });
            }
        }
        let (steps, caches): (Vec<SeqStep<'_>>, Vec<&mut KvCache>) = batch
            .iter_mut()
            .map(|e| {
                let step = SeqStep {
                    tokens: e.tokens,
                    logits: e.logits,
                    start: e.cache.len(),
                    ctx: e.cache.capacity(),
                };
                (step, &mut *e.cache)
            })
            .unzip();
        let mut store = FlatCaches(caches);
        let out = self.run(model, &steps, &mut store, output)?;
        for (cache, step) in store.0.iter_mut().zip(&steps) {
            cache.advance(step.tokens.len());
        }
        Ok(out)
    }

    /// [`forward`](Self::forward) on a paged cache: each entry's tokens are stored through its block table
    /// into `pool`, and attention reads its positions through the table. Returns, per entry, the logits rows it
    /// asked for.
    pub fn forward_paged(
        &mut self,
        model: &Model,
        pool: &mut KvPool,
        batch: &[PagedSeq<'_>],
    ) -> Result<Vec<Vec<f32>>, ModelError> {
        let steps: Vec<SeqStep<'_>> = batch
            .iter()
            .map(|e| SeqStep {
                tokens: e.tokens,
                logits: e.logits,
                start: e.start,
                ctx: e.ctx,
            })
            .collect();
        let tables = batch.iter().map(|e| e.blocks).collect();
        let window_tables = batch.iter().map(|e| e.window_blocks).collect();
        let mut store = PagedCaches {
            pool,
            tables,
            window_tables,
        };
        store.check(&steps, model.sliding_window())?;
        self.run(model, &steps, &mut store, Output::Logits)
    }

    fn run(
        &mut self,
        model: &Model,
        steps: &[SeqStep<'_>],
        store: &mut dyn KvCaches,
        output: Output,
    ) -> Result<Vec<Vec<f32>>, ModelError> {
        // Made for the model at `new`; a runner handed another model makes its table again (views, cheap).
        if self.weights.0 != data_id(model) {
            self.weights = (data_id(model), cpu_weights(model));
        }
        let mut backend = CpuBackend::new(&self.pool, model.data(), store, &mut self.scratch);
        block::forward(&mut backend, model, &self.weights.1, steps, output)
    }
}
