//! The AVX-512 VNNI GEMMs over repacked Q4_0 / Q4_K groups (prefill: several tokens): two groups (16 rows)
//! per 512-bit register, lane j = row j of the pair, against a broadcast dword of each token's activations,
//! so a block's integer sums land one row per lane as in the 256-bit kernels (`x86.rs`), with fewer
//! instructions per product: `vpdpbusd` sums four u8·i8 products into each i32 lane (for Q4_K no 16-bit
//! intermediate and widening `madd`), and one broadcast serves 16 rows instead of 8.
//!
//! The order is [`super::reference`]'s (llama.cpp's repacked `gemm` one) on every token. Integer sums are
//! exact whatever instructions form them (Q4_K's `Σ_s sc_s·Σ q·a` of a pair of sub-blocks here as a 32-bit
//! `mullo` of each sub-block's sum, there as a `madd` of 16-bit partial sums), and the float steps are the
//! same: Q4_0 one `fma` per block; Q4_K one `fma` per pair of sub-blocks into `acc` and one into `acc_min`,
//! then `acc − acc_min`. So a token's bits are the 256-bit kernels' and the one-token kernels', whatever
//! tile or batch it falls in. A group left over (an odd count, or a group a row range cuts) goes through
//! the 256-bit kernel.

use std::arch::x86_64::*;

use super::x86::{A0, AK, G0, GK, PREP0, PREPK, Prep0, PrepK, check, prep_q8_0, prep_q8_k};
use super::{GROUP, GroupsFn};
use crate::GgmlType;
use crate::isa::Isa;

/// Whether this CPU runs the kernels here: AVX-512 F/BW/VL (the caller's `Isa::Avx512`) with VNNI.
pub(super) fn available() -> bool {
    Isa::Avx512.supported() && crate::isa::has_avx512_vnni()
}

/// The GEMM kernel for `ty` (Q4_0 or Q4_K), if this CPU has one (`super::GroupsFn`).
pub(super) fn gemm_kernel(ty: GgmlType) -> Option<GroupsFn> {
    if !available() {
        return None;
    }
    match ty {
        GgmlType::Q4_0 => Some(q4_0_zmm),
        GgmlType::Q4_K => Some(q4_k_zmm),
        _ => None,
    }
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
    let Some(kernel) = super::x86::groups_kernel(Isa::Avx512, ty) else {
        panic!("packed: no 256-bit kernel for {ty:?}");
    };
    let gbytes = w.len() / n_groups;
    let g = n_groups - 1;
    kernel(
        &w[g * gbytes..],
        nb,
        acts,
        a_row,
        n_tok,
        &mut out[GROUP * g..],
        stride,
    );
}

#[allow(clippy::too_many_arguments)]
fn q4_k_zmm(
    w: &[u8],
    nb: usize,
    acts: &[u8],
    a_row: usize,
    n_tok: usize,
    out: &mut [f32],
    stride: usize,
) {
    assert!(
        available(),
        "packed: AVX-512 VNNI kernel without AVX-512 VNNI"
    );
    let n_groups = check(w, GK, nb, acts, a_row, AK, n_tok, out, stride);
    PREPK.with_borrow_mut(|prep| {
        prep_q8_k(acts, a_row, n_tok, nb, prep);
        let tiles = Tiles {
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
        // SAFETY: AVX-512 F/BW/VL and VNNI (asserted above); `check` proved the sizes for `n_groups`
        // groups, of which the pairs are the first 2·pairs, and `prep` holds n_tok × nb entries.
        unsafe { pairs_q4_k(&tiles, prep.as_ptr()) };
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

#[allow(clippy::too_many_arguments)]
fn q4_0_zmm(
    w: &[u8],
    nb: usize,
    acts: &[u8],
    a_row: usize,
    n_tok: usize,
    out: &mut [f32],
    stride: usize,
) {
    assert!(
        available(),
        "packed: AVX-512 VNNI kernel without AVX-512 VNNI"
    );
    let n_groups = check(w, G0, nb, acts, a_row, A0, n_tok, out, stride);
    PREP0.with_borrow_mut(|prep| {
        prep_q8_0(acts, a_row, n_tok, nb, prep);
        let tiles = Tiles {
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
        // SAFETY: as in `q4_k_zmm`.
        unsafe { pairs_q4_0(&tiles, prep.as_ptr()) };
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

/// A call's pairs of groups and its tokens.
struct Tiles {
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

impl Tiles {
    /// Pair `g` × tokens `t0..`.
    ///
    /// # Safety
    /// `g` < pairs, `t0` < n_tok, and the buffers hold what `Tiles` describes.
    unsafe fn tile<P>(&self, g: usize, t0: usize, prep: *const P) -> Tile<P> {
        // SAFETY: inside the buffers (the caller's).
        unsafe {
            Tile {
                w: self.w.add(2 * g * self.group_bytes),
                w_next: self.group_bytes,
                nb: self.nb,
                a: self.acts.add(t0 * self.a_row),
                a_row: self.a_row,
                prep: prep.add(t0 * self.nb),
                out: self.out.add(t0 * self.stride + 2 * GROUP * g),
                stride: self.stride,
            }
        }
    }
}

/// Every pair × every token, in tiles of 4 tokens (then 2, 1: the bits do not depend on the tile).
///
/// # Safety
/// The CPU has AVX-512 F/BW/VL and VNNI; `t` describes Q4_K groups and Q8_K activations, `prep` holds
/// n_tok × nb entries.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn pairs_q4_k(t: &Tiles, prep: *const PrepK) {
    for g in 0..t.pairs {
        let mut t0 = 0;
        while t0 < t.n_tok {
            // SAFETY: pair g and tokens t0.. of the buffers `t` describes.
            t0 += unsafe {
                let tile = t.tile(g, t0, prep);
                match t.n_tok - t0 {
                    1 => tile_k::<1>(&tile),
                    2 | 3 => tile_k::<2>(&tile),
                    4..=7 => tile_k::<4>(&tile),
                    n => stream_k(&tile, n),
                }
            };
        }
    }
}

/// As [`pairs_q4_k`], for Q4_0 groups and Q8_0 activations, in tiles of 8 tokens (then 4, 2, 1).
///
/// # Safety
/// As [`pairs_q4_k`].
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn pairs_q4_0(t: &Tiles, prep: *const Prep0) {
    for g in 0..t.pairs {
        let mut t0 = 0;
        while t0 < t.n_tok {
            // SAFETY: pair g and tokens t0.. of the buffers `t` describes.
            t0 += unsafe {
                let tile = t.tile(g, t0, prep);
                match t.n_tok - t0 {
                    1 => tile_0::<1>(&tile),
                    2 | 3 => tile_0::<2>(&tile),
                    4..=7 => tile_0::<4>(&tile),
                    8..=15 => tile_0::<8>(&tile),
                    n => stream_0(&tile, n),
                }
            };
        }
    }
}

/// One pair of groups × a run of tokens: where their data starts.
struct Tile<P> {
    /// The first group's blocks; the second group's start `w_next` bytes later.
    w: *const u8,
    w_next: usize,
    nb: usize,
    a: *const u8,
    a_row: usize,
    prep: *const P,
    out: *mut f32,
    stride: usize,
}

/// 8 bytes of the first group at `off` and 8 of the second, widened to 16 i32 lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn bytes16(w0: *const u8, w1: *const u8, off: usize) -> __m512i {
    // SAFETY: 8 bytes at w0 + off and at w1 + off (the caller's).
    let v = unsafe {
        _mm_unpacklo_epi64(
            _mm_loadl_epi64(w0.add(off).cast()),
            _mm_loadl_epi64(w1.add(off).cast()),
        )
    };
    _mm512_cvtepu8_epi32(v)
}

/// 16 f16 (8 of each group at `off`) as f32.
/// (No VNNI instruction: `packed/amx.rs` shares it.)
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl")]
pub(super) unsafe fn halves16(w0: *const u8, w1: *const u8, off: usize) -> __m512 {
    // SAFETY: 16 bytes at w0 + off and at w1 + off (the caller's).
    let (lo, hi) = unsafe {
        (
            _mm_loadu_si128(w0.add(off).cast()),
            _mm_loadu_si128(w1.add(off).cast()),
        )
    };
    _mm512_cvtph_ps(_mm256_set_m128i(hi, lo))
}

/// 32 bytes of each group at `off` in one register (first group low).
/// (No VNNI instruction: `packed/amx.rs` shares it.)
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl")]
pub(super) unsafe fn quants(w0: *const u8, w1: *const u8, off: usize) -> __m512i {
    // SAFETY: 32 bytes at w0 + off and at w1 + off (the caller's).
    unsafe {
        let lo = _mm256_loadu_si256(w0.add(off).cast());
        _mm512_inserti64x4::<1>(
            _mm512_castsi256_si512(lo),
            _mm256_loadu_si256(w1.add(off).cast()),
        )
    }
}

/// One pair of groups × `T` tokens of Q4_K; returns `T`.
///
/// # Safety
/// The CPU has AVX-512 F/BW/VL and VNNI; `t` describes two groups of `nb` blocks, `T` activation rows and
/// their `prep` entries, and `T` runs of 16 outputs `stride` apart.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn tile_k<const T: usize>(t: &Tile<PrepK>) -> usize {
    let m4 = _mm512_set1_epi8(0x0F);
    let (mut acc, mut acc_min) = ([_mm512_setzero_ps(); T], [_mm512_setzero_ps(); T]);
    for b in 0..t.nb {
        // SAFETY: super-block b of both groups, and of each token's row (the caller's contract).
        unsafe {
            let w0 = t.w.add(GK * b);
            let w1 = w0.add(t.w_next);
            let d = halves16(w0, w1, 0);
            let dmin = halves16(w0, w1, 16);
            let prep: [PrepK; T] = std::array::from_fn(|i| *t.prep.add(i * t.nb + b));
            let a: [*const u8; T] = std::array::from_fn(|i| t.a.add(i * t.a_row + AK * b + 4));
            let scales: [(__m512, __m512); T] = std::array::from_fn(|i| {
                let da = _mm512_set1_ps(prep[i].d);
                (_mm512_mul_ps(d, da), _mm512_mul_ps(dmin, da))
            });
            for p in 0..4 {
                // sub-blocks 2p (low nibbles) and 2p+1 (high nibbles) share their quant bytes
                let (mut dot_lo, mut dot_hi) =
                    ([_mm512_setzero_si512(); T], [_mm512_setzero_si512(); T]);
                for k in 0..8 {
                    let raw = quants(w0, w1, 160 + 256 * p + 32 * k);
                    let lo = _mm512_and_si512(raw, m4);
                    let hi = _mm512_and_si512(_mm512_srli_epi16::<4>(raw), m4);
                    for i in 0..T {
                        let q = a[i].add(64 * p + 4 * k);
                        let a_lo = _mm512_set1_epi32(q.cast::<i32>().read_unaligned());
                        let a_hi = _mm512_set1_epi32(q.add(32).cast::<i32>().read_unaligned());
                        dot_lo[i] = _mm512_dpbusd_epi32(dot_lo[i], lo, a_lo);
                        dot_hi[i] = _mm512_dpbusd_epi32(dot_hi[i], hi, a_hi);
                    }
                }
                let sc_lo = bytes16(w0, w1, 32 + 16 * p);
                let sc_hi = bytes16(w0, w1, 40 + 16 * p);
                // min of sub-block 2p in the low i16 of each lane, of 2p+1 in the high one
                let mins = _mm512_or_si512(
                    bytes16(w0, w1, 96 + 16 * p),
                    _mm512_slli_epi32::<16>(bytes16(w0, w1, 104 + 16 * p)),
                );
                for i in 0..T {
                    let isum = _mm512_add_epi32(
                        _mm512_mullo_epi32(dot_lo[i], sc_lo),
                        _mm512_mullo_epi32(dot_hi[i], sc_hi),
                    );
                    let msum = _mm512_madd_epi16(mins, _mm512_set1_epi32(prep[i].bs[p]));
                    let (dd, dm) = scales[i];
                    acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), dd, acc[i]);
                    acc_min[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(msum), dm, acc_min[i]);
                }
            }
        }
    }
    for i in 0..T {
        // SAFETY: token i's 16 outputs of this pair lie in `out` (the caller's contract).
        unsafe { _mm512_storeu_ps(t.out.add(i * t.stride), _mm512_sub_ps(acc[i], acc_min[i])) };
    }
    T
}

/// Tokens of a [`stream_k`] call at the most: their accumulators (2 KiB) stay in L1.
const STREAM: usize = 16;

/// One pair of groups × up to [`STREAM`] tokens of Q4_K, the other way round from [`tile_k`]: each pair of
/// sub-blocks' unpacked quants (16 registers) stays in registers while every token streams past them, so the
/// unpacking is paid once per 16 tokens; returns the tokens done.
///
/// # Safety
/// As [`tile_k`], for `min(n, STREAM)` tokens.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn stream_k(t: &Tile<PrepK>, n: usize) -> usize {
    let n = n.min(STREAM);
    let m4 = _mm512_set1_epi8(0x0F);
    let (mut acc, mut acc_min) = ([_mm512_setzero_ps(); STREAM], [_mm512_setzero_ps(); STREAM]);
    for b in 0..t.nb {
        // SAFETY: super-block b of both groups, and of each token's row (the caller's contract).
        unsafe {
            let w0 = t.w.add(GK * b);
            let w1 = w0.add(t.w_next);
            let d = halves16(w0, w1, 0);
            let dmin = halves16(w0, w1, 16);
            for p in 0..4 {
                let (mut lo, mut hi) = ([_mm512_setzero_si512(); 8], [_mm512_setzero_si512(); 8]);
                for k in 0..8 {
                    let raw = quants(w0, w1, 160 + 256 * p + 32 * k);
                    lo[k] = _mm512_and_si512(raw, m4);
                    hi[k] = _mm512_and_si512(_mm512_srli_epi16::<4>(raw), m4);
                }
                let sc_lo = bytes16(w0, w1, 32 + 16 * p);
                let sc_hi = bytes16(w0, w1, 40 + 16 * p);
                let mins = _mm512_or_si512(
                    bytes16(w0, w1, 96 + 16 * p),
                    _mm512_slli_epi32::<16>(bytes16(w0, w1, 104 + 16 * p)),
                );
                for i in 0..n {
                    let q = t.a.add(i * t.a_row + AK * b + 4 + 64 * p);
                    // four chains of four (exact integer sums, any grouping), so that a token's sums wait
                    // on fewer `vpdpbusd` latencies
                    let mut dots = [_mm512_setzero_si512(); 4];
                    for k in 0..8 {
                        let a_lo = _mm512_set1_epi32(q.add(4 * k).cast::<i32>().read_unaligned());
                        let a_hi =
                            _mm512_set1_epi32(q.add(32 + 4 * k).cast::<i32>().read_unaligned());
                        dots[k % 2] = _mm512_dpbusd_epi32(dots[k % 2], lo[k], a_lo);
                        dots[2 + k % 2] = _mm512_dpbusd_epi32(dots[2 + k % 2], hi[k], a_hi);
                    }
                    let dot_lo = _mm512_add_epi32(dots[0], dots[1]);
                    let dot_hi = _mm512_add_epi32(dots[2], dots[3]);
                    let isum = _mm512_add_epi32(
                        _mm512_mullo_epi32(dot_lo, sc_lo),
                        _mm512_mullo_epi32(dot_hi, sc_hi),
                    );
                    // fields read in place: a copy of the struct made the broadcast wait on a store
                    let pp = t.prep.add(i * t.nb + b);
                    let msum = _mm512_madd_epi16(mins, _mm512_set1_epi32((*pp).bs[p]));
                    let da = _mm512_set1_ps((*pp).d);
                    acc[i] =
                        _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_mul_ps(d, da), acc[i]);
                    acc_min[i] = _mm512_fmadd_ps(
                        _mm512_cvtepi32_ps(msum),
                        _mm512_mul_ps(dmin, da),
                        acc_min[i],
                    );
                }
            }
        }
    }
    for i in 0..n {
        // SAFETY: token i's 16 outputs of this pair lie in `out` (the caller's contract).
        unsafe { _mm512_storeu_ps(t.out.add(i * t.stride), _mm512_sub_ps(acc[i], acc_min[i])) };
    }
    n
}

/// One pair of groups × `T` tokens of Q4_0; returns `T`. Nibbles unsigned, minus 8·Σa per block (the
/// 256-bit kernel's exact integer form).
///
/// # Safety
/// As [`tile_k`], for Q4_0 groups and Q8_0 activations.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn tile_0<const T: usize>(t: &Tile<Prep0>) -> usize {
    let m4 = _mm512_set1_epi8(0x0F);
    let mut acc = [_mm512_setzero_ps(); T];
    for b in 0..t.nb {
        // SAFETY: block b of both groups, and of each token's row (the caller's contract).
        unsafe {
            let w0 = t.w.add(G0 * b);
            let w1 = w0.add(t.w_next);
            let dw = halves16(w0, w1, 0);
            let mut s = [_mm512_setzero_si512(); T];
            for k in 0..4 {
                let raw = quants(w0, w1, 16 + 32 * k);
                let lo = _mm512_and_si512(raw, m4);
                let hi = _mm512_and_si512(_mm512_srli_epi16::<4>(raw), m4);
                for (i, si) in s.iter_mut().enumerate() {
                    let q = t.a.add(i * t.a_row + A0 * b + 2 + 4 * k);
                    let a_lo = _mm512_set1_epi32(q.cast::<i32>().read_unaligned());
                    let a_hi = _mm512_set1_epi32(q.add(16).cast::<i32>().read_unaligned());
                    *si = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(*si, lo, a_lo), hi, a_hi);
                }
            }
            for (i, (acc, si)) in acc.iter_mut().zip(s).enumerate() {
                let p = *t.prep.add(i * t.nb + b);
                let isum = _mm512_sub_epi32(si, _mm512_set1_epi32(p.asum8));
                let scale = _mm512_mul_ps(dw, _mm512_set1_ps(p.d));
                *acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), scale, *acc);
            }
        }
    }
    for (i, acc) in acc.iter().enumerate() {
        // SAFETY: token i's 16 outputs of this pair lie in `out` (the caller's contract).
        unsafe { _mm512_storeu_ps(t.out.add(i * t.stride), *acc) };
    }
    T
}

/// One pair of groups × up to [`STREAM`] tokens of Q4_0, as [`stream_k`] does Q4_K: a block's unpacked
/// quants stay in registers while the tokens stream past; returns the tokens done.
///
/// # Safety
/// As [`tile_0`], for `min(n, STREAM)` tokens.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn stream_0(t: &Tile<Prep0>, n: usize) -> usize {
    let n = n.min(STREAM);
    let m4 = _mm512_set1_epi8(0x0F);
    let mut acc = [_mm512_setzero_ps(); STREAM];
    for b in 0..t.nb {
        // SAFETY: block b of both groups, and of each token's row (the caller's contract).
        unsafe {
            let w0 = t.w.add(G0 * b);
            let w1 = w0.add(t.w_next);
            let dw = halves16(w0, w1, 0);
            let (mut lo, mut hi) = ([_mm512_setzero_si512(); 4], [_mm512_setzero_si512(); 4]);
            for k in 0..4 {
                let raw = quants(w0, w1, 16 + 32 * k);
                lo[k] = _mm512_and_si512(raw, m4);
                hi[k] = _mm512_and_si512(_mm512_srli_epi16::<4>(raw), m4);
            }
            for (i, acc) in acc.iter_mut().enumerate().take(n) {
                let q = t.a.add(i * t.a_row + A0 * b + 2);
                let mut s = _mm512_setzero_si512();
                for k in 0..4 {
                    let a_lo = _mm512_set1_epi32(q.add(4 * k).cast::<i32>().read_unaligned());
                    let a_hi = _mm512_set1_epi32(q.add(16 + 4 * k).cast::<i32>().read_unaligned());
                    s = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(s, lo[k], a_lo), hi[k], a_hi);
                }
                let p = *t.prep.add(i * t.nb + b);
                let isum = _mm512_sub_epi32(s, _mm512_set1_epi32(p.asum8));
                let scale = _mm512_mul_ps(dw, _mm512_set1_ps(p.d));
                *acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), scale, *acc);
            }
        }
    }
    for (i, acc) in acc.iter().enumerate().take(n) {
        // SAFETY: token i's 16 outputs of this pair lie in `out` (the caller's contract).
        unsafe { _mm512_storeu_ps(t.out.add(i * t.stride), *acc) };
    }
    n
}

#[cfg(test)]
mod tests {
    //! Bits are held by `tests/packed_order.rs` (every path against `packed::reference`); here only a speed
    //! comparison, run by hand: `cargo test -p cria-kernels --release zmm_against_ymm -- --ignored --nocapture`.
    use super::*;
    use crate::quant::{activation_type, quantize_activation_with, quantize_row};
    use crate::test_data::per_call;

    #[test]
    #[ignore]
    fn zmm_against_ymm() {
        if !available() {
            return;
        }
        // a token task of matmul.rs's split: every row of a 1B-shape matrix block × 64 tokens
        for (cols, rows, n_tok) in [(2048, 256, 64), (8192, 256, 64)] {
            for ty in [GgmlType::Q4_0, GgmlType::Q4_K] {
                let x: Vec<f32> = (0..cols).map(|i| (i as f32 * 0.37).sin()).collect();
                let rb = ty.row_bytes(cols).unwrap_or(0);
                let mut w = vec![0u8; rb * rows];
                for (r, chunk) in w.chunks_exact_mut(rb).enumerate() {
                    let xr: Vec<f32> = x.iter().map(|v| v * (1.0 + r as f32 * 0.01)).collect();
                    quantize_row(ty, &xr, chunk).expect("quantize");
                }
                let packed = super::super::pack(ty, rows, cols, &w).expect("pack");
                let at = activation_type(ty);
                let ab = at.row_bytes(cols).unwrap_or(0);
                let mut a = vec![0u8; ab * n_tok];
                for chunk in a.chunks_exact_mut(ab) {
                    quantize_activation_with(Isa::Scalar, at, &x, chunk);
                }
                let nb = cols / ty.block_size();
                let mut out = vec![0f32; rows * n_tok];
                let kernels = [
                    super::super::x86::groups_kernel(Isa::Avx512, ty),
                    super::super::ymm_stream::gemm_kernel(Isa::Avx512, ty),
                    gemm_kernel(ty),
                ];
                let mut runs = [Vec::new(), Vec::new(), Vec::new()];
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
                    "{ty:?} {rows}x{cols}, {n_tok} tokens: GMAC/s ymm tiles {:.1}, ymm stream {:.1}, zmm {:.1}",
                    gmac(med[0]),
                    gmac(med[1]),
                    gmac(med[2]),
                );
            }
        }
    }
}
