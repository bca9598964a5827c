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

/// [`dot_rows_f16`] for the `n_q` queries of a grouped-query KV head (`q` is `[n_q][hd]`) against the same K
/// rows, each row converted from f16 once for all of them: `out[g * out_stride + t]` gets what
/// `dot_rows_f16(q_g, ...)` gives row `t`, bit for bit (the same FMAs into the same two accumulators, chunk
/// `c` of 8 into accumulator `c % 2`, the same horizontal sum and scalar tail). Queries go four at a time.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn dot_rows_group_f16(
    (q, hd): (&[f32], usize),
    (k, stride): (&[f16], usize),
    (out, out_stride): (&mut [f32], usize),
    n_rows: usize,
) {
    let n_q = q.len() / hd.max(1);
    if n_q == 0 || n_rows == 0 {
        return;
    }
    assert!(
        (n_rows - 1) * stride + hd <= k.len(),
        "dot_rows_group_f16: k"
    );
    assert!(
        (n_q - 1) * out_stride + n_rows <= out.len(),
        "dot_rows_group_f16: out"
    );
    let mut g0 = 0;
    while g0 < n_q {
        let g = (n_q - g0).min(4);
        let qs = &q[g0 * hd..(g0 + g) * hd];
        let o = &mut out[g0 * out_stride..];
        match g {
            4 => dot_group::<4>(qs, hd, (k, stride), (o, out_stride), n_rows),
            3 => dot_group::<3>(qs, hd, (k, stride), (o, out_stride), n_rows),
            2 => dot_group::<2>(qs, hd, (k, stride), (o, out_stride), n_rows),
            _ => dot_group::<1>(qs, hd, (k, stride), (o, out_stride), n_rows),
        }
        g0 += g;
    }
}

/// `G` queries (`q` is `[G][hd]`) against `n_rows` K rows; the caller checked the lengths.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn dot_group<const G: usize>(
    q: &[f32],
    hd: usize,
    (k, stride): (&[f16], usize),
    (out, out_stride): (&mut [f32], usize),
    n_rows: usize,
) {
    let chunks = hd / 8;
    let n8 = chunks * 8;
    assert!(q.len() == G * hd && (n_rows - 1) * stride + hd <= k.len());
    assert!((G - 1) * out_stride + n_rows <= out.len());
    for t in 0..n_rows {
        prefetch_row(k.as_ptr().wrapping_add((t + ROWS_AHEAD) * stride), hd);
        let row = &k[t * stride..t * stride + hd];
        // chunk c of 8 into accumulator c % 2, as in `dot_f16`; two chunks a step so both stay in registers
        let (mut acc0, mut acc1) = ([_mm256_setzero_ps(); G], [_mm256_setzero_ps(); G]);
        let mut c = 0;
        // SAFETY: 8·c + 16 ≤ n8 ≤ hd = row.len() (8·c + 8 for the last lone chunk), and g·hd + 8·c + 16 ≤
        // G·hd = q.len() likewise.
        unsafe {
            while c + 2 <= chunks {
                let k0 = load_f16(row.as_ptr().add(8 * c));
                let k1 = load_f16(row.as_ptr().add(8 * c + 8));
                for g in 0..G {
                    let qp = q.as_ptr().add(g * hd + 8 * c);
                    acc0[g] = _mm256_fmadd_ps(_mm256_loadu_ps(qp), k0, acc0[g]);
                    acc1[g] = _mm256_fmadd_ps(_mm256_loadu_ps(qp.add(8)), k1, acc1[g]);
                }
                c += 2;
            }
            if c < chunks {
                let k0 = load_f16(row.as_ptr().add(8 * c));
                for (g, a0) in acc0.iter_mut().enumerate() {
                    let qp = q.as_ptr().add(g * hd + 8 * c);
                    *a0 = _mm256_fmadd_ps(_mm256_loadu_ps(qp), k0, *a0);
                }
            }
        }
        let sums = hsum_group(std::array::from_fn(|g| {
            if g < G {
                _mm256_add_ps(acc0[g], acc1[g])
            } else {
                _mm256_setzero_ps()
            }
        }));
        for g in 0..G {
            let qg = &q[g * hd..(g + 1) * hd];
            let tail: f32 = qg[n8..]
                .iter()
                .zip(&row[n8..])
                .map(|(&x, &y)| x * y.to_f32())
                .sum();
            out[g * out_stride + t] = sums[g] + tail;
        }
    }
}

/// [`hsum`] of four vectors at once, each in `hsum`'s order: (lo + hi) per 128-bit half, then lanes 0 + 2 and
/// 1 + 3, then those two: the same sums, so the same bits.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn hsum_group(v: [__m256; 4]) -> [f32; 4] {
    // [v0.lo + v0.hi | v1.lo + v1.hi], [v2.. | v3..]
    let x01 = _mm256_add_ps(
        _mm256_permute2f128_ps::<0x20>(v[0], v[1]),
        _mm256_permute2f128_ps::<0x31>(v[0], v[1]),
    );
    let x23 = _mm256_add_ps(
        _mm256_permute2f128_ps::<0x20>(v[2], v[3]),
        _mm256_permute2f128_ps::<0x31>(v[2], v[3]),
    );
    // per half: [s0 + s2, s1 + s3] of x01's vector, then of x23's
    let lo = _mm256_castpd_ps(_mm256_unpacklo_pd(
        _mm256_castps_pd(x01),
        _mm256_castps_pd(x23),
    ));
    let hi = _mm256_castpd_ps(_mm256_unpackhi_pd(
        _mm256_castps_pd(x01),
        _mm256_castps_pd(x23),
    ));
    let y = _mm256_add_ps(lo, hi);
    // lane 0: v0, 2: v2, 4: v1, 6: v3
    let z = _mm256_add_ps(y, _mm256_movehdup_ps(y));
    let mut l = [0f32; 8];
    // SAFETY: l is 8 writable floats.
    unsafe { _mm256_storeu_ps(l.as_mut_ptr(), z) };
    [l[0], l[4], l[2], l[6]]
}

/// [`axpy_rows_f16`] for the `n_q` queries of a grouped-query KV head (`acc` is `[n_q][n]`, query `g`'s
/// weights at `probs[g * probs_stride..][..n_rows]`) over the same V rows, each row converted from f16 once for
/// all of them: every query gets the same FMAs in the same order as `axpy_rows_f16`, so the same bits.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn axpy_rows_group_f16(
    (acc, n): (&mut [f32], usize),
    (probs, probs_stride): (&[f32], usize),
    (v, stride): (&[f16], usize),
    n_rows: usize,
) {
    let n_q = acc.len() / n.max(1);
    if n_q == 0 || n_rows == 0 {
        return;
    }
    assert!(
        (n_rows - 1) * stride + n <= v.len(),
        "axpy_rows_group_f16: v"
    );
    assert!(
        (n_q - 1) * probs_stride + n_rows <= probs.len(),
        "axpy_rows_group_f16: probs"
    );
    let mut g0 = 0;
    while g0 < n_q {
        let g = (n_q - g0).min(4);
        let a = &mut acc[g0 * n..(g0 + g) * n];
        let p = &probs[g0 * probs_stride..];
        match g {
            4 => axpy_group::<4, 2>(a, n, (p, probs_stride), (v, stride), n_rows),
            3 => axpy_group::<3, 2>(a, n, (p, probs_stride), (v, stride), n_rows),
            2 => axpy_group::<2, 4>(a, n, (p, probs_stride), (v, stride), n_rows),
            _ => axpy_group::<1, 4>(a, n, (p, probs_stride), (v, stride), n_rows),
        }
        g0 += g;
    }
}

/// `G` queries' accumulators (`acc` is `[G][n]`), `R` registers (8 columns each) of them at a time; the caller
/// checked the lengths.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn axpy_group<const G: usize, const R: usize>(
    acc: &mut [f32],
    n: usize,
    (probs, probs_stride): (&[f32], usize),
    (v, stride): (&[f16], usize),
    n_rows: usize,
) {
    assert!(acc.len() == G * n && (n_rows - 1) * stride + n <= v.len());
    assert!((G - 1) * probs_stride + n_rows <= probs.len());
    let n8 = n - n % 8;
    let mut c = 0;
    while c < n8 {
        let regs = ((n8 - c) / 8).min(R);
        // SAFETY: g·n + c + 8·regs ≤ G·n = acc.len() (c + 8·regs ≤ n8 ≤ n); v[t·stride + c..][..8·regs] is in
        // bounds for t < n_rows (asserted above); probs[g·probs_stride + t] likewise.
        unsafe {
            if regs == R {
                axpy_cols::<G, R>(
                    acc.as_mut_ptr().add(c),
                    n,
                    (probs, probs_stride),
                    v.as_ptr().add(c),
                    stride,
                    n_rows,
                );
            } else {
                for j in 0..regs {
                    let cj = c + 8 * j;
                    axpy_cols::<G, 1>(
                        acc.as_mut_ptr().add(cj),
                        n,
                        (probs, probs_stride),
                        v.as_ptr().add(cj),
                        stride,
                        n_rows,
                    );
                }
            }
        }
        c += 8 * regs;
    }
    for g in 0..G {
        let out = &mut acc[g * n + n8..(g + 1) * n];
        for t in 0..n_rows {
            let p = probs[g * probs_stride + t];
            for (o, x) in out.iter_mut().zip(&v[t * stride + n8..t * stride + n]) {
                *o += p * x.to_f32();
            }
        }
    }
}

/// `R` registers (8 columns each) of `G` accumulators at `acc` (query `g`'s at `acc + g·n`) over the V rows at
/// `v` (row `t` at `v + t·stride`): each column one FMA a row, in row order.
///
/// # Safety
/// `acc + g·n ..+ 8·R` must be writable for `g < G`, `v + t·stride ..+ 8·R` readable for `t < n_rows`, and
/// `probs[g·probs_stride + t]` in bounds for those `g`, `t`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn axpy_cols<const G: usize, const R: usize>(
    acc: *mut f32,
    n: usize,
    (probs, probs_stride): (&[f32], usize),
    v: *const f16,
    stride: usize,
    n_rows: usize,
) {
    // SAFETY: within the bounds the caller guarantees.
    unsafe {
        let mut a: [[__m256; R]; G] = std::array::from_fn(|g| {
            std::array::from_fn(|j| _mm256_loadu_ps(acc.add(g * n + 8 * j)))
        });
        for t in 0..n_rows {
            let p: [__m256; G] = std::array::from_fn(|g| {
                _mm256_broadcast_ss(probs.get_unchecked(g * probs_stride + t))
            });
            let vp = v.add(t * stride);
            prefetch_row(vp.wrapping_add(ROWS_AHEAD * stride), 8 * R);
            let xs: [__m256; R] = std::array::from_fn(|j| load_f16(vp.add(8 * j)));
            for (ag, pg) in a.iter_mut().zip(&p) {
                for (aj, x) in ag.iter_mut().zip(&xs) {
                    *aj = _mm256_fmadd_ps(*pg, *x, *aj);
                }
            }
        }
        for (g, ag) in a.iter().enumerate() {
            for (j, x) in ag.iter().enumerate() {
                _mm256_storeu_ps(acc.add(g * n + 8 * j), *x);
            }
        }
    }
}

/// How far ahead the grouped kernels prefetch K/V rows: a decode step's caches (8 sequences × every layer) do
/// not stay in cache between layers, and a row's few lines take a memory latency while the group's FMAs on a
/// row take a few nanoseconds.
const ROWS_AHEAD: usize = 16;

/// Prefetches the cache lines of `len` f16 at `p` (a hint: `p` need not be valid memory, it never faults).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn prefetch_row(p: *const f16, len: usize) {
    let bytes = 2 * len;
    let p = p.cast::<i8>();
    let mut off = 0;
    while off < bytes {
        // a hint: it reads nothing and never faults, whatever the address
        _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(off));
        off += 64;
    }
    if bytes > 0 {
        // the last line, when the row does not start on one
        _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(bytes - 1));
    }
}
