//! The key/value cache of one sequence.
//!
//! Kept in f16, as llama.cpp does: half the memory and bandwidth of f32, and the reference logits were made
//! with an f16 cache, so the rounding matches theirs.
//!
//! The rows are stored as raw f16 bits in zero-initialised allocations (`vec![0u16; n]` is `calloc`), so the
//! operating system maps a page only when a position in it is first written: resident memory grows with the
//! context actually used, not with `capacity` (llama.cpp clears its whole cache up front instead).

use cria_kernels::ops::KvView;
use half::f16;
use half::slice::{HalfBitsSliceExt, HalfFloatSliceExt};

/// `src` rounded to f16 into `dst` (f16 bits; the shorter length of the two): `half`'s slice conversion, which
/// takes the CPU's F16C instructions where there are (the same round-to-nearest-even bits as one at a time).
fn store_f16(dst: &mut [u16], src: &[f32]) {
    let n = dst.len().min(src.len());
    let dst: &mut [f16] = dst[..n].reinterpret_cast_mut();
    dst.convert_from_f32_slice(&src[..n]);
}

/// Keys and values of every layer for up to `capacity` positions of one sequence.
#[derive(Clone, Debug)]
pub struct KvCache {
    kv_dim: usize,
    capacity: usize,
    len: usize,
    /// Per layer: `capacity` rows of `kv_dim` keys, as f16 bits.
    keys: Vec<Vec<u16>>,
    /// Per layer: `capacity` rows of `kv_dim` values, as f16 bits.
    values: Vec<Vec<u16>>,
}

impl KvCache {
    pub(crate) fn new(n_layer: usize, kv_dim: usize, capacity: usize) -> KvCache {
        // zeroed, so pages stay unmapped until written (a `vec![f16::ZERO; n]` would write every byte)
        let layer = || vec![0u16; kv_dim * capacity];
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
        2 * self.keys.len() * self.kv_dim * self.capacity * std::mem::size_of::<u16>()
    }

    pub(crate) fn store(&mut self, layer: usize, pos: usize, k: &[f32], v: &[f32]) {
        let row = pos * self.kv_dim..(pos + 1) * self.kv_dim;
        store_f16(&mut self.keys[layer][row.clone()], k);
        store_f16(&mut self.values[layer][row], v);
    }

    pub(crate) fn layer(&self, layer: usize) -> (&[f16], &[f16]) {
        (
            self.keys[layer].reinterpret_cast(),
            self.values[layer].reinterpret_cast(),
        )
    }

    pub(crate) fn advance(&mut self, n: usize) {
        self.len += n;
    }
}

impl KvCache {
    /// Layer `layer`'s rows as a flat view for attention.
    pub(crate) fn view(&self, layer: usize) -> KvView<'_> {
        let (k, v) = self.layer(layer);
        KvView::contiguous(k, v)
    }
}

/// Keys and values of every layer in blocks of `block_size` positions, shared by many sequences (a paged
/// cache): a sequence's block table says which blocks hold its positions, in order. Which block belongs to
/// whom, and when a block is free, is the engine's bookkeeping; the pool only stores rows.
///
/// Sliding-window layers may have a pool of their own (`n_window_blocks`, fewer blocks than the others have):
/// they only ever read the last `window` positions, so their sequences give back the blocks behind the window
/// and address the rest through a second table ([`crate::PagedSeq::window_blocks`]), as llama.cpp sizes its
/// SWA cache to the window.
///
/// Zero-initialised like [`KvCache`], so memory is mapped as blocks are first written.
#[derive(Debug)]
pub struct KvPool {
    kv_dim: usize,
    block_size: usize,
    n_blocks: usize,
    /// Blocks of the sliding-window layers' pool, when they have their own.
    n_window_blocks: Option<usize>,
    /// Per layer: whether it is a sliding-window layer with a pool of its own.
    windowed: Vec<bool>,
    /// Per layer: its blocks' rows of `kv_dim` keys, as f16 bits.
    keys: Vec<Vec<u16>>,
    values: Vec<Vec<u16>>,
}

impl KvPool {
    /// A pool for layers of which those marked in `sliding` (one flag a layer) keep their own pool of
    /// `n_window_blocks` blocks when that is given; the others (all, without it) share `n_blocks`.
    pub(crate) fn new(
        sliding: &[bool],
        kv_dim: usize,
        block_size: usize,
        n_blocks: usize,
        n_window_blocks: Option<usize>,
    ) -> Self {
        let block_size = block_size.max(1);
        let windowed: Vec<bool> = sliding
            .iter()
            .map(|&s| s && n_window_blocks.is_some())
            .collect();
        let rows = |w: bool| {
            block_size
                * if w {
                    n_window_blocks.unwrap_or(0)
                } else {
                    n_blocks
                }
        };
        let layer = |&w: &bool| vec![0u16; kv_dim * rows(w)];
        KvPool {
            kv_dim,
            block_size,
            n_blocks,
            n_window_blocks,
            keys: windowed.iter().map(layer).collect(),
            values: windowed.iter().map(layer).collect(),
            windowed,
        }
    }

    /// Positions a block holds.
    pub fn block_size(&self) -> usize {
        self.block_size
    }

    /// Blocks in the pool the layers without a pool of their own share.
    pub fn n_blocks(&self) -> usize {
        self.n_blocks
    }

    /// Blocks of the sliding-window layers' own pool, when they have one.
    pub fn n_window_blocks(&self) -> Option<usize> {
        self.n_window_blocks
    }

    /// Whether layer `il` reads and writes through the sliding-window table.
    pub(crate) fn is_windowed(&self, il: usize) -> bool {
        self.windowed.get(il).copied().unwrap_or(false)
    }

    /// Memory held, in bytes.
    pub fn bytes(&self) -> usize {
        let rows: usize = self.keys.iter().chain(&self.values).map(Vec::len).sum();
        rows * std::mem::size_of::<u16>()
    }

    /// Bytes one block of the shared pool takes across the layers that use it, keys and values.
    pub fn block_bytes(&self) -> usize {
        let layers = self.windowed.iter().filter(|&&w| !w).count();
        2 * layers * self.kv_dim * self.block_size * std::mem::size_of::<u16>()
    }

    /// Stores position `pos` of layer `layer` of the sequence whose block table (for that layer's kind) is
    /// `blocks`.
    pub(crate) fn store(&mut self, blocks: &[u32], layer: usize, pos: usize, k: &[f32], v: &[f32]) {
        let row = blocks[pos / self.block_size] as usize * self.block_size + pos % self.block_size;
        let row = row * self.kv_dim..(row + 1) * self.kv_dim;
        store_f16(&mut self.keys[layer][row.clone()], k);
        store_f16(&mut self.values[layer][row], v);
    }

    /// Layer `layer` of the sequence whose block table (for that layer's kind) is `blocks`.
    pub(crate) fn view<'a>(&'a self, blocks: &'a [u32], layer: usize) -> KvView<'a> {
        KvView::paged(
            self.keys[layer].reinterpret_cast(),
            self.values[layer].reinterpret_cast(),
            blocks,
            self.block_size,
        )
    }
}
