//! Reference dequantization of the IQ, ternary and MXFP4 formats: ggml's `dequantize_row_*` (and gguf-py's
//! `dequantize_blocks`, bit for bit: `tests/iq_dequant_gguf_py.rs`). Cria does not quantize to these
//! formats; they come from files.

use super::blocks::QK_K;
use super::iq_blocks::*;
use super::iq_unpack::{self, Unpacked};

fn each_block<B>(blocks: &[B], dst: &mut [f32], n: usize, f: impl Fn(&B, &mut [f32])) {
    for (b, y) in blocks.iter().zip(dst.chunks_exact_mut(n)) {
        f(b, y);
    }
}

pub(crate) fn dequantize_iq4_nl(x: &[BlockIQ4NL], dst: &mut [f32]) {
    each_block(x, dst, 32, |b, y| {
        let (d, q) = (b.d(), iq_unpack::codebook32(&b.qs, &KVALUES_IQ4NL));
        y.iter_mut().zip(q).for_each(|(y, q)| *y = d * q as f32);
    });
}

pub(crate) fn dequantize_mxfp4(x: &[BlockMXFP4], dst: &mut [f32]) {
    each_block(x, dst, 32, |b, y| {
        let (d, q) = (b.d(), iq_unpack::codebook32(&b.qs, &KVALUES_MXFP4));
        y.iter_mut().zip(q).for_each(|(y, q)| *y = q as f32 * d);
    });
}

pub(crate) fn dequantize_iq4_xs(x: &[BlockIQ4XS], dst: &mut [f32]) {
    each_block(x, dst, QK_K, |b, y| {
        let (d, u) = (b.d(), iq_unpack::iq4_xs(b));
        scaled(&u, y, |ls| d * (ls as i32 - 32) as f32);
    });
}

pub(crate) fn dequantize_tq1_0(x: &[BlockTQ1_0], dst: &mut [f32]) {
    each_block(x, dst, QK_K, |b, y| ternary(&iq_unpack::tq1_0(b), b.d(), y));
}

pub(crate) fn dequantize_tq2_0(x: &[BlockTQ2_0], dst: &mut [f32]) {
    each_block(x, dst, QK_K, |b, y| ternary(&iq_unpack::tq2_0(b), b.d(), y));
}

fn ternary(q: &[u8; 256], d: f32, y: &mut [f32]) {
    y.iter_mut()
        .zip(q)
        .for_each(|(y, &q)| *y = (q as i32 - 1) as f32 * d);
}

/// y[e] = db(ls of e's 16) · q[e], db computed once per 16 as ggml does.
fn scaled(u: &Unpacked, y: &mut [f32], db: impl Fn(u8) -> f32) {
    for (j, y16) in y.chunks_exact_mut(16).enumerate() {
        let db = db(u.ls[j]);
        for (y, &q) in y16.iter_mut().zip(&u.q[16 * j..16 * j + 16]) {
            *y = db * q as f32;
        }
    }
}

/// ggml's `0.5 + ls` scale of the IQ2 (`k` = 0.25) and IQ3_XXS (`k` = 0.5) formats.
fn half_step(d: f32, k: f32) -> impl Fn(u8) -> f32 {
    move |ls| d * (0.5 + ls as f32) * k
}

pub(crate) fn dequantize_iq2_xxs(x: &[BlockIQ2XXS], dst: &mut [f32]) {
    each_block(x, dst, QK_K, |b, y| {
        scaled(&iq_unpack::iq2_xxs(b), y, half_step(b.d(), 0.25))
    });
}

pub(crate) fn dequantize_iq2_xs(x: &[BlockIQ2XS], dst: &mut [f32]) {
    each_block(x, dst, QK_K, |b, y| {
        scaled(&iq_unpack::iq2_xs(b), y, half_step(b.d(), 0.25))
    });
}

pub(crate) fn dequantize_iq2_s(x: &[BlockIQ2S], dst: &mut [f32]) {
    each_block(x, dst, QK_K, |b, y| {
        scaled(&iq_unpack::iq2_s(b), y, half_step(b.d(), 0.25))
    });
}

pub(crate) fn dequantize_iq3_xxs(x: &[BlockIQ3XXS], dst: &mut [f32]) {
    each_block(x, dst, QK_K, |b, y| {
        scaled(&iq_unpack::iq3_xxs(b), y, half_step(b.d(), 0.5))
    });
}

pub(crate) fn dequantize_iq3_s(x: &[BlockIQ3S], dst: &mut [f32]) {
    each_block(x, dst, QK_K, |b, y| {
        let d = b.d();
        scaled(&iq_unpack::iq3_s(b), y, |ls| d * (1 + 2 * ls as i32) as f32)
    });
}

/// The IQ1 formats: dl · (grid + ±1/8), dl = d · (2·ls + 1).
fn iq1(u: &Unpacked, d: f32, y: &mut [f32]) {
    const DELTA: f32 = 0.125;
    for (e, y) in y.iter_mut().enumerate() {
        let dl = d * (2 * u.ls[e / 16] as i32 + 1) as f32;
        let delta = if u.delta_neg & (1 << (e / 8)) != 0 {
            -DELTA
        } else {
            DELTA
        };
        *y = dl * (u.q[e] as f32 + delta);
    }
}

pub(crate) fn dequantize_iq1_s(x: &[BlockIQ1S], dst: &mut [f32]) {
    each_block(x, dst, QK_K, |b, y| iq1(&iq_unpack::iq1_s(b), b.d(), y));
}

pub(crate) fn dequantize_iq1_m(x: &[BlockIQ1M], dst: &mut [f32]) {
    each_block(x, dst, QK_K, |b, y| iq1(&iq_unpack::iq1_m(b), b.d(), y));
}
