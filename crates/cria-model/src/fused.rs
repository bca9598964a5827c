//! One token through several weight matrices that read the same input (Q, K and V; gate and up) in a single
//! parallel loop: the input is quantized once per activation format, and the pool forks once instead of once
//! per matrix. Each output row is computed by the same kernel call as in [`matmul`], so the results are
//! bit-identical to separate `matmul` calls.

use cria_kernels::GgmlType;
use cria_kernels::dot;
use cria_kernels::matmul::{WeightRef, matmul};
use cria_kernels::pool::ThreadPool;
use cria_kernels::quant::{activation_type, quantize_activation};

/// One activation row quantized into each format the matrices of a fused call want, reused between calls.
#[derive(Default)]
pub(crate) struct QuantizedRow {
    rows: Vec<(GgmlType, Vec<u8>)>,
    used: usize,
}

impl QuantizedRow {
    /// Quantizes `x` for every matrix in `mats`; false if one wants f32 activations or a size does not fit
    /// whole blocks (the caller then takes the plain `matmul` path).
    fn prepare(&mut self, mats: &[WeightRef<'_>], x: &[f32]) -> bool {
        self.used = 0;
        for w in mats {
            let ty = activation_type(w.ty);
            if self.find(ty).is_some() {
                continue;
            }
            let Some(bytes) = ty.row_bytes(x.len()) else {
                return false;
            };
            if ty == GgmlType::F32 || w.cols != x.len() {
                return false;
            }
            if self.used == self.rows.len() {
                self.rows.push((ty, Vec::new()));
            }
            let (slot_ty, buf) = &mut self.rows[self.used];
            *slot_ty = ty;
            buf.resize(bytes, 0);
            quantize_activation(ty, x, buf);
            self.used += 1;
        }
        true
    }

    fn find(&self, ty: GgmlType) -> Option<&[u8]> {
        self.rows[..self.used]
            .iter()
            .find(|(t, _)| *t == ty)
            .map(|(_, b)| b.as_slice())
    }
}

/// Weight rows per task: about four tasks per thread, a multiple of 16 rows (as `matmul` splits a matvec).
fn chunk_rows(rows: usize, n_threads: usize) -> usize {
    if n_threads <= 1 {
        return rows.max(1);
    }
    rows.div_ceil(4 * n_threads).next_multiple_of(16).max(16)
}

/// `out = [x·W₀ᵀ | x·W₁ᵀ | …]` for one token `x`: the matrices' outputs side by side, in one fork/join.
/// `quant` and `bytes` are scratch.
pub(crate) fn matvec_fused(
    pool: &ThreadPool,
    mats: &[WeightRef<'_>],
    x: &[f32],
    out: &mut [f32],
    quant: &mut QuantizedRow,
    bytes: &mut Vec<u8>,
) {
    let total: usize = mats.iter().map(|w| w.rows).sum();
    assert_eq!(out.len(), total, "matvec_fused: out length");
    if !quant.prepare(mats, x) {
        let mut off = 0;
        for w in mats {
            matmul(pool, w, x, 1, &mut out[off..off + w.rows], bytes);
            off += w.rows;
        }
        return;
    }
    let quant = &*quant;
    let chunk = chunk_rows(total, pool.n_threads());
    pool.for_each_chunk_mut(out, chunk, &|t, part| {
        let start = t * chunk;
        let end = start + part.len();
        let mut off = 0;
        for w in mats {
            let (lo, hi) = (start.max(off), end.min(off + w.rows));
            if lo < hi {
                // `prepare` quantized the row for every matrix's activation type.
                if let Some(act) = quant.find(activation_type(w.ty)) {
                    let dst = &mut part[lo - start..hi - start];
                    dot::matvec_rows(w.ty, w.data, w.cols, act, lo - off..hi - off, dst);
                }
            }
            off += w.rows;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use cria_kernels::quant::quantize_row;

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
            })
            .collect();
        let x: Vec<f32> = (0..cols).map(|i| (i as f32 * 0.7).cos()).collect();
        for threads in [1, 2, 3] {
            let pool = ThreadPool::new(threads);
            let mut fused = vec![0.0; 160];
            let (mut q, mut b) = (QuantizedRow::default(), Vec::new());
            matvec_fused(&pool, &mats, &x, &mut fused, &mut q, &mut b);
            let mut separate = Vec::new();
            for w in &mats {
                let mut y = vec![0.0; w.rows];
                matmul(&pool, w, &x, 1, &mut y, &mut b);
                separate.extend(y);
            }
            assert_eq!(fused, separate, "{threads} threads");
        }
    }

    #[test]
    fn chunks_are_aligned() {
        assert_eq!(chunk_rows(960, 1), 960);
        assert_eq!(chunk_rows(960, 2), 128);
        assert_eq!(chunk_rows(10, 4), 16);
    }
}
