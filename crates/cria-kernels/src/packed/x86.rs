//! AVX2 kernels over the 8-row groups (`super` describes the layout): one 32-byte load gives the 8 rows 4
//! bytes each (lane j = row j), multiplied against a broadcast dword of each token's activations, so a
//! block's integer sums land one row per lane and meet their scales lane-wise, without horizontal sums:
//! the per-row order of [`super::reference`] by construction. A group's weights are unpacked once per tile
//! of 4 tokens and stay in L1 across the tiles; one token (decode) is a tile of 1. Every tile sums in the
//! same order (llama.cpp's `gemm` one), so a token's bits never depend on the tile it falls in.
//!
//! Q4_0 takes its nibbles unsigned (0..15) into `maddubs` / `vpdpbusd` and subtracts 8·Σa per block (Σa of
//! each token's blocks from a pass over the activations): exact, like llama.cpp's sign-extended form.

use std::arch::x86_64::*;
use std::cell::RefCell;

use super::{GROUP, GroupsFn};
use crate::GgmlType;
use crate::isa::Isa;
use crate::quant::blocks::{BlockQ8_0, BlockQ8K};

#[path = "x86_gemv.rs"]
mod gemv;

/// Bytes of a Q4_0 / Q4_K group block, a Q8_0 / Q8_K activation block.
pub(super) const G0: usize = 144;
pub(super) const GK: usize = 1184;
pub(super) const A0: usize = 34;
pub(super) const AK: usize = 292;
/// How far ahead (bytes) the one-token Q4_K kernels prefetch the groups they stream: about what one thread
/// has in flight from DRAM (latency × its share of the bandwidth); 3 group blocks and a half.
pub(super) const PF_AHEAD: usize = 4096;
/// How far ahead (bytes) the one-token Q4_0 tile prefetches the groups it streams: with both threads
/// streaming the 1B shape's FFN matrices from DRAM, 8 KiB read 10-20% faster than no software prefetch and
/// than 4 KiB, and as fast as 16 KiB (`tests::q4_0_prefetch_ab`, docs/KERNELS.md).
const PF_Q4_0: usize = 8192;

pub(super) fn groups_kernel(isa: Isa, ty: GgmlType) -> Option<GroupsFn> {
    if !matches!(isa, Isa::Avx2 | Isa::Avx512) {
        return None;
    }
    match ty {
        GgmlType::Q4_0 if crate::dot::x86::has_avxvnni() => Some(q4_0_vnni),
        GgmlType::Q4_0 => Some(q4_0_avx2),
        GgmlType::Q4_K if crate::dot::x86::has_avxvnni() => Some(gemv::q4_k_vnni),
        GgmlType::Q4_K => Some(q4_k_avx2),
        _ => None,
    }
}

/// Per token and block of 32: the activation scale and 8·Σa (the Q4_0 offset).
#[derive(Clone, Copy, Default)]
pub(super) struct Prep0 {
    pub(super) d: f32,
    pub(super) asum8: i32,
}

/// Per token and super-block: the activation scale and the sums of each pair of sub-blocks' pairs of
/// 16-sums, two i16 in an i32 (sub-block 2q low, 2q+1 high), for the mins.
#[derive(Clone, Copy, Default)]
pub(super) struct PrepK {
    pub(super) d: f32,
    pub(super) bs: [i32; 4],
}

thread_local! {
    pub(super) static PREP0: RefCell<Vec<Prep0>> = const { RefCell::new(Vec::new()) };
    pub(super) static PREPK: RefCell<Vec<PrepK>> = const { RefCell::new(Vec::new()) };
}

/// The sizes every kernel here relies on; panics on a caller's mistake.
#[allow(clippy::too_many_arguments)]
pub(super) fn check(
    w: &[u8],
    gb: usize,
    nb: usize,
    acts: &[u8],
    a_row: usize,
    ab: usize,
    n_tok: usize,
    out: &[f32],
    stride: usize,
) -> usize {
    assert!(
        nb > 0 && w.len().is_multiple_of(gb * nb),
        "packed: partial group"
    );
    let n_groups = w.len() / (gb * nb);
    assert!(
        a_row == ab * nb && acts.len() >= n_tok * a_row,
        "packed: activation rows"
    );
    assert!(
        n_tok == 0 || (n_tok - 1) * stride + GROUP * n_groups <= out.len(),
        "packed: out too short"
    );
    n_groups
}

pub(super) fn prep_q8_0(acts: &[u8], a_row: usize, n_tok: usize, nb: usize, prep: &mut Vec<Prep0>) {
    prep.clear();
    for t in 0..n_tok {
        let blocks: &[BlockQ8_0] = bytemuck::cast_slice(&acts[t * a_row..(t + 1) * a_row]);
        prep.extend(blocks.iter().take(nb).map(|b| Prep0 {
            d: b.d(),
            asum8: 8 * b.qs.iter().map(|&q| q as i32).sum::<i32>(),
        }));
    }
}

pub(super) fn prep_q8_k(acts: &[u8], a_row: usize, n_tok: usize, nb: usize, prep: &mut Vec<PrepK>) {
    prep.clear();
    for t in 0..n_tok {
        let blocks: &[BlockQ8K] = bytemuck::cast_slice(&acts[t * a_row..(t + 1) * a_row]);
        prep.extend(blocks.iter().take(nb).map(|b| {
            let sub = |s: usize| (b.bsum(2 * s) as i32 + b.bsum(2 * s + 1) as i32) & 0xFFFF;
            PrepK {
                d: b.d(),
                bs: std::array::from_fn(|q| sub(2 * q) | (sub(2 * q + 1) << 16)),
            }
        }));
    }
}

#[allow(clippy::too_many_arguments)]
fn q4_0_avx2(
    w: &[u8],
    nb: usize,
    acts: &[u8],
    a_row: usize,
    n_tok: usize,
    out: &mut [f32],
    stride: usize,
) {
    let n_groups = check(w, G0, nb, acts, a_row, A0, n_tok, out, stride);
    PREP0.with_borrow_mut(|prep| {
        prep_q8_0(acts, a_row, n_tok, nb, prep);
        // SAFETY: this table is reached only for a path `Isa::supported` accepted (AVX2, FMA, F16C); `check`
        // proved the buffer sizes the kernel reads and writes, and `prep` holds n_tok × nb entries.
        unsafe {
            plain::q4_0::<PF_Q4_0>(
                w.as_ptr(),
                n_groups,
                nb,
                acts.as_ptr(),
                a_row,
                n_tok,
                prep.as_ptr(),
                out.as_mut_ptr(),
                stride,
            )
        }
    });
}

#[allow(clippy::too_many_arguments)]
fn q4_0_vnni(
    w: &[u8],
    nb: usize,
    acts: &[u8],
    a_row: usize,
    n_tok: usize,
    out: &mut [f32],
    stride: usize,
) {
    let n_groups = check(w, G0, nb, acts, a_row, A0, n_tok, out, stride);
    PREP0.with_borrow_mut(|prep| {
        prep_q8_0(acts, a_row, n_tok, nb, prep);
        // SAFETY: as in `q4_0_avx2`, and `groups_kernel` picks this one only where AVX-VNNI is present.
        unsafe {
            vnni::q4_0::<PF_Q4_0>(
                w.as_ptr(),
                n_groups,
                nb,
                acts.as_ptr(),
                a_row,
                n_tok,
                prep.as_ptr(),
                out.as_mut_ptr(),
                stride,
            )
        }
    });
}

#[allow(clippy::too_many_arguments)]
fn q4_k_avx2(
    w: &[u8],
    nb: usize,
    acts: &[u8],
    a_row: usize,
    n_tok: usize,
    out: &mut [f32],
    stride: usize,
) {
    let n_groups = check(w, GK, nb, acts, a_row, AK, n_tok, out, stride);
    PREPK.with_borrow_mut(|prep| {
        prep_q8_k(acts, a_row, n_tok, nb, prep);
        // SAFETY: as in `q4_0_avx2` (AVX2, FMA, F16C checked by the caller's `Isa`; sizes by `check`).
        unsafe {
            q4_k::<PF_AHEAD>(
                w.as_ptr(),
                n_groups,
                nb,
                acts.as_ptr(),
                a_row,
                n_tok,
                prep.as_ptr(),
                out.as_mut_ptr(),
                stride,
            )
        }
    });
}

/// `maddubs` into i16 pairs (8 products of ≤ 15·127 per pair stay under 32767), widened at the end.
#[inline]
#[target_feature(enable = "avx2")]
fn mac_maddubs(acc: __m256i, u: __m256i, s: __m256i) -> __m256i {
    _mm256_add_epi16(acc, _mm256_maddubs_epi16(u, s))
}

#[inline]
#[target_feature(enable = "avx2")]
fn fin_maddubs(acc: __m256i) -> __m256i {
    _mm256_madd_epi16(acc, _mm256_set1_epi16(1))
}

#[inline]
#[target_feature(enable = "avx2,avxvnni")]
fn mac_vnni(acc: __m256i, u: __m256i, s: __m256i) -> __m256i {
    _mm256_dpbusd_avx_epi32(acc, u, s)
}

#[inline]
#[target_feature(enable = "avx2")]
fn fin_vnni(acc: __m256i) -> __m256i {
    acc
}

macro_rules! q4_0_kernel {
    ($features:literal, $mac:path, $fin:path) => {
        use super::*;

        /// # Safety
        /// The CPU has the features above; `w` holds `n_groups` groups of `nb` Q4_0 group blocks, `acts`
        /// `n_tok` rows of `a_row` = 34·nb bytes, `prep` n_tok × nb entries, `out` (n_tok − 1)·stride +
        /// 8·n_groups floats.
        #[allow(clippy::too_many_arguments)]
        #[target_feature(enable = $features)]
        pub(super) unsafe fn q4_0<const PF: usize>(
            w: *const u8,
            n_groups: usize,
            nb: usize,
            acts: *const u8,
            a_row: usize,
            n_tok: usize,
            prep: *const Prep0,
            out: *mut f32,
            stride: usize,
        ) {
            for g in 0..n_groups {
                // SAFETY: group g lies in `w` (the function's contract).
                let wg = unsafe { w.add(g * G0 * nb) };
                let mut t0 = 0;
                while t0 < n_tok {
                    // SAFETY: token t0 < n_tok and group g < n_groups lie in the contract's buffers.
                    let (a, p, o) = unsafe {
                        (
                            acts.add(t0 * a_row),
                            prep.add(t0 * nb),
                            out.add(t0 * stride + GROUP * g),
                        )
                    };
                    // SAFETY: tokens t0.. of the contract's buffers.
                    t0 += unsafe {
                        match n_tok - t0 {
                            1 => tile::<1, PF>(wg, nb, a, a_row, p, o, stride),
                            2 => tile::<2, PF>(wg, nb, a, a_row, p, o, stride),
                            3 => tile::<3, PF>(wg, nb, a, a_row, p, o, stride),
                            _ => tile::<4, PF>(wg, nb, a, a_row, p, o, stride),
                        }
                    };
                }
            }
        }

        /// One group × `T` tokens; returns `T`. One token (decode) streams the weights: it prefetches `PF`
        /// bytes ahead (0: none), the lines of a group block's 144 bytes at each block step; past a task's
        /// rows that is the next rows of the matrix (a hint never faults).
        #[inline]
        #[target_feature(enable = $features)]
        unsafe fn tile<const T: usize, const PF: usize>(
            wg: *const u8,
            nb: usize,
            a: *const u8,
            a_row: usize,
            prep: *const Prep0,
            out: *mut f32,
            stride: usize,
        ) -> usize {
            let m4 = _mm256_set1_epi8(0x0F);
            let mut acc = [_mm256_setzero_ps(); T];
            for b in 0..nb {
                // SAFETY: block b of the group, and of each token's row (the caller's contract).
                unsafe {
                    let gb = wg.add(G0 * b);
                    if T == 1 && PF > 0 {
                        let pf = gb.wrapping_add(PF);
                        for l in 0..G0.div_ceil(64) {
                            _mm_prefetch::<_MM_HINT_T1>(pf.wrapping_add(64 * l).cast());
                        }
                    }
                    let dw = _mm256_cvtph_ps(_mm_loadu_si128(gb.cast()));
                    let mut s = [_mm256_setzero_si256(); T];
                    for k in 0..4 {
                        let raw = _mm256_loadu_si256(gb.add(16 + 32 * k).cast());
                        let lo = _mm256_and_si256(raw, m4);
                        let hi = _mm256_and_si256(_mm256_srli_epi16::<4>(raw), m4);
                        for (t, st) in s.iter_mut().enumerate() {
                            let q = a.add(t * a_row + A0 * b + 2 + 4 * k);
                            let alo = _mm256_set1_epi32(q.cast::<i32>().read_unaligned());
                            let ahi = _mm256_set1_epi32(q.add(16).cast::<i32>().read_unaligned());
                            *st = $mac($mac(*st, lo, alo), hi, ahi);
                        }
                    }
                    for (t, (acc, st)) in acc.iter_mut().zip(s).enumerate() {
                        let p = *prep.add(t * nb + b);
                        let isum = _mm256_sub_epi32($fin(st), _mm256_set1_epi32(p.asum8));
                        let scale = _mm256_mul_ps(dw, _mm256_set1_ps(p.d));
                        *acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), scale, *acc);
                    }
                }
            }
            for (t, acc) in acc.iter().enumerate() {
                // SAFETY: token t's 8 outputs of this group lie in `out` (the caller's contract).
                unsafe { _mm256_storeu_ps(out.add(t * stride), *acc) };
            }
            T
        }
    };
}

mod plain {
    q4_0_kernel!("avx2,fma,f16c", mac_maddubs, fin_maddubs);
}

mod vnni {
    q4_0_kernel!("avx2,fma,f16c,avxvnni", mac_vnni, fin_vnni);
}

/// # Safety
/// The CPU has AVX2, FMA and F16C; `w` holds `n_groups` groups of `nb` Q4_K group blocks, `acts` `n_tok`
/// rows of `a_row` = 292·nb bytes, `prep` n_tok × nb entries, `out` (n_tok − 1)·stride + 8·n_groups floats.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q4_k<const PF: usize>(
    w: *const u8,
    n_groups: usize,
    nb: usize,
    acts: *const u8,
    a_row: usize,
    n_tok: usize,
    prep: *const PrepK,
    out: *mut f32,
    stride: usize,
) {
    for g in 0..n_groups {
        // SAFETY: group g lies in `w` (the function's contract).
        let wg = unsafe { w.add(g * GK * nb) };
        let mut t0 = 0;
        while t0 < n_tok {
            // SAFETY: token t0 < n_tok and group g < n_groups lie in the contract's buffers.
            let (a, p, o) = unsafe {
                (
                    acts.add(t0 * a_row),
                    prep.add(t0 * nb),
                    out.add(t0 * stride + GROUP * g),
                )
            };
            // SAFETY: tokens t0.. of the contract's buffers.
            t0 += unsafe {
                match n_tok - t0 {
                    1 => tile_k::<1, PF>(wg, nb, a, a_row, p, o, stride),
                    2 => tile_k::<2, PF>(wg, nb, a, a_row, p, o, stride),
                    3 => tile_k::<3, PF>(wg, nb, a, a_row, p, o, stride),
                    _ => tile_k::<4, PF>(wg, nb, a, a_row, p, o, stride),
                }
            };
        }
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

/// One group × `T` tokens of Q4_K; returns `T`. One token (decode) prefetches `PF` bytes ahead (0: none).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn tile_k<const T: usize, const PF: usize>(
    wg: *const u8,
    nb: usize,
    a: *const u8,
    a_row: usize,
    prep: *const PrepK,
    out: *mut f32,
    stride: usize,
) -> usize {
    let m4 = _mm256_set1_epi8(0x0F);
    let (mut acc, mut acc_min) = ([_mm256_setzero_ps(); T], [_mm256_setzero_ps(); T]);
    for b in 0..nb {
        // SAFETY: super-block b of the group, and of each token's row (the caller's contract).
        unsafe {
            let gb = wg.add(GK * b);
            let d = _mm256_cvtph_ps(_mm_loadu_si128(gb.cast()));
            let dmin = _mm256_cvtph_ps(_mm_loadu_si128(gb.add(16).cast()));
            let mins: [__m256i; 4] = std::array::from_fn(|q| {
                let lo = _mm256_cvtepu8_epi32(_mm_loadl_epi64(gb.add(96 + 16 * q).cast()));
                let hi = _mm256_cvtepu8_epi32(_mm_loadl_epi64(gb.add(104 + 16 * q).cast()));
                _mm256_or_si256(lo, _mm256_slli_epi32::<16>(hi))
            });
            let scales: [(__m256, __m256); T] = std::array::from_fn(|t| {
                let da = _mm256_set1_ps((*prep.add(t * nb + b)).d);
                (_mm256_mul_ps(d, da), _mm256_mul_ps(dmin, da))
            });
            // one fma per accumulator and pair of sub-blocks whatever the tile (llama.cpp's gemm order), so a
            // token's bits do not depend on how many share its step
            let mut isum = [_mm256_setzero_si256(); T];
            for s in 0..8 {
                if T == 1 && PF > 0 {
                    // one token streams the weights (decode): a sub-block's share of the lines PF on
                    let pf = gb.wrapping_add(PF + 148 * s);
                    for l in 0..3 {
                        _mm_prefetch::<_MM_HINT_T1>(pf.wrapping_add(64 * l).cast());
                    }
                }
                let sc = scale_pairs(gb.add(32 + 8 * s));
                let (qs, shift_high) = (gb.add(160 + 256 * (s / 2)), s % 2 == 1);
                let mut s16 = [_mm256_setzero_si256(); T];
                for k in 0..8 {
                    let raw = _mm256_loadu_si256(qs.add(32 * k).cast());
                    let q = if shift_high {
                        _mm256_and_si256(_mm256_srli_epi16::<4>(raw), m4)
                    } else {
                        _mm256_and_si256(raw, m4)
                    };
                    for (t, st) in s16.iter_mut().enumerate() {
                        let ap = a.add(t * a_row + AK * b + 4 + 32 * s + 4 * k);
                        let av = _mm256_set1_epi32(ap.cast::<i32>().read_unaligned());
                        *st = _mm256_add_epi16(*st, _mm256_maddubs_epi16(q, av));
                    }
                }
                for (is, st) in isum.iter_mut().zip(s16) {
                    *is = _mm256_add_epi32(*is, _mm256_madd_epi16(st, sc));
                }
                if !shift_high {
                    continue;
                }
                let pair = s / 2;
                for t in 0..T {
                    let bs = (*prep.add(t * nb + b)).bs[pair];
                    let msum = _mm256_madd_epi16(mins[pair], _mm256_set1_epi32(bs));
                    let (dd, dm) = scales[t];
                    acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[t]), dd, acc[t]);
                    acc_min[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(msum), dm, acc_min[t]);
                    isum[t] = _mm256_setzero_si256();
                }
            }
        }
    }
    for t in 0..T {
        // SAFETY: token t's 8 outputs of this group lie in `out` (the caller's contract).
        unsafe { _mm256_storeu_ps(out.add(t * stride), _mm256_sub_ps(acc[t], acc_min[t])) };
    }
    T
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::ThreadPool;

    /// Copies of a packed matrix of `bytes` that fill `CRIA_AB_MIB` MiB (default 1024: past the 480 MiB L3 of
    /// session 13's Xeon, so that a pass over them reads DRAM).
    fn ab_copies(bytes: usize) -> usize {
        let mib: usize = std::env::var("CRIA_AB_MIB")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1024);
        ((mib << 20) / bytes).max(2)
    }

    /// The one-token Q4_0 tile at several prefetch distances (bytes), 2 threads splitting each matrix as
    /// decode does, GB/s of weights read from memory (the 1B shape's FFN matrices, copies cycled through
    /// `CRIA_AB_MIB`, [`ab_copies`]), best of 25: `cargo test --release -p cria-kernels --lib q4_0_prefetch_ab -- --ignored
    /// --nocapture`.
    #[test]
    #[ignore]
    fn q4_0_prefetch_ab() {
        if !crate::isa::Isa::Avx2.supported() {
            return;
        }
        type K = unsafe fn(
            *const u8,
            usize,
            usize,
            *const u8,
            usize,
            usize,
            *const Prep0,
            *mut f32,
            usize,
        );
        let mut kernels: Vec<(&str, K)> = vec![
            ("plain pf0", plain::q4_0::<0>),
            ("plain pf4k", plain::q4_0::<4096>),
            ("plain pf8k", plain::q4_0::<8192>),
            ("plain pf16k", plain::q4_0::<16384>),
        ];
        if crate::dot::x86::has_avxvnni() {
            kernels.push(("vnni pf0", vnni::q4_0::<0>));
            kernels.push(("vnni pf4k", vnni::q4_0::<4096>));
            kernels.push(("vnni pf8k", vnni::q4_0::<8192>));
            kernels.push(("vnni pf16k", vnni::q4_0::<16384>));
        }
        let pool = ThreadPool::new(2);
        for (mat_rows, n) in [(8192, 2048), (2048, 8192)] {
            let (w, a, rb) = crate::test_data::dram_matrix(GgmlType::Q4_0, n, mat_rows);
            let one = super::super::pack(GgmlType::Q4_0, mat_rows, n, &w[..mat_rows * rb]).unwrap();
            let copies = ab_copies(one.len());
            let packed: Vec<u8> = one
                .iter()
                .copied()
                .cycle()
                .take(one.len() * copies)
                .collect();
            let nb = n / 32;
            let mut prep = Vec::new();
            prep_q8_0(&a, a.len(), 1, nb, &mut prep);
            let mut best = vec![f64::MAX; kernels.len()];
            for _ in 0..crate::test_data::AB_ROUNDS {
                for (i, (_, k)) in kernels.iter().enumerate() {
                    let s = crate::test_data::decode_split_pass(
                        &pool,
                        &packed,
                        one.len(),
                        mat_rows,
                        &|m, rows, o| {
                            let g = &m[rows.start / GROUP * G0 * nb..rows.end / GROUP * G0 * nb];
                            // SAFETY: AVX2 (and AVX-VNNI for its kernels) checked above; `g` holds whole groups of
                            // `nb` blocks, `a` one row of nb Q8_0 blocks, `prep` nb entries, `o` 8 per group.
                            unsafe {
                                k(
                                    g.as_ptr(),
                                    rows.len() / GROUP,
                                    nb,
                                    a.as_ptr(),
                                    a.len(),
                                    1,
                                    prep.as_ptr(),
                                    o.as_mut_ptr(),
                                    0,
                                )
                            }
                        },
                    );
                    best[i] = best[i].min(s);
                }
            }
            let line: Vec<String> = kernels
                .iter()
                .zip(&best)
                .map(|((name, _), s)| format!("{name} {:.1}", one.len() as f64 / s / 1e9))
                .collect();
            let ceiling = crate::bandwidth::read_bandwidth(&pool, 1 << 30, 5);
            println!(
                "packed Q4_0 {mat_rows}x{n}, 2 threads, GB/s (fastest matrix of 25 passes): {}; read ceiling {:.1}",
                line.join(", "),
                ceiling.bytes as f64 / ceiling.best_seconds / 1e9
            );
        }
    }

    /// The one-token repacked Q4_K kernels at several prefetch distances (bytes), 2 threads splitting each
    /// matrix as decode does, GB/s of weights read from memory (the 1B shape's Q4_K matrices, copies cycled
    /// through `CRIA_AB_MIB` MiB, default 1024: past a 480 MiB L3), fastest matrix of 25 alternated passes:
    /// `cargo test --release -p cria-kernels --lib q4_k_decode_2t_ab -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn q4_k_decode_2t_ab() {
        if !crate::isa::Isa::Avx2.supported() {
            return;
        }
        // (groups, n_groups, nb, activation row, prep, out)
        type K = unsafe fn(*const u8, usize, usize, *const u8, *const PrepK, *mut f32);
        macro_rules! plain {
            ($pf:expr) => {{
                unsafe fn k(
                    w: *const u8,
                    g: usize,
                    nb: usize,
                    a: *const u8,
                    p: *const PrepK,
                    o: *mut f32,
                ) {
                    // SAFETY: the caller's (AVX2 checked; sizes from the packed matrix).
                    unsafe { q4_k::<$pf>(w, g, nb, a, AK * nb, 1, p, o, 0) }
                }
                k as K
            }};
        }
        let mut kernels: Vec<(&str, K)> = vec![
            ("plain pf0", plain!(0)),
            ("plain pf4k", plain!(4096)),
            ("plain pf8k", plain!(8192)),
        ];
        if crate::dot::x86::has_avxvnni() {
            kernels.push(("gemv pf0", gemv::gemv_q4_k::<0>));
            kernels.push(("gemv pf4k", gemv::gemv_q4_k::<4096>));
            kernels.push(("gemv pf8k", gemv::gemv_q4_k::<8192>));
        }
        if let Ok(only) = std::env::var("CRIA_AB_ONLY") {
            kernels.retain(|(name, _)| only.split(',').any(|o| name.contains(o)));
        }
        let pool = ThreadPool::new(2);
        for (mat_rows, n) in [(8192, 2048), (2048, 8192), (2048, 2048)] {
            let (w, a, rb) = crate::test_data::dram_matrix(GgmlType::Q4_K, n, mat_rows);
            let one = super::super::pack(GgmlType::Q4_K, mat_rows, n, &w[..mat_rows * rb]).unwrap();
            drop(w);
            let copies = ab_copies(one.len());
            let packed: Vec<u8> = one
                .iter()
                .copied()
                .cycle()
                .take(one.len() * copies)
                .collect();
            let nb = n / 256;
            let mut prep = Vec::new();
            prep_q8_k(&a, a.len(), 1, nb, &mut prep);
            let mut best = vec![f64::MAX; kernels.len()];
            for _ in 0..crate::test_data::AB_ROUNDS {
                for (i, (_, k)) in kernels.iter().enumerate() {
                    let s = crate::test_data::decode_split_pass(
                        &pool,
                        &packed,
                        one.len(),
                        mat_rows,
                        &|m, rows, o| {
                            let g = &m[rows.start / GROUP * GK * nb..rows.end / GROUP * GK * nb];
                            // SAFETY: AVX2 (and AVX-VNNI for the gemv) checked above; `g` holds whole groups
                            // of `nb` blocks, `a` one row of nb Q8_K blocks, `prep` nb entries, `o` 8 a group.
                            unsafe {
                                k(
                                    g.as_ptr(),
                                    rows.len() / GROUP,
                                    nb,
                                    a.as_ptr(),
                                    prep.as_ptr(),
                                    o.as_mut_ptr(),
                                )
                            }
                        },
                    );
                    best[i] = best[i].min(s);
                }
            }
            let line: Vec<String> = kernels
                .iter()
                .zip(&best)
                .map(|((name, _), s)| format!("{name} {:.1}", one.len() as f64 / s / 1e9))
                .collect();
            let ceiling = crate::bandwidth::read_bandwidth(&pool, 1 << 30, 5);
            println!(
                "packed Q4_K {mat_rows}x{n}, 2 threads, {} MiB, GB/s (fastest matrix of 25 passes): {}; read ceiling {:.1}",
                packed.len() >> 20,
                line.join(", "),
                ceiling.bytes as f64 / ceiling.best_seconds / 1e9
            );
        }
    }
}
