//! Portable definitions of the primitives (the reference the SIMD tables are tested against).

use half::f16;

use crate::ops::{gelu_as_ggml, silu};

pub(super) fn dot_rows_f16(q: &[f32], k: &[f16], stride: usize, out: &mut [f32]) {
    for (t, o) in out.iter_mut().enumerate() {
        let row = &k[t * stride..t * stride + q.len()];
        *o = q.iter().zip(row).map(|(&x, &y)| x * y.to_f32()).sum();
    }
}

pub(super) fn axpy_rows_f16(out: &mut [f32], probs: &[f32], v: &[f16], stride: usize) {
    let n = out.len();
    for (t, &p) in probs.iter().enumerate() {
        for (o, x) in out.iter_mut().zip(&v[t * stride..t * stride + n]) {
            *o += p * x.to_f32();
        }
    }
}

pub(super) fn sum_sq(x: &[f32]) -> f32 {
    // f64 accumulation as ggml's rms_norm does.
    x.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>() as f32
}

pub(super) fn gated_mul<const GELU: bool>(gate: &[f32], up: &[f32], out: &mut [f32]) {
    for ((o, &g), &u) in out.iter_mut().zip(gate).zip(up) {
        *o = if GELU { gelu_as_ggml(g) } else { silu(g) } * u;
    }
}

pub(super) fn exp_sub_sum(x: &mut [f32], max: f32) -> f32 {
    let mut sum = 0.0f64;
    for v in x.iter_mut() {
        *v = (*v - max).exp();
        sum += f64::from(*v);
    }
    sum as f32
}
