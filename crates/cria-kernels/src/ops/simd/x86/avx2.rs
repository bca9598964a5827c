//! AVX2 + FMA + F16C bodies. Callers guarantee the features (see `x86.rs`).

use std::arch::x86_64::*;

use half::f16;

use super::super::exp_consts as E;

#[target_feature(enable = "avx2,fma,f16c")]
fn hsum(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_movehdup_ps(s));
    _mm_cvtss_f32(s)
}

/// 8 f16 at `p` (unaligned) as f32.
///
/// # Safety
/// `p..p+8` must be readable.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn load_f16(p: *const f16) -> __m256 {
    // SAFETY: the caller guarantees 16 readable bytes at `p`; loadu has no alignment need.
    unsafe { _mm256_cvtph_ps(_mm_loadu_si128(p.cast())) }
}

#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn dot_f16(a: &[f32], b: &[f16]) -> f32 {
    let n = a.len().min(b.len());
    let (mut acc0, mut acc1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
    let mut i = 0;
    // SAFETY: each iteration reads a[i..i+16] and b[i..i+16] with i + 16 <= n.
    unsafe {
        while i + 16 <= n {
            acc0 = _mm256_fmadd_ps(
                _mm256_loadu_ps(a.as_ptr().add(i)),
                load_f16(b.as_ptr().add(i)),
                acc0,
            );
            acc1 = _mm256_fmadd_ps(
                _mm256_loadu_ps(a.as_ptr().add(i + 8)),
                load_f16(b.as_ptr().add(i + 8)),
                acc1,
            );
            i += 16;
        }
        if i + 8 <= n {
            acc0 = _mm256_fmadd_ps(
                _mm256_loadu_ps(a.as_ptr().add(i)),
                load_f16(b.as_ptr().add(i)),
                acc0,
            );
            i += 8;
        }
    }
    hsum(_mm256_add_ps(acc0, acc1)) + super::dot_f16_tail(&a[i..n], &b[i..n])
}

#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn axpy_f16(y: &mut [f32], a: f32, x: &[f16]) {
    let n = y.len().min(x.len());
    let av = _mm256_set1_ps(a);
    let mut i = 0;
    // SAFETY: each iteration reads x[i..i+8] and reads/writes y[i..i+8] with i + 8 <= n.
    unsafe {
        while i + 8 <= n {
            let p = y.as_mut_ptr().add(i);
            _mm256_storeu_ps(
                p,
                _mm256_fmadd_ps(av, load_f16(x.as_ptr().add(i)), _mm256_loadu_ps(p)),
            );
            i += 8;
        }
    }
    for (o, v) in y[i..n].iter_mut().zip(&x[i..n]) {
        *o += a * v.to_f32();
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn sum_sq(x: &[f32]) -> f32 {
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut chunks = x.chunks_exact(32);
    for c in &mut chunks {
        for (k, a) in acc.iter_mut().enumerate() {
            // SAFETY: c has 32 elements; k*8+8 <= 32.
            let v = unsafe { _mm256_loadu_ps(c.as_ptr().add(k * 8)) };
            *a = _mm256_fmadd_ps(v, v, *a);
        }
    }
    let s = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
    hsum(s) + chunks.remainder().iter().map(|v| v * v).sum::<f32>()
}

#[target_feature(enable = "avx2,fma,f16c")]
fn exp(x: __m256) -> __m256 {
    let x = _mm256_min_ps(
        _mm256_max_ps(x, _mm256_set1_ps(E::MIN)),
        _mm256_set1_ps(E::MAX),
    );
    let ni = _mm256_cvtps_epi32(_mm256_mul_ps(x, _mm256_set1_ps(E::LOG2E)));
    let n = _mm256_cvtepi32_ps(ni);
    let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(E::LN2_HI), x);
    let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(E::LN2_LO), r);
    let mut p = _mm256_set1_ps(E::POLY[0]);
    for &c in &E::POLY[1..] {
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(c));
    }
    let pow2 = _mm256_slli_epi32::<23>(_mm256_add_epi32(ni, _mm256_set1_epi32(127)));
    _mm256_mul_ps(p, _mm256_castsi256_ps(pow2))
}

#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn silu_mul(gate: &[f32], up: &[f32], out: &mut [f32]) {
    let n = gate.len().min(up.len()).min(out.len());
    let one = _mm256_set1_ps(1.0);
    let mut i = 0;
    // SAFETY: each iteration reads gate/up[i..i+8] and writes out[i..i+8] with i + 8 <= n.
    unsafe {
        while i + 8 <= n {
            let g = _mm256_loadu_ps(gate.as_ptr().add(i));
            let e = exp(_mm256_sub_ps(_mm256_setzero_ps(), g));
            let s = _mm256_div_ps(g, _mm256_add_ps(one, e));
            _mm256_storeu_ps(
                out.as_mut_ptr().add(i),
                _mm256_mul_ps(s, _mm256_loadu_ps(up.as_ptr().add(i))),
            );
            i += 8;
        }
    }
    for j in i..n {
        out[j] = crate::ops::silu(gate[j]) * up[j];
    }
}
