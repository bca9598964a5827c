//! One sequence's KV cache on the device.

use crate::{Gpu, GpuBuffer, GpuError};

/// One sequence's KV cache on the device: per layer, K and V rows of `kv_dim` f16 values.
pub struct GpuKv {
    pub(crate) k: Vec<GpuBuffer>,
    pub(crate) v: Vec<GpuBuffer>,
    len: usize,
    capacity: usize,
}

impl GpuKv {
    /// A cache of `n_layer` layers of up to `max_tokens` positions of `kv_dim` (even) values.
    ///
    /// # Errors
    /// [`GpuError::TooLarge`] when a layer's cache exceeds the device's limits.
    pub fn new(
        gpu: &Gpu,
        n_layer: usize,
        kv_dim: usize,
        max_tokens: usize,
    ) -> Result<GpuKv, GpuError> {
        let words = max_tokens.max(1) * kv_dim / 2;
        let (k, v) = (0..n_layer)
            .map(|_| Ok((gpu.zeros(words)?, gpu.zeros(words)?)))
            .collect::<Result<Vec<_>, GpuError>>()?
            .into_iter()
            .unzip();
        Ok(GpuKv {
            k,
            v,
            len: 0,
            capacity: max_tokens,
        })
    }

    /// Positions stored.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Positions the cache can hold.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Forgets the positions from `n` on (the next step writes over them).
    pub fn truncate(&mut self, n: usize) {
        self.len = self.len.min(n);
    }

    /// Counts `n` more positions as stored (after a step wrote them).
    pub fn advance(&mut self, n: usize) {
        self.len = (self.len + n).min(self.capacity);
    }
}
