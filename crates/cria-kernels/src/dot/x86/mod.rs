//! x86-64 kernels: AVX2 (+FMA, F16C, AVX-VNNI when present) and AVX-512 (F/BW/VL, +VNNI when present).
//! Every kernel here is reached only through the tables below, which `dot::rows_kernel` calls after checking
//! that the CPU supports the requested path.

mod avx2;
mod avx512;

use super::{RowsFn, TiledFn};
use crate::GgmlType;
use crate::isa::Isa;

pub(crate) fn rows_kernel(isa: Isa, ty: GgmlType) -> Option<RowsFn> {
    match isa {
        Isa::Avx512 => avx512::rows_kernel(ty).or_else(|| avx2::rows_kernel(ty)),
        Isa::Avx2 => avx2::rows_kernel(ty),
        _ => None,
    }
}

pub(crate) fn tiled_kernel(isa: Isa, ty: GgmlType) -> Option<TiledFn> {
    match isa {
        Isa::Avx512 => avx512::tiled_kernel(ty),
        _ => None,
    }
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
