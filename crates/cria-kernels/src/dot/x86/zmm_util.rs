//! Helpers shared by the AVX-512 kernels (`gemm512`, `zmm_matvec`, `zmm_kmatvec`), each with the
//! exact operations of the 256-bit kernels' own helpers so that results keep their bits.

use std::arch::x86_64::*;

/// Two little-endian f16 as f32.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(super) fn h2(a: [u8; 2], b: [u8; 2]) -> (f32, f32) {
    let v = u32::from_le_bytes([a[0], a[1], b[0], b[1]]);
    let f = _mm_cvtph_ps(_mm_cvtsi32_si128(v as i32));
    (_mm_cvtss_f32(f), _mm_cvtss_f32(_mm_movehdup_ps(f)))
}

/// One little-endian f16 as f32.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(super) fn h1(a: [u8; 2]) -> f32 {
    h2(a, [0, 0]).0
}

/// The horizontal sum in the order of the 256-bit kernels' `hsum`: 128-bit halves, pairs, last two.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(super) fn hsum(v: __m256) -> f32 {
    let x = _mm_add_ps(_mm256_extractf128_ps::<1>(v), _mm256_castps256_ps128(v));
    let x = _mm_add_ps(x, _mm_movehl_ps(x, x));
    _mm_cvtss_f32(_mm_add_ss(x, _mm_movehdup_ps(x)))
}

/// `acc + Σ` of the pairs of i16 products of `a` and `b` in each i32 lane (`vpdpwssd`), as inline asm:
/// LLVM splits the intrinsic into `vpmaddwd` + `vpaddd`, two µops instead of one.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(super) fn dpwssd(acc: __m512i, a: __m512i, b: __m512i) -> __m512i {
    let mut acc = acc;
    // SAFETY: vpdpwssd only reads a and b and updates acc, all registers; callers run with AVX-512 VNNI.
    unsafe {
        std::arch::asm!(
            "vpdpwssd {0}, {1}, {2}",
            inout(zmm_reg) acc,
            in(zmm_reg) a,
            in(zmm_reg) b,
            options(pure, nomem, nostack)
        )
    };
    acc
}
