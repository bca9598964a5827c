//! aarch64 kernels: NEON (+dotprod when present). Reached only through `rows_kernel`, which `dot` calls after
//! checking the CPU supports NEON; the dotprod variant is chosen only where the CPU reports it.

mod iq_neon;
mod neon;

use super::RowsFn;
use crate::GgmlType;
use crate::isa::Isa;

pub(crate) fn rows_kernel(isa: Isa, ty: GgmlType) -> Option<RowsFn> {
    if crate::quant::is_read_only(ty) {
        // the IQ, ternary and MXFP4 formats: iq_neon.rs where it has a kernel, else the scalar reference
        return if isa == Isa::Neon {
            iq_neon::rows_kernel(ty)
        } else {
            None
        };
    }
    match isa {
        Isa::Neon if crate::isa::has_dotprod() => neon::dotprod::rows_kernel(ty),
        Isa::Neon => neon::plain::rows_kernel(ty),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    //! The variant `rows_kernel` may not pick on this CPU (plain NEON where dotprod exists) against scalar.
    use super::*;
    use crate::quant::{activation_type, quantize_activation_with, quantize_row};

    fn data(n: usize, seed: u32) -> Vec<f32> {
        crate::test_data::uniform(n, seed, 2.0)
    }

    #[test]
    fn every_neon_variant_matches_scalar() {
        type Table = fn(GgmlType) -> Option<RowsFn>;
        let mut variants: Vec<(&str, Table)> = vec![("neon", neon::plain::rows_kernel)];
        if crate::isa::has_dotprod() {
            variants.push(("dotprod", neon::dotprod::rows_kernel));
        }
        let (n, rows) = (512, 5);
        // the read-only IQ, ternary and MXFP4 formats: tests/iq_kernels.rs
        for ty in GgmlType::ALL
            .into_iter()
            .filter(|&t| crate::quant::can_quantize(t))
        {
            let rb = ty.row_bytes(n).unwrap();
            let mut w = vec![0u8; rb * rows];
            for (r, chunk) in w.chunks_exact_mut(rb).enumerate() {
                quantize_row(ty, &data(n, r as u32), chunk).unwrap();
            }
            let at = activation_type(ty);
            let mut a = vec![0u8; at.row_bytes(n).unwrap()];
            quantize_activation_with(Isa::Scalar, at, &data(n, 99), &mut a);
            let want: Vec<f32> = w
                .chunks_exact(rb)
                .map(|r| crate::dot::scalar::dot(ty, r, &a))
                .collect();
            for (name, table) in &variants {
                let Some(k) = table(ty) else { continue };
                let mut got = vec![0f32; rows];
                k(&w, rb, &a, &mut got);
                for (g, s) in got.iter().zip(&want) {
                    assert!(
                        (g - s).abs() <= 1e-4 * s.abs().max(1.0),
                        "{name} {ty:?}: {g} vs {s}"
                    );
                }
            }
        }
    }
}
