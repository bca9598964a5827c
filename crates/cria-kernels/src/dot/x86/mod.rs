//! x86-64 kernels: AVX2 (+FMA, F16C, AVX-VNNI when present) and AVX-512 (F/BW/VL, +VNNI when present).
//! Every kernel here is reached only through the tables below, which `dot` calls after checking that the CPU
//! supports the requested path; each table checks the extra features of its variant itself.

mod avx2;
mod avx512;
mod gemm512;
mod iq_avx2;
mod iq_avx512;
mod iq_tiled;
mod kernels;
mod tiled;
mod ymm_batch;
mod zmm_batch;
mod zmm_kmatvec;
mod zmm_matvec;
mod zmm_util;

#[cfg(test)]
mod decode_ab;

use super::{RowsFn, TiledFn};
use crate::GgmlType;
use crate::isa::Isa;
use std::sync::OnceLock;

/// AVX-VNNI for the 256-bit kernels: present, and not refused by `CRIA_ISA=avx2-novnni`.
pub(crate) fn has_avxvnni() -> bool {
    static V: OnceLock<bool> = OnceLock::new();
    *V.get_or_init(|| is_x86_feature_detected!("avxvnni") && !crate::isa::avxvnni_refused())
}

pub(crate) fn rows_kernel(isa: Isa, ty: GgmlType) -> Option<RowsFn> {
    if crate::quant::is_read_only(ty) {
        return iq_rows_kernel(isa, ty);
    }
    match isa {
        Isa::Avx512 if crate::isa::has_avx512_vnni() => avx512::vnni::rows_kernel(ty),
        Isa::Avx512 | Isa::Avx2 if has_avxvnni() => avx2::vnni::rows_kernel(ty),
        Isa::Avx512 | Isa::Avx2 => avx2::plain::rows_kernel(ty),
        _ => None,
    }
}

/// The IQ, ternary and MXFP4 formats: their own kernels (`iq_avx512.rs` for the 4-bit ones, `iq_avx2.rs`),
/// each with the scalar reference's bits.
fn iq_rows_kernel(isa: Isa, ty: GgmlType) -> Option<RowsFn> {
    match isa {
        Isa::Avx512 => iq_avx512::rows_kernel(ty).or_else(|| iq_avx2::rows_kernel(ty)),
        Isa::Avx2 => iq_avx2::rows_kernel(ty),
        _ => None,
    }
}

/// Token counts at which Q8_0 takes the AVX-VNNI small-batch kernel: at 2 or 3 tokens the tiled GEMM is as
/// fast, and prefill is left to the GEMMs (`ymm_batch::ab`).
const YMM_Q8_0_TOKENS: std::ops::RangeInclusive<usize> = 4..=8;

/// Token counts at which Q8_0 takes plain AVX2's small-batch kernel (`mb_q8_0_w16`): against the tiled GEMM
/// (`ymm_batch::ab`, in cache, load 9-11, three runs) 10% faster at 8 tokens, 0-9% slower at 4 (its pass
/// decoding is shared by fewer tokens); counts between were not measured.
const YMM_Q8_0_PLAIN_TOKENS: std::ops::RangeInclusive<usize> = 8..=8;

/// The kernel for `n_tok` ≥ 2 tokens where there is one faster than the tiled GEMM, with the one-token
/// kernel's bits: on AVX-512 VNNI `zmm_batch.rs` up to its `MAX_TOKENS` (a serving step's decoding
/// sequences); on AVX2 and AVX-VNNI `ymm_batch.rs`, for Q4_0, Q4_1, Q5_0 and Q5_1 at any count (faster than
/// the 2×4-tiled GEMM from 2 to 256 tokens) and for Q8_0 at [`YMM_Q8_0_TOKENS`] (AVX-VNNI) or
/// [`YMM_Q8_0_PLAIN_TOKENS`] (plain AVX2).
pub(crate) fn small_batch_kernel(isa: Isa, ty: GgmlType, n_tok: usize) -> Option<TiledFn> {
    let ymm = |table: fn(GgmlType) -> Option<TiledFn>, q8: std::ops::RangeInclusive<usize>| {
        table(ty).filter(|_| ty != GgmlType::Q8_0 || q8.contains(&n_tok))
    };
    match isa {
        Isa::Avx512 if crate::isa::has_avx512_vnni() => {
            (n_tok <= zmm_batch::MAX_TOKENS).then(|| zmm_batch::batch_kernel(ty))?
        }
        Isa::Avx512 | Isa::Avx2 if has_avxvnni() => ymm(avx2::vnni::batch_kernel, YMM_Q8_0_TOKENS),
        Isa::Avx512 | Isa::Avx2 => ymm(avx2::plain::batch_kernel, YMM_Q8_0_PLAIN_TOKENS),
        _ => None,
    }
}

/// The decode kernel for `ty` where there is one faster than the row and tiled kernels at one token (with
/// the same bits as the tiled kernel: `tests/dot_order.rs`). Q8_0 takes the prefetched row kernel
/// (`kmatvec_kernel`) on the 256-bit paths, and on AVX-512 for rows of [`WIDE_Q8_0_ROW`] bytes or more: with
/// both threads streaming from DRAM it read the 1B shape's Q8_0 matrices 10-30% faster than the 16-row zmm
/// and the 4-row `legacy_matvec!` passes (`decode_ab`, docs/KERNELS.md).
pub(crate) fn matvec_kernel(isa: Isa, ty: GgmlType) -> Option<RowsFn> {
    let zmm_mv = || match ty {
        GgmlType::Q8_0 => Some(q8_0_avx512 as RowsFn),
        _ => zmm_matvec::matvec_kernel(ty),
    };
    match isa {
        Isa::Avx512 if crate::isa::has_avx512_vnni() => zmm_mv()
            .or_else(|| zmm_kmatvec::matvec_kernel(ty))
            .or_else(|| avx512::vnni::kmatvec_kernel(ty))
            .or_else(|| avx512::vnni::matvec_kernel(ty)),
        Isa::Avx512 | Isa::Avx2 if has_avxvnni() => {
            avx2::vnni::kmatvec_kernel(ty).or_else(|| avx2::vnni::matvec_kernel(ty))
        }
        Isa::Avx512 | Isa::Avx2 => {
            avx2::plain::kmatvec_kernel(ty).or_else(|| avx2::plain::matvec_kernel(ty))
        }
        _ => None,
    }
}

/// Q8_0 rows (bytes) from which AVX-512's decode takes the prefetched row kernel: 64 blocks, the 1B shape's
/// narrowest. Narrower rows (gemma-3-270m's 640-wide output matrix, smollm2's 576) keep the 16-row zmm matvec,
/// which gemma's decode ran faster (alternated, loaded machine; the two were even in `decode_ab` at 640).
const WIDE_Q8_0_ROW: usize = 64 * 34;

/// AVX-512 VNNI's Q8_0 decode: the prefetched row kernel for wide rows, the zmm matvec for narrow ones.
fn q8_0_avx512(w: &[u8], w_row: usize, act: &[u8], out: &mut [f32]) {
    let k = if w_row >= WIDE_Q8_0_ROW {
        avx512::vnni::kmatvec_kernel(GgmlType::Q8_0)
    } else {
        zmm_matvec::matvec_kernel(GgmlType::Q8_0)
    };
    if let Some(k) = k {
        k(w, w_row, act, out);
    }
}

/// How far ahead (bytes) the 256-bit one-token K-quant kernels prefetch their weights: about what one
/// thread has in flight from DRAM (latency × its share of the bandwidth).
pub(crate) const PF_AHEAD: usize = 4096;

pub(crate) fn tiled_kernel(isa: Isa, ty: GgmlType) -> Option<TiledFn> {
    if crate::quant::is_read_only(ty) {
        // several tokens: rows unpacked once (iq_tiled.rs); one token takes the row kernels (dot::matvec_rows)
        return match isa {
            Isa::Avx512 | Isa::Avx2 => iq_tiled::tiled_kernel(ty),
            _ => None,
        };
    }
    match isa {
        // the 512-bit kernel gives the 256-bit one's bits (tested in gemm512)
        Isa::Avx512 if crate::isa::has_avx512_vnni() => {
            gemm512::tiled_kernel(ty).or_else(|| avx512::vnni::tiled_kernel(ty))
        }
        Isa::Avx512 | Isa::Avx2 if has_avxvnni() => avx2::vnni::tiled_kernel(ty),
        Isa::Avx512 | Isa::Avx2 => avx2::plain::tiled_kernel(ty),
        _ => None,
    }
}

/// One Q8_K block, as the reference quantizes it: (d, quants, sums of each 16).
///
/// # Panics
/// If the CPU lacks AVX2 (callers pass only paths `Isa::supported` accepted) or `x` is short of 256 floats.
pub(crate) fn q8k_block_avx2(x: &[f32]) -> (f32, [i8; 256], [i16; 16]) {
    assert!(Isa::Avx2.supported() && x.len() >= 256);
    // SAFETY: AVX2 was checked just above, and x holds at least 256 floats.
    unsafe { avx2::q8k_block(x) }
}

/// One Q8_0 / Q8_1 block with llama.cpp's AVX2 numerics: (d, quants, Σquants).
///
/// # Panics
/// If the CPU lacks AVX2 (callers pass only paths `Isa::supported` accepted).
pub(crate) fn q8_block_avx2(x: &[f32]) -> (f32, [i8; 32], i32) {
    assert!(Isa::Avx2.supported() && x.len() >= 32);
    // SAFETY: AVX2 was checked just above, and x holds at least 32 floats.
    unsafe { avx2::q8_block(x) }
}

#[cfg(test)]
mod tests {
    //! The variants `rows_kernel` may not pick on this CPU (plain AVX2 where AVX-VNNI exists) against scalar.
    use super::*;
    use crate::quant::{activation_type, quantize_activation_with, quantize_row};

    fn data(n: usize, seed: u32) -> Vec<f32> {
        crate::test_data::uniform(n, seed, 2.0)
    }

    /// Regression (session 12 sent Q8_0 decode to the prefetched row kernel by row width on AVX-512): on
    /// every path this CPU has, narrow and wide rows alike, decode's Q8_0 kernel gives the row kernel's bits.
    #[test]
    fn q8_0_decode_gives_the_row_kernels_bits_at_every_width() {
        let ty = GgmlType::Q8_0;
        for isa in [Isa::Avx2, Isa::Avx512]
            .into_iter()
            .filter(|i| i.supported())
        {
            let (Some(mv), Some(rows_k)) = (matvec_kernel(isa, ty), rows_kernel(isa, ty)) else {
                panic!("{isa:?}: no Q8_0 decode kernel");
            };
            for (cols, rows) in [(640, 37), (2016, 17), (2048, 33), (2112, 20)] {
                let rb = ty.row_bytes(cols).unwrap();
                let mut w = vec![0u8; rb * rows];
                for (r, row) in w.chunks_exact_mut(rb).enumerate() {
                    quantize_row(ty, &data(cols, r as u32), row).unwrap();
                }
                let mut a = vec![0u8; activation_type(ty).row_bytes(cols).unwrap()];
                quantize_activation_with(isa, activation_type(ty), &data(cols, 99), &mut a);
                let (mut got, mut want) = (vec![f32::NAN; rows], vec![f32::NAN; rows]);
                mv(&w, rb, &a, &mut got);
                rows_k(&w, rb, &a, &mut want);
                for r in 0..rows {
                    assert_eq!(
                        got[r].to_bits(),
                        want[r].to_bits(),
                        "{isa:?} {cols} cols row {r}"
                    );
                }
            }
        }
    }

    #[test]
    fn every_x86_variant_matches_scalar() {
        type Rows = fn(GgmlType) -> Option<RowsFn>;
        type Tiled = fn(GgmlType) -> Option<TiledFn>;
        let mut variants: Vec<(&str, Rows, Rows, Tiled)> = Vec::new();
        if Isa::Avx2.supported() {
            variants.push((
                "avx2",
                avx2::plain::rows_kernel,
                avx2::plain::matvec_kernel,
                avx2::plain::tiled_kernel,
            ));
        }
        if Isa::Avx2.supported() && has_avxvnni() {
            variants.push((
                "avxvnni",
                avx2::vnni::rows_kernel,
                avx2::vnni::matvec_kernel,
                avx2::vnni::tiled_kernel,
            ));
        }
        if Isa::Avx512.supported() && crate::isa::has_avx512_vnni() {
            variants.push((
                "avx512vnni",
                avx512::vnni::rows_kernel,
                avx512::vnni::matvec_kernel,
                avx512::vnni::tiled_kernel,
            ));
        }
        let (n, rows, n_tok) = (512, 9, 6);
        // the read-only IQ, ternary and MXFP4 formats: tests/iq_kernels.rs
        for ty in GgmlType::ALL
            .into_iter()
            .filter(|&t| crate::quant::can_quantize(t))
        {
            let rb = ty.row_bytes(n).unwrap();
            let mut w = vec![0u8; rb * rows];
            for (r, chunk) in w.chunks_exact_mut(rb).enumerate() {
                quantize_row(ty, &data(n, r as u32), chunk).unwrap();
            }
            let at = activation_type(ty);
            let ab = at.row_bytes(n).unwrap();
            let mut a = vec![0u8; ab * n_tok];
            for (t, chunk) in a.chunks_exact_mut(ab).enumerate() {
                quantize_activation_with(Isa::Scalar, at, &data(n, 99 + t as u32), chunk);
            }
            let want: Vec<f32> = (0..n_tok)
                .flat_map(|t| w.chunks_exact(rb).map(move |r| (t, r)))
                .map(|(t, r)| crate::dot::scalar::dot(ty, r, &a[t * ab..(t + 1) * ab]))
                .collect();
            for (name, rows_table, matvec_table, tiled_table) in &variants {
                if let Some(k) = rows_table(ty) {
                    let mut got = vec![0f32; rows];
                    k(&w, rb, &a[..ab], &mut got);
                    for (g, s) in got.iter().zip(&want) {
                        assert!(
                            (g - s).abs() <= 1e-4 * s.abs().max(1.0),
                            "{name} {ty:?}: {g} vs {s}"
                        );
                    }
                }
                if let (Some(mv), Some(k)) = (matvec_table(ty), tiled_table(ty)) {
                    // the decode kernel gives the tiled kernel's bits at one token (see tests/dot_order.rs)
                    let (mut got, mut tiled) = (vec![0f32; rows], vec![0f32; rows]);
                    mv(&w, rb, &a[..ab], &mut got);
                    k(&w, rb, &a[..ab], ab, 1, &mut tiled, rows);
                    for (g, t) in got.iter().zip(&tiled) {
                        assert_eq!(g.to_bits(), t.to_bits(), "{name} {ty:?} matvec: {g} vs {t}");
                    }
                }
                if let Some(k) = tiled_table(ty) {
                    let mut got = vec![0f32; rows * n_tok];
                    k(&w, rb, &a, ab, n_tok, &mut got, rows);
                    for (i, (g, s)) in got.iter().zip(&want).enumerate() {
                        let ok = (g - s).abs() <= 1e-4 * s.abs().max(1.0);
                        assert!(ok, "{name} {ty:?} tiled [{i}]: {g} vs {s}");
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod ab {
    //! A/B timing of the tiled variants on this CPU (ignored by default; timings, not a check):
    //! `cargo test --release -p cria-kernels --lib x86::ab -- --ignored --nocapture`.
    use super::*;
    use crate::quant::{activation_type, quantize_activation_with, quantize_row};
    use std::time::Instant;

    /// Plain AVX2 tile shapes (weight rows × tokens) against each other, for `LEGACY_TILE` / `K_TILE`:
    /// `cargo test --release -p cria-kernels --lib x86::ab::plain_tile_shapes -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn plain_tile_shapes_ab() {
        if !Isa::Avx2.supported() {
            return;
        }
        use avx2::plain::{gemm_q4_1, gemm_q4_k, gemm_q6_k, gemm_q8_0_ss};
        type Gemm = unsafe fn(&[u8], usize, &[u8], usize, usize, &mut [f32], usize);
        let (n, rows, n_tok) = (2048, 128, 64);
        let x: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
        let cases: [(GgmlType, [(&str, Gemm); 4]); 4] = [
            (
                GgmlType::Q4_1,
                [
                    ("2x4", gemm_q4_1::<2, 4>),
                    ("3x4", gemm_q4_1::<3, 4>),
                    ("4x4", gemm_q4_1::<4, 4>),
                    ("2x6", gemm_q4_1::<2, 6>),
                ],
            ),
            (
                GgmlType::Q8_0,
                [
                    ("2x4", gemm_q8_0_ss::<2, 4>),
                    ("4x2", gemm_q8_0_ss::<4, 2>),
                    ("1x8", gemm_q8_0_ss::<1, 8>),
                    ("3x4", gemm_q8_0_ss::<3, 4>),
                ],
            ),
            (
                GgmlType::Q4_K,
                [
                    ("1x8", gemm_q4_k::<1, 8>),
                    ("2x4", gemm_q4_k::<2, 4>),
                    ("4x4", gemm_q4_k::<4, 4>),
                    ("2x6", gemm_q4_k::<2, 6>),
                ],
            ),
            (
                GgmlType::Q6_K,
                [
                    ("1x8", gemm_q6_k::<1, 8>),
                    ("2x4", gemm_q6_k::<2, 4>),
                    ("4x4", gemm_q6_k::<4, 4>),
                    ("2x6", gemm_q6_k::<2, 6>),
                ],
            ),
        ];
        for (ty, kernels) in cases {
            let rb = ty.row_bytes(n).unwrap();
            let mut w = vec![0u8; rb * rows];
            quantize_row(ty, &x, &mut w[..rb]).unwrap();
            for r in 1..rows {
                w.copy_within(0..rb, r * rb);
            }
            let at = activation_type(ty);
            let ab = at.row_bytes(n).unwrap();
            let mut a = vec![0u8; ab * n_tok];
            for chunk in a.chunks_exact_mut(ab) {
                quantize_activation_with(Isa::Scalar, at, &x, chunk);
            }
            let mut out = vec![0f32; rows * n_tok];
            let mut best = [f64::MAX; 4];
            for _ in 0..20 {
                for (i, (_, k)) in kernels.iter().enumerate() {
                    let t = Instant::now();
                    // SAFETY: AVX2 checked above; the buffers hold rows × n_tok.
                    unsafe { k(&w, rb, &a, ab, n_tok, &mut out, rows) };
                    best[i] = best[i].min(t.elapsed().as_secs_f64());
                }
            }
            let line: Vec<String> = kernels
                .iter()
                .zip(best)
                .map(|((name, _), s)| format!("{name} {:.1}", (rows * n_tok * n) as f64 / s / 1e9))
                .collect();
            println!("{ty:?} plain AVX2 GMAC/s (best of 20): {}", line.join(", "));
        }
    }

    /// AVX2 decode (plain and, where present, AVX-VNNI): the row kernel against `legacy_matvec!` at several
    /// prefetch distances (bytes), one thread, GB/s of weights read from memory (matrices of the small models'
    /// and the 1B shape's widths, copies cycled through 256 MB so every call reads from DRAM), best of 5:
    /// `cargo test --release -p cria-kernels --lib x86::ab::plain_matvec -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn plain_matvec_ab() {
        if !Isa::Avx2.supported() {
            return;
        }
        type Mv = unsafe fn(&[u8], usize, &[u8], &mut [f32]);
        type Case = (&'static str, GgmlType, usize, [(&'static str, Mv); 5]);
        macro_rules! dists {
            ($m:ident, $f:ident) => {
                [
                    ("pf0", $m::$f::<0> as Mv),
                    ("pf4k", $m::$f::<4096> as Mv),
                    ("pf8k", $m::$f::<8192> as Mv),
                    ("pf16k", $m::$f::<16384> as Mv),
                    ("pf32k", $m::$f::<32768> as Mv),
                ]
            };
        }
        use avx2::{plain, vnni};
        let mut cases: Vec<Case> = vec![
            ("plain", GgmlType::Q4_1, 576, dists!(plain, mv_q4_1_at)),
            ("plain", GgmlType::Q5_0, 640, dists!(plain, mv_q5_0_at)),
            ("plain", GgmlType::Q4_0, 2048, dists!(plain, mv_q4_0_at)),
        ];
        if has_avxvnni() {
            cases.push(("vnni", GgmlType::Q4_1, 576, dists!(vnni, mv_q4_1_at)));
            cases.push(("vnni", GgmlType::Q8_0, 640, dists!(vnni, mv_q8_0_at)));
            cases.push(("vnni", GgmlType::Q8_0, 2048, dists!(vnni, mv_q8_0_at)));
        }
        for (name, ty, n, kernels) in cases {
            // 1536 rows: smollm2's gate / up matrices at 576 columns
            let mat_rows = 1536;
            let (w, a, rb) = crate::test_data::dram_matrix(ty, n, mat_rows);
            let rows_k = avx2::plain::rows_kernel(ty).unwrap();
            let mut out = vec![0f32; mat_rows];
            let mut best = [f64::MAX; 6];
            for _ in 0..5 {
                for (i, best) in best.iter_mut().enumerate() {
                    let t = Instant::now();
                    for m in w.chunks_exact(mat_rows * rb) {
                        match i {
                            0 => rows_k(m, rb, &a, &mut out),
                            // SAFETY: AVX2 was checked above, AVX-VNNI before its cases were added.
                            _ => unsafe { kernels[i - 1].1(m, rb, &a, &mut out) },
                        }
                    }
                    *best = best.min(t.elapsed().as_secs_f64());
                }
            }
            let gb = |s: f64| w.len() as f64 / s / 1e9;
            let line: Vec<String> = kernels
                .iter()
                .zip(&best[1..])
                .map(|((k, _), s)| format!("{k} {:.1}", gb(*s)))
                .collect();
            println!(
                "{name} {ty:?} {n} cols, GB/s from memory (best of 5): rows {:.1}, {}",
                gb(best[0]),
                line.join(", ")
            );
        }
    }

    #[test]
    #[ignore]
    fn tiled_variants_ab() {
        if !(Isa::Avx512.supported() && crate::isa::has_avx512_vnni()) {
            return;
        }
        let (n, rows, n_tok) = (2048, 256, 64);
        let x: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
        for ty in [
            GgmlType::Q4_1,
            GgmlType::Q8_0,
            GgmlType::Q5_0,
            GgmlType::Q4_K,
            GgmlType::Q6_K,
        ] {
            let rb = ty.row_bytes(n).unwrap();
            let mut w = vec![0u8; rb * rows];
            quantize_row(ty, &x, &mut w[..rb]).unwrap();
            for r in 1..rows {
                w.copy_within(0..rb, r * rb);
            }
            let at = activation_type(ty);
            let ab = at.row_bytes(n).unwrap();
            let mut a = vec![0u8; ab * n_tok];
            for chunk in a.chunks_exact_mut(ab) {
                quantize_activation_with(Isa::Scalar, at, &x, chunk);
            }
            let mut out = vec![0f32; rows * n_tok];
            let kernels = [
                ("ymm-avx2", avx2::plain::tiled_kernel(ty)),
                ("ymm-vnni", avx512::vnni::tiled_kernel(ty)),
            ];
            let mut best = [f64::MAX; 2];
            for _ in 0..40 {
                for (i, (_, k)) in kernels.iter().enumerate() {
                    let Some(k) = k else { continue };
                    let t = Instant::now();
                    k(&w, rb, &a, ab, n_tok, &mut out, rows);
                    best[i] = best[i].min(t.elapsed().as_secs_f64());
                }
            }
            let gf = |s: f64| 2.0 * (rows * n_tok * n) as f64 / s / 1e9;
            let line: Vec<String> = kernels
                .iter()
                .zip(best)
                .map(|((n, _), s)| format!("{n} {:.0}", gf(s)))
                .collect();
            println!("{ty:?} GEMM GFLOP/s (best of 40): {}", line.join(", "));
            // matvec: rows kernels against the tiled kernels at one token, on a matrix past L2
            let big = 16;
            let wb: Vec<u8> = w.iter().copied().cycle().take(w.len() * big).collect();
            let mut out = vec![0f32; rows * big];
            let rows_k = [
                avx2::plain::rows_kernel(ty),
                avx512::vnni::rows_kernel(ty),
                avx512::vnni::matvec_kernel(ty),
            ];
            let tiled_k = [avx512::vnni::tiled_kernel(ty)];
            let mut best = [f64::MAX; 4];
            for _ in 0..40 {
                for (i, k) in rows_k.iter().enumerate() {
                    let Some(k) = k else { continue };
                    let t = Instant::now();
                    k(&wb, rb, &a[..ab], &mut out);
                    best[i] = best[i].min(t.elapsed().as_secs_f64());
                }
                for (i, k) in tiled_k.iter().enumerate() {
                    let Some(k) = k else { continue };
                    let t = Instant::now();
                    k(&wb, rb, &a[..ab], ab, 1, &mut out, rows * big);
                    best[3 + i] = best[3 + i].min(t.elapsed().as_secs_f64());
                }
            }
            let gb = |s: f64| wb.len() as f64 / s / 1e9;
            println!(
                "{ty:?} matvec GB/s (best of 40): rows-ymm-avx2 {:.1}, rows-ymm-vnni {:.1}, matvec-vnni {:.1}, \
                 tiled-ymm-vnni {:.1}",
                gb(best[0]),
                gb(best[1]),
                gb(best[2]),
                gb(best[3])
            );
        }
    }
}
