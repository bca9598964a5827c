//! NEON dot products of IQ4_NL, MXFP4 and IQ4_XS (`smull` + `sadalp`, any aarch64), summed as llama.cpp's
//! NEON kernels (`arch/arm/quants.c`) sum them: exact integer sums per block (IQ4_XS: per super-block, each
//! 32's sum times its scale), one scalar float term per block. Held to the scalar reference (which follows
//! the x86 order) within rounding by `tests/iq_kernels.rs`, run under qemu by `ci/neon.sh`.

use crate::GgmlType;
use crate::dot::RowsFn;
use crate::quant::blocks::{BlockQ8_0, BlockQ8K};
use crate::quant::iq_blocks::*;
use bytemuck::cast_slice as c;
use std::arch::aarch64::*;

/// 16 bytes from the start of `p` (panics if shorter).
#[inline]
#[target_feature(enable = "neon")]
fn ld(p: &[u8]) -> uint8x16_t {
    let b = &p[..16];
    // SAFETY: b is exactly 16 readable bytes; vld1q has no alignment requirement.
    unsafe { vld1q_u8(b.as_ptr()) }
}

#[inline]
#[target_feature(enable = "neon")]
fn ld_i8(p: &[i8]) -> int8x16_t {
    vreinterpretq_s8_u8(ld(bytemuck::cast_slice(p)))
}

/// Σ a·b over 16 i8 pairs, into 4 lanes added to `acc`.
#[inline]
#[target_feature(enable = "neon")]
fn dot16(acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t {
    let lo = vmull_s8(vget_low_s8(a), vget_low_s8(b));
    let hi = vmull_high_s8(a, b);
    vpadalq_s16(vpadalq_s16(acc, lo), hi)
}

/// Σ codebook[q]·y over one 32-element block (low nibbles are elements 0..16).
#[inline]
#[target_feature(enable = "neon")]
fn block_sum(book: int8x16_t, qs: &[u8], y: &[i8]) -> i32 {
    let bits = ld(qs);
    let lo = vqtbl1q_s8(book, vandq_u8(bits, vdupq_n_u8(0xf)));
    let hi = vqtbl1q_s8(book, vshrq_n_u8::<4>(bits));
    let acc = dot16(dot16(vdupq_n_s32(0), lo, ld_i8(y)), hi, ld_i8(&y[16..]));
    vaddvq_s32(acc)
}

/// IQ4_NL / MXFP4 against Q8_0: llama.cpp's `sumf += d0·s0 + d1·s1` per pair of blocks, then the odd last one.
#[inline]
#[target_feature(enable = "neon")]
fn codebook_q8_0<'a>(
    a: &[BlockQ8_0],
    n_blocks: usize,
    book: &[i8; 16],
    block: impl Fn(usize) -> (f32, &'a [u8]),
) -> f32 {
    let bk = ld_i8(book);
    let term = |i: usize| {
        let (d, qs) = block(i);
        d * a[i].d() * block_sum(bk, qs, &a[i].qs) as f32
    };
    let mut sum = 0f32;
    let pairs = n_blocks / 2;
    for p in 0..pairs {
        sum += term(2 * p) + term(2 * p + 1);
    }
    if n_blocks % 2 == 1 {
        sum += term(n_blocks - 1);
    }
    sum
}

#[target_feature(enable = "neon")]
fn dot_iq4_nl(w: &[u8], a: &[u8]) -> f32 {
    let x: &[BlockIQ4NL] = c(w);
    codebook_q8_0(c(a), x.len(), &KVALUES_IQ4NL, |i| (x[i].d(), &x[i].qs[..]))
}

#[target_feature(enable = "neon")]
fn dot_mxfp4(w: &[u8], a: &[u8]) -> f32 {
    let x: &[BlockMXFP4] = c(w);
    codebook_q8_0(c(a), x.len(), &KVALUES_MXFP4, |i| (x[i].d(), &x[i].qs[..]))
}

#[target_feature(enable = "neon")]
fn dot_iq4_xs(w: &[u8], a: &[u8]) -> f32 {
    let (x, y): (&[BlockIQ4XS], &[BlockQ8K]) = (c(w), c(a));
    let book = ld_i8(&KVALUES_IQ4NL);
    let mut sum = 0f32;
    for (x, y) in x.iter().zip(y) {
        let mut h = u16::from_le_bytes(x.scales_h) as i32;
        let (mut sumi1, mut sumi2) = (0i32, 0i32);
        for ib in 0..4 {
            let sl = x.scales_l[ib] as i32;
            let ls1 = ((sl & 0xf) | ((h << 4) & 0x30)) - 32;
            let ls2 = ((sl >> 4) | ((h << 2) & 0x30)) - 32;
            h >>= 4;
            sumi1 += block_sum(book, &x.qs[32 * ib..], &y.qs[64 * ib..]) * ls1;
            sumi2 += block_sum(book, &x.qs[32 * ib + 16..], &y.qs[64 * ib + 32..]) * ls2;
        }
        sum += x.d() * y.d() * (sumi1 + sumi2) as f32;
    }
    sum
}

/// The NEON row kernel of a read-only format, where there is one.
pub(super) fn rows_kernel(ty: GgmlType) -> Option<RowsFn> {
    macro_rules! rows {
        ($f:ident) => {
            Some(|w: &[u8], rb: usize, a: &[u8], out: &mut [f32]| {
                for (o, wr) in out.iter_mut().zip(w.chunks_exact(rb)) {
                    // SAFETY: NEON is part of every aarch64 target this crate builds for.
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
