//! Every fast path against the scalar reference on random data and odd sizes (proptest), and ggml's
//! `test-quantize-fns` error bounds for quantize → dequantize and for the dot products.

use cria_kernels::GgmlType;
use cria_kernels::dot::{matmul_rows_with, matvec_rows_with};
use cria_kernels::isa::Isa;
use cria_kernels::quant::{
    activation_type, can_quantize, dequantize_row, quantize_activation_with, quantize_row,
};
use proptest::prelude::*;

/// The types Cria quantizes to (the read-only IQ, ternary and MXFP4 formats: tests/iq_kernels.rs).
fn weight_types() -> Vec<GgmlType> {
    GgmlType::ALL
        .into_iter()
        .filter(|&t| can_quantize(t))
        .collect()
}

fn quantize(ty: GgmlType, x: &[f32]) -> Vec<u8> {
    let mut q = vec![0u8; ty.row_bytes(x.len()).unwrap()];
    quantize_row(ty, x, &mut q).unwrap();
    q
}

fn dequantize(ty: GgmlType, q: &[u8], n: usize) -> Vec<f32> {
    let mut d = vec![0f32; n];
    dequantize_row(ty, q, &mut d).unwrap();
    d
}

fn act(isa: Isa, ty: GgmlType, x: &[f32]) -> Vec<u8> {
    let at = activation_type(ty);
    let mut q = vec![0u8; at.row_bytes(x.len()).unwrap()];
    quantize_activation_with(isa, at, x, &mut q);
    q
}

/// ggml's synthetic data: 0.1 + 2·cos(i + offset).
fn synthetic(n: usize, offset: f32) -> Vec<f32> {
    (0..n)
        .map(|i| 0.1 + 2.0 * (i as f32 + offset).cos())
        .collect()
}

/// ggml's `array_rmse`: sqrt(Σ diff²) / n.
fn ggml_rmse(a: &[f32], b: &[f32]) -> f32 {
    let s: f64 = a.iter().zip(b).map(|(x, y)| ((x - y) as f64).powi(2)).sum();
    s.sqrt() as f32 / a.len() as f32
}

#[test]
fn quantize_dequantize_within_ggml_bounds() {
    let x = synthetic(32 * 128, 0.0);
    for ty in weight_types() {
        let err = ggml_rmse(&x, &dequantize(ty, &quantize(ty, &x), x.len()));
        let bound = match ty {
            GgmlType::Q2_K => 0.0075,
            GgmlType::Q3_K => 0.0040,
            _ => 0.002,
        };
        assert!(
            err < bound,
            "{ty:?}: total quantization error {err} >= {bound}"
        );
    }
}

#[test]
fn dot_products_within_ggml_bounds_on_every_path() {
    let n = 32 * 128;
    let (x, y) = (synthetic(n, 0.0), synthetic(n, 1.0));
    let want: f32 = x.iter().zip(&y).map(|(a, b)| a * b).sum();
    for isa in Isa::available() {
        for ty in weight_types() {
            let w = quantize(ty, &x);
            let mut out = [0f32];
            matvec_rows_with(isa, ty, &w, n, &act(isa, ty, &y), 0..1, &mut out);
            let err = (out[0] - want).abs() / n as f32;
            let bound = if matches!(ty, GgmlType::Q2_K | GgmlType::Q3_K) {
                0.04
            } else {
                0.02
            };
            assert!(err < bound, "{isa:?} {ty:?}: dot error {err} >= {bound}");
        }
    }
}

#[test]
fn activation_quantizers_agree_on_every_path() {
    let x: Vec<f32> = synthetic(1024, 0.3)
        .iter()
        .enumerate()
        .map(|(i, v)| v * (i % 7) as f32)
        .collect();
    for at in [
        GgmlType::Q8_0,
        GgmlType::Q8_1,
        GgmlType::Q8_K,
        GgmlType::F32,
    ] {
        let mut want = vec![0u8; at.row_bytes(x.len()).unwrap()];
        quantize_activation_with(Isa::Scalar, at, &x, &mut want);
        for isa in Isa::available() {
            let mut got = vec![0u8; want.len()];
            quantize_activation_with(isa, at, &x, &mut got);
            assert_eq!(got, want, "{isa:?} {at:?}");
        }
    }
}

#[test]
fn fast_q8_matches_reference_up_to_ties() {
    let x = synthetic(4096, 0.7);
    for at in [GgmlType::Q8_0, GgmlType::Q8_1, GgmlType::Q8_K] {
        let reference = dequantize(at, &quantize(at, &x), x.len());
        let fast = dequantize(at, &act_for(at, &x), x.len());
        for (i, (r, f)) in reference.iter().zip(&fast).enumerate() {
            let step = x[i / 32 * 32..][..32]
                .iter()
                .fold(0f32, |m, v| m.max(v.abs()))
                / 100.0;
            assert!((r - f).abs() <= step, "{at:?} element {i}: {r} vs {f}");
        }
    }
}

fn act_for(at: GgmlType, x: &[f32]) -> Vec<u8> {
    let mut q = vec![0u8; at.row_bytes(x.len()).unwrap()];
    quantize_activation_with(Isa::best(), at, x, &mut q);
    q
}

/// Random case: a type, a row length that is a whole number of its blocks, a few rows, values of mixed scale.
fn case() -> impl Strategy<Value = (GgmlType, usize, usize, Vec<f32>, Vec<f32>)> {
    (0..weight_types().len(), 1usize..6, 1usize..8, 0.01f32..20.0).prop_flat_map(
        |(ti, nb, rows, scale)| {
            let ty = weight_types()[ti];
            // float types get odd lengths to reach the SIMD tails
            let n = if ty.block_size() == 1 {
                nb * 37
            } else {
                nb * activation_type(ty).block_size().max(ty.block_size())
            };
            let w = proptest::collection::vec(-scale..scale, n * rows);
            let a = proptest::collection::vec(-4.0f32..4.0, n * 6);
            (Just(ty), Just(n), Just(rows), w, a)
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(if cfg!(target_arch = "aarch64") { 48 } else { 160 }))]

    #[test]
    fn every_path_matches_scalar((ty, n, rows, w, a) in case()) {
        let wq: Vec<u8> = w.chunks_exact(n).flat_map(|r| quantize(ty, r)).collect();
        let wd: Vec<f32> = wq.chunks_exact(ty.row_bytes(n).unwrap()).flat_map(|r| dequantize(ty, r, n)).collect();
        let at = activation_type(ty);
        let acts: Vec<u8> = a.chunks_exact(n).flat_map(|r| act(Isa::Scalar, ty, r)).collect();
        let ad: Vec<f32> = acts.chunks_exact(at.row_bytes(n).unwrap()).flat_map(|r| dequantize(at, r, n)).collect();
        let n_tok = 6; // a 4-token tile and an edge
        // the scalar kernel against f32 math on the dequantized operands
        let mut want = vec![0f32; n_tok * rows];
        matmul_rows_with(Isa::Scalar, ty, &wq, n, &acts, n_tok, 0..rows, &mut want, rows);
        for t in 0..n_tok {
            for r in 0..rows {
                let (wr, ar) = (&wd[r * n..][..n], &ad[t * n..][..n]);
                let exact: f64 = wr.iter().zip(ar).map(|(x, y)| *x as f64 * *y as f64).sum();
                let mag: f64 = wr.iter().zip(ar).map(|(x, y)| (*x as f64 * *y as f64).abs()).sum();
                let got = want[t * rows + r] as f64;
                // Q8_1 carries s = f16(d·Σq): its rounding reaches the products with a min
                let tol = if at == GgmlType::Q8_1 { 2e-3 } else { 1e-4 };
                prop_assert!((got - exact).abs() <= tol * mag + 1e-5, "{ty:?} scalar {got} vs f64 {exact}");
            }
        }
        for isa in Isa::available() {
            let mut got = vec![0f32; n_tok * rows];
            matmul_rows_with(isa, ty, &wq, n, &acts, n_tok, 0..rows, &mut got, rows);
            let mut mv = vec![0f32; rows];
            matvec_rows_with(isa, ty, &wq, n, &acts[at.row_bytes(n).unwrap()..], 1..rows, &mut mv[1..]);
            for (i, (g, s)) in got.iter().zip(&want).enumerate() {
                let mag: f32 = wd[(i % rows) * n..][..n].iter().zip(&ad[(i / rows) * n..][..n]).map(|(x, y)| (x * y).abs()).sum();
                prop_assert!((g - s).abs() <= 1e-5 * mag + 1e-6, "{isa:?} {ty:?} matmul[{i}]: {g} vs scalar {s}");
            }
            for r in 1..rows {
                let s = want[rows + r];
                prop_assert!((mv[r] - s).abs() <= 1e-5 * s.abs().max(1.0) * n as f32, "{isa:?} {ty:?} matvec row {r}: {} vs {s}", mv[r]);
            }
        }
    }
}
