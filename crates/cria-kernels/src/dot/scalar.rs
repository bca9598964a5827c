//! Portable dot products of one weight row against one activation row (the reference the SIMD paths are
//! tested against; integer sums exact, as ggml's generic kernels).

#![allow(clippy::needless_range_loop)] // index loops mirror ggml's reference code, line for line

use crate::GgmlType;
use crate::quant::blocks::*;
use crate::quant::{q6_at, unpack5};
use bytemuck::cast_slice as c;
use half::{bf16, f16};

/// dot(weight row `w` of type `ty`, activation row `a` in `activation_type(ty)`).
pub fn dot(ty: GgmlType, w: &[u8], a: &[u8]) -> f32 {
    use GgmlType::*;
    match ty {
        F32 => dot_float(w, a, 4, |b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        F16 => dot_float(w, a, 2, |b| f16::from_le_bytes([b[0], b[1]]).to_f32()),
        BF16 => dot_float(w, a, 2, |b| bf16::from_le_bytes([b[0], b[1]]).to_f32()),
        Q4_0 => q4_0(c(w), c(a)),
        Q4_1 => q4_1(c(w), c(a)),
        Q5_0 => q5_0(c(w), c(a)),
        Q5_1 => q5_1(c(w), c(a)),
        Q8_0 => q8_0(c(w), c(a)),
        Q8_1 => q8_1(c(w), c(a)),
        Q2_K => q2_k(c(w), c(a)),
        Q3_K => q3_k(c(w), c(a)),
        Q4_K => q4_k(c(w), c(a)),
        Q5_K => q5_k(c(w), c(a)),
        Q6_K => q6_k(c(w), c(a)),
        Q8_K => q8_k(c(w), c(a)),
        IQ4_NL | IQ4_XS | MXFP4 | TQ1_0 | TQ2_0 | IQ2_XXS | IQ2_XS | IQ2_S | IQ3_XXS | IQ3_S
        | IQ1_S | IQ1_M => super::iq_scalar::dot(ty, w, a),
    }
}

fn dot_float(w: &[u8], a: &[u8], size: usize, read: impl Fn(&[u8]) -> f32) -> f32 {
    let mut acc = [0f32; 4];
    for (i, (wv, av)) in w.chunks_exact(size).zip(a.chunks_exact(4)).enumerate() {
        acc[i % 4] += read(wv) * f32::from_le_bytes([av[0], av[1], av[2], av[3]]);
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3])
}

fn isum(q: impl Iterator<Item = i32>, a: &[i8]) -> i32 {
    q.zip(a).map(|(q, &a)| q * a as i32).sum()
}

fn nibbles(qs: &[u8; 16]) -> impl Iterator<Item = i32> + '_ {
    qs.iter()
        .map(|q| (q & 0xF) as i32)
        .chain(qs.iter().map(|q| (q >> 4) as i32))
}

/// The summation order of llama.cpp's x86 dot products (and of this crate's SIMD kernels), which the model
/// needs bit for bit: each layer re-quantizes its input to 8 bits, so a last-bit difference flips roundings
/// and grows through the layers (issue #4: 0.08 in smollm2's first logits with a plain per-block sum).
/// Eight float lanes; block after block, lane j gets `fma(lane j's integer sum, scale, lane j)`; then the
/// SIMD horizontal sum, then the scalar terms summed in block order.
struct Lanes8 {
    acc: [f32; 8],
    extra: f32,
}

impl Lanes8 {
    fn new() -> Self {
        Lanes8 {
            acc: [0.0; 8],
            extra: 0.0,
        }
    }

    fn block(&mut self, lanes: [i32; 8], scale: f32, extra: f32) {
        for (acc, l) in self.acc.iter_mut().zip(lanes) {
            *acc = (l as f32).mul_add(scale, *acc);
        }
        self.extra += extra;
    }

    /// `hsum` of the x86 kernels: halves, then pairs, then the last two.
    fn finish(self) -> f32 {
        let a = self.acc;
        let x: [f32; 4] = std::array::from_fn(|i| a[4 + i] + a[i]);
        (x[0] + x[2]) + (x[1] + x[3]) + self.extra
    }
}

/// Lane j of a 32-element block: Σ of the products of elements 4j..4j+3.
fn lanes32(q: impl Iterator<Item = i32>, a: &[i8]) -> [i32; 8] {
    let mut lanes = [0i32; 8];
    for (e, (q, &a)) in q.zip(a).enumerate() {
        lanes[e / 4] += q * a as i32;
    }
    lanes
}

fn q4_0(w: &[BlockQ4_0], a: &[BlockQ8_0]) -> f32 {
    let mut sum = Lanes8::new();
    for (w, a) in w.iter().zip(a) {
        sum.block(
            lanes32(nibbles(&w.qs).map(|q| q - 8), &a.qs),
            w.d() * a.d(),
            0.0,
        );
    }
    sum.finish()
}

fn q4_1(w: &[BlockQ4_1], a: &[BlockQ8_1]) -> f32 {
    let mut sum = Lanes8::new();
    for (w, a) in w.iter().zip(a) {
        sum.block(lanes32(nibbles(&w.qs), &a.qs), w.d() * a.d(), w.m() * a.s());
    }
    sum.finish()
}

fn q5_0(w: &[BlockQ5_0], a: &[BlockQ8_0]) -> f32 {
    let mut sum = Lanes8::new();
    for (w, a) in w.iter().zip(a) {
        let q = unpack5(&w.qs, w.qh());
        let lanes = lanes32(q.iter().map(|&q| q as i32 - 16), &a.qs);
        sum.block(lanes, w.d() * a.d(), 0.0);
    }
    sum.finish()
}

fn q5_1(w: &[BlockQ5_1], a: &[BlockQ8_1]) -> f32 {
    let mut sum = Lanes8::new();
    for (w, a) in w.iter().zip(a) {
        let q = unpack5(&w.qs, w.qh());
        let lanes = lanes32(q.iter().map(|&q| q as i32), &a.qs);
        sum.block(lanes, w.d() * a.d(), w.m() * a.s());
    }
    sum.finish()
}

fn q8_0(w: &[BlockQ8_0], a: &[BlockQ8_0]) -> f32 {
    let mut sum = Lanes8::new();
    for (w, a) in w.iter().zip(a) {
        let lanes = lanes32(w.qs.iter().map(|&q| q as i32), &a.qs);
        sum.block(lanes, w.d() * a.d(), 0.0);
    }
    sum.finish()
}

fn q8_1(w: &[BlockQ8_1], a: &[BlockQ8_1]) -> f32 {
    w.iter()
        .zip(a)
        .map(|(w, a)| w.d() * a.d() * isum(w.qs.iter().map(|&q| q as i32), &a.qs) as f32)
        .sum()
}

fn q8_k(w: &[BlockQ8K], a: &[BlockQ8K]) -> f32 {
    w.iter()
        .zip(a)
        .map(|(w, a)| w.d() * a.d() * isum(w.qs.iter().map(|&q| q as i32), &a.qs) as f32)
        .sum()
}

fn q2_k(w: &[BlockQ2K], a: &[BlockQ8K]) -> f32 {
    let mut sum = 0f32;
    for (w, a) in w.iter().zip(a) {
        let summs: i32 = (0..16)
            .map(|j| (w.scales[j] >> 4) as i32 * a.bsum(j) as i32)
            .sum();
        let mut isum = 0i32;
        for n in 0..2 {
            for j in 0..4 {
                for half in 0..2 {
                    let sc = (w.scales[8 * n + 2 * j + half] & 0xF) as i32;
                    let base = 128 * n + 32 * j + 16 * half;
                    let s: i32 = (0..16)
                        .map(|l| {
                            ((w.qs[32 * n + 16 * half + l] >> (2 * j)) & 3) as i32
                                * a.qs[base + l] as i32
                        })
                        .sum();
                    isum += sc * s;
                }
            }
        }
        sum += a.d() * w.d() * isum as f32 - a.d() * w.dmin() * summs as f32;
    }
    sum
}

fn q3_k(w: &[BlockQ3K], a: &[BlockQ8K]) -> f32 {
    let mut sum = 0f32;
    for (w, a) in w.iter().zip(a) {
        let sc = q3k_scales(&w.scales);
        let mut isum = 0i32;
        for e in 0..QK_K {
            let (n, j, l) = (e / 128, (e / 32) % 4, e % 32);
            let low = ((w.qs[32 * n + l] >> (2 * j)) & 3) as i32;
            let q = low
                - if w.hmask[l] & (1 << (e / 32)) != 0 {
                    0
                } else {
                    4
                };
            isum += sc[e / 16] as i32 * q * a.qs[e] as i32;
        }
        sum += a.d() * w.d() * isum as f32;
    }
    sum
}

/// Q4_K / Q5_K: d·Σ_j sc_j·Σ q·a − dmin·Σ_j m_j·(bsum_2j + bsum_2j+1), all times the activation scale.
fn k45(d: f32, dmin: f32, scales: &[u8; 12], q: impl Fn(usize) -> i32, a: &BlockQ8K) -> f32 {
    let (mut isum, mut msum) = (0i32, 0i32);
    for j in 0..8 {
        let (sc, m) = scale_min_k4(j, scales);
        let s: i32 = (0..32)
            .map(|l| q(32 * j + l) * a.qs[32 * j + l] as i32)
            .sum();
        isum += sc as i32 * s;
        msum += m as i32 * (a.bsum(2 * j) as i32 + a.bsum(2 * j + 1) as i32);
    }
    a.d() * d * isum as f32 - a.d() * dmin * msum as f32
}

fn q4_k(w: &[BlockQ4K], a: &[BlockQ8K]) -> f32 {
    let mut sum = Lanes8::new();
    for (w, a) in w.iter().zip(a) {
        let q = |e: usize| {
            let b = w.qs[32 * (e / 64) + e % 32];
            (if (e / 32).is_multiple_of(2) {
                b & 0xF
            } else {
                b >> 4
            }) as i32
        };
        let (mut lanes, mut msum) = ([0i32; 8], 0i32);
        for j in 0..8 {
            let (sc, m) = scale_min_k4(j, &w.scales);
            let l = lanes32((0..32).map(|l| q(32 * j + l)), &a.qs[32 * j..32 * j + 32]);
            lanes
                .iter_mut()
                .zip(l)
                .for_each(|(s, l)| *s += sc as i32 * l);
            msum += m as i32 * (a.bsum(2 * j) as i32 + a.bsum(2 * j + 1) as i32);
        }
        sum.block(lanes, w.d() * a.d(), -(w.dmin() * a.d() * msum as f32));
    }
    sum.finish()
}

fn q5_k(w: &[BlockQ5K], a: &[BlockQ8K]) -> f32 {
    w.iter()
        .zip(a)
        .map(|(w, a)| {
            let q = |e: usize| {
                let b = w.qs[32 * (e / 64) + e % 32];
                let low = if (e / 32).is_multiple_of(2) {
                    b & 0xF
                } else {
                    b >> 4
                };
                let high = (w.qh[e % 32] >> (e / 32)) & 1;
                (low | (high << 4)) as i32
            };
            k45(w.d(), w.dmin(), &w.scales, q, a)
        })
        .sum()
}

fn q6_k(w: &[BlockQ6K], a: &[BlockQ8K]) -> f32 {
    let mut sum = Lanes8::new();
    for (w, a) in w.iter().zip(a) {
        let mut lanes = [0i32; 8];
        for e in 0..QK_K {
            let (h, k, l) = (e / 128, (e / 32) % 4, e % 32);
            let sc = w.scales[8 * h + l / 16 + 2 * k] as i32;
            lanes[l / 4] += sc * q6_at(w, h, k, l) * a.qs[e] as i32;
        }
        // the −32 offset as a correction: Σ sc·(q − 32)·a = Σ sc·q·a − 32·Σ sc·bsum
        let corr: i32 = (0..16).map(|j| w.scales[j] as i32 * a.bsum(j) as i32).sum();
        let d = w.d();
        sum.block(lanes, d * a.d(), -((32.0 * d) * a.d() * corr as f32));
    }
    sum.finish()
}
