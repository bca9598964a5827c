//! AVX2 dot products of the IQ, ternary and MXFP4 formats, with the bits of the scalar reference
//! (`dot::iq_scalar`, which sums in llama.cpp's AVX2 order): the same 8 integer lanes per block (exact, however
//! they are formed), the same `fma`s, the same horizontal sum. Tested bit for bit in `tests/iq_kernels.rs`.

use crate::GgmlType;
use crate::dot::RowsFn;
use crate::quant::blocks::{BlockQ8_0, BlockQ8K};
use crate::quant::iq_blocks::*;
use crate::quant::iq_grids::*;
use bytemuck::cast_slice as c;
use std::arch::x86_64::*;

/// For each byte b: the 8 bytes `bit j of b ? −1 : +1`, the second operand of `_mm256_sign_epi8`.
static BYTE_SIGNS: [u64; 256] = byte_signs();

const fn byte_signs() -> [u64; 256] {
    let mut t = [0u64; 256];
    let mut b = 0;
    while b < 256 {
        let mut j = 0;
        while j < 8 {
            let byte: u64 = if b & (1 << j) != 0 { 0xff } else { 0x01 };
            t[b] |= byte << (8 * j);
            j += 1;
        }
        b += 1;
    }
    t
}

/// The sign bytes of a 7-bit IQ2/IQ3 sign code (its 8th sign is the parity).
#[inline]
fn ksigns(code: u32) -> i64 {
    BYTE_SIGNS[KSIGNS_IQ2XS[(code & 127) as usize] as usize] as i64
}

#[inline]
fn sign_bytes(b: u8) -> i64 {
    BYTE_SIGNS[b as usize] as i64
}

#[inline]
#[target_feature(enable = "avx2,f16c")]
fn load_u8(x: &[u8]) -> __m256i {
    let x = &x[..32];
    // SAFETY: x holds 32 bytes (sliced just above).
    unsafe { _mm256_loadu_si256(x.as_ptr().cast()) }
}

#[inline]
#[target_feature(enable = "avx2,f16c")]
fn load_i8(x: &[i8]) -> __m256i {
    load_u8(bytemuck::cast_slice(x))
}

#[inline]
#[target_feature(enable = "avx2,f16c")]
fn load16(x: &[u8]) -> __m128i {
    let x = &x[..16];
    // SAFETY: x holds 16 bytes (sliced just above).
    unsafe { _mm_loadu_si128(x.as_ptr().cast()) }
}

/// llama.cpp's `hsum_float_8`.
#[inline]
#[target_feature(enable = "avx2,f16c")]
fn hsum(v: __m256) -> f32 {
    let x = _mm_add_ps(_mm256_extractf128_ps::<1>(v), _mm256_castps256_ps128(v));
    let x = _mm_add_ps(x, _mm_movehl_ps(x, x));
    _mm_cvtss_f32(_mm_add_ss(x, _mm_movehdup_ps(x)))
}

/// Pairs of signed × signed byte products as i16 (llama.cpp's `mul_add_epi8`; |x| ≤ 127 here).
#[inline]
#[target_feature(enable = "avx2,f16c")]
fn mul_add_epi8(x: __m256i, y: __m256i) -> __m256i {
    _mm256_maddubs_epi16(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x))
}

/// `fma(scale, cvt(lanes), acc)`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn fma_lanes(acc: __m256, lanes: __m256i, scale: f32) -> __m256 {
    _mm256_fmadd_ps(_mm256_set1_ps(scale), _mm256_cvtepi32_ps(lanes), acc)
}

/// A 4-bit codebook block: low nibbles are elements 0..16, high nibbles 16..32.
#[inline]
#[target_feature(enable = "avx2,f16c")]
fn codebook32(book: __m128i, qs: &[u8]) -> __m256i {
    let (bits, m4) = (load16(qs), _mm_set1_epi8(0xf));
    let lo = _mm_shuffle_epi8(book, _mm_and_si128(bits, m4));
    let hi = _mm_shuffle_epi8(book, _mm_and_si128(_mm_srli_epi16::<4>(bits), m4));
    _mm256_set_m128i(hi, lo)
}

#[inline]
#[target_feature(enable = "avx2,f16c")]
fn codebook_lanes(book: __m128i, qs: &[u8], y: &[i8]) -> __m256i {
    let p16 = mul_add_epi8(codebook32(book, qs), load_i8(y));
    _mm256_madd_epi16(p16, _mm256_set1_epi16(1))
}

/// IQ4_NL / MXFP4 against Q8_0: even blocks in one accumulator, odd in the other, an odd last block after
/// the horizontal sum.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn codebook_q8_0<B: Codebook>(w: &[B], a: &[BlockQ8_0]) -> f32 {
    let book = load16(bytemuck::cast_slice(&B::BOOK));
    let (mut acc1, mut acc2) = (_mm256_setzero_ps(), _mm256_setzero_ps());
    for (w, a) in w.chunks_exact(2).zip(a.chunks_exact(2)) {
        let l1 = codebook_lanes(book, w[0].qs(), &a[0].qs);
        let l2 = codebook_lanes(book, w[1].qs(), &a[1].qs);
        acc1 = fma_lanes(acc1, l1, h16(a[0].d) * scale_of(&w[0]));
        acc2 = fma_lanes(acc2, l2, h16(a[1].d) * scale_of(&w[1]));
    }
    let mut sum = hsum(_mm256_add_ps(acc1, acc2));
    if w.len() % 2 == 1 {
        let (w, a) = (&w[w.len() - 1], &a[w.len() - 1]);
        let q = crate::quant::iq_unpack::codebook32(w.qs(), &B::BOOK);
        let isum: i32 = q
            .iter()
            .zip(&a.qs)
            .map(|(&q, &a)| q as i32 * a as i32)
            .sum();
        sum += isum as f32 * (a.d() * w.d());
    }
    sum
}

/// A little-endian f16 as f32 through F16C (exact, like `half`'s conversion, without its run-time dispatch).
#[inline]
#[target_feature(enable = "avx2,f16c")]
fn h16(b: [u8; 2]) -> f32 {
    _mm_cvtss_f32(_mm_cvtph_ps(
        _mm_cvtsi32_si128(u16::from_le_bytes(b) as i32),
    ))
}

#[inline]
#[target_feature(enable = "avx2,f16c")]
fn scale_of<B: Codebook>(b: &B) -> f32 {
    match b.d_f16() {
        Some(bits) => h16(bits),
        None => b.d(),
    }
}

/// The 32-element codebook formats.
trait Codebook {
    const BOOK: [i8; 16];
    fn qs(&self) -> &[u8; 16];
    /// The scale as f16 bits, where it is one (converted with F16C in the kernel).
    fn d_f16(&self) -> Option<[u8; 2]>;
    fn d(&self) -> f32;
}

impl Codebook for BlockIQ4NL {
    const BOOK: [i8; 16] = KVALUES_IQ4NL;
    fn qs(&self) -> &[u8; 16] {
        &self.qs
    }
    fn d_f16(&self) -> Option<[u8; 2]> {
        Some(self.d)
    }
    fn d(&self) -> f32 {
        BlockIQ4NL::d(self)
    }
}

impl Codebook for BlockMXFP4 {
    const BOOK: [i8; 16] = KVALUES_MXFP4;
    fn qs(&self) -> &[u8; 16] {
        &self.qs
    }
    fn d_f16(&self) -> Option<[u8; 2]> {
        None
    }
    fn d(&self) -> f32 {
        BlockMXFP4::d(self)
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
fn dot_iq4_nl(w: &[u8], a: &[u8]) -> f32 {
    codebook_q8_0::<BlockIQ4NL>(c(w), c(a))
}

#[target_feature(enable = "avx2,fma,f16c")]
fn dot_mxfp4(w: &[u8], a: &[u8]) -> f32 {
    codebook_q8_0::<BlockMXFP4>(c(w), c(a))
}

#[target_feature(enable = "avx2,fma,f16c")]
fn dot_iq4_xs(w: &[u8], a: &[u8]) -> f32 {
    let (w, a): (&[BlockIQ4XS], &[BlockQ8K]) = (c(w), c(a));
    let book = load16(bytemuck::cast_slice(&KVALUES_IQ4NL));
    let mut acc = _mm256_setzero_ps();
    for (w, a) in w.iter().zip(a) {
        let mut sh = u16::from_le_bytes(w.scales_h) as i32;
        let mut sumi = _mm256_setzero_si256();
        for ib in (0..8).step_by(2) {
            let sl = w.scales_l[ib / 2] as i32;
            let ls1 = ((sl & 0xf) | ((sh << 4) & 0x30)) - 32;
            let ls2 = ((sl >> 4) | ((sh << 2) & 0x30)) - 32;
            sh >>= 4;
            for (j, ls) in [(ib, ls1), (ib + 1, ls2)] {
                let p16 = mul_add_epi8(codebook32(book, &w.qs[16 * j..]), load_i8(&a.qs[32 * j..]));
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p16, _mm256_set1_epi16(ls as i16)));
            }
        }
        acc = fma_lanes(acc, sumi, h16(w.d) * a.d());
    }
    hsum(acc)
}

/// One 32-element sub-block of a grid format: unsigned grid bytes, their signs, an i16 multiplier per 16.
#[inline]
#[target_feature(enable = "avx2,f16c")]
fn grid_lanes(q: __m256i, signs: __m256i, scale: __m256i, y: &[i8]) -> __m256i {
    let dot = _mm256_maddubs_epi16(q, _mm256_sign_epi8(load_i8(y), signs));
    _mm256_madd_epi16(dot, scale)
}

/// The `2·ls + 1` multipliers of a sub-block's two halves.
#[inline]
#[target_feature(enable = "avx2,f16c")]
fn odd16(lo: u8, hi: u8) -> __m256i {
    let m = |ls: u8| _mm_set1_epi16(2 * ls as i16 + 1);
    _mm256_set_m128i(m(hi), m(lo))
}

#[inline]
fn u32_le(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]])
}

#[inline]
fn u16_le(b: &[u8], i: usize) -> usize {
    u16::from_le_bytes([b[2 * i], b[2 * i + 1]]) as usize
}

#[target_feature(enable = "avx2,fma,f16c")]
fn dot_iq2_xxs(w: &[u8], a: &[u8]) -> f32 {
    let (w, a): (&[BlockIQ2XXS], &[BlockQ8K]) = (c(w), c(a));
    let mut acc = _mm256_setzero_ps();
    for (w, a) in w.iter().zip(a) {
        let mut sumi = _mm256_setzero_si256();
        for ib in 0..8 {
            let (aux0, aux1) = (u32_le(&w.qs, 2 * ib), u32_le(&w.qs, 2 * ib + 1));
            let g = |l: u32| IQ2XXS_GRID[((aux0 >> (8 * l)) & 0xff) as usize] as i64;
            let q = _mm256_set_epi64x(g(3), g(2), g(1), g(0));
            let s = _mm256_set_epi64x(
                ksigns(aux1 >> 21),
                ksigns(aux1 >> 14),
                ksigns(aux1 >> 7),
                ksigns(aux1),
            );
            let ls = (aux1 >> 28) as u8;
            sumi = _mm256_add_epi32(sumi, grid_lanes(q, s, odd16(ls, ls), &a.qs[32 * ib..]));
        }
        acc = fma_lanes(acc, sumi, h16(w.d) * a.d());
    }
    0.125 * hsum(acc)
}

#[target_feature(enable = "avx2,fma,f16c")]
fn dot_iq2_xs(w: &[u8], a: &[u8]) -> f32 {
    let (w, a): (&[BlockIQ2XS], &[BlockQ8K]) = (c(w), c(a));
    let mut acc = _mm256_setzero_ps();
    for (w, a) in w.iter().zip(a) {
        let mut sumi = _mm256_setzero_si256();
        for ib in 0..8 {
            let v = |l: usize| u16_le(&w.qs, 4 * ib + l);
            let g = |l: usize| IQ2XS_GRID[v(l) & 511] as i64;
            let s = |l: usize| ksigns((v(l) >> 9) as u32);
            let q = _mm256_set_epi64x(g(3), g(2), g(1), g(0));
            let s = _mm256_set_epi64x(s(3), s(2), s(1), s(0));
            let sc = odd16(w.scales[ib] & 0xf, w.scales[ib] >> 4);
            sumi = _mm256_add_epi32(sumi, grid_lanes(q, s, sc, &a.qs[32 * ib..]));
        }
        acc = fma_lanes(acc, sumi, h16(w.d) * a.d());
    }
    0.125 * hsum(acc)
}

#[target_feature(enable = "avx2,fma,f16c")]
fn dot_iq2_s(w: &[u8], a: &[u8]) -> f32 {
    let (w, a): (&[BlockIQ2S], &[BlockQ8K]) = (c(w), c(a));
    let mut acc = _mm256_setzero_ps();
    for (w, a) in w.iter().zip(a) {
        let (qs, signs) = w.qs.split_at(32);
        let mut sumi = _mm256_setzero_si256();
        for ib in 0..8 {
            let qh = w.qh[ib] as usize;
            let g = |l: usize| {
                IQ2S_GRID[qs[4 * ib + l] as usize | ((qh << (8 - 2 * l)) & 0x300)] as i64
            };
            let s = |l: usize| sign_bytes(signs[4 * ib + l]);
            let q = _mm256_set_epi64x(g(3), g(2), g(1), g(0));
            let s = _mm256_set_epi64x(s(3), s(2), s(1), s(0));
            let sc = odd16(w.scales[ib] & 0xf, w.scales[ib] >> 4);
            sumi = _mm256_add_epi32(sumi, grid_lanes(q, s, sc, &a.qs[32 * ib..]));
        }
        acc = fma_lanes(acc, sumi, h16(w.d) * a.d());
    }
    0.125 * hsum(acc)
}

#[target_feature(enable = "avx2,fma,f16c")]
fn dot_iq3_xxs(w: &[u8], a: &[u8]) -> f32 {
    let (w, a): (&[BlockIQ3XXS], &[BlockQ8K]) = (c(w), c(a));
    let mut acc = _mm256_setzero_ps();
    for (w, a) in w.iter().zip(a) {
        let (qs, gas) = w.qs.split_at(64);
        let mut sumi = _mm256_setzero_si256();
        for ib in 0..8 {
            let g = |k: usize| IQ3XXS_GRID[qs[8 * ib + k] as usize] as i32;
            let q = _mm256_set_epi32(g(7), g(6), g(5), g(4), g(3), g(2), g(1), g(0));
            let aux = u32_le(gas, ib);
            let s = _mm256_set_epi64x(
                ksigns(aux >> 21),
                ksigns(aux >> 14),
                ksigns(aux >> 7),
                ksigns(aux),
            );
            let ls = (aux >> 28) as u8;
            sumi = _mm256_add_epi32(sumi, grid_lanes(q, s, odd16(ls, ls), &a.qs[32 * ib..]));
        }
        acc = fma_lanes(acc, sumi, h16(w.d) * a.d());
    }
    0.25 * hsum(acc)
}

#[target_feature(enable = "avx2,fma,f16c")]
fn dot_iq3_s(w: &[u8], a: &[u8]) -> f32 {
    let (w, a): (&[BlockIQ3S], &[BlockQ8K]) = (c(w), c(a));
    let mut acc = _mm256_setzero_ps();
    for (w, a) in w.iter().zip(a) {
        let mut sumi = _mm256_setzero_si256();
        for ib in 0..8 {
            let qh = w.qh[ib] as usize;
            // grid point k of the sub-block: its 9th index bit is bit k of qh
            let g =
                |k: usize| IQ3S_GRID[w.qs[8 * ib + k] as usize | ((qh << (8 - k)) & 256)] as i32;
            let q = _mm256_set_epi32(g(7), g(6), g(5), g(4), g(3), g(2), g(1), g(0));
            let s = |l: usize| sign_bytes(w.signs[4 * ib + l]);
            let s = _mm256_set_epi64x(s(3), s(2), s(1), s(0));
            let ls = (w.scales[ib / 2] >> (4 * (ib % 2))) & 0xf;
            sumi = _mm256_add_epi32(sumi, grid_lanes(q, s, odd16(ls, ls), &a.qs[32 * ib..]));
        }
        acc = fma_lanes(acc, sumi, h16(w.d) * a.d());
    }
    hsum(acc)
}

#[target_feature(enable = "avx2,fma,f16c")]
fn dot_iq1_s(w: &[u8], a: &[u8]) -> f32 {
    let (w, a): (&[BlockIQ1S], &[BlockQ8K]) = (c(w), c(a));
    let (mut acc, mut delta) = (_mm256_setzero_ps(), 0f32);
    for (w, a) in w.iter().zip(a) {
        let mut sumi = _mm256_setzero_si256();
        let mut sumi1 = 0i32;
        for ib in 0..8 {
            let qh = u16_le(&w.qh, ib);
            let g = |l: usize| {
                IQ1S_GRID[w.qs[4 * ib + l] as usize | (((qh >> (3 * l)) & 7) << 8)] as i64
            };
            let q = _mm256_set_epi64x(g(3), g(2), g(1), g(0));
            let ls = 2 * ((qh >> 12) & 7) as i32 + 1;
            let dot = mul_add_epi8(q, load_i8(&a.qs[32 * ib..]));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(dot, _mm256_set1_epi16(ls as i16)));
            let sign = if qh & 0x8000 != 0 { -1 } else { 1 };
            sumi1 += (a.bsum(2 * ib) as i32 + a.bsum(2 * ib + 1) as i32) * sign * ls;
        }
        let d = a.d() * h16(w.d);
        acc = fma_lanes(acc, sumi, d);
        delta = d.mul_add(sumi1 as f32, delta);
    }
    hsum(acc) + 0.125 * delta
}

#[target_feature(enable = "avx2,fma,f16c")]
fn dot_iq1_m(w: &[u8], a: &[u8]) -> f32 {
    let (w, a): (&[BlockIQ1M], &[BlockQ8K]) = (c(w), c(a));
    let (mut acc1, mut acc2) = (_mm256_setzero_ps(), _mm256_setzero_ps());
    let ones = _mm256_set1_epi8(1);
    for (w, a) in w.iter().zip(a) {
        let sc = w.sc();
        let (mut sumi1, mut sumi2) = (_mm256_setzero_si256(), _mm256_setzero_si256());
        for ib in 0..8 {
            let (h0, h1) = (w.qh[2 * ib] as usize, w.qh[2 * ib + 1] as usize);
            let hi = [
                (h0 << 8) & 0x700,
                (h0 << 4) & 0x700,
                (h1 << 8) & 0x700,
                (h1 << 4) & 0x700,
            ];
            let g = |l: usize| IQ1S_GRID[w.qs[4 * ib + l] as usize | hi[l]] as i64;
            let q = _mm256_set_epi64x(g(3), g(2), g(1), g(0));
            let neg = |bit: usize| {
                if bit != 0 {
                    -1i64
                } else {
                    0x0101_0101_0101_0101
                }
            };
            let dv = _mm256_set_epi64x(
                neg(h1 & 0x80),
                neg(h1 & 0x08),
                neg(h0 & 0x80),
                neg(h0 & 0x08),
            );
            let shift = 6 * (ib % 2);
            let ls1 = ((sc[ib / 2] >> shift) & 7) as u8;
            let ls2 = ((sc[ib / 2] >> (shift + 3)) & 7) as u8;
            let scale = odd16(ls1, ls2);
            let y = load_i8(&a.qs[32 * ib..]);
            let dot1 = mul_add_epi8(q, y);
            let dot2 = _mm256_maddubs_epi16(ones, _mm256_sign_epi8(y, dv));
            sumi1 = _mm256_add_epi32(sumi1, _mm256_madd_epi16(dot1, scale));
            sumi2 = _mm256_add_epi32(sumi2, _mm256_madd_epi16(dot2, scale));
        }
        let d = a.d() * w.d();
        acc1 = fma_lanes(acc1, sumi1, d);
        acc2 = fma_lanes(acc2, sumi2, d);
    }
    hsum(acc2).mul_add(0.125, hsum(acc1))
}

/// Σ of the activation in 32s, per lane (lane k: bsums 2k and 2k + 1).
#[inline]
#[target_feature(enable = "avx2,f16c")]
fn bsum_lanes(a: &BlockQ8K) -> __m256i {
    _mm256_madd_epi16(load_u8(&a.bsums), _mm256_set1_epi16(1))
}

#[target_feature(enable = "avx2,fma,f16c")]
fn dot_tq2_0(w: &[u8], a: &[u8]) -> f32 {
    let (w, a): (&[BlockTQ2_0], &[BlockQ8K]) = (c(w), c(a));
    let mut acc = _mm256_setzero_ps();
    let m3 = _mm256_set1_epi8(3);
    for (w, a) in w.iter().zip(a) {
        // 16-bit sums: at most 8 products of 3·127 per pair
        let mut sum16 = _mm256_setzero_si256();
        for j in (0..64).step_by(32) {
            let bits = load_u8(&w.qs[j..]);
            let q = [
                _mm256_and_si256(bits, m3),
                _mm256_and_si256(_mm256_srli_epi16::<2>(bits), m3),
                _mm256_and_si256(_mm256_srli_epi16::<4>(bits), m3),
                _mm256_and_si256(_mm256_srli_epi16::<6>(bits), m3),
            ];
            for (l, q) in q.into_iter().enumerate() {
                let y = load_i8(&a.qs[4 * j + 32 * l..]);
                sum16 = _mm256_add_epi16(sum16, _mm256_maddubs_epi16(q, y));
            }
        }
        let lanes = _mm256_sub_epi32(
            _mm256_madd_epi16(sum16, _mm256_set1_epi16(1)),
            bsum_lanes(a),
        );
        acc = fma_lanes(acc, lanes, a.d() * h16(w.d));
    }
    hsum(acc)
}

/// The base-3 digit in the top of each byte (scaled so that `(q·3) >> 8` is the digit): llama.cpp's
/// halving-add trick, `((q − 1) avg ((q − 1) avg 0)) >> 6`, equal to `(q·3) >> 8` for every byte.
#[inline]
#[target_feature(enable = "avx2,f16c")]
fn tq_digit(q: __m256i) -> __m256i {
    let q = _mm256_subs_epu8(q, _mm256_set1_epi8(1));
    let q = _mm256_avg_epu8(q, _mm256_avg_epu8(q, _mm256_setzero_si256()));
    _mm256_and_si256(_mm256_srli_epi16::<6>(q), _mm256_set1_epi8(3))
}

/// q·9 for every byte (wrapping), from q: `((q << 3) & !7) + q`.
#[inline]
#[target_feature(enable = "avx2,f16c")]
fn times9(q: __m256i) -> __m256i {
    _mm256_add_epi8(
        _mm256_and_si256(_mm256_slli_epi16::<3>(q), _mm256_set1_epi8(-8)),
        q,
    )
}

#[inline]
#[target_feature(enable = "avx2,f16c")]
fn times9_128(q: __m128i) -> __m128i {
    _mm_add_epi8(_mm_and_si128(_mm_slli_epi16::<3>(q), _mm_set1_epi8(-8)), q)
}

#[target_feature(enable = "avx2,fma,f16c")]
fn dot_tq1_0(w: &[u8], a: &[u8]) -> f32 {
    let (w, a): (&[BlockTQ1_0], &[BlockQ8K]) = (c(w), c(a));
    let mut acc = _mm256_setzero_ps();
    for (w, a) in w.iter().zip(a) {
        let mut sum16 = _mm256_setzero_si256();
        let mut add = |q: __m256i, at: usize| {
            let p = _mm256_maddubs_epi16(tq_digit(q), load_i8(&a.qs[at..]));
            sum16 = _mm256_add_epi16(sum16, p);
        };
        // the first 32 bytes hold 5 digits each: elements 32n + m
        let q0 = load_u8(&w.qs[..32]);
        let q1 = _mm256_add_epi8(q0, _mm256_add_epi8(q0, q0));
        let (q2, q3) = (times9(q0), times9(q1));
        for (n, q) in [q0, q1, q2, q3, times9(q2)].into_iter().enumerate() {
            add(q, 32 * n);
        }
        // the next 16 bytes (elements 160 + 16n + m) and the 4 bytes of qh with 4 digits each (240 + 4n + j)
        let h0 = load16(&w.qs[32..]);
        let h1 = _mm_add_epi8(h0, _mm_add_epi8(h0, h0));
        let (h2, h3) = (times9_128(h0), times9_128(h1));
        let h4 = times9_128(h2);
        let h5 = _mm256_mullo_epi16(
            _mm256_cvtepu8_epi16(_mm_set1_epi32(u32::from_le_bytes(w.qh) as i32)),
            _mm256_set_epi16(27, 27, 27, 27, 9, 9, 9, 9, 3, 3, 3, 3, 1, 1, 1, 1),
        );
        let h5 = _mm256_and_si256(h5, _mm256_set1_epi16(0xff));
        let h5 = _mm_packus_epi16(
            _mm256_castsi256_si128(h5),
            _mm256_extracti128_si256::<1>(h5),
        );
        add(_mm256_set_m128i(h1, h0), 160);
        add(_mm256_set_m128i(h3, h2), 192);
        add(_mm256_set_m128i(h5, h4), 224);
        let lanes = _mm256_sub_epi32(
            _mm256_madd_epi16(sum16, _mm256_set1_epi16(1)),
            bsum_lanes(a),
        );
        acc = fma_lanes(acc, lanes, a.d() * h16(w.d));
    }
    hsum(acc)
}

/// The AVX2 row kernel of a read-only format. Callers hand these out only on a CPU with AVX2 and FMA
/// (`x86::rows_kernel` checks).
pub(super) fn rows_kernel(ty: GgmlType) -> Option<RowsFn> {
    macro_rules! rows {
        ($f:ident) => {
            Some(|w: &[u8], rb: usize, a: &[u8], out: &mut [f32]| {
                for (o, wr) in out.iter_mut().zip(w.chunks_exact(rb)) {
                    // SAFETY: this table is only reached on a CPU with AVX2 and FMA (see above).
                    *o = unsafe { $f(wr, a) };
                }
            })
        };
    }
    use GgmlType::*;
    match ty {
        IQ4_NL => rows!(dot_iq4_nl),
        MXFP4 => rows!(dot_mxfp4),
        IQ4_XS => rows!(dot_iq4_xs),
        IQ2_XXS => rows!(dot_iq2_xxs),
        IQ2_XS => rows!(dot_iq2_xs),
        IQ2_S => rows!(dot_iq2_s),
        IQ3_XXS => rows!(dot_iq3_xxs),
        IQ3_S => rows!(dot_iq3_s),
        IQ1_S => rows!(dot_iq1_s),
        IQ1_M => rows!(dot_iq1_m),
        TQ1_0 => rows!(dot_tq1_0),
        TQ2_0 => rows!(dot_tq2_0),
        _ => None,
    }
}
