//! x86-64 tables: AVX2 (+FMA, F16C) and AVX-512 (F, BW, VL). The tables are only handed out after
//! run-time detection, which is what makes the `unsafe` calls into `#[target_feature]` code sound.

use half::f16;

use super::Kernels;
use crate::isa::Isa;

mod avx2;
mod avx512;

pub(super) fn avx2_table() -> Option<&'static Kernels> {
    let ok = is_x86_feature_detected!("avx2")
        && is_x86_feature_detected!("fma")
        && is_x86_feature_detected!("f16c");
    ok.then_some(&AVX2)
}

pub(super) fn avx512_table() -> Option<&'static Kernels> {
    let ok = is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("avx512vl");
    ok.then_some(&AVX512)
}

static AVX2: Kernels = Kernels {
    isa: Isa::Avx2,
    dot_f16: avx2_dot_f16,
    axpy_f16: avx2_axpy_f16,
    sum_sq: avx2_sum_sq,
    silu_mul: avx2_silu_mul,
};

static AVX512: Kernels = Kernels {
    isa: Isa::Avx512,
    dot_f16: avx512_dot_f16,
    axpy_f16: avx512_axpy_f16,
    sum_sq: avx512_sum_sq,
    silu_mul: avx512_silu_mul,
};

// The wrappers below are only reachable through the tables above, themselves only handed out by
// `avx2_table` / `avx512_table` after detecting the features each `#[target_feature]` body needs.

fn avx2_dot_f16(a: &[f32], b: &[f16]) -> f32 {
    // SAFETY: only reachable via `avx2_table`, which checked avx2, fma and f16c.
    unsafe { avx2::dot_f16(a, b) }
}
fn avx2_axpy_f16(y: &mut [f32], a: f32, x: &[f16]) {
    // SAFETY: only reachable via `avx2_table`, which checked avx2, fma and f16c.
    unsafe { avx2::axpy_f16(y, a, x) }
}
fn avx2_sum_sq(x: &[f32]) -> f32 {
    // SAFETY: only reachable via `avx2_table`, which checked avx2, fma and f16c.
    unsafe { avx2::sum_sq(x) }
}
fn avx2_silu_mul(g: &[f32], u: &[f32], o: &mut [f32]) {
    // SAFETY: only reachable via `avx2_table`, which checked avx2, fma and f16c.
    unsafe { avx2::silu_mul(g, u, o) }
}
fn avx512_dot_f16(a: &[f32], b: &[f16]) -> f32 {
    // SAFETY: only reachable via `avx512_table`, which checked avx512f, avx512bw and avx512vl.
    unsafe { avx512::dot_f16(a, b) }
}
fn avx512_axpy_f16(y: &mut [f32], a: f32, x: &[f16]) {
    // SAFETY: only reachable via `avx512_table`, which checked avx512f, avx512bw and avx512vl.
    unsafe { avx512::axpy_f16(y, a, x) }
}
fn avx512_sum_sq(x: &[f32]) -> f32 {
    // SAFETY: only reachable via `avx512_table`, which checked avx512f, avx512bw and avx512vl.
    unsafe { avx512::sum_sq(x) }
}
fn avx512_silu_mul(g: &[f32], u: &[f32], o: &mut [f32]) {
    // SAFETY: only reachable via `avx512_table`, which checked avx512f, avx512bw and avx512vl.
    unsafe { avx512::silu_mul(g, u, o) }
}

/// Scalar tail shared by the SIMD bodies.
fn dot_f16_tail(a: &[f32], b: &[f16]) -> f32 {
    a.iter().zip(b).map(|(&x, &y)| x * y.to_f32()).sum()
}
