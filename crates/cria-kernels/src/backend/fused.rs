//! The CPU backend's matmul: a few tokens through one or several weight matrices that read the same input (Q, K and V; gate and up;
//! O; down) in a single parallel loop: the input is quantized once per activation format, the pool forks
//! once, and the rows of all matrices are split into shrinking tasks (`pool::guided_bounds`, multiples of
//! 16 rows), so threads that run at different speeds finish together. Each output element is computed by the kernel call `matmul` makes for
//! the same number of tokens (`matmul::matmul_rows`), so the results are
//! bit-identical to separate `matmul` calls. Prefill-sized batches go to `matmul` itself.

use super::Activation;
use super::cpu::gated_activation;
use crate::GgmlType;
use crate::matmul::{MATVEC_ALIGN, WeightRef, matmul, matmul_rows};
use crate::pool::{SharedMut, ThreadPool, guided_bounds};
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
    let tiles = grown(&mut s.tiles, total * n_tok);
    let acts = &s.acts;
    let dsts: Vec<SharedMut<'_, f32>> = outs.iter_mut().map(|o| SharedMut::new(o)).collect();
    pool.for_each_split_mut(tiles, &s.bounds, n_tok, &|range, tile| {
        let (start, width) = (range.start, range.len());
        for (m, off, lo, hi) in segments(mats, range) {
            let w = &mats[m];
            // `prepare` quantized the rows for every matrix's activation type.
            let Some(a) = acts.find(activation_type(w.ty)) else {
                continue;
            };
            let dst = &mut tile[lo - start..];
            let rows = lo - off..hi - off;
            matmul_rows(w, a, n_tok, rows.clone(), dst, width);
            // The task's rows of each token, straight to the output (not a serial pass after the join).
            for t in 0..n_tok {
                let src = &tile[t * width + lo - start..][..rows.len()];
                let at = t * w.rows;
                // SAFETY: tasks cover disjoint stacked rows, so each (matrix, token, row) element is written
                // by one task only, and nothing reads the outputs before the join.
                let out = unsafe { dsts[m].range(at + rows.start..at + rows.end) };
                out.copy_from_slice(src);
            }
        }
    });
}

/// `out (n_tok × ff) = act(x · gateᵀ) · (x · upᵀ)` in one fork/join: each task computes its rows of both
/// projections and their activation, so the hidden rows never take a serial pass on the caller. The same
/// kernel calls as [`matmul_fused`] on rows cut at multiples of 16 (the activation's SIMD width divides 16,
/// so every element takes the same lane or tail path as over the whole row): the same bits as two matmuls
/// and [`gated_activation`]. False (nothing written) where it does not apply: more than
/// [`MAX_FUSED_TOKENS`] tokens, f32 activations, or shapes that differ.
pub fn matmul_gated_fused(
    pool: &ThreadPool,
    (gate, up): (&WeightRef<'_>, &WeightRef<'_>),
    x: &[f32],
    n_tok: usize,
    act: Activation,
    out: &mut [f32],
    s: &mut FusedScratch,
) -> bool {
    let ff = gate.rows;
    let fits = n_tok > 0 && n_tok <= MAX_FUSED_TOKENS && up.rows == ff && up.cols == gate.cols;
    if !fits || out.len() != n_tok * ff || !s.acts.prepare(&[*gate, *up], x, n_tok) {
        return false;
    }
    guided_bounds(ff, pool.n_threads(), MATVEC_ALIGN, &mut s.bounds);
    // Task-major: a task of `w` rows holds its gate and up tiles, `n_tok × w` each.
    let tiles = grown(&mut s.tiles, 2 * ff * n_tok);
    let acts = &s.acts;
    let (Some(ga), Some(ua)) = (
        acts.find(activation_type(gate.ty)),
        acts.find(activation_type(up.ty)),
    ) else {
        return false;
    };
    let dst = SharedMut::new(out);
    pool.for_each_split_mut(tiles, &s.bounds, 2 * n_tok, &|rows, tile| {
        let width = rows.len();
        let (g, u) = tile.split_at_mut(n_tok * width);
        matmul_rows(gate, ga, n_tok, rows.clone(), g, width);
        matmul_rows(up, ua, n_tok, rows.clone(), u, width);
        let tok_rows = g.chunks_exact(width).zip(u.chunks_exact(width));
        for (t, (g, u)) in tok_rows.enumerate() {
            // SAFETY: tasks cover disjoint rows, so each (token, row) element of `out` is written by one task
            // only, and nothing reads `out` before the join.
            let a = unsafe { dst.range(t * ff + rows.start..t * ff + rows.end) };
            gated_activation(act, g, u, a);
        }
    });
    true
}

/// The first `n` elements of `v`, grown to hold them: the matmuls of a step take turns with one buffer (the
/// output matrix's tiles are 8 × a vocabulary), so it is never shrunk, and what it held is never re-zeroed.
fn grown(v: &mut Vec<f32>, n: usize) -> &mut [f32] {
    if v.len() < n {
        v.resize(n, 0.0);
    }
    &mut v[..n]
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
    fn fused_gated_equals_two_matmuls_and_the_activation_bit_for_bit() {
        // 1560 rows: whole 16-row tasks and a last one of 8 (AVX2's scalar tail of the activation).
        let (cols, ff) = (256, 1560);
        let acts = [Activation::SwiGlu, Activation::GeGlu];
        for (ty, act) in [(GgmlType::Q4_K, acts[0]), (GgmlType::Q8_0, acts[1])] {
            let (gd, ud) = (matrix(ty, ff, cols, 0.3), matrix(ty, ff, cols, 1.7));
            let weight = |data| WeightRef {
                ty,
                rows: ff,
                cols,
                data,
                layout: Layout::Rows,
            };
            let (gate, up) = (weight(&gd), weight(&ud));
            let mut scratch = FusedScratch::default();
            for n_tok in [1, 3] {
                let x: Vec<f32> = (0..n_tok * cols).map(|i| (i as f32 * 0.37).sin()).collect();
                for threads in [1, 2, 3] {
                    let pool = ThreadPool::new(threads);
                    let mut got = vec![0.0; n_tok * ff];
                    let fused = matmul_gated_fused(
                        &pool,
                        (&gate, &up),
                        &x,
                        n_tok,
                        act,
                        &mut got,
                        &mut scratch,
                    );
                    assert!(fused);
                    let (mut g, mut u) = (vec![0.0; n_tok * ff], vec![0.0; n_tok * ff]);
                    matmul(&pool, &gate, &x, n_tok, &mut g, &mut Vec::new());
                    matmul(&pool, &up, &x, n_tok, &mut u, &mut Vec::new());
                    let mut want = vec![0.0; n_tok * ff];
                    for t in 0..n_tok {
                        let r = t * ff..(t + 1) * ff;
                        gated_activation(act, &g[r.clone()], &u[r.clone()], &mut want[r]);
                    }
                    assert!(
                        got.iter()
                            .zip(&want)
                            .all(|(a, b)| a.to_bits() == b.to_bits()),
                        "{ty:?}, {n_tok} tokens, {threads} threads"
                    );
                }
            }
        }
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
