//! One runner for either device: what the CLI's commands hold, so `--device` picks the CPU kernels
//! ([`Runner`]) or the GPU ([`GpuRunner`]) without the commands knowing which.

use cria_gpu::{DeviceChoice, Gpu};

use crate::gpu::{GpuKv, GpuRunner, GpuSeq};
use crate::{KvCache, Logits, Model, ModelError, Runner, SeqBatch};

/// A runner on the CPU or a GPU.
pub enum DeviceRunner {
    Cpu(Box<Runner>),
    Gpu(Box<GpuRunner>),
}

/// A sequence's KV cache where its runner keeps it.
pub enum DeviceCache {
    Cpu(KvCache),
    Gpu(GpuKv),
}

impl DeviceCache {
    /// Positions stored.
    pub fn len(&self) -> usize {
        match self {
            DeviceCache::Cpu(c) => c.len(),
            DeviceCache::Gpu(c) => c.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl DeviceRunner {
    /// The runner `choice` asks for. A GPU that cannot be opened, or a model with parts that have no GPU kernels,
    /// falls back to the CPU with the reason as the second value (`None` when nothing fell back, or for `auto`
    /// on a machine without a hardware GPU: that is the expected case, not worth a line).
    pub fn open(
        model: &Model,
        threads: usize,
        choice: DeviceChoice,
    ) -> (DeviceRunner, Option<String>) {
        let cpu = || DeviceRunner::Cpu(Box::new(Runner::new(model, threads)));
        if choice == DeviceChoice::Cpu {
            return (cpu(), None);
        }
        let gpu = Gpu::open(choice)
            .map_err(ModelError::from)
            .and_then(|g| GpuRunner::new(model, g));
        match gpu {
            Ok(r) => (DeviceRunner::Gpu(Box::new(r)), None),
            Err(ModelError::Gpu(cria_gpu::GpuError::NoAdapter(_)))
                if choice == DeviceChoice::Auto =>
            {
                (cpu(), None)
            }
            Err(e) => (cpu(), Some(format!("running on the CPU: {e}"))),
        }
    }

    /// What runs the model, for messages: "cpu" or the adapter's name.
    pub fn device_name(&self) -> String {
        match self {
            DeviceRunner::Cpu(_) => "cpu".into(),
            DeviceRunner::Gpu(g) => format!("gpu:{} ({})", g.device().index, g.device().name),
        }
    }

    /// A cache for one sequence of up to `max_tokens` positions on the runner's device.
    ///
    /// # Errors
    /// A device cache beyond the GPU's limits.
    pub fn new_cache(&self, model: &Model, max_tokens: usize) -> Result<DeviceCache, ModelError> {
        Ok(match self {
            DeviceRunner::Cpu(_) => DeviceCache::Cpu(model.new_cache(max_tokens)),
            DeviceRunner::Gpu(g) => DeviceCache::Gpu(g.new_cache(model, max_tokens)?),
        })
    }

    /// Appends `tokens` to `cache` and returns the logits rows `logits` asks for.
    ///
    /// # Errors
    /// As [`Runner::forward`]; [`ModelError::WrongDevice`] for a cache made by the other device.
    pub fn forward(
        &mut self,
        model: &Model,
        cache: &mut DeviceCache,
        tokens: &[u32],
        logits: Logits,
    ) -> Result<Vec<f32>, ModelError> {
        let out = match (self, cache) {
            (DeviceRunner::Cpu(r), DeviceCache::Cpu(cache)) => r.forward(
                model,
                &mut [SeqBatch {
                    cache,
                    tokens,
                    logits,
                }],
            )?,
            (DeviceRunner::Gpu(r), DeviceCache::Gpu(cache)) => r.forward(
                model,
                &mut [GpuSeq {
                    cache,
                    tokens,
                    logits,
                }],
            )?,
            _ => return Err(ModelError::WrongDevice),
        };
        Ok(out.into_iter().next().unwrap_or_default())
    }
}
