//! The summation order of Cria's repacked x86 kernels, on a plain row-major row: the definition the packed
//! kernels are held to bit for bit, for every token of every batch. It is llama.cpp's repacked `gemm` order
//! (`arch/x86/repack.cpp`: `q4_0_8x8_q8_0`, `q4_K_8x8_q8_K`, the 256- and 512-bit bodies alike). Integer
//! sums are exact, so only the float steps matter:
//! - Q4_0: per block of 32, `acc = fma(float(Σ (q − 8)·a), d_w·d_a, acc)`;
//! - Q4_K: per pair of sub-blocks (64 elements), `acc = fma(float(Σ_s sc_s·Σ q·a), d·d_a, acc)` and
//!   `acc_min = fma(float(Σ_s m_s·(bsum_2s + bsum_2s+1)), dmin·d_a, acc_min)`; the result `acc − acc_min`.
//!
//! Where Cria departs from llama.cpp: llama.cpp runs only the first `n − n % 4` tokens of an `n`-token
//! matmul through `gemm`; the rest, and a decode step, go through `gemv`, whose Q4_K order has one `fma` per
//! accumulator per super-block instead of per pair of sub-blocks. Cria keeps the `gemm` order for every
//! token, decode included, so a token's logits do not depend on how many tokens share its step (the prompt
//! cache resumes a prompt at any block, and must give the bits of a cold run). The `gemm` order rather than
//! the `gemv` one keeps prefill, where llama.cpp's reference logits come from, on llama.cpp's bits for all but
//! a batch's last `n % 4` tokens; the `gemv` order moved enough prefill logits that one of gemma's confident
//! positions flipped under `CRIA_ISA=avx2`. Decode pays three more `fma` pairs per super-block. For Q4_0
//! both of llama.cpp's kernels have this order.
//! (The non-repacked order, with eight float lanes and a horizontal sum, is `dot::scalar`'s.)

use crate::GgmlType;
use crate::quant::blocks::{BlockQ4_0, BlockQ4K, BlockQ8_0, BlockQ8K, scale_min_k4};
use bytemuck::cast_slice as c;

/// dot(weight row `w` of `ty` (Q4_0 or Q4_K, row-major), activation row `a` in `activation_type(ty)`) in
/// the repacked order, for any token of any batch.
///
/// # Panics
/// For another format (a caller's mistake: only [`super::pack`]'s formats have this order).
pub fn dot(ty: GgmlType, w: &[u8], a: &[u8]) -> f32 {
    match ty {
        GgmlType::Q4_0 => q4_0(c(w), c(a)),
        GgmlType::Q4_K => q4_k(c(w), c(a)),
        _ => panic!("packed::reference::dot: {ty:?} has no repacked order"),
    }
}

fn q4_0(w: &[BlockQ4_0], a: &[BlockQ8_0]) -> f32 {
    let mut acc = 0f32;
    for (w, a) in w.iter().zip(a) {
        let isum: i32 = (0..16)
            .map(|l| {
                let (lo, hi) = ((w.qs[l] & 0xF) as i32 - 8, (w.qs[l] >> 4) as i32 - 8);
                lo * a.qs[l] as i32 + hi * a.qs[l + 16] as i32
            })
            .sum();
        acc = (isum as f32).mul_add(w.d() * a.d(), acc);
    }
    acc
}

/// Q4_K with one `fma` per accumulator and pair of sub-blocks.
fn q4_k(w: &[BlockQ4K], a: &[BlockQ8K]) -> f32 {
    let (mut acc, mut acc_min) = (0f32, 0f32);
    for (w, a) in w.iter().zip(a) {
        let (mut isum, mut msum) = (0i32, 0i32);
        for s in 0..8 {
            let (sc, m) = scale_min_k4(s, &w.scales);
            let (p, shift) = (s / 2, 4 * (s % 2));
            let dot: i32 = (0..32)
                .map(|l| ((w.qs[32 * p + l] >> shift) & 0xF) as i32 * a.qs[32 * s + l] as i32)
                .sum();
            isum += sc as i32 * dot;
            msum += m as i32 * (a.bsum(2 * s) as i32 + a.bsum(2 * s + 1) as i32);
            if s % 2 == 1 {
                acc = (isum as f32).mul_add(w.d() * a.d(), acc);
                acc_min = (msum as f32).mul_add(w.dmin() * a.d(), acc_min);
                (isum, msum) = (0, 0);
            }
        }
    }
    acc - acc_min
}
