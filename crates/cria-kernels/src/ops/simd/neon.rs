//! aarch64 NEON table. NEON is part of the aarch64 baseline; the table is still only handed out after
//! run-time detection so the `unsafe` calls below rest on a check, not an assumption.
//!
//! f16 → f32 is done with integer NEON ops (stable Rust has no `float16x4_t` yet): shift the half's
//! exponent and mantissa into f32 position and multiply by 2^112 to re-bias, which also gets subnormals
//! right; Inf/NaN get their exponent forced to all ones.

use std::arch::aarch64::*;

use half::f16;

use super::Kernels;
use crate::isa::Isa;

pub(super) fn table() -> Option<&'static Kernels> {
    std::arch::is_aarch64_feature_detected!("neon").then_some(&NEON)
}

static NEON: Kernels = Kernels {
    isa: Isa::Neon,
    dot_rows_f16,
    axpy_rows_f16,
    sum_sq,
    silu_mul: gated_mul::<false>,
    gelu_mul: gated_mul::<true>,
    exp_sub_sum,
};

fn dot_rows_f16(q: &[f32], k: &[f16], stride: usize, out: &mut [f32]) {
    // SAFETY: only reachable via `table`, which checked neon.
    unsafe { body::dot_rows_f16(q, k, stride, out) }
}
fn axpy_rows_f16(out: &mut [f32], probs: &[f32], v: &[f16], stride: usize) {
    // SAFETY: only reachable via `table`, which checked neon.
    unsafe { body::axpy_rows_f16(out, probs, v, stride) }
}
fn sum_sq(x: &[f32]) -> f32 {
    // SAFETY: only reachable via `table`, which checked neon.
    unsafe { body::sum_sq(x) }
}
fn gated_mul<const GELU: bool>(g: &[f32], u: &[f32], o: &mut [f32]) {
    // SAFETY: only reachable via `table`, which checked neon.
    unsafe { body::gated_mul::<GELU>(g, u, o) }
}
fn exp_sub_sum(x: &mut [f32], max: f32) -> f32 {
    // SAFETY: only reachable via `table`, which checked neon.
    unsafe { body::exp_sub_sum(x, max) }
}

mod body {
    use super::*;

    /// 4 f16 at `p` as f32.
    ///
    /// # Safety
    /// `p..p+4` must be readable.
    #[target_feature(enable = "neon")]
    unsafe fn load_f16(p: *const f16) -> float32x4_t {
        // SAFETY: the caller guarantees 8 readable bytes at `p`.
        let h = vmovl_u16(unsafe { vld1_u16(p.cast()) });
        let sign = vshlq_n_u32::<16>(vandq_u32(h, vdupq_n_u32(0x8000)));
        let em = vshlq_n_u32::<13>(vandq_u32(h, vdupq_n_u32(0x7fff)));
        let f = vmulq_f32(
            vreinterpretq_f32_u32(em),
            vdupq_n_f32(f32::from_bits(0x7780_0000)),
        );
        let inf_nan = vcgeq_f32(f, vdupq_n_f32(65536.0));
        let f = vorrq_u32(
            vreinterpretq_u32_f32(f),
            vandq_u32(inf_nan, vdupq_n_u32(0x7f80_0000)),
        );
        vreinterpretq_f32_u32(vorrq_u32(f, sign))
    }

    #[target_feature(enable = "neon")]
    pub(super) fn dot_rows_f16(q: &[f32], k: &[f16], stride: usize, out: &mut [f32]) {
        for (t, o) in out.iter_mut().enumerate() {
            *o = dot_f16(q, &k[t * stride..t * stride + q.len()]);
        }
    }

    #[target_feature(enable = "neon")]
    fn dot_f16(a: &[f32], b: &[f16]) -> f32 {
        let n = a.len().min(b.len());
        let (mut acc0, mut acc1) = (vdupq_n_f32(0.0), vdupq_n_f32(0.0));
        let mut i = 0;
        // SAFETY: each iteration reads a[i..i+8] and b[i..i+8] with i + 8 <= n.
        unsafe {
            while i + 8 <= n {
                acc0 = vfmaq_f32(
                    acc0,
                    vld1q_f32(a.as_ptr().add(i)),
                    load_f16(b.as_ptr().add(i)),
                );
                acc1 = vfmaq_f32(
                    acc1,
                    vld1q_f32(a.as_ptr().add(i + 4)),
                    load_f16(b.as_ptr().add(i + 4)),
                );
                i += 8;
            }
        }
        let tail: f32 = a[i..n]
            .iter()
            .zip(&b[i..n])
            .map(|(&x, &y)| x * y.to_f32())
            .sum();
        vaddvq_f32(vaddq_f32(acc0, acc1)) + tail
    }

    /// `out += Σ_t probs[t] · v[t*stride ..][..out.len()]`, 16 columns at a time in 4 registers; columns past
    /// the last multiple of 4 in scalar.
    #[target_feature(enable = "neon")]
    pub(super) fn axpy_rows_f16(out: &mut [f32], probs: &[f32], v: &[f16], stride: usize) {
        let n = out.len();
        if let Some(last) = probs.len().checked_sub(1) {
            assert!(last * stride + n <= v.len(), "axpy_rows_f16: v too short");
        }
        let n4 = n - n % 4;
        let mut c = 0;
        while c < n4 {
            let regs = ((n4 - c) / 4).min(4);
            // SAFETY: out[c..c+4*regs] is in bounds (<= n4); v[t*stride + c ..][..4*regs] is in bounds by
            // the assert above.
            unsafe {
                let op = out.as_mut_ptr().add(c);
                let mut acc: [_; 4] = std::array::from_fn(|j| {
                    if j < regs {
                        vld1q_f32(op.add(4 * j))
                    } else {
                        vdupq_n_f32(0.0)
                    }
                });
                for (t, &p) in probs.iter().enumerate() {
                    let vp = v.as_ptr().add(t * stride + c);
                    for (j, a) in acc.iter_mut().enumerate().take(regs) {
                        *a = vfmaq_n_f32(*a, load_f16(vp.add(4 * j)), p);
                    }
                }
                for (j, a) in acc.into_iter().enumerate().take(regs) {
                    vst1q_f32(op.add(4 * j), a);
                }
            }
            c += 4 * regs;
        }
        for (t, &p) in probs.iter().enumerate() {
            for (o, x) in out[n4..]
                .iter_mut()
                .zip(&v[t * stride + n4..t * stride + n])
            {
                *o += p * x.to_f32();
            }
        }
    }

    #[target_feature(enable = "neon")]
    pub(super) fn sum_sq(x: &[f32]) -> f32 {
        let mut acc = [vdupq_n_f32(0.0); 4];
        let mut chunks = x.chunks_exact(16);
        for c in &mut chunks {
            for (k, a) in acc.iter_mut().enumerate() {
                // SAFETY: c has 16 elements; k*4+4 <= 16.
                let v = unsafe { vld1q_f32(c.as_ptr().add(k * 4)) };
                *a = vfmaq_f32(*a, v, v);
            }
        }
        let s = vaddq_f32(vaddq_f32(acc[0], acc[1]), vaddq_f32(acc[2], acc[3]));
        vaddvq_f32(s) + chunks.remainder().iter().map(|v| v * v).sum::<f32>()
    }

    #[target_feature(enable = "neon")]
    fn exp(x0: float32x4_t) -> float32x4_t {
        use crate::ops::simd::exp_consts as E;
        let x = vminq_f32(vmaxq_f32(x0, vdupq_n_f32(E::MIN)), vdupq_n_f32(E::MAX));
        let ni = vcvtnq_s32_f32(vmulq_f32(x, vdupq_n_f32(E::LOG2E)));
        let n = vcvtq_f32_s32(ni);
        let r = vfmsq_f32(x, n, vdupq_n_f32(E::LN2_HI));
        let r = vfmsq_f32(r, n, vdupq_n_f32(E::LN2_LO));
        let mut p = vdupq_n_f32(E::POLY[0]);
        for &c in &E::POLY[1..] {
            p = vfmaq_f32(vdupq_n_f32(c), p, r);
        }
        let pow2 = vshlq_n_s32::<23>(vaddq_s32(ni, vdupq_n_s32(127)));
        let keep = vcgeq_f32(x0, vdupq_n_f32(E::MIN));
        let e = vmulq_f32(p, vreinterpretq_f32_s32(pow2));
        vreinterpretq_f32_u32(vandq_u32(keep, vreinterpretq_u32_f32(e)))
    }

    /// `silu(x) = x / (1 + e^-x)`.
    #[target_feature(enable = "neon")]
    fn silu(x: float32x4_t) -> float32x4_t {
        vdivq_f32(x, vaddq_f32(vdupq_n_f32(1.0), exp(vnegq_f32(x))))
    }

    #[target_feature(enable = "neon")]
    pub(super) fn gated_mul<const GELU: bool>(g: &[f32], u: &[f32], out: &mut [f32]) {
        let n = g.len().min(u.len()).min(out.len());
        if GELU {
            // A table lookup per element either way; the scalar f16 conversions are what is left.
            return crate::ops::simd::scalar::gated_mul::<true>(g, u, out);
        }
        let mut i = 0;
        // SAFETY: each iteration reads g/u[i..i+4] and writes out[i..i+4] with i + 4 <= n.
        unsafe {
            while i + 4 <= n {
                let gv = silu(vld1q_f32(g.as_ptr().add(i)));
                vst1q_f32(
                    out.as_mut_ptr().add(i),
                    vmulq_f32(gv, vld1q_f32(u.as_ptr().add(i))),
                );
                i += 4;
            }
        }
        crate::ops::simd::scalar::gated_mul::<GELU>(&g[i..n], &u[i..n], &mut out[i..n]);
    }

    #[target_feature(enable = "neon")]
    pub(super) fn exp_sub_sum(x: &mut [f32], max: f32) -> f32 {
        let (n, mv) = (x.len(), vdupq_n_f32(max));
        let mut acc = vdupq_n_f32(0.0);
        let mut i = 0;
        // SAFETY: each iteration reads and writes x[i..i+4] with i + 4 <= n.
        unsafe {
            while i + 4 <= n {
                let p = x.as_mut_ptr().add(i);
                let e = exp(vsubq_f32(vld1q_f32(p), mv));
                vst1q_f32(p, e);
                acc = vaddq_f32(acc, e);
                i += 4;
            }
        }
        vaddvq_f32(acc) + crate::ops::simd::scalar::exp_sub_sum(&mut x[i..], max)
    }
}
