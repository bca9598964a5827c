//! Portable definitions of the primitives (the reference the SIMD tables are tested against).

use half::f16;

use crate::ops::silu;

pub(super) fn dot_f16(a: &[f32], b: &[f16]) -> f32 {
    a.iter().zip(b).map(|(&x, &y)| x * y.to_f32()).sum()
}

pub(super) fn axpy_f16(y: &mut [f32], a: f32, x: &[f16]) {
    for (o, &v) in y.iter_mut().zip(x) {
        *o += a * v.to_f32();
    }
}

pub(super) fn sum_sq(x: &[f32]) -> f32 {
    // f64 accumulation as ggml's rms_norm does.
    x.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>() as f32
}

pub(super) fn silu_mul(gate: &[f32], up: &[f32], out: &mut [f32]) {
    for ((o, &g), &u) in out.iter_mut().zip(gate).zip(up) {
        *o = silu(g) * u;
    }
}
