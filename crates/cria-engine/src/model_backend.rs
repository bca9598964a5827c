//! The real model behind the [`Backend`] trait: one paged KV pool that every sequence addresses through its
//! block table.

use std::sync::Arc;

use cria_model::{KvPool, Logits, Model, PagedSeq, Runner};

use crate::{Backend, EngineError, Step};

/// A [`cria_model::Model`] with a runner and a KV pool.
pub struct ModelBackend {
    model: Arc<Model>,
    runner: Runner,
    pool: KvPool,
    ctx: usize,
    /// The sliding window, when its layers have a pool of their own.
    window: Option<usize>,
}

impl ModelBackend {
    /// A backend with a pool of `n_blocks` blocks of `block_size` positions for sequences of up to `ctx`
    /// tokens, running on `threads` threads; every layer reads through one block table. The pool's memory is
    /// mapped as blocks are first written.
    pub fn new(
        model: Arc<Model>,
        n_blocks: usize,
        block_size: usize,
        ctx: usize,
        threads: usize,
    ) -> Self {
        let pool = model.new_pool(block_size, n_blocks);
        ModelBackend::with_pool(model, pool, ctx, threads)
    }

    /// A backend sized as the engine with `config` sizes its pools: the sliding-window layers keep a pool of
    /// their own of [`EngineConfig::window_blocks`](crate::EngineConfig::window_blocks) where that saves memory.
    pub fn for_config(model: Arc<Model>, config: &crate::EngineConfig, threads: usize) -> Self {
        let window_blocks = config.window_blocks(model.sliding_window());
        let bs = config.block_size.max(1);
        let pool = model.new_windowed_pool(bs, config.kv_blocks(), window_blocks);
        ModelBackend::with_pool(model, pool, config.ctx, threads)
    }

    fn with_pool(model: Arc<Model>, pool: KvPool, ctx: usize, threads: usize) -> Self {
        let runner = Runner::new(&model, threads);
        let window = pool.n_window_blocks().and(model.sliding_window());
        ModelBackend {
            model,
            runner,
            pool,
            ctx,
            window,
        }
    }
}

impl Backend for ModelBackend {
    fn reset_slot(&mut self, _slot: usize) {}

    fn forward(&mut self, steps: &[Step<'_>]) -> Result<Vec<Vec<f32>>, EngineError> {
        let batch: Vec<PagedSeq<'_>> = steps
            .iter()
            .map(|step| PagedSeq {
                blocks: step.blocks,
                window_blocks: step.window_blocks,
                start: step.start,
                ctx: self.ctx,
                tokens: step.tokens,
                logits: if step.want_logits {
                    Logits::Last
                } else {
                    Logits::None
                },
            })
            .collect();
        Ok(self
            .runner
            .forward_paged(&self.model, &mut self.pool, &batch)?)
    }

    fn kv_bytes(&self) -> usize {
        self.pool.bytes()
    }

    fn sliding_window(&self) -> Option<usize> {
        self.window
    }
}
