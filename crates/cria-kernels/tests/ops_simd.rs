//! Every SIMD op kernel this machine can run, held against the scalar one on random data and odd sizes.

use cria_kernels::isa::Isa;
use cria_kernels::ops::simd::testing as t;
use half::f16;
use proptest::prelude::*;

fn paths() -> Vec<Isa> {
    [Isa::Avx2, Isa::Avx512, Isa::Neon]
        .into_iter()
        .filter(|&i| t::available(i))
        .collect()
}

fn vec_f32(max_len: usize) -> impl Strategy<Value = Vec<f32>> {
    prop::collection::vec(-8.0f32..8.0, 0..max_len)
}

/// |a - b| within `rel` of the magnitude scale `mag` (plus a tiny absolute floor).
fn close(a: f32, b: f32, mag: f32, rel: f32) -> bool {
    (a - b).abs() <= rel * mag + 1e-6
}

#[test]
fn some_simd_path_is_tested_on_this_machine() {
    // On x86-64 and aarch64 CI machines at least one SIMD path must exist, or the proptests test nothing.
    if cfg!(any(target_arch = "x86_64", target_arch = "aarch64")) {
        assert!(!paths().is_empty(), "no SIMD op kernels detected");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn dot_f16_matches_scalar(pairs in prop::collection::vec((-8.0f32..8.0, -8.0f32..8.0), 0..300)) {
        let a: Vec<f32> = pairs.iter().map(|p| p.0).collect();
        let b: Vec<f16> = pairs.iter().map(|p| f16::from_f32(p.1)).collect();
        let want = t::dot_f16(Isa::Scalar, &a, &b);
        let mag: f32 = a.iter().zip(&b).map(|(x, y)| (x * y.to_f32()).abs()).sum();
        for isa in paths() {
            let got = t::dot_f16(isa, &a, &b);
            prop_assert!(close(got, want, mag, 1e-6), "{isa:?}: {got} vs {want}");
        }
    }

    #[test]
    fn axpy_f16_matches_scalar(y0 in vec_f32(300), a in -4.0f32..4.0, seed in 0u32..1000) {
        let x: Vec<f16> = (0..y0.len()).map(|i| f16::from_f32(((i as u32 * 7 + seed) % 17) as f32 - 8.0)).collect();
        let mut want = y0.clone();
        t::axpy_f16(Isa::Scalar, &mut want, a, &x);
        for isa in paths() {
            let mut got = y0.clone();
            t::axpy_f16(isa, &mut got, a, &x);
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                let mag = y0[i].abs() + (a * x[i].to_f32()).abs();
                prop_assert!(close(*g, *w, mag, 1e-6), "{isa:?} [{i}]: {g} vs {w}");
            }
        }
    }

    #[test]
    fn sum_sq_matches_scalar(x in vec_f32(700)) {
        let want = t::sum_sq(Isa::Scalar, &x);
        for isa in paths() {
            let got = t::sum_sq(isa, &x);
            prop_assert!(close(got, want, want, 1e-5), "{isa:?}: {got} vs {want}");
        }
    }

    #[test]
    fn silu_mul_matches_scalar(gate in prop::collection::vec(-100.0f32..100.0, 0..300), k in -3.0f32..3.0) {
        let up: Vec<f32> = gate.iter().map(|g| k - g * 0.01).collect();
        let mut want = vec![0.0; gate.len()];
        t::silu_mul(Isa::Scalar, &gate, &up, &mut want);
        for isa in paths() {
            let mut got = vec![0.0; gate.len()];
            t::silu_mul(isa, &gate, &up, &mut got);
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                prop_assert!(close(*g, *w, w.abs(), 2e-6), "{isa:?} silu({})·{}: {g} vs {w}", gate[i], up[i]);
            }
        }
    }
}

#[test]
fn f16_special_values_convert_like_half() {
    // Subnormals, the largest half, infinities: the SIMD converters must agree with `half` exactly.
    let specials = [
        0.0f32,
        -0.0,
        6e-8,
        -6e-8,
        1e-5,
        65504.0,
        -65504.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
    ];
    let mut v: Vec<f16> = specials.iter().map(|&x| f16::from_f32(x)).collect();
    v.extend((0..23).map(|i| f16::from_bits(i * 331)));
    for isa in paths() {
        for (i, &h) in v.iter().enumerate() {
            let mut y = vec![-0.0f32; v.len()]; // -0 + h == h, sign of zero included
            let mut one_hot = vec![f16::ZERO; v.len()];
            one_hot[i] = h;
            t::axpy_f16(isa, &mut y, 1.0, &one_hot);
            assert_eq!(y[i].to_bits(), h.to_f32().to_bits(), "{isa:?} {h:?}");
        }
    }
}
