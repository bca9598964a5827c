//! AVX-512 kernels.

use crate::GgmlType;
use crate::dot::{RowsFn, TiledFn};

pub(super) fn rows_kernel(_ty: GgmlType) -> Option<RowsFn> {
    None
}

pub(super) fn tiled_kernel(_ty: GgmlType) -> Option<TiledFn> {
    None
}
