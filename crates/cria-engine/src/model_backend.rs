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
}

impl ModelBackend {
    /// A backend with a pool of `n_blocks` blocks of `block_size` positions for sequences of up to `ctx`
    /// tokens, running on `threads` threads. The pool's memory is mapped as blocks are first written.
    pub fn new(
        model: Arc<Model>,
        n_blocks: usize,
        block_size: usize,
        ctx: usize,
        threads: usize,
    ) -> Self {
        let runner = Runner::new(&model, threads);
        let pool = model.new_pool(block_size, n_blocks);
        ModelBackend {
            model,
            runner,
            pool,
            ctx,
        }
    }

    /// A backend sized as the engine with `config` sizes its pool.
    pub fn for_config(model: Arc<Model>, config: &crate::EngineConfig, threads: usize) -> Self {
        let (blocks, bs) = (config.kv_blocks(), config.block_size.max(1));
        ModelBackend::new(model, blocks, bs, config.ctx, threads)
    }
}

impl Backend for ModelBackend {
    fn reset_slot(&mut self, _slot: usize) {}

    fn forward(&mut self, steps: &[Step<'_>]) -> Result<Vec<Vec<f32>>, EngineError> {
        let batch: Vec<PagedSeq<'_>> = steps
            .iter()
            .map(|step| PagedSeq {
                blocks: step.blocks,
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
}
