//! AVX-512 VNNI matvec for Q4_1 × Q8_1 (the format of smollm2's matrices): four blocks per 512-bit register.
//! The activation row is rearranged once per call so that each group of 4 blocks is two 64-byte loads plus its
//! scales; per weight row and group the work is then 4 loads of nibbles, 2 `vpdpbusd` and one FMA.

use crate::dot::RowsFn;
use crate::quant::blocks::{BlockQ4_1, BlockQ8_1};
use bytemuck::cast_slice as cs;
use std::arch::x86_64::*;

/// One group of 4 activation blocks: first halves, second halves, d per i32 lane, s per block.
#[repr(C, align(64))]
#[derive(Clone, Copy)]
struct Group {
    lo: [i8; 64],
    hi: [i8; 64],
    d: [f32; 16],
    s: [f32; 4],
}

fn groups(a: &[BlockQ8_1]) -> Vec<Group> {
    a.chunks_exact(4)
        .map(|a| {
            let mut g = Group {
                lo: [0; 64],
                hi: [0; 64],
                d: [0.0; 16],
                s: [0.0; 4],
            };
            for (i, b) in a.iter().enumerate() {
                g.lo[16 * i..16 * i + 16].copy_from_slice(&b.qs[..16]);
                g.hi[16 * i..16 * i + 16].copy_from_slice(&b.qs[16..]);
                g.d[4 * i..4 * i + 4].fill(b.d());
                g.s[i] = b.s();
            }
            g
        })
        .collect()
}

/// dot of one Q4_1 row (whole groups only) against the prepared groups.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn row(w: &[BlockQ4_1], pre: &[Group]) -> f32 {
    let m4 = _mm512_set1_epi8(0xF);
    let spread = _mm512_setr_epi32(0, 0, 0, 0, 2, 2, 2, 2, 4, 4, 4, 4, 6, 6, 6, 6);
    let odd = _mm256_setr_epi32(1, 3, 5, 7, 1, 3, 5, 7);
    let (mut acc, mut accm) = (_mm512_setzero_ps(), _mm_setzero_ps());
    for (wb, g) in w.chunks_exact(4).zip(pre) {
        // SAFETY: each qs is 16 readable bytes.
        let q: [__m128i; 4] =
            std::array::from_fn(|i| unsafe { _mm_loadu_si128(wb[i].qs.as_ptr().cast()) });
        let q = _mm512_inserti32x4::<3>(
            _mm512_inserti32x4::<2>(
                _mm512_inserti32x4::<1>(_mm512_castsi128_si512(q[0]), q[1]),
                q[2],
            ),
            q[3],
        );
        let lo = _mm512_and_si512(q, m4);
        let hi = _mm512_and_si512(_mm512_srli_epi16::<4>(q), m4);
        // SAFETY: g.lo / g.hi / g.d are 64 readable bytes each.
        let (al, ah, ad) = unsafe {
            (
                _mm512_load_si512(g.lo.as_ptr().cast()),
                _mm512_load_si512(g.hi.as_ptr().cast()),
                _mm512_load_ps(g.d.as_ptr()),
            )
        };
        let p = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), lo, al), hi, ah);
        let dm =
            |i: usize| u32::from_le_bytes([wb[i].d[0], wb[i].d[1], wb[i].m[0], wb[i].m[1]]) as i32;
        let f = _mm256_cvtph_ps(_mm_setr_epi32(dm(0), dm(1), dm(2), dm(3))); // d0 m0 d1 m1 ...
        let dw = _mm512_permutexvar_ps(spread, _mm512_castps256_ps512(f));
        acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), _mm512_mul_ps(dw, ad), acc);
        let mw = _mm256_castps256_ps128(_mm256_permutevar8x32_ps(f, odd));
        // SAFETY: g.s is 16 readable bytes.
        accm = _mm_fmadd_ps(mw, unsafe { _mm_loadu_ps(g.s.as_ptr()) }, accm);
    }
    let m = _mm_add_ps(accm, _mm_movehl_ps(accm, accm));
    _mm512_reduce_add_ps(acc) + _mm_cvtss_f32(_mm_add_ss(m, _mm_movehdup_ps(m)))
}

/// The blocks past the last whole group, in scalar.
fn tail(w: &[BlockQ4_1], a: &[BlockQ8_1]) -> f32 {
    w.iter()
        .zip(a)
        .map(|(w, a)| {
            let s: i32 = (0..16)
                .map(|j| {
                    (w.qs[j] & 0xF) as i32 * a.qs[j] as i32
                        + (w.qs[j] >> 4) as i32 * a.qs[j + 16] as i32
                })
                .sum();
            w.d() * a.d() * s as f32 + w.m() * a.s()
        })
        .sum()
}

/// The row kernel. Handed out by `x86::rows_kernel` only on a CPU with AVX-512 F/BW/VL + VNNI.
pub(super) fn rows_kernel() -> RowsFn {
    |w: &[u8], rb: usize, act: &[u8], out: &mut [f32]| {
        let a: &[BlockQ8_1] = cs(act);
        let pre = groups(a);
        let whole = 4 * pre.len();
        for (o, wr) in out.iter_mut().zip(w.chunks_exact(rb)) {
            let wb: &[BlockQ4_1] = cs(wr);
            // SAFETY: this kernel is only handed out on a CPU with the features `row` needs (see above).
            *o = unsafe { row(&wb[..whole], &pre) } + tail(&wb[whole..], &a[whole..]);
        }
    }
}
