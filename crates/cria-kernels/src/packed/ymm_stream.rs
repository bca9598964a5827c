//! The 256-bit GEMM over repacked Q4_K groups for several tokens (prefill) on AVX2 without VNNI: one
//! sub-block's unpacked quants (8 registers) stay in registers while up to [`STREAM`] tokens stream past
//! them, so the nibble unpacking is paid once per 16 tokens instead of once per 4 (`x86.rs`'s tiles).
//!
//! The order is [`super::reference`]'s, as in `x86.rs`: each sub-block's products summed as `maddubs` into
//! 16-bit pairs then `madd` with the scale (exact integers, the same instructions), the pair of sub-blocks'
//! sums added in 32 bits, and one `fma` per pair of sub-blocks into `acc` and into `acc_min`, in block
//! order. Between the two sub-blocks of a pair each token's integer sum waits in a small array; `acc` and
//! `acc_min` wait in arrays between pairs: stores, not roundings, so the bits are the tiles' and the
//! one-token kernel's.

use std::arch::x86_64::*;

use super::x86::{A0, AK, G0, GK, PREP0, PREPK, Prep0, PrepK, check, prep_q8_0, prep_q8_k};
use super::{GROUP, GroupsFn};
use crate::GgmlType;
use crate::isa::Isa;

/// Tokens a call of [`stream`] takes at the most.
const STREAM: usize = 16;

/// The kernel for `ty` where there is one (Q4_K on AVX2: `Isa::Avx2` or `Isa::Avx512`'s 256-bit kernels).
/// Q4_0 only where the CPU lacks AVX-VNNI (with it, `x86.rs`'s `vpdpbusd` tiles).
pub(super) fn gemm_kernel(isa: Isa, ty: GgmlType) -> Option<GroupsFn> {
    if !(matches!(isa, Isa::Avx2 | Isa::Avx512) && isa.supported()) {
        return None;
    }
    match ty {
        GgmlType::Q4_K => Some(q4_k_stream),
        GgmlType::Q4_0 if !crate::dot::x86::has_avxvnni() => Some(q4_0_stream),
        _ => None,
    }
}

#[allow(clippy::too_many_arguments)]
fn q4_0_stream(
    w: &[u8],
    nb: usize,
    acts: &[u8],
    a_row: usize,
    n_tok: usize,
    out: &mut [f32],
    stride: usize,
) {
    assert!(Isa::Avx2.supported(), "packed: AVX2 kernel without AVX2");
    let n_groups = check(w, G0, nb, acts, a_row, A0, n_tok, out, stride);
    PREP0.with_borrow_mut(|prep| {
        prep_q8_0(acts, a_row, n_tok, nb, prep);
        for g in 0..n_groups {
            let mut t0 = 0;
            while t0 < n_tok {
                let n = (n_tok - t0).min(STREAM);
                // SAFETY: as in `q4_k_stream`, for Q4_0 groups and Q8_0 activations.
                unsafe {
                    stream_0(
                        w.as_ptr().add(g * G0 * nb),
                        nb,
                        acts.as_ptr().add(t0 * a_row),
                        a_row,
                        prep.as_ptr().add(t0 * nb),
                        n,
                        out.as_mut_ptr().add(t0 * stride + GROUP * g),
                        stride,
                    )
                };
                t0 += n;
            }
        }
    });
}

/// One Q4_0 group × `n` ≤ [`STREAM`] tokens: a block's quants (8 registers) held while the tokens stream
/// past, the plain 256-bit tile's arithmetic (`maddubs` into 16-bit pairs, widened, minus 8·Σa, one `fma`).
///
/// # Safety
/// As [`stream`], for one group of `nb` Q4_0 group blocks and Q8_0 activation rows.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn stream_0(
    wg: *const u8,
    nb: usize,
    a: *const u8,
    a_row: usize,
    prep: *const Prep0,
    n: usize,
    out: *mut f32,
    stride: usize,
) {
    let m4 = _mm256_set1_epi8(0x0F);
    let mut acc = [_mm256_setzero_ps(); STREAM];
    for b in 0..nb {
        // SAFETY: block b of the group, and of each token's row (the function's contract).
        unsafe {
            let gb = wg.add(G0 * b);
            let dw = _mm256_cvtph_ps(_mm_loadu_si128(gb.cast()));
            let (mut lo, mut hi) = ([_mm256_setzero_si256(); 4], [_mm256_setzero_si256(); 4]);
            for k in 0..4 {
                let raw = _mm256_loadu_si256(gb.add(16 + 32 * k).cast());
                lo[k] = _mm256_and_si256(raw, m4);
                hi[k] = _mm256_and_si256(_mm256_srli_epi16::<4>(raw), m4);
            }
            for (i, acc) in acc.iter_mut().enumerate().take(n) {
                let q = a.add(i * a_row + A0 * b + 2);
                let mut s16 = _mm256_setzero_si256();
                for k in 0..4 {
                    let a_lo = _mm256_set1_epi32(q.add(4 * k).cast::<i32>().read_unaligned());
                    let a_hi = _mm256_set1_epi32(q.add(16 + 4 * k).cast::<i32>().read_unaligned());
                    s16 = _mm256_add_epi16(s16, _mm256_maddubs_epi16(lo[k], a_lo));
                    s16 = _mm256_add_epi16(s16, _mm256_maddubs_epi16(hi[k], a_hi));
                }
                let p = prep.add(i * nb + b);
                let isum = _mm256_sub_epi32(
                    _mm256_madd_epi16(s16, _mm256_set1_epi16(1)),
                    _mm256_set1_epi32((*p).asum8),
                );
                let scale = _mm256_mul_ps(dw, _mm256_set1_ps((*p).d));
                *acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), scale, *acc);
            }
        }
    }
    for (i, acc) in acc.iter().enumerate().take(n) {
        // SAFETY: token i's 8 outputs of this group lie in `out` (the function's contract).
        unsafe { _mm256_storeu_ps(out.add(i * stride), *acc) };
    }
}

#[allow(clippy::too_many_arguments)]
fn q4_k_stream(
    w: &[u8],
    nb: usize,
    acts: &[u8],
    a_row: usize,
    n_tok: usize,
    out: &mut [f32],
    stride: usize,
) {
    assert!(Isa::Avx2.supported(), "packed: AVX2 kernel without AVX2");
    let n_groups = check(w, GK, nb, acts, a_row, AK, n_tok, out, stride);
    PREPK.with_borrow_mut(|prep| {
        prep_q8_k(acts, a_row, n_tok, nb, prep);
        for g in 0..n_groups {
            let mut t0 = 0;
            while t0 < n_tok {
                let n = (n_tok - t0).min(STREAM);
                // SAFETY: AVX2, FMA, F16C (asserted; F16C and FMA come with every `Isa` that has AVX2 here);
                // group g and tokens t0..t0+n lie inside the sizes `check` proved, and `prep` holds
                // n_tok × nb entries.
                unsafe {
                    stream(
                        w.as_ptr().add(g * GK * nb),
                        nb,
                        acts.as_ptr().add(t0 * a_row),
                        a_row,
                        prep.as_ptr().add(t0 * nb),
                        n,
                        out.as_mut_ptr().add(t0 * stride + GROUP * g),
                        stride,
                    )
                };
                t0 += n;
            }
        }
    });
}

/// One group × `n` ≤ [`STREAM`] tokens.
///
/// # Safety
/// The CPU has AVX2, FMA and F16C; `wg` holds one group of `nb` Q4_K group blocks, `a` `n` rows of `a_row`
/// bytes, `prep` n × nb entries (token-major), `out` (n − 1)·stride + 8 floats.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn stream(
    wg: *const u8,
    nb: usize,
    a: *const u8,
    a_row: usize,
    prep: *const PrepK,
    n: usize,
    out: *mut f32,
    stride: usize,
) {
    let m4 = _mm256_set1_epi8(0x0F);
    let (mut acc, mut acc_min) = ([_mm256_setzero_ps(); STREAM], [_mm256_setzero_ps(); STREAM]);
    let mut isum = [_mm256_setzero_si256(); STREAM];
    for b in 0..nb {
        // SAFETY: super-block b of the group, and of each token's row (the function's contract).
        unsafe {
            let gb = wg.add(GK * b);
            let d = _mm256_cvtph_ps(_mm_loadu_si128(gb.cast()));
            let dmin = _mm256_cvtph_ps(_mm_loadu_si128(gb.add(16).cast()));
            for s in 0..8 {
                let qs = gb.add(160 + 256 * (s / 2));
                let q: [__m256i; 8] = std::array::from_fn(|k| {
                    let raw = _mm256_loadu_si256(qs.add(32 * k).cast());
                    if s % 2 == 1 {
                        _mm256_and_si256(_mm256_srli_epi16::<4>(raw), m4)
                    } else {
                        _mm256_and_si256(raw, m4)
                    }
                });
                let sc = scale_pairs(gb.add(32 + 8 * s));
                for (i, is) in isum.iter_mut().enumerate().take(n) {
                    let ap = a.add(i * a_row + AK * b + 4 + 32 * s);
                    let mut s16 = _mm256_setzero_si256();
                    for (k, qk) in q.iter().enumerate() {
                        let av = _mm256_set1_epi32(ap.add(4 * k).cast::<i32>().read_unaligned());
                        s16 = _mm256_add_epi16(s16, _mm256_maddubs_epi16(*qk, av));
                    }
                    let part = _mm256_madd_epi16(s16, sc);
                    *is = if s % 2 == 0 {
                        part
                    } else {
                        _mm256_add_epi32(*is, part)
                    };
                }
                if s % 2 == 0 {
                    continue;
                }
                let pair = s / 2;
                let mins = {
                    let lo = _mm256_cvtepu8_epi32(_mm_loadl_epi64(gb.add(96 + 16 * pair).cast()));
                    let hi = _mm256_cvtepu8_epi32(_mm_loadl_epi64(gb.add(104 + 16 * pair).cast()));
                    _mm256_or_si256(lo, _mm256_slli_epi32::<16>(hi))
                };
                for i in 0..n {
                    // fields read in place: a copy of the struct made the broadcast wait on a store
                    let p = prep.add(i * nb + b);
                    let da = _mm256_set1_ps((*p).d);
                    let msum = _mm256_madd_epi16(mins, _mm256_set1_epi32((*p).bs[pair]));
                    acc[i] =
                        _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[i]), _mm256_mul_ps(d, da), acc[i]);
                    acc_min[i] = _mm256_fmadd_ps(
                        _mm256_cvtepi32_ps(msum),
                        _mm256_mul_ps(dmin, da),
                        acc_min[i],
                    );
                }
            }
        }
    }
    for i in 0..n {
        // SAFETY: token i's 8 outputs of this group lie in `out` (the function's contract).
        unsafe { _mm256_storeu_ps(out.add(i * stride), _mm256_sub_ps(acc[i], acc_min[i])) };
    }
}

/// Row j's 8-bit values of sub-block `s` (one byte per row at `p`) widened to two i16 copies in lane j.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn scale_pairs(p: *const u8) -> __m256i {
    // SAFETY: 8 bytes at p (the caller's).
    let v = _mm256_cvtepu8_epi32(unsafe { _mm_loadl_epi64(p.cast()) });
    _mm256_or_si256(v, _mm256_slli_epi32::<16>(v))
}
