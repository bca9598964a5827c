//! Dot products of quantized weight rows against quantized activation rows: matrix × vector (decode) and
//! matrix × matrix (prefill), single-threaded, on the path `isa::active()` names.

pub mod iq_scalar;
pub mod scalar;

#[cfg(target_arch = "x86_64")]
pub(crate) mod x86;

#[cfg(target_arch = "aarch64")]
pub(crate) mod aarch64;

use crate::GgmlType;
use crate::isa::{self, Isa};
use crate::quant::activation_type;
use std::ops::Range;

/// A kernel over consecutive weight rows: `out[i] = dot(w[i * row_bytes ..], act)` for `i < out.len()`.
pub(crate) type RowsFn = fn(w: &[u8], row_bytes: usize, act: &[u8], out: &mut [f32]);

/// Rows per tile of `matmul_rows`: their weights stay in L1 while every token passes over them.
const TILE_ROWS: usize = 16;

struct Shape {
    w_row: usize,
    a_row: usize,
}

/// Row sizes, checked against the buffers; panics on a caller's size mistake (never on file contents:
/// tensor sizes are validated by cria-gguf before a kernel sees them).
fn shape(w_ty: GgmlType, w: &[u8], n_cols: usize, rows: &Range<usize>) -> Shape {
    let (w_row, a_row) = match (
        w_ty.row_bytes(n_cols),
        activation_type(w_ty).row_bytes(n_cols),
    ) {
        (Some(w), Some(a)) => (w, a),
        _ => panic!("dot: {n_cols} columns is not a whole number of {w_ty:?} blocks"),
    };
    assert!(
        rows.end * w_row <= w.len(),
        "dot: rows {rows:?} past the end of the {w_ty:?} matrix"
    );
    Shape { w_row, a_row }
}

/// out[i] = dot(weight row `rows.start + i`, activation) for i in 0..rows.len().
///
/// `w` is the whole row-major weight matrix (rows of `w_ty.row_bytes(n_cols)` bytes); `act` one activation row
/// already quantized to [`activation_type`]`(w_ty)`.
pub fn matvec_rows(
    w_ty: GgmlType,
    w: &[u8],
    n_cols: usize,
    act: &[u8],
    rows: Range<usize>,
    out: &mut [f32],
) {
    matvec_rows_with(isa::active(), w_ty, w, n_cols, act, rows, out)
}

/// [`matvec_rows`] on a chosen path (tests and benchmarks compare paths in one process).
pub fn matvec_rows_with(
    isa: Isa,
    w_ty: GgmlType,
    w: &[u8],
    n_cols: usize,
    act: &[u8],
    rows: Range<usize>,
    out: &mut [f32],
) {
    let s = shape(w_ty, w, n_cols, &rows);
    assert!(
        act.len() >= s.a_row && out.len() >= rows.len(),
        "matvec_rows: short act or out"
    );
    let w_rows = &w[rows.start * s.w_row..rows.end * s.w_row];
    let (act, out) = (&act[..s.a_row], &mut out[..rows.len()]);
    // Both kernels sum each row in llama.cpp's order, so a token gets the same bits either way (tested); the
    // faster one at one token is the tiled kernel for the 32-element 4/5-bit formats (4 rows share each
    // activation block) and the row kernel for the others.
    #[cfg(target_arch = "x86_64")]
    if let Some(k) = x86::matvec_kernel(isa, w_ty) {
        return k(w_rows, s.w_row, act, out);
    }
    let prefer_rows = matches!(w_ty, GgmlType::Q8_0 | GgmlType::Q4_K | GgmlType::Q6_K)
        || crate::quant::is_read_only(w_ty);
    if !prefer_rows && let Some(tiled) = tiled_kernel(isa, w_ty) {
        return tiled(w_rows, s.w_row, act, s.a_row, 1, out, rows.len());
    }
    rows_kernel(isa, w_ty)(w_rows, s.w_row, act, out);
}

/// For `n_tok` activation rows stored back to back: out[t * out_stride + i] = dot(weight row rows.start+i,
/// activation row t). Tiled so a few weight rows stay in cache while all tokens pass over them.
#[allow(clippy::too_many_arguments)]
pub fn matmul_rows(
    w_ty: GgmlType,
    w: &[u8],
    n_cols: usize,
    acts: &[u8],
    n_tok: usize,
    rows: Range<usize>,
    out: &mut [f32],
    out_stride: usize,
) {
    matmul_rows_with(
        isa::active(),
        w_ty,
        w,
        n_cols,
        acts,
        n_tok,
        rows,
        out,
        out_stride,
    )
}

/// [`matmul_rows`] on a chosen path.
#[allow(clippy::too_many_arguments)]
pub fn matmul_rows_with(
    isa: Isa,
    w_ty: GgmlType,
    w: &[u8],
    n_cols: usize,
    acts: &[u8],
    n_tok: usize,
    rows: Range<usize>,
    out: &mut [f32],
    out_stride: usize,
) {
    if n_tok == 0 || rows.is_empty() {
        return;
    }
    let s = shape(w_ty, w, n_cols, &rows);
    assert!(
        acts.len() >= n_tok * s.a_row,
        "matmul_rows: {n_tok} activation rows do not fit in acts"
    );
    assert!(
        (n_tok - 1) * out_stride + rows.len() <= out.len(),
        "matmul_rows: out too short"
    );
    #[cfg(target_arch = "x86_64")]
    if let Some(small) = x86::small_batch_kernel(isa, w_ty, n_tok) {
        let w_rows = &w[rows.start * s.w_row..rows.end * s.w_row];
        let acts = &acts[..n_tok * s.a_row];
        return small(w_rows, s.w_row, acts, s.a_row, n_tok, out, out_stride);
    }
    if let Some(tiled) = tiled_kernel(isa, w_ty) {
        let w_rows = &w[rows.start * s.w_row..rows.end * s.w_row];
        return tiled(
            w_rows,
            s.w_row,
            &acts[..n_tok * s.a_row],
            s.a_row,
            n_tok,
            out,
            out_stride,
        );
    }
    let kernel = rows_kernel(isa, w_ty);
    let mut r0 = rows.start;
    while r0 < rows.end {
        let r1 = (r0 + TILE_ROWS).min(rows.end);
        let wt = &w[r0 * s.w_row..r1 * s.w_row];
        for t in 0..n_tok {
            let o = t * out_stride + (r0 - rows.start);
            kernel(
                wt,
                s.w_row,
                &acts[t * s.a_row..(t + 1) * s.a_row],
                &mut out[o..o + (r1 - r0)],
            );
        }
        r0 = r1;
    }
}

/// A register-tiled GEMM kernel: several weight rows × several tokens per inner loop.
pub(crate) type TiledFn = fn(
    w: &[u8],
    w_row: usize,
    acts: &[u8],
    a_row: usize,
    n_tok: usize,
    out: &mut [f32],
    out_stride: usize,
);

fn tiled_kernel(isa: Isa, ty: GgmlType) -> Option<TiledFn> {
    assert!(isa.supported(), "dot: {isa:?} is not supported on this CPU");
    #[cfg(target_arch = "x86_64")]
    {
        x86::tiled_kernel(isa, ty)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (isa, ty);
        None
    }
}

/// The fastest row kernel `isa` has for `ty`, else the scalar one.
fn rows_kernel(isa: Isa, ty: GgmlType) -> RowsFn {
    assert!(isa.supported(), "dot: {isa:?} is not supported on this CPU");
    #[cfg(target_arch = "x86_64")]
    if let Some(k) = x86::rows_kernel(isa, ty) {
        return k;
    }
    #[cfg(target_arch = "aarch64")]
    if let Some(k) = aarch64::rows_kernel(isa, ty) {
        return k;
    }
    scalar_rows(ty)
}

fn scalar_rows(ty: GgmlType) -> RowsFn {
    macro_rules! rows {
        ($t:expr) => {
            |w: &[u8], rb: usize, a: &[u8], out: &mut [f32]| {
                for (o, wr) in out.iter_mut().zip(w.chunks_exact(rb)) {
                    *o = scalar::dot($t, wr, a);
                }
            }
        };
    }
    use GgmlType::*;
    match ty {
        F32 => rows!(F32),
        F16 => rows!(F16),
        BF16 => rows!(BF16),
        Q4_0 => rows!(Q4_0),
        Q4_1 => rows!(Q4_1),
        Q5_0 => rows!(Q5_0),
        Q5_1 => rows!(Q5_1),
        Q8_0 => rows!(Q8_0),
        Q8_1 => rows!(Q8_1),
        Q2_K => rows!(Q2_K),
        Q3_K => rows!(Q3_K),
        Q4_K => rows!(Q4_K),
        Q5_K => rows!(Q5_K),
        Q6_K => rows!(Q6_K),
        Q8_K => rows!(Q8_K),
        IQ4_NL => rows!(IQ4_NL),
        IQ4_XS => rows!(IQ4_XS),
        MXFP4 => rows!(MXFP4),
        TQ1_0 => rows!(TQ1_0),
        TQ2_0 => rows!(TQ2_0),
        IQ2_XXS => rows!(IQ2_XXS),
        IQ2_XS => rows!(IQ2_XS),
        IQ2_S => rows!(IQ2_S),
        IQ3_XXS => rows!(IQ3_XXS),
        IQ3_S => rows!(IQ3_S),
        IQ1_S => rows!(IQ1_S),
        IQ1_M => rows!(IQ1_M),
    }
}
