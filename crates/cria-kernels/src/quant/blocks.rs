//! One `#[repr(C)]` struct per ggml block format, bit-exact with `ggml-common.h`.
//!
//! Every field is a byte array (alignment 1), so a `&[u8]` of any alignment (an mmapped tensor, a scratch
//! `Vec<u8>`) casts to a block slice with `bytemuck`, no copy and no `unsafe`. Multi-byte scalars are
//! little-endian and read through the accessors.

use bytemuck::{Pod, Zeroable};
use half::f16;

/// Elements in a legacy block (Q4_0 .. Q8_1).
pub const QK: usize = 32;
/// Elements in a K-quant super-block.
pub const QK_K: usize = 256;

#[inline]
pub(crate) fn f16_at(b: [u8; 2]) -> f32 {
    f16::from_le_bytes(b).to_f32()
}

#[inline]
pub(crate) fn f16_bytes(v: f32) -> [u8; 2] {
    f16::from_f32(v).to_le_bytes()
}

macro_rules! d_accessors {
    ($($field:ident),*) => {
        $(
            /// The field as f32 (stored as f16).
            #[inline]
            pub fn $field(&self) -> f32 {
                f16_at(self.$field)
            }
        )*
    };
}

/// 32 4-bit quants, value (q − 8)·d.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Debug)]
pub struct BlockQ4_0 {
    pub d: [u8; 2],
    pub qs: [u8; 16],
}

/// 32 4-bit quants, value q·d + m.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Debug)]
pub struct BlockQ4_1 {
    pub d: [u8; 2],
    pub m: [u8; 2],
    pub qs: [u8; 16],
}

/// 32 5-bit quants, value (q − 16)·d; the 5th bits in `qh` (a little-endian u32).
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Debug)]
pub struct BlockQ5_0 {
    pub d: [u8; 2],
    pub qh: [u8; 4],
    pub qs: [u8; 16],
}

/// 32 5-bit quants, value q·d + m.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Debug)]
pub struct BlockQ5_1 {
    pub d: [u8; 2],
    pub m: [u8; 2],
    pub qh: [u8; 4],
    pub qs: [u8; 16],
}

/// 32 8-bit quants, value q·d.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Debug)]
pub struct BlockQ8_0 {
    pub d: [u8; 2],
    pub qs: [i8; 32],
}

/// 32 8-bit quants with `s` = d·Σq (f16).
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Debug)]
pub struct BlockQ8_1 {
    pub d: [u8; 2],
    pub s: [u8; 2],
    pub qs: [i8; 32],
}

/// 256 2-bit quants in 16 sub-blocks of 16; scale byte = low nibble scale, high nibble min.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Debug)]
pub struct BlockQ2K {
    pub scales: [u8; 16],
    pub qs: [u8; 64],
    pub d: [u8; 2],
    pub dmin: [u8; 2],
}

/// 256 3-bit quants: 2 low bits in `qs`, the high bit in `hmask`, 6-bit scales packed in 12 bytes.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Debug)]
pub struct BlockQ3K {
    pub hmask: [u8; 32],
    pub qs: [u8; 64],
    pub scales: [u8; 12],
    pub d: [u8; 2],
}

/// 256 4-bit quants in 8 sub-blocks of 32 with 6-bit scales and mins.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Debug)]
pub struct BlockQ4K {
    pub d: [u8; 2],
    pub dmin: [u8; 2],
    pub scales: [u8; 12],
    pub qs: [u8; 128],
}

/// 256 5-bit quants in 8 sub-blocks of 32 with 6-bit scales and mins.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Debug)]
pub struct BlockQ5K {
    pub d: [u8; 2],
    pub dmin: [u8; 2],
    pub scales: [u8; 12],
    pub qh: [u8; 32],
    pub qs: [u8; 128],
}

/// 256 6-bit quants in 16 sub-blocks of 16 with i8 scales.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Debug)]
pub struct BlockQ6K {
    pub ql: [u8; 128],
    pub qh: [u8; 64],
    pub scales: [i8; 16],
    pub d: [u8; 2],
}

/// 256 8-bit quants with an f32 scale and the sums of each 16 quants (the activation format of K-quants).
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Debug)]
pub struct BlockQ8K {
    pub d: [u8; 4],
    pub qs: [i8; 256],
    pub bsums: [u8; 32],
}

impl BlockQ4_0 {
    d_accessors!(d);
}
impl BlockQ4_1 {
    d_accessors!(d, m);
}
impl BlockQ5_0 {
    d_accessors!(d);
    /// The 5th bits, bit j for element j.
    pub fn qh(&self) -> u32 {
        u32::from_le_bytes(self.qh)
    }
}
impl BlockQ5_1 {
    d_accessors!(d, m);
    /// The 5th bits, bit j for element j.
    pub fn qh(&self) -> u32 {
        u32::from_le_bytes(self.qh)
    }
}
impl BlockQ8_0 {
    d_accessors!(d);
}
impl BlockQ8_1 {
    d_accessors!(d, s);
}
impl BlockQ2K {
    d_accessors!(d, dmin);
}
impl BlockQ3K {
    d_accessors!(d);
}
impl BlockQ4K {
    d_accessors!(d, dmin);
}
impl BlockQ5K {
    d_accessors!(d, dmin);
}
impl BlockQ6K {
    d_accessors!(d);
}
impl BlockQ8K {
    /// The scale (f32).
    #[inline]
    pub fn d(&self) -> f32 {
        f32::from_le_bytes(self.d)
    }
    /// Σ qs[16j .. 16j+16].
    #[inline]
    pub fn bsum(&self, j: usize) -> i16 {
        i16::from_le_bytes([self.bsums[2 * j], self.bsums[2 * j + 1]])
    }
}

/// The 6-bit scale and min of sub-block `j` (0..8) of a Q4_K / Q5_K block.
#[inline]
pub fn scale_min_k4(j: usize, q: &[u8; 12]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

/// The 16 signed 6-bit scales (already minus 32) of a Q3_K block.
pub fn q3k_scales(s: &[u8; 12]) -> [i8; 16] {
    let mut out = [0i8; 16];
    for (j, o) in out.iter_mut().enumerate() {
        let low = if j < 8 { s[j] & 0xF } else { s[j - 8] >> 4 };
        let high = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
        *o = ((low | (high << 4)) as i8) - 32;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::GgmlType;

    #[test]
    fn struct_sizes_match_ggml() {
        let sizes = [
            (GgmlType::Q4_0, size_of::<BlockQ4_0>()),
            (GgmlType::Q4_1, size_of::<BlockQ4_1>()),
            (GgmlType::Q5_0, size_of::<BlockQ5_0>()),
            (GgmlType::Q5_1, size_of::<BlockQ5_1>()),
            (GgmlType::Q8_0, size_of::<BlockQ8_0>()),
            (GgmlType::Q8_1, size_of::<BlockQ8_1>()),
            (GgmlType::Q2_K, size_of::<BlockQ2K>()),
            (GgmlType::Q3_K, size_of::<BlockQ3K>()),
            (GgmlType::Q4_K, size_of::<BlockQ4K>()),
            (GgmlType::Q5_K, size_of::<BlockQ5K>()),
            (GgmlType::Q6_K, size_of::<BlockQ6K>()),
            (GgmlType::Q8_K, size_of::<BlockQ8K>()),
        ];
        for (ty, size) in sizes {
            assert_eq!(ty.type_size(), size, "{ty:?}");
        }
    }

    #[test]
    fn k4_scales_unpack_like_ggml() {
        let q = [
            0xC1, 0x42, 0x03, 0x04, 0x85, 0x06, 0x07, 0x08, 0x9A, 0xBC, 0xDE, 0xF0,
        ];
        assert_eq!(scale_min_k4(0, &q), (0x01, 0x05));
        assert_eq!(scale_min_k4(4, &q), (0x0A | (3 << 4), 0x09 | (2 << 4)));
        assert_eq!(scale_min_k4(5, &q), (0x0C | (1 << 4), 0x0B));
    }
}
