//! aarch64 kernels: NEON (+dotprod when present). Reached only through `rows_kernel`, which `dot` calls after
//! checking the CPU supports NEON.

mod neon;

use super::RowsFn;
use crate::GgmlType;
use crate::isa::Isa;

pub(crate) fn rows_kernel(isa: Isa, ty: GgmlType) -> Option<RowsFn> {
    match isa {
        Isa::Neon => neon::rows_kernel(ty),
        _ => None,
    }
}
