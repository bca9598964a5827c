//! NEON dot products, written once and instantiated twice by `neon_kernels!`: with `smull` + `sadalp`
//! (any aarch64) and with `sdot` (the dotprod extension). Integer sums per block, float scale once per block.

use std::arch::aarch64::*;

/// Σ i8×i8 of each 4 neighbours added to `acc`, without dotprod.
#[inline]
#[target_feature(enable = "neon")]
fn dot_mull(acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t {
    let lo = vmull_s8(vget_low_s8(a), vget_low_s8(b));
    let hi = vmull_high_s8(a, b);
    vpadalq_s16(vpadalq_s16(acc, lo), hi)
}

/// `sdot` through inline assembly: the `vdotq_s32` intrinsic is not stable in Rust yet.
#[inline]
#[target_feature(enable = "neon,dotprod")]
fn dot_sdot(acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t {
    let mut acc = acc;
    // SAFETY: sdot only reads a and b and updates acc, all registers; callers run with dotprod enabled.
    unsafe {
        std::arch::asm!(
            "sdot {0:v}.4s, {1:v}.16b, {2:v}.16b",
            inout(vreg) acc,
            in(vreg) a,
            in(vreg) b,
            options(pure, nomem, nostack)
        )
    };
    acc
}

macro_rules! neon_kernels {
    ($features:literal, $dot:path) => {
        use super::*;
        use crate::GgmlType;
        use crate::dot::RowsFn;
        use crate::quant::blocks::*;
        use bytemuck::{Pod, cast_slice as cs};

        /// 16 bytes from the start of `p` as i8 (panics if shorter).
        #[inline]
        #[target_feature(enable = $features)]
        fn ld<T: Pod>(p: &[T]) -> int8x16_t {
            let b: &[u8] = &cs(p)[..16];
            // SAFETY: b is exactly 16 readable bytes; vld1q has no alignment requirement.
            unsafe { vld1q_s8(b.as_ptr().cast()) }
        }

        /// Σ a·b over 32 i8 pairs (two 16-lane halves).
        #[inline]
        #[target_feature(enable = $features)]
        fn dot32(a: [int8x16_t; 2], b: [int8x16_t; 2]) -> int32x4_t {
            $dot($dot(vdupq_n_s32(0), a[0], b[0]), a[1], b[1])
        }

        /// 32 nibbles: low nibbles (elements 0..16), high nibbles (16..32).
        #[inline]
        #[target_feature(enable = $features)]
        fn nib32(qs: &[u8; 16]) -> [int8x16_t; 2] {
            let x = vreinterpretq_u8_s8(ld(qs));
            let m = vdupq_n_u8(0xF);
            [
                vreinterpretq_s8_u8(vandq_u8(x, m)),
                vreinterpretq_s8_u8(vshrq_n_u8::<4>(x)),
            ]
        }

        /// 0x10 in byte j where bit j of `qh` is set.
        #[inline]
        #[target_feature(enable = $features)]
        fn bits32(qh: [u8; 4]) -> [int8x16_t; 2] {
            let bitv: [u8; 8] = [1, 2, 4, 8, 16, 32, 64, 128];
            // SAFETY: bitv is 8 readable bytes.
            let m = unsafe { vld1_u8(bitv.as_ptr()) };
            let t = |k: usize| vtst_u8(vdup_n_u8(qh[k]), m);
            let s = vdupq_n_u8(0x10);
            [
                vreinterpretq_s8_u8(vandq_u8(vcombine_u8(t(0), t(1)), s)),
                vreinterpretq_s8_u8(vandq_u8(vcombine_u8(t(2), t(3)), s)),
            ]
        }

        #[inline]
        #[target_feature(enable = $features)]
        fn q5(qs: &[u8; 16], qh: [u8; 4]) -> [int8x16_t; 2] {
            let (n, h) = (nib32(qs), bits32(qh));
            [vorrq_s8(n[0], h[0]), vorrq_s8(n[1], h[1])]
        }

        #[inline]
        #[target_feature(enable = $features)]
        fn sub(x: [int8x16_t; 2], v: i8) -> [int8x16_t; 2] {
            [vsubq_s8(x[0], vdupq_n_s8(v)), vsubq_s8(x[1], vdupq_n_s8(v))]
        }

        #[inline]
        #[target_feature(enable = $features)]
        fn q32<T: Pod>(p: &[T]) -> [int8x16_t; 2] {
            let b: &[u8] = cs(p);
            [ld(&b[..16]), ld(&b[16..32])]
        }

        /// Σ over blocks of (float vector, scalar) terms; two accumulators.
        macro_rules! drive {
            ($w:expr, $a:expr, |$wb:ident, $ab:ident| $body:expr) => {{
                let (w, a) = ($w, $a);
                let mut acc = [vdupq_n_f32(0.0); 2];
                let mut s = 0f32;
                for (i, ($wb, $ab)) in w.iter().zip(a.iter()).enumerate() {
                    let (p, scale, extra): (int32x4_t, f32, f32) = $body;
                    acc[i & 1] = vfmaq_n_f32(acc[i & 1], vcvtq_f32_s32(p), scale);
                    s += extra;
                }
                vaddvq_f32(vaddq_f32(acc[0], acc[1])) + s
            }};
        }

        #[target_feature(enable = $features)]
        fn dot_q4_0(w: &[u8], a: &[u8]) -> f32 {
            drive!(cs::<u8, BlockQ4_0>(w), cs::<u8, BlockQ8_0>(a), |w, a| {
                (dot32(sub(nib32(&w.qs), 8), q32(&a.qs)), w.d() * a.d(), 0.0)
            })
        }

        #[target_feature(enable = $features)]
        fn dot_q4_1(w: &[u8], a: &[u8]) -> f32 {
            drive!(cs::<u8, BlockQ4_1>(w), cs::<u8, BlockQ8_1>(a), |w, a| {
                (
                    dot32(nib32(&w.qs), q32(&a.qs)),
                    w.d() * a.d(),
                    w.m() * a.s(),
                )
            })
        }

        #[target_feature(enable = $features)]
        fn dot_q5_0(w: &[u8], a: &[u8]) -> f32 {
            drive!(cs::<u8, BlockQ5_0>(w), cs::<u8, BlockQ8_0>(a), |w, a| {
                (
                    dot32(sub(q5(&w.qs, w.qh), 16), q32(&a.qs)),
                    w.d() * a.d(),
                    0.0,
                )
            })
        }

        #[target_feature(enable = $features)]
        fn dot_q5_1(w: &[u8], a: &[u8]) -> f32 {
            drive!(cs::<u8, BlockQ5_1>(w), cs::<u8, BlockQ8_1>(a), |w, a| {
                (
                    dot32(q5(&w.qs, w.qh), q32(&a.qs)),
                    w.d() * a.d(),
                    w.m() * a.s(),
                )
            })
        }

        #[target_feature(enable = $features)]
        fn dot_q8_0(w: &[u8], a: &[u8]) -> f32 {
            drive!(cs::<u8, BlockQ8_0>(w), cs::<u8, BlockQ8_0>(a), |w, a| {
                (dot32(q32(&w.qs), q32(&a.qs)), w.d() * a.d(), 0.0)
            })
        }

        #[target_feature(enable = $features)]
        fn dot_q8_1(w: &[u8], a: &[u8]) -> f32 {
            drive!(cs::<u8, BlockQ8_1>(w), cs::<u8, BlockQ8_1>(a), |w, a| {
                (dot32(q32(&w.qs), q32(&a.qs)), w.d() * a.d(), 0.0)
            })
        }

        #[target_feature(enable = $features)]
        fn dot_q8_k(w: &[u8], a: &[u8]) -> f32 {
            drive!(cs::<u8, BlockQ8K>(w), cs::<u8, BlockQ8K>(a), |w, a| {
                let mut p = vdupq_n_s32(0);
                for c in 0..8 {
                    p = vaddq_s32(p, dot32(q32(&w.qs[32 * c..]), q32(&a.qs[32 * c..])));
                }
                (p, w.d() * a.d(), 0.0)
            })
        }

        #[target_feature(enable = $features)]
        fn dot_q4_k(w: &[u8], a: &[u8]) -> f32 {
            drive!(cs::<u8, BlockQ4K>(w), cs::<u8, BlockQ8K>(a), |w, a| {
                let (mut isum, mut msum) = (0i32, 0i32);
                let m4 = vdupq_n_u8(0xF);
                for c in 0..4 {
                    let q = [
                        vreinterpretq_u8_s8(ld(&w.qs[32 * c..])),
                        vreinterpretq_u8_s8(ld(&w.qs[32 * c + 16..])),
                    ];
                    let lo = [
                        vreinterpretq_s8_u8(vandq_u8(q[0], m4)),
                        vreinterpretq_s8_u8(vandq_u8(q[1], m4)),
                    ];
                    let hi = [
                        vreinterpretq_s8_u8(vshrq_n_u8::<4>(q[0])),
                        vreinterpretq_s8_u8(vshrq_n_u8::<4>(q[1])),
                    ];
                    let (s1, m1) = scale_min_k4(2 * c, &w.scales);
                    let (s2, m2) = scale_min_k4(2 * c + 1, &w.scales);
                    isum += s1 as i32 * vaddvq_s32(dot32(lo, q32(&a.qs[64 * c..])));
                    isum += s2 as i32 * vaddvq_s32(dot32(hi, q32(&a.qs[64 * c + 32..])));
                    let bs = |j: usize| a.bsum(j) as i32;
                    msum += m1 as i32 * (bs(4 * c) + bs(4 * c + 1))
                        + m2 as i32 * (bs(4 * c + 2) + bs(4 * c + 3));
                }
                let (d, dmin) = (a.d() * w.d(), a.d() * w.dmin());
                (
                    vsetq_lane_s32::<0>(isum, vdupq_n_s32(0)),
                    d,
                    -dmin * msum as f32,
                )
            })
        }

        #[target_feature(enable = $features)]
        fn dot_q5_k(w: &[u8], a: &[u8]) -> f32 {
            drive!(cs::<u8, BlockQ5K>(w), cs::<u8, BlockQ8K>(a), |w, a| {
                let (mut isum, mut msum) = (0i32, 0i32);
                let m4 = vdupq_n_u8(0xF);
                let qh = [
                    vreinterpretq_u8_s8(ld(&w.qh)),
                    vreinterpretq_u8_s8(ld(&w.qh[16..])),
                ];
                let high = |bit: u8, k: usize| {
                    let t = vtstq_u8(qh[k], vdupq_n_u8(bit));
                    vandq_u8(t, vdupq_n_u8(0x10))
                };
                for c in 0..4 {
                    let q = [
                        vreinterpretq_u8_s8(ld(&w.qs[32 * c..])),
                        vreinterpretq_u8_s8(ld(&w.qs[32 * c + 16..])),
                    ];
                    let (b1, b2) = (1u8 << (2 * c), 2u8 << (2 * c));
                    let lo: [int8x16_t; 2] = std::array::from_fn(|k| {
                        vreinterpretq_s8_u8(vorrq_u8(vandq_u8(q[k], m4), high(b1, k)))
                    });
                    let hi: [int8x16_t; 2] = std::array::from_fn(|k| {
                        vreinterpretq_s8_u8(vorrq_u8(vshrq_n_u8::<4>(q[k]), high(b2, k)))
                    });
                    let (s1, m1) = scale_min_k4(2 * c, &w.scales);
                    let (s2, m2) = scale_min_k4(2 * c + 1, &w.scales);
                    isum += s1 as i32 * vaddvq_s32(dot32(lo, q32(&a.qs[64 * c..])));
                    isum += s2 as i32 * vaddvq_s32(dot32(hi, q32(&a.qs[64 * c + 32..])));
                    let bs = |j: usize| a.bsum(j) as i32;
                    msum += m1 as i32 * (bs(4 * c) + bs(4 * c + 1))
                        + m2 as i32 * (bs(4 * c + 2) + bs(4 * c + 3));
                }
                let (d, dmin) = (a.d() * w.d(), a.d() * w.dmin());
                (
                    vsetq_lane_s32::<0>(isum, vdupq_n_s32(0)),
                    d,
                    -dmin * msum as f32,
                )
            })
        }

        #[target_feature(enable = $features)]
        fn dot_q6_k(w: &[u8], a: &[u8]) -> f32 {
            drive!(cs::<u8, BlockQ6K>(w), cs::<u8, BlockQ8K>(a), |w, a| {
                let mut isum = 0i32;
                let (m4, m3) = (vdupq_n_u8(0xF), vdupq_n_u8(3));
                for h in 0..2 {
                    for k in 0..4 {
                        for half in 0..2 {
                            let o = 16 * half;
                            let ql = vreinterpretq_u8_s8(ld(&w.ql[64 * h + 32 * (k & 1) + o..]));
                            let low = if k < 2 {
                                vandq_u8(ql, m4)
                            } else {
                                vshrq_n_u8::<4>(ql)
                            };
                            let qh = vreinterpretq_u8_s8(ld(&w.qh[32 * h + o..]));
                            let high = vandq_u8(vshlq_u8(qh, vdupq_n_s8(-2 * k as i8)), m3);
                            let q = vsubq_s8(
                                vreinterpretq_s8_u8(vorrq_u8(low, vshlq_n_u8::<4>(high))),
                                vdupq_n_s8(32),
                            );
                            let av = ld(&a.qs[128 * h + 32 * k + o..]);
                            let s = vaddvq_s32($dot(vdupq_n_s32(0), q, av));
                            isum += w.scales[8 * h + 2 * k + half] as i32 * s;
                        }
                    }
                }
                (
                    vsetq_lane_s32::<0>(isum, vdupq_n_s32(0)),
                    a.d() * w.d(),
                    0.0,
                )
            })
        }

        #[target_feature(enable = $features)]
        fn dot_q2_k(w: &[u8], a: &[u8]) -> f32 {
            drive!(cs::<u8, BlockQ2K>(w), cs::<u8, BlockQ8K>(a), |w, a| {
                let mut isum = 0i32;
                let m3 = vdupq_n_u8(3);
                for n in 0..2 {
                    for half in 0..2 {
                        let q = vreinterpretq_u8_s8(ld(&w.qs[32 * n + 16 * half..]));
                        for j in 0..4 {
                            let u = vandq_u8(vshlq_u8(q, vdupq_n_s8(-2 * j as i8)), m3);
                            let av = ld(&a.qs[128 * n + 32 * j + 16 * half..]);
                            let s = vaddvq_s32($dot(vdupq_n_s32(0), vreinterpretq_s8_u8(u), av));
                            isum += (w.scales[8 * n + 2 * j + half] & 0xF) as i32 * s;
                        }
                    }
                }
                let summ: i32 = (0..16).map(|j| (w.scales[j] >> 4) as i32 * a.bsum(j) as i32).sum();
                let da = a.d();
                (vsetq_lane_s32::<0>(isum, vdupq_n_s32(0)), da * w.d(), -(da * w.dmin()) * summ as f32)
            })
        }

        #[target_feature(enable = $features)]
        fn dot_q3_k(w: &[u8], a: &[u8]) -> f32 {
            drive!(cs::<u8, BlockQ3K>(w), cs::<u8, BlockQ8K>(a), |w, a| {
                let mut isum = 0i32;
                let m3 = vdupq_n_u8(3);
                let sc = q3k_scales(&w.scales);
                for n in 0..2 {
                    for half in 0..2 {
                        let q = vreinterpretq_u8_s8(ld(&w.qs[32 * n + 16 * half..]));
                        let hm = vreinterpretq_u8_s8(ld(&w.hmask[16 * half..]));
                        for j in 0..4 {
                            let low = vandq_u8(vshlq_u8(q, vdupq_n_s8(-2 * j as i8)), m3);
                            let set = vtstq_u8(hm, vdupq_n_u8(1u8 << (4 * n + j)));
                            // value = low − 4 where the high bit is clear
                            let v = vsubq_s8(vreinterpretq_s8_u8(low), vreinterpretq_s8_u8(vbicq_u8(vdupq_n_u8(4), set)));
                            let av = ld(&a.qs[128 * n + 32 * j + 16 * half..]);
                            isum += sc[8 * n + 2 * j + half] as i32 * vaddvq_s32($dot(vdupq_n_s32(0), v, av));
                        }
                    }
                }
                (vsetq_lane_s32::<0>(isum, vdupq_n_s32(0)), a.d() * w.d(), 0.0)
            })
        }

        /// Float weights read by `read` into 8-lane chunks, against f32 activations.
        #[inline]
        #[target_feature(enable = $features)]
        fn dot_float(
            w: &[u8],
            a: &[u8],
            size: usize,
            ty: GgmlType,
            read: impl Fn(&[u8]) -> [f32; 8],
        ) -> f32 {
            let n = w.len() / size;
            let mut acc = [vdupq_n_f32(0.0); 2];
            let mut i = 0;
            while i + 8 <= n {
                let x = read(&w[size * i..size * (i + 8)]);
                let ab = &a[4 * i..4 * (i + 8)];
                // SAFETY: x holds 8 floats, ab 32 readable bytes.
                let (x0, x1, y0, y1) = unsafe {
                    (
                        vld1q_f32(x.as_ptr()),
                        vld1q_f32(x.as_ptr().add(4)),
                        vld1q_f32(ab.as_ptr().cast()),
                        vld1q_f32(ab.as_ptr().add(16).cast()),
                    )
                };
                acc[0] = vfmaq_f32(acc[0], x0, y0);
                acc[1] = vfmaq_f32(acc[1], x1, y1);
                i += 8;
            }
            vaddvq_f32(vaddq_f32(acc[0], acc[1]))
                + crate::dot::scalar::dot(ty, &w[size * i..], &a[4 * i..])
        }

        #[target_feature(enable = $features)]
        fn dot_f32(w: &[u8], a: &[u8]) -> f32 {
            dot_float(w, a, 4, GgmlType::F32, |b| {
                std::array::from_fn(|k| {
                    f32::from_le_bytes([b[4 * k], b[4 * k + 1], b[4 * k + 2], b[4 * k + 3]])
                })
            })
        }

        #[target_feature(enable = $features)]
        fn dot_f16(w: &[u8], a: &[u8]) -> f32 {
            dot_float(w, a, 2, GgmlType::F16, |b| {
                std::array::from_fn(|k| half::f16::from_le_bytes([b[2 * k], b[2 * k + 1]]).to_f32())
            })
        }

        #[target_feature(enable = $features)]
        fn dot_bf16(w: &[u8], a: &[u8]) -> f32 {
            dot_float(w, a, 2, GgmlType::BF16, |b| {
                std::array::from_fn(|k| {
                    f32::from_bits((u16::from_le_bytes([b[2 * k], b[2 * k + 1]]) as u32) << 16)
                })
            })
        }

        /// The row kernel for `ty`. Handed out only on a CPU with `$features` (checked by the caller).
        pub(in crate::dot::aarch64) fn rows_kernel(ty: GgmlType) -> Option<RowsFn> {
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

pub(super) mod plain {
    neon_kernels!("neon", dot_mull);
}

pub(super) mod dotprod {
    neon_kernels!("neon,dotprod", dot_sdot);
}
