//! Tensor infos, their size arithmetic, and borrowed views of tensor data.

use crate::error::GgufError;
use crate::types::GgmlType;

/// One tensor's description from the file's tensor-info section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    pub name: String,
    pub ty: GgmlType,
    /// Dimensions, `ne[0]` first: `ne[0]` is the contiguous row length.
    pub shape: Vec<u64>,
    /// Byte offset of the data, relative to the start of the data section.
    pub offset: u64,
    /// Bytes of data, from the type and shape.
    pub n_bytes: u64,
}

impl TensorInfo {
    /// Number of elements (the product of the shape; 1 for a shape with no dimension).
    pub fn n_elements(&self) -> u64 {
        self.shape.iter().product()
    }
}

/// A tensor's info together with its bytes.
#[derive(Clone, Copy, Debug)]
pub struct TensorView<'a> {
    pub info: &'a TensorInfo,
    pub data: &'a [u8],
}

impl TensorView<'_> {
    pub fn name(&self) -> &str {
        &self.info.name
    }

    pub fn ty(&self) -> GgmlType {
        self.info.ty
    }

    pub fn shape(&self) -> &[u64] {
        &self.info.shape
    }

    pub fn n_elements(&self) -> u64 {
        self.info.n_elements()
    }
}

/// Bytes taken by a tensor of type `ty` and shape `shape`, every step checked: the element
/// count must fit `i64` (as in ggml), the row a whole number of blocks.
pub(crate) fn tensor_n_bytes(name: &str, ty: GgmlType, shape: &[u64]) -> Result<u64, GgufError> {
    let overflow = || GgufError::DimsOverflow {
        tensor: name.to_owned(),
        shape: shape.to_vec(),
    };
    let mut n_elements: u64 = 1;
    for &dim in shape {
        n_elements = n_elements.checked_mul(dim).ok_or_else(overflow)?;
    }
    if n_elements > i64::MAX as u64 {
        return Err(overflow());
    }
    let row = shape.first().copied().unwrap_or(1);
    let block = ty.block_size() as u64;
    if !row.is_multiple_of(block) {
        return Err(GgufError::RowNotBlockMultiple {
            tensor: name.to_owned(),
            ty: ty.name(),
            row,
            block: ty.block_size(),
        });
    }
    // The row is a whole number of blocks, so every row is too and the total is exact.
    (n_elements / block)
        .checked_mul(ty.type_size() as u64)
        .ok_or_else(overflow)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_block_geometry() {
        assert_eq!(
            tensor_n_bytes("t", GgmlType::Q4_K, &[512, 3]).unwrap(),
            288 * 3
        );
        assert_eq!(tensor_n_bytes("t", GgmlType::F32, &[]).unwrap(), 4);
        assert_eq!(tensor_n_bytes("t", GgmlType::F16, &[0, 5]).unwrap(), 0);
    }

    #[test]
    fn overflowing_dims_refused() {
        let e = tensor_n_bytes("t", GgmlType::F32, &[1 << 32, 1 << 32]).unwrap_err();
        assert!(matches!(e, GgufError::DimsOverflow { .. }));
        let e = tensor_n_bytes("t", GgmlType::F32, &[1 << 62, 1]).unwrap_err();
        assert!(matches!(e, GgufError::DimsOverflow { .. }), "{e}");
    }

    #[test]
    fn partial_block_row_refused() {
        let e = tensor_n_bytes("t", GgmlType::Q8_0, &[33, 1]).unwrap_err();
        assert!(matches!(e, GgufError::RowNotBlockMultiple { row: 33, .. }));
    }
}
