//! AVX-512 decode matvec for Q4_K and Q6_K (Q8_K activations), 16 rows a pass.
//!
//! Why a kernel of its own: the 256-bit row kernels (`blk_q4_k` / `blk_q6_k` in `kernels.rs`) decode each
//! row's scales with scalar code and apply them with `vpmulld`, which made them compute bound at about
//! 10 GB/s on one thread. Here, as in `zmm_matvec.rs`, one zmm holds the super-blocks of two rows side by
//! side ([row A 256 bits | row B 256 bits]), so every vector op serves two rows, and the per-row scalar work
//! (scales, mins, the offset correction, the float scales) is done for all 16 rows of a pass at once, one
//! row per 32-bit lane, from the blocks' headers loaded row by row and transposed ([`rows_dwords`]).
//!
//! The integer sum of a super-block is `vpmaddubsw` (quant × activation pairs; |q·a| ≤ 63·128, so a pair
//! fits an i16 exactly) then `vpdpwssd` against the group's sub-block scale as i16 words: exact integers in
//! the same 8 lanes as the row kernel's (lane i sums elements with (e mod 32) / 4 = i). From there the bits
//! are the row kernels': each 256-bit half of an accumulator is one row's 8-lane sum, fed super-block after
//! super-block with `cvt(sumi)·(d_a·d_w)` in one FMA; the scalar term (Q4_K: −(d_a·dmin)·Σ m·bsum, Q6_K:
//! −32·d·Σ sc·bsum) is a lane of `mins`, formed with the row kernel's operations and summed in super-block
//! order; each half is reduced with the same `hsum`. The tests below hold it to the row kernel bit for bit.

use super::zmm_matvec::{Prefetch, finish};
use super::zmm_util::dpwssd;
use crate::GgmlType;
use crate::dot::RowsFn;
use crate::quant::blocks::*;
use bytemuck::cast_slice as cs;
use std::arch::x86_64::*;

/// Rows per pass: 8 pairs, one zmm accumulator each.
const ROWS: usize = 16;
const PAIRS: usize = ROWS / 2;

/// 32-element groups of a super-block.
const GROUPS: usize = 8;

/// Whether the Q6_K pass issues its prefetches of the next pass one line at each (block, pair, group) step (a
/// pass has fewer lines than steps: a block is 16 · 210 bytes, 53 lines, against 64 steps) rather than a block
/// step's share at its start. Session 13 (Xeon, one thread, gemma's 640 × 2048 `ffn_down` in L2, best of 1860,
/// alternated, load 7-10): 28.8-29.1 (one run 32.0) → 30.3-31.8 GB/s, most of it the cheaper prefetch code
/// ([`Prefetch::line`]); from DRAM with two threads (`decode_ab::q6_k_decode_2t_ab`) the load (9-10) left
/// the order of the two unclear. Q4_K (row-major Q4_K is rare: the model repacks it) keeps the bunched form,
/// which the spread one did not beat in L3 (20.5 against 15 GB/s, one thread, 20 MB).
const SPREAD_PF: bool = true;

// Every function below: #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]

/// The kernel for `ty`, if this file has one. Handed out only on a CPU with AVX-512 F/BW/VL and VNNI.
pub(super) fn matvec_kernel(ty: GgmlType) -> Option<RowsFn> {
    macro_rules! mv {
        ($f:expr) => {
            Some(|w: &[u8], wr: usize, a: &[u8], out: &mut [f32]| {
                // SAFETY: the caller (`x86::matvec_kernel`) hands this out only on a CPU with the features.
                unsafe { $f(w, wr, a, out) }
            })
        };
    }
    match ty {
        GgmlType::Q4_K => mv!(mv_q4_k::<false>),
        GgmlType::Q6_K => mv!(mv_q6_k::<SPREAD_PF>),
        _ => None,
    }
}

/// The row kernel of the same format, for the last `rows % 16` rows and as the tests' reference.
fn tail_kernel(ty: GgmlType) -> RowsFn {
    super::avx512::vnni::rows_kernel(ty).expect("the AVX-512 VNNI row kernels cover every K-quant")
}

/// 32 bytes of each of two rows as one zmm: [a | b].
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn pair32(a: &[u8], b: &[u8]) -> __m512i {
    let (a, b) = (&a[..32], &b[..32]);
    // SAFETY: a and b are 32 readable bytes each (sliced above); loadu has no alignment requirement.
    let (ya, yb) = unsafe {
        (
            _mm256_loadu_si256(a.as_ptr().cast()),
            _mm256_loadu_si256(b.as_ptr().cast()),
        )
    };
    _mm512_inserti64x4::<1>(_mm512_castsi256_si512(ya), yb)
}

/// The 8 activation groups of a Q8_K block (32 quants each), each in both halves of a zmm.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn act_groups(a: &BlockQ8K) -> [__m512i; 8] {
    std::array::from_fn(|g| {
        let q: &[i8] = &a.qs[32 * g..32 * g + 32];
        // SAFETY: q is 32 readable bytes.
        let y = unsafe { _mm256_loadu_si256(q.as_ptr().cast()) };
        _mm512_broadcast_i64x4(y)
    })
}

/// Two i16 as the 32-bit lane `lo | hi << 16` in all 16 lanes (a `vpdpwssd` operand).
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn words(lo: i32, hi: i32) -> __m512i {
    _mm512_set1_epi32((lo & 0xFFFF) | (hi << 16))
}

/// `vpshufb` controls that put word `g` of each 128-bit lane in all 8 words of that lane.
const fn word_ctl(g: u8) -> [u8; 64] {
    let mut c = [0u8; 64];
    let mut i = 0;
    while i < 64 {
        c[i] = 2 * g + (i % 2) as u8;
        i += 1;
    }
    c
}

/// `vpshufb` controls that put byte `g` of each 128-bit lane, zero-extended, in all 8 words of that lane.
const fn byte_ctl(g: u8) -> [u8; 64] {
    let mut c = [0u8; 64];
    let mut i = 0;
    while i < 64 {
        c[i] = if i % 2 == 0 { g } else { 0x80 };
        i += 1;
    }
    c
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn ctl(c: &[u8; 64]) -> __m512i {
    // SAFETY: c is 64 readable bytes.
    unsafe { _mm512_loadu_si512(c.as_ptr().cast()) }
}

/// Lane offsets of the 16 rows of a pass: r·w_row.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn row_offsets(w_row: usize) -> __m512i {
    _mm512_mullo_epi32(
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
        _mm512_set1_epi32(w_row as i32),
    )
}

/// Dword k of the 16 bytes at `off` in each of the 16 rows (`w_row` apart) as lane r of vector k: what four
/// `vpgatherdd` at `off + 4k` give, from 16 plain loads and 8 unpacks (the gathers were a third of `mv_q6_k`'s
/// samples on Zen 5).
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn rows_dwords(w: &[u8], w_row: usize, off: usize) -> [__m512i; 4] {
    assert!(w.len() >= (ROWS - 1) * w_row + off + 16);
    // SAFETY: r < 16, so the 16 bytes at r·w_row + off lie inside w (asserted above).
    let ld = |r: usize| unsafe { _mm_loadu_si128(w.as_ptr().add(r * w_row + off).cast()) };
    // y[q]: rows q, q + 4, q + 8, q + 12 in its four 128-bit lanes, so that the in-lane unpacks below leave
    // row 4j + q in element 4j + q
    let y: [__m512i; 4] = std::array::from_fn(|q| {
        let v = _mm512_castsi128_si512(ld(q));
        let v = _mm512_inserti32x4::<1>(v, ld(q + 4));
        let v = _mm512_inserti32x4::<2>(v, ld(q + 8));
        _mm512_inserti32x4::<3>(v, ld(q + 12))
    });
    let (t0, t1) = (
        _mm512_unpacklo_epi32(y[0], y[1]),
        _mm512_unpackhi_epi32(y[0], y[1]),
    );
    let (t2, t3) = (
        _mm512_unpacklo_epi32(y[2], y[3]),
        _mm512_unpackhi_epi32(y[2], y[3]),
    );
    [
        _mm512_unpacklo_epi64(t0, t2),
        _mm512_unpackhi_epi64(t0, t2),
        _mm512_unpacklo_epi64(t1, t3),
        _mm512_unpackhi_epi64(t1, t3),
    ]
}

/// Per pair p: the `vpermps` index of its float scales (lane 2p in the low half, lane 2p + 1 in the high
/// half), and the `vpermq` index of its rows' 8 Q4_K scales (see `pass_q4_k`).
static PAIR_IDX: [([i32; 16], [i64; 8]); PAIRS] = {
    let mut t = [([0i32; 16], [0i64; 8]); PAIRS];
    let mut p = 0;
    while p < PAIRS {
        let mut l = 0;
        while l < 16 {
            t[p].0[l] = (2 * p + l / 8) as i32;
            l += 1;
        }
        let mut q = 0;
        while q < 8 {
            t[p].1[q] = (2 * (p / 2) + q / 4) as i64;
            q += 1;
        }
        p += 1;
    }
    t
};

#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn pick(p: usize) -> __m512i {
    // SAFETY: the table row is 16 readable i32.
    unsafe { _mm512_loadu_si512(PAIR_IDX[p].0.as_ptr().cast()) }
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn q4k_scale_idx(p: usize) -> __m512i {
    // SAFETY: the table row is 8 readable i64.
    unsafe { _mm512_loadu_si512(PAIR_IDX[p].1.as_ptr().cast()) }
}

/// 16 f16 in the low (`HI` false) or high 16 bits of each lane, as f32.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn half_lanes<const HI: bool>(v: __m512i) -> __m512 {
    let v = if HI { _mm512_srli_epi32::<16>(v) } else { v };
    _mm512_cvtph_ps(_mm512_cvtepi32_epi16(v))
}

static Q4K_CTL: [[u8; 64]; 8] = [
    byte_ctl(0),
    byte_ctl(1),
    byte_ctl(2),
    byte_ctl(3),
    byte_ctl(4),
    byte_ctl(5),
    byte_ctl(6),
    byte_ctl(7),
];

static Q6K_CTL: [[u8; 64]; 8] = [
    word_ctl(0),
    word_ctl(1),
    word_ctl(2),
    word_ctl(3),
    word_ctl(4),
    word_ctl(5),
    word_ctl(6),
    word_ctl(7),
];

/// Q4_K: 16 rows of `w` (`w_row` bytes each) against the activation row.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn pass_q4_k<const SPREAD: bool>(
    w: &[u8],
    w_row: usize,
    acts: &[BlockQ8K],
    out: &mut [f32; ROWS],
    prefetch: Prefetch,
) {
    const SB: usize = size_of::<BlockQ4K>();
    let nb = acts.len();
    assert!(w.len() >= ROWS * w_row && w_row >= nb * SB);
    let block = |r: usize, i: usize| -> &BlockQ4K {
        // SAFETY: r < 16 and i < nb, so the block's bytes lie inside w (asserted above); BlockQ4K is plain
        // bytes (alignment 1, every bit pattern valid).
        unsafe { &*w.as_ptr().add(r * w_row + i * SB).cast::<BlockQ4K>() }
    };
    let (km1, km2, km3) = (
        _mm512_set1_epi32(0x3f3f_3f3f),
        _mm512_set1_epi32(0x0f0f_0f0f),
        _mm512_set1_epi32(0x0303_0303),
    );
    let (nib, even_bytes) = (_mm512_set1_epi8(0xF), _mm512_set1_epi32(0x00FF_00FF));
    let mut acc = [_mm512_setzero_ps(); PAIRS];
    let mut mins = _mm512_setzero_ps();
    for (i, a) in acts.iter().enumerate() {
        // the 16-byte header (d, dmin, 12 bytes of scales) of each row's block i, one row per lane
        let [h0, h1, h2, h3] = rows_dwords(w, w_row, i * SB);
        // the 6-bit scales and mins (llama.cpp's `utmp` unpacking): sc[0..4], sc[4..8], m[0..4], m[4..8]
        let hi2 =
            |v: __m512i| _mm512_slli_epi32::<4>(_mm512_and_si512(_mm512_srli_epi32::<6>(v), km3));
        let sc_lo = _mm512_and_si512(h1, km1);
        let sc_hi = _mm512_or_si512(_mm512_and_si512(h3, km2), hi2(h1));
        let m_lo = _mm512_and_si512(h2, km1);
        let m_hi = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32::<4>(h3), km2), hi2(h2));
        // Σ m_j·(bsum(2j) + bsum(2j + 1)) per row, in exact integers: words (m0, m2), (m1, m3), ...
        let bp = |j: usize| a.bsum(2 * j) as i32 + a.bsum(2 * j + 1) as i32;
        let lo_e = _mm512_and_si512(m_lo, even_bytes);
        let lo_o = _mm512_and_si512(_mm512_srli_epi32::<8>(m_lo), even_bytes);
        let hi_e = _mm512_and_si512(m_hi, even_bytes);
        let hi_o = _mm512_and_si512(_mm512_srli_epi32::<8>(m_hi), even_bytes);
        let summ = dpwssd(_mm512_setzero_si512(), lo_e, words(bp(0), bp(2)));
        let summ = dpwssd(summ, lo_o, words(bp(1), bp(3)));
        let summ = dpwssd(summ, hi_e, words(bp(4), bp(6)));
        let summ = dpwssd(summ, hi_o, words(bp(5), bp(7)));
        // the row kernel's floats: acc += cvt(sumi)·(da·d); s += −(da·dmin)·summ
        let da = _mm512_set1_ps(a.d());
        let dd = _mm512_mul_ps(da, half_lanes::<false>(h0));
        let dmin = _mm512_castps_si512(_mm512_mul_ps(da, half_lanes::<true>(h0)));
        let dmin = _mm512_castsi512_ps(_mm512_xor_si512(dmin, _mm512_set1_epi32(i32::MIN)));
        mins = _mm512_add_ps(mins, _mm512_mul_ps(dmin, _mm512_cvtepi32_ps(summ)));
        // row r's 8 scales as qword (r % 2) of 128-bit lane r / 4 of `sc[r % 4 / 2]`
        let sc = [
            _mm512_unpacklo_epi32(sc_lo, sc_hi),
            _mm512_unpackhi_epi32(sc_lo, sc_hi),
        ];
        if !SPREAD {
            prefetch.step(i);
        }
        let av = act_groups(a);
        for (p, acc) in acc.iter_mut().enumerate() {
            let (ra, rb) = (block(2 * p, i), block(2 * p + 1, i));
            // row 2p's scales at the start of both 128-bit lanes of the low half, row 2p + 1's of the high
            let s = _mm512_permutexvar_epi64(q4k_scale_idx(p), sc[p % 2]);
            let mut sumi = _mm512_setzero_si512();
            for c in 0..4 {
                let q = pair32(&ra.qs[32 * c..], &rb.qs[32 * c..]);
                let lo = _mm512_and_si512(q, nib);
                let hi = _mm512_and_si512(_mm512_srli_epi16::<4>(q), nib);
                let (g0, g1) = (2 * c, 2 * c + 1);
                if SPREAD {
                    prefetch.line((i * PAIRS + p) * GROUPS + g0);
                    prefetch.line((i * PAIRS + p) * GROUPS + g1);
                }
                let p0 = _mm512_maddubs_epi16(lo, av[g0]);
                sumi = dpwssd(sumi, p0, _mm512_shuffle_epi8(s, ctl(&Q4K_CTL[g0])));
                let p1 = _mm512_maddubs_epi16(hi, av[g1]);
                sumi = dpwssd(sumi, p1, _mm512_shuffle_epi8(s, ctl(&Q4K_CTL[g1])));
            }
            let d = _mm512_permutexvar_ps(pick(p), dd);
            *acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sumi), d, *acc);
        }
    }
    finish(&acc, mins, out);
}

/// Q6_K: 16 rows of `w` (`w_row` bytes each) against the activation row.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn pass_q6_k<const SPREAD: bool>(
    w: &[u8],
    w_row: usize,
    acts: &[BlockQ8K],
    out: &mut [f32; ROWS],
    prefetch: Prefetch,
) {
    const SB: usize = size_of::<BlockQ6K>();
    let nb = acts.len();
    assert!(w.len() >= ROWS * w_row && w_row >= nb * SB);
    let block = |r: usize, i: usize| -> &BlockQ6K {
        // SAFETY: r < 16 and i < nb, so the block's bytes lie inside w (asserted above); BlockQ6K is plain
        // bytes (alignment 1, every bit pattern valid).
        unsafe { &*w.as_ptr().add(r * w_row + i * SB).cast::<BlockQ6K>() }
    };
    let offsets = row_offsets(w_row);
    let (nib, top2) = (_mm512_set1_epi8(0xF), _mm512_set1_epi8(0x30));
    // per 128-bit lane: the even scales, then the odd ones
    let deint = _mm256_setr_epi8(
        0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15, 0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5,
        7, 9, 11, 13, 15,
    );
    let mut acc = [_mm512_setzero_ps(); PAIRS];
    let mut mins = _mm512_setzero_ps();
    for (i, a) in acts.iter().enumerate() {
        // scales (offset 192, 16 bytes) and d (the high half of the 4 bytes at 206), one row per lane
        let [s0, s1, s2, s3] = rows_dwords(w, w_row, i * SB + 192);
        // SAFETY: lane r reads 4 bytes at r·w_row + i·SB + 206, inside row r's block i (210 bytes), which
        // lies inside w (asserted above).
        let dh =
            unsafe { _mm512_i32gather_epi32::<1>(offsets, w.as_ptr().add(i * SB + 206).cast()) };
        // Σ sc_j·bsum_j per row in exact integers: sign-extended words (sc 4k, sc 4k+2), (4k+1, 4k+3)
        let bs = |j: usize| a.bsum(j) as i32;
        let mut corr = _mm512_setzero_si512();
        for (k, s) in [s0, s1, s2, s3].into_iter().enumerate() {
            let ev = _mm512_srai_epi16::<8>(_mm512_slli_epi16::<8>(s));
            let od = _mm512_srai_epi16::<8>(s);
            corr = dpwssd(corr, ev, words(bs(4 * k), bs(4 * k + 2)));
            corr = dpwssd(corr, od, words(bs(4 * k + 1), bs(4 * k + 3)));
        }
        // the row kernel's floats: d = da·d_w; acc += cvt(sumi)·d; s += (−32·d)·corr
        let d = _mm512_mul_ps(_mm512_set1_ps(a.d()), half_lanes::<true>(dh));
        let off = _mm512_mul_ps(_mm512_set1_ps(-32.0), d);
        mins = _mm512_add_ps(mins, _mm512_mul_ps(off, _mm512_cvtepi32_ps(corr)));
        if !SPREAD {
            prefetch.step(i);
        }
        let av = act_groups(a);
        for (p, acc) in acc.iter_mut().enumerate() {
            let (ra, rb) = (block(2 * p, i), block(2 * p + 1, i));
            // the scales as words: per half (row), lane 0 the even ones, lane 1 the odd ones
            let sa: &[u8; 16] = bytemuck::cast_ref(&ra.scales);
            let sb: &[u8; 16] = bytemuck::cast_ref(&rb.scales);
            // SAFETY: sa and sb are 16 readable bytes each.
            let (xa, xb) = unsafe {
                (
                    _mm_loadu_si128(sa.as_ptr().cast()),
                    _mm_loadu_si128(sb.as_ptr().cast()),
                )
            };
            let x = _mm256_shuffle_epi8(_mm256_set_m128i(xb, xa), deint);
            let sw = _mm512_cvtepi8_epi16(x);
            let mut sumi = _mm512_setzero_si512();
            for h in 0..2 {
                let ql = [
                    pair32(&ra.ql[64 * h..], &rb.ql[64 * h..]),
                    pair32(&ra.ql[64 * h + 32..], &rb.ql[64 * h + 32..]),
                ];
                let qh = pair32(&ra.qh[32 * h..], &rb.qh[32 * h..]);
                for k in 0..4 {
                    let low = if k < 2 {
                        ql[k]
                    } else {
                        _mm512_srli_epi16::<4>(ql[k - 2])
                    };
                    // bits 2k, 2k + 1 of qh moved to bits 4, 5
                    let high = match k {
                        0 => _mm512_slli_epi16::<4>(qh),
                        1 => _mm512_slli_epi16::<2>(qh),
                        2 => qh,
                        _ => _mm512_srli_epi16::<2>(qh),
                    };
                    // (low & 0xF) | (high & 0x30)
                    let q =
                        _mm512_ternarylogic_epi32::<0xEC>(low, _mm512_and_si512(high, top2), nib);
                    let g = 4 * h + k;
                    if SPREAD {
                        prefetch.line((i * PAIRS + p) * GROUPS + g);
                    }
                    let prod = _mm512_maddubs_epi16(q, av[g]);
                    sumi = dpwssd(sumi, prod, _mm512_shuffle_epi8(sw, ctl(&Q6K_CTL[g])));
                }
            }
            let dp = _mm512_permutexvar_ps(pick(p), d);
            *acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sumi), dp, *acc);
        }
    }
    finish(&acc, mins, out);
}

macro_rules! kmatvec {
    ($name:ident, $pass:ident, $ty:ident) => {
        #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
        pub(super) fn $name<const SPREAD: bool>(
            w: &[u8],
            w_row: usize,
            act: &[u8],
            out: &mut [f32],
        ) {
            let acts: &[BlockQ8K] = cs(act);
            let full = out.len() / ROWS * ROWS;
            for (c, dst) in out[..full].chunks_exact_mut(ROWS).enumerate() {
                let dst: &mut [f32; ROWS] = dst.try_into().expect("chunks of ROWS");
                let steps = acts.len() * if SPREAD { PAIRS * GROUPS } else { 1 };
                let pf = Prefetch::for_pass(w, c, ROWS * w_row, full * w_row, steps);
                $pass::<SPREAD>(
                    &w[c * ROWS * w_row..(c + 1) * ROWS * w_row],
                    w_row,
                    acts,
                    dst,
                    pf,
                );
            }
            if full < out.len() {
                tail_kernel(GgmlType::$ty)(&w[full * w_row..], w_row, act, &mut out[full..]);
            }
        }
    };
}

kmatvec!(mv_q4_k, pass_q4_k, Q4_K);
kmatvec!(mv_q6_k, pass_q6_k, Q6_K);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::isa::Isa;
    use crate::quant::{quantize_activation_with, quantize_row};

    /// A deterministic generator (no dependency on a random crate's stream): uniform in [-1, 1).
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self) -> f32 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        }

        fn normal(&mut self) -> f32 {
            (self.next() + self.next() + self.next() + self.next()) * 0.9
        }
    }

    /// Like a residual stream (as `activation_like` in `tests/dot_order.rs`): normal values, a few outlier
    /// channels of both signs, and one block of ±max quants.
    fn activation_like(n: usize, seed: u64, outlier: f32) -> Vec<f32> {
        let mut g = Lcg(seed);
        let mut x: Vec<f32> = (0..n).map(|_| g.normal()).collect();
        for (k, c) in [3usize, 77, 200, 511, 640, 1500].into_iter().enumerate() {
            if c < n {
                x[c] = outlier * if k % 2 == 0 { 1.0 } else { -1.0 } * (1.0 + g.next().abs());
            }
        }
        for (i, v) in x[32..64].iter_mut().enumerate() {
            *v = if i % 3 == 0 { -5.0 } else { 5.0 };
        }
        x
    }

    /// Rows of varied magnitude, so the scales and mins span their 6-bit range.
    fn weights(ty: GgmlType, cols: usize, rows: usize, seed: u64) -> Vec<u8> {
        let rb = ty.row_bytes(cols).unwrap();
        let mut g = Lcg(seed);
        let mut w = vec![0u8; rb * rows];
        for chunk in w.chunks_exact_mut(rb) {
            let x: Vec<f32> = (0..cols)
                .map(|i| {
                    g.normal() * 0.05 * (1.0 + (i / 32 % 7) as f32) + 0.01 * ((i / 16) % 5) as f32
                })
                .collect();
            quantize_row(ty, &x, chunk).unwrap();
        }
        w
    }

    fn supported() -> bool {
        Isa::Avx512.supported() && crate::isa::has_avx512_vnni()
    }

    /// Every pass, the tail and both halves of each accumulator give the row kernel's bits.
    #[test]
    fn zmm_kmatvec_gives_the_row_kernels_bits() {
        if !supported() {
            return;
        }
        for ty in [GgmlType::Q4_K, GgmlType::Q6_K] {
            let (fast, reference) = (matvec_kernel(ty).unwrap(), tail_kernel(ty));
            for cols in [256, 1024, 2048] {
                for rows in [16, 17, 33, 48, 640] {
                    let rb = ty.row_bytes(cols).unwrap();
                    let w = weights(ty, cols, rows, (cols * 1000 + rows) as u64);
                    for outlier in [1.0, 300.0, 3000.0] {
                        let mut a = vec![0u8; GgmlType::Q8_K.row_bytes(cols).unwrap()];
                        let x = activation_like(cols, rows as u64, outlier);
                        quantize_activation_with(Isa::Avx512, GgmlType::Q8_K, &x, &mut a);
                        let (mut got, mut want) = (vec![0f32; rows], vec![0f32; rows]);
                        fast(&w, rb, &a, &mut got);
                        reference(&w, rb, &a, &mut want);
                        for r in 0..rows {
                            assert_eq!(
                                got[r].to_bits(),
                                want[r].to_bits(),
                                "{ty:?} {cols}x{rows} outlier {outlier} row {r}: {} vs {}",
                                got[r],
                                want[r]
                            );
                        }
                    }
                }
            }
        }
    }

    /// The extremes of the integer path: all quants and scales at their maximum, activations at ±127 / −128.
    #[test]
    fn zmm_kmatvec_extreme_blocks() {
        if !supported() {
            return;
        }
        let cols = 512;
        for ty in [GgmlType::Q4_K, GgmlType::Q6_K] {
            let rb = ty.row_bytes(cols).unwrap();
            let rows = 16;
            let mut w = vec![0xFFu8; rb * rows];
            // finite scales: d (and dmin) = 1.0 as f16
            for r in 0..rows {
                for b in 0..cols / 256 {
                    let base = r * rb + b * ty.type_size();
                    match ty {
                        GgmlType::Q4_K => w[base..base + 4].copy_from_slice(&[0, 0x3c, 0, 0x3c]),
                        _ => {
                            w[base + 192..base + 208].fill(if r % 2 == 0 { 0x7F } else { 0x80 });
                            w[base + 208..base + 210].copy_from_slice(&[0, 0x3c]);
                        }
                    }
                }
            }
            for v in [127.0f32, -127.0, -128.0] {
                let x = vec![v; cols];
                let mut a = vec![0u8; GgmlType::Q8_K.row_bytes(cols).unwrap()];
                quantize_activation_with(Isa::Avx512, GgmlType::Q8_K, &x, &mut a);
                let (mut got, mut want) = (vec![0f32; rows], vec![0f32; rows]);
                matvec_kernel(ty).unwrap()(&w, rb, &a, &mut got);
                tail_kernel(ty)(&w, rb, &a, &mut want);
                for r in 0..rows {
                    assert_eq!(got[r].to_bits(), want[r].to_bits(), "{ty:?} {v} row {r}");
                }
            }
        }
    }
}

#[cfg(test)]
mod ab {
    //! A/B timing against the row kernel on one thread (ignored by default; timings, not a check):
    //! `cargo test --release -p cria-kernels --lib zmm_kmatvec::ab -- --ignored --nocapture`.
    use super::*;
    use crate::isa::Isa;
    use crate::quant::{quantize_activation_with, quantize_row};
    use std::time::Instant;

    #[test]
    #[ignore]
    fn zmm_kmatvec_ab() {
        if !(Isa::Avx512.supported() && crate::isa::has_avx512_vnni()) {
            return;
        }
        let shapes = [
            ("gemma attn_output", GgmlType::Q4_K, 640, 1024),
            ("gemma ffn_down", GgmlType::Q4_K, 640, 2048),
            ("gemma ffn_down", GgmlType::Q6_K, 640, 2048),
            ("gemma ffn_down x18", GgmlType::Q4_K, 18 * 640, 2048),
            ("gemma ffn_down x18", GgmlType::Q6_K, 18 * 640, 2048),
        ];
        for (name, ty, rows, cols) in shapes {
            let rb = ty.row_bytes(cols).unwrap();
            let distinct = 64;
            let mut w = vec![0u8; rb * distinct];
            for (r, row) in w.chunks_exact_mut(rb).enumerate() {
                let x: Vec<f32> = (0..cols)
                    .map(|i| ((i * 7 + r * 13) as f32 * 0.37).sin())
                    .collect();
                quantize_row(ty, &x, row).unwrap();
            }
            let w: Vec<u8> = w.iter().copied().cycle().take(rb * rows).collect();
            let x: Vec<f32> = (0..cols).map(|i| (i as f32 * 0.11).cos()).collect();
            let mut a = vec![0u8; GgmlType::Q8_K.row_bytes(cols).unwrap()];
            quantize_activation_with(Isa::Avx512, GgmlType::Q8_K, &x, &mut a);
            let kernels = [
                ("rows", tail_kernel(ty)),
                ("zmm", matvec_kernel(ty).unwrap()),
            ];
            let mut out = vec![0f32; rows];
            let reps = (2_000_000_000 / w.len()).clamp(20, 5000);
            let mut best = [f64::MAX; 2];
            for _ in 0..reps {
                for (k, (_, f)) in kernels.iter().enumerate() {
                    let t = Instant::now();
                    f(&w, rb, &a, &mut out);
                    best[k] = best[k].min(t.elapsed().as_secs_f64());
                }
            }
            let gb = |s: f64| w.len() as f64 / s / 1e9;
            println!(
                "{name} {ty:?} {rows}x{cols} GB/s (best of {reps}): rows {:.1}, zmm {:.1}, ratio {:.2}",
                gb(best[0]),
                gb(best[1]),
                best[0] / best[1]
            );
        }
    }
}
