//! rms_norm, rope, softmax, the gated activations, against direct f64 formulas on random rows.

use cria_kernels::ops::{
    RopeParams, RopeStyle, gelu_mul, rms_norm, rope_inplace, silu_mul, softmax_inplace,
};
use proptest::prelude::*;

fn row(max: usize) -> impl Strategy<Value = Vec<f32>> {
    prop::collection::vec(-10.0f32..10.0, 1..max)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn rms_norm_matches_formula(x in row(1000), eps in 1e-6f32..1e-4) {
        let w: Vec<f32> = (0..x.len()).map(|i| 1.0 + (i % 7) as f32 * 0.1).collect();
        let mut out = vec![0.0; x.len()];
        rms_norm(&x, &w, eps, &mut out);
        let ms: f64 = x.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / x.len() as f64;
        let s = 1.0 / (ms + f64::from(eps)).sqrt();
        for i in 0..x.len() {
            let want = f64::from(x[i]) * s * f64::from(w[i]);
            prop_assert!((f64::from(out[i]) - want).abs() <= 1e-5 * (1.0 + want.abs()), "[{i}]");
        }
    }

    #[test]
    fn softmax_matches_formula(x in row(500)) {
        let mut y = x.clone();
        softmax_inplace(&mut y);
        let m = x.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
        let z: f64 = x.iter().map(|&v| (f64::from(v) - m).exp()).sum();
        for i in 0..x.len() {
            let want = (f64::from(x[i]) - m).exp() / z;
            prop_assert!((f64::from(y[i]) - want).abs() <= 1e-6 * (1.0 + want), "[{i}]");
        }
    }

    #[test]
    fn gated_activations_match_formulas(g in row(600)) {
        let up: Vec<f32> = g.iter().map(|v| 0.5 - v * 0.1).collect();
        let (mut s, mut e) = (vec![0.0; g.len()], vec![0.0; g.len()]);
        silu_mul(&g, &up, &mut s);
        gelu_mul(&g, &up, &mut e);
        for i in 0..g.len() {
            let x = f64::from(g[i]);
            let u = f64::from(up[i]);
            let silu = x / (1.0 + (-x).exp()) * u;
            let c = (2.0 / std::f64::consts::PI).sqrt();
            let gelu = 0.5 * x * (1.0 + (c * (x + 0.044715 * x * x * x)).tanh()) * u;
            prop_assert!((f64::from(s[i]) - silu).abs() <= 1e-5 * (1.0 + silu.abs()), "silu [{i}]");
            // ggml's GELU rounds its input and output to f16 (see ops::gelu_as_ggml): about 2^-11 relative each.
            let gelu_tol = 1.5e-3 * (1.0 + x.abs()) * u.abs() + 1e-6;
            prop_assert!((f64::from(e[i]) - gelu).abs() <= gelu_tol, "gelu [{i}]");
        }
    }

    #[test]
    fn rope_matches_formula(
        half_rot in 1usize..40, extra in 0usize..6, n_heads in 1usize..4, pos in 0usize..3000,
        neox in any::<bool>(), scale in prop::sample::select(vec![1.0f32, 0.25]), factors in any::<bool>(),
    ) {
        let (n_rot, head_dim) = (2 * half_rot, 2 * half_rot + extra);
        let x: Vec<f32> = (0..n_heads * head_dim).map(|i| ((i * 37 % 11) as f32 - 5.0) * 0.3).collect();
        let ff: Vec<f32> = (0..half_rot).map(|i| 1.0 + (i % 3) as f32).collect();
        let style = if neox { RopeStyle::Neox } else { RopeStyle::Normal };
        let p = RopeParams { freq_scale: scale, freq_factors: factors.then(|| ff.clone()), ..RopeParams::new(style, n_rot, 10000.0) };
        let mut y = x.clone();
        rope_inplace(&mut y, n_heads, head_dim, pos, &p);
        for h in 0..n_heads {
            let base = h * head_dim;
            for (i, &f_i) in ff.iter().enumerate() {
                let (a, b) = if neox { (i, i + half_rot) } else { (2 * i, 2 * i + 1) };
                let f = if factors { f64::from(f_i) } else { 1.0 };
                let theta = pos as f64 * f64::from(scale) * 10000f64.powf(-2.0 * i as f64 / n_rot as f64) / f;
                let (x0, x1) = (f64::from(x[base + a]), f64::from(x[base + b]));
                let want0 = x0 * theta.cos() - x1 * theta.sin();
                let want1 = x0 * theta.sin() + x1 * theta.cos();
                // ggml's f32 angle recurrence drifts by a few ulps of pos·θ: ~1e-3 rad at pos 3000.
                let tol = 2e-3 * (1.0 + x0.abs() + x1.abs());
                prop_assert!((f64::from(y[base + a]) - want0).abs() <= tol, "head {h} pair {i}");
                prop_assert!((f64::from(y[base + b]) - want1).abs() <= tol, "head {h} pair {i}");
            }
            for j in n_rot..head_dim {
                prop_assert_eq!(y[base + j], x[base + j]);
            }
        }
    }
}
