//! x86-64 tables: AVX2 (+FMA, F16C) and AVX-512 (F, BW, VL). The tables are only handed out after
//! run-time detection, which is what makes the `unsafe` calls into `#[target_feature]` code sound.

use half::f16;

use super::{Kernels, KvElem};
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
    dot_rows_f16: avx2_dot_rows_f16,
    axpy_rows_f16: avx2_axpy_rows_f16,
    sum_sq: avx2_sum_sq,
    silu_mul: avx2_gated_mul::<false>,
    gelu_mul: avx2_gated_mul::<true>,
    exp_sub_sum: avx2_exp_sub_sum,
};

static AVX512: Kernels = Kernels {
    isa: Isa::Avx512,
    dot_rows_f16: avx512_dot_rows_f16,
    axpy_rows_f16: avx512_axpy_rows_f16,
    sum_sq: avx512_sum_sq,
    silu_mul: avx512_gated_mul::<false>,
    gelu_mul: avx512_gated_mul::<true>,
    exp_sub_sum: avx512_exp_sub_sum,
};

// The wrappers below are only reachable through the tables above, themselves only handed out by
// `avx2_table` / `avx512_table` after detecting the features each `#[target_feature]` body needs.

fn avx2_dot_rows_f16(q: &[f32], k: &[f16], stride: usize, out: &mut [f32]) {
    // SAFETY: only reachable via `avx2_table`, which checked avx2, fma and f16c.
    unsafe { avx2::dot_rows_f16(q, k, stride, out) }
}
fn avx2_axpy_rows_f16(out: &mut [f32], probs: &[f32], v: &[f16], stride: usize) {
    // SAFETY: only reachable via `avx2_table`, which checked avx2, fma and f16c.
    unsafe { avx2::axpy_rows_f16(out, probs, v, stride) }
}
fn avx2_sum_sq(x: &[f32]) -> f32 {
    // SAFETY: only reachable via `avx2_table`, which checked avx2, fma and f16c.
    unsafe { avx2::sum_sq(x) }
}
fn avx2_gated_mul<const GELU: bool>(g: &[f32], u: &[f32], o: &mut [f32]) {
    // SAFETY: only reachable via `avx2_table`, which checked avx2, fma and f16c.
    unsafe { avx2::gated_mul::<GELU>(g, u, o) }
}
fn avx2_exp_sub_sum(x: &mut [f32], max: f32) -> f32 {
    // SAFETY: only reachable via `avx2_table`, which checked avx2, fma and f16c.
    unsafe { avx2::exp_sub_sum(x, max) }
}
fn avx512_dot_rows_f16(q: &[f32], k: &[f16], stride: usize, out: &mut [f32]) {
    // SAFETY: only reachable via `avx512_table`, which checked avx512f, avx512bw and avx512vl.
    unsafe { avx512::dot_rows_f16(q, k, stride, out) }
}
fn avx512_axpy_rows_f16(out: &mut [f32], probs: &[f32], v: &[f16], stride: usize) {
    // SAFETY: only reachable via `avx512_table`, which checked avx512f, avx512bw and avx512vl.
    unsafe { avx512::axpy_rows_f16(out, probs, v, stride) }
}
fn avx512_sum_sq(x: &[f32]) -> f32 {
    // SAFETY: only reachable via `avx512_table`, which checked avx512f, avx512bw and avx512vl.
    unsafe { avx512::sum_sq(x) }
}
fn avx512_gated_mul<const GELU: bool>(g: &[f32], u: &[f32], o: &mut [f32]) {
    // SAFETY: only reachable via `avx512_table`, which checked avx512f, avx512bw and avx512vl.
    unsafe { avx512::gated_mul::<GELU>(g, u, o) }
}
fn avx512_exp_sub_sum(x: &mut [f32], max: f32) -> f32 {
    // SAFETY: only reachable via `avx512_table`, which checked avx512f, avx512bw and avx512vl.
    unsafe { avx512::exp_sub_sum(x, max) }
}

/// AVX-512 [`super::Kernels::dot_rows_multi`].
///
/// # Safety
/// The CPU must have avx512f, avx512bw and avx512vl.
pub(super) unsafe fn avx512_dot_rows_multi<T: KvElem>(
    q: &[f32],
    hd: usize,
    k: &[T],
    stride: usize,
    out: (&mut [f32], usize),
    n_rows: usize,
) {
    // SAFETY: the caller guarantees the features.
    unsafe { avx512::dot_rows_multi(q, hd, k, stride, out, n_rows) }
}

/// AVX-512 [`super::Kernels::axpy_rows_multi`].
///
/// # Safety
/// The CPU must have avx512f, avx512bw and avx512vl.
pub(super) unsafe fn avx512_axpy_rows_multi<T: KvElem>(
    acc: (&mut [f32], usize),
    probs: (&[f32], usize),
    v: &[T],
    stride: usize,
    n_rows: usize,
) {
    // SAFETY: the caller guarantees the features.
    unsafe { avx512::axpy_rows_multi(acc, probs, v, stride, n_rows) }
}

/// AVX-512 [`super::Kernels::scale_max`].
///
/// # Safety
/// The CPU must have avx512f, avx512bw and avx512vl.
pub(super) unsafe fn avx512_scale_max(x: &mut [f32], scale: f32) -> f32 {
    // SAFETY: the caller guarantees the features.
    unsafe { avx512::scale_max(x, scale) }
}

/// AVX-512 [`super::Kernels::scale`].
///
/// # Safety
/// The CPU must have avx512f, avx512bw and avx512vl.
pub(super) unsafe fn avx512_scale(x: &mut [f32], s: f32) {
    // SAFETY: the caller guarantees the features.
    unsafe { avx512::scale(x, s) }
}

/// AVX2 [`super::Kernels::dot_rows_group`].
///
/// # Safety
/// The CPU must have avx2, fma and f16c.
pub(super) unsafe fn avx2_dot_rows_group(
    q: (&[f32], usize),
    k: (&[f16], usize),
    out: (&mut [f32], usize),
    n_rows: usize,
) {
    // SAFETY: the caller guarantees the features.
    unsafe { avx2::dot_rows_group_f16(q, k, out, n_rows) }
}

/// AVX2 [`super::Kernels::axpy_rows_group`].
///
/// # Safety
/// The CPU must have avx2, fma and f16c.
pub(super) unsafe fn avx2_axpy_rows_group(
    acc: (&mut [f32], usize),
    probs: (&[f32], usize),
    v: (&[f16], usize),
    n_rows: usize,
) {
    // SAFETY: the caller guarantees the features.
    unsafe { avx2::axpy_rows_group_f16(acc, probs, v, n_rows) }
}
