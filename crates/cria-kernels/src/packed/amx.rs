//! Intel AMX-INT8 GEMMs over repacked Q4_0 / Q4_K groups (prefill: several tokens), for Sapphire Rapids and
//! later Xeons. One `tdpbssd` multiplies a tile of 16 tokens' activations (A: 16 rows × 32 bytes, read in place
//! from the Q8 rows) by one block of 32 (Q4_0) or one sub-block (Q4_K) of a pair of groups' weights (B: 16
//! rows in AMX's "VNNI" layout, 8 rows of 16 × 4 bytes), into a 16 × 16 tile of exact i32 sums, one per
//! (token, weight row). Cria's group layout already puts 4 bytes of each row side by side, so B is the
//! nibbles of two groups' 32-byte runs, unpacked once per call into a per-thread buffer (Q4_0 as q − 8 in
//! i8, Q4_K as q in 0..15).
//!
//! The order is [`super::reference`]'s on every token: the tile's sums are the exact block (sub-block)
//! integers the other kernels form, and the epilogue (AVX-512, one token's 16 rows per register, as
//! `packed::zmm`) applies the same f32 steps in the same order: Q4_0 one `fma(float(isum), d_w·d_a, acc)`
//! per block; Q4_K per pair of sub-blocks `fma(float(sc0·Σ0 + sc1·Σ1), d·d_a, acc)` and
//! `fma(float(m0·bsum0 + m1·bsum1), dmin·d_a, acc_min)`, then `acc − acc_min`. Q4_K forms `sc0·Σ0 + sc1·Σ1`
//! in f32 (`Σ0·sc0`, then an `fma` with `Σ1·sc1`): every term and partial sum is an integer below 2^23
//! (|Σ| ≤ 32·15·128, sc ≤ 63), so each step is exact and the value is `float(isum)`'s. (A zero sum may come
//! out as −0.0 where the integer gives +0.0; the accumulator it is added to is never −0.0 — it starts at
//! +0.0 and an exact sum of nonzero multiples of 2^-149 cannot round to zero — so the `fma` gives the same
//! bits.) So every output has the bits of the AVX-512 and 256-bit kernels.
//!
//! Tile state: each call loads its tile configuration (`ldtilecfg`) and releases it (`tilerelease`) before
//! returning, so no AMX state outlives a call on the pool's threads. A group left over (an odd count) goes
//! through the 256-bit kernel; calls of fewer than [`MIN_TOKENS`] tokens through the AVX-512 VNNI kernel.

use std::arch::asm;
use std::arch::x86_64::*;
use std::cell::RefCell;

use super::x86::{A0, AK, G0, GK, PREP0, PREPK, Prep0, PrepK, check, prep_q8_0, prep_q8_k};
use super::zmm::{halves16, quants};
use super::{GROUP, GroupsFn};
use crate::GgmlType;
use crate::isa::Isa;

/// Whether this CPU and process run the kernels here: the AVX-512 path's F/BW/VL for the epilogue, and AMX-INT8
/// granted by the OS (`isa::has_amx_int8`, which `CRIA_AMX=0` turns off).
pub(super) fn available() -> bool {
    Isa::Avx512.supported() && crate::isa::has_amx_int8()
}

/// Tokens per A tile (its rows; the most a tile holds).
const TM: usize = 16;

/// Calls with fewer tokens take the AVX-512 kernel: a pair's weights are unpacked once per call, and a tile
/// is 16 tokens, so a few tokens pay for more than they use.
pub(super) const MIN_TOKENS: usize = 8;

/// The GEMM kernel for `ty` (Q4_0 or Q4_K), if this CPU and process have AMX (`super::GroupsFn`).
pub(super) fn gemm_kernel(ty: GgmlType) -> Option<GroupsFn> {
    if !available() {
        return None;
    }
    match ty {
        GgmlType::Q4_0 => Some(q4_0_amx),
        GgmlType::Q4_K => Some(q4_k_amx),
        _ => None,
    }
}

/// The kernel for calls of too few tokens, and for a group left over by the pairs.
fn avx512_kernel(ty: GgmlType, n_tok: usize) -> GroupsFn {
    let k = if n_tok > 1 {
        super::zmm::gemm_kernel(ty)
    } else {
        None
    };
    match k.or_else(|| super::x86::groups_kernel(Isa::Avx512, ty)) {
        Some(k) => k,
        None => panic!("packed: no AVX-512 kernel for {ty:?}"),
    }
}

/// 64 bytes on a cache line: a B tile row, 16 f32 or i32 lanes.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([u8; 64]);

const ZERO_LINE: Line = Line([0; 64]);

thread_local! {
    /// A pair of groups' weights, unpacked for the tiles (and their scales as f32).
    static WEIGHTS: RefCell<Vec<Line>> = const { RefCell::new(Vec::new()) };
    /// Tiles of i32 sums stored for the epilogue: two sets (the one being filled, the one being read).
    static SUMS: RefCell<Vec<Line>> = const { RefCell::new(Vec::new()) };
    /// The last, partial tile of tokens: their activation rows and prepass entries, zero-padded to 16 tokens.
    static PAD: RefCell<(Vec<u8>, Vec<Prep0>, Vec<PrepK>)> =
        const { RefCell::new((Vec::new(), Vec::new(), Vec::new())) };
}

/// The tile configuration (palette 1): tmm0, tmm1 A (16 rows × 32 bytes: 16 tokens × 32 activations);
/// tmm2, tmm3 B (8 rows × 64 bytes: 32 elements × 16 weight rows); tmm4..tmm7 C (16 × 16 i32).
#[repr(C, align(64))]
struct TileConfig([u8; 64]);

const CONFIG: TileConfig = {
    let mut c = [0u8; 64];
    c[0] = 1;
    let mut t = 0;
    while t < 8 {
        // bytes 16 + 2t: bytes per row of tile t; byte 48 + t: its rows
        let (colsb, rows) = match t {
            0 | 1 => (32, TM),
            2 | 3 => (64, 8),
            _ => (64, TM),
        };
        c[16 + 2 * t] = colsb;
        c[48 + t] = rows as u8;
        t += 1;
    }
    TileConfig(c)
};

/// The tile registers configured for one call; released when dropped.
struct TileState(());

impl TileState {
    /// # Safety
    /// AMX is available to this process ([`available`]).
    unsafe fn load() -> TileState {
        // SAFETY: AMX-TILE is present and permitted (the caller's contract); CONFIG is a valid palette-1
        // configuration, 64 bytes, 64-aligned.
        unsafe { asm!("ldtilecfg [{0}]", in(reg) CONFIG.0.as_ptr(), options(nostack, readonly)) };
        TileState(())
    }
}

impl Drop for TileState {
    fn drop(&mut self) {
        // SAFETY: a `TileState` exists only after `load` ran on this thread, so AMX is available.
        unsafe { asm!("tilerelease", options(nostack, nomem)) };
    }
}

/// One tile product: A from `a` (16 rows `a_stride` apart, 32 bytes each) into tmm`P`, B from `b` (8 lines)
/// into tmm`2+P`, their product into tmm`C` (zeroed first), stored to `c` (16 lines).
///
/// # Safety
/// A [`TileState`] is live on this thread; `a`, `b` and `c` hold what is read and written.
#[inline(always)]
unsafe fn product<const P: u8, const C: u8>(
    a: *const u8,
    a_stride: usize,
    b: *const Line,
    c: *mut Line,
) {
    // SAFETY: the caller's contract; the tiles' shapes are CONFIG's.
    unsafe {
        asm!(
            "tileloadd tmm{ta}, [{a} + {sa}*1]",
            "tileloadd tmm{tb}, [{b} + {sb}*1]",
            "tilezero tmm{tc}",
            "tdpbssd tmm{tc}, tmm{ta}, tmm{tb}",
            "tilestored [{c} + {sb}*1], tmm{tc}",
            a = in(reg) a,
            sa = in(reg) a_stride,
            b = in(reg) b,
            c = in(reg) c,
            sb = in(reg) 64usize,
            ta = const P,
            tb = const 2 + P,
            tc = const C,
            options(nostack),
        )
    };
}

/// The sizes of one call: its pairs of groups and its tokens.
struct Call {
    w: *const u8,
    pairs: usize,
    group_bytes: usize,
    nb: usize,
    acts: *const u8,
    a_row: usize,
    n_tok: usize,
    out: *mut f32,
    stride: usize,
}

// ---------------------------------------------------------------------------------------------------- Q4_0

/// Lines per unpacked Q4_0 block of a pair: 8 B rows (elements 4k..4k+3 of each of the 16 rows: k < 4 the low
/// nibbles of the groups' bytes 32k.., k ≥ 4 the high ones), then the 16 rows' d as f32.
const L0: usize = 9;

#[allow(clippy::too_many_arguments)]
fn q4_0_amx(
    w: &[u8],
    nb: usize,
    acts: &[u8],
    a_row: usize,
    n_tok: usize,
    out: &mut [f32],
    stride: usize,
) {
    if n_tok < MIN_TOKENS {
        return avx512_kernel(GgmlType::Q4_0, n_tok)(w, nb, acts, a_row, n_tok, out, stride);
    }
    assert!(available(), "packed: AMX kernel without AMX");
    let n_groups = check(w, G0, nb, acts, a_row, A0, n_tok, out, stride);
    PREP0.with_borrow_mut(|prep| {
        prep_q8_0(acts, a_row, n_tok, nb, prep);
        let call = Call {
            w: w.as_ptr(),
            pairs: n_groups / 2,
            group_bytes: G0 * nb,
            nb,
            acts: acts.as_ptr(),
            a_row,
            n_tok,
            out: out.as_mut_ptr(),
            stride,
        };
        WEIGHTS.with_borrow_mut(|wb| {
            SUMS.with_borrow_mut(|sums| {
                PAD.with_borrow_mut(|(pad, pad_prep, _)| {
                    wb.resize(L0 * nb, ZERO_LINE);
                    sums.resize(2 * TM, ZERO_LINE);
                    let rest = n_tok % TM;
                    if rest > 0 {
                        let t0 = n_tok - rest;
                        pad.clear();
                        pad.extend_from_slice(&acts[t0 * a_row..n_tok * a_row]);
                        pad.resize(TM * a_row, 0);
                        pad_prep.clear();
                        pad_prep.extend_from_slice(&prep[t0 * nb..n_tok * nb]);
                        pad_prep.resize(TM * nb, Prep0::default());
                    }
                    // SAFETY: AMX and AVX-512 F/BW/VL (asserted above); `check` proved the sizes for the
                    // pairs' groups and the tokens; `prep` holds n_tok × nb entries, `wb` L0·nb lines,
                    // `sums` 2·16 lines, and the padded tile 16 rows and 16 × nb entries.
                    unsafe {
                        let _tiles = TileState::load();
                        pairs_q4_0(
                            &call,
                            prep.as_ptr(),
                            wb.as_mut_ptr(),
                            sums.as_mut_ptr(),
                            pad,
                            pad_prep,
                        )
                    };
                });
            });
        });
    });
    last_group(
        GgmlType::Q4_0,
        w,
        n_groups,
        nb,
        acts,
        a_row,
        n_tok,
        out,
        stride,
    );
}

/// A group left over by the pairs (an odd count): the 256-bit kernel, which gives the same bits.
#[allow(clippy::too_many_arguments)]
fn last_group(
    ty: GgmlType,
    w: &[u8],
    n_groups: usize,
    nb: usize,
    acts: &[u8],
    a_row: usize,
    n_tok: usize,
    out: &mut [f32],
    stride: usize,
) {
    if n_groups.is_multiple_of(2) {
        return;
    }
    let gbytes = w.len() / n_groups;
    let g = n_groups - 1;
    avx512_kernel(ty, 1)(
        &w[g * gbytes..],
        nb,
        acts,
        a_row,
        n_tok,
        &mut out[GROUP * g..],
        stride,
    );
}

/// Every pair × every token of a Q4_0 call, 16 tokens a tile; the last, partial tile from the padded copy.
///
/// # Safety
/// A [`TileState`] is live; AVX-512 F/BW/VL; `c` describes Q4_0 groups and Q8_0 activations, `prep` holds
/// n_tok × nb entries, `wb` L0·nb lines, `sums` 32, `pad` / `pad_prep` the last n_tok % 16 tokens padded to 16.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl")]
unsafe fn pairs_q4_0(
    c: &Call,
    prep: *const Prep0,
    wb: *mut Line,
    sums: *mut Line,
    pad: &[u8],
    pad_prep: &[Prep0],
) {
    let nb = c.nb;
    for g in 0..c.pairs {
        // SAFETY: pair g's two groups lie in `c.w`; `wb` holds their L0·nb lines.
        unsafe {
            let w0 = c.w.add(2 * g * c.group_bytes);
            unpack_q4_0(w0, w0.add(c.group_bytes), nb, wb);
        }
        let mut t0 = 0;
        while t0 < c.n_tok {
            let n = (c.n_tok - t0).min(TM);
            // SAFETY: tokens t0..t0+n of the call (or their padded copy) and pair g's 16 outputs of each.
            unsafe {
                let (a, p) = if n == TM {
                    (c.acts.add(t0 * c.a_row), prep.add(t0 * nb))
                } else {
                    (pad.as_ptr(), pad_prep.as_ptr())
                };
                let o = c.out.add(t0 * c.stride + 2 * GROUP * g);
                match n {
                    9.. => tile_0::<TM>(wb, nb, a, c.a_row, p, sums, o, c.stride, n),
                    5..=8 => tile_0::<8>(wb, nb, a, c.a_row, p, sums, o, c.stride, n),
                    _ => tile_0::<4>(wb, nb, a, c.a_row, p, sums, o, c.stride, n),
                }
            }
            t0 += n;
        }
    }
}

/// A pair of Q4_0 groups (at `w0`, `w1`, `nb` blocks each) into `wb`'s L0·nb lines.
///
/// # Safety
/// AVX-512 F/BW; the groups and the lines exist.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl")]
unsafe fn unpack_q4_0(w0: *const u8, w1: *const u8, nb: usize, wb: *mut Line) {
    let (m4, eight) = (_mm512_set1_epi8(0x0F), _mm512_set1_epi8(8));
    for b in 0..nb {
        // SAFETY: block b of both groups, and its L0 lines (the caller's contract).
        unsafe {
            let (g0, g1, l) = (w0.add(G0 * b), w1.add(G0 * b), wb.add(L0 * b));
            for k in 0..4 {
                let raw = quants(g0, g1, 16 + 32 * k);
                let lo = _mm512_sub_epi8(_mm512_and_si512(raw, m4), eight);
                let hi = _mm512_sub_epi8(_mm512_and_si512(_mm512_srli_epi16::<4>(raw), m4), eight);
                _mm512_store_si512(l.add(k).cast(), lo);
                _mm512_store_si512(l.add(4 + k).cast(), hi);
            }
            _mm512_store_ps(l.add(8).cast(), halves16(g0, g1, 0));
        }
    }
}

/// One pair (unpacked in `wb`) × 16 tokens of Q4_0, of which the first `n` (≤ `M`) are stored; `M` tokens
/// get an epilogue (accumulators in registers). The tile of block b+1 is multiplied before block b's
/// epilogue reads its sums, so the AMX unit and the vector units overlap.
///
/// # Safety
/// As [`pairs_q4_0`], for 16 activation rows at `a` and their prep entries at `prep` (token stride nb), and
/// `n` runs of 16 outputs `stride` apart at `out`.
#[allow(clippy::too_many_arguments)]
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl")]
unsafe fn tile_0<const M: usize>(
    wb: *const Line,
    nb: usize,
    a: *const u8,
    a_row: usize,
    prep: *const Prep0,
    sums: *mut Line,
    out: *mut f32,
    stride: usize,
    n: usize,
) {
    let mut acc = [_mm512_setzero_ps(); M];
    // SAFETY: block 0 of the tokens' rows and of the pair, and the first set of sums (the contract).
    unsafe { product::<0, 4>(a.add(2), a_row, wb, sums) };
    for b in 0..nb {
        // SAFETY: blocks b and b+1 of the tokens' rows and of the pair; set b % 2 of the sums.
        unsafe {
            let cur = sums.add(TM * (b % 2));
            if b + 1 < nb {
                let (an, wn) = (a.add(A0 * (b + 1) + 2), wb.add(L0 * (b + 1)));
                if b % 2 == 0 {
                    product::<1, 5>(an, a_row, wn, sums.add(TM));
                } else {
                    product::<0, 4>(an, a_row, wn, sums);
                }
            }
            let dw = _mm512_load_ps(wb.add(L0 * b + 8).cast());
            for (m, acc) in acc.iter_mut().enumerate() {
                let isum = _mm512_cvtepi32_ps(_mm512_load_si512(cur.add(m).cast()));
                let scale = _mm512_mul_ps(dw, _mm512_set1_ps((*prep.add(m * nb + b)).d));
                *acc = _mm512_fmadd_ps(isum, scale, *acc);
            }
        }
    }
    for (m, acc) in acc.iter().enumerate().take(n) {
        // SAFETY: token m's 16 outputs of this pair lie in `out` (the contract).
        unsafe { _mm512_storeu_ps(out.add(m * stride), *acc) };
    }
}

// ---------------------------------------------------------------------------------------------------- Q4_K

/// Lines per unpacked Q4_K super-block of a pair: 8 sub-blocks × 8 B rows (sub-block 2p: the low nibbles of
/// the groups' bytes 256p + 32k.., 2p+1 the high ones), then d, dmin (f32), the 8 sub-block scales (f32) and
/// the 4 pairs' mins (i16 pairs: sub-block 2p low, 2p+1 high).
const LK: usize = 78;
const K_D: usize = 64;
const K_DMIN: usize = 65;
const K_SC: usize = 66;
const K_MIN: usize = 74;

#[allow(clippy::too_many_arguments)]
fn q4_k_amx(
    w: &[u8],
    nb: usize,
    acts: &[u8],
    a_row: usize,
    n_tok: usize,
    out: &mut [f32],
    stride: usize,
) {
    if n_tok < MIN_TOKENS {
        return avx512_kernel(GgmlType::Q4_K, n_tok)(w, nb, acts, a_row, n_tok, out, stride);
    }
    assert!(available(), "packed: AMX kernel without AMX");
    let n_groups = check(w, GK, nb, acts, a_row, AK, n_tok, out, stride);
    PREPK.with_borrow_mut(|prep| {
        prep_q8_k(acts, a_row, n_tok, nb, prep);
        let call = Call {
            w: w.as_ptr(),
            pairs: n_groups / 2,
            group_bytes: GK * nb,
            nb,
            acts: acts.as_ptr(),
            a_row,
            n_tok,
            out: out.as_mut_ptr(),
            stride,
        };
        WEIGHTS.with_borrow_mut(|wb| {
            SUMS.with_borrow_mut(|sums| {
                PAD.with_borrow_mut(|(pad, _, pad_prep)| {
                    wb.resize(LK * nb, ZERO_LINE);
                    // two sets of 8 sub-blocks' sums, then the 16 tokens' acc and acc_min
                    sums.resize(2 * 8 * TM + 2 * TM, ZERO_LINE);
                    let rest = n_tok % TM;
                    if rest > 0 {
                        let t0 = n_tok - rest;
                        pad.clear();
                        pad.extend_from_slice(&acts[t0 * a_row..n_tok * a_row]);
                        pad.resize(TM * a_row, 0);
                        pad_prep.clear();
                        pad_prep.extend_from_slice(&prep[t0 * nb..n_tok * nb]);
                        pad_prep.resize(TM * nb, PrepK::default());
                    }
                    // SAFETY: as in `q4_0_amx`, with LK·nb lines in `wb` and 2·8·16 + 2·16 in `sums`.
                    unsafe {
                        let _tiles = TileState::load();
                        pairs_q4_k(
                            &call,
                            prep.as_ptr(),
                            wb.as_mut_ptr(),
                            sums.as_mut_ptr(),
                            pad,
                            pad_prep,
                        )
                    };
                });
            });
        });
    });
    last_group(
        GgmlType::Q4_K,
        w,
        n_groups,
        nb,
        acts,
        a_row,
        n_tok,
        out,
        stride,
    );
}

/// Every pair × every token of a Q4_K call, 16 tokens a tile.
///
/// # Safety
/// As [`pairs_q4_0`], for Q4_K groups and Q8_K activations, LK·nb lines in `wb`, 2·8·16 + 2·16 in `sums`.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl")]
unsafe fn pairs_q4_k(
    c: &Call,
    prep: *const PrepK,
    wb: *mut Line,
    sums: *mut Line,
    pad: &[u8],
    pad_prep: &[PrepK],
) {
    let nb = c.nb;
    for g in 0..c.pairs {
        // SAFETY: pair g's two groups lie in `c.w`; `wb` holds their LK·nb lines.
        unsafe {
            let w0 = c.w.add(2 * g * c.group_bytes);
            unpack_q4_k(w0, w0.add(c.group_bytes), nb, wb);
        }
        let mut t0 = 0;
        while t0 < c.n_tok {
            let n = (c.n_tok - t0).min(TM);
            // SAFETY: tokens t0..t0+n of the call (or their padded copy) and pair g's 16 outputs of each.
            unsafe {
                let (a, p) = if n == TM {
                    (c.acts.add(t0 * c.a_row), prep.add(t0 * nb))
                } else {
                    (pad.as_ptr(), pad_prep.as_ptr())
                };
                let o = c.out.add(t0 * c.stride + 2 * GROUP * g);
                tile_k(wb, nb, a, c.a_row, p, sums, o, c.stride, n);
            }
            t0 += n;
        }
    }
}

/// A pair of Q4_K groups (at `w0`, `w1`, `nb` super-blocks each) into `wb`'s LK·nb lines.
///
/// # Safety
/// AVX-512 F/BW; the groups and the lines exist.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl")]
unsafe fn unpack_q4_k(w0: *const u8, w1: *const u8, nb: usize, wb: *mut Line) {
    let m4 = _mm512_set1_epi8(0x0F);
    for b in 0..nb {
        // SAFETY: super-block b of both groups, and its LK lines (the caller's contract).
        unsafe {
            let (g0, g1, l) = (w0.add(GK * b), w1.add(GK * b), wb.add(LK * b));
            for p in 0..4 {
                for k in 0..8 {
                    let raw = quants(g0, g1, 160 + 256 * p + 32 * k);
                    let lo = _mm512_and_si512(raw, m4);
                    let hi = _mm512_and_si512(_mm512_srli_epi16::<4>(raw), m4);
                    _mm512_store_si512(l.add(8 * (2 * p) + k).cast(), lo);
                    _mm512_store_si512(l.add(8 * (2 * p + 1) + k).cast(), hi);
                }
                let mins = _mm512_or_si512(
                    bytes16(g0, g1, 96 + 16 * p),
                    _mm512_slli_epi32::<16>(bytes16(g0, g1, 104 + 16 * p)),
                );
                _mm512_store_si512(l.add(K_MIN + p).cast(), mins);
            }
            _mm512_store_ps(l.add(K_D).cast(), halves16(g0, g1, 0));
            _mm512_store_ps(l.add(K_DMIN).cast(), halves16(g0, g1, 16));
            for s in 0..8 {
                let sc = _mm512_cvtepi32_ps(bytes16(g0, g1, 32 + 8 * s));
                _mm512_store_ps(l.add(K_SC + s).cast(), sc);
            }
        }
    }
}

/// 8 bytes of the first group at `off` and 8 of the second, widened to 16 i32 lanes.
///
/// # Safety
/// 8 bytes at `w0 + off` and at `w1 + off`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl")]
unsafe fn bytes16(w0: *const u8, w1: *const u8, off: usize) -> __m512i {
    // SAFETY: the caller's contract.
    let v = unsafe {
        _mm_unpacklo_epi64(
            _mm_loadl_epi64(w0.add(off).cast()),
            _mm_loadl_epi64(w1.add(off).cast()),
        )
    };
    _mm512_cvtepu8_epi32(v)
}

/// The 8 sub-blocks' tile products of super-block `b` into sums set `set` (8 × 16 lines).
///
/// # Safety
/// As [`tile_k`].
#[inline(always)]
unsafe fn products_k(wb: *const Line, a: *const u8, a_row: usize, b: usize, sums: *mut Line) {
    // SAFETY: super-block b of the 16 activation rows and of the pair; 8 × 16 lines at `sums`.
    unsafe {
        let (a, w) = (a.add(AK * b + 4), wb.add(LK * b));
        product::<0, 4>(a, a_row, w, sums);
        product::<1, 5>(a.add(32), a_row, w.add(8), sums.add(TM));
        product::<0, 6>(a.add(64), a_row, w.add(16), sums.add(2 * TM));
        product::<1, 7>(a.add(96), a_row, w.add(24), sums.add(3 * TM));
        product::<0, 4>(a.add(128), a_row, w.add(32), sums.add(4 * TM));
        product::<1, 5>(a.add(160), a_row, w.add(40), sums.add(5 * TM));
        product::<0, 6>(a.add(192), a_row, w.add(48), sums.add(6 * TM));
        product::<1, 7>(a.add(224), a_row, w.add(56), sums.add(7 * TM));
    }
}

/// One pair (unpacked in `wb`) × 16 tokens of Q4_K, of which the first `n` get an epilogue and are stored.
/// The accumulators (acc, acc_min per token) live in `sums` after the two sets of tile sums; the tiles of
/// super-block b+1 are multiplied before super-block b's epilogue reads its sums.
///
/// # Safety
/// As [`pairs_q4_k`], for 16 activation rows at `a`, their prep entries at `prep` (token stride nb), and
/// `n` runs of 16 outputs `stride` apart at `out`.
#[allow(clippy::too_many_arguments)]
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl")]
unsafe fn tile_k(
    wb: *const Line,
    nb: usize,
    a: *const u8,
    a_row: usize,
    prep: *const PrepK,
    sums: *mut Line,
    out: *mut f32,
    stride: usize,
    n: usize,
) {
    // SAFETY: the lines after the two sets of sums (the contract).
    let accs = unsafe { sums.add(2 * 8 * TM) };
    for m in 0..n {
        // SAFETY: token m's two accumulator lines.
        unsafe {
            _mm512_store_ps(accs.add(2 * m).cast(), _mm512_setzero_ps());
            _mm512_store_ps(accs.add(2 * m + 1).cast(), _mm512_setzero_ps());
        }
    }
    // SAFETY: super-block 0, set 0 (the contract).
    unsafe { products_k(wb, a, a_row, 0, sums) };
    for b in 0..nb {
        // SAFETY: super-blocks b and b+1 of the tokens' rows and of the pair; set b % 2 of the sums; the
        // prep entries of tokens < n ≤ 16 and the accumulators of tokens < n.
        unsafe {
            let cur = sums.add(8 * TM * (b % 2));
            if b + 1 < nb {
                products_k(wb, a, a_row, b + 1, sums.add(8 * TM * ((b + 1) % 2)));
            }
            let l = wb.add(LK * b);
            let (d, dmin) = (
                _mm512_load_ps(l.add(K_D).cast()),
                _mm512_load_ps(l.add(K_DMIN).cast()),
            );
            let sc: [__m512; 8] = std::array::from_fn(|s| _mm512_load_ps(l.add(K_SC + s).cast()));
            let mins: [__m512i; 4] =
                std::array::from_fn(|p| _mm512_load_si512(l.add(K_MIN + p).cast()));
            for m in 0..n {
                let pp = prep.add(m * nb + b);
                let da = _mm512_set1_ps((*pp).d);
                let (dd, dm) = (_mm512_mul_ps(d, da), _mm512_mul_ps(dmin, da));
                let mut acc = _mm512_load_ps(accs.add(2 * m).cast());
                let mut acc_min = _mm512_load_ps(accs.add(2 * m + 1).cast());
                for p in 0..4 {
                    let s0 = _mm512_cvtepi32_ps(_mm512_load_si512(cur.add(TM * 2 * p + m).cast()));
                    let s1 =
                        _mm512_cvtepi32_ps(_mm512_load_si512(cur.add(TM * (2 * p + 1) + m).cast()));
                    // sc0·Σ0 + sc1·Σ1, exact in f32 (module doc)
                    let isum = _mm512_fmadd_ps(s1, sc[2 * p + 1], _mm512_mul_ps(s0, sc[2 * p]));
                    acc = _mm512_fmadd_ps(isum, dd, acc);
                    let msum = _mm512_madd_epi16(mins[p], _mm512_set1_epi32((*pp).bs[p]));
                    acc_min = _mm512_fmadd_ps(_mm512_cvtepi32_ps(msum), dm, acc_min);
                }
                _mm512_store_ps(accs.add(2 * m).cast(), acc);
                _mm512_store_ps(accs.add(2 * m + 1).cast(), acc_min);
            }
        }
    }
    for m in 0..n {
        // SAFETY: token m's accumulators and its 16 outputs of this pair (the contract).
        unsafe {
            let acc = _mm512_load_ps(accs.add(2 * m).cast());
            let acc_min = _mm512_load_ps(accs.add(2 * m + 1).cast());
            _mm512_storeu_ps(out.add(m * stride), _mm512_sub_ps(acc, acc_min));
        }
    }
}

#[cfg(test)]
mod tests {
    //! Bits: every kernel here against `packed::reference` (and `tests/packed_order.rs` through the dispatch);
    //! speed: `amx_against_zmm`, run by hand:
    //! `cargo test -p cria-kernels --release amx_against_zmm -- --ignored --nocapture`.
    use super::*;
    use crate::packed::{pack, reference};
    use crate::quant::{activation_type, quantize_activation_with, quantize_row};
    use crate::test_data::per_call;

    /// A deterministic generator: uniform in [-1, 1).
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self) -> f32 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        }
    }

    fn skipped() -> bool {
        if !available() {
            eprintln!("skipped: this CPU or OS has no AMX-INT8 (or CRIA_AMX=0)");
            return true;
        }
        false
    }

    /// Row-major weights (`rows × cols` of `ty`) and `n_tok` activation rows with outliers.
    fn fixture(
        ty: GgmlType,
        rows: usize,
        cols: usize,
        n_tok: usize,
        seed: u64,
    ) -> (Vec<u8>, Vec<u8>) {
        let mut g = Lcg(seed);
        let rb = ty.row_bytes(cols).unwrap_or(0);
        let mut w = vec![0u8; rb * rows];
        for chunk in w.chunks_exact_mut(rb) {
            let x: Vec<f32> = (0..cols).map(|_| g.next() * 0.05).collect();
            quantize_row(ty, &x, chunk).expect("quantize");
        }
        let at = activation_type(ty);
        let ab = at.row_bytes(cols).unwrap_or(0);
        let mut a = vec![0u8; ab * n_tok];
        for chunk in a.chunks_exact_mut(ab) {
            let mut x: Vec<f32> = (0..cols).map(|_| g.next() + g.next()).collect();
            x[(g.next().abs() * cols as f32) as usize % cols] = 60.0;
            x[cols - 1] = -45.0;
            quantize_activation_with(Isa::Scalar, at, &x, chunk);
        }
        (w, a)
    }

    /// The kernel for `ty` on packed `w` against `reference::dot` on every (token, row), bit for bit.
    fn check_bits(ty: GgmlType, rows: usize, cols: usize, w: &[u8], a: &[u8], n_tok: usize) {
        let Some(kernel) = gemm_kernel(ty) else {
            panic!("no AMX kernel for {ty:?}");
        };
        let packed = pack(ty, rows, cols, w).expect("pack");
        let (rb, ab) = (
            ty.row_bytes(cols).unwrap_or(0),
            activation_type(ty).row_bytes(cols).unwrap_or(0),
        );
        let stride = rows + 5;
        let mut out = vec![f32::NAN; stride * n_tok];
        kernel(
            &packed,
            cols / ty.block_size(),
            a,
            ab,
            n_tok,
            &mut out,
            stride,
        );
        for t in 0..n_tok {
            for r in 0..rows {
                let want = reference::dot(ty, &w[r * rb..(r + 1) * rb], &a[t * ab..(t + 1) * ab]);
                let got = out[t * stride + r];
                assert_eq!(
                    got.to_bits(),
                    want.to_bits(),
                    "{ty:?} {rows}x{cols}, {n_tok} tokens: token {t} row {r}: {got} vs {want}"
                );
            }
        }
    }

    #[test]
    fn amx_kernels_give_the_reference_bits() {
        if skipped() {
            return;
        }
        for (ty, cols) in [
            (GgmlType::Q4_0, 320),
            (GgmlType::Q4_0, 64),
            (GgmlType::Q4_K, 512),
            (GgmlType::Q4_K, 256),
        ] {
            for rows in [8, 16, 24, 40] {
                for n_tok in [1, 2, 7, 8, 9, 12, 15, 16, 17, 31, 32, 33, 40] {
                    let (w, a) = fixture(ty, rows, cols, n_tok, (rows * 1000 + n_tok) as u64);
                    check_bits(ty, rows, cols, &w, &a, n_tok);
                }
            }
        }
    }

    /// The largest sums the formats allow (|Σ| = 32·15·128 per sub-block, scales and mins 63, activations
    /// −128 and 127) stay exact: Q4_K's `sc0·Σ0 + sc1·Σ1` formed in f32 equals the integer's conversion.
    #[test]
    fn amx_extreme_sums_stay_exact() {
        if skipped() {
            return;
        }
        let (rows, n_tok) = (16, 20);
        for ty in [GgmlType::Q4_0, GgmlType::Q4_K] {
            let cols = 512;
            let (mut w, mut a) = fixture(ty, rows, cols, n_tok, 5);
            let (rb, ab, bb) = (
                ty.row_bytes(cols).unwrap_or(0),
                activation_type(ty).row_bytes(cols).unwrap_or(0),
                ty.type_size(),
            );
            for (r, row) in w.chunks_exact_mut(rb).enumerate() {
                for blk in row.chunks_exact_mut(bb) {
                    // keep the f16 scales, set every quant (and Q4_K's 6-bit scales and mins) to a bound
                    let hdr = if ty == GgmlType::Q4_0 { 2 } else { 4 };
                    let fill = if r % 3 == 0 { 0x00 } else { 0xFF };
                    blk[hdr..].fill(fill);
                }
            }
            for (t, row) in a.chunks_exact_mut(ab).enumerate() {
                let q = if t % 2 == 0 { 0x80u8 } else { 0x7F };
                if ty == GgmlType::Q4_0 {
                    for blk in row.chunks_exact_mut(A0) {
                        blk[2..].fill(q);
                    }
                } else {
                    for blk in row.chunks_exact_mut(AK) {
                        blk[4..260].fill(q);
                        let bsum = (16 * (q as i8) as i16).to_le_bytes();
                        for j in 0..16 {
                            blk[260 + 2 * j..262 + 2 * j].copy_from_slice(&bsum);
                        }
                    }
                }
            }
            check_bits(ty, rows, cols, &w, &a, n_tok);
        }
    }

    /// GMAC/s of the AMX kernels against the AVX-512 VNNI ones (`packed::zmm`), one thread, alternated, the
    /// median of 9 rounds: the 1B shape's matrices as `matmul.rs` hands them to a kernel (every row × a
    /// task's 128 tokens) and a 256-row block × 64 tokens.
    #[test]
    #[ignore]
    fn amx_against_zmm() {
        if skipped() {
            return;
        }
        for (cols, rows, n_tok) in [
            (2048, 256, 64),
            (2048, 2048, 128),
            (8192, 2048, 128),
            (2048, 8192, 128),
        ] {
            for ty in [GgmlType::Q4_0, GgmlType::Q4_K] {
                let (w, a) = fixture(ty, rows, cols, n_tok, 3);
                let packed = pack(ty, rows, cols, &w).expect("pack");
                let ab = activation_type(ty).row_bytes(cols).unwrap_or(0);
                let nb = cols / ty.block_size();
                let mut out = vec![0f32; rows * n_tok];
                let kernels = [super::super::zmm::gemm_kernel(ty), gemm_kernel(ty)];
                let mut runs = [Vec::new(), Vec::new()];
                for _ in 0..9 {
                    for (i, k) in kernels.iter().enumerate() {
                        let Some(k) = k else { continue };
                        runs[i].push(per_call(|| k(&packed, nb, &a, ab, n_tok, &mut out, rows)));
                    }
                }
                let med = runs.map(|mut r| {
                    r.sort_by(f64::total_cmp);
                    r.get(r.len() / 2).copied().unwrap_or(f64::NAN)
                });
                let gmac = |s: f64| (rows * n_tok * cols) as f64 / s / 1e9;
                println!(
                    "{ty:?} {rows}x{cols}, {n_tok} tokens: GMAC/s zmm {:.1}, amx {:.1} ({:.2}x)",
                    gmac(med[0]),
                    gmac(med[1]),
                    med[0] / med[1],
                );
            }
        }
    }
}
