//! 512-bit register-tiled GEMM kernels (AVX-512 F/BW/VL + VNNI) for prefill: two 32-element blocks (or two
//! K-quant groups) per register, R weight rows × T tokens per inner loop. On Intel cores with two 512-bit
//! ports this doubles the integer throughput of the 256-bit tiles.

use crate::GgmlType;
use crate::dot::TiledFn;
use crate::quant::blocks::*;
use bytemuck::{Pod, cast_slice as cs};
use std::arch::x86_64::*;

// Every `unsafe` call below needs the features of `zmm_fn!` ("F" in the comments): the tables that hand these
// kernels out check them first.
const R: usize = 4;
const T: usize = 4;

macro_rules! zmm_fn {
    ($(#[$m:meta])* fn $name:ident $($rest:tt)*) => {
        $(#[$m])*
        #[inline]
        #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
        fn $name $($rest)*
    };
}

zmm_fn! {
    /// 32 bytes from the start of `p` (panics if shorter).
    fn ld<T2: Pod>(p: &[T2]) -> __m256i {
        let b: &[u8] = &cs(p)[..32];
        // SAFETY: b is exactly 32 readable bytes; loadu has no alignment requirement.
        unsafe { _mm256_loadu_si256(b.as_ptr().cast()) }
    }
}

zmm_fn! {
    /// 64 bytes from the start of `p` (panics if shorter).
    fn ld64<T2: Pod>(p: &[T2]) -> __m512i {
        let b: &[u8] = &cs(p)[..64];
        // SAFETY: b is exactly 64 readable bytes; loadu has no alignment requirement.
        unsafe { _mm512_loadu_si512(b.as_ptr().cast()) }
    }
}

zmm_fn! {
    fn join(lo: __m256i, hi: __m256i) -> __m512i {
        _mm512_inserti64x4::<1>(_mm512_castsi256_si512(lo), hi)
    }
}

zmm_fn! {
    /// [x × 8 lanes, y × 8 lanes].
    fn pair_ps(x: f32, y: f32) -> __m512 {
        let lo = _mm512_castps_pd(_mm512_set1_ps(x));
        _mm512_castpd_ps(_mm512_insertf64x4::<1>(lo, _mm256_castps_pd(_mm256_set1_ps(y))))
    }
}

zmm_fn! {
    fn h2(a: [u8; 2], b: [u8; 2]) -> (f32, f32) {
        let v = u32::from_le_bytes([a[0], a[1], b[0], b[1]]);
        let f = _mm_cvtph_ps(_mm_cvtsi32_si128(v as i32));
        (_mm_cvtss_f32(f), _mm_cvtss_f32(_mm_movehdup_ps(f)))
    }
}

zmm_fn! {
    fn nib32(qs: &[u8; 16]) -> __m256i {
        // SAFETY: qs is 16 readable bytes.
        let x = unsafe { _mm_loadu_si128(qs.as_ptr().cast()) };
        _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16::<4>(x), x), _mm256_set1_epi8(0xF))
    }
}

zmm_fn! {
    /// 32 5-bit quants: nibbles with 0x10 where the qh bit is set.
    fn q5(qs: &[u8; 16], qh: [u8; 4]) -> __m256i {
        let bits = _mm256_maskz_set1_epi8(u32::from_le_bytes(qh), 0x10);
        _mm256_or_si256(nib32(qs), bits)
    }
}

/// Per 32-element legacy block: unsigned quants u (value (u − off)·d + m), d, m.
trait Legacy: Pod {
    const OFF: i32;
    const MIN: bool;
    /// # Safety
    /// The CPU must have the features in `F`.
    unsafe fn dec(&self) -> (__m256i, f32, f32);
}

/// Activation block: quants, d, s (Q8_1) or 0.
trait Act: Pod {
    /// # Safety
    /// The CPU must have the features in `F`.
    unsafe fn get(&self) -> (__m256i, f32, f32);
}

macro_rules! legacy {
    ($B:ty, $off:expr, $min:expr, |$b:ident| $body:expr) => {
        impl Legacy for $B {
            const OFF: i32 = $off;
            const MIN: bool = $min;
            #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
            unsafe fn dec(&self) -> (__m256i, f32, f32) {
                let $b = self;
                $body
            }
        }
    };
}
legacy!(BlockQ4_0, 8, false, |b| (nib32(&b.qs), h2(b.d, b.d).0, 0.0));
legacy!(BlockQ4_1, 0, true, |b| {
    let (d, m) = h2(b.d, b.m);
    (nib32(&b.qs), d, m)
});
legacy!(BlockQ5_0, 16, false, |b| (
    q5(&b.qs, b.qh),
    h2(b.d, b.d).0,
    0.0
));
legacy!(BlockQ5_1, 0, true, |b| {
    let (d, m) = h2(b.d, b.m);
    (q5(&b.qs, b.qh), d, m)
});
// flipping the sign bit adds 128
legacy!(BlockQ8_0, 128, false, |b| (
    _mm256_xor_si256(ld(&b.qs), _mm256_set1_epi8(-128)),
    h2(b.d, b.d).0,
    0.0
));

impl Act for BlockQ8_0 {
    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
    unsafe fn get(&self) -> (__m256i, f32, f32) {
        (ld(&self.qs), h2(self.d, self.d).0, 0.0)
    }
}
impl Act for BlockQ8_1 {
    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
    unsafe fn get(&self) -> (__m256i, f32, f32) {
        let (d, s) = h2(self.d, self.s);
        (ld(&self.qs), d, s)
    }
}

zmm_fn! {
    fn hsum(v: __m512) -> f32 {
        _mm512_reduce_add_ps(v)
    }
}

zmm_fn! {
    /// Blocks `b` and `b + 1` (the second zero past the end) of an R×T legacy tile.
    fn legacy_tile<W: Legacy, A: Act, const RR: usize, const TT: usize>(
        w: [&[W]; RR],
        a: [&[A]; TT],
        out: &mut [[f32; TT]; RR],
    ) {
        let mut acc = [[_mm512_setzero_ps(); TT]; RR];
        let mut mins = [[0f32; TT]; RR];
        let nb = w[0].len();
        let ones = _mm512_set1_epi8(1);
        let mut b = 0;
        while b < nb {
            let two = b + 1 < nb;
            let mut av = [_mm512_setzero_si512(); TT];
            let mut dav = [_mm512_setzero_ps(); TT];
            let mut sa = [[0f32; 2]; TT];
            let mut base = [_mm512_setzero_si512(); TT];
            for t in 0..TT {
                // SAFETY: this function runs with the features in F.
                let (q0, d0, s0) = unsafe { a[t][b].get() };
                // SAFETY: as above.
                let (q1, d1, s1) = if two { unsafe { a[t][b + 1].get() } } else { (_mm256_setzero_si256(), 0.0, 0.0) };
                av[t] = join(q0, q1);
                dav[t] = pair_ps(d0, d1);
                sa[t] = [s0, s1];
                if W::OFF != 0 {
                    let sum = _mm512_dpbusd_epi32(_mm512_setzero_si512(), ones, av[t]);
                    base[t] = _mm512_mullo_epi32(sum, _mm512_set1_epi32(-W::OFF));
                }
            }
            for r in 0..RR {
                // SAFETY: this function runs with the features in F.
                let (u0, dw0, m0) = unsafe { w[r][b].dec() };
                // SAFETY: as above.
                let (u1, dw1, m1) = if two { unsafe { w[r][b + 1].dec() } } else { (_mm256_setzero_si256(), 0.0, 0.0) };
                let u = join(u0, u1);
                let dwv = pair_ps(dw0, dw1);
                for t in 0..TT {
                    let p = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(base[t], u, av[t]));
                    acc[r][t] = _mm512_fmadd_ps(_mm512_mul_ps(p, dav[t]), dwv, acc[r][t]);
                    if W::MIN {
                        mins[r][t] += m0 * sa[t][0] + m1 * sa[t][1];
                    }
                }
            }
            b += 2;
        }
        for r in 0..RR {
            for t in 0..TT {
                out[r][t] = hsum(acc[r][t]) + mins[r][t];
            }
        }
    }
}

/// A K-quant super-block seen as 4 pairs of 32-element groups: per pair p, the 64 unsigned quants of
/// elements 64p..64p+64, the per-4-lane scales, and the float correction term for one activation block.
trait KQuant: Pod {
    /// # Safety
    /// The CPU must have the features in `F`.
    unsafe fn pair(&self, p: usize) -> __m512i;
    /// Scales of the 4 quarters (16 elements, 4 i32 lanes each) of pair p.
    fn lane_scales(&self, p: usize) -> [i32; 4];
    /// (d, dmin_like, per-16 weights of the bsums) so that the block's value is d·da·Σ − dmin_like·da·Σ m·bsum.
    fn meta(&self) -> (f32, f32, [i32; 16]);
}

zmm_fn! {
    /// 16 i32 lanes: scale of lane l is `s[l / 4]`.
    fn lanes4(s: [i32; 4]) -> __m512i {
        let v: [i32; 16] = std::array::from_fn(|l| s[l / 4]);
        // SAFETY: v is 64 readable bytes.
        unsafe { _mm512_loadu_si512(v.as_ptr().cast()) }
    }
}

impl KQuant for BlockQ4K {
    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
    unsafe fn pair(&self, p: usize) -> __m512i {
        let q = ld(&self.qs[32 * p..]);
        let m = _mm256_set1_epi8(0xF);
        join(
            _mm256_and_si256(q, m),
            _mm256_and_si256(_mm256_srli_epi16::<4>(q), m),
        )
    }
    fn lane_scales(&self, p: usize) -> [i32; 4] {
        let (s0, s1) = (
            scale_min_k4(2 * p, &self.scales).0 as i32,
            scale_min_k4(2 * p + 1, &self.scales).0 as i32,
        );
        [s0, s0, s1, s1]
    }
    fn meta(&self) -> (f32, f32, [i32; 16]) {
        // the min of sub-block j applies to bsums 2j and 2j+1
        let m: [i32; 16] = std::array::from_fn(|i| scale_min_k4(i / 2, &self.scales).1 as i32);
        (self.d(), self.dmin(), m)
    }
}

impl KQuant for BlockQ6K {
    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
    unsafe fn pair(&self, p: usize) -> __m512i {
        // pair p covers elements 64p..64p+64: half h = p/2, groups k = 2(p%2), 2(p%2)+1
        let (h, k0) = (p / 2, 2 * (p % 2));
        let ql = ld64(&self.ql[64 * h..]);
        let low = if k0 == 0 {
            ql
        } else {
            _mm512_srli_epi16::<4>(ql)
        };
        let low = _mm512_and_si512(low, _mm512_set1_epi8(0xF));
        let qh = ld(&self.qh[32 * h..]);
        let shift = |k: i32| _mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * k));
        let high = join(shift(k0 as i32), shift(k0 as i32 + 1));
        let high = _mm512_slli_epi16::<4>(_mm512_and_si512(high, _mm512_set1_epi8(3)));
        _mm512_or_si512(low, high)
    }
    fn lane_scales(&self, p: usize) -> [i32; 4] {
        std::array::from_fn(|i| self.scales[4 * p + i] as i32)
    }
    fn meta(&self) -> (f32, f32, [i32; 16]) {
        // Σ sc·(q − 32)·a = Σ sc·q·a − 32·Σ sc·bsum
        let d = self.d();
        (d, 32.0 * d, std::array::from_fn(|j| self.scales[j] as i32))
    }
}

zmm_fn! {
    fn k_tile<W: KQuant, const RR: usize, const TT: usize>(
        w: [&[W]; RR],
        a: [&[BlockQ8K]; TT],
        out: &mut [[f32; TT]; RR],
    ) {
        let mut acc = [[_mm512_setzero_ps(); TT]; RR];
        let mut mins = [[0f32; TT]; RR];
        for b in 0..w[0].len() {
            let da: [f32; TT] = std::array::from_fn(|t| a[t][b].d());
            for r in 0..RR {
                let wb = &w[r][b];
                let (d, dmin, m) = wb.meta();
                let mut sumi = [_mm512_setzero_si512(); TT];
                for p in 0..4 {
                    // SAFETY: this function runs with the features in F.
                    let q = unsafe { wb.pair(p) };
                    let sc = lanes4(wb.lane_scales(p));
                    for t in 0..TT {
                        let dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), q, ld64(&a[t][b].qs[64 * p..]));
                        sumi[t] = _mm512_add_epi32(sumi[t], _mm512_mullo_epi32(dot, sc));
                    }
                }
                for t in 0..TT {
                    let p = _mm512_cvtepi32_ps(sumi[t]);
                    acc[r][t] = _mm512_fmadd_ps(p, _mm512_set1_ps(d * da[t]), acc[r][t]);
                    let corr: i32 = (0..16).map(|j| m[j] * a[t][b].bsum(j) as i32).sum();
                    mins[r][t] -= dmin * da[t] * corr as f32;
                }
            }
        }
        for r in 0..RR {
            for t in 0..TT {
                out[r][t] = hsum(acc[r][t]) + mins[r][t];
            }
        }
    }
}

/// Walks the output in R×T tiles (edges with narrower tiles) and calls `$tile` on each.
macro_rules! driver {
    ($name:ident, $W:ty, $A:ty, $tile:ident) => {
        zmm_fn! {
            fn $name(w: &[u8], w_row: usize, acts: &[u8], a_row: usize, n_tok: usize, out: &mut [f32], stride: usize) {
                let rows = w.len() / w_row;
                let wr = |r: usize| -> &[$W] { cs(&w[r * w_row..(r + 1) * w_row]) };
                let ar = |t: usize| -> &[$A] { cs(&acts[t * a_row..(t + 1) * a_row]) };
                let mut r0 = 0;
                while r0 < rows {
                    let full_r = r0 + R <= rows;
                    let mut t0 = 0;
                    while t0 < n_tok {
                        let full_t = t0 + T <= n_tok;
                        let (nr, nt) = (if full_r { R } else { 1 }, if full_t { T } else { 1 });
                        let mut o = [[0f32; T]; R];
                        match (full_r, full_t) {
                            (true, true) => {
                                $tile::<$W, $A, R, T>(std::array::from_fn(|i| wr(r0 + i)), std::array::from_fn(|i| ar(t0 + i)), &mut o)
                            }
                            (true, false) => {
                                let mut o1 = [[0f32; 1]; R];
                                $tile::<$W, $A, R, 1>(std::array::from_fn(|i| wr(r0 + i)), [ar(t0)], &mut o1);
                                (0..R).for_each(|i| o[i][0] = o1[i][0]);
                            }
                            (false, true) => {
                                let mut o1 = [[0f32; T]; 1];
                                $tile::<$W, $A, 1, T>([wr(r0)], std::array::from_fn(|i| ar(t0 + i)), &mut o1);
                                o[0] = o1[0];
                            }
                            (false, false) => {
                                let mut o1 = [[0f32; 1]; 1];
                                $tile::<$W, $A, 1, 1>([wr(r0)], [ar(t0)], &mut o1);
                                o[0][0] = o1[0][0];
                            }
                        }
                        for i in 0..nr {
                            for t in 0..nt {
                                out[(t0 + t) * stride + r0 + i] = o[i][t];
                            }
                        }
                        t0 += nt;
                    }
                    r0 += if full_r { R } else { 1 };
                }
            }
        }
    };
}

/// `k_tile` with the activation type as a (unused) generic, so `driver!` can call both tiles alike.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn k_tile2<W: KQuant, A, const RR: usize, const TT: usize>(
    w: [&[W]; RR],
    a: [&[BlockQ8K]; TT],
    out: &mut [[f32; TT]; RR],
) {
    k_tile::<W, RR, TT>(w, a, out)
}

driver!(gemm_q4_0, BlockQ4_0, BlockQ8_0, legacy_tile);
driver!(gemm_q4_1, BlockQ4_1, BlockQ8_1, legacy_tile);
driver!(gemm_q5_0, BlockQ5_0, BlockQ8_0, legacy_tile);
driver!(gemm_q5_1, BlockQ5_1, BlockQ8_1, legacy_tile);
driver!(gemm_q8_0, BlockQ8_0, BlockQ8_0, legacy_tile);
driver!(gemm_q4_k, BlockQ4K, BlockQ8K, k_tile2);
driver!(gemm_q6_k, BlockQ6K, BlockQ8K, k_tile2);

/// The 512-bit tiled kernel for `ty`. Handed out by `x86::tiled_kernel` only on a CPU with the features in F.
pub(super) fn tiled_kernel(ty: GgmlType) -> Option<TiledFn> {
    macro_rules! tiled {
        ($f:ident) => {
            Some(|w: &[u8], wr: usize, a: &[u8], ar: usize, n: usize, out: &mut [f32], s: usize| {
                // SAFETY: this table is only reached on a CPU with the features in F (see above).
                unsafe { $f(w, wr, a, ar, n, out, s) }
            })
        };
    }
    use GgmlType::*;
    match ty {
        Q4_0 => tiled!(gemm_q4_0),
        Q4_1 => tiled!(gemm_q4_1),
        Q5_0 => tiled!(gemm_q5_0),
        Q5_1 => tiled!(gemm_q5_1),
        Q8_0 => tiled!(gemm_q8_0),
        Q4_K => tiled!(gemm_q4_k),
        Q6_K => tiled!(gemm_q6_k),
        _ => None,
    }
}
