//! AVX-512 matmul for a few tokens (up to [`MAX_TOKENS`]): a serving step's decoding sequences, one token
//! each, against the 32-element block formats (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0), 16 rows a pass.
//!
//! Why a kernel of its own: the prefill GEMM (`gemm512.rs`) prepares every call's tokens and every row tile's
//! quants, which at 2 to 8 tokens cost more than the products (measured with `examples/small_batch.rs`: 8
//! tokens took 6 to 8 times one token's matvec, the weights being read once either way). Here each pass of
//! 16 rows is decoded once, as the one-token kernel (`zmm_matvec.rs`) decodes it, into a small per-thread
//! buffer (each pair of rows' quants, their block scales in pair order and the rows' minima), and then every
//! token, two at a time, runs over the decoded blocks: the nibble unpacking, the gather of the block scales and
//! their permutation are paid once per pass instead of once per token.
//!
//! The bits are the one-token kernel's, for every token: the same integer sums (`vpdpbusd` from the same
//! offset base), the same single f32 product `d_w·d_a` per block (the permutation of `d_w` into pair order
//! before the product instead of after it moves the same two numbers), the same FMA per block in block order,
//! the same minimum terms and the same reduction ([`finish`]); the last `rows % 16` rows go through the same
//! 256-bit kernel. Tested below against the one-token kernel and in `tests/dot_order.rs` against the scalar
//! reference.

use super::zmm_matvec::{
    PAIRS, Prefetch, ROWS, act_q8_0, act_q8_1, finish, offset_base, pair_q4_0, pair_q4_1,
    pair_q5_0, pair_q5_1, pair_q8_0, tail_kernel,
};
use crate::GgmlType;
use crate::dot::TiledFn;
use crate::quant::blocks::*;
use bytemuck::cast_slice as cs;
use std::arch::x86_64::*;
use std::cell::RefCell;

/// Tokens up to which this kernel is chosen over the tiled GEMM (measured with `examples/small_batch.rs`).
pub(crate) const MAX_TOKENS: usize = 8;

// Every function below: #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]

/// The kernel for `ty`, if this file has one. Handed out only on a CPU with AVX-512 F/BW/VL and VNNI.
pub(super) fn batch_kernel(ty: GgmlType) -> Option<TiledFn> {
    macro_rules! k {
        ($f:ident) => {
            Some(|w: &[u8], wr: usize, a: &[u8], ar: usize, n: usize, out: &mut [f32], s: usize| {
                // SAFETY: the caller (`x86::small_batch_kernel`) hands this out only on a CPU with the features.
                unsafe { $f(w, wr, a, ar, n, out, s) }
            })
        };
    }
    use GgmlType::*;
    match ty {
        Q4_0 => k!(mb_q4_0),
        Q4_1 => k!(mb_q4_1),
        Q5_0 => k!(mb_q5_0),
        Q5_1 => k!(mb_q5_1),
        Q8_0 => k!(mb_q8_0),
        _ => None,
    }
}

/// One pass of 16 rows, decoded: per block `i`, entries `i * PAIRS + p` of `u` and `sc` are pair `p`'s quants
/// (row 2p in the low half, 2p + 1 in the high half) and scales `[d_2p ×8, d_2p+1 ×8]`; `mw[i]` the 16 rows'
/// minima (formats with one). Per thread, reused across calls (it only grows).
#[derive(Default)]
struct Decoded {
    u: Vec<__m512i>,
    sc: Vec<__m512>,
    mw: Vec<__m512>,
}

thread_local! {
    static DECODED: RefCell<Decoded> = RefCell::new(Decoded::default());
}

/// Two tokens' (or one token's) 16 outputs.
type Outs<const N: usize> = [[f32; ROWS]; N];

macro_rules! zmm_batch {
    ($name:ident, $decode:ident, $tile:ident, $ty:ident, $W:ty, $A:ty, $act:ident, $pair:ident, $off:expr, $has_min:expr) => {
        /// Decodes the 16 rows of `w` (`w_row` bytes each, `nb` blocks) into `d`, as the one-token kernel
        /// decodes them (`d` is at least `nb` blocks long).
        #[inline]
        #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
        fn $decode(w: &[u8], w_row: usize, nb: usize, d: &mut Decoded, prefetch: Prefetch) {
            assert!(w.len() >= ROWS * w_row && w_row >= nb * size_of::<$W>());
            assert!(d.u.len() >= nb * PAIRS && d.sc.len() >= nb * PAIRS && d.mw.len() >= nb);
            let block = |r: usize, i: usize| -> &$W {
                // SAFETY: r < 16 and i < nb, so the block's bytes lie inside w (asserted above); $W is plain
                // bytes (alignment 1, every bit pattern valid).
                unsafe { &*w.as_ptr().add(r * w_row + i * size_of::<$W>()).cast::<$W>() }
            };
            let offsets = _mm512_mullo_epi32(
                _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                _mm512_set1_epi32(w_row as i32),
            );
            // pair p's scale: lane 2p in the low half, lane 2p + 1 in the high half
            let pick: [__m512i; PAIRS] = std::array::from_fn(|p| {
                let lo = _mm256_set1_epi32(2 * p as i32);
                let hi = _mm256_set1_epi32(2 * p as i32 + 1);
                _mm512_inserti64x4::<1>(_mm512_castsi256_si512(lo), hi)
            });
            for i in 0..nb {
                // SAFETY: lane r reads 4 bytes at row r's block i, inside w: r·w_row + (i + 1)·size ≤ 16·w_row
                // (asserted above) and every block is at least 18 bytes.
                let dm = unsafe {
                    _mm512_i32gather_epi32::<1>(offsets, w.as_ptr().add(i * size_of::<$W>()).cast())
                };
                let dw = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(dm));
                if $has_min {
                    d.mw[i] = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32::<16>(dm)));
                }
                prefetch.step(i);
                for p in 0..PAIRS {
                    d.u[i * PAIRS + p] = $pair(block(2 * p, i), block(2 * p + 1, i));
                    d.sc[i * PAIRS + p] = _mm512_permutexvar_ps(pick[p], dw);
                }
            }
        }

        /// `N` tokens' activations (`nb` blocks each) against the decoded pass: each token's 16 outputs, as
        /// the one-token kernel sums them.
        #[inline]
        #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
        fn $tile<const N: usize>(d: &Decoded, nb: usize, acts: [&[$A]; N]) -> Outs<N> {
            assert!(d.u.len() >= nb * PAIRS && d.sc.len() >= nb * PAIRS && d.mw.len() >= nb);
            assert!(acts.iter().all(|a| a.len() >= nb));
            let (up, scp, mwp) = (d.u.as_ptr(), d.sc.as_ptr(), d.mw.as_ptr());
            let mut acc = [[_mm512_setzero_ps(); PAIRS]; N];
            let mut mins = [_mm512_setzero_ps(); N];
            for i in 0..nb {
                for t in 0..N {
                    // SAFETY: i < nb ≤ acts[t].len() (asserted above).
                    let (da, sa, a) = $act(unsafe { acts[t].get_unchecked(i) });
                    let base = offset_base(a, $off);
                    if $has_min {
                        // SAFETY: i < nb ≤ d.mw.len() (asserted above).
                        let mw = unsafe { *mwp.add(i) };
                        mins[t] = _mm512_add_ps(mins[t], _mm512_mul_ps(mw, _mm512_set1_ps(sa)));
                    }
                    let da = _mm512_set1_ps(da);
                    for p in 0..PAIRS {
                        // SAFETY: i·PAIRS + p < nb·PAIRS ≤ the lengths of u and sc (asserted above).
                        let (u, sc) = unsafe { (*up.add(i * PAIRS + p), *scp.add(i * PAIRS + p)) };
                        let sum = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(base, u, a));
                        acc[t][p] = _mm512_fmadd_ps(sum, _mm512_mul_ps(sc, da), acc[t][p]);
                    }
                }
            }
            let mut outs = [[0f32; ROWS]; N];
            for t in 0..N {
                finish(&acc[t], mins[t], &mut outs[t]);
            }
            outs
        }

        /// `out[t * stride + r]` = dot(row r of `w`, token t of `acts`) for `n_tok` tokens of `a_row` bytes.
        #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
        fn $name(
            w: &[u8],
            w_row: usize,
            acts: &[u8],
            a_row: usize,
            n_tok: usize,
            out: &mut [f32],
            stride: usize,
        ) {
            let rows = w.len() / w_row;
            let nb = a_row / size_of::<$A>();
            if rows == 0 || n_tok == 0 || nb == 0 {
                return;
            }
            let tok =
                |t: usize| -> &[$A] { cs(&acts[t * a_row..t * a_row + nb * size_of::<$A>()]) };
            let full = rows / ROWS * ROWS;
            let mut d = DECODED.take();
            let (zi, zf) = (_mm512_setzero_si512(), _mm512_setzero_ps());
            for (v, n) in [(&mut d.sc, nb * PAIRS), (&mut d.mw, nb)] {
                if v.len() < n {
                    v.resize(n, zf);
                }
            }
            if d.u.len() < nb * PAIRS {
                d.u.resize(nb * PAIRS, zi);
            }
            for c in 0..full / ROWS {
                let pf = Prefetch::for_pass(w, c, ROWS * w_row, full * w_row, nb);
                $decode(
                    &w[c * ROWS * w_row..(c + 1) * ROWS * w_row],
                    w_row,
                    nb,
                    &mut d,
                    pf,
                );
                let mut store = |t: usize, o: &[f32; ROWS]| {
                    out[t * stride + c * ROWS..][..ROWS].copy_from_slice(o);
                };
                let mut t = 0;
                while t + 2 <= n_tok {
                    let [o0, o1] = $tile::<2>(&d, nb, [tok(t), tok(t + 1)]);
                    store(t, &o0);
                    store(t + 1, &o1);
                    t += 2;
                }
                if t < n_tok {
                    let [o] = $tile::<1>(&d, nb, [tok(t)]);
                    store(t, &o);
                }
            }
            DECODED.set(d);
            if full < rows
                && let Some(k) = tail_kernel(GgmlType::$ty)
            {
                for t in 0..n_tok {
                    let dst = &mut out[t * stride + full..t * stride + rows];
                    k(
                        &w[full * w_row..],
                        w_row,
                        &acts[t * a_row..(t + 1) * a_row],
                        dst,
                    );
                }
            }
        }
    };
}

zmm_batch!(
    mb_q4_0,
    decode_q4_0,
    tile_q4_0,
    Q4_0,
    BlockQ4_0,
    BlockQ8_0,
    act_q8_0,
    pair_q4_0,
    8,
    false
);
zmm_batch!(
    mb_q4_1,
    decode_q4_1,
    tile_q4_1,
    Q4_1,
    BlockQ4_1,
    BlockQ8_1,
    act_q8_1,
    pair_q4_1,
    0,
    true
);
zmm_batch!(
    mb_q5_0,
    decode_q5_0,
    tile_q5_0,
    Q5_0,
    BlockQ5_0,
    BlockQ8_0,
    act_q8_0,
    pair_q5_0,
    16,
    false
);
zmm_batch!(
    mb_q5_1,
    decode_q5_1,
    tile_q5_1,
    Q5_1,
    BlockQ5_1,
    BlockQ8_1,
    act_q8_1,
    pair_q5_1,
    0,
    true
);
zmm_batch!(
    mb_q8_0,
    decode_q8_0,
    tile_q8_0,
    Q8_0,
    BlockQ8_0,
    BlockQ8_0,
    act_q8_0,
    pair_q8_0,
    128,
    false
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::{activation_type, quantize_activation_with, quantize_row};

    fn data(n: usize, seed: u32, outlier: f32) -> Vec<f32> {
        crate::test_data::with_outliers(n, seed, outlier)
    }

    /// Every token of a batch of 1 to 9 gets the one-token kernel's bits, in full passes and in the tail,
    /// written at its stride and nowhere else.
    #[test]
    fn a_few_tokens_get_the_one_token_kernels_bits() {
        if !(crate::isa::Isa::Avx512.supported() && crate::isa::has_avx512_vnni()) {
            return;
        }
        use GgmlType::*;
        for ty in [Q4_0, Q4_1, Q5_0, Q5_1, Q8_0] {
            let one = super::super::zmm_matvec::matvec_kernel(ty).unwrap();
            let many = batch_kernel(ty).unwrap();
            for (cols, rows) in [(32, 16), (64, 17), (576, 48), (640, 37), (2048, 33)] {
                let rb = ty.row_bytes(cols).unwrap();
                let mut w = vec![0u8; rb * rows];
                for (r, row) in w.chunks_exact_mut(rb).enumerate() {
                    quantize_row(ty, &data(cols, r as u32, 1.0), row).unwrap();
                }
                let at = activation_type(ty);
                let ab = at.row_bytes(cols).unwrap();
                for n_tok in 1..=9 {
                    let mut acts = vec![0u8; ab * n_tok];
                    for (t, a) in acts.chunks_exact_mut(ab).enumerate() {
                        let outlier = if t % 2 == 0 { 1.0 } else { 500.0 };
                        let x = data(cols, 99 + t as u32, outlier);
                        quantize_activation_with(crate::isa::Isa::Avx512, at, &x, a);
                    }
                    let stride = rows + 3;
                    let mut got = vec![f32::NAN; stride * n_tok];
                    many(&w, rb, &acts, ab, n_tok, &mut got, stride);
                    for t in 0..n_tok {
                        let mut want = vec![0f32; rows];
                        one(&w, rb, &acts[t * ab..(t + 1) * ab], &mut want);
                        for r in 0..rows {
                            assert_eq!(
                                got[t * stride + r].to_bits(),
                                want[r].to_bits(),
                                "{ty:?} {cols}x{rows}, {n_tok} tokens: token {t} row {r}"
                            );
                        }
                        assert!(got[t * stride + rows..][..3].iter().all(|x| x.is_nan()));
                    }
                }
            }
        }
    }
}
