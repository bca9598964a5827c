//! Q8_0 decode kernels against each other with both threads streaming at once (ignored by default; timings,
//! not a check): `cargo test --release -p cria-kernels --lib decode_ab -- --ignored --nocapture`.

use super::*;
use crate::pool::ThreadPool;

/// Every one-token Q8_0 kernel this CPU has, 2 threads splitting each matrix as decode does, GB/s of
/// weights read from memory (the 1B shape's FFN matrices, and gemma-3-270m's and smollm2's output widths, copies cycled through 256 MB), best of
/// 5 alternated passes.
#[test]
#[ignore]
fn q8_0_decode_2t_ab() {
    if !Isa::Avx2.supported() {
        return;
    }
    let ty = GgmlType::Q8_0;
    let mut kernels: Vec<(&str, RowsFn)> = vec![
        ("plain rows", avx2::plain::rows_kernel(ty).unwrap()),
        ("plain rows-pf", avx2::plain::kmatvec_kernel(ty).unwrap()),
    ];
    if has_avxvnni() {
        kernels.push(("vnni rows", avx2::vnni::rows_kernel(ty).unwrap()));
        kernels.push(("vnni rows-pf", avx2::vnni::kmatvec_kernel(ty).unwrap()));
        kernels.push(("vnni mv4", avx2::vnni::matvec_kernel(ty).unwrap()));
    }
    if Isa::Avx512.supported() && crate::isa::has_avx512_vnni() {
        kernels.push(("zmm mv16", zmm_matvec::matvec_kernel(ty).unwrap()));
        kernels.push(("zmm mv16-pf4k", |w, wr, a, o| {
            // SAFETY: AVX-512 F/BW/VL and VNNI were checked before this entry was added.
            unsafe { zmm_matvec::mv_q8_0::<4096>(w, wr, a, o) }
        }));
        kernels.push(("zmm mv16-pf8k", |w, wr, a, o| {
            // SAFETY: as above.
            unsafe { zmm_matvec::mv_q8_0::<8192>(w, wr, a, o) }
        }));
        kernels.push(("zmm mv16-pf16k", |w, wr, a, o| {
            // SAFETY: as above.
            unsafe { zmm_matvec::mv_q8_0::<16384>(w, wr, a, o) }
        }));
    }
    let pool = ThreadPool::new(2);
    for (mat_rows, n) in [(8192, 2048), (2048, 8192), (16384, 640), (16384, 576)] {
        let (w, a, rb) = crate::test_data::dram_matrix(ty, n, mat_rows);
        let mut best = vec![f64::MAX; kernels.len()];
        for _ in 0..crate::test_data::AB_ROUNDS {
            for (i, (_, k)) in kernels.iter().enumerate() {
                let s = crate::test_data::decode_split_pass(
                    &pool,
                    &w,
                    mat_rows * rb,
                    mat_rows,
                    &|m, rows, o| k(&m[rows.start * rb..rows.end * rb], rb, &a, o),
                );
                best[i] = best[i].min(s);
            }
        }
        let line: Vec<String> = kernels
            .iter()
            .zip(&best)
            .map(|((name, _), s)| format!("{name} {:.1}", (mat_rows * rb) as f64 / s / 1e9))
            .collect();
        let ceiling = crate::bandwidth::read_bandwidth(&pool, 256 << 20, 10);
        println!(
            "Q8_0 {mat_rows}x{n}, 2 threads, GB/s (fastest matrix of 25 passes): {}; read ceiling {:.1}",
            line.join(", "),
            ceiling.bytes as f64 / ceiling.best_seconds / 1e9
        );
    }
}

/// `w` (whole matrices of `mat_bytes`, from `test_data::dram_matrix`) cycled until it holds `CRIA_AB_MIB`
/// MiB (default 1024): past a 480 MiB L3 (the shared Xeon of session 13), so that a pass reads DRAM.
fn past_l3(w: Vec<u8>, mat_bytes: usize) -> Vec<u8> {
    let mib: usize = std::env::var("CRIA_AB_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let mats = ((mib << 20) / mat_bytes).max(2);
    let one = &w[..mat_bytes];
    let mut big = Vec::with_capacity(mats * mat_bytes);
    for _ in 0..mats {
        big.extend_from_slice(one);
    }
    // distinct copies would be no slower to read; the point is only that they do not fit in the caches
    big
}

/// The one-token Q6_K kernels (the output matrix, half the `ffn_down` and `attn_v`) this CPU has, 2
/// threads splitting each matrix as decode does, GB/s of weights read from memory (the 1B shape's Q6_K
/// matrices: `ffn_down`, `attn_v`, the tied output), fastest matrix of 25 alternated passes:
/// `cargo test --release -p cria-kernels --lib q6_k_decode_2t_ab -- --ignored --nocapture`.
#[test]
#[ignore]
fn q6_k_decode_2t_ab() {
    if !Isa::Avx2.supported() {
        return;
    }
    let only: Option<String> = std::env::var("CRIA_AB_ONLY").ok();
    let pool = ThreadPool::new(2);
    let ty = GgmlType::Q6_K;
    for (mat_rows, n) in [(2048, 8192), (128256, 2048), (512, 2048)] {
        let mut kernels: Vec<(&str, RowsFn)> = vec![
            ("plain rows", avx2::plain::rows_kernel(ty).unwrap()),
            ("plain rows-pf", avx2::plain::kmatvec_kernel(ty).unwrap()),
        ];
        if has_avxvnni() {
            kernels.push(("vnni rows-pf", avx2::vnni::kmatvec_kernel(ty).unwrap()));
        }
        if Isa::Avx512.supported() && crate::isa::has_avx512_vnni() {
            kernels.push(("512 rows-pf", avx512::vnni::kmatvec_kernel(ty).unwrap()));
            kernels.push(("zmm bunched", |w, wr, a, o| {
                // SAFETY: AVX-512 F/BW/VL and VNNI were checked before this entry was added.
                unsafe { zmm_kmatvec::mv_q6_k::<false>(w, wr, a, o) }
            }));
            kernels.push(("zmm spread", |w, wr, a, o| {
                // SAFETY: as above.
                unsafe { zmm_kmatvec::mv_q6_k::<true>(w, wr, a, o) }
            }));
        }
        if let Some(only) = &only {
            kernels.retain(|(name, _)| only.split(',').any(|o| name.contains(o)));
        }
        let (w, a, rb) = crate::test_data::dram_matrix(ty, n, mat_rows);
        let w = past_l3(w, mat_rows * rb);
        let mut best = vec![f64::MAX; kernels.len()];
        for _ in 0..crate::test_data::AB_ROUNDS {
            for (i, (_, k)) in kernels.iter().enumerate() {
                let s = crate::test_data::decode_split_pass(
                    &pool,
                    &w,
                    mat_rows * rb,
                    mat_rows,
                    &|m, rows, o| k(&m[rows.start * rb..rows.end * rb], rb, &a, o),
                );
                best[i] = best[i].min(s);
            }
        }
        let line: Vec<String> = kernels
            .iter()
            .zip(&best)
            .map(|((name, _), s)| format!("{name} {:.1}", (mat_rows * rb) as f64 / s / 1e9))
            .collect();
        let ceiling = crate::bandwidth::read_bandwidth(&pool, w.len().min(1 << 30), 5);
        println!(
            "{ty:?} {mat_rows}x{n}, 2 threads, {} MiB, GB/s (fastest matrix of 25 passes): {}; read ceiling {:.1}",
            w.len() >> 20,
            line.join(", "),
            ceiling.bytes as f64 / ceiling.best_seconds / 1e9
        );
    }
}
