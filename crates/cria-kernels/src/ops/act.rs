//! Element-wise ops: gated activations (SwiGLU, GeGLU), residual add, scaling.

use super::simd;

/// `silu(x) = x / (1 + e^-x)`.
#[inline]
pub fn silu(x: f32) -> f32 {
    x / (1.0 + (-x).exp())
}

/// GELU, ggml's tanh approximation: `0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³)))`.
#[inline]
pub fn gelu(x: f32) -> f32 {
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    const COEF_A: f32 = 0.044_715;
    0.5 * x * (1.0 + (SQRT_2_OVER_PI * x * (1.0 + COEF_A * x * x)).tanh())
}

/// GELU exactly as ggml's CPU backend computes it (`GGML_GELU_FP16`, always defined in its `vec.h`): the
/// input rounded to f16, the tanh formula, the result rounded to f16 (what its 64K-entry f16 table holds),
/// and the tails clamped (0 below -10, identity above 10). Matching this moves Gemma's top-1 agreement with
/// llama.cpp's reference logits from 94.8% to 97.0% of positions.
///
/// Like ggml, through a table of all 65536 f16 values (built once, 128 KiB): a lookup instead of a `tanh`.
#[inline]
pub fn gelu_as_ggml(x: f32) -> f32 {
    if x <= -10.0 {
        0.0
    } else if x >= 10.0 {
        x
    } else {
        let h = half::f16::from_f32(x).to_bits();
        half::f16::from_bits(gelu_f16_table()[usize::from(h)]).to_f32()
    }
}

/// `table[h] = f16(gelu(f32(h)))` for every f16 bit pattern `h` (ggml's `ggml_table_gelu_f16`).
pub(crate) fn gelu_f16_table() -> &'static [u16; 65536] {
    static TABLE: std::sync::OnceLock<Box<[u16; 65536]>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t = Box::new([0u16; 65536]);
        for (h, v) in t.iter_mut().enumerate() {
            let x = half::f16::from_bits(h as u16).to_f32();
            *v = half::f16::from_f32(gelu(x)).to_bits();
        }
        t
    })
}

/// `out = silu(gate) * up` (SwiGLU's gate).
///
/// # Panics
/// If the three slices differ in length.
pub fn silu_mul(gate: &[f32], up: &[f32], out: &mut [f32]) {
    check3("silu_mul", gate, up, out);
    simd::kernels().silu_mul(gate, up, out);
}

/// `out = gelu(gate) * up` (GeGLU's gate, ggml's tanh-approximate GELU with its f16 rounding: [`gelu_as_ggml`]).
///
/// # Panics
/// If the three slices differ in length.
pub fn gelu_mul(gate: &[f32], up: &[f32], out: &mut [f32]) {
    check3("gelu_mul", gate, up, out);
    simd::kernels().gelu_mul(gate, up, out);
}

/// gpt-oss's clamped SwiGLU (ggml's `swiglu_oai`): `out = g · sigmoid(alpha · g) · (u + 1)` with
/// `g = min(gate, limit)` and `u = clamp(up, -limit, limit)`. Scalar: it runs on the experts' hidden rows only,
/// a small part of a step next to their matmuls.
///
/// # Panics
/// If the three slices differ in length.
pub fn swiglu_oai_mul(gate: &[f32], up: &[f32], alpha: f32, limit: f32, out: &mut [f32]) {
    check3("swiglu_oai_mul", gate, up, out);
    for ((o, &g), &u) in out.iter_mut().zip(gate).zip(up) {
        let g = g.min(limit);
        let u = u.clamp(-limit, limit);
        *o = g / (1.0 + (alpha * -g).exp()) * (u + 1.0);
    }
}

/// `x += y`.
///
/// # Panics
/// If the lengths differ.
pub fn add_inplace(x: &mut [f32], y: &[f32]) {
    assert_eq!(x.len(), y.len(), "add_inplace: lengths");
    for (a, &b) in x.iter_mut().zip(y) {
        *a += b;
    }
}

/// `x *= y`, element-wise.
///
/// # Panics
/// If the lengths differ.
pub fn mul_inplace(x: &mut [f32], y: &[f32]) {
    assert_eq!(x.len(), y.len(), "mul_inplace: lengths");
    for (a, &b) in x.iter_mut().zip(y) {
        *a *= b;
    }
}

/// `x *= s`.
pub fn scale_inplace(x: &mut [f32], s: f32) {
    for a in x.iter_mut() {
        *a *= s;
    }
}

fn check3(op: &str, a: &[f32], b: &[f32], out: &[f32]) {
    assert!(
        a.len() == b.len() && a.len() == out.len(),
        "{op}: lengths {} {} {}",
        a.len(),
        b.len(),
        out.len()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silu_and_gelu_known_values() {
        assert_eq!(silu(0.0), 0.0);
        assert!((silu(1.0) - 0.731_058_6).abs() < 1e-6);
        assert!((silu(-20.0)).abs() < 1e-7);
        assert_eq!(gelu(0.0), 0.0);
        // Reference values of the tanh approximation (PyTorch gelu(approximate="tanh")).
        assert!((gelu(1.0) - 0.841_192).abs() < 1e-5);
        assert!((gelu(-1.0) + 0.158_808).abs() < 1e-5);
        assert!((gelu(3.0) - 2.996_363_7).abs() < 1e-5);
    }

    #[test]
    fn gated_products_multiply_by_up() {
        let gate = [-2.0f32, -0.5, 0.0, 0.5, 2.0];
        let up = [1.0f32, 2.0, 3.0, 4.0, 5.0];
        let mut out = [0.0; 5];
        silu_mul(&gate, &up, &mut out);
        for i in 0..5 {
            assert!((out[i] - silu(gate[i]) * up[i]).abs() < 1e-6);
        }
        gelu_mul(&gate, &up, &mut out);
        for i in 0..5 {
            assert!((out[i] - gelu_as_ggml(gate[i]) * up[i]).abs() < 1e-6);
        }
    }

    /// Values worked by hand from ggml's formula: the gate clamps from above only, the up value both ways.
    #[test]
    fn swiglu_oai_clamps_gate_above_and_up_both_ways() {
        let (alpha, limit) = (1.702, 7.0);
        let gate = [-9.0f32, 0.0, 1.0, 9.0, 2.0];
        let up = [0.5f32, 3.0, -1.0, 0.0, -12.0];
        let mut out = [0.0; 5];
        swiglu_oai_mul(&gate, &up, alpha, limit, &mut out);
        let glu = |g: f32| g / (1.0 + (-alpha * g).exp());
        let want = [
            glu(-9.0) * 1.5,
            0.0,
            glu(1.0) * 0.0,
            glu(7.0) * 1.0,
            glu(2.0) * -6.0,
        ];
        for (g, w) in out.iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "{out:?} vs {want:?}");
        }
        assert!((out[3] - 6.999_954).abs() < 1e-4, "{}", out[3]);
    }

    #[test]
    fn add_mul_scale() {
        let mut x = [1.0f32, 2.0, 3.0];
        add_inplace(&mut x, &[1.0, 1.0, -3.0]);
        assert_eq!(x, [2.0, 3.0, 0.0]);
        mul_inplace(&mut x, &[2.0, 0.5, 9.0]);
        assert_eq!(x, [4.0, 1.5, 0.0]);
        scale_inplace(&mut x, -2.0);
        assert_eq!(x, [-8.0, -3.0, -0.0]);
    }

    #[test]
    fn gelu_as_ggml_is_the_f16_table_value() {
        assert_eq!(gelu_as_ggml(-10.5), 0.0);
        assert_eq!(gelu_as_ggml(12.25), 12.25);
        for x in [-3.3f32, -0.7, 0.0, 0.1234, 1.0, 2.5, 9.9] {
            // Computed directly, not through the table.
            let want = half::f16::from_f32(gelu(half::f16::from_f32(x).to_f32())).to_f32();
            assert_eq!(gelu_as_ggml(x), want, "x = {x}");
            assert!((gelu_as_ggml(x) - gelu(x)).abs() <= 2e-3 * (1.0 + x.abs()));
        }
    }
}
