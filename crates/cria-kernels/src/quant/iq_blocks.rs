//! The block structs of the IQ, ternary and MXFP4 formats, bit-exact with `ggml-common.h` (byte arrays only,
//! like `blocks.rs`, so any `&[u8]` casts to them; multi-byte fields are little-endian).

use super::blocks::f16_at;
use crate::GgmlType;
use bytemuck::{Pod, Zeroable};

/// 32 4-bit indices into the IQ4_NL codebook, times d.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Debug)]
pub struct BlockIQ4NL {
    pub d: [u8; 2],
    pub qs: [u8; 16],
}

/// 256 4-bit IQ4_NL indices in 8 sub-blocks of 32, each with a 6-bit scale (low 4 bits in `scales_l`, high 2
/// in `scales_h`), value d·(scale − 32)·codebook[q].
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Debug)]
pub struct BlockIQ4XS {
    pub d: [u8; 2],
    pub scales_h: [u8; 2],
    pub scales_l: [u8; 4],
    pub qs: [u8; 128],
}

/// 32 E2M1 values (4 bits each) sharing one E8M0 exponent.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Debug)]
pub struct BlockMXFP4 {
    pub e: u8,
    pub qs: [u8; 16],
}

/// 256 ternary values: 5 per byte in `qs` (base 3, scaled to a byte), 4 per byte in `qh`.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Debug)]
pub struct BlockTQ1_0 {
    pub qs: [u8; 48],
    pub qh: [u8; 4],
    pub d: [u8; 2],
}

/// 256 ternary values, 2 bits each (0, 1, 2 for −1, 0, +1).
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Debug)]
pub struct BlockTQ2_0 {
    pub qs: [u8; 64],
    pub d: [u8; 2],
}

/// 256 values as 8-element grid points: per 32, four 8-bit grid indices and a u32 of four 7-bit sign codes
/// plus a 4-bit scale (32 little-endian u16 in all).
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Debug)]
pub struct BlockIQ2XXS {
    pub d: [u8; 2],
    pub qs: [u8; 64],
}

/// 256 values: 32 u16 of a 9-bit grid index and a 7-bit sign code, a 4-bit scale per 16.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Debug)]
pub struct BlockIQ2XS {
    pub d: [u8; 2],
    pub qs: [u8; 64],
    pub scales: [u8; 8],
}

/// 256 values: 10-bit grid indices (low 8 in `qs[..32]`, high 2 in `qh`), sign bits in `qs[32..]`, a 4-bit
/// scale per 16.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Debug)]
pub struct BlockIQ2S {
    pub d: [u8; 2],
    pub qs: [u8; 64],
    pub qh: [u8; 8],
    pub scales: [u8; 8],
}

/// 256 values as 4-element grid points: 64 8-bit indices, then per 32 a u32 of four sign codes and a scale.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Debug)]
pub struct BlockIQ3XXS {
    pub d: [u8; 2],
    pub qs: [u8; 96],
}

/// 256 values as 4-element grid points: 9-bit indices (high bits in `qh`), sign bits, a 4-bit scale per 32.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Debug)]
pub struct BlockIQ3S {
    pub d: [u8; 2],
    pub qs: [u8; 64],
    pub qh: [u8; 8],
    pub signs: [u8; 32],
    pub scales: [u8; 4],
}

/// 256 values as 8-element ternary grid points: 11-bit indices, per 32 a 3-bit scale and a delta sign.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Debug)]
pub struct BlockIQ1S {
    pub d: [u8; 2],
    pub qs: [u8; 32],
    pub qh: [u8; 16],
}

/// 256 values as 8-element ternary grid points: 11-bit indices and a delta sign per 8, 3-bit scales per 16,
/// and the f16 super-block scale spread over the top nibbles of the four u16 of `scales`.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Debug)]
pub struct BlockIQ1M {
    pub qs: [u8; 32],
    pub qh: [u8; 16],
    pub scales: [u8; 8],
}

macro_rules! d_f16 {
    ($($t:ty),*) => {
        $(
            impl $t {
                /// The super-block scale (stored as f16).
                #[inline]
                pub fn d(&self) -> f32 {
                    f16_at(self.d)
                }
            }
        )*
    };
}

d_f16!(
    BlockIQ4NL,
    BlockIQ4XS,
    BlockTQ1_0,
    BlockTQ2_0,
    BlockIQ2XXS,
    BlockIQ2XS,
    BlockIQ2S,
    BlockIQ3XXS,
    BlockIQ3S,
    BlockIQ1S
);

impl BlockIQ1M {
    /// The four little-endian u16 of `scales`.
    #[inline]
    pub fn sc(&self) -> [u16; 4] {
        std::array::from_fn(|i| u16::from_le_bytes([self.scales[2 * i], self.scales[2 * i + 1]]))
    }

    /// The super-block scale, an f16 assembled from the top nibble of each u16 of `scales`.
    #[inline]
    pub fn d(&self) -> f32 {
        let sc = self.sc();
        let bits =
            (sc[0] >> 12) | ((sc[1] >> 8) & 0x00f0) | ((sc[2] >> 4) & 0x0f00) | (sc[3] & 0xf000);
        half::f16::from_bits(bits).to_f32()
    }
}

impl BlockMXFP4 {
    /// Half the E8M0 scale 2^(e − 127) (the codebook holds doubled E2M1 values), as ggml's
    /// `ggml_e8m0_to_fp32_half`.
    #[inline]
    pub fn d(&self) -> f32 {
        e8m0_to_f32_half(self.e)
    }
}

/// 2^(e − 128) as an f32 bit pattern (subnormal for e < 2), as ggml's `ggml_e8m0_to_fp32_half`.
#[inline]
pub fn e8m0_to_f32_half(e: u8) -> f32 {
    let bits = if e < 2 {
        0x0020_0000u32 << e
    } else {
        ((e as u32) - 1) << 23
    };
    f32::from_bits(bits)
}

/// The IQ4_NL / IQ4_XS codebook.
pub const KVALUES_IQ4NL: [i8; 16] = [
    -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113,
];

/// The MXFP4 codebook: E2M1 values doubled.
pub const KVALUES_MXFP4: [i8; 16] = [0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12];

/// Little-endian u16 `i` of `b`.
#[inline]
pub(crate) fn u16_at(b: &[u8], i: usize) -> u16 {
    u16::from_le_bytes([b[2 * i], b[2 * i + 1]])
}

/// Little-endian u32 `i` of `b`.
#[inline]
pub(crate) fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]])
}

/// Where a read-only format keeps its f16 scale: the byte offset in the block, `None` for IQ1_M (spread over
/// the top nibbles of `scales`) and MXFP4 (an E8M0 exponent at byte 0).
fn d_offset(ty: GgmlType) -> Option<usize> {
    use GgmlType::*;
    match ty {
        TQ1_0 => Some(52),
        TQ2_0 => Some(64),
        IQ1_M | MXFP4 => None,
        _ => Some(0),
    }
}

/// `n_blocks` seeded random blocks of a read-only format (`quant::is_read_only`), every byte random but the
/// scale, which is a sane f16 (±2⁻¹⁰..2⁻⁷) or E8M0 exponent: weights for tests and benchmarks, as Cria cannot
/// quantize to these formats.
///
/// # Panics
/// For a format Cria quantizes to (use `quantize_row`).
pub fn random_blocks(ty: GgmlType, n_blocks: usize, seed: u64) -> Vec<u8> {
    assert!(
        super::is_read_only(ty),
        "random_blocks: {ty:?} has a quantizer"
    );
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (s >> 33) as u32
    };
    let size = ty.type_size();
    let mut out: Vec<u8> = (0..n_blocks * size).map(|_| next() as u8).collect();
    for b in out.chunks_exact_mut(size) {
        let sign = if next() & 1 == 0 { 1.0 } else { -1.0 };
        let d = half::f16::from_f32(sign * (1 + next() % 8) as f32 / 1024.0).to_bits();
        match d_offset(ty) {
            Some(o) => b[o..o + 2].copy_from_slice(&d.to_le_bytes()),
            None if ty == GgmlType::MXFP4 => b[0] = 118 + (next() % 4) as u8,
            None => {
                for k in 0..4 {
                    let hi = ((d >> (4 * k)) & 0xf) as u8;
                    b[48 + 2 * k + 1] = (b[48 + 2 * k + 1] & 0x0f) | (hi << 4);
                }
            }
        }
    }
    out
}
