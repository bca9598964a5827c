//! The x86 dot-product kernels, written once over 256-bit vectors and instantiated per feature set by
//! `x86_kernels!` (plain AVX2 with `maddubs`, AVX-VNNI, AVX-512 VNNI): on Zen 4 a 512-bit op costs two 256-bit
//! ones, so the gain of the AVX-512 path is VNNI's fused u8×i8 sums, not the width.
//!
//! Every block of weights is multiplied against its activation block in integers; the float scale is applied
//! once per block (once per 16/32 elements for K-quants' sub-scales, in integers too).

/// Expands to the kernels with target features `$features`; `$dot` names an
/// `fn(acc: __m256i, u: __m256i, s: __m256i) -> __m256i` (with a subset of `$features`) adding Σ u8×i8 of each 4 bytes to `acc`'s
/// 8 lanes (the products of 4 neighbours, VNNI's `dpbusd`).
macro_rules! x86_kernels {
    ($features:literal, $dot:path) => {
        use crate::GgmlType;
        use crate::dot::RowsFn;
        use crate::quant::blocks::*;
        use bytemuck::{Pod, cast_slice as cs};
        use std::arch::x86_64::*;

        /// 32 bytes from the start of `p` (panics if shorter).
        #[inline]
        #[target_feature(enable = $features)]
        fn ld<T: Pod>(p: &[T]) -> __m256i {
            let b: &[u8] = &cs(p)[..32];
            // SAFETY: b is exactly 32 readable bytes; loadu has no alignment requirement.
            unsafe { _mm256_loadu_si256(b.as_ptr().cast()) }
        }

        /// 16 bytes as 32 nibbles: low nibbles (elements 0..16) then high nibbles (16..32).
        #[inline]
        #[target_feature(enable = $features)]
        fn nib32(qs: &[u8; 16]) -> __m256i {
            // SAFETY: qs is 16 readable bytes.
            let x = unsafe { _mm_loadu_si128(qs.as_ptr().cast()) };
            let both = _mm256_set_m128i(_mm_srli_epi16::<4>(x), x);
            _mm256_and_si256(both, _mm256_set1_epi8(0xF))
        }

        /// Two little-endian f16 as f32.
        #[inline]
        #[target_feature(enable = $features)]
        fn h2(a: [u8; 2], b: [u8; 2]) -> (f32, f32) {
            let v = u32::from_le_bytes([a[0], a[1], b[0], b[1]]);
            let f = _mm_cvtph_ps(_mm_cvtsi32_si128(v as i32));
            (_mm_cvtss_f32(f), _mm_cvtss_f32(_mm_movehdup_ps(f)))
        }

        #[inline]
        #[target_feature(enable = $features)]
        fn h1(a: [u8; 2]) -> f32 {
            h2(a, [0, 0]).0
        }

        #[inline]
        #[target_feature(enable = $features)]
        fn hsum(v: __m256) -> f32 {
            let x = _mm_add_ps(_mm256_extractf128_ps::<1>(v), _mm256_castps256_ps128(v));
            let x = _mm_add_ps(x, _mm_movehl_ps(x, x));
            _mm_cvtss_f32(_mm_add_ss(x, _mm_movehdup_ps(x)))
        }

        /// Σ u8×i8 in 8 lanes of 4 neighbours.
        #[inline]
        #[target_feature(enable = $features)]
        fn dot_us(u: __m256i, s: __m256i) -> __m256i {
            $dot(_mm256_setzero_si256(), u, s)
        }

        /// Σ i8×i8 in 8 lanes, through |x| · sign(y, x).
        #[inline]
        #[target_feature(enable = $features)]
        fn dot_ss(x: __m256i, y: __m256i) -> __m256i {
            dot_us(_mm256_abs_epi8(x), _mm256_sign_epi8(y, x))
        }

        /// Sums the blocks in order into one 8-lane accumulator, then `hsum` plus the scalar terms: the order of
        /// llama.cpp's x86 `ggml_vec_dot_*`, and of the tiled kernels. It must stay that order. Each layer's
        /// output is quantized again to 8 bits, so a last-bit difference in one dot product can flip a
        /// rounding there and grow through the layers: two interleaved accumulators (a faster order) put
        /// smollm2's first-position logits 0.06 away from llama.cpp's, against 5e-7 in this order (issue #4).
        macro_rules! drive {
            ($w:expr, $a:expr, $blk:ident) => {{
                let (w, a) = ($w, $a);
                let mut acc = _mm256_setzero_ps();
                let mut s = 0f32;
                for (wb, ab) in w.iter().zip(a.iter()) {
                    let (v, s0) = $blk(wb, ab, acc);
                    (acc, s) = (v, s + s0);
                }
                hsum(acc) + s
            }};
        }

        #[inline]
        #[target_feature(enable = $features)]
        fn blk_q4_0(w: &BlockQ4_0, a: &BlockQ8_0, acc: __m256) -> (__m256, f32) {
            let (dw, da) = h2(w.d, a.d);
            let q = _mm256_sub_epi8(nib32(&w.qs), _mm256_set1_epi8(8));
            let p = _mm256_cvtepi32_ps(dot_ss(q, ld(&a.qs)));
            (_mm256_fmadd_ps(p, _mm256_set1_ps(dw * da), acc), 0.0)
        }

        #[inline]
        #[target_feature(enable = $features)]
        fn blk_q4_1(w: &BlockQ4_1, a: &BlockQ8_1, acc: __m256) -> (__m256, f32) {
            let (dw, mw) = h2(w.d, w.m);
            let (da, sa) = h2(a.d, a.s);
            let p = _mm256_cvtepi32_ps(dot_us(nib32(&w.qs), ld(&a.qs)));
            (_mm256_fmadd_ps(p, _mm256_set1_ps(dw * da), acc), mw * sa)
        }

        /// 0xFF in byte j where bit j of `x` is set.
        #[inline]
        #[target_feature(enable = $features)]
        fn bits32(x: u32) -> __m256i {
            let shuf = _mm256_setr_epi64x(
                0,
                0x0101010101010101,
                0x0202020202020202,
                0x0303030303030303,
            );
            let bytes = _mm256_shuffle_epi8(_mm256_set1_epi32(x as i32), shuf);
            let bytes = _mm256_or_si256(bytes, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe));
            _mm256_cmpeq_epi8(bytes, _mm256_set1_epi64x(-1))
        }

        #[inline]
        #[target_feature(enable = $features)]
        fn q5(qs: &[u8; 16], qh: [u8; 4]) -> __m256i {
            let hi = _mm256_and_si256(bits32(u32::from_le_bytes(qh)), _mm256_set1_epi8(0x10));
            _mm256_or_si256(nib32(qs), hi)
        }

        #[inline]
        #[target_feature(enable = $features)]
        fn blk_q5_0(w: &BlockQ5_0, a: &BlockQ8_0, acc: __m256) -> (__m256, f32) {
            let (dw, da) = h2(w.d, a.d);
            let q = _mm256_sub_epi8(q5(&w.qs, w.qh), _mm256_set1_epi8(16));
            let p = _mm256_cvtepi32_ps(dot_ss(q, ld(&a.qs)));
            (_mm256_fmadd_ps(p, _mm256_set1_ps(dw * da), acc), 0.0)
        }

        #[inline]
        #[target_feature(enable = $features)]
        fn blk_q5_1(w: &BlockQ5_1, a: &BlockQ8_1, acc: __m256) -> (__m256, f32) {
            let (dw, mw) = h2(w.d, w.m);
            let (da, sa) = h2(a.d, a.s);
            let p = _mm256_cvtepi32_ps(dot_us(q5(&w.qs, w.qh), ld(&a.qs)));
            (_mm256_fmadd_ps(p, _mm256_set1_ps(dw * da), acc), mw * sa)
        }

        #[inline]
        #[target_feature(enable = $features)]
        fn blk_q8_0(w: &BlockQ8_0, a: &BlockQ8_0, acc: __m256) -> (__m256, f32) {
            let (dw, da) = h2(w.d, a.d);
            let p = _mm256_cvtepi32_ps(dot_ss(ld(&w.qs), ld(&a.qs)));
            (_mm256_fmadd_ps(p, _mm256_set1_ps(dw * da), acc), 0.0)
        }

        #[inline]
        #[target_feature(enable = $features)]
        fn blk_q8_1(w: &BlockQ8_1, a: &BlockQ8_1, acc: __m256) -> (__m256, f32) {
            let (dw, da) = h2(w.d, a.d);
            let p = _mm256_cvtepi32_ps(dot_ss(ld(&w.qs), ld(&a.qs)));
            (_mm256_fmadd_ps(p, _mm256_set1_ps(dw * da), acc), 0.0)
        }

        #[inline]
        #[target_feature(enable = $features)]
        fn blk_q8_k(w: &BlockQ8K, a: &BlockQ8K, acc: __m256) -> (__m256, f32) {
            let mut sumi = _mm256_setzero_si256();
            for c in 0..8 {
                let r = 32 * c..32 * c + 32;
                sumi = _mm256_add_epi32(sumi, dot_ss(ld(&w.qs[r.clone()]), ld(&a.qs[r])));
            }
            let p = _mm256_cvtepi32_ps(sumi);
            (_mm256_fmadd_ps(p, _mm256_set1_ps(w.d() * a.d()), acc), 0.0)
        }

        /// Σ u8×i8 with the first 16 products scaled by `sa` and the last 16 by `sb`.
        #[inline]
        #[target_feature(enable = $features)]
        fn dot_us_scaled(u: __m256i, s: __m256i, sa: i32, sb: i32) -> __m256i {
            let sc = _mm256_set_m128i(_mm_set1_epi32(sb), _mm_set1_epi32(sa));
            _mm256_mullo_epi32(dot_us(u, s), sc)
        }

        #[inline]
        #[target_feature(enable = $features)]
        fn blk_q4_k(w: &BlockQ4K, a: &BlockQ8K, acc: __m256) -> (__m256, f32) {
            let (dw, dmin) = h2(w.d, w.dmin);
            let mask = _mm256_set1_epi8(0xF);
            let mut sumi = _mm256_setzero_si256();
            let mut summ = 0i32;
            for c in 0..4 {
                let (s1, m1) = scale_min_k4(2 * c, &w.scales);
                let (s2, m2) = scale_min_k4(2 * c + 1, &w.scales);
                let q = ld(&w.qs[32 * c..]);
                let lo = _mm256_and_si256(q, mask);
                let hi = _mm256_and_si256(_mm256_srli_epi16::<4>(q), mask);
                let p1 = dot_us_scaled(lo, ld(&a.qs[64 * c..]), s1 as i32, s1 as i32);
                let p2 = dot_us_scaled(hi, ld(&a.qs[64 * c + 32..]), s2 as i32, s2 as i32);
                sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(p1, p2));
                let bs = |j: usize| a.bsum(j) as i32;
                summ += m1 as i32 * (bs(4 * c) + bs(4 * c + 1))
                    + m2 as i32 * (bs(4 * c + 2) + bs(4 * c + 3));
            }
            let da = a.d();
            let p = _mm256_cvtepi32_ps(sumi);
            (
                _mm256_fmadd_ps(p, _mm256_set1_ps(da * dw), acc),
                -(da * dmin) * summ as f32,
            )
        }

        /// 0x10 in each byte of `v` that has bit `bit` set, else 0.
        #[inline]
        #[target_feature(enable = $features)]
        fn bit_to_16(v: __m256i, bit: i32) -> __m256i {
            let set = _mm256_and_si256(v, _mm256_set1_epi8(bit as i8));
            _mm256_andnot_si256(
                _mm256_cmpeq_epi8(set, _mm256_setzero_si256()),
                _mm256_set1_epi8(0x10),
            )
        }

        #[inline]
        #[target_feature(enable = $features)]
        fn blk_q5_k(w: &BlockQ5K, a: &BlockQ8K, acc: __m256) -> (__m256, f32) {
            let (dw, dmin) = h2(w.d, w.dmin);
            let mask = _mm256_set1_epi8(0xF);
            let qh = ld(&w.qh);
            let mut sumi = _mm256_setzero_si256();
            let mut summ = 0i32;
            for c in 0..4 {
                let (s1, m1) = scale_min_k4(2 * c, &w.scales);
                let (s2, m2) = scale_min_k4(2 * c + 1, &w.scales);
                let q = ld(&w.qs[32 * c..]);
                // bit 2c / 2c+1 of qh[l] is the 5th bit of element l of sub-block 2c / 2c+1.
                let h1 = bit_to_16(qh, 1 << (2 * c));
                let h2v = bit_to_16(qh, 2 << (2 * c));
                let lo = _mm256_or_si256(_mm256_and_si256(q, mask), h1);
                let hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16::<4>(q), mask), h2v);
                let p1 = dot_us_scaled(lo, ld(&a.qs[64 * c..]), s1 as i32, s1 as i32);
                let p2 = dot_us_scaled(hi, ld(&a.qs[64 * c + 32..]), s2 as i32, s2 as i32);
                sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(p1, p2));
                let bs = |j: usize| a.bsum(j) as i32;
                summ += m1 as i32 * (bs(4 * c) + bs(4 * c + 1))
                    + m2 as i32 * (bs(4 * c + 2) + bs(4 * c + 3));
            }
            let da = a.d();
            let p = _mm256_cvtepi32_ps(sumi);
            (
                _mm256_fmadd_ps(p, _mm256_set1_ps(da * dw), acc),
                -(da * dmin) * summ as f32,
            )
        }

        /// Q6_K's 16 sub-block scales as 16-bit words, the even ones in the low 128 bits and the odd ones in the
        /// high: [`q6_scale_pair`] then takes `sc[2m]` and `sc[2m + 1]` with one in-lane shuffle.
        #[inline]
        #[target_feature(enable = $features)]
        fn q6_scale_words(scales: __m128i) -> __m256i {
            let deint = _mm_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
            _mm256_cvtepi8_epi16(_mm_shuffle_epi8(scales, deint))
        }

        /// `sc[2m]` (low 128 bits) and `sc[2m + 1]` (high) as 16-bit words, from [`q6_scale_words`].
        #[inline]
        #[target_feature(enable = $features)]
        fn q6_scale_pair(words: __m256i, m: usize) -> __m256i {
            // word m of each 128-bit lane in all 8 words of that lane
            let b = 2 * m as u8;
            _mm256_shuffle_epi8(words, _mm256_set1_epi16(i16::from_le_bytes([b, b + 1])))
        }

        /// Σ of the 8 i32 lanes (exact, wrapping as the scalar sum would overflow: it cannot here).
        #[inline]
        #[target_feature(enable = $features)]
        fn hsum_i32(v: __m256i) -> i32 {
            let x = _mm_add_epi32(_mm256_extracti128_si256::<1>(v), _mm256_castsi256_si128(v));
            let x = _mm_add_epi32(x, _mm_unpackhi_epi64(x, x));
            _mm_cvtsi128_si32(_mm_add_epi32(x, _mm_shuffle_epi32::<1>(x)))
        }

        /// The integer sums are exact in any grouping, so they are formed with the fewest operations: each
        /// 32-bit lane is `madd(maddubs(q, a), scale words)` = sc·(4 products) (a `maddubs` pair is at most
        /// 2·63·128, no saturation), the lanes of `dot_us` times the scale; the correction Σ sc·bsum is one
        /// `madd` of the 16 bsums by the 16 scales and a horizontal sum. The floats are as before.
        #[inline]
        #[target_feature(enable = $features)]
        fn blk_q6_k(w: &BlockQ6K, a: &BlockQ8K, acc: __m256) -> (__m256, f32) {
            let (nib, top2) = (_mm256_set1_epi8(0xF), _mm256_set1_epi8(0x30));
            // SAFETY: the 16 scale bytes are readable.
            let scales = unsafe { _mm_loadu_si128(w.scales.as_ptr().cast()) };
            let words = q6_scale_words(scales);
            let mut sumi = _mm256_setzero_si256();
            for h in 0..2 {
                let ql = [ld(&w.ql[64 * h..]), ld(&w.ql[64 * h + 32..])];
                let qh = ld(&w.qh[32 * h..]);
                for k in 0..4 {
                    let low = if k < 2 {
                        ql[k]
                    } else {
                        _mm256_srli_epi16::<4>(ql[k - 2])
                    };
                    // bits 2k, 2k + 1 of each qh byte moved to bits 4, 5
                    let high = match k {
                        0 => _mm256_slli_epi16::<4>(qh),
                        1 => _mm256_slli_epi16::<2>(qh),
                        2 => qh,
                        _ => _mm256_srli_epi16::<2>(qh),
                    };
                    let q = _mm256_or_si256(
                        _mm256_and_si256(low, nib),
                        _mm256_and_si256(high, top2),
                    );
                    let av = ld(&a.qs[128 * h + 32 * k..]);
                    let sc = q6_scale_pair(words, 4 * h + k);
                    let p = _mm256_madd_epi16(_mm256_maddubs_epi16(q, av), sc);
                    sumi = _mm256_add_epi32(sumi, p);
                }
            }
            // Σ sc·(q − 32)·a = Σ sc·q·a − 32·Σ sc·bsum
            let corr = hsum_i32(_mm256_madd_epi16(
                ld(&a.bsums),
                _mm256_cvtepi8_epi16(scales),
            ));
            let d = a.d() * h1(w.d);
            let p = _mm256_cvtepi32_ps(sumi);
            (
                _mm256_fmadd_ps(p, _mm256_set1_ps(d), acc),
                -32.0 * d * corr as f32,
            )
        }

        #[inline]
        #[target_feature(enable = $features)]
        fn blk_q2_k(w: &BlockQ2K, a: &BlockQ8K, acc: __m256) -> (__m256, f32) {
            let three = _mm256_set1_epi8(3);
            let mut sumi = _mm256_setzero_si256();
            for n in 0..2 {
                let q = ld(&w.qs[32 * n..]);
                for j in 0..4 {
                    let u = _mm256_and_si256(_mm256_srl_epi16(q, _mm_cvtsi32_si128(2 * j as i32)), three);
                    let s = 8 * n + 2 * j;
                    let (sa, sb) = ((w.scales[s] & 0xF) as i32, (w.scales[s + 1] & 0xF) as i32);
                    let p = dot_us_scaled(u, ld(&a.qs[128 * n + 32 * j..]), sa, sb);
                    sumi = _mm256_add_epi32(sumi, p);
                }
            }
            let summ: i32 = (0..16).map(|j| (w.scales[j] >> 4) as i32 * a.bsum(j) as i32).sum();
            let (d, dmin) = h2(w.d, w.dmin);
            let da = a.d();
            let p = _mm256_cvtepi32_ps(sumi);
            (_mm256_fmadd_ps(p, _mm256_set1_ps(da * d), acc), -(da * dmin) * summ as f32)
        }

        #[inline]
        #[target_feature(enable = $features)]
        fn blk_q3_k(w: &BlockQ3K, a: &BlockQ8K, acc: __m256) -> (__m256, f32) {
            let three = _mm256_set1_epi8(3);
            let hm = ld(&w.hmask);
            let sc = q3k_scales(&w.scales);
            let mut sumi = _mm256_setzero_si256();
            for n in 0..2 {
                let q = ld(&w.qs[32 * n..]);
                for j in 0..4 {
                    let low = _mm256_and_si256(_mm256_srl_epi16(q, _mm_cvtsi32_si128(2 * j as i32)), three);
                    // u = low + 4 where the high bit is set: the value is u − 4
                    let set = _mm256_and_si256(hm, _mm256_set1_epi8((1u8 << (4 * n + j)) as i8));
                    let four = _mm256_andnot_si256(_mm256_cmpeq_epi8(set, _mm256_setzero_si256()), _mm256_set1_epi8(4));
                    let u = _mm256_or_si256(low, four);
                    let s = 8 * n + 2 * j;
                    let p = dot_us_scaled(u, ld(&a.qs[128 * n + 32 * j..]), sc[s] as i32, sc[s + 1] as i32);
                    sumi = _mm256_add_epi32(sumi, p);
                }
            }
            let corr: i32 = (0..16).map(|j| sc[j] as i32 * a.bsum(j) as i32).sum();
            let d = a.d() * h1(w.d);
            let p = _mm256_cvtepi32_ps(sumi);
            (_mm256_fmadd_ps(p, _mm256_set1_ps(d), acc), -4.0 * d * corr as f32)
        }

        #[target_feature(enable = $features)]
        fn dot_f32(w: &[u8], a: &[u8]) -> f32 {
            let n = w.len() / 4;
            let mut acc = [_mm256_setzero_ps(); 4];
            let mut i = 0;
            while i + 32 <= n {
                for (k, acc) in acc.iter_mut().enumerate() {
                    let (wb, ab) = (&w[4 * (i + 8 * k)..][..32], &a[4 * (i + 8 * k)..][..32]);
                    // SAFETY: wb and ab are 32 readable bytes each.
                    let (x, y) = unsafe {
                        (
                            _mm256_loadu_ps(wb.as_ptr().cast()),
                            _mm256_loadu_ps(ab.as_ptr().cast()),
                        )
                    };
                    *acc = _mm256_fmadd_ps(x, y, *acc);
                }
                i += 32;
            }
            let s = hsum(_mm256_add_ps(
                _mm256_add_ps(acc[0], acc[1]),
                _mm256_add_ps(acc[2], acc[3]),
            ));
            s + crate::dot::scalar::dot(GgmlType::F32, &w[4 * i..], &a[4 * i..])
        }

        /// F16 or BF16 weights (2 bytes each) against f32 activations.
        #[inline]
        #[target_feature(enable = $features)]
        fn dot_half(w: &[u8], a: &[u8], bf16: bool) -> f32 {
            let n = w.len() / 2;
            let mut acc = [_mm256_setzero_ps(); 4];
            let mut i = 0;
            while i + 32 <= n {
                for (k, acc) in acc.iter_mut().enumerate() {
                    let (wb, ab) = (&w[2 * (i + 8 * k)..][..16], &a[4 * (i + 8 * k)..][..32]);
                    // SAFETY: wb is 16 and ab 32 readable bytes.
                    let (h, y) = unsafe {
                        (
                            _mm_loadu_si128(wb.as_ptr().cast()),
                            _mm256_loadu_ps(ab.as_ptr().cast()),
                        )
                    };
                    let x = if bf16 {
                        _mm256_castsi256_ps(_mm256_slli_epi32::<16>(_mm256_cvtepu16_epi32(h)))
                    } else {
                        _mm256_cvtph_ps(h)
                    };
                    *acc = _mm256_fmadd_ps(x, y, *acc);
                }
                i += 32;
            }
            let s = hsum(_mm256_add_ps(
                _mm256_add_ps(acc[0], acc[1]),
                _mm256_add_ps(acc[2], acc[3]),
            ));
            let ty = if bf16 { GgmlType::BF16 } else { GgmlType::F16 };
            s + crate::dot::scalar::dot(ty, &w[2 * i..], &a[4 * i..])
        }

        #[target_feature(enable = $features)]
        fn dot_f16(w: &[u8], a: &[u8]) -> f32 {
            dot_half(w, a, false)
        }

        #[target_feature(enable = $features)]
        fn dot_bf16(w: &[u8], a: &[u8]) -> f32 {
            dot_half(w, a, true)
        }

        macro_rules! block_dot {
            ($name:ident, $blk:ident) => {
                #[target_feature(enable = $features)]
                fn $name(w: &[u8], a: &[u8]) -> f32 {
                    drive!(cs(w), cs(a), $blk)
                }
            };
        }
        block_dot!(dot_q4_0, blk_q4_0);
        block_dot!(dot_q4_1, blk_q4_1);
        block_dot!(dot_q5_0, blk_q5_0);
        block_dot!(dot_q5_1, blk_q5_1);
        block_dot!(dot_q8_0, blk_q8_0);
        block_dot!(dot_q8_1, blk_q8_1);
        block_dot!(dot_q4_k, blk_q4_k);
        block_dot!(dot_q5_k, blk_q5_k);
        block_dot!(dot_q6_k, blk_q6_k);
        block_dot!(dot_q8_k, blk_q8_k);
        block_dot!(dot_q2_k, blk_q2_k);
        block_dot!(dot_q3_k, blk_q3_k);

        /// A one-token row loop for Q4_K / Q6_K / Q8_0 that prefetches (to L2) the row [`PF_AHEAD`] bytes ahead, a
        /// block's lines per block step, rounded up to whole rows; the last rows prefetch past the end (a hint
        /// never faults), into the rows a task after this one reads. Same bits as the row kernel.
        macro_rules! rows_prefetched {
            ($blk:ident, $block:ty) => {
                rows_prefetched!($blk, $block, BlockQ8K)
            };
            ($blk:ident, $block:ty, $act:ty) => {
                Some(|w: &[u8], rb: usize, a: &[u8], out: &mut [f32]| {
                    #[target_feature(enable = $features)]
                    fn row(w: &[u8], a: &[u8], ahead: *const u8) -> f32 {
                        const SB: usize = size_of::<$block>();
                        let (w, a): (&[$block], &[$act]) = (cs(w), cs(a));
                        let mut acc = _mm256_setzero_ps();
                        let mut s = 0f32;
                        for (i, (wb, ab)) in w.iter().zip(a).enumerate() {
                            for l in 0..SB.div_ceil(64) {
                                // a hint: it reads nothing and never faults
                                _mm_prefetch::<_MM_HINT_T1>(ahead.wrapping_add(i * SB + 64 * l).cast());
                            }
                            let (v, s0) = $blk(wb, ab, acc);
                            (acc, s) = (v, s + s0);
                        }
                        hsum(acc) + s
                    }
                    let ahead = rb * crate::dot::x86::PF_AHEAD.div_ceil(rb.max(1));
                    for (r, (o, wr)) in out.iter_mut().zip(w.chunks_exact(rb)).enumerate() {
                        let pf = w.as_ptr().wrapping_add(r * rb + ahead);
                        // SAFETY: this table is only reached on a CPU with $features (see `rows_kernel`).
                        *o = unsafe { row(wr, a, pf) };
                    }
                })
            };
        }

        /// The one-token kernel for `ty` of this feature set beside `matvec_kernel`'s: Q4_K, Q6_K and Q8_0 rows
        /// with a software prefetch (the row kernel's bits). Handed out only for a CPU with `$features`.
        pub(in crate::dot::x86) fn kmatvec_kernel(ty: GgmlType) -> Option<RowsFn> {
            match ty {
                GgmlType::Q4_K => rows_prefetched!(blk_q4_k, BlockQ4K),
                GgmlType::Q6_K => rows_prefetched!(blk_q6_k, BlockQ6K),
                GgmlType::Q8_0 => rows_prefetched!(blk_q8_0, BlockQ8_0, BlockQ8_0),
                _ => None,
            }
        }

        /// The row kernel for `ty`, if this feature set has one. Callers hand these out only for a CPU with
        /// `$features` (checked in `x86::rows_kernel`).
        pub(in crate::dot::x86) fn rows_kernel(ty: GgmlType) -> Option<RowsFn> {
            macro_rules! rows {
                                ($f:ident) => {
                                    Some(|w: &[u8], rb: usize, a: &[u8], out: &mut [f32]| {
                                        for (o, wr) in out.iter_mut().zip(w.chunks_exact(rb)) {
                                            // SAFETY: this table is only reached on a CPU with $features (see above).
                                            *o = unsafe { $f(wr, a) };
                                        }
                                    })
                                };
                            }
            use GgmlType::*;
            match ty {
                F32 => rows!(dot_f32),
                F16 => rows!(dot_f16),
                BF16 => rows!(dot_bf16),
                Q4_0 => rows!(dot_q4_0),
                Q4_1 => rows!(dot_q4_1),
                Q5_0 => rows!(dot_q5_0),
                Q5_1 => rows!(dot_q5_1),
                Q8_0 => rows!(dot_q8_0),
                Q8_1 => rows!(dot_q8_1),
                Q4_K => rows!(dot_q4_k),
                Q5_K => rows!(dot_q5_k),
                Q6_K => rows!(dot_q6_k),
                Q8_K => rows!(dot_q8_k),
                Q2_K => rows!(dot_q2_k),
                Q3_K => rows!(dot_q3_k),
                // the IQ, ternary and MXFP4 formats: their own files (dot/x86/iq_*.rs, dot/aarch64/iq_neon.rs)
                _ => None,
            }
        }
    };
}

pub(super) use x86_kernels;
