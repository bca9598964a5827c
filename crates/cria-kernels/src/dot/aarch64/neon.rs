//! NEON dot products.

use crate::GgmlType;
use crate::dot::RowsFn;

pub(super) fn rows_kernel(_ty: GgmlType) -> Option<RowsFn> {
    None
}
