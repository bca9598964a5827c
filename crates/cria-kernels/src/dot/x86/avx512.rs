//! AVX-512 kernels: the 256-bit kernels with AVX-512 VNNI's `vpdpbusd` (EVEX, 32 vector registers). On Zen 4
//! 512-bit ops are split in two 256-bit halves, so VNNI, not width, is the gain.

use std::arch::x86_64::*;

#[inline]
#[target_feature(enable = "avx512f,avx512vl,avx512vnni")]
fn dot_vnni(acc: __m256i, u: __m256i, s: __m256i) -> __m256i {
    _mm256_dpbusd_epi32(acc, u, s)
}

pub(super) mod vnni {
    super::super::kernels::x86_kernels!(
        "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni",
        super::dot_vnni
    );
    super::super::tiled::x86_tiled!(
        "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni",
        super::dot_vnni,
        true
    );
}
