//! Weights repacked at load into groups of 8 interleaved rows, as llama.cpp's x86 CPU backend does for Q4_0
//! and Q4_K matrices whose row count is a multiple of 8 (`ggml-cpu/repack.cpp`, `block_q4_0x8`,
//! `block_q4_Kx8`), and summed in that path's per-row order ([`reference`]): one `fma(float(isum), d_w·d_a,
//! acc)` per block of 32 (Q4_0), or per pair of sub-blocks (64 elements) with the mins in a second
//! accumulator subtracted at the end (Q4_K, its 4-token `gemm`'s order). llama.cpp runs every Q4_0 / Q4_K
//! matmul of such matrices, prefill and decode, on AVX2 and above through its repacked kernels
//! ([`reference`] says where its one-token `gemv` differs and why Cria keeps one order), so Cria does the
//! same on every x86 path (scalar included) to keep its parity. aarch64 keeps the row-major layout and its
//! own order (llama.cpp's ARM repacks differ).
//!
//! Layout (this crate's own; only the summation order has to match llama.cpp's): the matrix is stored group
//! after group (rows 8g..8g+8), each group as its blocks in column order. One group block holds the 8 rows'
//! scales, then their quants interleaved 4 bytes at a time so that one 32-byte load gives every row 4 bytes
//! (32-bit lane j = row j), which the AVX2 kernels multiply against one broadcast activation dword:
//! - Q4_0 (144 bytes): `d[8]` (f16); `qs[128]`: byte `32k + 4j + i` = row j's `qs[4k + i]`, k < 4.
//! - Q4_K (1184 bytes): `d[8]`, `dmin[8]` (f16); the 6-bit scales `sc[s][j]` and mins `m[s][j]`, one byte
//!   each for sub-block s < 8 (decoded at load); `qs[1024]`: byte `256p + 32k + 4j + i` = row j's
//!   `qs[32p + 4k + i]`, p < 4, k < 8. (32 bytes a group more than the 8 rows, 2.8%.)

pub mod reference;

#[cfg(target_arch = "x86_64")]
mod amx;
#[cfg(target_arch = "x86_64")]
mod x86;
#[cfg(target_arch = "x86_64")]
mod ymm_stream;
#[cfg(target_arch = "x86_64")]
mod zmm;

use std::cell::RefCell;
use std::ops::Range;

use crate::GgmlType;
use crate::KernelError;
use crate::isa::Isa;
use crate::quant::activation_type;
use crate::quant::blocks::{BlockQ4_0, BlockQ4K, scale_min_k4};

/// Rows per interleaved group.
pub const GROUP: usize = 8;

/// How a weight matrix's bytes are laid out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Layout {
    /// Row after row, as in the GGUF file.
    #[default]
    Rows,
    /// Groups of [`GROUP`] interleaved rows ([`pack`]).
    Groups8,
}

/// Bytes of one group block (8 rows × one block of `ty`), for the formats [`pack`] takes.
fn group_block_bytes(ty: GgmlType) -> Option<usize> {
    match ty {
        GgmlType::Q4_0 => Some(144),
        GgmlType::Q4_K => Some(1184),
        _ => None,
    }
}

/// Whether a `rows × cols` matrix of `ty` is repacked on this target: Q4_0 and Q4_K with a multiple of 8
/// rows, on x86-64 (llama.cpp's `ggml_repack_get_optimal_repack_type` on AVX2: `ne[1] % 8 == 0`), unless
/// `CRIA_REPACK=0` keeps the file's layout (A/B comparisons; llama.cpp's `--no-repack`).
pub fn packs(ty: GgmlType, rows: usize, cols: usize) -> bool {
    cfg!(target_arch = "x86_64")
        && !repack_refused()
        && group_block_bytes(ty).is_some()
        && rows > 0
        && rows.is_multiple_of(GROUP)
        && ty.row_bytes(cols).is_some()
}

/// Whether `CRIA_REPACK=0` asks for the file's row-major layout everywhere.
pub fn repack_refused() -> bool {
    static V: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *V.get_or_init(|| std::env::var("CRIA_REPACK").is_ok_and(|v| v.trim() == "0"))
}

/// Bytes of the packed matrix, if `ty` is a packed format and `cols` whole blocks.
pub fn packed_len(ty: GgmlType, rows: usize, cols: usize) -> Option<usize> {
    let blocks = cols
        .checked_div(ty.block_size())
        .filter(|_| ty.row_bytes(cols).is_some())?;
    Some(group_block_bytes(ty)? * (rows / GROUP) * blocks)
}

/// Repacks the row-major `src` (`rows × cols` of `ty`, as in a GGUF file) into the [`Layout::Groups8`]
/// layout. Errors if the matrix is not one [`packs`] accepts (on any target) or `src` has the wrong size.
pub fn pack(ty: GgmlType, rows: usize, cols: usize, src: &[u8]) -> Result<Vec<u8>, KernelError> {
    let Some(gb) = group_block_bytes(ty) else {
        return Err(KernelError::NotPackable(ty));
    };
    crate::quant::check_row(ty, cols * rows, src.len())?;
    if !rows.is_multiple_of(GROUP) || rows == 0 {
        return Err(KernelError::NotPackable(ty));
    }
    let nb = cols / ty.block_size();
    let row_bytes = nb * ty.type_size();
    // on 2 MiB pages where the OS grants them: decode streams these bytes every token (`crate::pages`)
    let mut out = Vec::with_capacity(gb * nb * rows / GROUP);
    crate::pages::advise_huge_pages(&mut out);
    out.resize(gb * nb * rows / GROUP, 0u8);
    for (g, dst) in out.chunks_exact_mut(gb * nb).enumerate() {
        let rows_of = |j: usize| &src[(GROUP * g + j) * row_bytes..(GROUP * g + j + 1) * row_bytes];
        for (b, d) in dst.chunks_exact_mut(gb).enumerate() {
            let bb = ty.type_size();
            let blocks: [&[u8]; GROUP] = std::array::from_fn(|j| &rows_of(j)[b * bb..(b + 1) * bb]);
            match ty {
                GgmlType::Q4_0 => pack_q4_0(&blocks, d),
                _ => pack_q4_k(&blocks, d),
            }
        }
    }
    Ok(out)
}

fn pack_q4_0(blocks: &[&[u8]; GROUP], dst: &mut [u8]) {
    let b: [&BlockQ4_0; GROUP] = std::array::from_fn(|j| bytemuck::from_bytes(blocks[j]));
    for j in 0..GROUP {
        dst[2 * j..2 * j + 2].copy_from_slice(&b[j].d);
        for k in 0..4 {
            dst[16 + 32 * k + 4 * j..][..4].copy_from_slice(&b[j].qs[4 * k..4 * k + 4]);
        }
    }
}

/// Offsets inside a Q4_K group block.
const K_DMIN: usize = 16;
const K_SC: usize = 32;
const K_M: usize = 96;
const K_QS: usize = 160;

fn pack_q4_k(blocks: &[&[u8]; GROUP], dst: &mut [u8]) {
    let b: [&BlockQ4K; GROUP] = std::array::from_fn(|j| bytemuck::from_bytes(blocks[j]));
    for j in 0..GROUP {
        dst[2 * j..2 * j + 2].copy_from_slice(&b[j].d);
        dst[K_DMIN + 2 * j..K_DMIN + 2 * j + 2].copy_from_slice(&b[j].dmin);
        for s in 0..8 {
            let (sc, m) = scale_min_k4(s, &b[j].scales);
            dst[K_SC + 8 * s + j] = sc;
            dst[K_M + 8 * s + j] = m;
        }
        for p in 0..4 {
            for k in 0..8 {
                let src = &b[j].qs[32 * p + 4 * k..32 * p + 4 * k + 4];
                dst[K_QS + 256 * p + 32 * k + 4 * j..][..4].copy_from_slice(src);
            }
        }
    }
}

/// Row `j` (< 8) of one packed group (`nb` group blocks), back in the row-major block format.
pub fn unpack_group_row(ty: GgmlType, group: &[u8], nb: usize, j: usize, dst: &mut [u8]) {
    let Some(gb) = group_block_bytes(ty) else {
        panic!("unpack_group_row: {ty:?} is not a packed format");
    };
    let bb = ty.type_size();
    for b in 0..nb {
        let src = &group[b * gb..(b + 1) * gb];
        let d = &mut dst[b * bb..(b + 1) * bb];
        match ty {
            GgmlType::Q4_0 => {
                let blk: &mut BlockQ4_0 = bytemuck::from_bytes_mut(d);
                blk.d.copy_from_slice(&src[2 * j..2 * j + 2]);
                for k in 0..4 {
                    for i in 0..4 {
                        blk.qs[4 * k + i] = src[16 + 32 * k + 4 * j + i];
                    }
                }
            }
            _ => {
                let blk: &mut BlockQ4K = bytemuck::from_bytes_mut(d);
                blk.d.copy_from_slice(&src[2 * j..2 * j + 2]);
                blk.dmin
                    .copy_from_slice(&src[K_DMIN + 2 * j..K_DMIN + 2 * j + 2]);
                let sc: [u8; 8] = std::array::from_fn(|s| src[K_SC + 8 * s + j]);
                let m: [u8; 8] = std::array::from_fn(|s| src[K_M + 8 * s + j]);
                blk.scales = encode_scales_k4(&sc, &m);
                for p in 0..4 {
                    for k in 0..8 {
                        for i in 0..4 {
                            blk.qs[32 * p + 4 * k + i] = src[K_QS + 256 * p + 32 * k + 4 * j + i];
                        }
                    }
                }
            }
        }
    }
}

/// The 12-byte Q4_K scale field of 8 six-bit scales and mins (the inverse of `scale_min_k4`).
fn encode_scales_k4(sc: &[u8; 8], m: &[u8; 8]) -> [u8; 12] {
    let mut q = [0u8; 12];
    for j in 0..4 {
        q[j] = (sc[j] & 63) | ((sc[j + 4] >> 4) << 6);
        q[j + 4] = (m[j] & 63) | ((m[j + 4] >> 4) << 6);
        q[j + 8] = (sc[j + 4] & 0xF) | ((m[j + 4] & 0xF) << 4);
    }
    q
}

/// A kernel over whole groups: for `n_groups` groups starting at `w` (each `nb` group blocks) and `n_tok`
/// activation rows of `a_row` bytes: `out[t * out_stride + 8g + j]` = dot(row j of group g, activation t).
pub(crate) type GroupsFn = fn(
    w: &[u8],
    nb: usize,
    acts: &[u8],
    a_row: usize,
    n_tok: usize,
    out: &mut [f32],
    out_stride: usize,
);

thread_local! {
    /// Outputs of a group cut by the row range (its rows that fall outside are dropped).
    static EDGE: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// For `n_tok` activation rows stored back to back (in `activation_type(ty)`, `a_row` bytes each):
/// `out[t * out_stride + i]` = dot(packed row `rows.start + i`, activation row t), in the packed order
/// ([`reference::dot`]) for every token, whatever `n_tok` (so a batch can be cut anywhere).
/// `w` is the whole packed matrix of `cols` columns; `rows` may cut groups.
///
/// # Panics
/// On a caller's size mistake (short buffers, a format [`pack`] does not take), as the other `dot` entries.
#[allow(clippy::too_many_arguments)]
pub fn matmul_rows_with(
    isa: Isa,
    ty: GgmlType,
    w: &[u8],
    cols: usize,
    acts: &[u8],
    n_tok: usize,
    rows: Range<usize>,
    out: &mut [f32],
    out_stride: usize,
) {
    if n_tok == 0 || rows.is_empty() {
        return;
    }
    let (Some(gb), Some(a_row)) = (group_block_bytes(ty), activation_type(ty).row_bytes(cols))
    else {
        panic!("packed: {ty:?} with {cols} columns is not a packed format of whole blocks");
    };
    let nb = cols / ty.block_size();
    let group_bytes = gb * nb;
    let (g0, g1) = (rows.start / GROUP, rows.end.div_ceil(GROUP));
    assert!(
        g1 * group_bytes <= w.len() && acts.len() >= n_tok * a_row,
        "packed: rows {rows:?} or {n_tok} activation rows past the buffers"
    );
    assert!(
        (n_tok - 1) * out_stride + rows.len() <= out.len(),
        "packed: out too short"
    );
    let kernel = if n_tok > 1 {
        gemm_kernel(isa, ty)
    } else {
        groups_kernel(isa, ty)
    };
    let acts = &acts[..n_tok * a_row];
    // whole groups inside the range go straight into `out`
    let (w0, w1) = (rows.start.div_ceil(GROUP), rows.end / GROUP);
    if w0 < w1 {
        let off = w0 * GROUP - rows.start;
        kernel(
            &w[w0 * group_bytes..w1 * group_bytes],
            nb,
            acts,
            a_row,
            n_tok,
            &mut out[off..],
            out_stride,
        );
    }
    for g in (g0..g1).filter(|&g| g < w0 || g >= w1.max(w0)) {
        EDGE.with_borrow_mut(|tmp| {
            tmp.clear();
            tmp.resize(n_tok * GROUP, 0.0);
            kernel(
                &w[g * group_bytes..(g + 1) * group_bytes],
                nb,
                acts,
                a_row,
                n_tok,
                tmp,
                GROUP,
            );
            let (lo, hi) = ((g * GROUP).max(rows.start), ((g + 1) * GROUP).min(rows.end));
            for t in 0..n_tok {
                let src = &tmp[t * GROUP + lo - g * GROUP..t * GROUP + hi - g * GROUP];
                let o = t * out_stride + lo - rows.start;
                out[o..o + src.len()].copy_from_slice(src);
            }
        });
    }
}

/// The fastest group kernel `isa` has for `ty`, else the scalar one.
fn groups_kernel(isa: Isa, ty: GgmlType) -> GroupsFn {
    assert!(
        isa.supported(),
        "packed: {isa:?} is not supported on this CPU"
    );
    #[cfg(target_arch = "x86_64")]
    if let Some(k) = x86::groups_kernel(isa, ty) {
        return k;
    }
    match ty {
        GgmlType::Q4_0 => {
            |w, nb, a, ar, n, o, s| scalar_groups(GgmlType::Q4_0, w, nb, a, ar, n, o, s)
        }
        _ => |w, nb, a, ar, n, o, s| scalar_groups(GgmlType::Q4_K, w, nb, a, ar, n, o, s),
    }
}

/// The group kernel for several tokens (prefill): on the AVX-512 path the AMX GEMM where the CPU and OS
/// have AMX (and `CRIA_AMX=0` does not refuse it), else the AVX-512 VNNI GEMM where there is one, else the
/// AVX2 streaming one for Q4_K, else [`groups_kernel`]'s (all with the bits of every other kernel here).
fn gemm_kernel(isa: Isa, ty: GgmlType) -> GroupsFn {
    #[cfg(target_arch = "x86_64")]
    if let Some(k) = (isa == Isa::Avx512)
        .then(|| amx::gemm_kernel(ty).or_else(|| zmm::gemm_kernel(ty)))
        .flatten()
        .or_else(|| ymm_stream::gemm_kernel(isa, ty))
    {
        return k;
    }
    groups_kernel(isa, ty)
}

/// The scalar group kernel: each row unpacked once, then [`reference::dot`] against every token.
#[allow(clippy::too_many_arguments)]
fn scalar_groups(
    ty: GgmlType,
    w: &[u8],
    nb: usize,
    acts: &[u8],
    a_row: usize,
    n_tok: usize,
    out: &mut [f32],
    out_stride: usize,
) {
    let Some(gb) = group_block_bytes(ty) else {
        return;
    };
    let mut row = vec![0u8; nb * ty.type_size()];
    for (g, group) in w.chunks_exact(gb * nb).enumerate() {
        for j in 0..GROUP {
            unpack_group_row(ty, group, nb, j, &mut row);
            for t in 0..n_tok {
                let a = &acts[t * a_row..(t + 1) * a_row];
                out[t * out_stride + GROUP * g + j] = reference::dot(ty, &row, a);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::quantize_row;

    fn matrix(ty: GgmlType, rows: usize, cols: usize) -> Vec<u8> {
        let rb = ty.row_bytes(cols).unwrap_or(0);
        let mut w = vec![0u8; rows * rb];
        for (r, dst) in w.chunks_exact_mut(rb).enumerate() {
            let x: Vec<f32> = (0..cols)
                .map(|i| ((r * 131 + i * 17) % 97) as f32 / 97.0 - 0.45)
                .collect();
            quantize_row(ty, &x, dst).expect("quantize");
        }
        w
    }

    #[test]
    fn packing_round_trips_every_row() {
        for (ty, rows, cols) in [(GgmlType::Q4_0, 24, 96), (GgmlType::Q4_K, 16, 512)] {
            let w = matrix(ty, rows, cols);
            let p = pack(ty, rows, cols, &w).expect("pack");
            assert_eq!(Some(p.len()), packed_len(ty, rows, cols));
            let (rb, nb) = (ty.row_bytes(cols).unwrap_or(0), cols / ty.block_size());
            let gbytes = p.len() / (rows / GROUP);
            let mut row = vec![0u8; rb];
            for r in 0..rows {
                let group = &p[r / GROUP * gbytes..(r / GROUP + 1) * gbytes];
                unpack_group_row(ty, group, nb, r % GROUP, &mut row);
                assert_eq!(row, w[r * rb..(r + 1) * rb], "{ty:?} row {r}");
            }
        }
    }

    #[test]
    fn only_q4_0_and_q4_k_with_whole_groups_pack() {
        assert!(pack(GgmlType::Q8_0, 8, 32, &[0; 8 * 34]).is_err());
        assert!(pack(GgmlType::Q4_0, 12, 32, &[0; 12 * 18]).is_err());
        assert!(pack(GgmlType::Q4_0, 8, 32, &[0; 8 * 18 - 1]).is_err());
        assert!(!packs(GgmlType::Q4_0, 12, 32));
        assert!(!packs(GgmlType::Q6_K, 16, 256));
        let expected = cfg!(target_arch = "x86_64") && !repack_refused();
        assert_eq!(packs(GgmlType::Q4_K, 16, 256), expected);
    }
}
