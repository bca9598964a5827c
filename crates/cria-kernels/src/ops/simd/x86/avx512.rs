//! AVX-512 (F, BW, VL) bodies; tails by masked loads and stores. Callers guarantee the features.

use std::arch::x86_64::*;

use half::f16;

use super::super::KvElem;
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

/// 16 K/V elements at `p` as f32: converted from f16, or loaded as they are.
///
/// # Safety
/// `p..p+16` must be readable.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
unsafe fn load16<T: KvElem>(p: *const T) -> __m512 {
    // SAFETY: the caller guarantees 16 elements (32 bytes of f16, 64 of f32).
    unsafe {
        if T::IS_F16 {
            _mm512_cvtph_ps(_mm256_loadu_si256(p.cast()))
        } else {
            _mm512_loadu_ps(p.cast())
        }
    }
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

/// `x[i] *= scale`, returning the largest product with `f32::max`'s rules (NaNs skipped, `-inf` for none). The
/// maximum of the same values is the same whatever the order (up to the sign of a zero maximum, which no use of
/// it can see: `x - max` and `exp` give the same bits for either).
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
pub(super) fn scale_max(x: &mut [f32], scale: f32) -> f32 {
    let (n, sv) = (x.len(), _mm512_set1_ps(scale));
    let mut m = _mm512_set1_ps(f32::NEG_INFINITY);
    let mut i = 0;
    // SAFETY: each step reads and writes x[i..i+w], w = min(16, n - i).
    unsafe {
        while i < n {
            let w = (n - i).min(16);
            let p = x.as_mut_ptr().add(i);
            let v = _mm512_mul_ps(load_f32(p, w), sv);
            store_f32(p, w, v);
            // vmaxps returns its second operand when either is NaN: the running maximum, never NaN. Lanes
            // past w keep it too.
            m = _mm512_mask_max_ps(m, lanes(w), v, m);
            i += w;
        }
    }
    _mm512_reduce_max_ps(m)
}

/// `x[i] *= s`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
pub(super) fn scale(x: &mut [f32], s: f32) {
    let (n, sv) = (x.len(), _mm512_set1_ps(s));
    let mut i = 0;
    // SAFETY: each step reads and writes x[i..i+w], w = min(16, n - i).
    unsafe {
        while i < n {
            let w = (n - i).min(16);
            let p = x.as_mut_ptr().add(i);
            store_f32(p, w, _mm512_mul_ps(load_f32(p, w), sv));
            i += w;
        }
    }
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

    fn has_avx512() -> bool {
        is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512vl")
    }

    /// Values in [-2, 2) from a xorshift.
    fn noise(seed: u64, n: usize) -> Vec<f32> {
        let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 40) as f32 / (1u64 << 24) as f32 * 4.0 - 2.0
            })
            .collect()
    }

    #[test]
    fn hsum16_equals_reduce_add_bit_for_bit() {
        if !has_avx512() {
            return;
        }
        for seed in 0..200 {
            // Mixed magnitudes so a different addition order would round differently.
            let x: Vec<f32> = noise(seed, 256)
                .iter()
                .enumerate()
                .map(|(i, v)| v * [1.0, 1e3, 1e-3, 7.0][i % 4])
                .collect();
            // SAFETY: the features were detected above; every load reads 16 of x's 256 floats.
            unsafe {
                let s: [__m512; 16] =
                    std::array::from_fn(|i| _mm512_loadu_ps(x.as_ptr().add(16 * i)));
                let mut got = [0.0f32; 16];
                _mm512_storeu_ps(got.as_mut_ptr(), hsum16(&s));
                for (lane, g) in got.iter().enumerate() {
                    let want = _mm512_reduce_add_ps(s[lane / 4 + 4 * (lane % 4)]);
                    assert_eq!(g.to_bits(), want.to_bits(), "seed {seed} lane {lane}");
                }
            }
        }
    }

    /// The multi-query dot and weighted sum against the one-query kernels, bit for bit, reading the rows as
    /// f16 and as their f32 copies: every query count up to 20 (each tile size and their tails), row counts
    /// around the 2- and 4-row steps and past the transposed block, padded strides.
    #[test]
    fn multi_query_kernels_equal_one_query_kernels_bit_for_bit() {
        if !has_avx512() {
            return;
        }
        let mut seed = 0;
        for hd in [64, 128, 256] {
            for n_q in 1..=20 {
                for n_rows in [0, 1, 3, 5, 130, 259] {
                    seed += 1;
                    let stride = hd + 32;
                    let k: Vec<f16> = noise(seed, n_rows * stride + hd)
                        .iter()
                        .map(|&x| f16::from_f32(x))
                        .collect();
                    let k32: Vec<f32> = k.iter().map(|x| x.to_f32()).collect();
                    let q = noise(seed + 1000, n_q * hd);
                    let probs = noise(seed + 2000, n_q * (n_rows + 3));
                    let acc0 = noise(seed + 3000, n_q * hd);
                    let case = (hd, n_q, n_rows, stride);
                    check_multi(case, (&q, &probs, &acc0), &k, &k);
                    check_multi(case, (&q, &probs, &acc0), &k, &k32);
                }
            }
        }
    }

    /// The multi kernels on `rows` (`k`, or its f32 copy) against the one-query ones on `k`.
    fn check_multi<T: KvElem>(
        (hd, n_q, n_rows, stride): (usize, usize, usize, usize),
        (q, probs, acc0): (&[f32], &[f32], &[f32]),
        k: &[f16],
        rows: &[T],
    ) {
        let os = n_rows + 3;
        let mut got = vec![f32::NAN; n_q * os];
        // SAFETY: the caller detected the features (as for every call below).
        unsafe { dot_rows_multi(q, hd, rows, stride, (&mut got, os), n_rows) };
        for g in 0..n_q {
            let mut want = vec![0.0; n_rows];
            // SAFETY: as above.
            unsafe { dot_rows_f16(&q[g * hd..][..hd], k, stride, &mut want) };
            for (t, w) in want.iter().enumerate() {
                let x = got[g * os + t];
                let f16 = T::IS_F16;
                assert_eq!(
                    x.to_bits(),
                    w.to_bits(),
                    "dot hd {hd} {n_q} queries row {t} f16 {f16}"
                );
            }
        }
        let mut acc = acc0.to_vec();
        // SAFETY: as above.
        unsafe { axpy_rows_multi((&mut acc, hd), (probs, os), rows, stride, n_rows) };
        for g in 0..n_q {
            let mut want = acc0[g * hd..][..hd].to_vec();
            // SAFETY: as above.
            unsafe { axpy_rows_f16(&mut want, &probs[g * os..][..n_rows], k, stride) };
            for (c, w) in want.iter().enumerate() {
                let x = acc[g * hd + c];
                let f16 = T::IS_F16;
                assert_eq!(
                    x.to_bits(),
                    w.to_bits(),
                    "axpy hd {hd} {n_q} queries col {c} f16 {f16}"
                );
            }
        }
    }

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

/// Several queries against the same K rows (f16, or their exact f32 copies): `out[g*out_stride + t] =
/// q[g*hd..][..hd] · k[t*stride..][..hd]` for `g < q.len() / hd`, `t < n_rows`, with `hd` 64, 128 or 256. Each
/// dot is [`dot_rows_fixed`]'s, bit for bit (its two accumulators, its chunk order, its reduction); a K row is
/// loaded once for up to 8 queries, and 16 dots at a time are reduced together ([`hsum16`]).
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
pub(super) fn dot_rows_multi<T: KvElem>(
    q: &[f32],
    hd: usize,
    k: &[T],
    stride: usize,
    (out, out_stride): (&mut [f32], usize),
    n_rows: usize,
) {
    // Queries in tiles of 8 (x 2 keys), 4 (x 4 keys), 2, 1: the accumulators stay in registers.
    let mut g0 = 0;
    let n_q = q.len() / hd;
    while g0 < n_q {
        let g = [8, 4, 2, 1]
            .into_iter()
            .find(|&g| g <= n_q - g0)
            .unwrap_or(1);
        let qg = &q[g0 * hd..(g0 + g) * hd];
        let og = &mut out[g0 * out_stride..];
        let (os, all) = (out_stride, 0..n_rows);
        match (hd, g) {
            (64, 8) => dot_multi_tiled::<T, 4, 8, 2>(qg, k, stride, og, os, n_rows),
            (64, 4) => dot_multi_tiled::<T, 4, 4, 4>(qg, k, stride, og, os, n_rows),
            (64, 2) => dot_multi_fixed::<T, 4, 2>(qg, k, stride, og, os, all),
            (64, _) => dot_multi_fixed::<T, 4, 1>(qg, k, stride, og, os, all),
            (128, 8) => dot_multi_tiled::<T, 8, 8, 2>(qg, k, stride, og, os, n_rows),
            (128, 4) => dot_multi_tiled::<T, 8, 4, 4>(qg, k, stride, og, os, n_rows),
            (128, 2) => dot_multi_fixed::<T, 8, 2>(qg, k, stride, og, os, all),
            (128, _) => dot_multi_fixed::<T, 8, 1>(qg, k, stride, og, os, all),
            (256, 8) => dot_multi_tiled::<T, 16, 8, 2>(qg, k, stride, og, os, n_rows),
            (256, 4) => dot_multi_tiled::<T, 16, 4, 4>(qg, k, stride, og, os, n_rows),
            (256, 2) => dot_multi_fixed::<T, 16, 2>(qg, k, stride, og, os, all),
            (256, _) => dot_multi_fixed::<T, 16, 1>(qg, k, stride, og, os, all),
            _ => panic!("dot_rows_multi: head size {hd}"),
        }
        g0 += g;
    }
}

/// The horizontal sums of 16 vectors at once: lane `4*l + m` of the result is `_mm512_reduce_add_ps(s[l + 4*m])`,
/// bit for bit. That reduction adds the halves (`a[i] + a[i+8]`), then the quarters of the result, then its
/// pairs (`b[0] + b[2]`, `b[1] + b[3]`), then those two; here each step does the same additions, operands in
/// the same order, for several vectors in one instruction (45 instead of 16 x 7).
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
fn hsum16(s: &[__m512; 16]) -> __m512 {
    // Halves: x[i] holds s[2i]'s eight sums in its low 256 bits, s[2i+1]'s in the high ones.
    let x: [__m512; 8] = std::array::from_fn(|i| {
        let (a, b) = (s[2 * i], s[2 * i + 1]);
        _mm512_add_ps(
            _mm512_shuffle_f32x4::<0x44>(a, b),
            _mm512_shuffle_f32x4::<0xee>(a, b),
        )
    });
    // Quarters: 128-bit lane l of y[i] holds s[4i + l]'s four sums.
    let y: [__m512; 4] = std::array::from_fn(|i| {
        let (a, b) = (x[2 * i], x[2 * i + 1]);
        _mm512_add_ps(
            _mm512_shuffle_f32x4::<0x88>(a, b),
            _mm512_shuffle_f32x4::<0xdd>(a, b),
        )
    });
    // Pairs: lane l of z[i] holds s[8i + l]'s two sums, then s[8i + 4 + l]'s.
    let z: [__m512; 2] = std::array::from_fn(|i| {
        let (a, b) = (y[2 * i], y[2 * i + 1]);
        _mm512_add_ps(
            _mm512_shuffle_ps::<0x44>(a, b),
            _mm512_shuffle_ps::<0xee>(a, b),
        )
    });
    _mm512_add_ps(
        _mm512_shuffle_ps::<0x88>(z[0], z[1]),
        _mm512_shuffle_ps::<0xdd>(z[0], z[1]),
    )
}

/// [`dot_rows_multi`] for `G` queries of `16 * NQ` floats, `TK` K rows at a time (`G * TK == 16`: 8 x 2 or
/// 4 x 4). Each (query, row) dot is [`dot_rows_fixed`]'s chain of FMAs; the 16 of a step go through [`hsum16`].
/// Rows past the last full step go one at a time through [`dot_multi_fixed`].
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
fn dot_multi_tiled<T: KvElem, const NQ: usize, const G: usize, const TK: usize>(
    q: &[f32],
    k: &[T],
    stride: usize,
    out: &mut [f32],
    out_stride: usize,
    n_rows: usize,
) {
    const { assert!(NQ.is_multiple_of(2) && G * TK == 16 && (G == 8 || G == 4)) };
    let hd = 16 * NQ;
    assert_eq!(q.len(), G * hd, "dot_multi_tiled: q length");
    if let Some(last) = n_rows.checked_sub(1) {
        assert!(last * stride + hd <= k.len(), "dot_rows_multi: k too short");
        assert!(
            (G - 1) * out_stride + n_rows <= out.len(),
            "dot_rows_multi: out too short"
        );
    }
    let full = n_rows - n_rows % TK;
    // SAFETY: query g reads q[g*hd .. (g+1)*hd] (q holds G*hd, asserted); rows t < n_rows read
    // k[t*stride ..][..hd] and write out[g*out_stride + t], all in bounds by the asserts above (a step's stores
    // cover t .. t + TK <= full <= n_rows).
    unsafe {
        let qp = q.as_ptr();
        let op = out.as_mut_ptr();
        for t in (0..full).step_by(TK) {
            let mut sums = [_mm512_setzero_ps(); 16];
            for kk in 0..TK {
                let p = k.as_ptr().add((t + kk) * stride);
                let mut acc0 = [_mm512_setzero_ps(); G];
                let mut acc1 = [_mm512_setzero_ps(); G];
                for j in (0..NQ).step_by(2) {
                    let (k0, k1) = (load16(p.add(16 * j)), load16(p.add(16 * j + 16)));
                    for g in 0..G {
                        let qj = qp.add(g * hd + 16 * j);
                        acc0[g] = _mm512_fmadd_ps(_mm512_loadu_ps(qj), k0, acc0[g]);
                        acc1[g] = _mm512_fmadd_ps(_mm512_loadu_ps(qj.add(16)), k1, acc1[g]);
                    }
                }
                // (g, kk) goes to lane 4g + kk (G = 4) or, for G = 8, 4(g % 4) + 2(g / 4) + kk.
                for g in 0..G {
                    sums[g % 4 + 4 * (TK * (g / 4) + kk)] = _mm512_add_ps(acc0[g], acc1[g]);
                }
            }
            let r = hsum16(&sums);
            let lane = [
                _mm512_extractf32x4_ps::<0>(r),
                _mm512_extractf32x4_ps::<1>(r),
                _mm512_extractf32x4_ps::<2>(r),
                _mm512_extractf32x4_ps::<3>(r),
            ];
            for (l, x) in lane.into_iter().enumerate() {
                if G == 4 {
                    _mm_storeu_ps(op.add(l * out_stride + t), x);
                } else {
                    _mm_storel_epi64(op.add(l * out_stride + t).cast(), _mm_castps_si128(x));
                    _mm_storeh_pd(op.add((l + 4) * out_stride + t).cast(), _mm_castps_pd(x));
                }
            }
        }
    }
    dot_multi_fixed::<T, NQ, G>(q, k, stride, out, out_stride, full..n_rows);
}

/// [`dot_rows_multi`] for `G` queries of `16 * NQ` floats over the K rows in `rows`, one row at a time.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
fn dot_multi_fixed<T: KvElem, const NQ: usize, const G: usize>(
    q: &[f32],
    k: &[T],
    stride: usize,
    out: &mut [f32],
    out_stride: usize,
    rows: std::ops::Range<usize>,
) {
    const { assert!(NQ.is_multiple_of(2)) };
    let hd = 16 * NQ;
    assert_eq!(q.len(), G * hd, "dot_multi_fixed: q length");
    if let Some(last) = rows.end.checked_sub(1)
        && !rows.is_empty()
    {
        assert!(last * stride + hd <= k.len(), "dot_rows_multi: k too short");
        assert!(
            (G - 1) * out_stride + rows.end <= out.len(),
            "dot_rows_multi: out too short"
        );
    }
    // SAFETY: query g reads q[g*hd .. (g+1)*hd] (q holds G*hd, asserted); row t reads k[t*stride ..][..hd] and
    // writes out[g*out_stride + t], both in bounds by the asserts above.
    unsafe {
        let qp = q.as_ptr();
        for t in rows {
            let p = k.as_ptr().add(t * stride);
            let mut acc0 = [_mm512_setzero_ps(); G];
            let mut acc1 = [_mm512_setzero_ps(); G];
            for j in (0..NQ).step_by(2) {
                let (k0, k1) = (load16(p.add(16 * j)), load16(p.add(16 * j + 16)));
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

/// Rows of probabilities [`axpy_rows_multi`] transposes at a time (`[row][16 queries]`, 8 KiB on the stack).
const PT_ROWS: usize = 128;

/// Several queries against the same V rows (f16, or their exact f32 copies): `acc[g*n..][..n] += Σ_t
/// probs[g*probs_stride + t] · v[t*stride..][..n]` for `g < acc.len() / n`, `t < n_rows`, `n` a multiple of 16. Per
/// column, each query gets [`axpy_rows_f16`]'s operations in its order (one FMA per row, rows in order, the
/// running sum kept in f32). The probabilities of up to 16 queries are transposed to `[row][query]`, so one V
/// chunk, loaded once, feeds an FMA per query whose broadcast comes straight from memory.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
pub(super) fn axpy_rows_multi<T: KvElem>(
    (acc, n): (&mut [f32], usize),
    (probs, probs_stride): (&[f32], usize),
    v: &[T],
    stride: usize,
    n_rows: usize,
) {
    assert!(n.is_multiple_of(16), "axpy_rows_multi: {n} columns");
    let n_q = acc.len() / n;
    if n_q == 0 || n_rows == 0 {
        return;
    }
    assert!(
        (n_rows - 1) * stride + n <= v.len(),
        "axpy_rows_multi: v too short"
    );
    assert!(
        (n_q - 1) * probs_stride + n_rows <= probs.len(),
        "axpy_rows_multi: probs too short"
    );
    let mut pt = [0.0f32; PT_ROWS * 16];
    for q0 in (0..n_q).step_by(16) {
        let gq = (n_q - q0).min(16);
        for t0 in (0..n_rows).step_by(PT_ROWS) {
            let nb = (n_rows - t0).min(PT_ROWS);
            for g in 0..gq {
                let src = &probs[(q0 + g) * probs_stride + t0..][..nb];
                for (t, &x) in src.iter().enumerate() {
                    pt[t * 16 + g] = x;
                }
            }
            let vb = &v[t0 * stride..];
            let mut g = 0;
            while g < gq {
                let tile = [16, 8, 4, 2, 1]
                    .into_iter()
                    .find(|&t| t <= gq - g)
                    .unwrap_or(1);
                let a = &mut acc[(q0 + g) * n..(q0 + g + tile) * n];
                let p = &pt[g..];
                match tile {
                    16 => axpy_multi_tile::<T, 16>(a, n, p, nb, vb, stride),
                    8 => axpy_multi_tile::<T, 8>(a, n, p, nb, vb, stride),
                    4 => axpy_multi_tile::<T, 4>(a, n, p, nb, vb, stride),
                    2 => axpy_multi_tile::<T, 2>(a, n, p, nb, vb, stride),
                    _ => axpy_multi_tile::<T, 1>(a, n, p, nb, vb, stride),
                }
                g += tile;
            }
        }
    }
}

/// [`axpy_rows_multi`] for `G` queries (`acc` is `[G][n]`, `n` a multiple of 16) over `n_rows` V rows, with
/// query `g`'s probability for row `t` at `pt[16*t + g]`; 16 columns at a time, `G` accumulators.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
fn axpy_multi_tile<T: KvElem, const G: usize>(
    acc: &mut [f32],
    n: usize,
    pt: &[f32],
    n_rows: usize,
    v: &[T],
    stride: usize,
) {
    assert!(
        acc.len() == G * n && n.is_multiple_of(16),
        "axpy_multi_tile: acc"
    );
    if let Some(last) = n_rows.checked_sub(1) {
        assert!(last * stride + n <= v.len(), "axpy_rows_multi: v too short");
        assert!(
            last * 16 + G <= pt.len(),
            "axpy_multi_tile: probabilities too short"
        );
    }
    for c in (0..n).step_by(16) {
        // SAFETY: acc[g*n + c ..][..16] is in bounds (c + 16 <= n); row t reads v[t*stride + c ..][..16] and
        // pt[16*t + g], in bounds by the asserts above.
        unsafe {
            let ap = acc.as_mut_ptr().add(c);
            let mut a: [__m512; G] = std::array::from_fn(|g| _mm512_loadu_ps(ap.add(g * n)));
            let (mut vp, mut pp) = (v.as_ptr().add(c), pt.as_ptr());
            for _ in 0..n_rows {
                let x = load16(vp);
                for (g, a) in a.iter_mut().enumerate() {
                    *a = _mm512_fmadd_ps(_mm512_set1_ps(*pp.add(g)), x, *a);
                }
                vp = vp.add(stride);
                pp = pp.add(16);
            }
            for (g, a) in a.into_iter().enumerate() {
                _mm512_storeu_ps(ap.add(g * n), a);
            }
        }
    }
}
