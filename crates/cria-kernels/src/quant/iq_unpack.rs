//! The IQ grid formats unpacked to integers: each super-block's 256 signed grid values, the raw scale field
//! of each 16 elements and (IQ1) the delta signs. Dequantization and the dot products both start here, so
//! the bit layouts of `ggml-quants.c` are written once.

#![allow(clippy::needless_range_loop)] // index loops mirror ggml's reference code

use super::iq_blocks::*;
use super::iq_grids::*;

/// One super-block of a grid format, unpacked.
pub(crate) struct Unpacked {
    /// Element e's grid value with its sign.
    pub q: [i8; 256],
    /// The raw scale field (before ggml's `2·ls + 1` or `0.5 + ls`) of elements 16·j..16·j + 16.
    pub ls: [u8; 16],
    /// IQ1 only: bit g set when the delta of elements 8·g..8·g + 8 is negative.
    pub delta_neg: u32,
}

impl Unpacked {
    fn new() -> Self {
        Unpacked {
            q: [0; 256],
            ls: [0; 16],
            delta_neg: 0,
        }
    }

    /// Writes 8 grid bytes at element `at` with the signs of `signs` (bit j: element j negative).
    fn put8(&mut self, at: usize, grid: [u8; 8], signs: u8) {
        for j in 0..8 {
            let g = grid[j] as i8;
            self.q[at + j] = if signs & (1 << j) != 0 { -g } else { g };
        }
    }

    /// Both 16-element halves of sub-block `ib` get scale field `ls`.
    fn set_ls32(&mut self, ib: usize, ls: u8) {
        self.ls[2 * ib] = ls;
        self.ls[2 * ib + 1] = ls;
    }
}

fn grid8(v: u64) -> [u8; 8] {
    v.to_le_bytes()
}

/// Two 4-byte grid points side by side.
fn grid4x2(a: u32, b: u32) -> [u8; 8] {
    let (a, b) = (a.to_le_bytes(), b.to_le_bytes());
    [a[0], a[1], a[2], a[3], b[0], b[1], b[2], b[3]]
}

pub(crate) fn iq2_xxs(b: &BlockIQ2XXS) -> Unpacked {
    let mut u = Unpacked::new();
    for ib in 0..8 {
        let (aux0, aux1) = (u32_at(&b.qs, 2 * ib), u32_at(&b.qs, 2 * ib + 1));
        u.set_ls32(ib, (aux1 >> 28) as u8);
        for l in 0..4 {
            let idx = (aux0 >> (8 * l)) & 0xff;
            let signs = KSIGNS_IQ2XS[((aux1 >> (7 * l)) & 127) as usize];
            u.put8(32 * ib + 8 * l, grid8(IQ2XXS_GRID[idx as usize]), signs);
        }
    }
    u
}

pub(crate) fn iq2_xs(b: &BlockIQ2XS) -> Unpacked {
    let mut u = Unpacked::new();
    for ib in 0..8 {
        u.ls[2 * ib] = b.scales[ib] & 0xf;
        u.ls[2 * ib + 1] = b.scales[ib] >> 4;
        for l in 0..4 {
            let v = u16_at(&b.qs, 4 * ib + l);
            let signs = KSIGNS_IQ2XS[(v >> 9) as usize];
            u.put8(
                32 * ib + 8 * l,
                grid8(IQ2XS_GRID[(v & 511) as usize]),
                signs,
            );
        }
    }
    u
}

pub(crate) fn iq2_s(b: &BlockIQ2S) -> Unpacked {
    let mut u = Unpacked::new();
    let (qs, signs) = b.qs.split_at(32);
    for ib in 0..8 {
        u.ls[2 * ib] = b.scales[ib] & 0xf;
        u.ls[2 * ib + 1] = b.scales[ib] >> 4;
        for l in 0..4 {
            let idx = qs[4 * ib + l] as usize | ((b.qh[ib] as usize) << (8 - 2 * l) & 0x300);
            u.put8(32 * ib + 8 * l, grid8(IQ2S_GRID[idx]), signs[4 * ib + l]);
        }
    }
    u
}

pub(crate) fn iq3_xxs(b: &BlockIQ3XXS) -> Unpacked {
    let mut u = Unpacked::new();
    let (qs, scales_and_signs) = b.qs.split_at(64);
    for ib in 0..8 {
        let aux = u32_at(scales_and_signs, ib);
        u.set_ls32(ib, (aux >> 28) as u8);
        for l in 0..4 {
            let signs = KSIGNS_IQ2XS[((aux >> (7 * l)) & 127) as usize];
            let g1 = IQ3XXS_GRID[qs[8 * ib + 2 * l] as usize];
            let g2 = IQ3XXS_GRID[qs[8 * ib + 2 * l + 1] as usize];
            u.put8(32 * ib + 8 * l, grid4x2(g1, g2), signs);
        }
    }
    u
}

pub(crate) fn iq3_s(b: &BlockIQ3S) -> Unpacked {
    let mut u = Unpacked::new();
    for ib in 0..8 {
        u.set_ls32(ib, (b.scales[ib / 2] >> (4 * (ib % 2))) & 0xf);
        let qh = b.qh[ib] as usize;
        for l in 0..4 {
            let i1 = b.qs[8 * ib + 2 * l] as usize | ((qh << (8 - 2 * l)) & 256);
            let i2 = b.qs[8 * ib + 2 * l + 1] as usize | ((qh << (7 - 2 * l)) & 256);
            let grid = grid4x2(IQ3S_GRID[i1], IQ3S_GRID[i2]);
            u.put8(32 * ib + 8 * l, grid, b.signs[4 * ib + l]);
        }
    }
    u
}

pub(crate) fn iq1_s(b: &BlockIQ1S) -> Unpacked {
    let mut u = Unpacked::new();
    for ib in 0..8 {
        let qh = u16_at(&b.qh, ib) as usize;
        u.set_ls32(ib, ((qh >> 12) & 7) as u8);
        if qh & 0x8000 != 0 {
            u.delta_neg |= 0xf << (4 * ib);
        }
        for l in 0..4 {
            let idx = b.qs[4 * ib + l] as usize | (((qh >> (3 * l)) & 7) << 8);
            u.put8(32 * ib + 8 * l, grid8(IQ1S_GRID[idx]), 0);
        }
    }
    u
}

pub(crate) fn iq1_m(b: &BlockIQ1M) -> Unpacked {
    let mut u = Unpacked::new();
    let sc = b.sc();
    for ib in 0..8 {
        let shift = 6 * (ib % 2);
        u.ls[2 * ib] = ((sc[ib / 2] >> shift) & 7) as u8;
        u.ls[2 * ib + 1] = ((sc[ib / 2] >> (shift + 3)) & 7) as u8;
        let (h0, h1) = (b.qh[2 * ib] as usize, b.qh[2 * ib + 1] as usize);
        let idx = [
            (h0 << 8) & 0x700,
            (h0 << 4) & 0x700,
            (h1 << 8) & 0x700,
            (h1 << 4) & 0x700,
        ];
        let neg = [h0 & 0x08, h0 & 0x80, h1 & 0x08, h1 & 0x80];
        for l in 0..4 {
            let i = b.qs[4 * ib + l] as usize | idx[l];
            u.put8(32 * ib + 8 * l, grid8(IQ1S_GRID[i]), 0);
            if neg[l] != 0 {
                u.delta_neg |= 1 << (4 * ib + l);
            }
        }
    }
    u
}

/// IQ4_XS: element values from the codebook and each 32's 6-bit scale field (both halves of `ls`).
pub(crate) fn iq4_xs(b: &BlockIQ4XS) -> Unpacked {
    let mut u = Unpacked::new();
    let sh = u16_at(&b.scales_h, 0);
    for ib in 0..8 {
        let lo = (b.scales_l[ib / 2] >> (4 * (ib % 2))) & 0xf;
        let hi = ((sh >> (2 * ib)) & 3) as u8;
        u.set_ls32(ib, lo | (hi << 4));
        for j in 0..16 {
            let q = b.qs[16 * ib + j];
            u.q[32 * ib + j] = KVALUES_IQ4NL[(q & 0xf) as usize];
            u.q[32 * ib + j + 16] = KVALUES_IQ4NL[(q >> 4) as usize];
        }
    }
    u
}

/// A 32-element block of a 4-bit codebook format (IQ4_NL, MXFP4): low nibbles are elements 0..16.
pub(crate) fn codebook32(qs: &[u8; 16], book: &[i8; 16]) -> [i8; 32] {
    let mut q = [0i8; 32];
    for j in 0..16 {
        q[j] = book[(qs[j] & 0xf) as usize];
        q[j + 16] = book[(qs[j] >> 4) as usize];
    }
    q
}

/// TQ2_0: element values 0..=3 (ggml's stored q, the value being q − 1).
pub(crate) fn tq2_0(b: &BlockTQ2_0) -> [u8; 256] {
    let mut q = [0u8; 256];
    for j in (0..64).step_by(32) {
        for l in 0..4 {
            for m in 0..32 {
                q[4 * j + 32 * l + m] = (b.qs[j + m] >> (2 * l)) & 3;
            }
        }
    }
    q
}

/// TQ1_0: element values 0..=2 (the value being q − 1), base-3 digits scaled into a byte.
pub(crate) fn tq1_0(b: &BlockTQ1_0) -> [u8; 256] {
    const POW3: [u8; 5] = [1, 3, 9, 27, 81];
    let digit = |byte: u8, n: usize| ((byte.wrapping_mul(POW3[n]) as u16 * 3) >> 8) as u8;
    let mut q = [0u8; 256];
    let mut e = 0;
    for (start, width) in [(0, 32), (32, 16)] {
        for n in 0..5 {
            for m in 0..width {
                q[e] = digit(b.qs[start + m], n);
                e += 1;
            }
        }
    }
    for n in 0..4 {
        for j in 0..4 {
            q[e] = digit(b.qh[j], n);
            e += 1;
        }
    }
    q
}
