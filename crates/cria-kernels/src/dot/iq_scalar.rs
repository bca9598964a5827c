//! Portable dot products of the IQ, ternary and MXFP4 formats, summed in the order of llama.cpp's AVX2
//! kernels (`ggml_vec_dot_<type>_q8_K` / `_q8_0` of `arch/x86/quants.c`, built by GCC with FMA contraction,
//! which the disassembly of its `quants.c.o` confirms): eight float lanes, lane k of each block's integer
//! sums holding the products of elements 4k..4k + 3 of each 32, `fma(lane, scale, acc)` block after block,
//! the SSE horizontal sum, then the format's constant factor. The integer sums are exact, so only the lane
//! split and the float steps matter, and those are written out here once for the SIMD kernels to match.

use crate::GgmlType;
use crate::quant::blocks::{BlockQ8_0, BlockQ8K};
use crate::quant::iq_blocks::*;
use crate::quant::iq_unpack::{self, Unpacked};
use bytemuck::cast_slice as c;

/// dot(weight row `w` of IQ / ternary / MXFP4 type `ty`, activation row `a` in `activation_type(ty)`).
///
/// # Panics
/// For a type outside this family (the caller, `scalar::dot`, routes only these here).
pub fn dot(ty: GgmlType, w: &[u8], a: &[u8]) -> f32 {
    use GgmlType::*;
    match ty {
        IQ4_NL => pairs_q8_0(c::<u8, BlockIQ4NL>(w), c(a), |b| {
            (b.d(), iq_unpack::codebook32(&b.qs, &KVALUES_IQ4NL))
        }),
        MXFP4 => pairs_q8_0(c::<u8, BlockMXFP4>(w), c(a), |b| {
            (b.d(), iq_unpack::codebook32(&b.qs, &KVALUES_MXFP4))
        }),
        IQ4_XS => grid(c(w), c(a), 1.0, |b: &BlockIQ4XS| {
            (b.d(), iq_unpack::iq4_xs(b), |ls| ls as i32 - 32)
        }),
        IQ2_XXS => grid(c(w), c(a), 0.125, |b: &BlockIQ2XXS| {
            (b.d(), iq_unpack::iq2_xxs(b), odd)
        }),
        IQ2_XS => grid(c(w), c(a), 0.125, |b: &BlockIQ2XS| {
            (b.d(), iq_unpack::iq2_xs(b), odd)
        }),
        IQ2_S => grid(c(w), c(a), 0.125, |b: &BlockIQ2S| {
            (b.d(), iq_unpack::iq2_s(b), odd)
        }),
        IQ3_XXS => grid(c(w), c(a), 0.25, |b: &BlockIQ3XXS| {
            (b.d(), iq_unpack::iq3_xxs(b), odd)
        }),
        IQ3_S => grid(c(w), c(a), 1.0, |b: &BlockIQ3S| {
            (b.d(), iq_unpack::iq3_s(b), odd)
        }),
        IQ1_S => iq1_s(c(w), c(a)),
        IQ1_M => iq1_m(c(w), c(a)),
        TQ1_0 => ternary(c(w), c(a), |b: &BlockTQ1_0| (b.d(), iq_unpack::tq1_0(b))),
        TQ2_0 => ternary(c(w), c(a), |b: &BlockTQ2_0| (b.d(), iq_unpack::tq2_0(b))),
        _ => panic!("iq_scalar::dot: {ty:?} is not an IQ, ternary or MXFP4 format"),
    }
}

/// The `2·ls + 1` sub-block multiplier of the IQ2, IQ3 and IQ1 formats.
fn odd(ls: u8) -> i32 {
    2 * ls as i32 + 1
}

/// Eight float accumulators, as a `__m256` of the AVX2 kernels.
#[derive(Clone, Copy)]
pub(crate) struct Acc8(pub [f32; 8]);

impl Acc8 {
    pub(crate) fn new() -> Self {
        Acc8([0.0; 8])
    }

    /// `_mm256_fmadd_ps(scale, cvt(lanes), acc)`.
    pub(crate) fn fma(&mut self, lanes: [i32; 8], scale: f32) {
        for (acc, l) in self.0.iter_mut().zip(lanes) {
            *acc = (l as f32).mul_add(scale, *acc);
        }
    }

    /// llama.cpp's `hsum_float_8`: high half + low half, then (0 + 2) + (1 + 3).
    pub(crate) fn hsum(self) -> f32 {
        let a = self.0;
        let x: [f32; 4] = std::array::from_fn(|i| a[4 + i] + a[i]);
        (x[0] + x[2]) + (x[1] + x[3])
    }
}

/// Lane k: Σ mult(e)·q[e]·a[e] over the elements e of `q` with (e mod 32) / 4 = k.
fn lanes(q: &[i8], a: &[i8], mult: impl Fn(usize) -> i32) -> [i32; 8] {
    let mut l = [0i32; 8];
    for (e, (&q, &a)) in q.iter().zip(a).enumerate() {
        l[(e % 32) / 4] += mult(e) * q as i32 * a as i32;
    }
    l
}

/// The 32-element formats against Q8_0: even blocks in one accumulator, odd in another (added before the
/// horizontal sum); an odd last block added after it, its products summed as integers.
fn pairs_q8_0<B>(w: &[B], a: &[BlockQ8_0], unpack: impl Fn(&B) -> (f32, [i8; 32])) -> f32 {
    let (mut acc1, mut acc2) = (Acc8::new(), Acc8::new());
    let pairs = w.len() / 2;
    for ib in 0..pairs {
        for (acc, i) in [(&mut acc1, 2 * ib), (&mut acc2, 2 * ib + 1)] {
            let (d, q) = unpack(&w[i]);
            acc.fma(lanes(&q, &a[i].qs, |_| 1), a[i].d() * d);
        }
    }
    let both = Acc8(std::array::from_fn(|k| acc1.0[k] + acc2.0[k]));
    let mut sum = both.hsum();
    if w.len() % 2 == 1 {
        let i = w.len() - 1;
        let (d, q) = unpack(&w[i]);
        let isum: i32 = q
            .iter()
            .zip(&a[i].qs)
            .map(|(&q, &a)| q as i32 * a as i32)
            .sum();
        sum += isum as f32 * (a[i].d() * d);
    }
    sum
}

/// The grid formats and IQ4_XS: per super-block, lanes weighted by each 16's integer multiplier, then
/// `fma(d_w·d_a, lanes, acc)`; the horizontal sum times `factor`.
fn grid<B>(
    w: &[B],
    a: &[BlockQ8K],
    factor: f32,
    unpack: impl Fn(&B) -> (f32, Unpacked, fn(u8) -> i32),
) -> f32 {
    let mut acc = Acc8::new();
    for (b, a) in w.iter().zip(a) {
        let (d, u, mult) = unpack(b);
        let m: [i32; 16] = std::array::from_fn(|j| mult(u.ls[j]));
        acc.fma(lanes(&u.q, &a.qs, |e| m[e / 16]), d * a.d());
    }
    factor * acc.hsum()
}

/// IQ1_S: the grid part in lanes; the delta part Σ ±ls·(bsum pair) per super-block as one integer, added in
/// a scalar `fma`; result hsum + 0.125·delta (not fused).
fn iq1_s(w: &[BlockIQ1S], a: &[BlockQ8K]) -> f32 {
    let (mut acc, mut delta) = (Acc8::new(), 0f32);
    for (b, a) in w.iter().zip(a) {
        let u = iq_unpack::iq1_s(b);
        let m: [i32; 16] = std::array::from_fn(|j| odd(u.ls[j]));
        let mut sumi1 = 0i32;
        for ib in 0..8 {
            let sign = if u.delta_neg & (1 << (4 * ib)) != 0 {
                -1
            } else {
                1
            };
            let bsum = a.bsum(2 * ib) as i32 + a.bsum(2 * ib + 1) as i32;
            sumi1 += bsum * sign * m[2 * ib];
        }
        let d = a.d() * b.d();
        acc.fma(lanes(&u.q, &a.qs, |e| m[e / 16]), d);
        delta = d.mul_add(sumi1 as f32, delta);
    }
    acc.hsum() + 0.125 * delta
}

/// IQ1_M: grid lanes and delta lanes (±a per 8, times each 16's multiplier) in two accumulators; result
/// `fma(hsum(delta), 0.125, hsum(grid))`.
fn iq1_m(w: &[BlockIQ1M], a: &[BlockQ8K]) -> f32 {
    let (mut acc1, mut acc2) = (Acc8::new(), Acc8::new());
    for (b, a) in w.iter().zip(a) {
        let u = iq_unpack::iq1_m(b);
        let m: [i32; 16] = std::array::from_fn(|j| odd(u.ls[j]));
        let d = a.d() * b.d();
        acc1.fma(lanes(&u.q, &a.qs, |e| m[e / 16]), d);
        let sign = |e: usize| {
            if u.delta_neg & (1 << (e / 8)) != 0 {
                -1
            } else {
                1
            }
        };
        acc2.fma(lanes(&[1i8; 256], &a.qs, |e| m[e / 16] * sign(e)), d);
    }
    acc2.hsum().mul_add(0.125, acc1.hsum())
}

/// TQ1_0 / TQ2_0: lanes of q·a with q the stored 0..=3, minus the activation sums of 32 elements per lane
/// pair of bsums (lane k: elements 32k..32k + 32), then `fma(lanes, d_a·d_w, acc)`.
fn ternary<B>(w: &[B], a: &[BlockQ8K], unpack: impl Fn(&B) -> (f32, [u8; 256])) -> f32 {
    let mut acc = Acc8::new();
    for (b, a) in w.iter().zip(a) {
        let (d, q) = unpack(b);
        let q: [i8; 256] = q.map(|q| q as i8);
        let mut l = lanes(&q, &a.qs, |_| 1);
        for (k, l) in l.iter_mut().enumerate() {
            *l -= a.bsum(2 * k) as i32 + a.bsum(2 * k + 1) as i32;
        }
        acc.fma(l, a.d() * d);
    }
    acc.hsum()
}
