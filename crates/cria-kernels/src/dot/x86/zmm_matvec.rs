//! AVX-512 decode matvec for the 32-element block formats (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0), 16 rows a pass.
//! (Decode's Q8_0 rows of 64 blocks or more take the prefetched row kernel, which streams them faster:
//! `x86::matvec_kernel`.)
//!
//! Why a kernel of its own: decode is one matrix-vector product per weight matrix, and the 256-bit kernel
//! (`legacy_matvec!` in `tiled.rs`) spends about ten instructions per 32-weight block, which made it compute
//! bound at about half the memory bandwidth. Here one zmm holds the blocks of two rows side by side, so the
//! integer dot (`vpdpbusd`), the conversion and the FMA each serve two rows, and the block scales of all 16
//! rows of a pass come from one gather.
//!
//! The bits are the 256-bit kernel's (and llama.cpp's): each 256-bit half of an accumulator is one row's
//! 8-lane sum, fed block after block in order with `d_w·d_a` as one f32 product; the per-row minimum term
//! (Q4_1/Q5_1) is a lane of `mins`, summed in block order; each half is reduced with the same `hsum`.
//! `tests/dot_order.rs` and the tests below hold it to the other kernels bit for bit.

use super::zmm_util::{h2, hsum};
use crate::GgmlType;
use crate::dot::RowsFn;
use crate::quant::blocks::*;
use bytemuck::cast_slice as cs;
use std::arch::x86_64::*;

/// Rows per pass: 8 pairs, one zmm accumulator each.
pub(super) const ROWS: usize = 16;
pub(super) const PAIRS: usize = ROWS / 2;

// Every function below: #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]

/// The kernel for `ty`, if this file has one. Handed out only on a CPU with AVX-512 F/BW/VL and VNNI.
pub(super) fn matvec_kernel(ty: GgmlType) -> Option<RowsFn> {
    macro_rules! mv {
        ($f:ident) => {
            Some(|w: &[u8], wr: usize, a: &[u8], out: &mut [f32]| {
                // SAFETY: the caller (`x86::matvec_kernel`) hands this out only on a CPU with the features.
                unsafe { $f::<PREFETCH>(w, wr, a, out) }
            })
        };
        ($gf:ident, $f:ident) => {
            if has_gfni() {
                Some(|w: &[u8], wr: usize, a: &[u8], out: &mut [f32]| {
                    // SAFETY: as above, and this CPU has GFNI (checked).
                    unsafe { $gf::<PREFETCH>(w, wr, a, out) }
                })
            } else {
                mv!($f)
            }
        };
    }
    use GgmlType::*;
    match ty {
        Q4_0 => mv!(mv_q4_0_gf, mv_q4_0),
        Q4_1 => mv!(mv_q4_1_gf, mv_q4_1),
        Q5_0 => mv!(mv_q5_0_gf, mv_q5_0),
        Q5_1 => mv!(mv_q5_1_gf, mv_q5_1),
        Q8_0 => mv!(mv_q8_0),
        _ => None,
    }
}

/// How far ahead the matvec prefetches, in bytes (one 16-row pass at the least; `ab::zmm_prefetch_ab`
/// measures others).
const PREFETCH: usize = 0;

/// GFNI (one affine byte op takes a nibble out of a byte), on every AVX-512 VNNI CPU since Ice Lake.
fn has_gfni() -> bool {
    std::arch::is_x86_feature_detected!("gfni")
}

/// 16 bytes of nibbles of each of two rows' blocks as one zmm, row a's bytes in 128-bit lanes 0 and 1, row b's
/// in lanes 2 and 3: a broadcast load and a merging broadcast load (one ALU op).
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn qs_pair(a: &[u8; 16], b: &[u8; 16]) -> __m512i {
    // SAFETY: a and b are 16 readable bytes each; loadu has no alignment requirement.
    let (xa, xb) = unsafe {
        (
            _mm_loadu_si128(a.as_ptr().cast()),
            _mm_loadu_si128(b.as_ptr().cast()),
        )
    };
    _mm512_mask_broadcast_i32x4(_mm512_broadcast_i32x4(xa), 0xFF00, xb)
}

/// The quants of `qs_pair`'s [a | a | b | b]: the low nibbles in lanes 0 and 2, the high nibbles in lanes 1
/// and 3, i.e. each 256-bit half holds its row's 32 quants in element order. One affine op per byte: the
/// matrix of each qword takes bits 0-3 (lanes 0, 2) or bits 4-7 (lanes 1, 3) to bits 0-3 and clears 4-7.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni,gfni")]
fn nib_gf(x: __m512i) -> __m512i {
    // row i of the bit matrix (output bit i) is byte 7 - i of the qword
    const LO: i64 = 0x0102_0408_0000_0000;
    const HI: i64 = 0x1020_4080_0000_0000;
    let m = _mm512_setr_epi64(LO, LO, HI, HI, LO, LO, HI, HI);
    _mm512_gf2p8affine_epi64_epi8::<0>(x, m)
}

/// `nib_gf` without GFNI: the second copy of each row's bytes shifted right by 4, then masked.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn nib_shift(x: __m512i) -> __m512i {
    let shifted = _mm512_mask_srli_epi16::<4>(x, 0xFF00_FF00, x);
    _mm512_and_si512(shifted, _mm512_set1_epi8(0xF))
}

/// Adds 16 to quant j of each row where bit j of its `qh` is set (the fifth bit of Q5_0 / Q5_1).
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn fifth_bit(u: __m512i, qa: [u8; 4], qb: [u8; 4]) -> __m512i {
    let k = u32::from_le_bytes(qa) as u64 | (u32::from_le_bytes(qb) as u64) << 32;
    _mm512_mask_add_epi8(u, k, u, _mm512_set1_epi8(16))
}

macro_rules! nib_pairs {
    ($($f:ident, $g:ident: $W:ty, $five:expr;)*) => {$(
        #[inline]
        #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
        pub(super) fn $f(a: &$W, b: &$W) -> __m512i {
            let u = nib_shift(qs_pair(&a.qs, &b.qs));
            $five(u, a, b)
        }

        #[inline]
        #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni,gfni")]
        fn $g(a: &$W, b: &$W) -> __m512i {
            let u = nib_gf(qs_pair(&a.qs, &b.qs));
            $five(u, a, b)
        }
    )*};
}

nib_pairs! {
    pair_q4_0, pair_q4_0_gf: BlockQ4_0, |u, _, _| u;
    pair_q4_1, pair_q4_1_gf: BlockQ4_1, |u, _, _| u;
    pair_q5_0, pair_q5_0_gf: BlockQ5_0, |u, a: &BlockQ5_0, b: &BlockQ5_0| fifth_bit(u, a.qh, b.qh);
    pair_q5_1, pair_q5_1_gf: BlockQ5_1, |u, a: &BlockQ5_1, b: &BlockQ5_1| fifth_bit(u, a.qh, b.qh);
}

/// Q8_0 quants offset by 128 (the sign bit flipped), as `vpdpbusd` wants one unsigned operand.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(super) fn pair_q8_0(a: &BlockQ8_0, b: &BlockQ8_0) -> __m512i {
    // SAFETY: each qs is 32 readable bytes; loadu has no alignment requirement.
    let (ya, yb) = unsafe {
        (
            _mm256_loadu_si256(a.qs.as_ptr().cast()),
            _mm256_loadu_si256(b.qs.as_ptr().cast()),
        )
    };
    let ab = _mm512_inserti64x4::<1>(_mm512_castsi256_si512(ya), yb);
    _mm512_xor_si512(ab, _mm512_set1_epi8(-128))
}

/// An activation block's 32 quants in both halves of a zmm (a broadcast load).
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn both_halves(qs: &[i8; 32]) -> __m512i {
    // SAFETY: qs is 32 readable bytes.
    let y = unsafe { _mm256_loadu_si256(qs.as_ptr().cast()) };
    _mm512_broadcast_i64x4(y)
}

/// −off·Σ(each 4 quants) of an activation block: the starting integer sum that undoes the weights' unsigned
/// offset (0 for the formats with a minimum instead).
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(super) fn offset_base(q: __m512i, off: i32) -> __m512i {
    if off == 0 {
        return _mm512_setzero_si512();
    }
    let sums = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8(1), q);
    _mm512_mullo_epi32(sums, _mm512_set1_epi32(-off))
}

/// An activation block: (d, s or 0, quants in both halves).
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(super) fn act_q8_0(b: &BlockQ8_0) -> (f32, f32, __m512i) {
    (h2(b.d, [0, 0]).0, 0.0, both_halves(&b.qs))
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(super) fn act_q8_1(b: &BlockQ8_1) -> (f32, f32, __m512i) {
    let (d, s) = h2(b.d, b.s);
    (d, s, both_halves(&b.qs))
}

/// `out[r] = hsum(row r's half) + mins[r]` for the 16 rows of a pass (row 2p in the low half of `acc[p]`, row
/// 2p + 1 in the high half), all rows at once: each step adds the lanes `hsum` adds, (v_j + v_j+4), then
/// (s0 + s2) and (s1 + s3), then the two, so every row gets `hsum`'s bits, with 22 vector ops a pass instead
/// of 8 per row.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(super) fn finish(acc: &[__m512; PAIRS], mins: __m512, out: &mut [f32; ROWS]) {
    // per 128-bit lane k: row 4m + k's s_j = v_j + v_j+4 (j = 0..4)
    let s: [__m512; 4] = std::array::from_fn(|m| {
        let (a, b) = (acc[2 * m], acc[2 * m + 1]);
        _mm512_add_ps(
            _mm512_shuffle_f32x4::<0x88>(a, b),
            _mm512_shuffle_f32x4::<0xDD>(a, b),
        )
    });
    // per lane k: [row k: s0 + s2, s1 + s3, row 4 + k: s0 + s2, s1 + s3] (rows 8 + k, 12 + k for t[1])
    let t: [__m512; 2] = std::array::from_fn(|h| {
        let (a, b) = (s[2 * h], s[2 * h + 1]);
        _mm512_add_ps(
            _mm512_shuffle_ps::<0x44>(a, b),
            _mm512_shuffle_ps::<0xEE>(a, b),
        )
    });
    // lane 4k + j: row 4j + k
    let r = _mm512_add_ps(
        _mm512_shuffle_ps::<0x88>(t[0], t[1]),
        _mm512_shuffle_ps::<0xDD>(t[0], t[1]),
    );
    let rows = _mm512_permutexvar_ps(
        _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15),
        r,
    );
    // SAFETY: out is 16 floats.
    unsafe { _mm512_storeu_ps(out.as_mut_ptr(), _mm512_add_ps(rows, mins)) };
    // debug builds (every test run without --release) check each row against `hsum` itself
    debug_assert!((0..ROWS).all(|r| {
        let mut m = [0f32; ROWS];
        // SAFETY: m is 16 floats.
        unsafe { _mm512_storeu_ps(m.as_mut_ptr(), mins) };
        let half = if r % 2 == 0 {
            _mm512_castps512_ps256(acc[r / 2])
        } else {
            _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(acc[r / 2])))
        };
        out[r].to_bits() == (hsum(half) + m[r]).to_bits()
    }));
}

/// Software prefetch (into L2) of the next pass's weights while this pass runs, a share of its cache lines at
/// each block step; the last pass of a task prefetches the 16 rows after the task (most often the next task's,
/// of this thread or the other; past a matrix's end, the next bytes of the file). Without it a pass waits on
/// memory: the hardware prefetcher does not run far enough ahead of 16 rows read side by side, and each task
/// (decode splits a matrix into shrinking tasks) started cold. Measured (`matvec_mt`, weights from DRAM, one
/// thread, best of many): Q5_0 ~7 → 10-13 GB/s, Q8_0 ~8 → 11 GB/s, Q4_K / Q6_K ~8 → 12-13 GB/s; the rows
/// after the task added ~15% on gemma's small matrices with two threads. A T0 hint was no better than T1, and
/// prefetching a task's first pass up front did not help.
#[derive(Clone, Copy)]
pub(super) struct Prefetch {
    ptr: *const u8,
    last: usize,
    lines: usize,
    per_step: usize,
}

impl Prefetch {
    /// `len` bytes from `ptr` spread over `steps` calls of [`Prefetch::step`] (`ptr` need not point into
    /// memory this code may read: a prefetch is only a hint and never faults).
    #[inline(always)]
    fn new(ptr: *const u8, len: usize, steps: usize) -> Prefetch {
        // one line more than len / 64: the bytes need not start on a line
        let lines = if len == 0 { 0 } else { len / 64 + 2 };
        Prefetch {
            ptr,
            last: len.saturating_sub(1),
            lines,
            per_step: lines.div_ceil(steps.max(1)),
        }
    }

    /// What pass `c` of a task's rows `w` (`full_bytes` of whole passes of `pass_bytes`) prefetches over its
    /// `steps` block steps: the next pass, or after the last one the `pass_bytes` that follow the task.
    #[inline(always)]
    pub(super) fn for_pass(
        w: &[u8],
        c: usize,
        pass_bytes: usize,
        full_bytes: usize,
        steps: usize,
    ) -> Prefetch {
        Prefetch::ahead(w, c, pass_bytes, 0, full_bytes, steps)
    }

    /// What pass `c` of a task's rows `w` prefetches over its `steps` block steps when it reads `distance`
    /// bytes ahead (at least one pass, [`Prefetch::for_pass`] at one): pass `c + k`, k the passes that make up
    /// the distance; the task's first pass takes passes 1 to k, so that none starts unannounced.
    #[inline(always)]
    pub(super) fn ahead(
        w: &[u8],
        c: usize,
        pass_bytes: usize,
        distance: usize,
        full_bytes: usize,
        steps: usize,
    ) -> Prefetch {
        let k = distance.div_ceil(pass_bytes.max(1)).max(1);
        let (start, len) = if c == 0 {
            (pass_bytes, k * pass_bytes)
        } else {
            ((c + k) * pass_bytes, pass_bytes)
        };
        if start < full_bytes {
            Prefetch::new(w[start..].as_ptr(), len.min(full_bytes - start), steps)
        } else {
            Prefetch::new(w.as_ptr().wrapping_add(start), len, steps)
        }
    }

    /// The lines of step `i`.
    #[inline(always)]
    pub(super) fn step(&self, i: usize) {
        for p in self.addresses(i) {
            // SAFETY: a prefetch only hints at an address: it reads nothing and never faults.
            unsafe { _mm_prefetch::<_MM_HINT_T1>(p.cast::<i8>()) };
        }
    }

    /// Step `j` of a pass cut into at least as many steps as it has lines (`lines ≤ steps`: one line a step
    /// at most): one compare and one prefetch, no loop (the loop of [`Prefetch::step`] costs several
    /// instructions a line, and unrolled its remainder recomputed its bounds at every line). With fewer steps
    /// than lines, [`Prefetch::step`]. The last line may lie a line past the bytes asked for (a hint may).
    #[inline(always)]
    pub(super) fn line(&self, j: usize) {
        if self.per_step > 1 {
            self.step(j);
        } else if j < self.lines {
            // SAFETY: a prefetch only hints at an address: it reads nothing and never faults.
            unsafe { _mm_prefetch::<_MM_HINT_T1>(self.ptr.wrapping_add(64 * j).cast::<i8>()) };
        }
    }

    /// The addresses step `i` prefetches.
    #[inline(always)]
    fn addresses(&self, i: usize) -> impl Iterator<Item = *const u8> {
        let lo = i * self.per_step;
        let hi = (lo + self.per_step).min(self.lines);
        (lo..hi).map(move |l| self.ptr.wrapping_add((l * 64).min(self.last)))
    }
}

/// The 256-bit kernel of the same format, for the last `rows % 16` rows (same bits).
pub(super) fn tail_kernel(ty: GgmlType) -> Option<RowsFn> {
    super::avx512::vnni::matvec_kernel(ty)
}

macro_rules! zmm_matvec {
    ($name:ident, $pass:ident, $feat:literal, $ty:ident, $W:ty, $A:ty, $act:ident, $pair:ident, $off:expr, $has_min:expr) => {
        /// 16 rows of `w` (`w_row` bytes each) against the prepared activations.
        #[inline]
        #[target_feature(enable = $feat)]
        fn $pass(w: &[u8], w_row: usize, acts: &[$A], out: &mut [f32; ROWS], prefetch: Prefetch) {
            let nb = acts.len();
            assert!(w.len() >= ROWS * w_row && w_row >= nb * size_of::<$W>());
            let block = |r: usize, i: usize| -> &$W {
                // SAFETY: r < 16 and i < nb, so the block's bytes lie inside w (asserted above); $W is plain
                // bytes (alignment 1, every bit pattern valid).
                unsafe { &*w.as_ptr().add(r * w_row + i * size_of::<$W>()).cast::<$W>() }
            };
            let offsets = _mm512_mullo_epi32(
                _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                _mm512_set1_epi32(w_row as i32),
            );
            // pair p's scale: lane 2p in the low half, lane 2p + 1 in the high half
            let pick: [__m512i; PAIRS] = std::array::from_fn(|p| {
                let lo = _mm256_set1_epi32(2 * p as i32);
                let hi = _mm256_set1_epi32(2 * p as i32 + 1);
                _mm512_inserti64x4::<1>(_mm512_castsi256_si512(lo), hi)
            });
            let mut acc = [_mm512_setzero_ps(); PAIRS];
            let mut mins = _mm512_setzero_ps();
            for i in 0..nb {
                // SAFETY: lane r reads 4 bytes at row r's block i, inside w: r·w_row + (i + 1)·size ≤ 16·w_row
                // (asserted above) and every block is at least 18 bytes.
                let dm = unsafe {
                    _mm512_i32gather_epi32::<1>(offsets, w.as_ptr().add(i * size_of::<$W>()).cast())
                };
                let dw = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(dm));
                let (da, sa, a) = $act(&acts[i]);
                let dd = _mm512_mul_ps(dw, _mm512_set1_ps(da));
                if $has_min {
                    let mw = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32::<16>(dm)));
                    mins = _mm512_add_ps(mins, _mm512_mul_ps(mw, _mm512_set1_ps(sa)));
                }
                let base = offset_base(a, $off);
                prefetch.step(i);
                for p in 0..PAIRS {
                    let u = $pair(block(2 * p, i), block(2 * p + 1, i));
                    let sum = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(base, u, a));
                    acc[p] = _mm512_fmadd_ps(sum, _mm512_permutexvar_ps(pick[p], dd), acc[p]);
                }
            }
            finish(&acc, mins, out);
        }

        /// The matvec, prefetching `PF` bytes ahead (at least the next pass: [`Prefetch::ahead`]).
        #[target_feature(enable = $feat)]
        pub(super) fn $name<const PF: usize>(w: &[u8], w_row: usize, act: &[u8], out: &mut [f32]) {
            let acts: &[$A] = cs(act);
            let full = out.len() / ROWS * ROWS;
            for (c, dst) in out[..full].chunks_exact_mut(ROWS).enumerate() {
                let dst: &mut [f32; ROWS] = dst.try_into().expect("chunks of ROWS");
                let pf = Prefetch::ahead(w, c, ROWS * w_row, PF, full * w_row, acts.len());
                $pass(
                    &w[c * ROWS * w_row..(c + 1) * ROWS * w_row],
                    w_row,
                    acts,
                    dst,
                    pf,
                );
            }
            if full < out.len() {
                if let Some(k) = tail_kernel(GgmlType::$ty) {
                    k(&w[full * w_row..], w_row, act, &mut out[full..]);
                }
            }
        }
    };
}

zmm_matvec!(
    mv_q4_0,
    pass_q4_0,
    "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni",
    Q4_0,
    BlockQ4_0,
    BlockQ8_0,
    act_q8_0,
    pair_q4_0,
    8,
    false
);
zmm_matvec!(
    mv_q4_0_gf,
    pass_q4_0_gf,
    "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni,gfni",
    Q4_0,
    BlockQ4_0,
    BlockQ8_0,
    act_q8_0,
    pair_q4_0_gf,
    8,
    false
);
zmm_matvec!(
    mv_q4_1,
    pass_q4_1,
    "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni",
    Q4_1,
    BlockQ4_1,
    BlockQ8_1,
    act_q8_1,
    pair_q4_1,
    0,
    true
);
zmm_matvec!(
    mv_q4_1_gf,
    pass_q4_1_gf,
    "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni,gfni",
    Q4_1,
    BlockQ4_1,
    BlockQ8_1,
    act_q8_1,
    pair_q4_1_gf,
    0,
    true
);
zmm_matvec!(
    mv_q5_0,
    pass_q5_0,
    "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni",
    Q5_0,
    BlockQ5_0,
    BlockQ8_0,
    act_q8_0,
    pair_q5_0,
    16,
    false
);
zmm_matvec!(
    mv_q5_0_gf,
    pass_q5_0_gf,
    "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni,gfni",
    Q5_0,
    BlockQ5_0,
    BlockQ8_0,
    act_q8_0,
    pair_q5_0_gf,
    16,
    false
);
zmm_matvec!(
    mv_q5_1,
    pass_q5_1,
    "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni",
    Q5_1,
    BlockQ5_1,
    BlockQ8_1,
    act_q8_1,
    pair_q5_1,
    0,
    true
);
zmm_matvec!(
    mv_q5_1_gf,
    pass_q5_1_gf,
    "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni,gfni",
    Q5_1,
    BlockQ5_1,
    BlockQ8_1,
    act_q8_1,
    pair_q5_1_gf,
    0,
    true
);
zmm_matvec!(
    mv_q8_0,
    pass_q8_0,
    "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni",
    Q8_0,
    BlockQ8_0,
    BlockQ8_0,
    act_q8_0,
    pair_q8_0,
    128,
    false
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::{activation_type, quantize_activation_with, quantize_row};

    fn data(n: usize, seed: u32, outlier: f32) -> Vec<f32> {
        // a few large channels and one block of ±max quants, like a real residual stream
        let mut x = crate::test_data::with_outliers(n, seed, outlier);
        for (i, v) in x.iter_mut().take(64).skip(32).enumerate() {
            *v = if i % 3 == 0 { -4.0 } else { 4.0 };
        }
        x
    }

    /// Whether each byte of a task's passes (and of what follows them) lies on a cache line one of them
    /// prefetches over its `steps` calls.
    fn prefetched(passes: usize, pass: usize, distance: usize, steps: usize) -> Vec<bool> {
        let w = vec![0u8; passes * pass];
        let base = w.as_ptr() as usize;
        let far = (passes + distance.div_ceil(pass) + 2) * pass;
        let mut line_hit = vec![false; far / 64 + 2];
        for c in 0..passes {
            let pf = Prefetch::ahead(&w, c, pass, distance, passes * pass, steps);
            for i in 0..steps {
                for p in pf.addresses(i) {
                    let line = (p as usize / 64).wrapping_sub(base / 64);
                    if let Some(h) = line_hit.get_mut(line) {
                        *h = true;
                    }
                }
            }
        }
        (0..far)
            .map(|b| line_hit[(base + b) / 64 - base / 64])
            .collect()
    }

    /// Regression (`legacy_matvec!` on 576-wide rows: the last partial run of 8 blocks made no prefetch
    /// call, so a third of every pass came unannounced; it now makes every step): when a pass makes all its
    /// `steps` calls, every byte of the task's passes after the first is on a prefetched line, at any
    /// distance, also where the distance is many passes (the first pass then covers the lead-in).
    #[test]
    fn prefetch_ahead_covers_every_later_pass_of_a_task() {
        // 4 rows of 576 Q4_1 columns (18 blocks: 3 steps), of 640 Q8_0 ones, 16 rows of 2048 Q4_0 ones
        for (pass, steps) in [(4 * 360, 3), (4 * 680, 3), (16 * 1152, 64)] {
            for distance in [0, 4096, 8192, 65536] {
                let passes = 9;
                let hit = prefetched(passes, pass, distance, steps);
                // the next task's first pass too, where the distance is shorter than this task
                let k = distance.div_ceil(pass).max(1);
                let end = if k < passes { passes + 1 } else { passes };
                for (b, hit) in hit.iter().enumerate().take(end * pass).skip(pass) {
                    assert!(
                        hit,
                        "pass {pass} distance {distance}: byte {b} not prefetched"
                    );
                }
            }
        }
    }

    /// Every pass, the tail and both halves of each accumulator give the 256-bit kernel's bits.
    #[test]
    fn zmm_matvec_gives_the_256_bit_kernels_bits() {
        if !(crate::isa::Isa::Avx512.supported() && crate::isa::has_avx512_vnni()) {
            return;
        }
        use GgmlType::*;
        // the dispatched kernels (GFNI where the CPU has it) and the kernels without GFNI
        macro_rules! plain {
            ($ty:ident, $f:ident) => {
                ($ty, |w: &[u8], wr: usize, a: &[u8], o: &mut [f32]| {
                    // SAFETY: the test returned above unless this CPU has AVX-512 F/BW/VL and VNNI.
                    unsafe { $f::<PREFETCH>(w, wr, a, o) }
                })
            };
        }
        let plain: [(GgmlType, RowsFn); 4] = [
            plain!(Q4_0, mv_q4_0),
            plain!(Q4_1, mv_q4_1),
            plain!(Q5_0, mv_q5_0),
            plain!(Q5_1, mv_q5_1),
        ];
        let dispatched = [Q4_0, Q4_1, Q5_0, Q5_1, Q8_0].map(|ty| (ty, matvec_kernel(ty).unwrap()));
        for (ty, fast) in dispatched.into_iter().chain(plain) {
            let reference = tail_kernel(ty).unwrap();
            for (cols, rows) in [(32, 16), (64, 17), (576, 48), (640, 37), (2048, 33)] {
                let rb = ty.row_bytes(cols).unwrap();
                let mut w = vec![0u8; rb * rows];
                for (r, row) in w.chunks_exact_mut(rb).enumerate() {
                    quantize_row(ty, &data(cols, r as u32, 1.0), row).unwrap();
                }
                for outlier in [1.0, 500.0] {
                    let at = activation_type(ty);
                    let mut a = vec![0u8; at.row_bytes(cols).unwrap()];
                    let x = data(cols, 99, outlier);
                    quantize_activation_with(crate::isa::Isa::Avx512, at, &x, &mut a);
                    let (mut got, mut want) = (vec![0f32; rows], vec![0f32; rows]);
                    fast(&w, rb, &a, &mut got);
                    reference(&w, rb, &a, &mut want);
                    for r in 0..rows {
                        assert_eq!(
                            got[r].to_bits(),
                            want[r].to_bits(),
                            "{ty:?} {cols}x{rows} row {r}"
                        );
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod ab {
    //! Prefetch distances of the matvec, one thread, weights from memory (ignored by default; timings, not a
    //! check): `cargo test --release -p cria-kernels --lib zmm_matvec::ab -- --ignored --nocapture`.
    use super::*;
    use crate::isa::Isa;
    use std::time::Instant;

    #[test]
    #[ignore]
    fn zmm_prefetch_ab() {
        if !(Isa::Avx512.supported() && crate::isa::has_avx512_vnni()) {
            return;
        }
        type Mv = unsafe fn(&[u8], usize, &[u8], &mut [f32]);
        type Case = (GgmlType, usize, [(&'static str, Mv); 4]);
        macro_rules! dists {
            ($f:ident) => {
                [
                    ("pf0", $f::<0> as Mv),
                    ("pf8k", $f::<8192> as Mv),
                    ("pf16k", $f::<16384> as Mv),
                    ("pf32k", $f::<32768> as Mv),
                ]
            };
        }
        let cases: [Case; 4] = [
            (GgmlType::Q4_1, 576, dists!(mv_q4_1)),
            (GgmlType::Q5_0, 640, dists!(mv_q5_0)),
            (GgmlType::Q8_0, 640, dists!(mv_q8_0)),
            (GgmlType::Q8_0, 2048, dists!(mv_q8_0)),
        ];
        for (ty, n, kernels) in cases {
            let mat_rows = 1536;
            let (w, a, rb) = crate::test_data::dram_matrix(ty, n, mat_rows);
            let mut out = vec![0f32; mat_rows];
            let mut best = [f64::MAX; 4];
            for _ in 0..5 {
                for (i, (_, k)) in kernels.iter().enumerate() {
                    let t = Instant::now();
                    for m in w.chunks_exact(mat_rows * rb) {
                        // SAFETY: AVX-512 F/BW/VL and VNNI were checked above.
                        unsafe { k(m, rb, &a, &mut out) };
                    }
                    best[i] = best[i].min(t.elapsed().as_secs_f64());
                }
            }
            let line: Vec<String> = kernels
                .iter()
                .zip(best)
                .map(|((k, _), s)| format!("{k} {:.1}", w.len() as f64 / s / 1e9))
                .collect();
            println!(
                "zmm {ty:?} {n} cols, GB/s from memory (best of 5): {}",
                line.join(", ")
            );
        }
    }
}
