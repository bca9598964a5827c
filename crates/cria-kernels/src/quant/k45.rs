//! Scalar reference quantize / dequantize of Q4_K and Q5_K (8 sub-blocks of 32, 6-bit scales and mins).

#![allow(clippy::needless_range_loop)] // index loops mirror ggml's reference code, line for line

use super::blocks::*;
use super::kmake::{Qkx2, make_qkx2_quants, nearest_int};

/// Per sub-block scale search, then the 6-bit scales / mins packed, then the quants requantized against the
/// stored (f16-rounded) scales. Returns the 256 quants in [0, nmax].
fn quantize_k45(
    x: &[f32],
    p: &Qkx2,
    scales_out: &mut [u8; 12],
    d: &mut [u8; 2],
    dmin: &mut [u8; 2],
) -> [u8; QK_K] {
    let mut l = [0u8; QK_K];
    let (mut scales, mut mins) = ([0f32; 8], [0f32; 8]);
    let (mut max_scale, mut max_min) = (0f32, 0f32);
    for j in 0..8 {
        let xs = &x[32 * j..32 * j + 32];
        let sum_x2: f32 = xs.iter().fold(0.0, |s, v| s + v * v);
        let av_x = (sum_x2 / 32.0).sqrt();
        let w: [f32; 32] = std::array::from_fn(|i| av_x + xs[i].abs());
        (scales[j], mins[j]) = make_qkx2_quants(p, xs, &w, &mut l[32 * j..32 * j + 32]);
        max_scale = max_scale.max(scales[j]);
        max_min = max_min.max(mins[j]);
    }
    let inv_scale = if max_scale > 0.0 {
        63.0 / max_scale
    } else {
        0.0
    };
    let inv_min = if max_min > 0.0 { 63.0 / max_min } else { 0.0 };
    *scales_out = [0; 12];
    for j in 0..8 {
        // ggml: uint8_t ls = nearest_int(...); ls = MIN(63, ls).
        let ls = (nearest_int(inv_scale * scales[j]) as u8).min(63);
        let lm = (nearest_int(inv_min * mins[j]) as u8).min(63);
        if j < 4 {
            scales_out[j] = ls;
            scales_out[j + 4] = lm;
        } else {
            scales_out[j + 4] = (ls & 0xF) | ((lm & 0xF) << 4);
            scales_out[j - 4] |= (ls >> 4) << 6;
            scales_out[j] |= (lm >> 4) << 6;
        }
    }
    *d = f16_bytes(max_scale / 63.0);
    *dmin = f16_bytes(max_min / 63.0);
    for j in 0..8 {
        let (sc, m) = scale_min_k4(j, scales_out);
        let dd = f16_at(*d) * sc as f32;
        if dd == 0.0 {
            continue;
        }
        let dm = f16_at(*dmin) * m as f32;
        for i in 0..32 {
            l[32 * j + i] = nearest_int((x[32 * j + i] + dm) / dd).clamp(0, p.nmax) as u8;
        }
    }
    l
}

pub fn quantize_q4_k(x: &[f32], y: &mut [BlockQ4K]) {
    let p = Qkx2 {
        nmax: 15,
        rmin: -1.0,
        rdelta: 0.1,
        nstep: 20,
        use_mad: false,
    };
    for (b, x) in y.iter_mut().zip(x.chunks_exact(QK_K)) {
        let l = quantize_k45(x, &p, &mut b.scales, &mut b.d, &mut b.dmin);
        for c in 0..4 {
            for i in 0..32 {
                b.qs[32 * c + i] = l[64 * c + i] | (l[64 * c + i + 32] << 4);
            }
        }
    }
}

pub fn dequantize_q4_k(x: &[BlockQ4K], y: &mut [f32]) {
    for (b, y) in x.iter().zip(y.chunks_exact_mut(QK_K)) {
        let (d, min) = (b.d(), b.dmin());
        for c in 0..4 {
            let (sc1, m1) = scale_min_k4(2 * c, &b.scales);
            let (sc2, m2) = scale_min_k4(2 * c + 1, &b.scales);
            let (d1, m1, d2, m2) = (
                d * sc1 as f32,
                min * m1 as f32,
                d * sc2 as f32,
                min * m2 as f32,
            );
            for l in 0..32 {
                let q = b.qs[32 * c + l];
                y[64 * c + l] = d1 * (q & 0xF) as f32 - m1;
                y[64 * c + 32 + l] = d2 * (q >> 4) as f32 - m2;
            }
        }
    }
}

pub fn quantize_q5_k(x: &[f32], y: &mut [BlockQ5K]) {
    let p = Qkx2 {
        nmax: 31,
        rmin: -0.5,
        rdelta: 0.1,
        nstep: 15,
        use_mad: false,
    };
    for (b, x) in y.iter_mut().zip(x.chunks_exact(QK_K)) {
        let l = quantize_k45(x, &p, &mut b.scales, &mut b.d, &mut b.dmin);
        b.qh = [0; 32];
        for c in 0..4 {
            for i in 0..32 {
                let (mut l1, mut l2) = (l[64 * c + i], l[64 * c + i + 32]);
                if l1 > 15 {
                    l1 -= 16;
                    b.qh[i] |= 1 << (2 * c);
                }
                if l2 > 15 {
                    l2 -= 16;
                    b.qh[i] |= 2 << (2 * c);
                }
                b.qs[32 * c + i] = l1 | (l2 << 4);
            }
        }
    }
}

pub fn dequantize_q5_k(x: &[BlockQ5K], y: &mut [f32]) {
    for (b, y) in x.iter().zip(y.chunks_exact_mut(QK_K)) {
        let (d, min) = (b.d(), b.dmin());
        for c in 0..4 {
            let (sc1, m1) = scale_min_k4(2 * c, &b.scales);
            let (sc2, m2) = scale_min_k4(2 * c + 1, &b.scales);
            let (d1, m1, d2, m2) = (
                d * sc1 as f32,
                min * m1 as f32,
                d * sc2 as f32,
                min * m2 as f32,
            );
            let (u1, u2) = (1u8 << (2 * c), 2u8 << (2 * c));
            for l in 0..32 {
                let q = b.qs[32 * c + l];
                let h1 = if b.qh[l] & u1 != 0 { 16 } else { 0 };
                let h2 = if b.qh[l] & u2 != 0 { 16 } else { 0 };
                y[64 * c + l] = d1 * ((q & 0xF) + h1) as f32 - m1;
                y[64 * c + 32 + l] = d2 * ((q >> 4) + h2) as f32 - m2;
            }
        }
    }
}
