//! One-token (decode) kernel over the repacked Q4_K groups with AVX-VNNI: `vpdpbusd` takes each 32-byte
//! load's 8 rows × 4 products straight to i32, spread over several accumulators, where the tiles (one body
//! for 1-4 tokens, `maddubs` for plain AVX2) spend `maddubs` and an i16 add per product pair and load each
//! byte once per nibble half. In L2 this runs at about 1.7× the 1-token tile (`gemv_ab` below).
//!
//! The bits are the tiles': every integer sum is exact in both (Q4_K's i16 partial sums of a sub-block stay
//! under 8 · 2 · 15 · 128 = 30720, so `maddubs` never saturates), and the float steps are the same ones in
//! the same order (per pair of sub-blocks one `fma` of the scaled sum into `acc` and one of the min term
//! into `acc_min`, `acc − acc_min` at the end). So a decode step gets the bits
//! the same token gets in any batch (tested below against the 1- and 4-token tiles).

use std::arch::x86_64::*;

use super::{AK, GK, PF_AHEAD, PREPK, PrepK, check, prep_q8_k, q4_k_avx2};
use crate::packed::GROUP;

/// Q4_K groups: one token through [`gemv_q4_k`], more through the tiles. Handed out only on a CPU with
/// AVX2, FMA, F16C and AVX-VNNI (`super::groups_kernel`).
pub(super) fn q4_k_vnni(
    w: &[u8],
    nb: usize,
    acts: &[u8],
    a_row: usize,
    n_tok: usize,
    out: &mut [f32],
    stride: usize,
) {
    if n_tok != 1 {
        return q4_k_avx2(w, nb, acts, a_row, n_tok, out, stride);
    }
    let n_groups = check(w, GK, nb, acts, a_row, AK, n_tok, out, stride);
    PREPK.with_borrow_mut(|prep| {
        prep_q8_k(acts, a_row, 1, nb, prep);
        // SAFETY: AVX2, FMA, F16C and AVX-VNNI are checked by the caller; `check` holds the sizes: `w` is
        // n_groups × nb group blocks, `acts` one row of nb Q8_K blocks, `prep` nb entries, `out` 8·n_groups.
        unsafe {
            gemv_q4_k::<PF_AHEAD>(
                w.as_ptr(),
                n_groups,
                nb,
                acts.as_ptr(),
                prep.as_ptr(),
                out.as_mut_ptr(),
            )
        }
    });
}

/// # Safety
/// The CPU has AVX2, FMA, F16C and AVX-VNNI; `w` holds `n_groups` groups of `nb` Q4_K group blocks, `a` one
/// row of `nb` Q8_K blocks, `prep` `nb` entries, `out` 8·n_groups floats.
#[target_feature(enable = "avx2,fma,f16c,avxvnni")]
pub(super) unsafe fn gemv_q4_k<const PF: usize>(
    w: *const u8,
    n_groups: usize,
    nb: usize,
    a: *const u8,
    prep: *const PrepK,
    out: *mut f32,
) {
    let m4 = _mm256_set1_epi8(0x0F);
    for g in 0..n_groups {
        let (mut acc, mut acc_min) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        for b in 0..nb {
            // SAFETY: super-block b of group g, and of the activation row (the function's contract).
            unsafe {
                let gb = w.add((g * nb + b) * GK);
                let p = *prep.add(b);
                let da = _mm256_set1_ps(p.d);
                let dd = _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128(gb.cast())), da);
                let dm = _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128(gb.add(16).cast())), da);
                let aq = a.add(AK * b + 4);
                // the weights PF bytes on (PF_AHEAD), a pair's share (296 bytes) per pair, to L2 (a hint never
                // faults, so the last groups may point past `w`)
                let pf = gb.wrapping_add(PF);
                for pair in 0..4 {
                    if PF > 0 {
                        for l in 0..5 {
                            _mm_prefetch::<_MM_HINT_T1>(
                                pf.wrapping_add(296 * pair + 64 * l).cast(),
                            );
                        }
                    }
                    // sub-blocks 2·pair (low nibbles) and 2·pair + 1 (high nibbles) of the same bytes, each
                    // in four i32 accumulators (k mod 4): `vpdpbusd`'s latency, not its throughput, would
                    // bound a single chain
                    let qs = gb.add(160 + 256 * pair);
                    let (a_lo, a_hi) = (aq.add(64 * pair), aq.add(64 * pair + 32));
                    let mut lo = [_mm256_setzero_si256(); 4];
                    let mut hi = [_mm256_setzero_si256(); 4];
                    for k in 0..8 {
                        let raw = _mm256_loadu_si256(qs.add(32 * k).cast());
                        let q_lo = _mm256_and_si256(raw, m4);
                        let q_hi = _mm256_and_si256(_mm256_srli_epi16::<4>(raw), m4);
                        let al = _mm256_set1_epi32(a_lo.add(4 * k).cast::<i32>().read_unaligned());
                        let ah = _mm256_set1_epi32(a_hi.add(4 * k).cast::<i32>().read_unaligned());
                        lo[k % 4] = _mm256_dpbusd_avx_epi32(lo[k % 4], q_lo, al);
                        hi[k % 4] = _mm256_dpbusd_avx_epi32(hi[k % 4], q_hi, ah);
                    }
                    let sum4 = |v: [__m256i; 4]| {
                        _mm256_add_epi32(_mm256_add_epi32(v[0], v[1]), _mm256_add_epi32(v[2], v[3]))
                    };
                    // row j's 6-bit scales of the two sub-blocks in lane j
                    let sc_lo =
                        _mm256_cvtepu8_epi32(_mm_loadl_epi64(gb.add(32 + 16 * pair).cast()));
                    let sc_hi =
                        _mm256_cvtepu8_epi32(_mm_loadl_epi64(gb.add(40 + 16 * pair).cast()));
                    let isum = _mm256_add_epi32(
                        _mm256_mullo_epi32(sum4(lo), sc_lo),
                        _mm256_mullo_epi32(sum4(hi), sc_hi),
                    );
                    let lo = _mm256_cvtepu8_epi32(_mm_loadl_epi64(gb.add(96 + 16 * pair).cast()));
                    let hi = _mm256_cvtepu8_epi32(_mm_loadl_epi64(gb.add(104 + 16 * pair).cast()));
                    let mins = _mm256_or_si256(lo, _mm256_slli_epi32::<16>(hi));
                    let msum = _mm256_madd_epi16(mins, _mm256_set1_epi32(p.bs[pair]));
                    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), dd, acc);
                    acc_min = _mm256_fmadd_ps(_mm256_cvtepi32_ps(msum), dm, acc_min);
                }
            }
        }
        // SAFETY: group g's 8 outputs lie in `out` (the function's contract).
        unsafe { _mm256_storeu_ps(out.add(GROUP * g), _mm256_sub_ps(acc, acc_min)) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::GgmlType;
    use crate::isa::Isa;
    use crate::packed::pack;
    use crate::quant::{quantize_activation_with, quantize_row};

    fn data(n: usize, seed: u32) -> Vec<f32> {
        crate::test_data::uniform(n, seed, 2.0)
    }

    type GroupsFn = fn(&[u8], usize, &[u8], usize, usize, &mut [f32], usize);

    /// (weight type, activation type, the decode kernel's entry, the tiles). Q4_0 has no kernel here: its
    /// tiles' one-token path ran as fast as a VNNI gemv with four accumulators (`gemv_ab`, 56.6 against
    /// 56.7 GB/s in L2), the chain of a block being short (8 products).
    fn formats() -> [(GgmlType, GgmlType, GroupsFn, GroupsFn); 1] {
        [(GgmlType::Q4_K, GgmlType::Q8_K, q4_k_vnni, q4_k_avx2)]
    }

    /// The decode kernels give each row the bits of the 1-token and the 4-token tiles, with activations at
    /// the ends of the 8-bit range (quants of -128 / 127 against nibbles of 15: the largest partial sums).
    #[test]
    fn vnni_gemv_gives_the_tiles_bits() {
        if !(Isa::Avx2.supported() && crate::dot::x86::has_avxvnni()) {
            return;
        }
        let (rows, cols, n_tok) = (24, 768, 4);
        for (ty, at, gemv, tiles) in formats() {
            let rb = ty.row_bytes(cols).unwrap();
            let mut w = vec![0u8; rows * rb];
            for (r, dst) in w.chunks_exact_mut(rb).enumerate() {
                quantize_row(ty, &data(cols, r as u32 + 1), dst).unwrap();
            }
            let packed = pack(ty, rows, cols, &w).unwrap();
            let ab = at.row_bytes(cols).unwrap();
            let mut acts = vec![0u8; n_tok * ab];
            for (t, dst) in acts.chunks_exact_mut(ab).enumerate() {
                let mut x = data(cols, 100 + t as u32);
                for v in x.iter_mut().step_by(7) {
                    *v = if t % 2 == 0 { -40.0 } else { 40.0 };
                }
                quantize_activation_with(Isa::Scalar, at, &x, dst);
            }
            let nb = cols / ty.block_size();
            let mut batch = vec![f32::NAN; n_tok * rows];
            tiles(&packed, nb, &acts, ab, n_tok, &mut batch, rows);
            for t in 0..n_tok {
                let a = &acts[t * ab..(t + 1) * ab];
                let (mut one, mut tile) = (vec![f32::NAN; rows], vec![f32::NAN; rows]);
                gemv(&packed, nb, a, ab, 1, &mut one, rows);
                tiles(&packed, nb, a, ab, 1, &mut tile, rows);
                for r in 0..rows {
                    let want = batch[t * rows + r].to_bits();
                    assert_eq!(
                        one[r].to_bits(),
                        want,
                        "{ty:?} token {t} row {r}: gemv vs batch"
                    );
                    assert_eq!(
                        tile[r].to_bits(),
                        want,
                        "{ty:?} token {t} row {r}: tile vs batch"
                    );
                }
            }
        }
    }

    /// The 1-token tiles against the VNNI gemv, one thread, GB/s of weights, on a matrix in L2 (`hot`) and
    /// on 1B-shape FFN matrices cycled through 256 MB (`dram`): timings, not a check:
    /// `cargo test --release -p cria-kernels --lib packed::x86::gemv::tests::gemv_ab -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn gemv_ab() {
        if !(Isa::Avx2.supported() && crate::dot::x86::has_avxvnni()) {
            return;
        }
        use std::time::Instant;
        let (cols, mat_rows, hot_rows) = (2048, 8192, 64);
        // Q4_0's plain (`maddubs`) and AVX-VNNI tiles beside Q4_K's tile and gemv
        type Case = (GgmlType, GgmlType, [(&'static str, GroupsFn); 2]);
        let cases: [Case; 2] = [
            (
                GgmlType::Q4_0,
                GgmlType::Q8_0,
                [
                    ("tile-avx2", super::super::q4_0_avx2),
                    ("tile-vnni", super::super::q4_0_vnni),
                ],
            ),
            (
                GgmlType::Q4_K,
                GgmlType::Q8_K,
                [("tile", q4_k_avx2), ("gemv", q4_k_vnni)],
            ),
        ];
        for (ty, at, kernels) in cases {
            let nb = cols / ty.block_size();
            let rb = ty.row_bytes(cols).unwrap();
            let mut w = vec![0u8; 256 * rb];
            for (r, dst) in w.chunks_exact_mut(rb).enumerate() {
                quantize_row(ty, &data(cols, r as u32 + 1), dst).unwrap();
            }
            let one = pack(ty, 256, cols, &w).unwrap();
            let rb = one.len() / 256; // packed bytes per row
            let copies = (256 << 20) / (mat_rows * rb);
            let big: Vec<u8> = one
                .iter()
                .copied()
                .cycle()
                .take(copies * mat_rows * rb)
                .collect();
            let ab = at.row_bytes(cols).unwrap();
            let mut a = vec![0u8; ab];
            quantize_activation_with(Isa::Scalar, at, &data(cols, 7), &mut a);
            let mut out = vec![0f32; mat_rows];
            let (mut hot, mut dram) = ([f64::MAX; 2], [f64::MAX; 2]);
            for _ in 0..5 {
                for (i, (_, k)) in kernels.iter().enumerate() {
                    for _ in 0..50 {
                        let t = Instant::now();
                        k(
                            &big[..hot_rows * rb],
                            nb,
                            &a,
                            ab,
                            1,
                            &mut out[..hot_rows],
                            hot_rows,
                        );
                        hot[i] = hot[i].min(t.elapsed().as_secs_f64());
                    }
                    for m in big.chunks_exact(mat_rows * rb) {
                        let t = Instant::now();
                        k(m, nb, &a, ab, 1, &mut out, mat_rows);
                        dram[i] = dram[i].min(t.elapsed().as_secs_f64());
                    }
                }
            }
            let line: Vec<String> = kernels
                .iter()
                .enumerate()
                .map(|(i, (name, _))| {
                    let (h, d) = (
                        (hot_rows * rb) as f64 / hot[i],
                        (mat_rows * rb) as f64 / dram[i],
                    );
                    format!("{name} hot {:.1} / dram {:.1}", h / 1e9, d / 1e9)
                })
                .collect();
            println!("repacked {ty:?} decode GB/s (best): {}", line.join(", "));
        }
    }
}
