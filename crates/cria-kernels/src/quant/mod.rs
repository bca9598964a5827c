//! Block formats: the scalar reference quantize / dequantize of every ggml type (the definition of
//! correct), and the fast quantizers of the activation formats (Q8_0, Q8_1, Q8_K).

pub mod blocks;
mod fast;
mod float;
mod iq;
pub mod iq_blocks;
pub(crate) mod iq_grids;
pub(crate) mod iq_unpack;
mod k45;
mod kmake;
mod kquants;
mod legacy;

pub use fast::quantize_activation;
pub use fast::quantize_activation_with;
pub(crate) use kquants::q6_at;
pub(crate) use legacy::unpack5;

use crate::{GgmlType, KernelError};

/// The activation format the dot product for weight type `w` consumes: Q4_0/Q5_0/Q8_0 -> Q8_0,
/// Q4_1/Q5_1/Q8_1 -> Q8_1, K-quants -> Q8_K, F32/F16/BF16 -> F32; as ggml's `vec_dot_type`: IQ4_NL and MXFP4
/// -> Q8_0, the other IQ and the ternary formats -> Q8_K.
pub fn activation_type(w: GgmlType) -> GgmlType {
    use GgmlType::*;
    match w {
        Q4_0 | Q5_0 | Q8_0 | IQ4_NL | MXFP4 => Q8_0,
        Q4_1 | Q5_1 | Q8_1 => Q8_1,
        Q2_K | Q3_K | Q4_K | Q5_K | Q6_K | Q8_K => Q8_K,
        IQ2_XXS | IQ2_XS | IQ2_S | IQ3_XXS | IQ3_S | IQ1_S | IQ1_M | IQ4_XS | TQ1_0 | TQ2_0 => Q8_K,
        F32 | F16 | BF16 => F32,
    }
}

/// Checks that `n` elements of `ty` fill exactly `bytes` bytes.
pub(crate) fn check_row(ty: GgmlType, n: usize, bytes: usize) -> Result<(), KernelError> {
    let expected = ty.row_bytes(n).ok_or(KernelError::NotWholeBlocks {
        ty,
        n,
        block: ty.block_size(),
    })?;
    if expected != bytes {
        return Err(KernelError::ByteLength {
            ty,
            n,
            expected,
            got: bytes,
        });
    }
    Ok(())
}

/// Reference dequantization of one row (`dst.len()` elements) of type `ty`.
pub fn dequantize_row(ty: GgmlType, src: &[u8], dst: &mut [f32]) -> Result<(), KernelError> {
    check_row(ty, dst.len(), src.len())?;
    use GgmlType::*;
    use bytemuck::cast_slice as c;
    match ty {
        F32 => float::dequantize_f32(src, dst),
        F16 => float::dequantize_f16(src, dst),
        BF16 => float::dequantize_bf16(src, dst),
        Q4_0 => legacy::dequantize_q4_0(c(src), dst),
        Q4_1 => legacy::dequantize_q4_1(c(src), dst),
        Q5_0 => legacy::dequantize_q5_0(c(src), dst),
        Q5_1 => legacy::dequantize_q5_1(c(src), dst),
        Q8_0 => legacy::dequantize_q8_0(c(src), dst),
        Q8_1 => legacy::dequantize_q8_1(c(src), dst),
        Q2_K => kquants::dequantize_q2_k(c(src), dst),
        Q3_K => kquants::dequantize_q3_k(c(src), dst),
        Q4_K => k45::dequantize_q4_k(c(src), dst),
        Q5_K => k45::dequantize_q5_k(c(src), dst),
        Q6_K => kquants::dequantize_q6_k(c(src), dst),
        Q8_K => kquants::dequantize_q8_k(c(src), dst),
        IQ4_NL => iq::dequantize_iq4_nl(c(src), dst),
        IQ4_XS => iq::dequantize_iq4_xs(c(src), dst),
        MXFP4 => iq::dequantize_mxfp4(c(src), dst),
        TQ1_0 => iq::dequantize_tq1_0(c(src), dst),
        TQ2_0 => iq::dequantize_tq2_0(c(src), dst),
        IQ2_XXS => iq::dequantize_iq2_xxs(c(src), dst),
        IQ2_XS => iq::dequantize_iq2_xs(c(src), dst),
        IQ2_S => iq::dequantize_iq2_s(c(src), dst),
        IQ3_XXS => iq::dequantize_iq3_xxs(c(src), dst),
        IQ3_S => iq::dequantize_iq3_s(c(src), dst),
        IQ1_S => iq::dequantize_iq1_s(c(src), dst),
        IQ1_M => iq::dequantize_iq1_m(c(src), dst),
    }
    Ok(())
}

/// Reference quantization of one row (`src.len()` elements) into type `ty` (ggml's `quantize_row_*_ref`:
/// no importance matrix); [`KernelError::NoQuantizer`] for the formats of [`can_quantize`]` == false`.
pub fn quantize_row(ty: GgmlType, src: &[f32], dst: &mut [u8]) -> Result<(), KernelError> {
    check_row(ty, src.len(), dst.len())?;
    use GgmlType::*;
    use bytemuck::cast_slice_mut as c;
    match ty {
        F32 => float::quantize_f32(src, dst),
        F16 => float::quantize_f16(src, dst),
        BF16 => float::quantize_bf16(src, dst),
        Q4_0 => legacy::quantize_q4_0(src, c(dst)),
        Q4_1 => legacy::quantize_q4_1(src, c(dst)),
        Q5_0 => legacy::quantize_q5_0(src, c(dst)),
        Q5_1 => legacy::quantize_q5_1(src, c(dst)),
        Q8_0 => legacy::quantize_q8_0(src, c(dst)),
        Q8_1 => legacy::quantize_q8_1(src, c(dst)),
        Q2_K => kquants::quantize_q2_k(src, c(dst)),
        Q3_K => kquants::quantize_q3_k(src, c(dst)),
        Q4_K => k45::quantize_q4_k(src, c(dst)),
        Q5_K => k45::quantize_q5_k(src, c(dst)),
        Q6_K => kquants::quantize_q6_k(src, c(dst)),
        Q8_K => kquants::quantize_q8_k(src, c(dst)),
        IQ4_NL | IQ4_XS | MXFP4 | TQ1_0 | TQ2_0 | IQ2_XXS | IQ2_XS | IQ2_S | IQ3_XXS | IQ3_S
        | IQ1_S | IQ1_M => return Err(KernelError::NoQuantizer(ty)),
    }
    Ok(())
}

/// Whether [`quantize_row`] writes `ty` (every format but the IQ, ternary and MXFP4 ones, which Cria only reads).
pub fn can_quantize(ty: GgmlType) -> bool {
    !is_read_only(ty)
}

/// The IQ, ternary and MXFP4 formats.
pub fn is_read_only(ty: GgmlType) -> bool {
    use GgmlType::*;
    matches!(
        ty,
        IQ4_NL
            | IQ4_XS
            | MXFP4
            | TQ1_0
            | TQ2_0
            | IQ2_XXS
            | IQ2_XS
            | IQ2_S
            | IQ3_XXS
            | IQ3_S
            | IQ1_S
            | IQ1_M
    )
}
