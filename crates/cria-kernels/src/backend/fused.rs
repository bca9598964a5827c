//! The CPU backend's matmul: a few tokens through one or several weight matrices that read the same input (Q, K and V; gate and up;
//! O; down) in a single parallel loop: the input is quantized once per activation format, the pool forks
//! once, and the rows of all matrices are split into shrinking tasks (`pool::guided_bounds`, multiples of
//! 16 rows), so threads that run at different speeds finish together. Each output element is computed by the kernel call `matmul` makes for
//! the same number of tokens (`matmul::matmul_rows`), so the results are
//! bit-identical to separate `matmul` calls. Prefill-sized batches go to `matmul` itself.

use crate::GgmlType;
use crate::matmul::{MATVEC_ALIGN, WeightRef, matmul, matmul_rows};
use crate::pool::{ThreadPool, guided_bounds};
use crate::quant::{activation_type, quantize_activation};

/// Tokens up to which the fused path is taken (one `matmul` tile of tokens).
pub const MAX_FUSED_TOKENS: usize = 64;

/// Activation rows quantized into each format the matrices of a call want, reused between calls.
#[derive(Default)]
pub(crate) struct QuantizedActs {
    rows: Vec<(GgmlType, usize, Vec<u8>)>,
    used: usize,
}

impl QuantizedActs {
    /// Quantizes the `n_tok` rows of `x` for every matrix in `mats`; false if one wants f32 activations or a
    /// size does not fit whole blocks (the caller then takes the plain `matmul` path).
    fn prepare(&mut self, mats: &[WeightRef<'_>], x: &[f32], n_tok: usize) -> bool {
        self.used = 0;
        let cols = x.len() / n_tok.max(1);
        for w in mats {
            let ty = activation_type(w.ty);
            if self.find(ty).is_some() {
                continue;
            }
            let Some(row_bytes) = ty.row_bytes(cols) else {
                return false;
            };
            if ty == GgmlType::F32 || w.cols != cols {
                return false;
            }
            if self.used == self.rows.len() {
                self.rows.push((ty, 0, Vec::new()));
            }
            let (slot_ty, slot_row, buf) = &mut self.rows[self.used];
            (*slot_ty, *slot_row) = (ty, row_bytes);
            buf.resize(n_tok * row_bytes, 0);
            for (src, dst) in x.chunks_exact(cols).zip(buf.chunks_exact_mut(row_bytes)) {
                quantize_activation(ty, src, dst);
            }
            self.used += 1;
        }
        true
    }

    fn find(&self, ty: GgmlType) -> Option<&[u8]> {
        self.rows[..self.used]
            .iter()
            .find(|(t, _, _)| *t == ty)
            .map(|(_, _, b)| b.as_slice())
    }
}

/// Scratch of [`matmul_fused`].
#[derive(Default)]
pub struct FusedScratch {
    acts: QuantizedActs,
    /// Task-major results: task `i` holds `[n_tok][its rows]`.
    tiles: Vec<f32>,
    /// First stacked row of each task, then the total.
    bounds: Vec<usize>,
    /// `matmul`'s activation buffer, for the fallback path.
    bytes: Vec<u8>,
}

/// `outs[m] (n_tok × mats[m].rows) = x (n_tok × cols) · mats[m]ᵀ` for every matrix, all in one fork/join when
/// `n_tok <= MAX_FUSED_TOKENS`, else one `matmul` each.
pub fn matmul_fused(
    pool: &ThreadPool,
    mats: &[WeightRef<'_>],
    x: &[f32],
    n_tok: usize,
    outs: &mut [&mut [f32]],
    s: &mut FusedScratch,
) {
    assert_eq!(
        mats.len(),
        outs.len(),
        "matmul_fused: one output per matrix"
    );
    for (w, out) in mats.iter().zip(outs.iter()) {
        assert_eq!(out.len(), n_tok * w.rows, "matmul_fused: output length");
    }
    if n_tok == 0 {
        return;
    }
    if n_tok > MAX_FUSED_TOKENS || !s.acts.prepare(mats, x, n_tok) {
        for (w, out) in mats.iter().zip(outs.iter_mut()) {
            matmul(pool, w, x, n_tok, out, &mut s.bytes);
        }
        return;
    }
    let total: usize = mats.iter().map(|w| w.rows).sum();
    guided_bounds(total, pool.n_threads(), MATVEC_ALIGN, &mut s.bounds);
    s.tiles.resize(total * n_tok, 0.0);
    let acts = &s.acts;
    pool.for_each_split_mut(&mut s.tiles, &s.bounds, n_tok, &|range, tile| {
        let (start, width) = (range.start, range.len());
        for (m, off, lo, hi) in segments(mats, range) {
            let w = &mats[m];
            // `prepare` quantized the rows for every matrix's activation type.
            let Some(a) = acts.find(activation_type(w.ty)) else {
                continue;
            };
            let dst = &mut tile[lo - start..];
            let rows = lo - off..hi - off;
            matmul_rows(w, a, n_tok, rows, dst, width);
        }
    });
    scatter(&s.tiles, mats, &s.bounds, n_tok, outs);
}

/// The parts of the stacked rows `range` that fall in each matrix: `(matrix index, its first stacked row,
/// lo, hi)`.
fn segments(
    mats: &[WeightRef<'_>],
    range: std::ops::Range<usize>,
) -> impl Iterator<Item = (usize, usize, usize, usize)> {
    let mut off = 0;
    mats.iter().enumerate().filter_map(move |(m, w)| {
        let first = off;
        off += w.rows;
        let (lo, hi) = (range.start.max(first), range.end.min(first + w.rows));
        (lo < hi).then_some((m, first, lo, hi))
    })
}

/// Copies the task-major tiles into each matrix's `[n_tok][rows]` output.
fn scatter(
    tiles: &[f32],
    mats: &[WeightRef<'_>],
    bounds: &[usize],
    n_tok: usize,
    outs: &mut [&mut [f32]],
) {
    for task in bounds.windows(2) {
        let (start, width) = (task[0], task[1] - task[0]);
        let tile = &tiles[start * n_tok..task[1] * n_tok];
        for (m, off, lo, hi) in segments(mats, task[0]..task[1]) {
            let rows = mats[m].rows;
            for t in 0..n_tok {
                let src = &tile[t * width + lo - start..t * width + hi - start];
                outs[m][t * rows + lo - off..t * rows + hi - off].copy_from_slice(src);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packed::Layout;
    use crate::quant::quantize_row;

    fn matrix(ty: GgmlType, rows: usize, cols: usize, seed: f32) -> Vec<u8> {
        let bytes = ty.row_bytes(cols).expect("whole blocks");
        let mut data = vec![0u8; rows * bytes];
        for (r, dst) in data.chunks_exact_mut(bytes).enumerate() {
            let src: Vec<f32> = (0..cols)
                .map(|c| ((r * cols + c) as f32 * 0.013 + seed).sin())
                .collect();
            quantize_row(ty, &src, dst).expect("quantize");
        }
        data
    }

    #[test]
    fn fused_rows_equal_separate_matmuls_bit_for_bit() {
        let cols = 256;
        let specs = [
            (GgmlType::Q4_1, 48),
            (GgmlType::Q8_0, 80),
            (GgmlType::Q4_K, 32),
        ];
        let datas: Vec<Vec<u8>> = specs
            .iter()
            .enumerate()
            .map(|(i, &(ty, rows))| matrix(ty, rows, cols, i as f32))
            .collect();
        let mats: Vec<WeightRef<'_>> = specs
            .iter()
            .zip(&datas)
            .map(|(&(ty, rows), data)| WeightRef {
                ty,
                rows,
                cols,
                data,
                layout: Layout::Rows,
            })
            .collect();
        let mut scratch = FusedScratch::default();
        for n_tok in [1, 3, 8, 70] {
            let x: Vec<f32> = (0..n_tok * cols).map(|i| (i as f32 * 0.7).cos()).collect();
            for threads in [1, 2, 3] {
                let pool = ThreadPool::new(threads);
                let mut fused: Vec<Vec<f32>> =
                    mats.iter().map(|w| vec![0.0; n_tok * w.rows]).collect();
                let mut outs: Vec<&mut [f32]> = fused.iter_mut().map(|v| &mut v[..]).collect();
                matmul_fused(&pool, &mats, &x, n_tok, &mut outs, &mut scratch);
                for (w, got) in mats.iter().zip(&fused) {
                    let mut y = vec![0.0; n_tok * w.rows];
                    matmul(&pool, w, &x, n_tok, &mut y, &mut Vec::new());
                    assert_eq!(got, &y, "{:?}, {n_tok} tokens, {threads} threads", w.ty);
                }
            }
        }
    }
}
