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

/// A strided f16 matrix: `rows` rows of `stride` values (the KV-cache shape).
fn kv_rows(rows: usize, stride: usize, seed: u32) -> Vec<f16> {
    (0..rows * stride)
        .map(|i| {
            f16::from_f32(
                (((i as u32).wrapping_mul(2654435761) ^ seed) % 1601) as f32 / 100.0 - 8.0,
            )
        })
        .collect()
}

#[test]
fn ops_follow_the_process_isa() {
    // CRIA_ISA=scalar|avx2|avx512|neon forces the op kernels along with the dot products.
    assert_eq!(t::active_isa(), cria_kernels::isa::active());
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
    fn dot_rows_f16_matches_scalar(q in vec_f32(300), rows in 0usize..20, pad in 0usize..9, seed in any::<u32>()) {
        let stride = q.len() + pad;
        let k = kv_rows(rows, stride, seed);
        let mut want = vec![0.0; rows];
        t::dot_rows_f16(Isa::Scalar, &q, &k, stride, &mut want);
        for isa in paths() {
            let mut got = vec![0.0; rows];
            t::dot_rows_f16(isa, &q, &k, stride, &mut got);
            for r in 0..rows {
                let mag: f32 = q.iter().zip(&k[r * stride..]).map(|(x, y)| (x * y.to_f32()).abs()).sum();
                prop_assert!(close(got[r], want[r], mag, 1e-6), "{isa:?} row {r}: {} vs {}", got[r], want[r]);
            }
        }
    }

    #[test]
    fn dot_rows_f16_matches_scalar_at_head_sizes(dim in prop::sample::select(vec![64usize, 128, 256]),
                                                 rows in 0usize..20, pad in 0usize..9, seed in any::<u32>()) {
        let q: Vec<f32> = (0..dim).map(|i| ((i as u32 ^ seed) % 97) as f32 / 48.0 - 1.0).collect();
        let stride = dim + pad;
        let k = kv_rows(rows, stride, seed);
        let mut want = vec![0.0; rows];
        t::dot_rows_f16(Isa::Scalar, &q, &k, stride, &mut want);
        for isa in paths() {
            let mut got = vec![0.0; rows];
            t::dot_rows_f16(isa, &q, &k, stride, &mut got);
            for r in 0..rows {
                let mag: f32 = q.iter().zip(&k[r * stride..]).map(|(x, y)| (x * y.to_f32()).abs()).sum();
                prop_assert!(close(got[r], want[r], mag, 1e-6), "{isa:?} row {r}: {} vs {}", got[r], want[r]);
            }
        }
    }

    #[test]
    fn axpy_rows_f16_matches_scalar(out0 in vec_f32(300), probs in prop::collection::vec(0.0f32..1.0, 0..20),
                                    pad in 0usize..9, seed in any::<u32>()) {
        let stride = out0.len() + pad;
        let v = kv_rows(probs.len(), stride, seed);
        let mut want = out0.clone();
        t::axpy_rows_f16(Isa::Scalar, &mut want, &probs, &v, stride);
        for isa in paths() {
            let mut got = out0.clone();
            t::axpy_rows_f16(isa, &mut got, &probs, &v, stride);
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                let mag = out0[i].abs() + probs.iter().enumerate().map(|(r, p)| (p * v[r * stride + i].to_f32()).abs()).sum::<f32>();
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
                // The SIMD exp is within ~2 ulp of libm's.
                prop_assert!(close(*g, *w, w.abs(), 4e-6), "{isa:?} silu({})·{}: {g} vs {w}", gate[i], up[i]);
            }
        }
    }

    #[test]
    fn gelu_mul_is_bit_exact_with_scalar(gate in prop::collection::vec(-12.0f32..12.0, 0..300), k in -3.0f32..3.0) {
        // ggml's GELU is a table lookup between two f16 roundings: every path must give the same bits.
        let mut gate = gate;
        gate.extend([-10.0, 10.0, -9.999, 9.999, 0.0, -0.0, 1e-8, -1e-8, 65519.0, -70000.0]);
        let up: Vec<f32> = gate.iter().map(|g| k - g * 0.01).collect();
        let mut want = vec![0.0; gate.len()];
        t::gelu_mul(Isa::Scalar, &gate, &up, &mut want);
        for isa in paths() {
            let mut got = vec![0.0; gate.len()];
            t::gelu_mul(isa, &gate, &up, &mut got);
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                prop_assert_eq!(g.to_bits(), w.to_bits(), "{:?} gelu({})·{}: {} vs {}", isa, gate[i], up[i], g, w);
            }
        }
    }

    #[test]
    fn exp_sub_sum_matches_scalar(x in prop::collection::vec(-120.0f32..20.0, 0..300), masked in 0usize..5) {
        let mut x = x;
        for v in x.iter_mut().take(masked) {
            *v = f32::NEG_INFINITY;
        }
        let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max).max(-50.0);
        let mut want = x.clone();
        let ws = t::exp_sub_sum(Isa::Scalar, &mut want, max);
        for isa in paths() {
            let mut got = x.clone();
            let gs = t::exp_sub_sum(isa, &mut got, max);
            prop_assert!(close(gs, ws, ws, 1e-5), "{isa:?} sum {gs} vs {ws}");
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                prop_assert!(close(*g, *w, *w, 4e-6), "{isa:?} exp({} - {max}): {g} vs {w}", x[i]);
                if x[i] == f32::NEG_INFINITY {
                    prop_assert_eq!(*g, 0.0);
                }
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
        // One row of all the values, weight 1: out = -0 + v, exact, sign of zero included.
        let mut y = vec![-0.0f32; v.len()];
        t::axpy_rows_f16(isa, &mut y, &[1.0], &v, v.len());
        for (got, h) in y.iter().zip(&v) {
            assert_eq!(got.to_bits(), h.to_f32().to_bits(), "{isa:?} {h:?}");
        }
    }
}

/// The grouped-query kernels (one K/V row read for all the query heads of a KV head) against the one-query
/// kernels of the same ISA, bit for bit: every path this machine has (scalar included), 1 to 9 queries (the
/// AVX2 kernel's groups of four and their remainders), head sizes with and without a tail of under 8, padded
/// strides, and non-finite values.
#[test]
fn group_kernels_equal_one_query_at_a_time_bit_for_bit() {
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    for isa in paths().into_iter().chain([Isa::Scalar]) {
        for hd in [4usize, 20, 64, 72, 128, 256] {
            for n_q in 1..=9usize {
                for (n_rows, pad) in [(1usize, 0usize), (7, 3), (33, 8)] {
                    let seed = (hd * 31 + n_q * 7 + n_rows) as u32;
                    let stride = hd + pad;
                    let mut k = kv_rows(n_rows, stride, seed);
                    let v = kv_rows(n_rows, stride, seed ^ 0x55);
                    if n_q == 5 {
                        k[stride / 2] = f16::INFINITY;
                    }
                    let q: Vec<f32> = (0..n_q * hd)
                        .map(|i| ((i as u32 ^ seed) % 97) as f32 / 48.0 - 1.0)
                        .collect();
                    let out_stride = n_rows + 2;
                    let mut got = vec![f32::NAN; n_q * out_stride];
                    t::dot_rows_group(isa, (&q, hd), (&k, stride), (&mut got, out_stride), n_rows);
                    let probs: Vec<f32> = (0..n_q * out_stride)
                        .map(|i| (i % 13) as f32 / 13.0)
                        .collect();
                    let acc0: Vec<f32> = (0..n_q * hd).map(|i| (i % 7) as f32 - 3.0).collect();
                    let mut acc = acc0.clone();
                    t::axpy_rows_group(
                        isa,
                        (&mut acc, hd),
                        (&probs, out_stride),
                        (&v, stride),
                        n_rows,
                    );
                    for g in 0..n_q {
                        let at =
                            format!("{isa:?} hd {hd}, {n_q} queries, {n_rows} rows: query {g}");
                        let mut want = vec![0.0; n_rows];
                        t::dot_rows_f16(isa, &q[g * hd..(g + 1) * hd], &k, stride, &mut want);
                        let row = &got[g * out_stride..(g + 1) * out_stride];
                        assert_eq!(bits(&row[..n_rows]), bits(&want), "{at}: dots");
                        assert!(
                            row[n_rows..].iter().all(|x| x.is_nan()),
                            "{at}: past its rows"
                        );
                        let mut want = acc0[g * hd..(g + 1) * hd].to_vec();
                        let p = &probs[g * out_stride..g * out_stride + n_rows];
                        t::axpy_rows_f16(isa, &mut want, p, &v, stride);
                        assert_eq!(
                            bits(&acc[g * hd..(g + 1) * hd]),
                            bits(&want),
                            "{at}: weighted sum"
                        );
                    }
                }
            }
        }
    }
}
