//! AVX-512 (F/BW/VL) dot products of IQ4_NL, MXFP4 and IQ4_XS: two blocks (IQ4_NL, MXFP4) or two 32-element
//! sub-blocks (IQ4_XS) per 512-bit register, the low half in the role of the AVX2 kernel's first accumulator
//! and the high half in the second's, so every integer lane and every float step is the 256-bit kernel's and
//! the bits are the scalar reference's (llama.cpp's AVX2 order; tested in `tests/iq_kernels.rs`).

use crate::GgmlType;
use crate::dot::RowsFn;
use crate::quant::blocks::{BlockQ8_0, BlockQ8K};
use crate::quant::iq_blocks::*;
use bytemuck::cast_slice as c;
use std::arch::x86_64::*;

#[inline]
#[target_feature(enable = "avx2,fma,avx512f,avx512bw,avx512vl,f16c")]
fn load32(x: &[u8]) -> __m256i {
    let x = &x[..32];
    // SAFETY: x holds 32 bytes (sliced just above).
    unsafe { _mm256_loadu_si256(x.as_ptr().cast()) }
}

#[inline]
#[target_feature(enable = "avx2,fma,avx512f,avx512bw,avx512vl,f16c")]
fn load16(x: &[u8]) -> __m128i {
    let x = &x[..16];
    // SAFETY: x holds 16 bytes (sliced just above).
    unsafe { _mm_loadu_si128(x.as_ptr().cast()) }
}

#[inline]
#[target_feature(enable = "avx2,fma,avx512f,avx512bw,avx512vl,f16c")]
fn i8s(x: &[i8]) -> &[u8] {
    bytemuck::cast_slice(x)
}

/// Two 256-bit halves as one register (`lo` in lanes 0..8).
#[inline]
#[target_feature(enable = "avx2,fma,avx512f,avx512bw,avx512vl,f16c")]
fn join(lo: __m256i, hi: __m256i) -> __m512i {
    _mm512_inserti64x4::<1>(_mm512_castsi256_si512(lo), hi)
}

/// The codebook values of two 16-byte nibble groups: [low nibbles of a, high of a, low of b, high of b].
#[inline]
#[target_feature(enable = "avx2,fma,avx512f,avx512bw,avx512vl,f16c")]
fn codebook64(book: __m512i, a: &[u8], b: &[u8]) -> __m512i {
    let (a, b) = (load16(a), load16(b));
    let aa = _mm256_set_m128i(a, a);
    let bb = _mm256_set_m128i(b, b);
    let v = join(aa, bb);
    // lanes 1 and 3 (128-bit) take the high nibbles
    let nib = _mm512_mask_blend_epi64(0b1100_1100, v, _mm512_srli_epi16::<4>(v));
    _mm512_shuffle_epi8(book, _mm512_and_si512(nib, _mm512_set1_epi8(0xf)))
}

/// Pairs of signed × signed byte products as i16, as the AVX2 kernels' `mul_add_epi8` (|x| ≤ 127).
#[inline]
#[target_feature(enable = "avx2,fma,avx512f,avx512bw,avx512vl,f16c")]
fn mul_add_epi8(x: __m512i, y: __m512i) -> __m512i {
    let neg = _mm512_movepi8_mask(x);
    let sy = _mm512_mask_sub_epi8(y, neg, _mm512_setzero_si512(), y);
    _mm512_maddubs_epi16(_mm512_abs_epi8(x), sy)
}

#[inline]
#[target_feature(enable = "avx2,fma,avx512f,avx512bw,avx512vl,f16c")]
fn lo(v: __m512) -> __m256 {
    _mm512_castps512_ps256(v)
}

#[inline]
#[target_feature(enable = "avx2,fma,avx512f,avx512bw,avx512vl,f16c")]
fn hi(v: __m512) -> __m256 {
    _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(v)))
}

/// llama.cpp's `hsum_float_8`.
#[inline]
#[target_feature(enable = "avx2,fma,avx512f,avx512bw,avx512vl,f16c")]
fn hsum(v: __m256) -> f32 {
    let x = _mm_add_ps(_mm256_extractf128_ps::<1>(v), _mm256_castps256_ps128(v));
    let x = _mm_add_ps(x, _mm_movehl_ps(x, x));
    _mm_cvtss_f32(_mm_add_ss(x, _mm_movehdup_ps(x)))
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

/// The 32-element codebook formats against Q8_0.
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

#[inline]
#[target_feature(enable = "avx2,fma,avx512f,avx512bw,avx512vl,f16c")]
fn codebook_q8_0<B: Codebook>(w: &[B], a: &[BlockQ8_0]) -> f32 {
    let book = _mm512_broadcast_i32x4(load16(bytemuck::cast_slice(&B::BOOK)));
    let mut acc = _mm512_setzero_ps();
    for (w, a) in w.chunks_exact(2).zip(a.chunks_exact(2)) {
        let q = codebook64(book, w[0].qs(), w[1].qs());
        let y = join(load32(i8s(&a[0].qs)), load32(i8s(&a[1].qs)));
        let lanes = _mm512_madd_epi16(mul_add_epi8(q, y), _mm512_set1_epi16(1));
        let s0 = _mm256_set1_ps(h16(a[0].d) * scale_of(&w[0]));
        let s1 = _mm256_set1_ps(h16(a[1].d) * scale_of(&w[1]));
        let scale = _mm512_insertf64x4::<1>(
            _mm512_castpd256_pd512(_mm256_castps_pd(s0)),
            _mm256_castps_pd(s1),
        );
        acc = _mm512_fmadd_ps(_mm512_castpd_ps(scale), _mm512_cvtepi32_ps(lanes), acc);
    }
    let mut sum = hsum(_mm256_add_ps(lo(acc), hi(acc)));
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

#[target_feature(enable = "avx2,fma,avx512f,avx512bw,avx512vl,f16c")]
fn dot_iq4_nl(w: &[u8], a: &[u8]) -> f32 {
    codebook_q8_0::<BlockIQ4NL>(c(w), c(a))
}

#[target_feature(enable = "avx2,fma,avx512f,avx512bw,avx512vl,f16c")]
fn dot_mxfp4(w: &[u8], a: &[u8]) -> f32 {
    codebook_q8_0::<BlockMXFP4>(c(w), c(a))
}

#[target_feature(enable = "avx2,fma,avx512f,avx512bw,avx512vl,f16c")]
fn dot_iq4_xs(w: &[u8], a: &[u8]) -> f32 {
    let (w, a): (&[BlockIQ4XS], &[BlockQ8K]) = (c(w), c(a));
    let book = _mm512_broadcast_i32x4(load16(bytemuck::cast_slice(&KVALUES_IQ4NL)));
    let mut acc = _mm256_setzero_ps();
    for (w, a) in w.iter().zip(a) {
        let mut sh = u16::from_le_bytes(w.scales_h) as i32;
        let mut sumi = _mm512_setzero_si512();
        for ib in (0..8).step_by(2) {
            let sl = w.scales_l[ib / 2] as i32;
            let ls1 = ((sl & 0xf) | ((sh << 4) & 0x30)) - 32;
            let ls2 = ((sl >> 4) | ((sh << 2) & 0x30)) - 32;
            sh >>= 4;
            let q = codebook64(book, &w.qs[16 * ib..], &w.qs[16 * ib + 16..]);
            let y = join(
                load32(i8s(&a.qs[32 * ib..])),
                load32(i8s(&a.qs[32 * ib + 32..])),
            );
            let scale = join(_mm256_set1_epi16(ls1 as i16), _mm256_set1_epi16(ls2 as i16));
            sumi = _mm512_add_epi32(sumi, _mm512_madd_epi16(mul_add_epi8(q, y), scale));
        }
        // sumi1 + sumi2 of the 256-bit kernel
        let lanes = _mm256_add_epi32(
            _mm512_castsi512_si256(sumi),
            _mm512_extracti64x4_epi64::<1>(sumi),
        );
        let d = _mm256_set1_ps(h16(w.d) * a.d());
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(lanes), acc);
    }
    hsum(acc)
}

/// The AVX-512 row kernel of a read-only format, where there is one. Callers hand these out only on a CPU
/// with AVX-512 F/BW/VL (`x86::rows_kernel` checks).
pub(super) fn rows_kernel(ty: GgmlType) -> Option<RowsFn> {
    macro_rules! rows {
        ($f:ident) => {
            Some(|w: &[u8], rb: usize, a: &[u8], out: &mut [f32]| {
                for (o, wr) in out.iter_mut().zip(w.chunks_exact(rb)) {
                    // SAFETY: this table is only reached on a CPU with AVX-512 F/BW/VL (see above).
                    *o = unsafe { $f(wr, a) };
                }
            })
        };
    }
    match ty {
        GgmlType::IQ4_NL => rows!(dot_iq4_nl),
        GgmlType::MXFP4 => rows!(dot_mxfp4),
        GgmlType::IQ4_XS => rows!(dot_iq4_xs),
        _ => None,
    }
}
