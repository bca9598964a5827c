//! Prefill (several tokens) for the IQ2 and IQ3 grid formats: each weight row is unpacked once (signed
//! values, each 16's integer multiplier, d) and then dotted with every token by a plain AVX2 loop, instead of
//! decoding the grids again for each token. The integer lanes are exact and the float steps are those of
//! `iq_scalar::grid`, so the bits are the reference's and the row kernels' (`tests/iq_kernels.rs`).

use crate::GgmlType;
use crate::dot::TiledFn;
use crate::quant::blocks::BlockQ8K;
use crate::quant::iq_blocks::*;
use crate::quant::iq_unpack::{self, Unpacked};
use bytemuck::cast_slice as c;
use std::arch::x86_64::*;
use std::cell::RefCell;

/// One unpacked super-block.
#[derive(Clone, Copy)]
struct Block {
    q: [i8; 256],
    mult: [i16; 16],
    d: f32,
}

/// A grid format's unpacking: its per-16 multiplier and the factor applied after the horizontal sum.
struct Format {
    unpack: UnpackFn,
    factor: f32,
}

/// Unpacks one weight row into the given buffer.
type UnpackFn = fn(&[u8], &mut Vec<Block>);

fn odd(ls: u8) -> i16 {
    2 * ls as i16 + 1
}

/// Unpacks every super-block of `row` (blocks of type `B`) into `out`.
fn unpack_with<B: bytemuck::Pod>(
    row: &[u8],
    out: &mut Vec<Block>,
    f: impl Fn(&B) -> (f32, Unpacked),
    mult: fn(u8) -> i16,
) {
    out.clear();
    for b in c::<u8, B>(row) {
        let (d, u) = f(b);
        out.push(Block {
            q: u.q,
            mult: u.ls.map(mult),
            d,
        });
    }
}

fn format(ty: GgmlType) -> Option<Format> {
    use GgmlType::*;
    let (unpack, factor): (UnpackFn, f32) = match ty {
        IQ2_XXS => (
            |r, o| unpack_with(r, o, |b: &BlockIQ2XXS| (b.d(), iq_unpack::iq2_xxs(b)), odd),
            0.125,
        ),
        IQ2_XS => (
            |r, o| unpack_with(r, o, |b: &BlockIQ2XS| (b.d(), iq_unpack::iq2_xs(b)), odd),
            0.125,
        ),
        IQ2_S => (
            |r, o| unpack_with(r, o, |b: &BlockIQ2S| (b.d(), iq_unpack::iq2_s(b)), odd),
            0.125,
        ),
        IQ3_XXS => (
            |r, o| unpack_with(r, o, |b: &BlockIQ3XXS| (b.d(), iq_unpack::iq3_xxs(b)), odd),
            0.25,
        ),
        IQ3_S => (
            |r, o| unpack_with(r, o, |b: &BlockIQ3S| (b.d(), iq_unpack::iq3_s(b)), odd),
            1.0,
        ),
        _ => return None,
    };
    Some(Format { unpack, factor })
}

#[inline]
#[target_feature(enable = "avx2,fma")]
fn load(x: &[i8]) -> __m256i {
    let x = &x[..32];
    // SAFETY: x holds 32 bytes (sliced just above).
    unsafe { _mm256_loadu_si256(x.as_ptr().cast()) }
}

/// llama.cpp's `hsum_float_8`.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn hsum(v: __m256) -> f32 {
    let x = _mm_add_ps(_mm256_extractf128_ps::<1>(v), _mm256_castps256_ps128(v));
    let x = _mm_add_ps(x, _mm_movehl_ps(x, x));
    _mm_cvtss_f32(_mm_add_ss(x, _mm_movehdup_ps(x)))
}

/// factor · hsum over super-blocks of `fma(d_w·d_a, lanes, acc)`, lanes = Σ mult·q·a per 4 neighbours.
#[target_feature(enable = "avx2,fma")]
fn dot_unpacked(w: &[Block], a: &[BlockQ8K], factor: f32) -> f32 {
    let mut acc = _mm256_setzero_ps();
    for (w, a) in w.iter().zip(a) {
        let mut sumi = _mm256_setzero_si256();
        for ib in 0..8 {
            let q = load(&w.q[32 * ib..]);
            let y = load(&a.qs[32 * ib..]);
            // |q| ≤ 127 and |a| ≤ 127: the pair sums fit in i16
            let p16 = _mm256_maddubs_epi16(_mm256_sign_epi8(q, q), _mm256_sign_epi8(y, q));
            let m = _mm256_set_m128i(
                _mm_set1_epi16(w.mult[2 * ib + 1]),
                _mm_set1_epi16(w.mult[2 * ib]),
            );
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p16, m));
        }
        let scale = _mm256_set1_ps(w.d * a.d());
        acc = _mm256_fmadd_ps(scale, _mm256_cvtepi32_ps(sumi), acc);
    }
    factor * hsum(acc)
}

thread_local! {
    static ROW: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

#[allow(clippy::too_many_arguments)]
fn tiled(
    f: &Format,
    w: &[u8],
    w_row: usize,
    acts: &[u8],
    a_row: usize,
    n_tok: usize,
    out: &mut [f32],
    out_stride: usize,
) {
    ROW.with_borrow_mut(|row| {
        for (r, wr) in w.chunks_exact(w_row).enumerate() {
            (f.unpack)(wr, row);
            for t in 0..n_tok {
                let a: &[BlockQ8K] = c(&acts[t * a_row..(t + 1) * a_row]);
                // SAFETY: this table is only reached on a CPU with AVX2 and FMA (`x86::tiled_kernel`).
                out[t * out_stride + r] = unsafe { dot_unpacked(row, a, f.factor) };
            }
        }
    });
}

/// The several-token kernel of an IQ2 / IQ3 format (AVX2 + FMA; callers check the CPU). The others' row kernels
/// decode cheaply enough (IQ4_XS, single thread, 256 x 4096 x 64 tokens: ~82 GFLOP/s either way).
pub(super) fn tiled_kernel(ty: GgmlType) -> Option<TiledFn> {
    macro_rules! tiled {
        ($t:ident) => {
            Some(|w, w_row, acts, a_row, n_tok, out, out_stride| {
                if let Some(f) = format(GgmlType::$t) {
                    tiled(&f, w, w_row, acts, a_row, n_tok, out, out_stride);
                }
            })
        };
    }
    use GgmlType::*;
    match ty {
        IQ2_XXS => tiled!(IQ2_XXS),
        IQ2_XS => tiled!(IQ2_XS),
        IQ2_S => tiled!(IQ2_S),
        IQ3_XXS => tiled!(IQ3_XXS),
        IQ3_S => tiled!(IQ3_S),
        _ => None,
    }
}
