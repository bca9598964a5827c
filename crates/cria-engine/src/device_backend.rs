//! The model on the device `--device` picks, behind the same [`Backend`] trait: the CPU's paged
//! [`ModelBackend`], or [`GpuBackend`] with one device KV cache per slot.

use std::sync::Arc;

use cria_model::gpu::{GpuKv, GpuRunner, GpuSeq};
use cria_model::{DeviceChoice, DeviceRunner, Logits, Model, ModelError};

use crate::{Backend, EngineConfig, EngineError, ModelBackend, Step};

/// A model on the GPU: each slot's sequence keeps its KV cache on the device, contiguous (the block tables
/// are not used, so the engine's prompt cache must be off: a sequence's positions are all its own).
pub struct GpuBackend {
    model: Arc<Model>,
    runner: GpuRunner,
    caches: Vec<Option<GpuKv>>,
    ctx: usize,
}

impl GpuBackend {
    /// The adapter, as `gpu:N (name)`.
    pub fn device_name(&self) -> String {
        let d = self.runner.device();
        format!("gpu:{} ({})", d.index, d.name)
    }

    fn cache(&mut self, slot: usize, start: usize) -> Result<GpuKv, EngineError> {
        if self.caches.len() <= slot {
            self.caches.resize_with(slot + 1, || None);
        }
        let mut cache = match self.caches[slot].take() {
            Some(c) => c,
            None => self.runner.new_cache(&self.model, self.ctx)?,
        };
        if start > cache.len() {
            let why = format!(
                "slot {slot} resumes at position {start} with {} on the device (prompt cache on?)",
                cache.len()
            );
            self.caches[slot] = Some(cache);
            return Err(ModelError::NoGpuPath(why).into());
        }
        cache.truncate(start);
        Ok(cache)
    }
}

impl Backend for GpuBackend {
    fn reset_slot(&mut self, slot: usize) {
        if let Some(Some(c)) = self.caches.get_mut(slot) {
            c.truncate(0);
        }
    }

    fn forward(&mut self, steps: &[Step<'_>]) -> Result<Vec<Vec<f32>>, EngineError> {
        let mut caches = Vec::with_capacity(steps.len());
        for step in steps {
            match self.cache(step.slot, step.start) {
                Ok(c) => caches.push(c),
                Err(e) => {
                    for (c, s) in caches.into_iter().zip(steps) {
                        self.caches[s.slot] = Some(c);
                    }
                    return Err(e);
                }
            }
        }
        let mut batch: Vec<GpuSeq<'_>> = caches
            .iter_mut()
            .zip(steps)
            .map(|(cache, step)| GpuSeq {
                cache,
                tokens: step.tokens,
                logits: if step.want_logits {
                    Logits::Last
                } else {
                    Logits::None
                },
            })
            .collect();
        let out = self.runner.forward(&self.model, &mut batch);
        drop(batch);
        for (c, s) in caches.into_iter().zip(steps) {
            self.caches[s.slot] = Some(c);
        }
        Ok(out?)
    }

    fn kv_bytes(&self) -> usize {
        let spec = self.model.spec();
        let per_seq = 2 * spec.n_layer * self.ctx * spec.kv_dim() * 2;
        self.caches.iter().flatten().count() * per_seq
    }
}

/// The CPU's or the GPU's backend.
pub enum DeviceBackend {
    Cpu(Box<ModelBackend>),
    Gpu(Box<GpuBackend>),
}

impl DeviceBackend {
    /// The backend `choice` asks for, sized as the engine with `config`; the CPU's when no GPU can run the model,
    /// with the reason as the second value where a GPU was asked for (as [`DeviceRunner::open`]).
    pub fn for_config(
        model: Arc<Model>,
        config: &EngineConfig,
        threads: usize,
        choice: DeviceChoice,
    ) -> (DeviceBackend, Option<String>) {
        match DeviceRunner::open(&model, threads, choice) {
            (DeviceRunner::Gpu(runner), why) => {
                let gpu = GpuBackend {
                    model,
                    runner: *runner,
                    caches: Vec::new(),
                    ctx: config.ctx,
                };
                (DeviceBackend::Gpu(Box::new(gpu)), why)
            }
            (DeviceRunner::Cpu(_), why) => {
                let cpu = ModelBackend::for_config(model, config, threads);
                (DeviceBackend::Cpu(Box::new(cpu)), why)
            }
        }
    }
}

impl Backend for DeviceBackend {
    fn reset_slot(&mut self, slot: usize) {
        match self {
            DeviceBackend::Cpu(b) => b.reset_slot(slot),
            DeviceBackend::Gpu(b) => b.reset_slot(slot),
        }
    }

    fn forward(&mut self, steps: &[Step<'_>]) -> Result<Vec<Vec<f32>>, EngineError> {
        match self {
            DeviceBackend::Cpu(b) => b.forward(steps),
            DeviceBackend::Gpu(b) => b.forward(steps),
        }
    }

    fn kv_bytes(&self) -> usize {
        match self {
            DeviceBackend::Cpu(b) => b.kv_bytes(),
            DeviceBackend::Gpu(b) => b.kv_bytes(),
        }
    }

    // Forwarded, not left to the trait's default: the CPU backend keeps sliding-window layers in a pool of
    // their own, and the engine must hand it their block tables (gemma-3 failed through `cria run` without).
    fn sliding_window(&self) -> Option<usize> {
        match self {
            DeviceBackend::Cpu(b) => b.sliding_window(),
            DeviceBackend::Gpu(b) => b.sliding_window(),
        }
    }
}
