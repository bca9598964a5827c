//! Embedding lookup: rows of a (possibly quantized) matrix, dequantized to f32.

use crate::quant::dequantize_row;
use crate::{GgmlType, KernelError};

/// `out[i] = W[ids[i]]` for a row-major matrix `data` of rows of `cols` elements of `ty`; `out` holds
/// `ids.len() * cols` floats.
///
/// # Errors
/// `KernelError::NotWholeBlocks` if `cols` is not a whole number of blocks, `KernelError::ByteLength` if an
/// id's row lies past the end of `data` (an id outside the vocabulary) or `out` has the wrong size.
pub fn get_rows(
    ty: GgmlType,
    data: &[u8],
    cols: usize,
    ids: &[u32],
    out: &mut [f32],
) -> Result<(), KernelError> {
    let rb = ty.row_bytes(cols).ok_or(KernelError::NotWholeBlocks {
        ty,
        n: cols,
        block: ty.block_size(),
    })?;
    if out.len() != ids.len() * cols {
        let (expected, got) = (ids.len() * cols * 4, out.len() * 4);
        return Err(KernelError::ByteLength {
            ty: GgmlType::F32,
            n: ids.len() * cols,
            expected,
            got,
        });
    }
    for (&id, dst) in ids.iter().zip(out.chunks_exact_mut(cols.max(1))) {
        let start = id as usize * rb;
        let row = data.get(start..start + rb).ok_or(KernelError::ByteLength {
            ty,
            n: (id as usize + 1) * cols,
            expected: start + rb,
            got: data.len(),
        })?;
        dequantize_row(ty, row, dst)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::quantize_row;

    #[test]
    fn get_rows_picks_and_dequantizes_rows() {
        let cols = 32;
        let w: Vec<f32> = (0..3 * cols).map(|i| (i / cols) as f32 + 0.5).collect();
        let rb = GgmlType::Q8_0.row_bytes(cols).unwrap();
        let mut data = vec![0u8; 3 * rb];
        for (src, dst) in w.chunks_exact(cols).zip(data.chunks_exact_mut(rb)) {
            quantize_row(GgmlType::Q8_0, src, dst).unwrap();
        }
        let mut out = vec![0.0; 2 * cols];
        get_rows(GgmlType::Q8_0, &data, cols, &[2, 0], &mut out).unwrap();
        assert!(
            out[..cols].iter().all(|&v| (v - 2.5).abs() < 0.02),
            "{out:?}"
        );
        assert!(
            out[cols..].iter().all(|&v| (v - 0.5).abs() < 0.01),
            "{out:?}"
        );
    }

    #[test]
    fn get_rows_rejects_an_id_past_the_end() {
        let data = vec![0u8; 2 * 4 * 4];
        let mut out = vec![0.0; 4];
        let e = get_rows(GgmlType::F32, &data, 4, &[2], &mut out);
        assert!(matches!(e, Err(KernelError::ByteLength { .. })), "{e:?}");
        assert!(get_rows(GgmlType::F32, &data, 4, &[1], &mut out).is_ok());
    }
}
