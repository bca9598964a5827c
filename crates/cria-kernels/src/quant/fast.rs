//! Fast activation quantizers, with llama.cpp's x86 numerics: Q8_0 / Q8_1 scale by 127/amax and round half to
//! even (d = amax/127 stored as f16; Q8_1's s = f16(d·Σq)); Q8_K is its reference (scale −127/max, round half
//! to even). F32 activations are the floats' bytes.

use super::blocks::*;
use super::kquants::quantize_q8_k;
use crate::GgmlType;
use crate::isa::{self, Isa};

/// Quantizes one activation row `x` into `act_ty` (one of Q8_0, Q8_1, Q8_K, F32; see
/// [`super::activation_type`]). `dst` must hold exactly `act_ty.row_bytes(x.len())` bytes.
///
/// # Panics
/// If `act_ty` is not an activation format or the lengths do not match: a programming error of the caller.
pub fn quantize_activation(act_ty: GgmlType, x: &[f32], dst: &mut [u8]) {
    quantize_activation_with(isa::active(), act_ty, x, dst)
}

/// [`quantize_activation`] on a chosen path (tests compare every path one process can run).
///
/// # Panics
/// As [`quantize_activation`], and if this CPU lacks `isa`.
pub fn quantize_activation_with(isa: Isa, act_ty: GgmlType, x: &[f32], dst: &mut [u8]) {
    let ok = super::check_row(act_ty, x.len(), dst.len());
    assert!(ok.is_ok(), "quantize_activation: {ok:?}");
    match act_ty {
        GgmlType::Q8_0 => q8_blocks(
            isa,
            x,
            bytemuck::cast_slice_mut::<u8, BlockQ8_0>(dst),
            |b, d, qs, _| {
                b.d = f16_bytes(d);
                b.qs = qs;
            },
        ),
        GgmlType::Q8_1 => q8_blocks(
            isa,
            x,
            bytemuck::cast_slice_mut::<u8, BlockQ8_1>(dst),
            |b, d, qs, sum| {
                b.d = f16_bytes(d);
                b.s = f16_bytes(d * sum as f32);
                b.qs = qs;
            },
        ),
        GgmlType::Q8_K => q8k_blocks(isa, x, bytemuck::cast_slice_mut(dst)),
        GgmlType::F32 => {
            for (d, s) in dst.chunks_exact_mut(4).zip(x) {
                d.copy_from_slice(&s.to_le_bytes());
            }
        }
        other => panic!("quantize_activation: {other:?} is not an activation format"),
    }
}

fn q8k_blocks(isa: Isa, x: &[f32], y: &mut [BlockQ8K]) {
    #[cfg(target_arch = "x86_64")]
    if matches!(isa, Isa::Avx2 | Isa::Avx512) {
        for (b, x) in y.iter_mut().zip(x.chunks_exact(QK_K)) {
            let (d, qs, sums) = crate::dot::x86::q8k_block_avx2(x);
            b.d = d.to_le_bytes();
            b.qs = qs;
            for (j, s) in sums.iter().enumerate() {
                b.bsums[2 * j..2 * j + 2].copy_from_slice(&s.to_le_bytes());
            }
        }
        return;
    }
    let _ = isa;
    quantize_q8_k(x, y)
}

fn q8_blocks<B>(
    isa: Isa,
    x: &[f32],
    y: &mut [B],
    mut store: impl FnMut(&mut B, f32, [i8; 32], i32),
) {
    for (b, x) in y.iter_mut().zip(x.chunks_exact(QK)) {
        let (d, qs, sum) = q8_block(isa, x);
        store(b, d, qs, sum);
    }
}

/// One block of 32: (d, quants, Σquants).
fn q8_block(isa: Isa, x: &[f32]) -> (f32, [i8; 32], i32) {
    #[cfg(target_arch = "x86_64")]
    if matches!(isa, Isa::Avx2 | Isa::Avx512) {
        return crate::dot::x86::q8_block_avx2(x);
    }
    let _ = isa;
    q8_block_scalar(x)
}

pub(crate) fn q8_block_scalar(x: &[f32]) -> (f32, [i8; 32], i32) {
    let amax = x.iter().fold(0.0f32, |a, v| a.max(v.abs()));
    let d = amax / 127.0;
    let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
    let mut qs = [0i8; 32];
    let mut sum = 0;
    for (q, &v) in qs.iter_mut().zip(x) {
        *q = (v * id).round_ties_even() as i8;
        sum += *q as i32;
    }
    (d, qs, sum)
}
