//! AVX-512 VNNI matvec for the 4/5-bit 32-element formats (Q4_0, Q4_1, Q5_0, Q5_1): four blocks per pair of
//! 512-bit registers. The activation row is rearranged once per call so that each group of 4 blocks is two
//! 64-byte loads (first and second halves of the blocks) plus its scales and the offset term; per weight row
//! and group the work is then 4 loads of quants, 2 `vpdpbusd` and one FMA. (The same scheme for Q8_0 measured
//! slower than its row kernel, so Q8_0 keeps that.)

use crate::GgmlType;
use crate::dot::RowsFn;
use crate::quant::blocks::*;
use bytemuck::{Pod, cast_slice as cs};
use std::arch::x86_64::*;

/// One group of 4 activation blocks: first halves, second halves, d per i32 lane, s per block, and
/// −off·Σa per i32 lane (the starting value that turns unsigned weights u into u − off).
#[repr(C, align(64))]
#[derive(Clone, Copy)]
struct Group {
    lo: [i8; 64],
    hi: [i8; 64],
    d: [f32; 16],
    base: [i32; 16],
    s: [f32; 4],
}

/// A weight block: where its 16+16 quant bytes come from, its offset, its scales.
trait Block: Pod {
    const OFF: i32;
    const MIN: bool;
    /// (d, m) as f16 bits.
    fn dm(&self) -> u32;
    /// # Safety
    /// The CPU must support AVX-512 F/BW/VL + VNNI.
    unsafe fn quants(w: &[Self]) -> (__m512i, __m512i);
}

/// The activation blocks: Q8_0 or Q8_1 (with s).
trait Act: Pod {
    fn qs(&self) -> &[i8; 32];
    fn d(&self) -> f32;
    fn s(&self) -> f32;
}
impl Act for BlockQ8_0 {
    fn qs(&self) -> &[i8; 32] {
        &self.qs
    }
    fn d(&self) -> f32 {
        BlockQ8_0::d(self)
    }
    fn s(&self) -> f32 {
        0.0
    }
}
impl Act for BlockQ8_1 {
    fn qs(&self) -> &[i8; 32] {
        &self.qs
    }
    fn d(&self) -> f32 {
        BlockQ8_1::d(self)
    }
    fn s(&self) -> f32 {
        BlockQ8_1::s(self)
    }
}

/// The groups of `a`, the last one zero-padded when the row is not a whole number of 4 blocks.
fn groups<A: Act>(a: &[A], off: i32) -> Vec<Group> {
    a.chunks(4)
        .map(|a| {
            let mut g = Group {
                lo: [0; 64],
                hi: [0; 64],
                d: [0.0; 16],
                base: [0; 16],
                s: [0.0; 4],
            };
            for (i, b) in a.iter().enumerate() {
                let q = b.qs();
                g.lo[16 * i..16 * i + 16].copy_from_slice(&q[..16]);
                g.hi[16 * i..16 * i + 16].copy_from_slice(&q[16..]);
                g.d[4 * i..4 * i + 4].fill(b.d());
                g.s[i] = b.s();
                for l in 0..4 {
                    let sum: i32 = (0..4)
                        .map(|k| q[4 * l + k] as i32 + q[16 + 4 * l + k] as i32)
                        .sum();
                    g.base[4 * i + l] = -off * sum;
                }
            }
            g
        })
        .collect()
}

/// Four 16-byte pieces into one register.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn join4(p: [&[u8]; 4]) -> __m512i {
    // SAFETY: each piece is sliced to exactly 16 readable bytes.
    let q: [__m128i; 4] =
        std::array::from_fn(|i| unsafe { _mm_loadu_si128(p[i][..16].as_ptr().cast()) });
    let lo = _mm512_inserti32x4::<1>(_mm512_castsi128_si512(q[0]), q[1]);
    _mm512_inserti32x4::<3>(_mm512_inserti32x4::<2>(lo, q[2]), q[3])
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn nibbles(qs: [&[u8]; 4]) -> (__m512i, __m512i) {
    let q = join4(qs);
    let m = _mm512_set1_epi8(0xF);
    (
        _mm512_and_si512(q, m),
        _mm512_and_si512(_mm512_srli_epi16::<4>(q), m),
    )
}

/// Adds 16 to the elements whose bit is set in the 4 blocks' qh.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn fifth_bits(lo: __m512i, hi: __m512i, qh: [u32; 4]) -> (__m512i, __m512i) {
    let (mut kl, mut kh) = (0u64, 0u64);
    for (i, h) in qh.iter().enumerate() {
        kl |= ((h & 0xFFFF) as u64) << (16 * i);
        kh |= ((h >> 16) as u64) << (16 * i);
    }
    let s = |k: u64| _mm512_maskz_set1_epi8(k, 0x10);
    (_mm512_or_si512(lo, s(kl)), _mm512_or_si512(hi, s(kh)))
}

fn d_only(d: [u8; 2]) -> u32 {
    u16::from_le_bytes(d) as u32
}

fn d_m(d: [u8; 2], m: [u8; 2]) -> u32 {
    u32::from_le_bytes([d[0], d[1], m[0], m[1]])
}

macro_rules! block {
    ($B:ty, $off:expr, $min:expr, |$b:ident| $dm:expr, |$w:ident| $quants:expr) => {
        impl Block for $B {
            const OFF: i32 = $off;
            const MIN: bool = $min;
            #[inline]
            fn dm(&self) -> u32 {
                let $b = self;
                $dm
            }
            #[inline]
            #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
            unsafe fn quants($w: &[Self]) -> (__m512i, __m512i) {
                $quants
            }
        }
    };
}
block!(BlockQ4_0, 8, false, |b| d_only(b.d), |w| nibbles(
    std::array::from_fn(|i| &w[i].qs[..])
));
block!(BlockQ4_1, 0, true, |b| d_m(b.d, b.m), |w| nibbles(
    std::array::from_fn(|i| &w[i].qs[..])
));
block!(BlockQ5_0, 16, false, |b| d_only(b.d), |w| {
    let (lo, hi) = nibbles(std::array::from_fn(|i| &w[i].qs[..]));
    fifth_bits(lo, hi, std::array::from_fn(|i| w[i].qh()))
});
block!(BlockQ5_1, 0, true, |b| d_m(b.d, b.m), |w| {
    let (lo, hi) = nibbles(std::array::from_fn(|i| &w[i].qs[..]));
    fifth_bits(lo, hi, std::array::from_fn(|i| w[i].qh()))
});
/// dot of one row (whole groups only) against the prepared groups.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn row<W: Block>(w: &[W], pre: &[Group]) -> f32 {
    // d of block i sits in f32 lane 2i (with m in 2i + 1) after the conversion below
    let spread = _mm512_setr_epi32(0, 0, 0, 0, 2, 2, 2, 2, 4, 4, 4, 4, 6, 6, 6, 6);
    let odd = _mm256_setr_epi32(1, 3, 5, 7, 1, 3, 5, 7);
    let (mut acc, mut accm) = (_mm512_setzero_ps(), _mm_setzero_ps());
    for (wb, g) in w.chunks_exact(4).zip(pre) {
        // SAFETY: the CPU has the features of this function.
        let (lo, hi) = unsafe { W::quants(wb) };
        // SAFETY: g is 64-byte aligned and its fields are whole multiples of 64 bytes (s excepted, not read here).
        let (al, ah, ad, base) = unsafe {
            (
                _mm512_load_si512(g.lo.as_ptr().cast()),
                _mm512_load_si512(g.hi.as_ptr().cast()),
                _mm512_load_ps(g.d.as_ptr()),
                _mm512_load_si512(g.base.as_ptr().cast()),
            )
        };
        let p = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(base, lo, al), hi, ah);
        let dm = |i: usize| wb[i].dm() as i32;
        let f = _mm256_cvtph_ps(_mm_setr_epi32(dm(0), dm(1), dm(2), dm(3)));
        let dw = _mm512_permutexvar_ps(spread, _mm512_castps256_ps512(f));
        acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), _mm512_mul_ps(dw, ad), acc);
        if W::MIN {
            let mw = _mm256_castps256_ps128(_mm256_permutevar8x32_ps(f, odd));
            // SAFETY: g.s is 16 readable bytes.
            accm = _mm_fmadd_ps(mw, unsafe { _mm_loadu_ps(g.s.as_ptr()) }, accm);
        }
    }
    let m = _mm_add_ps(accm, _mm_movehl_ps(accm, accm));
    _mm512_reduce_add_ps(acc) + _mm_cvtss_f32(_mm_add_ss(m, _mm_movehdup_ps(m)))
}

fn rows<W: Block, A: Act>(w: &[u8], rb: usize, act: &[u8], out: &mut [f32]) {
    let a: &[A] = cs(act);
    let pre = groups(a, W::OFF);
    let whole = a.len() / 4;
    for (o, wr) in out.iter_mut().zip(w.chunks_exact(rb)) {
        let wb: &[W] = cs(wr);
        // SAFETY: these kernels are only handed out on a CPU with the features `row` needs (see below).
        let mut sum = unsafe { row(&wb[..4 * whole], &pre[..whole]) };
        if let Some(last) = pre.get(whole) {
            // the last 1..3 blocks, zero-padded (zero scales: the padding adds nothing)
            let mut pad = [W::zeroed(); 4];
            pad[..wb.len() - 4 * whole].copy_from_slice(&wb[4 * whole..]);
            // SAFETY: as above.
            sum += unsafe { row(&pad, std::slice::from_ref(last)) };
        }
        *o = sum;
    }
}

/// The matvec kernel for `ty`, if this module has one. Handed out by `x86::matvec_kernel` only on a CPU with
/// AVX-512 F/BW/VL + VNNI.
pub(super) fn rows_kernel(ty: GgmlType) -> Option<RowsFn> {
    use GgmlType::*;
    match ty {
        Q4_0 => Some(rows::<BlockQ4_0, BlockQ8_0>),
        Q4_1 => Some(rows::<BlockQ4_1, BlockQ8_1>),
        Q5_0 => Some(rows::<BlockQ5_0, BlockQ8_0>),
        Q5_1 => Some(rows::<BlockQ5_1, BlockQ8_1>),
        _ => None,
    }
}
