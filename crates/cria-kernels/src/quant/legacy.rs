//! Scalar reference quantize / dequantize of the 32-element formats (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1),
//! following ggml's `quantize_row_*_ref` / `dequantize_row_*` operation for operation.

#![allow(clippy::needless_range_loop)] // index loops mirror ggml's reference code, line for line

use super::blocks::*;

/// (amax, the signed value that has it): the first of the largest magnitude, like ggml's loops.
fn signed_absmax(x: &[f32]) -> f32 {
    let (mut amax, mut max) = (0.0f32, 0.0f32);
    for &v in x {
        if amax < v.abs() {
            amax = v.abs();
            max = v;
        }
    }
    max
}

fn min_max(x: &[f32]) -> (f32, f32) {
    let (mut min, mut max) = (f32::MAX, -f32::MAX);
    for &v in x {
        if v < min {
            min = v;
        }
        if v > max {
            max = v;
        }
    }
    (min, max)
}

fn inv(d: f32) -> f32 {
    if d != 0.0 { 1.0 / d } else { 0.0 }
}

/// C's `(int8_t)(float)` then MIN(hi, ...) as ggml writes it (truncation toward zero).
fn trunc_q(v: f32, hi: i32) -> u8 {
    (v as i8 as i32).min(hi) as u8
}

pub fn quantize_q4_0(x: &[f32], y: &mut [BlockQ4_0]) {
    for (b, x) in y.iter_mut().zip(x.chunks_exact(QK)) {
        let d = signed_absmax(x) / -8.0;
        let id = inv(d);
        b.d = f16_bytes(d);
        for j in 0..16 {
            let lo = trunc_q(x[j] * id + 8.5, 15);
            let hi = trunc_q(x[j + 16] * id + 8.5, 15);
            b.qs[j] = lo | (hi << 4);
        }
    }
}

pub fn dequantize_q4_0(x: &[BlockQ4_0], y: &mut [f32]) {
    for (b, y) in x.iter().zip(y.chunks_exact_mut(QK)) {
        let d = b.d();
        for j in 0..16 {
            y[j] = ((b.qs[j] & 0xF) as i32 - 8) as f32 * d;
            y[j + 16] = ((b.qs[j] >> 4) as i32 - 8) as f32 * d;
        }
    }
}

pub fn quantize_q4_1(x: &[f32], y: &mut [BlockQ4_1]) {
    for (b, x) in y.iter_mut().zip(x.chunks_exact(QK)) {
        let (min, max) = min_max(x);
        let d = (max - min) / 15.0;
        let id = inv(d);
        b.d = f16_bytes(d);
        b.m = f16_bytes(min);
        for j in 0..16 {
            let lo = trunc_q((x[j] - min) * id + 0.5, 15);
            let hi = trunc_q((x[j + 16] - min) * id + 0.5, 15);
            b.qs[j] = lo | (hi << 4);
        }
    }
}

pub fn dequantize_q4_1(x: &[BlockQ4_1], y: &mut [f32]) {
    for (b, y) in x.iter().zip(y.chunks_exact_mut(QK)) {
        let (d, m) = (b.d(), b.m());
        for j in 0..16 {
            y[j] = (b.qs[j] & 0xF) as f32 * d + m;
            y[j + 16] = (b.qs[j] >> 4) as f32 * d + m;
        }
    }
}

/// Packs 32 5-bit values into (qs, qh).
fn pack5(q: &[u8; 32]) -> ([u8; 16], u32) {
    let mut qs = [0u8; 16];
    let mut qh = 0u32;
    for j in 0..16 {
        qs[j] = (q[j] & 0xF) | ((q[j + 16] & 0xF) << 4);
        qh |= (((q[j] & 0x10) >> 4) as u32) << j;
        qh |= (((q[j + 16] & 0x10) >> 4) as u32) << (j + 16);
    }
    (qs, qh)
}

/// The 32 5-bit values of (qs, qh).
pub(crate) fn unpack5(qs: &[u8; 16], qh: u32) -> [u8; 32] {
    let mut q = [0u8; 32];
    for j in 0..16 {
        q[j] = (qs[j] & 0xF) | ((((qh >> j) & 1) as u8) << 4);
        q[j + 16] = (qs[j] >> 4) | ((((qh >> (j + 16)) & 1) as u8) << 4);
    }
    q
}

pub fn quantize_q5_0(x: &[f32], y: &mut [BlockQ5_0]) {
    for (b, x) in y.iter_mut().zip(x.chunks_exact(QK)) {
        let d = signed_absmax(x) / -16.0;
        let id = inv(d);
        b.d = f16_bytes(d);
        let mut q = [0u8; 32];
        for (q, &v) in q.iter_mut().zip(x) {
            *q = trunc_q(v * id + 16.5, 31);
        }
        let (qs, qh) = pack5(&q);
        b.qs = qs;
        b.qh = qh.to_le_bytes();
    }
}

pub fn dequantize_q5_0(x: &[BlockQ5_0], y: &mut [f32]) {
    for (b, y) in x.iter().zip(y.chunks_exact_mut(QK)) {
        let d = b.d();
        for (y, q) in y.iter_mut().zip(unpack5(&b.qs, b.qh())) {
            *y = (q as i32 - 16) as f32 * d;
        }
    }
}

pub fn quantize_q5_1(x: &[f32], y: &mut [BlockQ5_1]) {
    for (b, x) in y.iter_mut().zip(x.chunks_exact(QK)) {
        let (min, max) = min_max(x);
        let d = (max - min) / 31.0;
        let id = inv(d);
        b.d = f16_bytes(d);
        b.m = f16_bytes(min);
        let mut q = [0u8; 32];
        for (q, &v) in q.iter_mut().zip(x) {
            // ggml: (uint8_t)(x + 0.5f), no clamp (the value is at most 31.5).
            *q = ((v - min) * id + 0.5) as u8;
        }
        let (qs, qh) = pack5(&q);
        b.qs = qs;
        b.qh = qh.to_le_bytes();
    }
}

pub fn dequantize_q5_1(x: &[BlockQ5_1], y: &mut [f32]) {
    for (b, y) in x.iter().zip(y.chunks_exact_mut(QK)) {
        let (d, m) = (b.d(), b.m());
        for (y, q) in y.iter_mut().zip(unpack5(&b.qs, b.qh())) {
            *y = q as f32 * d + m;
        }
    }
}

/// amax / 127 and the quants rounded half away from zero (C's `roundf`), as ggml's reference.
fn q8_scale_round(x: &[f32], qs: &mut [i8; 32]) -> f32 {
    let amax = x.iter().fold(0.0f32, |a, v| a.max(v.abs()));
    let d = amax / 127.0;
    let id = inv(d);
    for (q, &v) in qs.iter_mut().zip(x) {
        *q = (v * id).round() as i8;
    }
    d
}

pub fn quantize_q8_0(x: &[f32], y: &mut [BlockQ8_0]) {
    for (b, x) in y.iter_mut().zip(x.chunks_exact(QK)) {
        let d = q8_scale_round(x, &mut b.qs);
        b.d = f16_bytes(d);
    }
}

pub fn dequantize_q8_0(x: &[BlockQ8_0], y: &mut [f32]) {
    for (b, y) in x.iter().zip(y.chunks_exact_mut(QK)) {
        let d = b.d();
        for (y, &q) in y.iter_mut().zip(&b.qs) {
            *y = q as f32 * d;
        }
    }
}

pub fn quantize_q8_1(x: &[f32], y: &mut [BlockQ8_1]) {
    for (b, x) in y.iter_mut().zip(x.chunks_exact(QK)) {
        let d = q8_scale_round(x, &mut b.qs);
        let sum: i32 = b.qs.iter().map(|&q| q as i32).sum();
        b.d = f16_bytes(d);
        b.s = f16_bytes(sum as f32 * d);
    }
}

pub fn dequantize_q8_1(x: &[BlockQ8_1], y: &mut [f32]) {
    for (b, y) in x.iter().zip(y.chunks_exact_mut(QK)) {
        let d = b.d();
        for (y, &q) in y.iter_mut().zip(&b.qs) {
            *y = q as f32 * d;
        }
    }
}
