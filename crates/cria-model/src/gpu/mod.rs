//! The model on a GPU: the weights uploaded once when the runner is made, a KV cache per sequence on the
//! device ([`GpuKv`]), and each step the one decoder block of [`crate::block`] recorded on
//! [`cria_gpu::GpuBackend`] (one command encoder, submitted when the logits are read back).
//!
//! What the GPU backend lacks (a weight format without kernels, a sigmoid-gated shared expert) is found
//! through `Backend::supports` when the runner is made and refused with [`ModelError::NoGpuPath`] or
//! [`ModelError::Gpu`]; the caller then runs the model on the CPU.

mod weights;

use cria_gpu::{AdapterSummary, Gpu, GpuBackend, GpuBuffer, GpuMatrix};

use crate::ModelError;
use crate::block::{self, Output};
use crate::block_weights::BlockWeights;
use crate::kv_store::SeqStep;
use crate::model::Model;
use crate::runner::Logits;

pub use cria_gpu::GpuKv;

/// One sequence's part of a GPU step (as [`crate::SeqBatch`] on the CPU).
pub struct GpuSeq<'a> {
    pub cache: &'a mut GpuKv,
    pub tokens: &'a [u32],
    pub logits: Logits,
}

/// Runs a model on a GPU: the device, and the model's weights on it.
pub struct GpuRunner {
    gpu: Gpu,
    weights: BlockWeights<GpuMatrix, GpuBuffer>,
}

impl GpuRunner {
    /// Uploads `model`'s weights to `gpu`.
    ///
    /// # Errors
    /// [`ModelError::NoGpuPath`] or [`ModelError::Gpu`] where a part of the model has no GPU kernels or does
    /// not fit the device.
    pub fn new(model: &Model, gpu: Gpu) -> Result<GpuRunner, ModelError> {
        if !model.spec().kv_dim().is_multiple_of(2) {
            return Err(ModelError::NoGpuPath("an odd KV width".into()));
        }
        weights::check_supported(&GpuBackend::new(&gpu, Vec::new()), model)?;
        let weights = weights::upload(&gpu, model)?;
        Ok(GpuRunner { gpu, weights })
    }

    /// The adapter the runner uses.
    pub fn device(&self) -> &AdapterSummary {
        self.gpu.summary()
    }

    /// A device KV cache for one sequence of up to `max_tokens` positions.
    ///
    /// # Errors
    /// [`ModelError::Gpu`] when a layer's cache exceeds the device's limits.
    pub fn new_cache(&self, model: &Model, max_tokens: usize) -> Result<GpuKv, ModelError> {
        let spec = model.spec();
        Ok(GpuKv::new(
            &self.gpu,
            spec.n_layer,
            spec.kv_dim(),
            max_tokens,
        )?)
    }

    /// Appends each entry's tokens to its cache and returns, per entry, the logits rows it asked for
    /// (`n_vocab` floats a row), as [`crate::Runner::forward`] does.
    ///
    /// # Errors
    /// [`ModelError::ContextFull`], [`ModelError::TokenOutOfRange`], or a device error.
    pub fn forward(
        &mut self,
        model: &Model,
        batch: &mut [GpuSeq<'_>],
    ) -> Result<Vec<Vec<f32>>, ModelError> {
        for e in batch.iter() {
            let needed = e.cache.len() + e.tokens.len();
            if needed > e.cache.capacity() {
                let capacity = e.cache.capacity();
                return Err(ModelError::ContextFull { needed, capacity });
            }
        }
        let (steps, caches): (Vec<SeqStep<'_>>, Vec<&mut GpuKv>) = batch
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
        let mut backend = GpuBackend::new(&self.gpu, caches);
        let out = block::forward(&mut backend, model, &self.weights, &steps, Output::Logits)?;
        // What no read-back submitted (the caches' stores of a step that wants no logits).
        backend.submit();
        for e in batch.iter_mut() {
            e.cache.advance(e.tokens.len());
        }
        Ok(out)
    }
}
