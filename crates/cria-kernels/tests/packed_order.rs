//! The repacked Q4_0 / Q4_K path (`packed`): every kernel, on every path this CPU has, gives each output the
//! bits of `packed::reference` (llama.cpp's repacked per-row `gemm` order, the one its x86 backend runs for
//! these matrices), for one token (decode) and for batches of every tile remainder alike, over whole groups
//! and row ranges that cut groups; and the order sums the same products as the row-major one.

#![allow(clippy::unwrap_used)] // tests fail loudly on bad fixtures

use cria_kernels::GgmlType;
use cria_kernels::isa::Isa;
use cria_kernels::matmul::{WeightRef, matmul};
use cria_kernels::packed::{self, Layout, reference};
use cria_kernels::pool::ThreadPool;
use cria_kernels::quant::{activation_type, quantize_activation_with, quantize_row};

/// A deterministic generator: uniform in [-1, 1).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
}

/// Activations like a residual stream: small values, a few outlier channels, one block at ±max.
fn activation(n: usize, seed: u64) -> Vec<f32> {
    let mut g = Lcg(seed);
    let mut x: Vec<f32> = (0..n).map(|_| g.next() + g.next()).collect();
    for (k, c) in [3usize, 77, 200, 300].into_iter().enumerate() {
        x[c % n] = if k % 2 == 0 { 60.0 } else { -45.0 };
    }
    for (i, v) in x[32..64].iter_mut().enumerate() {
        *v = if i % 3 == 0 { -5.0 } else { 5.0 };
    }
    x
}

struct Case {
    ty: GgmlType,
    cols: usize,
    rows_major: Vec<u8>,
    packed: Vec<u8>,
}

fn case(ty: GgmlType, rows: usize, cols: usize, seed: u64) -> Case {
    let rb = ty.row_bytes(cols).unwrap();
    let mut g = Lcg(seed);
    let mut w = vec![0u8; rb * rows];
    for chunk in w.chunks_exact_mut(rb) {
        let x: Vec<f32> = (0..cols).map(|_| g.next() * 0.05).collect();
        quantize_row(ty, &x, chunk).unwrap();
    }
    let packed = packed::pack(ty, rows, cols, &w).unwrap();
    Case {
        ty,
        cols,
        rows_major: w,
        packed,
    }
}

fn acts(c: &Case, n_tok: usize) -> (Vec<u8>, usize) {
    let at = activation_type(c.ty);
    let ab = at.row_bytes(c.cols).unwrap();
    let mut a = vec![0u8; ab * n_tok];
    for (t, chunk) in a.chunks_exact_mut(ab).enumerate() {
        quantize_activation_with(Isa::Scalar, at, &activation(c.cols, 7 + t as u64), chunk);
    }
    (a, ab)
}

/// The reference for token `t` of any call: the packed order, whatever the number of tokens beside it.
fn want(c: &Case, a: &[u8], ab: usize, t: usize, r: usize) -> f32 {
    let rb = c.ty.row_bytes(c.cols).unwrap();
    reference::dot(
        c.ty,
        &c.rows_major[r * rb..(r + 1) * rb],
        &a[t * ab..(t + 1) * ab],
    )
}

const CASES: [(GgmlType, usize, usize); 2] = [(GgmlType::Q4_0, 24, 320), (GgmlType::Q4_K, 24, 512)];

#[test]
fn packed_kernels_give_the_reference_bits_on_every_path() {
    for (i, (ty, rows, cols)) in CASES.into_iter().enumerate() {
        let c = case(ty, rows, cols, 11 + i as u64);
        for n_tok in [1, 2, 3, 4, 5, 9, 14, 16, 37] {
            let (a, ab) = acts(&c, n_tok);
            for isa in Isa::available() {
                for range in [0..rows, 0..16, 8..16, 3..21, 5..7, 17..24] {
                    let stride = range.len() + 3;
                    let mut out = vec![f32::NAN; n_tok * stride];
                    packed::matmul_rows_with(
                        isa,
                        ty,
                        &c.packed,
                        cols,
                        &a,
                        n_tok,
                        range.clone(),
                        &mut out,
                        stride,
                    );
                    for t in 0..n_tok {
                        for (i, r) in range.clone().enumerate() {
                            let (g, w) = (out[t * stride + i], want(&c, &a, ab, t, r));
                            assert_eq!(
                                g.to_bits(),
                                w.to_bits(),
                                "{isa:?} {ty:?} n_tok {n_tok} rows {range:?}: token {t} row {r}: {g} vs {w}"
                            );
                        }
                    }
                }
            }
        }
    }
}

/// The repacked order sums the same products as the row-major one (`dot::scalar`): only roundings differ.
#[test]
fn packed_order_sums_the_same_products() {
    for (i, (ty, rows, cols)) in CASES.into_iter().enumerate() {
        let c = case(ty, rows, cols, 21 + i as u64);
        let (a, ab) = acts(&c, 2);
        let rb = ty.row_bytes(cols).unwrap();
        for t in 0..2 {
            for r in 0..rows {
                let w = &c.rows_major[r * rb..(r + 1) * rb];
                let act = &a[t * ab..(t + 1) * ab];
                let (p, s) = (
                    reference::dot(ty, w, act),
                    cria_kernels::dot::scalar::dot(ty, w, act),
                );
                assert!(
                    (p - s).abs() <= 1e-5 * s.abs().max(1.0),
                    "{ty:?} row {r}: {p} vs {s}"
                );
            }
        }
    }
}

/// The threaded driver on a packed matrix: decode, the tile split and the token split (300 tokens on 2
/// threads) all give the reference bits.
#[test]
fn matmul_on_packed_weights_gives_the_reference_bits() {
    let pool = ThreadPool::new(2);
    for (i, (ty, rows, cols)) in CASES.into_iter().enumerate() {
        let c = case(ty, rows, cols, 31 + i as u64);
        let w = WeightRef {
            ty,
            rows,
            cols,
            data: &c.packed,
            layout: Layout::Groups8,
        };
        for n_tok in [1, 7, 300] {
            let x: Vec<f32> = (0..n_tok)
                .flat_map(|t| activation(cols, 7 + t as u64))
                .collect();
            let mut y = vec![f32::NAN; n_tok * rows];
            matmul(&pool, &w, &x, n_tok, &mut y, &mut Vec::new());
            let (a, ab) = (
                {
                    let at = activation_type(ty);
                    let ab = at.row_bytes(cols).unwrap();
                    let mut a = vec![0u8; ab * n_tok];
                    for (t, chunk) in a.chunks_exact_mut(ab).enumerate() {
                        // the driver quantizes on the active path; every path quantizes alike (tested in
                        // quant_isa.rs)
                        quantize_activation_with(
                            Isa::Scalar,
                            at,
                            &x[t * cols..(t + 1) * cols],
                            chunk,
                        );
                    }
                    a
                },
                activation_type(ty).row_bytes(cols).unwrap(),
            );
            for t in 0..n_tok {
                for r in 0..rows {
                    let (g, w) = (y[t * rows + r], want(&c, &a, ab, t, r));
                    assert_eq!(
                        g.to_bits(),
                        w.to_bits(),
                        "{ty:?} n_tok {n_tok}: token {t} row {r}"
                    );
                }
            }
        }
    }
}

/// Regression (chat turn 2 recomputed up to 255 cached tokens): the 4-token tiles summed Q4_K in llama.cpp's
/// `gemm` order and the rest (decode too) in its `gemv` order, so a token's bits depended on how the batch was cut and the
/// prompt cache could only resume at fixed chunk boundaries. Every split of a batch now gives the same bits.
#[test]
fn a_token_gets_the_same_bits_in_every_split_of_its_batch() {
    let pool = ThreadPool::new(2);
    let (ty, rows, cols) = (GgmlType::Q4_K, 16, 512);
    let c = case(ty, rows, cols, 41);
    let w = WeightRef {
        ty,
        rows,
        cols,
        data: &c.packed,
        layout: Layout::Groups8,
    };
    let n_tok = 11;
    let x: Vec<f32> = (0..n_tok)
        .flat_map(|t| activation(cols, 3 + t as u64))
        .collect();
    let run = |splits: &[usize]| {
        let (mut y, mut start) = (Vec::new(), 0);
        for &n in splits {
            let mut part = vec![f32::NAN; n * rows];
            let xs = &x[start * cols..(start + n) * cols];
            matmul(&pool, &w, xs, n, &mut part, &mut Vec::new());
            y.extend(part.iter().map(|v| v.to_bits()));
            start += n;
        }
        y
    };
    let whole = run(&[n_tok]);
    for splits in [vec![1; n_tok], vec![3, 5, 3], vec![4, 7], vec![2, 9]] {
        assert_eq!(run(&splits), whole, "split {splits:?}");
    }
}
