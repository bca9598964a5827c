//! Prefill GEMM on AVX-512 VNNI with 512-bit registers: the same sums as the 256-bit tiled kernels
//! (`tiled.rs`), bit for bit, in fewer instructions.
//!
//! Each zmm holds TWO 8-lane accumulators: weight row r in its low half and row r+1 in its high half, for
//! one token. So one `vpdpbusd`, one convert, one scale product and one FMA serve two (row, token) pairs,
//! and the token's activation block enters as a 256-bit broadcast load (free of ALU work). Per 32-element
//! block the integer lanes are the same exact integers as the ymm kernels' (lane i = Σ of elements
//! 4i..4i+3), the scale is the same single f32 product d_w·d_a, the FMA into the (row, token) accumulator
//! runs in block order, and the horizontal sum keeps `hsum`'s order: so every output has the old bits.
//!
//! The 32-element formats take the activations as unsigned a + 128 and the weights as signed w (u − off),
//! the integer sum starting at −128·Σw by fours: Σ(a + 128)·w − 128·Σw = Σ a·w, the same integers as the
//! ymm kernels' Σ (u − off)·a. That start is per row, so it sits in a register for the block like the
//! quants, and the token stream is only the quants and d_a.
//!
//! Work that does not depend on both a row and a token is done once per call instead of once per tile:
//! - per token and block (prepass): a + 128, d_a, s_a, laid out in panels of 8 tokens so that a register
//!   tile streams through memory;
//! - per pair of rows and block (prepass of each row tile): the signed quants of both rows, the
//!   [d_r ×8, d_r+1 ×8] scale vector and −128·Σw (K-quants: per group, the quants and the i16 sub-block
//!   scales);
//! - the scalar min/offset terms (Σ_b m_w·s_a; K-quants' −dmin·d_a·Σ m·bsum) as a small vector pass over
//!   16 tokens at a time, each lane one (row, token) sum in block order with the same roundings.
//!
//! A tile's sums leave through one batched horizontal reduction per four tokens ([`reduce16`], `hsum`'s
//! order), stored four rows of a token at a time.
//!
//! K-quants multiply the sub-block scale in with `vpmaddubsw` + `vpdpwssd` (pairs of products in i16, then
//! scaled by i16 and summed by two into i32: the same integers as `vpdpbusd` then `vpmulld`, in two
//! instructions instead of three µops).

// Register tiles are indexed [token][row pair] in both the block loop and the stores: index loops read clearer.
#![allow(clippy::needless_range_loop)]

use super::zmm_util::{dpwssd, h1, h2};
use crate::GgmlType;
use crate::dot::TiledFn;
use crate::quant::blocks::*;
use bytemuck::{Pod, cast_slice as cs};
use std::arch::x86_64::*;
use std::cell::RefCell;

/// Row pairs per register tile.
const P: usize = 2;
/// Tokens per register tile of the 32-element formats: P·T accumulators + P quants, scales and sum starts +
/// temporaries fit the 32 zmm registers. (The K-quant tiles take 8 tokens too, their P·8 integer sums in
/// registers and the float accumulators, touched once per super-block, partly on the stack.)
const T: usize = 8;

/// Per-thread buffers, reused across calls (they only grow). Token-side arrays for the register tiles (`aq`,
/// `da`) are laid out in panels ([`pidx`], K-quants' quants with block·8 + group for the block), those for the
/// vector min passes `[block][token]`, tokens padded to `ntp` (a multiple of 16); row-side arrays
/// `[block][pair]` (K-quants `[block][group][pair]`).
#[derive(Default)]
struct Scratch {
    /// The activation quants, 32 per entry.
    aq: Vec<__m256i>,
    /// d_a.
    da: Vec<f32>,
    /// K-quants: d_a `[block][token]` for the min pass.
    dl: Vec<f32>,
    /// s_a (Q8_1 activations).
    sa: Vec<f32>,
    /// K-quants: pairs of bsums (2k in the low half, 2k+1 in the high) `[(block * 8 + k) * ntp + t]`.
    bsp: Vec<i32>,
    /// Decoded unsigned quants of the current row tile, two rows per zmm.
    u: Vec<__m512i>,
    /// K-quants: the i16 sub-block scales matching `u`.
    sc: Vec<__m512i>,
    /// [d_r ×8, d_r+1 ×8].
    dw: Vec<__m512>,
    /// 32-element formats: −128·Σw by fours of the pair of rows in `u` (the start of each integer sum).
    c: Vec<__m512i>,
    /// The scalar terms of the current row tile: `[r * ntp + t]`.
    mins: Vec<f32>,
    /// K-quants, per row of the current tile and super-block (`[r * nb + b]`): the i16 sub-block scales, d,
    /// dmin, and the min coefficients in pairs as `bsp` (`[(r * nb + b) * 8 + k]`).
    ks: Vec<__m256i>,
    kd: Vec<f32>,
    dmin: Vec<f32>,
    mp: Vec<i32>,
}

/// Tokens per panel of the token-side arrays that the register tiles read (`aq`, `da`).
const PANEL: usize = 8;

/// Index of (block `b`, token `t`) in a token-side array of `nbk` blocks per token, laid out in panels of
/// [`PANEL`] tokens `[t / PANEL][b][t % PANEL]`: a register tile of up to PANEL tokens within one panel reads
/// its blocks as one sequential stream (a `[b][t]` layout strides by all tokens from block to block, which the
/// prefetchers follow worse).
#[inline]
fn pidx(nbk: usize, b: usize, t: usize) -> usize {
    ((t / PANEL) * nbk + b) * PANEL + t % PANEL
}

/// Makes `v` at least `n` long. Entries are written before they are read, except the padding tokens
/// (`n_tok..ntp`), whose lanes of the vector min pass are computed and dropped: stale values there are fine,
/// and not clearing saves a pass over a few hundred KB per call.
fn grow<X: Copy>(v: &mut Vec<X>, n: usize, zero: X) {
    if v.len() < n {
        v.resize(n, zero);
    }
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// 32 bytes from the start of `p` (panics if shorter).
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn ld<X: Pod>(p: &[X]) -> __m256i {
    let b: &[u8] = &cs(p)[..32];
    // SAFETY: b is exactly 32 readable bytes; loadu has no alignment requirement.
    unsafe { _mm256_loadu_si256(b.as_ptr().cast()) }
}

/// Row a in the low half, row b in the high half.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn pair_i(a: __m256i, b: __m256i) -> __m512i {
    _mm512_inserti64x4::<1>(_mm512_castsi256_si512(a), b)
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn pair_ps(a: f32, b: f32) -> __m512 {
    _mm512_mask_blend_ps(0xFF00, _mm512_set1_ps(a), _mm512_set1_ps(b))
}

/// `hsum` (kernels.rs) of both 8-lane halves of eight vectors at once: ((v0+v4)+(v2+v6)) + ((v1+v5)+(v3+v7)),
/// each add one rounding, in the same order (float addition is commutative bit for bit, so the order of the
/// two operands within an add is free). Lane 4k + m of the result is half k % 2 of `a[2m + k / 2]`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn reduce16(a: &[__m512; 8]) -> __m512 {
    // v_i + v_i+4 of each half, four halves per vector: lane k of s[i] holds half k % 2 of a[2i + k / 2]
    let s: [__m512; 4] = std::array::from_fn(|i| {
        let (x, y) = (a[2 * i], a[2 * i + 1]);
        _mm512_add_ps(
            _mm512_shuffle_f32x4::<0b10_00_10_00>(x, y),
            _mm512_shuffle_f32x4::<0b11_01_11_01>(x, y),
        )
    });
    // (s0 + s2, s1 + s3) of each 128-bit lane, two vectors' lanes side by side
    let t: [__m512; 2] = std::array::from_fn(|j| {
        let (x, y) = (_mm512_castps_pd(s[2 * j]), _mm512_castps_pd(s[2 * j + 1]));
        _mm512_add_ps(
            _mm512_castpd_ps(_mm512_unpacklo_pd(x, y)),
            _mm512_castpd_ps(_mm512_unpackhi_pd(x, y)),
        )
    });
    // the last pairs: lane m of each 128-bit lane from s[m]
    _mm512_add_ps(
        _mm512_shuffle_ps::<0b10_00_10_00>(t[0], t[1]),
        _mm512_shuffle_ps::<0b11_01_11_01>(t[0], t[1]),
    )
}

/// Writes a register tile's sums: `acc[t][p]` holds rows 2p (low half) and 2p + 1 (high half) of the tile
/// for token t0 + t. Each output is `hsum` of its 8 lanes plus its scalar term from `mins` (`[r * ntp + t]`,
/// at least 3·ntp + t0 + 4 long), or plus 0.0 without one (as the 256-bit kernels add), stored at
/// `out[(t0 + t) * stride + r0 + r]` for the tile's `n_rows` rows: four rows of a token are contiguous there,
/// so four tokens at a time take one reduction of eight accumulators and four masked stores.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
#[allow(clippy::too_many_arguments)]
fn store_tile<const PP: usize, const TT: usize>(
    acc: &[[__m512; PP]; TT],
    mins: Option<&[f32]>,
    ntp: usize,
    t0: usize,
    n_rows: usize,
    r0: usize,
    out: &mut [f32],
    stride: usize,
) {
    assert!(PP <= 2 && (1..=4).contains(&n_rows) && n_rows <= 2 * PP);
    assert!((t0 + TT - 1) * stride + r0 + n_rows <= out.len());
    // [row][token] → [token][row]
    let tr = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    let rmask = (1u8 << n_rows) - 1;
    for g in (0..TT).step_by(4) {
        let a: [__m512; 8] = std::array::from_fn(|i| {
            let (m, p) = (g + i / 2, i % 2);
            if m < TT && p < PP {
                acc[m][p]
            } else {
                _mm512_setzero_ps()
            }
        });
        // lane 4k + m: row k, token t0 + g + m
        let mut mv = _mm512_setzero_ps();
        for k in 0..4 * mins.is_some() as usize {
            let m = &mins.unwrap_or_default()[k * ntp + t0 + g..][..4];
            // SAFETY: m is 4 floats.
            let m = unsafe { _mm_loadu_ps(m.as_ptr()) };
            mv = match k {
                0 => _mm512_insertf32x4::<0>(mv, m),
                1 => _mm512_insertf32x4::<1>(mv, m),
                2 => _mm512_insertf32x4::<2>(mv, m),
                _ => _mm512_insertf32x4::<3>(mv, m),
            };
        }
        let v = _mm512_permutexvar_ps(tr, _mm512_add_ps(reduce16(&a), mv));
        for m in 0..(TT - g).min(4) {
            // lanes 4m..4m + n_rows go to out[o..o + n_rows]
            let lane = match m {
                0 => _mm512_castps512_ps128(v),
                1 => _mm512_extractf32x4_ps::<1>(v),
                2 => _mm512_extractf32x4_ps::<2>(v),
                _ => _mm512_extractf32x4_ps::<3>(v),
            };
            let o = (t0 + g + m) * stride + r0;
            // SAFETY: only the n_rows unmasked lanes are written (masked-off lanes neither write nor fault), at
            // out[o..o + n_rows], in bounds as asserted above.
            unsafe { _mm_mask_storeu_ps(out.as_mut_ptr().add(o), rmask, lane) };
        }
    }
}

/// 16 bytes as 32 nibbles: low nibbles (elements 0..16) then high nibbles (16..32).
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn nib32(qs: &[u8; 16]) -> __m256i {
    // SAFETY: qs is 16 readable bytes.
    let x = unsafe { _mm_loadu_si128(qs.as_ptr().cast()) };
    let both = _mm256_set_m128i(_mm_srli_epi16::<4>(x), x);
    _mm256_and_si256(both, _mm256_set1_epi8(0xF))
}

/// Nibbles with the fifth bits of `qh` (bit j for element j) as 0x10.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn q5(qs: &[u8; 16], qh: [u8; 4]) -> __m256i {
    let hi = _mm256_maskz_mov_epi8(u32::from_le_bytes(qh), _mm256_set1_epi8(0x10));
    _mm256_or_si256(nib32(qs), hi)
}

/// Weight block as signed quants w with value w·d + m: (w, d, m).
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn dec_q4_0(b: &BlockQ4_0) -> (__m256i, f32, f32) {
    (
        _mm256_sub_epi8(nib32(&b.qs), _mm256_set1_epi8(8)),
        h1(b.d),
        0.0,
    )
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn dec_q4_1(b: &BlockQ4_1) -> (__m256i, f32, f32) {
    let (d, m) = h2(b.d, b.m);
    (nib32(&b.qs), d, m)
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn dec_q5_0(b: &BlockQ5_0) -> (__m256i, f32, f32) {
    (
        _mm256_sub_epi8(q5(&b.qs, b.qh), _mm256_set1_epi8(16)),
        h1(b.d),
        0.0,
    )
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn dec_q5_1(b: &BlockQ5_1) -> (__m256i, f32, f32) {
    let (d, m) = h2(b.d, b.m);
    (q5(&b.qs, b.qh), d, m)
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn dec_q8_0(b: &BlockQ8_0) -> (__m256i, f32, f32) {
    (ld(&b.qs), h1(b.d), 0.0)
}

/// Activation block: (d, s or 0, quants).
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn act_q8_0(b: &BlockQ8_0) -> (f32, f32, &[i8; 32]) {
    (h1(b.d), 0.0, &b.qs)
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn act_q8_1(b: &BlockQ8_1) -> (f32, f32, &[i8; 32]) {
    let (d, s) = h2(b.d, b.s);
    (d, s, &b.qs)
}

/// −128·Σw by fours of a pair of rows' signed quants: the start of the integer sum that makes the unsigned
/// a + 128 of [`act_u8`] give Σ a·w.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn neg128_sum(w: __m512i) -> __m512i {
    let z = _mm512_setzero_si512();
    _mm512_sub_epi32(z, _mm512_dpbusd_epi32(z, _mm512_set1_epi8(-128), w))
}

/// Activation quants a as the unsigned a + 128 (flipping the sign bit adds 128).
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn act_u8(q: &[i8; 32]) -> __m256i {
    _mm256_xor_si256(ld(q), _mm256_set1_epi8(-128))
}

/// The row pair `p` of a tile starting at row `r0`: (row, partner). Past the last row the partner is the row
/// itself (computed, not stored).
fn pair_rows(r0: usize, p: usize, rows: usize) -> (usize, usize) {
    let r = r0 + 2 * p;
    (r, (r + 1).min(rows - 1))
}

/// The register tile of a 32-element format: PP row pairs × TT tokens from `t0`, all blocks, over a
/// [`Scratch`]'s arrays.
struct LegacyTile<'a> {
    u: &'a [__m512i],
    dw: &'a [__m512],
    c: &'a [__m512i],
    aq: &'a [__m256i],
    da: &'a [f32],
    mins: &'a [f32],
    ntp: usize,
    nb: usize,
    t0: usize,
    /// Rows of this tile that exist (the last pair may be half).
    n_rows: usize,
}

macro_rules! legacy {
    ($gemm:ident, $tile:ident, $W:ty, $A:ty, $dec:ident, $act:ident, $has_min:expr) => {
        #[inline]
        #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
        fn $tile<const PP: usize, const TT: usize>(
            k: &LegacyTile,
            r0: usize,
            out: &mut [f32],
            stride: usize,
        ) {
            let (nb, ntp, t0) = (k.nb, k.ntp, k.t0);
            // the hot loop indexes raw pointers (bounds checks per block were a third of its instructions):
            // every index below is under these bounds
            assert!(k.u.len() >= nb * PP && k.dw.len() >= nb * PP && k.c.len() >= nb * PP);
            assert!(t0 + TT <= ntp && t0 % PANEL + TT <= PANEL);
            assert!(k.aq.len() >= nb * ntp && k.da.len() >= nb * ntp);
            let (up, dwp, cp, aqp, dap) = (
                k.u.as_ptr(),
                k.dw.as_ptr(),
                k.c.as_ptr(),
                k.aq.as_ptr(),
                k.da.as_ptr(),
            );
            let mut acc = [[_mm512_setzero_ps(); PP]; TT];
            for b in 0..nb {
                // SAFETY: b·PP + p < nb·PP (p < PP), asserted in bounds above.
                let u: [__m512i; PP] = std::array::from_fn(|p| unsafe { *up.add(b * PP + p) });
                // SAFETY: as for u.
                let dw: [__m512; PP] = std::array::from_fn(|p| unsafe { *dwp.add(b * PP + p) });
                // SAFETY: as for u.
                let c: [__m512i; PP] = std::array::from_fn(|p| unsafe { *cp.add(b * PP + p) });
                // tokens t0..t0 + TT of block b, all in t0's panel
                let i = pidx(nb, b, t0);
                for t in 0..TT {
                    // SAFETY: i + t = pidx(nb, b, t0 + t) < nb·ntp (t0 + TT ≤ ntp within one panel), asserted in
                    // bounds of aq and da.
                    let (a, da) = unsafe {
                        (
                            _mm512_broadcast_i64x4(*aqp.add(i + t)),
                            _mm512_set1_ps(*dap.add(i + t)),
                        )
                    };
                    for p in 0..PP {
                        // −128·Σw + Σ(a + 128)·w = Σ a·w by fours: the same integers as Σ (u − off)·a
                        let x = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(c[p], a, u[p]));
                        let s = _mm512_mul_ps(dw[p], da);
                        acc[t][p] = _mm512_fmadd_ps(x, s, acc[t][p]);
                    }
                }
            }
            let mins = if $has_min { Some(k.mins) } else { None };
            store_tile::<PP, TT>(&acc, mins, ntp, t0, k.n_rows, r0, out, stride);
        }

        #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
        fn $gemm(
            w: &[u8],
            w_row: usize,
            acts: &[u8],
            a_row: usize,
            n_tok: usize,
            out: &mut [f32],
            stride: usize,
        ) {
            let rows = w.len() / w_row;
            let nb = w_row / size_of::<$W>();
            if rows == 0 || n_tok == 0 || nb == 0 {
                return;
            }
            let ntp = n_tok.next_multiple_of(16);
            let wr = |r: usize| -> &[$W] { cs(&w[r * w_row..(r + 1) * w_row]) };
            let mut s = SCRATCH.take();
            let (zi, zf) = (_mm512_setzero_si512(), _mm512_setzero_ps());
            grow(&mut s.aq, nb * ntp, _mm256_setzero_si256());
            grow(&mut s.da, nb * ntp, 0.0);
            grow(&mut s.u, nb * P, zi);
            grow(&mut s.dw, nb * P, zf);
            grow(&mut s.c, nb * P, zi);
            if $has_min {
                grow(&mut s.sa, nb * ntp, 0.0);
            }
            for t in 0..n_tok {
                let a: &[$A] = cs(&acts[t * a_row..t * a_row + nb * size_of::<$A>()]);
                for (b, blk) in a.iter().enumerate() {
                    let (d, sa, q) = $act(blk);
                    let i = pidx(nb, b, t);
                    (s.aq[i], s.da[i]) = (act_u8(q), d);
                    if $has_min {
                        s.sa[b * ntp + t] = sa;
                    }
                }
            }
            // the scalar terms, 4 rows and a tile's overhang
            if $has_min {
                s.mins.clear();
                s.mins.resize(2 * P * ntp + 16, 0.0);
            }
            let mut r0 = 0;
            while r0 < rows {
                let n_rows = (rows - r0).min(2 * P);
                let np = n_rows.div_ceil(2);
                for p in 0..np {
                    let (ra, rb) = pair_rows(r0, p, rows);
                    for (b, (x, y)) in wr(ra).iter().zip(wr(rb)).enumerate() {
                        let ((ux, dx, _), (uy, dy, _)) = ($dec(x), $dec(y));
                        let (u, j) = (pair_i(ux, uy), b * np + p);
                        s.u[j] = u;
                        s.dw[j] = pair_ps(dx, dy);
                        s.c[j] = neg128_sum(u);
                    }
                }
                if $has_min {
                    // Σ_b m_w·s_a in block order, a product then a sum each (as `mins += mw * sa`)
                    for i in 0..n_rows {
                        let mw: Vec<f32> = wr(r0 + i).iter().map(|x| $dec(x).2).collect();
                        for t in (0..ntp).step_by(16) {
                            let mut v = _mm512_setzero_ps();
                            for (b, m) in mw.iter().enumerate() {
                                let sa = &s.sa[b * ntp + t..][..16];
                                // SAFETY: sa is 16 floats.
                                let sa = unsafe { _mm512_loadu_ps(sa.as_ptr()) };
                                v = _mm512_add_ps(v, _mm512_mul_ps(_mm512_set1_ps(*m), sa));
                            }
                            let dst = &mut s.mins[i * ntp + t..][..16];
                            // SAFETY: dst is 16 floats.
                            unsafe { _mm512_storeu_ps(dst.as_mut_ptr(), v) };
                        }
                    }
                }
                let mut t0 = 0;
                while t0 < n_tok {
                    let tt = match n_tok - t0 {
                        T.. => T,
                        4..T => 4,
                        2..4 => 2,
                        _ => 1,
                    };
                    let k = LegacyTile {
                        u: &s.u,
                        dw: &s.dw,
                        c: &s.c,
                        aq: &s.aq,
                        da: &s.da,
                        mins: &s.mins,
                        ntp,
                        nb,
                        t0,
                        n_rows,
                    };
                    match (np, tt) {
                        (2, T) => $tile::<2, T>(&k, r0, out, stride),
                        (2, 4) => $tile::<2, 4>(&k, r0, out, stride),
                        (2, 2) => $tile::<2, 2>(&k, r0, out, stride),
                        (2, _) => $tile::<2, 1>(&k, r0, out, stride),
                        (_, T) => $tile::<1, T>(&k, r0, out, stride),
                        (_, 4) => $tile::<1, 4>(&k, r0, out, stride),
                        (_, 2) => $tile::<1, 2>(&k, r0, out, stride),
                        (_, _) => $tile::<1, 1>(&k, r0, out, stride),
                    }
                    t0 += tt;
                }
                r0 += n_rows;
            }
            SCRATCH.set(s);
        }
    };
}

legacy!(
    gemm_q4_0, tile_q4_0, BlockQ4_0, BlockQ8_0, dec_q4_0, act_q8_0, false
);
legacy!(
    gemm_q4_1, tile_q4_1, BlockQ4_1, BlockQ8_1, dec_q4_1, act_q8_1, true
);
legacy!(
    gemm_q5_0, tile_q5_0, BlockQ5_0, BlockQ8_0, dec_q5_0, act_q8_0, false
);
legacy!(
    gemm_q5_1, tile_q5_1, BlockQ5_1, BlockQ8_1, dec_q5_1, act_q8_1, true
);
legacy!(
    gemm_q8_0, tile_q8_0, BlockQ8_0, BlockQ8_0, dec_q8_0, act_q8_0, false
);

/// A K-quant super-block's scales as the tiled kernel uses them: `s16[2g], s16[2g+1]` scale the first and
/// second 16 elements of group g (32 elements), `m16[j]` multiplies bsum j in the min term; d and dmin.
struct KMeta {
    s16: [i16; 16],
    m16: [i16; 16],
    d: f32,
    dmin: f32,
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn meta_q4_k(w: &BlockQ4K) -> KMeta {
    let (mut s16, mut m16) = ([0i16; 16], [0i16; 16]);
    for j in 0..8 {
        let (s, m) = scale_min_k4(j, &w.scales);
        (s16[2 * j], s16[2 * j + 1]) = (s as i16, s as i16);
        (m16[2 * j], m16[2 * j + 1]) = (m as i16, m as i16);
    }
    let (d, dmin) = h2(w.d, w.dmin);
    KMeta { s16, m16, d, dmin }
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn meta_q6_k(w: &BlockQ6K) -> KMeta {
    let s16 = std::array::from_fn(|j| w.scales[j] as i16);
    let d = h1(w.d);
    // the −32 offset: Σ sc·(q − 32)·a = Σ sc·q·a − 32·Σ sc·bsum, folded as "min" with dmin = 32·d
    KMeta {
        s16,
        m16: s16,
        d,
        dmin: 32.0 * d,
    }
}

/// Q4_K group g (32 elements): unsigned quants.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn grp_q4_k(w: &BlockQ4K, g: usize) -> __m256i {
    let q = ld(&w.qs[32 * (g / 2)..]);
    let q = if g.is_multiple_of(2) {
        q
    } else {
        _mm256_srli_epi16::<4>(q)
    };
    _mm256_and_si256(q, _mm256_set1_epi8(0xF))
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn grp_q6_k(w: &BlockQ6K, g: usize) -> __m256i {
    let (h, k) = (g / 4, g % 4);
    let ql = ld(&w.ql[64 * h + 32 * (k & 1)..]);
    let low = if k < 2 {
        ql
    } else {
        _mm256_srli_epi16::<4>(ql)
    };
    let low = _mm256_and_si256(low, _mm256_set1_epi8(0xF));
    let qh = _mm256_srl_epi16(ld(&w.qh[32 * h..]), _mm_cvtsi32_si128(2 * k as i32));
    let high = _mm256_slli_epi16::<4>(_mm256_and_si256(qh, _mm256_set1_epi8(3)));
    _mm256_or_si256(low, high)
}

/// The register tile of a K-quant: PP row pairs × TT tokens from `t0`, all super-blocks, over a
/// [`Scratch`]'s arrays.
struct KTile<'a> {
    u: &'a [__m512i],
    sc: &'a [__m512i],
    dw: &'a [__m512],
    aq: &'a [__m256i],
    da: &'a [f32],
    mins: &'a [f32],
    ntp: usize,
    nb: usize,
    t0: usize,
    n_rows: usize,
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn k_tile<const PP: usize, const TT: usize>(k: &KTile, r0: usize, out: &mut [f32], stride: usize) {
    let (nb, ntp, t0) = (k.nb, k.ntp, k.t0);
    // raw pointers in the hot loop, every index under these bounds (as in the 32-element tile)
    assert!(k.u.len() >= nb * 8 * PP && k.sc.len() >= nb * 8 * PP && k.dw.len() >= nb * PP);
    assert!(t0 + TT <= ntp && t0 % PANEL + TT <= PANEL);
    assert!(k.aq.len() >= nb * 8 * ntp && k.da.len() >= nb * ntp);
    let (up, scp, dwp, aqp, dap) = (
        k.u.as_ptr(),
        k.sc.as_ptr(),
        k.dw.as_ptr(),
        k.aq.as_ptr(),
        k.da.as_ptr(),
    );
    let mut acc = [[_mm512_setzero_ps(); PP]; TT];
    for b in 0..nb {
        let mut sumi = [[_mm512_setzero_si512(); TT]; PP];
        for g in 0..8 {
            let j = (b * 8 + g) * PP;
            // SAFETY: j + p < nb·8·PP (b < nb, g < 8, p < PP), asserted above.
            let u: [__m512i; PP] = std::array::from_fn(|p| unsafe { *up.add(j + p) });
            // SAFETY: as for u.
            let sc: [__m512i; PP] = std::array::from_fn(|p| unsafe { *scp.add(j + p) });
            let i = pidx(nb * 8, b * 8 + g, t0);
            // the tokens of the group after next, a line at a time (a hint, which cannot fault: an address past
            // the end is fine); with the 8-token tiles this measured +9% over no prefetch (and over 4 tokens)
            for l in (0..TT).step_by(2) {
                _mm_prefetch::<_MM_HINT_T0>(aqp.wrapping_add(i + 2 * PANEL + l).cast());
            }
            for t in 0..TT {
                // SAFETY: i + t = pidx(nb·8, b·8 + g, t0 + t) < nb·8·ntp (t0 + TT ≤ ntp within one panel),
                // asserted above.
                let a = unsafe { _mm512_broadcast_i64x4(*aqp.add(i + t)) };
                for p in 0..PP {
                    // |u| ≤ 63, |a| ≤ 128: a pair of products fits i16 without saturating
                    let x = _mm512_maddubs_epi16(u[p], a);
                    sumi[p][t] = dpwssd(sumi[p][t], x, sc[p]);
                }
            }
        }
        let i = pidx(nb, b, t0);
        for t in 0..TT {
            // SAFETY: i + t = pidx(nb, b, t0 + t) < nb·ntp, as for aq.
            let da = unsafe { _mm512_set1_ps(*dap.add(i + t)) };
            for p in 0..PP {
                // SAFETY: b·PP + p < nb·PP, asserted above.
                let dw = unsafe { *dwp.add(b * PP + p) };
                let s = _mm512_mul_ps(dw, da);
                acc[t][p] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sumi[p][t]), s, acc[t][p]);
            }
        }
    }
    store_tile::<PP, TT>(&acc, Some(k.mins), ntp, t0, k.n_rows, r0, out, stride);
}

/// vpermw indices taking i16 lanes (2g, 2g+1) of each 16-lane half into its 8 + 8 lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn scale_idx(g: usize) -> __m512i {
    let i: [i16; 32] = std::array::from_fn(|l| (16 * (l / 16) + 2 * g + (l % 16) / 8) as i16);
    // SAFETY: i is 64 bytes.
    unsafe { _mm512_loadu_si512(i.as_ptr().cast()) }
}

macro_rules! kquant {
    ($gemm:ident, $W:ty, $grp:ident, $meta:ident) => {
        #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
        fn $gemm(
            w: &[u8],
            w_row: usize,
            acts: &[u8],
            a_row: usize,
            n_tok: usize,
            out: &mut [f32],
            stride: usize,
        ) {
            let rows = w.len() / w_row;
            let nb = w_row / size_of::<$W>();
            if rows == 0 || n_tok == 0 || nb == 0 {
                return;
            }
            let ntp = n_tok.next_multiple_of(16);
            let wr = |r: usize| -> &[$W] { cs(&w[r * w_row..(r + 1) * w_row]) };
            let mut s = SCRATCH.take();
            grow(&mut s.aq, nb * 8 * ntp, _mm256_setzero_si256());
            grow(&mut s.da, nb * ntp, 0.0);
            grow(&mut s.dl, nb * ntp, 0.0);
            grow(&mut s.bsp, nb * 8 * ntp, 0);
            for t in 0..n_tok {
                let a: &[BlockQ8K] = cs(&acts[t * a_row..t * a_row + nb * size_of::<BlockQ8K>()]);
                for (b, blk) in a.iter().enumerate() {
                    (s.da[pidx(nb, b, t)], s.dl[b * ntp + t]) = (blk.d(), blk.d());
                    for g in 0..8 {
                        s.aq[pidx(nb * 8, b * 8 + g, t)] = ld(&blk.qs[32 * g..]);
                        let (lo, hi) = (blk.bsum(2 * g) as u16, blk.bsum(2 * g + 1) as u16);
                        s.bsp[(b * 8 + g) * ntp + t] = (lo as u32 | (hi as u32) << 16) as i32;
                    }
                }
            }
            let idx: [__m512i; 8] = std::array::from_fn(|g| scale_idx(g));
            let (zi, zf) = (_mm512_setzero_si512(), _mm512_setzero_ps());
            grow(&mut s.u, nb * 8 * P, zi);
            grow(&mut s.sc, nb * 8 * P, zi);
            grow(&mut s.dw, nb * P, zf);
            grow(&mut s.ks, nb * 2 * P, _mm256_setzero_si256());
            grow(&mut s.kd, nb * 2 * P, 0.0);
            grow(&mut s.dmin, nb * 2 * P, 0.0);
            grow(&mut s.mp, nb * 8 * 2 * P, 0);
            // rows past a tile's last (and tokens past the last) are computed and dropped, never cleared
            s.mins.clear();
            s.mins.resize(2 * P * ntp + 16, 0.0);
            let mut r0 = 0;
            while r0 < rows {
                let n_rows = (rows - r0).min(2 * P);
                let np = n_rows.div_ceil(2);
                // per row and super-block, once: the i16 scales, d, dmin and the min coefficients in pairs
                for i in 0..n_rows {
                    for (b, x) in wr(r0 + i).iter().enumerate() {
                        let (m, j) = ($meta(x), i * nb + b);
                        // SAFETY: s16 is 32 bytes.
                        s.ks[j] = unsafe { _mm256_loadu_si256(m.s16.as_ptr().cast()) };
                        (s.kd[j], s.dmin[j]) = (m.d, m.dmin);
                        for k in 0..8 {
                            let (lo, hi) =
                                (m.m16[2 * k] as u16 as u32, m.m16[2 * k + 1] as u16 as u32);
                            s.mp[j * 8 + k] = (lo | hi << 16) as i32;
                        }
                    }
                }
                for p in 0..np {
                    let (ra, rb) = pair_rows(r0, p, rows);
                    let (ia, ib) = ((ra - r0) * nb, (rb - r0) * nb);
                    for (b, (x, y)) in wr(ra).iter().zip(wr(rb)).enumerate() {
                        let s16 = pair_i(s.ks[ia + b], s.ks[ib + b]);
                        for (g, ix) in idx.iter().enumerate() {
                            let j = (b * 8 + g) * np + p;
                            s.u[j] = pair_i($grp(x, g), $grp(y, g));
                            s.sc[j] = _mm512_permutexvar_epi16(*ix, s16);
                        }
                        s.dw[b * np + p] = pair_ps(s.kd[ia + b], s.kd[ib + b]);
                    }
                }
                // −dmin·d_a·Σ m·bsum per super-block, in order: mins −= (dmin·d_a)·corr; the tile's rows side by
                // side (independent chains), sharing the bsum loads
                for t in (0..ntp).step_by(16) {
                    let mut v = [_mm512_setzero_ps(); 2 * P];
                    for b in 0..nb {
                        let bs = &s.bsp[b * 8 * ntp + t..][..7 * ntp + 16];
                        let x: [__m512i; 8] = std::array::from_fn(|k| {
                            let x = bs.as_ptr().wrapping_add(k * ntp);
                            // SAFETY: k·ntp + 16 ≤ 7·ntp + 16 = bs.len(): x is 16 readable i32.
                            unsafe { _mm512_loadu_si512(x.cast()) }
                        });
                        let da = &s.dl[b * ntp + t..][..16];
                        // SAFETY: da is 16 floats.
                        let da = unsafe { _mm512_loadu_ps(da.as_ptr()) };
                        for (i, v) in v.iter_mut().enumerate().take(n_rows) {
                            let mp = &s.mp[(i * nb + b) * 8..][..8];
                            let mut corr = _mm512_setzero_si512();
                            for k in 0..8 {
                                corr = dpwssd(corr, x[k], _mm512_set1_epi32(mp[k]));
                            }
                            let f = _mm512_mul_ps(_mm512_set1_ps(s.dmin[i * nb + b]), da);
                            *v = _mm512_sub_ps(*v, _mm512_mul_ps(f, _mm512_cvtepi32_ps(corr)));
                        }
                    }
                    for (i, v) in v.iter().enumerate().take(n_rows) {
                        let dst = &mut s.mins[i * ntp + t..][..16];
                        // SAFETY: dst is 16 floats.
                        unsafe { _mm512_storeu_ps(dst.as_mut_ptr(), *v) };
                    }
                }
                // the next row tile's weights towards L2 while this one runs (a hint, cannot fault), spread over
                // the token tiles: its unpacking above otherwise waits on DRAM (a third of `gemm_q6_k`'s own
                // samples sat on its first load of each row)
                let next = &w[((r0 + n_rows) * w_row).min(w.len())
                    ..((r0 + n_rows + 2 * P) * w_row).min(w.len())];
                let lines = next.len().div_ceil(64);
                let per_tile = lines.div_ceil(n_tok.div_ceil(8));
                let mut line = 0;
                let mut t0 = 0;
                while t0 < n_tok {
                    for _ in 0..per_tile.min(lines - line) {
                        _mm_prefetch::<_MM_HINT_T1>(next.as_ptr().wrapping_add(64 * line).cast());
                        line += 1;
                    }
                    let tt = match n_tok - t0 {
                        8.. => 8,
                        4..8 => 4,
                        2..4 => 2,
                        _ => 1,
                    };
                    let k = KTile {
                        u: &s.u,
                        sc: &s.sc,
                        dw: &s.dw,
                        aq: &s.aq,
                        da: &s.da,
                        mins: &s.mins,
                        ntp,
                        nb,
                        t0,
                        n_rows,
                    };
                    match (np, tt) {
                        (2, 8) => k_tile::<2, 8>(&k, r0, out, stride),
                        (2, 4) => k_tile::<2, 4>(&k, r0, out, stride),
                        (2, 2) => k_tile::<2, 2>(&k, r0, out, stride),
                        (2, _) => k_tile::<2, 1>(&k, r0, out, stride),
                        (_, 8) => k_tile::<1, 8>(&k, r0, out, stride),
                        (_, 4) => k_tile::<1, 4>(&k, r0, out, stride),
                        (_, 2) => k_tile::<1, 2>(&k, r0, out, stride),
                        (_, _) => k_tile::<1, 1>(&k, r0, out, stride),
                    }
                    t0 += tt;
                }
                r0 += n_rows;
            }
            SCRATCH.set(s);
        }
    };
}

kquant!(gemm_q4_k, BlockQ4K, grp_q4_k, meta_q4_k);
kquant!(gemm_q6_k, BlockQ6K, grp_q6_k, meta_q6_k);

/// The 512-bit GEMM kernel for `ty`, if any. Callers hand it out only on a CPU with AVX-512 F/BW/VL + VNNI
/// (checked in `x86::tiled_kernel`).
pub(super) fn tiled_kernel(ty: GgmlType) -> Option<TiledFn> {
    macro_rules! tiled {
        ($f:ident) => {
            Some(|w: &[u8], wr: usize, a: &[u8], ar: usize, n: usize, out: &mut [f32], s: usize| {
                // SAFETY: this table is only reached on a CPU with AVX-512 F/BW/VL + VNNI (see above), which
                // implies AVX2, FMA and F16C.
                unsafe { $f(w, wr, a, ar, n, out, s) }
            })
        };
    }
    use GgmlType::*;
    match ty {
        Q4_0 => tiled!(gemm_q4_0),
        Q4_1 => tiled!(gemm_q4_1),
        Q5_0 => tiled!(gemm_q5_0),
        Q5_1 => tiled!(gemm_q5_1),
        Q8_0 => tiled!(gemm_q8_0),
        Q4_K => tiled!(gemm_q4_k),
        Q6_K => tiled!(gemm_q6_k),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    //! The 512-bit kernel against the 256-bit AVX-512 VNNI tiled kernel it replaces: same bits, every output.
    use super::*;
    use crate::isa::{Isa, has_avx512_vnni};
    use crate::quant::{activation_type, quantize_activation_with, quantize_row};

    struct Lcg(u64);

    impl Lcg {
        /// Uniform in [-1, 1).
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

    /// Like a residual stream (as `tests/dot_order.rs`): normal values, a few outlier channels of both signs,
    /// and one block of ±max (quants at ±127).
    fn activation_like(n: usize, seed: u64, outlier: f32) -> Vec<f32> {
        let mut g = Lcg(seed);
        let mut x: Vec<f32> = (0..n).map(|_| g.normal()).collect();
        for (k, c) in [3usize, 77, 200, 511, 640].into_iter().enumerate() {
            if c < n {
                x[c] = outlier * if k % 2 == 0 { 1.0 } else { -1.0 } * (1.0 + g.next().abs());
            }
        }
        if n >= 64 {
            for (i, v) in x[32..64].iter_mut().enumerate() {
                *v = if i % 3 == 0 { -5.0 } else { 5.0 };
            }
        }
        x
    }

    const TYPES: [GgmlType; 7] = [
        GgmlType::Q4_0,
        GgmlType::Q4_1,
        GgmlType::Q5_0,
        GgmlType::Q5_1,
        GgmlType::Q8_0,
        GgmlType::Q4_K,
        GgmlType::Q6_K,
    ];

    fn check(ty: GgmlType, n: usize, rows: usize, n_tok: usize, outlier: f32, seed: u64) {
        let (Some(new), Some(old)) = (
            tiled_kernel(ty),
            super::super::avx512::vnni::tiled_kernel(ty),
        ) else {
            panic!("{ty:?}: no kernel");
        };
        let rb = ty.row_bytes(n).expect("whole blocks");
        let mut g = Lcg(seed);
        let mut w = vec![0u8; rb * rows];
        for chunk in w.chunks_exact_mut(rb) {
            let x: Vec<f32> = (0..n).map(|_| g.normal() * 0.05).collect();
            quantize_row(ty, &x, chunk).expect("quantize");
        }
        let at = activation_type(ty);
        let ab = at.row_bytes(n).expect("whole blocks");
        let mut a = vec![0u8; ab * n_tok];
        for (t, chunk) in a.chunks_exact_mut(ab).enumerate() {
            let x = activation_like(n, seed + 31 * t as u64, outlier);
            quantize_activation_with(Isa::Scalar, at, &x, chunk);
        }
        // a stride past the rows, and a poisoned gap, to check where each output lands
        let stride = rows + 3;
        let len = (n_tok - 1) * stride + rows;
        let (mut got, mut want) = (vec![f32::NAN; len], vec![f32::NAN; len]);
        new(&w, rb, &a, ab, n_tok, &mut got, stride);
        old(&w, rb, &a, ab, n_tok, &mut want, stride);
        for t in 0..n_tok {
            for r in 0..rows {
                let (x, y) = (got[t * stride + r], want[t * stride + r]);
                assert_eq!(
                    x.to_bits(),
                    y.to_bits(),
                    "{ty:?} n={n} rows={rows} n_tok={n_tok} outlier={outlier}: token {t} row {r}: {x} vs {y}"
                );
            }
            for gap in rows.min(len - t * stride)..stride.min(len - t * stride) {
                assert!(
                    got[t * stride + gap].is_nan(),
                    "{ty:?}: wrote past row {rows}"
                );
            }
        }
    }

    #[test]
    fn zmm_gemm_gives_the_ymm_tiled_kernels_bits() {
        if !(Isa::Avx512.supported() && has_avx512_vnni()) {
            return;
        }
        for ty in TYPES {
            let widths: &[usize] = if ty.block_size() == 256 {
                &[256, 512, 1536]
            } else {
                &[32, 64, 96, 576, 640]
            };
            for &n in widths {
                for rows in [1, 2, 3, 4, 5, 7, 9] {
                    for n_tok in (1..=9).chain([17, 65, 67]) {
                        for outlier in [1.0, 3000.0] {
                            check(
                                ty,
                                n,
                                rows,
                                n_tok,
                                outlier,
                                (n * 131 + rows * 7 + n_tok) as u64,
                            );
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod ab {
    //! A/B timing against the 256-bit tiled kernel, alternating in one process (ignored by default; timings,
    //! not a check): `cargo test --release -p cria-kernels --lib gemm512::ab -- --ignored --nocapture`.
    use super::*;
    use crate::isa::{Isa, has_avx512_vnni};
    use crate::quant::{activation_type, quantize_activation_with, quantize_row};
    use crate::test_data::per_call;

    #[test]
    #[ignore]
    fn zmm_against_ymm_tiled() {
        if !(Isa::Avx512.supported() && has_avx512_vnni()) {
            return;
        }
        // one prefill tile of matmul.rs (64 rows x 64 tokens) over a few row blocks, as `gemm` calls it
        for (n, rows, n_tok) in [(2048, 256, 64), (576, 256, 64), (2048, 64, 64)] {
            let x: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
            for ty in [
                GgmlType::Q4_0,
                GgmlType::Q4_1,
                GgmlType::Q5_0,
                GgmlType::Q8_0,
                GgmlType::Q4_K,
                GgmlType::Q6_K,
            ] {
                if ty.row_bytes(n).is_none() {
                    continue;
                }
                let rb = ty.row_bytes(n).unwrap_or(0);
                let mut w = vec![0u8; rb * rows];
                for (r, chunk) in w.chunks_exact_mut(rb).enumerate() {
                    let xr: Vec<f32> = x.iter().map(|v| v * (1.0 + r as f32 * 0.01)).collect();
                    quantize_row(ty, &xr, chunk).expect("quantize");
                }
                let at = activation_type(ty);
                let ab = at.row_bytes(n).unwrap_or(0);
                let mut a = vec![0u8; ab * n_tok];
                for chunk in a.chunks_exact_mut(ab) {
                    quantize_activation_with(Isa::Scalar, at, &x, chunk);
                }
                let mut out = vec![0f32; rows * n_tok];
                let kernels = [
                    super::super::avx512::vnni::tiled_kernel(ty),
                    tiled_kernel(ty),
                ];
                // alternate 50 ms samples of each, on-CPU time (other processes share this machine)
                let mut runs = [Vec::new(), Vec::new()];
                for _ in 0..9 {
                    for (i, k) in kernels.iter().enumerate() {
                        let Some(k) = k else { continue };
                        runs[i].push(per_call(|| k(&w, rb, &a, ab, n_tok, &mut out, rows)));
                    }
                }
                let best = runs.map(|mut r| {
                    r.sort_by(f64::total_cmp);
                    r.get(r.len() / 2).copied().unwrap_or(f64::NAN)
                });
                let gf = |s: f64| 2.0 * (rows * n_tok * n) as f64 / s / 1e9;
                println!(
                    "{ty:?} {rows}x{n}, {n_tok} tokens: GFLOP/s ymm {:.0}, zmm {:.0} ({:.2}x)",
                    gf(best[0]),
                    gf(best[1]),
                    best[0] / best[1]
                );
            }
        }
    }
}
