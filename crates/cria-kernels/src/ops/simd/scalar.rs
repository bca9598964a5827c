//! Portable definitions of the primitives (the reference the SIMD tables are tested against).

use half::f16;

use crate::ops::{gelu_as_ggml, silu};

/// f16 → f32, exact for every input (subnormals, infinities, NaN), branch-free so loops vectorize:
/// exponent and mantissa shifted into f32 position, re-biased by a multiply with 2^112 (which also
/// normalises subnormals), Inf/NaN given the all-ones exponent. `half`'s own `to_f32` checks the CPU on
/// every call, an order of magnitude slower in these loops.
#[inline]
pub(super) fn f16_to_f32(h: f16) -> f32 {
    let h = u32::from(h.to_bits());
    let f = f32::from_bits((h & 0x7fff) << 13) * f32::from_bits(0x7780_0000);
    let inf_nan = if f >= 65536.0 { 0x7f80_0000 } else { 0 };
    f32::from_bits(f.to_bits() | inf_nan | (h & 0x8000) << 16)
}

pub(super) fn dot_rows_f16(q: &[f32], k: &[f16], stride: usize, out: &mut [f32]) {
    for (t, o) in out.iter_mut().enumerate() {
        *o = dot_f16(q, &k[t * stride..t * stride + q.len()]);
    }
}

/// Eight independent partial sums: plain Rust the compiler can vectorize (a single running sum cannot be
/// reordered, so it would not).
fn dot_f16(a: &[f32], b: &[f16]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ac, bc) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ac
        .remainder()
        .iter()
        .zip(bc.remainder())
        .map(|(&x, &y)| x * f16_to_f32(y))
        .sum();
    for (x, y) in ac.zip(bc) {
        for l in 0..8 {
            acc[l] += x[l] * f16_to_f32(y[l]);
        }
    }
    acc.iter().sum::<f32>() + tail
}

pub(super) fn axpy_rows_f16(out: &mut [f32], probs: &[f32], v: &[f16], stride: usize) {
    let n = out.len();
    for (t, &p) in probs.iter().enumerate() {
        for (o, &x) in out.iter_mut().zip(&v[t * stride..t * stride + n]) {
            *o += p * f16_to_f32(x);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_to_f32_is_exact_for_every_f16() {
        for bits in 0..=u16::MAX {
            let h = f16::from_bits(bits);
            let (got, want) = (f16_to_f32(h), h.to_f32());
            assert!(
                got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()),
                "{bits:#06x}"
            );
        }
    }
}
