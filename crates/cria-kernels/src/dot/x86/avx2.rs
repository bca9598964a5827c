//! AVX2 kernels: plain (u8×i8 through `maddubs` + `madd`) and with AVX-VNNI (`vpdpbusd` on 256 bits).

use std::arch::x86_64::*;

/// Plain AVX2: Σ u8×i8 by pairs into i16 (no saturation for the operands used here: |u| ≤ 128, |s| ≤ 127),
/// then by fours into i32.
#[inline]
#[target_feature(enable = "avx2")]
fn dot_maddubs(acc: __m256i, u: __m256i, s: __m256i) -> __m256i {
    _mm256_add_epi32(
        acc,
        _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)),
    )
}

#[inline]
#[target_feature(enable = "avx2,avxvnni")]
fn dot_avxvnni(acc: __m256i, u: __m256i, s: __m256i) -> __m256i {
    _mm256_dpbusd_avx_epi32(acc, u, s)
}

pub(super) mod plain {
    super::super::kernels::x86_kernels!("avx2,fma,f16c", super::dot_maddubs);
    super::super::tiled::x86_tiled!("avx2,fma,f16c", super::dot_maddubs, false);
    super::super::ymm_batch::x86_batch!("avx2,fma,f16c", super::dot_maddubs, false);
}

pub(super) mod vnni {
    super::super::kernels::x86_kernels!("avx2,fma,f16c,avxvnni", super::dot_avxvnni);
    super::super::tiled::x86_tiled!("avx2,fma,f16c,avxvnni", super::dot_avxvnni, true);
    super::super::ymm_batch::x86_batch!("avx2,fma,f16c,avxvnni", super::dot_avxvnni, true);
}

/// # Safety
/// The CPU must support AVX2; `x` must hold at least 32 floats.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn q8_block(x: &[f32]) -> (f32, [i8; 32], i32) {
    let p = x.as_ptr();
    let sign = _mm256_set1_ps(-0.0);
    // SAFETY: p..p+32 lies in x (caller's contract).
    let v: [__m256; 4] = std::array::from_fn(|i| unsafe { _mm256_loadu_ps(p.add(8 * i)) });
    let mut m = _mm256_andnot_ps(sign, v[0]);
    for vi in &v[1..] {
        m = _mm256_max_ps(m, _mm256_andnot_ps(sign, *vi));
    }
    let m4 = _mm_max_ps(_mm256_extractf128_ps::<1>(m), _mm256_castps256_ps128(m));
    let m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    let m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    let amax = _mm_cvtss_f32(m4);
    let d = amax / 127.0;
    let id = _mm256_set1_ps(if amax != 0.0 { 127.0 / amax } else { 0.0 });
    let q: [__m256i; 4] = std::array::from_fn(|i| {
        let r = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
            _mm256_mul_ps(v[i], id),
        );
        _mm256_cvtps_epi32(r)
    });
    let sum = _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
    let mut lanes = [0i32; 8];
    // SAFETY: lanes is 32 bytes.
    unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast(), sum) };
    let packed = _mm256_packs_epi16(
        _mm256_packs_epi32(q[0], q[1]),
        _mm256_packs_epi32(q[2], q[3]),
    );
    // packs interleave 128-bit lanes: restore element order.
    let packed = _mm256_permutevar8x32_epi32(packed, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    let mut qs = [0i8; 32];
    // SAFETY: qs is 32 bytes.
    unsafe { _mm256_storeu_si256(qs.as_mut_ptr().cast(), packed) };
    (d, qs, lanes.iter().sum())
}

/// One Q8_K block with the reference's numerics (scale −127/max, max the signed value of largest magnitude,
/// first one on ties; round half to even; clamp to 127): (d, quants, sums of each 16).
///
/// # Safety
/// The CPU must support AVX2; `x` must hold at least 256 floats.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn q8k_block(x: &[f32]) -> (f32, [i8; 256], [i16; 16]) {
    let x = &x[..256];
    let sign = _mm256_set1_ps(-0.0);
    // SAFETY: x holds 256 floats.
    let v: [__m256; 32] =
        std::array::from_fn(|i| unsafe { _mm256_loadu_ps(x.as_ptr().add(8 * i)) });
    let mut m = _mm256_setzero_ps();
    for vi in &v {
        m = _mm256_max_ps(m, _mm256_andnot_ps(sign, *vi));
    }
    let m4 = _mm_max_ps(_mm256_extractf128_ps::<1>(m), _mm256_castps256_ps128(m));
    let m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    let amax = _mm_cvtss_f32(_mm_max_ss(m4, _mm_movehdup_ps(m4)));
    if amax == 0.0 {
        return (0.0, [0; 256], [0; 16]);
    }
    let max = x.iter().copied().find(|v| v.abs() == amax).unwrap_or(amax);
    let iscale = -127.0 / max;
    let (s, cap) = (_mm256_set1_ps(iscale), _mm256_set1_epi32(127));
    let q: [__m256i; 32] = std::array::from_fn(|i| {
        let r = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
            _mm256_mul_ps(v[i], s),
        );
        _mm256_min_epi32(_mm256_cvtps_epi32(r), cap)
    });
    let mut qs = [0i8; 256];
    let mut bsums = [0i16; 16];
    for j in 0..8 {
        let p = _mm256_packs_epi16(
            _mm256_packs_epi32(q[4 * j], q[4 * j + 1]),
            _mm256_packs_epi32(q[4 * j + 2], q[4 * j + 3]),
        );
        let p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        // SAFETY: qs[32j..32j+32] is 32 writable bytes.
        unsafe { _mm256_storeu_si256(qs.as_mut_ptr().add(32 * j).cast(), p) };
        for h in 0..2 {
            let s = _mm256_add_epi32(q[4 * j + 2 * h], q[4 * j + 2 * h + 1]);
            let s4 = _mm_add_epi32(_mm256_extracti128_si256::<1>(s), _mm256_castsi256_si128(s));
            let s2 = _mm_add_epi32(s4, _mm_unpackhi_epi64(s4, s4));
            let s1 = _mm_add_epi32(s2, _mm_shuffle_epi32::<1>(s2));
            bsums[2 * j + h] = _mm_cvtsi128_si32(s1) as i16;
        }
    }
    (1.0 / iscale, qs, bsums)
}
