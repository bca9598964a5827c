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

/// # Safety
/// `p..p+n` must be writable.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
unsafe fn store_f32(p: *mut f32, n: usize, v: __m512) {
    // SAFETY: masked-off lanes are not accessed; the caller guarantees the first n.
    unsafe { _mm512_mask_storeu_ps(p, lanes(n), v) }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
fn dot_f16(a: &[f32], b: &[f16]) -> f32 {
    let n = a.len().min(b.len());
    let (mut acc0, mut acc1) = (_mm512_setzero_ps(), _mm512_setzero_ps());
    let mut i = 0;
    // SAFETY: every load covers [i, i + m) within both slices (m = 16 when i + 32 <= n, else min(16, n - i)).
    unsafe {
        while i + 32 <= n {
            acc0 = _mm512_fmadd_ps(
                load_f32(a.as_ptr().add(i), 16),
                load_f16(b.as_ptr().add(i), 16),
                acc0,
            );
            let (a1, b1) = (a.as_ptr().add(i + 16), b.as_ptr().add(i + 16));
            acc1 = _mm512_fmadd_ps(load_f32(a1, 16), load_f16(b1, 16), acc1);
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
pub(super) fn dot_rows_f16(q: &[f32], k: &[f16], stride: usize, out: &mut [f32]) {
    // The usual head sizes keep q in registers across rows; the arithmetic is `dot_f16`'s, bit for bit.
    match q.len() {
        64 => dot_rows_fixed::<4>(q, k, stride, out),
        128 => dot_rows_fixed::<8>(q, k, stride, out),
        256 => dot_rows_fixed::<16>(q, k, stride, out),
        _ => {
            for (t, o) in out.iter_mut().enumerate() {
                *o = dot_f16(q, &k[t * stride..t * stride + q.len()]);
            }
        }
    }
}

/// [`dot_rows_f16`] for `q.len() == 16 * NQ` (`NQ` even): the same two accumulators and the same order of
/// operations as [`dot_f16`] (even 16-lane chunks into the first, odd into the second), with `q` loaded once.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
fn dot_rows_fixed<const NQ: usize>(q: &[f32], k: &[f16], stride: usize, out: &mut [f32]) {
    const { assert!(NQ.is_multiple_of(2)) };
    assert_eq!(q.len(), 16 * NQ, "dot_rows_fixed: q length");
    if let Some(last) = out.len().checked_sub(1) {
        assert!(
            last * stride + q.len() <= k.len(),
            "dot_rows_f16: k too short"
        );
    }
    let mut qr = [_mm512_setzero_ps(); NQ];
    // SAFETY: q holds 16 * NQ floats (asserted); row t reads k[t*stride .. t*stride + 16*NQ], in bounds by the
    // assert above.
    unsafe {
        for (j, r) in qr.iter_mut().enumerate() {
            *r = _mm512_loadu_ps(q.as_ptr().add(16 * j));
        }
        for (t, o) in out.iter_mut().enumerate() {
            let p = k.as_ptr().add(t * stride);
            let (mut acc0, mut acc1) = (_mm512_setzero_ps(), _mm512_setzero_ps());
            for j in (0..NQ).step_by(2) {
                let k0 = _mm512_cvtph_ps(_mm256_loadu_si256(p.add(16 * j).cast()));
                let k1 = _mm512_cvtph_ps(_mm256_loadu_si256(p.add(16 * j + 16).cast()));
                acc0 = _mm512_fmadd_ps(qr[j], k0, acc0);
                acc1 = _mm512_fmadd_ps(qr[j + 1], k1, acc1);
            }
            *o = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
        }
    }
}

/// `out += Σ_t probs[t] · v[t*stride ..][..out.len()]`, 64 columns at a time held in 4 registers.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
pub(super) fn axpy_rows_f16(out: &mut [f32], probs: &[f32], v: &[f16], stride: usize) {
    let n = out.len();
    if let Some(last) = probs.len().checked_sub(1) {
        assert!(last * stride + n <= v.len(), "axpy_rows_f16: v too short");
    }
    let mut c = 0;
    while c < n {
        let w = (n - c).min(64);
        let m = |j: usize| w.saturating_sub(16 * j).min(16);
        // SAFETY: out[c..c+w] is in bounds; v[t*stride + c ..][..w] is in bounds by the assert above.
        unsafe {
            let op = out.as_mut_ptr().add(c);
            let mut acc: [_; 4] = std::array::from_fn(|j| {
                if m(j) > 0 {
                    load_f32(op.add(16 * j), m(j))
                } else {
                    _mm512_setzero_ps()
                }
            });
            for (t, &p) in probs.iter().enumerate() {
                let pv = _mm512_set1_ps(p);
                let vp = v.as_ptr().add(t * stride + c);
                for (j, a) in acc.iter_mut().enumerate() {
                    if m(j) > 0 {
                        *a = _mm512_fmadd_ps(pv, load_f16(vp.add(16 * j), m(j)), *a);
                    }
                }
            }
            for (j, a) in acc.into_iter().enumerate() {
                if m(j) > 0 {
                    store_f32(op.add(16 * j), m(j), a);
                }
            }
        }
        c += w;
    }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
pub(super) fn sum_sq(x: &[f32]) -> f32 {
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
fn exp(x0: __m512) -> __m512 {
    let x = _mm512_min_ps(
        _mm512_max_ps(x0, _mm512_set1_ps(E::MIN)),
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
    let keep = _mm512_cmp_ps_mask::<_CMP_GE_OQ>(x0, _mm512_set1_ps(E::MIN));
    _mm512_maskz_mov_ps(keep, _mm512_mul_ps(p, _mm512_castsi512_ps(pow2)))
}

/// `silu(x) = x / (1 + e^-x)`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
fn silu(x: __m512) -> __m512 {
    let e = exp(_mm512_sub_ps(_mm512_setzero_ps(), x));
    _mm512_div_ps(x, _mm512_add_ps(_mm512_set1_ps(1.0), e))
}

/// ggml's GELU (see `ops::gelu_as_ggml`): round to f16, look up the table, back to f32; tails clamped.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
fn gelu(x: __m512, table: &[u16; 65536]) -> __m512 {
    let mut h = [0u16; 16];
    let hx = _mm512_cvtps_ph::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(x);
    // SAFETY: `h` is 32 writable bytes.
    unsafe { _mm256_storeu_si256(h.as_mut_ptr().cast(), hx) };
    for v in h.iter_mut() {
        *v = table[usize::from(*v)];
    }
    // SAFETY: `h` is 32 readable bytes.
    let g = _mm512_cvtph_ps(unsafe { _mm256_loadu_si256(h.as_ptr().cast()) });
    let hi = _mm512_cmp_ps_mask::<_CMP_GE_OQ>(x, _mm512_set1_ps(10.0));
    let lo = _mm512_cmp_ps_mask::<_CMP_LE_OQ>(x, _mm512_set1_ps(-10.0));
    _mm512_maskz_mov_ps(!lo, _mm512_mask_blend_ps(hi, g, x))
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
pub(super) fn gated_mul<const GELU: bool>(g: &[f32], u: &[f32], out: &mut [f32]) {
    let n = g.len().min(u.len()).min(out.len());
    let table = crate::ops::act::gelu_f16_table();
    let mut i = 0;
    // SAFETY: each step reads g/u[i..i+m] and writes out[i..i+m], m = min(16, n - i).
    unsafe {
        while i < n {
            let m = (n - i).min(16);
            let x = load_f32(g.as_ptr().add(i), m);
            let a = if GELU { gelu(x, table) } else { silu(x) };
            let r = _mm512_mul_ps(a, load_f32(u.as_ptr().add(i), m));
            store_f32(out.as_mut_ptr().add(i), m, r);
            i += m;
        }
    }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
pub(super) fn exp_sub_sum(x: &mut [f32], max: f32) -> f32 {
    let (n, mv) = (x.len(), _mm512_set1_ps(max));
    let mut acc = _mm512_setzero_ps();
    let mut i = 0;
    // SAFETY: each step reads and writes x[i..i+m], m = min(16, n - i). Lanes past m are zeroed before
    // the sum (exp of their 0 - max would not be 0).
    unsafe {
        while i < n {
            let m = (n - i).min(16);
            let p = x.as_mut_ptr().add(i);
            let e = _mm512_maskz_mov_ps(lanes(m), exp(_mm512_sub_ps(load_f32(p, m), mv)));
            store_f32(p, m, e);
            acc = _mm512_add_ps(acc, e);
            i += m;
        }
    }
    _mm512_reduce_add_ps(acc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_head_sizes_equal_the_row_by_row_dot_bit_for_bit() {
        if !(is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512bw")) {
            return;
        }
        for dim in [64, 128, 256] {
            let (rows, stride) = (7, dim + 3);
            let q: Vec<f32> = (0..dim).map(|i| (i as f32 * 0.37).sin()).collect();
            let k: Vec<f16> = (0..rows * stride)
                .map(|i| f16::from_f32((i as f32 * 0.11).cos()))
                .collect();
            let mut got = vec![0.0; rows];
            // SAFETY: the features were detected above.
            unsafe { dot_rows_f16(&q, &k, stride, &mut got) };
            for (t, g) in got.iter().enumerate() {
                // SAFETY: as above.
                let want = unsafe { dot_f16(&q, &k[t * stride..t * stride + dim]) };
                assert_eq!(g.to_bits(), want.to_bits(), "dim {dim} row {t}");
            }
        }
    }
}

/// Several queries against the same K rows: `out[g*out_stride + t] = q[g*hd..][..hd] · k[t*stride..][..hd]` for
/// `g < q.len() / hd`, `t < n_rows`, with `hd` 64, 128 or 256. Each K row is converted from f16 once for all
/// queries; each dot is [`dot_rows_fixed`]'s, bit for bit (its two accumulators, its chunk order, its reduction).
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
pub(super) fn dot_rows_f16_multi(
    q: &[f32],
    hd: usize,
    k: &[f16],
    stride: usize,
    (out, out_stride): (&mut [f32], usize),
    n_rows: usize,
) {
    // Queries in groups of 8, 4, 2, 1: up to 16 accumulators plus two K chunks stay in registers.
    let mut g0 = 0;
    let n_q = q.len() / hd;
    while g0 < n_q {
        let g = [8, 4, 2, 1]
            .into_iter()
            .find(|&g| g <= n_q - g0)
            .unwrap_or(1);
        let qg = &q[g0 * hd..(g0 + g) * hd];
        let og = &mut out[g0 * out_stride..];
        match (hd, g) {
            (64, 8) => dot_multi_fixed::<4, 8>(qg, k, stride, og, out_stride, n_rows),
            (64, 4) => dot_multi_fixed::<4, 4>(qg, k, stride, og, out_stride, n_rows),
            (64, 2) => dot_multi_fixed::<4, 2>(qg, k, stride, og, out_stride, n_rows),
            (128, 8) => dot_multi_fixed::<8, 8>(qg, k, stride, og, out_stride, n_rows),
            (128, 4) => dot_multi_fixed::<8, 4>(qg, k, stride, og, out_stride, n_rows),
            (128, 2) => dot_multi_fixed::<8, 2>(qg, k, stride, og, out_stride, n_rows),
            (256, 8) => dot_multi_fixed::<16, 8>(qg, k, stride, og, out_stride, n_rows),
            (256, 4) => dot_multi_fixed::<16, 4>(qg, k, stride, og, out_stride, n_rows),
            (256, 2) => dot_multi_fixed::<16, 2>(qg, k, stride, og, out_stride, n_rows),
            _ => {
                for (i, qi) in qg.chunks_exact(hd).enumerate() {
                    dot_rows_f16(qi, k, stride, &mut og[i * out_stride..][..n_rows]);
                }
            }
        }
        g0 += g;
    }
}

/// [`dot_rows_f16_multi`] for `G` queries of `16 * NQ` floats.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
fn dot_multi_fixed<const NQ: usize, const G: usize>(
    q: &[f32],
    k: &[f16],
    stride: usize,
    out: &mut [f32],
    out_stride: usize,
    n_rows: usize,
) {
    const { assert!(NQ.is_multiple_of(2)) };
    let hd = 16 * NQ;
    assert_eq!(q.len(), G * hd, "dot_multi_fixed: q length");
    if let Some(last) = n_rows.checked_sub(1) {
        assert!(
            last * stride + hd <= k.len(),
            "dot_rows_f16_multi: k too short"
        );
        assert!(
            (G - 1) * out_stride + n_rows <= out.len(),
            "dot_rows_f16_multi: out too short"
        );
    }
    // SAFETY: query g reads q[g*hd .. (g+1)*hd] (q holds G*hd, asserted); row t reads k[t*stride ..][..hd] and
    // writes out[g*out_stride + t], both in bounds by the asserts above.
    unsafe {
        let qp = q.as_ptr();
        for t in 0..n_rows {
            let p = k.as_ptr().add(t * stride);
            let mut acc0 = [_mm512_setzero_ps(); G];
            let mut acc1 = [_mm512_setzero_ps(); G];
            for j in (0..NQ).step_by(2) {
                let k0 = _mm512_cvtph_ps(_mm256_loadu_si256(p.add(16 * j).cast()));
                let k1 = _mm512_cvtph_ps(_mm256_loadu_si256(p.add(16 * j + 16).cast()));
                for g in 0..G {
                    let qj = qp.add(g * hd + 16 * j);
                    acc0[g] = _mm512_fmadd_ps(_mm512_loadu_ps(qj), k0, acc0[g]);
                    acc1[g] = _mm512_fmadd_ps(_mm512_loadu_ps(qj.add(16)), k1, acc1[g]);
                }
            }
            for g in 0..G {
                *out.get_unchecked_mut(g * out_stride + t) =
                    _mm512_reduce_add_ps(_mm512_add_ps(acc0[g], acc1[g]));
            }
        }
    }
}

/// Several queries against the same V rows: `acc[g*n..][..n] += Σ_t probs[g*probs_stride + t] · v[t*stride..][..n]`
/// for `g < acc.len() / n`, `t < n_rows`. Each V row is converted once for all queries; per column, each query
/// gets [`axpy_rows_f16`]'s operations in its order (one FMA per row, rows in order).
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
pub(super) fn axpy_rows_f16_multi(
    (acc, n): (&mut [f32], usize),
    (probs, probs_stride): (&[f32], usize),
    v: &[f16],
    stride: usize,
    n_rows: usize,
) {
    let n_q = acc.len() / n;
    let mut g0 = 0;
    while g0 < n_q {
        let g = [8, 4, 2, 1]
            .into_iter()
            .find(|&g| g <= n_q - g0)
            .unwrap_or(1);
        let a = &mut acc[g0 * n..(g0 + g) * n];
        let p = &probs[g0 * probs_stride..];
        match g {
            8 => axpy_multi_fixed::<8>(a, n, (p, probs_stride), v, stride, n_rows),
            4 => axpy_multi_fixed::<4>(a, n, (p, probs_stride), v, stride, n_rows),
            2 => axpy_multi_fixed::<2>(a, n, (p, probs_stride), v, stride, n_rows),
            _ => axpy_rows_f16(a, &p[..n_rows], v, stride),
        }
        g0 += g;
    }
}

/// [`axpy_rows_f16_multi`] for `G` queries, 32 columns at a time (2 registers a query).
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
fn axpy_multi_fixed<const G: usize>(
    acc: &mut [f32],
    n: usize,
    (probs, ps): (&[f32], usize),
    v: &[f16],
    stride: usize,
    n_rows: usize,
) {
    assert_eq!(acc.len(), G * n, "axpy_rows_f16_multi: acc length");
    if let Some(last) = n_rows.checked_sub(1) {
        assert!(
            last * stride + n <= v.len(),
            "axpy_rows_f16_multi: v too short"
        );
        assert!(
            (G - 1) * ps + n_rows <= probs.len(),
            "axpy_rows_f16_multi: probs too short"
        );
    }
    let mut c = 0;
    while c < n {
        let (m0, m1) = ((n - c).min(16), (n - c).saturating_sub(16).min(16));
        // SAFETY: acc[g*n + c ..][..m0 + m1] is in bounds (c + m0 + m1 <= n); v[t*stride + c ..][..m0 + m1] and
        // probs[g*ps + t] are in bounds by the asserts above.
        unsafe {
            let ap = acc.as_mut_ptr();
            let mut a0 = [_mm512_setzero_ps(); G];
            let mut a1 = [_mm512_setzero_ps(); G];
            for g in 0..G {
                a0[g] = load_f32(ap.add(g * n + c), m0);
                if m1 > 0 {
                    a1[g] = load_f32(ap.add(g * n + c + 16), m1);
                }
            }
            for t in 0..n_rows {
                let vp = v.as_ptr().add(t * stride + c);
                let v0 = load_f16(vp, m0);
                let v1 = if m1 > 0 {
                    load_f16(vp.add(16), m1)
                } else {
                    _mm512_setzero_ps()
                };
                for g in 0..G {
                    let pv = _mm512_set1_ps(*probs.get_unchecked(g * ps + t));
                    a0[g] = _mm512_fmadd_ps(pv, v0, a0[g]);
                    a1[g] = _mm512_fmadd_ps(pv, v1, a1[g]);
                }
            }
            for g in 0..G {
                store_f32(ap.add(g * n + c), m0, a0[g]);
                if m1 > 0 {
                    store_f32(ap.add(g * n + c + 16), m1, a1[g]);
                }
            }
        }
        c += m0 + m1;
    }
}
