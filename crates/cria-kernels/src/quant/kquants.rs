//! Scalar reference quantize / dequantize of Q2_K, Q3_K, Q6_K and Q8_K (ggml's `*_ref` functions, without
//! importance weights). Q4_K / Q5_K live in `k45.rs`.

#![allow(clippy::needless_range_loop)] // index loops mirror ggml's reference code, line for line

use super::blocks::*;
use super::kmake::{Qkx2, make_q3_quants, make_qkx2_quants, make_qx_quants, nearest_int};

const GROUP_MAX_EPS: f32 = 1e-15;

/// Packs 256 2-bit values the way Q2_K / Q3_K store them: per 128, byte l holds l, l+32, l+64, l+96.
fn pack2(l: &[u8; QK_K], qs: &mut [u8; 64]) {
    for j in (0..QK_K).step_by(128) {
        for i in 0..32 {
            qs[j / 4 + i] =
                l[j + i] | (l[j + i + 32] << 2) | (l[j + i + 64] << 4) | (l[j + i + 96] << 6);
        }
    }
}

/// The 2-bit value of element `128n + 32j + l` (n half, j shift, l 0..32).
#[inline]
fn q2_at(qs: &[u8; 64], n: usize, j: usize, l: usize) -> u8 {
    (qs[32 * n + l] >> (2 * j)) & 3
}

pub fn quantize_q2_k(x: &[f32], y: &mut [BlockQ2K]) {
    let p = Qkx2 {
        nmax: 3,
        rmin: -0.5,
        rdelta: 0.1,
        nstep: 15,
        use_mad: true,
    };
    for (b, x) in y.iter_mut().zip(x.chunks_exact(QK_K)) {
        let mut l = [0u8; QK_K];
        let (mut scales, mut mins) = ([0f32; 16], [0f32; 16]);
        let (mut max_scale, mut max_min) = (0f32, 0f32);
        for j in 0..16 {
            let xs = &x[16 * j..16 * j + 16];
            let w: [f32; 16] = std::array::from_fn(|i| xs[i].abs());
            (scales[j], mins[j]) = make_qkx2_quants(&p, xs, &w, &mut l[16 * j..16 * j + 16]);
            max_scale = max_scale.max(scales[j]);
            max_min = max_min.max(mins[j]);
        }
        b.scales = [0; 16];
        b.d = f16_bytes(0.0);
        if max_scale > 0.0 {
            let iscale = 15.0 / max_scale;
            for j in 0..16 {
                b.scales[j] = nearest_int(iscale * scales[j]) as u8;
            }
            b.d = f16_bytes(max_scale / 15.0);
        }
        b.dmin = f16_bytes(0.0);
        if max_min > 0.0 {
            let iscale = 15.0 / max_min;
            for j in 0..16 {
                b.scales[j] |= (nearest_int(iscale * mins[j]) << 4) as u8;
            }
            b.dmin = f16_bytes(max_min / 15.0);
        }
        for j in 0..16 {
            let d = b.d() * (b.scales[j] & 0xF) as f32;
            if d == 0.0 {
                continue;
            }
            let dm = b.dmin() * (b.scales[j] >> 4) as f32;
            for i in 0..16 {
                l[16 * j + i] = nearest_int((x[16 * j + i] + dm) / d).clamp(0, 3) as u8;
            }
        }
        pack2(&l, &mut b.qs);
    }
}

pub fn dequantize_q2_k(x: &[BlockQ2K], y: &mut [f32]) {
    for (b, y) in x.iter().zip(y.chunks_exact_mut(QK_K)) {
        let (d, min) = (b.d(), b.dmin());
        for n in 0..2 {
            for j in 0..4 {
                for l in 0..32 {
                    let sc = b.scales[8 * n + 2 * j + l / 16];
                    let (dl, ml) = (d * (sc & 0xF) as f32, min * (sc >> 4) as f32);
                    y[128 * n + 32 * j + l] = dl * q2_at(&b.qs, n, j, l) as f32 - ml;
                }
            }
        }
    }
}

/// Packs 16 6-bit Q3_K scales (already + 32) into 12 bytes.
fn pack_q3k_scales(ls: &[i32; 16]) -> [u8; 12] {
    let mut s = [0u8; 12];
    for (j, &l) in ls.iter().enumerate() {
        if j < 8 {
            s[j] = (l & 0xF) as u8;
        } else {
            s[j - 8] |= ((l & 0xF) << 4) as u8;
        }
        s[j % 4 + 8] |= ((l >> 4) << (2 * (j / 4))) as u8;
    }
    s
}

pub fn quantize_q3_k(x: &[f32], y: &mut [BlockQ3K]) {
    for (b, x) in y.iter_mut().zip(x.chunks_exact(QK_K)) {
        let mut l = [0i8; QK_K];
        let mut scales = [0f32; 16];
        let (mut max_scale, mut amax) = (0f32, 0f32);
        for j in 0..16 {
            scales[j] = make_q3_quants(4, &x[16 * j..16 * j + 16], &mut l[16 * j..16 * j + 16]);
            if scales[j].abs() > amax {
                amax = scales[j].abs();
                max_scale = scales[j];
            }
        }
        b.scales = [0; 12];
        b.d = f16_bytes(0.0);
        if max_scale != 0.0 {
            let iscale = -32.0 / max_scale;
            let mut ls = [0i32; 16];
            for j in 0..16 {
                // ggml stores nearest_int into an int8_t before clamping.
                ls[j] = (nearest_int(iscale * scales[j]) as i8 as i32).clamp(-32, 31) + 32;
            }
            b.scales = pack_q3k_scales(&ls);
            b.d = f16_bytes(1.0 / iscale);
        }
        let sc = q3k_scales(&b.scales);
        for j in 0..16 {
            let d = b.d() * sc[j] as f32;
            if d == 0.0 {
                continue;
            }
            for i in 0..16 {
                l[16 * j + i] = (nearest_int(x[16 * j + i] / d).clamp(-4, 3) + 4) as i8;
            }
        }
        let mut lu = [0u8; QK_K];
        b.hmask = [0; 32];
        for j in 0..QK_K {
            let mut v = l[j] as u8;
            if v > 3 {
                b.hmask[j % 32] |= 1 << (j / 32);
                v -= 4;
            }
            lu[j] = v;
        }
        pack2(&lu, &mut b.qs);
    }
}

pub fn dequantize_q3_k(x: &[BlockQ3K], y: &mut [f32]) {
    for (b, y) in x.iter().zip(y.chunks_exact_mut(QK_K)) {
        let d_all = b.d();
        let sc = q3k_scales(&b.scales);
        for n in 0..2 {
            for j in 0..4 {
                let m = 1u8 << (4 * n + j);
                for l in 0..32 {
                    let dl = d_all * sc[8 * n + 2 * j + l / 16] as f32;
                    let low = if b.hmask[l] & m != 0 { 0 } else { 4 };
                    let q = q2_at(&b.qs, n, j, l) as i32 - low;
                    y[128 * n + 32 * j + l] = dl * q as f32;
                }
            }
        }
    }
}

pub fn quantize_q6_k(x: &[f32], y: &mut [BlockQ6K]) {
    for (b, x) in y.iter_mut().zip(x.chunks_exact(QK_K)) {
        let mut l = [0i8; QK_K];
        let mut scales = [0f32; 16];
        let (mut max_scale, mut max_abs) = (0f32, 0f32);
        for ib in 0..16 {
            scales[ib] = make_qx_quants(
                32,
                &x[16 * ib..16 * ib + 16],
                &mut l[16 * ib..16 * ib + 16],
                1,
            );
            if scales[ib].abs() > max_abs {
                max_abs = scales[ib].abs();
                max_scale = scales[ib];
            }
        }
        if max_abs < GROUP_MAX_EPS {
            *b = bytemuck::Zeroable::zeroed();
            continue;
        }
        let iscale = -128.0 / max_scale;
        b.d = f16_bytes(1.0 / iscale);
        for ib in 0..16 {
            b.scales[ib] = nearest_int(iscale * scales[ib]).min(127) as i8;
        }
        for j in 0..16 {
            let d = b.d() * b.scales[j] as f32;
            if d == 0.0 {
                continue;
            }
            for i in 0..16 {
                l[16 * j + i] = (nearest_int(x[16 * j + i] / d).clamp(-32, 31) + 32) as i8;
            }
        }
        pack_q6k(&l, b);
    }
}

fn pack_q6k(l: &[i8; QK_K], b: &mut BlockQ6K) {
    for h in 0..2 {
        let (j, ql, qh) = (128 * h, 64 * h, 32 * h);
        for i in 0..32 {
            let q = |k: usize| l[j + i + 32 * k] as u8;
            b.ql[ql + i] = (q(0) & 0xF) | ((q(2) & 0xF) << 4);
            b.ql[ql + i + 32] = (q(1) & 0xF) | ((q(3) & 0xF) << 4);
            b.qh[qh + i] =
                (q(0) >> 4) | ((q(1) >> 4) << 2) | ((q(2) >> 4) << 4) | ((q(3) >> 4) << 6);
        }
    }
}

/// The 6-bit value (0..64) of element `128h + 32k + l` of a Q6_K block.
#[inline]
pub(crate) fn q6_at(b: &BlockQ6K, h: usize, k: usize, l: usize) -> i32 {
    let ql = b.ql[64 * h + l + 32 * (k & 1)];
    let low = if k < 2 { ql & 0xF } else { ql >> 4 };
    let high = (b.qh[32 * h + l] >> (2 * k)) & 3;
    (low | (high << 4)) as i32
}

pub fn dequantize_q6_k(x: &[BlockQ6K], y: &mut [f32]) {
    for (b, y) in x.iter().zip(y.chunks_exact_mut(QK_K)) {
        let d = b.d();
        for h in 0..2 {
            for k in 0..4 {
                for l in 0..32 {
                    let sc = b.scales[8 * h + l / 16 + 2 * k] as f32;
                    y[128 * h + 32 * k + l] = d * sc * (q6_at(b, h, k, l) - 32) as f32;
                }
            }
        }
    }
}

/// Q8_K reference: scale −127/max (max = signed value of largest magnitude), round half to even.
pub fn quantize_q8_k(x: &[f32], y: &mut [BlockQ8K]) {
    for (b, x) in y.iter_mut().zip(x.chunks_exact(QK_K)) {
        let (mut amax, mut max) = (0f32, 0f32);
        for &v in x {
            if v.abs() > amax {
                amax = v.abs();
                max = v;
            }
        }
        if amax == 0.0 {
            *b = bytemuck::Zeroable::zeroed();
            continue;
        }
        let iscale = -127.0 / max;
        for (q, &v) in b.qs.iter_mut().zip(x) {
            *q = nearest_int(iscale * v).min(127) as i8;
        }
        for j in 0..16 {
            let s: i32 = b.qs[16 * j..16 * j + 16].iter().map(|&q| q as i32).sum();
            b.bsums[2 * j..2 * j + 2].copy_from_slice(&(s as i16).to_le_bytes());
        }
        b.d = (1.0 / iscale).to_le_bytes();
    }
}

pub fn dequantize_q8_k(x: &[BlockQ8K], y: &mut [f32]) {
    for (b, y) in x.iter().zip(y.chunks_exact_mut(QK_K)) {
        let d = b.d();
        for (y, &q) in y.iter_mut().zip(&b.qs) {
            *y = q as f32 * d;
        }
    }
}
