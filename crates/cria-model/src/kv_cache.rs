//! The key/value cache of one sequence.
//!
//! Kept in f16, as llama.cpp does: half the memory and bandwidth of f32, and the reference logits were made
//! with an f16 cache, so the rounding matches theirs.

use half::f16;

/// Keys and values of every layer for up to `capacity` positions of one sequence.
#[derive(Clone, Debug)]
pub struct KvCache {
    kv_dim: usize,
    capacity: usize,
    len: usize,
    /// Per layer: `capacity` rows of `kv_dim` keys.
    keys: Vec<Vec<f16>>,
    /// Per layer: `capacity` rows of `kv_dim` values.
    values: Vec<Vec<f16>>,
}

impl KvCache {
    pub(crate) fn new(n_layer: usize, kv_dim: usize, capacity: usize) -> KvCache {
        let layer = || vec![f16::ZERO; kv_dim * capacity];
        KvCache {
            kv_dim,
            capacity,
            len: 0,
            keys: (0..n_layer).map(|_| layer()).collect(),
            values: (0..n_layer).map(|_| layer()).collect(),
        }
    }

    /// Positions filled so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no position is filled.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Positions this cache can hold.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Forgets every position.
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Forgets positions from `n` on (no-op when `n >= len`).
    pub fn truncate(&mut self, n: usize) {
        self.len = self.len.min(n);
    }

    /// Memory held, in bytes.
    pub fn bytes(&self) -> usize {
        2 * self.keys.len() * self.kv_dim * self.capacity * std::mem::size_of::<f16>()
    }

    pub(crate) fn store(&mut self, layer: usize, pos: usize, k: &[f32], v: &[f32]) {
        let row = pos * self.kv_dim..(pos + 1) * self.kv_dim;
        for (dst, src) in self.keys[layer][row.clone()].iter_mut().zip(k) {
            *dst = f16::from_f32(*src);
        }
        for (dst, src) in self.values[layer][row].iter_mut().zip(v) {
            *dst = f16::from_f32(*src);
        }
    }

    pub(crate) fn layer(&self, layer: usize) -> (&[f16], &[f16]) {
        (&self.keys[layer], &self.values[layer])
    }

    pub(crate) fn advance(&mut self, n: usize) {
        self.len += n;
    }
}
