//! Every kernel path of the IQ, ternary and MXFP4 formats against the scalar reference, bit for bit (the
//! reference sums in llama.cpp's x86 order: tests/iq_dot_llama.rs), on random blocks, random sizes and
//! activations with outliers; a decode step gives a batch's bits. NEON sums in its own order (as llama.cpp's
//! NEON kernels do), so there a tolerance holds instead.

#![allow(clippy::unwrap_used)] // tests fail loudly on bad fixtures

use cria_kernels::GgmlType;
use cria_kernels::dot::{matmul_rows_with, matvec_rows_with, scalar};
use cria_kernels::isa::Isa;
use cria_kernels::quant::iq_blocks::random_blocks;
use cria_kernels::quant::{activation_type, is_read_only, quantize_activation_with};
use proptest::prelude::*;

fn formats() -> Vec<GgmlType> {
    GgmlType::ALL
        .into_iter()
        .filter(|&t| is_read_only(t))
        .collect()
}

/// Normal-ish values with a few outliers `outlier` times larger.
fn activation(n: usize, seed: u64, outlier: f32) -> Vec<f32> {
    let mut s = seed | 1;
    let mut next = move || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    };
    let mut x: Vec<f32> = (0..n).map(|_| next() + next() + next()).collect();
    for c in [3usize, 77, 200, 511] {
        if c < n {
            x[c] *= outlier;
        }
    }
    x
}

fn check(ty: GgmlType, blocks: usize, rows: usize, outlier: f32, seed: u64) {
    let n = blocks * ty.block_size();
    let rb = ty.row_bytes(n).unwrap();
    let w = random_blocks(ty, blocks * rows, seed);
    let at = activation_type(ty);
    let ab = at.row_bytes(n).unwrap();
    let n_tok = 3;
    for isa in Isa::available() {
        let mut acts = vec![0u8; ab * n_tok];
        for (t, a) in acts.chunks_exact_mut(ab).enumerate() {
            quantize_activation_with(isa, at, &activation(n, seed + t as u64, outlier), a);
        }
        let mut batch = vec![0f32; rows * n_tok];
        matmul_rows_with(isa, ty, &w, n, &acts, n_tok, 0..rows, &mut batch, rows);
        for (t, a) in acts.chunks_exact(ab).enumerate() {
            let mut one = vec![0f32; rows];
            matvec_rows_with(isa, ty, &w, n, a, 0..rows, &mut one);
            for r in 0..rows {
                let s = scalar::dot(ty, &w[r * rb..(r + 1) * rb], a);
                let (o, b) = (one[r], batch[t * rows + r]);
                assert_eq!(
                    o.to_bits(),
                    b.to_bits(),
                    "{isa:?} {ty:?} n={n}: decode {o} vs batch {b}"
                );
                if isa == Isa::Neon {
                    let tol = 1e-5 * s.abs().max(1.0) * (n as f32).sqrt();
                    assert!(
                        (o - s).abs() <= tol,
                        "{isa:?} {ty:?} n={n}: {o} vs scalar {s}"
                    );
                } else {
                    assert_eq!(
                        o.to_bits(),
                        s.to_bits(),
                        "{isa:?} {ty:?} n={n}: {o} vs scalar {s}"
                    );
                }
            }
        }
    }
}

#[test]
fn every_path_gives_the_reference_bits_on_model_widths() {
    for ty in formats() {
        for n in [576, 1024, 2048] {
            if n % ty.block_size() == 0 {
                check(ty, n / ty.block_size(), 9, 300.0, n as u64 + ty.id() as u64);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(if cfg!(target_arch = "aarch64") { 12 } else { 48 }))]

    #[test]
    fn every_path_gives_the_reference_bits(
        ty in proptest::sample::select(formats()),
        blocks in 1usize..10,
        rows in 1usize..7,
        outlier in prop_oneof![Just(1.0f32), 10.0f32..3000.0],
        seed in any::<u64>(),
    ) {
        check(ty, blocks, rows, outlier, seed);
    }
}
