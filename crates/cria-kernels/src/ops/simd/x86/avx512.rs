//! AVX-512 (F, BW, VL) bodies; tails by masked loads and stores. Callers guarantee the features.

use std::arch::x86_64::*;

use half::f16;

use super::super::exp_consts as E;

/// Mask of the first `n` of 16 lanes (`n <= 16`).
fn lanes(n: usize) -> __mmask16 {
    if n >= 16 { 0xffff } else { (1u16 << n) - 1 }
}

/// The first `n` (<= 16) f16 at `p` as f32, zeros beyond.
///
/// # Safety
/// `p..p+n` must be readable.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
unsafe fn load_f16(p: *const f16, n: usize) -> __m512 {
    // SAFETY: masked-off lanes are not accessed; the caller guarantees the first n.
    unsafe { _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(lanes(n), p.cast())) }
}

/// # Safety
/// `p..p+n` must be readable.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
unsafe fn load_f32(p: *const f32, n: usize) -> __m512 {
    // SAFETY: masked-off lanes are not accessed; the caller guarantees the first n.
    unsafe { _mm512_maskz_loadu_ps(lanes(n), p) }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
pub(super) unsafe fn dot_f16(a: &[f32], b: &[f16]) -> f32 {
    let n = a.len().min(b.len());
    let (mut acc0, mut acc1) = (_mm512_setzero_ps(), _mm512_setzero_ps());
    let mut i = 0;
    // SAFETY: every load covers [i, i + m) with m = min(16, n - i) or 16 when i + 32 <= n.
    unsafe {
        while i + 32 <= n {
            acc0 = _mm512_fmadd_ps(
                load_f32(a.as_ptr().add(i), 16),
                load_f16(b.as_ptr().add(i), 16),
                acc0,
            );
            acc1 = _mm512_fmadd_ps(
                load_f32(a.as_ptr().add(i + 16), 16),
                load_f16(b.as_ptr().add(i + 16), 16),
                acc1,
            );
            i += 32;
        }
        while i < n {
            let m = (n - i).min(16);
            acc0 = _mm512_fmadd_ps(
                load_f32(a.as_ptr().add(i), m),
                load_f16(b.as_ptr().add(i), m),
                acc0,
            );
            i += m;
        }
    }
    _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1))
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
pub(super) unsafe fn axpy_f16(y: &mut [f32], a: f32, x: &[f16]) {
    let n = y.len().min(x.len());
    let av = _mm512_set1_ps(a);
    let mut i = 0;
    // SAFETY: each step reads x[i..i+m] and reads/writes y[i..i+m], m = min(16, n - i).
    unsafe {
        while i < n {
            let m = (n - i).min(16);
            let p = y.as_mut_ptr().add(i);
            let r = _mm512_fmadd_ps(av, load_f16(x.as_ptr().add(i), m), load_f32(p, m));
            _mm512_mask_storeu_ps(p, lanes(m), r);
            i += m;
        }
    }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
pub(super) unsafe fn sum_sq(x: &[f32]) -> f32 {
    let (mut acc0, mut acc1) = (_mm512_setzero_ps(), _mm512_setzero_ps());
    let n = x.len();
    let mut i = 0;
    // SAFETY: every load covers [i, i + m) within x.
    unsafe {
        while i + 32 <= n {
            let (v0, v1) = (
                load_f32(x.as_ptr().add(i), 16),
                load_f32(x.as_ptr().add(i + 16), 16),
            );
            acc0 = _mm512_fmadd_ps(v0, v0, acc0);
            acc1 = _mm512_fmadd_ps(v1, v1, acc1);
            i += 32;
        }
        while i < n {
            let m = (n - i).min(16);
            let v = load_f32(x.as_ptr().add(i), m);
            acc0 = _mm512_fmadd_ps(v, v, acc0);
            i += m;
        }
    }
    _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1))
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
fn exp(x: __m512) -> __m512 {
    let x = _mm512_min_ps(
        _mm512_max_ps(x, _mm512_set1_ps(E::MIN)),
        _mm512_set1_ps(E::MAX),
    );
    let ni = _mm512_cvtps_epi32(_mm512_mul_ps(x, _mm512_set1_ps(E::LOG2E)));
    let n = _mm512_cvtepi32_ps(ni);
    let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(E::LN2_HI), x);
    let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(E::LN2_LO), r);
    let mut p = _mm512_set1_ps(E::POLY[0]);
    for &c in &E::POLY[1..] {
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c));
    }
    let pow2 = _mm512_slli_epi32::<23>(_mm512_add_epi32(ni, _mm512_set1_epi32(127)));
    _mm512_mul_ps(p, _mm512_castsi512_ps(pow2))
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
pub(super) unsafe fn silu_mul(gate: &[f32], up: &[f32], out: &mut [f32]) {
    let n = gate.len().min(up.len()).min(out.len());
    let one = _mm512_set1_ps(1.0);
    let mut i = 0;
    // SAFETY: each step reads gate/up[i..i+m] and writes out[i..i+m], m = min(16, n - i).
    unsafe {
        while i < n {
            let m = (n - i).min(16);
            let g = load_f32(gate.as_ptr().add(i), m);
            let s = _mm512_div_ps(
                g,
                _mm512_add_ps(one, exp(_mm512_sub_ps(_mm512_setzero_ps(), g))),
            );
            let r = _mm512_mul_ps(s, load_f32(up.as_ptr().add(i), m));
            _mm512_mask_storeu_ps(out.as_mut_ptr().add(i), lanes(m), r);
            i += m;
        }
    }
}
