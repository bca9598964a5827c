//! The real model behind the [`Backend`] trait: one KV cache per slot, allocated on first use.

use std::sync::Arc;

use cria_model::{KvCache, Logits, Model, Runner, SeqBatch};

use crate::{Backend, EngineError, Step};

/// A [`cria_model::Model`] with a runner and `parallel` KV caches of `ctx` tokens each.
pub struct ModelBackend {
    model: Arc<Model>,
    runner: Runner,
    caches: Vec<Option<KvCache>>,
    ctx: usize,
}

impl ModelBackend {
    /// A backend with `parallel` slots of `ctx` tokens, running on `threads` threads.
    pub fn new(model: Arc<Model>, parallel: usize, ctx: usize, threads: usize) -> Self {
        let runner = Runner::new(&model, threads);
        let caches = (0..parallel).map(|_| None).collect();
        ModelBackend {
            model,
            runner,
            caches,
            ctx,
        }
    }
}

impl Backend for ModelBackend {
    fn reset_slot(&mut self, slot: usize) {
        if let Some(Some(cache)) = self.caches.get_mut(slot) {
            cache.clear();
        }
    }

    fn forward(&mut self, steps: &[Step<'_>]) -> Result<Vec<Vec<f32>>, EngineError> {
        for step in steps {
            let cache = self
                .caches
                .get_mut(step.slot)
                .ok_or_else(|| EngineError::Backend(format!("no slot {}", step.slot)))?;
            if cache.is_none() {
                *cache = Some(self.model.new_cache(self.ctx));
            }
        }
        let mut by_slot: Vec<Option<&mut KvCache>> =
            self.caches.iter_mut().map(Option::as_mut).collect();
        let mut batch = Vec::with_capacity(steps.len());
        for step in steps {
            let cache = by_slot[step.slot].take().ok_or_else(|| {
                EngineError::Backend(format!("slot {} twice in a step", step.slot))
            })?;
            let logits = if step.want_logits {
                Logits::Last
            } else {
                Logits::None
            };
            batch.push(SeqBatch {
                cache,
                tokens: step.tokens,
                logits,
            });
        }
        Ok(self.runner.forward(&self.model, &mut batch)?)
    }

    fn kv_bytes(&self) -> usize {
        self.caches.iter().flatten().map(KvCache::bytes).sum()
    }
}
