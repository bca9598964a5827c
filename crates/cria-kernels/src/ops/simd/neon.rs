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
    dot_f16,
    axpy_f16,
    sum_sq,
    silu_mul,
};

fn dot_f16(a: &[f32], b: &[f16]) -> f32 {
    // SAFETY: only reachable via `table`, which checked neon.
    unsafe { body::dot_f16(a, b) }
}
fn axpy_f16(y: &mut [f32], a: f32, x: &[f16]) {
    // SAFETY: only reachable via `table`, which checked neon.
    unsafe { body::axpy_f16(y, a, x) }
}
fn sum_sq(x: &[f32]) -> f32 {
    // SAFETY: only reachable via `table`, which checked neon.
    unsafe { body::sum_sq(x) }
}
fn silu_mul(g: &[f32], u: &[f32], o: &mut [f32]) {
    // SAFETY: only reachable via `table`, which checked neon.
    unsafe { body::silu_mul(g, u, o) }
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
    pub(super) unsafe fn dot_f16(a: &[f32], b: &[f16]) -> f32 {
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

    #[target_feature(enable = "neon")]
    pub(super) unsafe fn axpy_f16(y: &mut [f32], a: f32, x: &[f16]) {
        let n = y.len().min(x.len());
        let av = vdupq_n_f32(a);
        let mut i = 0;
        // SAFETY: each iteration reads x[i..i+4] and reads/writes y[i..i+4] with i + 4 <= n.
        unsafe {
            while i + 4 <= n {
                let p = y.as_mut_ptr().add(i);
                vst1q_f32(p, vfmaq_f32(vld1q_f32(p), av, load_f16(x.as_ptr().add(i))));
                i += 4;
            }
        }
        for (o, v) in y[i..n].iter_mut().zip(&x[i..n]) {
            *o += a * v.to_f32();
        }
    }

    #[target_feature(enable = "neon")]
    pub(super) unsafe fn sum_sq(x: &[f32]) -> f32 {
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
    fn exp(x: float32x4_t) -> float32x4_t {
        use crate::ops::simd::exp_consts as E;
        let x = vminq_f32(vmaxq_f32(x, vdupq_n_f32(E::MIN)), vdupq_n_f32(E::MAX));
        let ni = vcvtnq_s32_f32(vmulq_f32(x, vdupq_n_f32(E::LOG2E)));
        let n = vcvtq_f32_s32(ni);
        let r = vfmsq_f32(x, n, vdupq_n_f32(E::LN2_HI));
        let r = vfmsq_f32(r, n, vdupq_n_f32(E::LN2_LO));
        let mut p = vdupq_n_f32(E::POLY[0]);
        for &c in &E::POLY[1..] {
            p = vfmaq_f32(vdupq_n_f32(c), p, r);
        }
        let pow2 = vshlq_n_s32::<23>(vaddq_s32(ni, vdupq_n_s32(127)));
        vmulq_f32(p, vreinterpretq_f32_s32(pow2))
    }

    #[target_feature(enable = "neon")]
    pub(super) unsafe fn silu_mul(gate: &[f32], up: &[f32], out: &mut [f32]) {
        let n = gate.len().min(up.len()).min(out.len());
        let one = vdupq_n_f32(1.0);
        let mut i = 0;
        // SAFETY: each iteration reads gate/up[i..i+4] and writes out[i..i+4] with i + 4 <= n.
        unsafe {
            while i + 4 <= n {
                let g = vld1q_f32(gate.as_ptr().add(i));
                let s = vdivq_f32(g, vaddq_f32(one, exp(vnegq_f32(g))));
                vst1q_f32(
                    out.as_mut_ptr().add(i),
                    vmulq_f32(s, vld1q_f32(up.as_ptr().add(i))),
                );
                i += 4;
            }
        }
        for j in i..n {
            out[j] = crate::ops::silu(gate[j]) * up[j];
        }
    }
}
