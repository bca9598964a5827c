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
fn dot_f16(a: &[f32], b: &[f16]) -> f32 {
    let n = a.len().min(b.len());
    let (mut acc0, mut acc1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
    let mut i = 0;
    // SAFETY: each step reads a[i..i+16] (or +8) and b[i..i+16] (or +8) within n.
    unsafe {
        while i + 16 <= n {
            acc0 = _mm256_fmadd_ps(
                _mm256_loadu_ps(a.as_ptr().add(i)),
                load_f16(b.as_ptr().add(i)),
                acc0,
            );
            let (a1, b1) = (a.as_ptr().add(i + 8), b.as_ptr().add(i + 8));
            acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a1), load_f16(b1), acc1);
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
    let tail: f32 = a[i..n]
        .iter()
        .zip(&b[i..n])
        .map(|(&x, &y)| x * y.to_f32())
        .sum();
    hsum(_mm256_add_ps(acc0, acc1)) + tail
}

#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn dot_rows_f16(q: &[f32], k: &[f16], stride: usize, out: &mut [f32]) {
    for (t, o) in out.iter_mut().enumerate() {
        *o = dot_f16(q, &k[t * stride..t * stride + q.len()]);
    }
}

/// `out += Σ_t probs[t] · v[t*stride ..][..out.len()]`, 32 columns at a time held in 4 registers; columns
/// past the last multiple of 8 in scalar.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn axpy_rows_f16(out: &mut [f32], probs: &[f32], v: &[f16], stride: usize) {
    let n = out.len();
    if let Some(last) = probs.len().checked_sub(1) {
        assert!(last * stride + n <= v.len(), "axpy_rows_f16: v too short");
    }
    let n8 = n - n % 8;
    let mut c = 0;
    while c < n8 {
        let regs = ((n8 - c) / 8).min(4);
        // SAFETY: out[c..c+8*regs] is in bounds (c + 8*regs <= n8 <= n); v[t*stride + c ..][..8*regs] is
        // in bounds by the assert above.
        unsafe {
            let op = out.as_mut_ptr().add(c);
            let mut acc: [_; 4] = std::array::from_fn(|j| {
                if j < regs {
                    _mm256_loadu_ps(op.add(8 * j))
                } else {
                    _mm256_setzero_ps()
                }
            });
            for (t, &p) in probs.iter().enumerate() {
                let pv = _mm256_set1_ps(p);
                let vp = v.as_ptr().add(t * stride + c);
                for (j, a) in acc.iter_mut().enumerate().take(regs) {
                    *a = _mm256_fmadd_ps(pv, load_f16(vp.add(8 * j)), *a);
                }
            }
            for (j, a) in acc.into_iter().enumerate().take(regs) {
                _mm256_storeu_ps(op.add(8 * j), a);
            }
        }
        c += 8 * regs;
    }
    for (t, &p) in probs.iter().enumerate() {
        for (o, x) in out[n8..]
            .iter_mut()
            .zip(&v[t * stride + n8..t * stride + n])
        {
            *o += p * x.to_f32();
        }
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn sum_sq(x: &[f32]) -> f32 {
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
fn exp(x0: __m256) -> __m256 {
    let x = _mm256_min_ps(
        _mm256_max_ps(x0, _mm256_set1_ps(E::MIN)),
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
    let keep = _mm256_cmp_ps::<_CMP_GE_OQ>(x0, _mm256_set1_ps(E::MIN));
    _mm256_and_ps(keep, _mm256_mul_ps(p, _mm256_castsi256_ps(pow2)))
}

/// `silu(x) = x / (1 + e^-x)`.
#[target_feature(enable = "avx2,fma,f16c")]
fn silu(x: __m256) -> __m256 {
    let e = exp(_mm256_sub_ps(_mm256_setzero_ps(), x));
    _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0), e))
}

/// ggml's GELU (see `ops::gelu_as_ggml`): round to f16, look up the table, back to f32; tails clamped.
#[target_feature(enable = "avx2,fma,f16c")]
fn gelu(x: __m256, table: &[u16; 65536]) -> __m256 {
    let mut h = [0u16; 8];
    let hx = _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(x);
    // SAFETY: `h` is 16 writable bytes.
    unsafe { _mm_storeu_si128(h.as_mut_ptr().cast(), hx) };
    for v in h.iter_mut() {
        *v = table[usize::from(*v)];
    }
    // SAFETY: `h` is 16 readable bytes.
    let g = _mm256_cvtph_ps(unsafe { _mm_loadu_si128(h.as_ptr().cast()) });
    let hi = _mm256_cmp_ps::<_CMP_GE_OQ>(x, _mm256_set1_ps(10.0));
    let lo = _mm256_cmp_ps::<_CMP_LE_OQ>(x, _mm256_set1_ps(-10.0));
    _mm256_andnot_ps(lo, _mm256_blendv_ps(g, x, hi))
}

#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn gated_mul<const GELU: bool>(g: &[f32], u: &[f32], out: &mut [f32]) {
    let n = g.len().min(u.len()).min(out.len());
    let table = crate::ops::act::gelu_f16_table();
    let mut i = 0;
    // SAFETY: each iteration reads g/u[i..i+8] and writes out[i..i+8] with i + 8 <= n.
    unsafe {
        while i + 8 <= n {
            let x = _mm256_loadu_ps(g.as_ptr().add(i));
            let gv = if GELU { gelu(x, table) } else { silu(x) };
            _mm256_storeu_ps(
                out.as_mut_ptr().add(i),
                _mm256_mul_ps(gv, _mm256_loadu_ps(u.as_ptr().add(i))),
            );
            i += 8;
        }
    }
    super::super::scalar::gated_mul::<GELU>(&g[i..n], &u[i..n], &mut out[i..n]);
}

#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn exp_sub_sum(x: &mut [f32], max: f32) -> f32 {
    let (n, mv) = (x.len(), _mm256_set1_ps(max));
    let mut acc = _mm256_setzero_ps();
    let mut i = 0;
    // SAFETY: each iteration reads and writes x[i..i+8] with i + 8 <= n.
    unsafe {
        while i + 8 <= n {
            let p = x.as_mut_ptr().add(i);
            let e = exp(_mm256_sub_ps(_mm256_loadu_ps(p), mv));
            _mm256_storeu_ps(p, e);
            acc = _mm256_add_ps(acc, e);
            i += 8;
        }
    }
    hsum(acc) + super::super::scalar::exp_sub_sum(&mut x[i..], max)
}
