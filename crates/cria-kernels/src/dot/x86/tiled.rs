//! Register-tiled GEMM kernels for prefill: `R` weight rows × `T` tokens per inner loop, so each weight block
//! is decoded once and used `T` times, and each activation block loaded once per row instead of per pair.
//! Expanded by `x86_tiled!` in the same module as `x86_kernels!`, whose helpers (`ld`, `nib32`, `h2`, ...) it
//! uses.

/// `$full_u8`: whether `$dot` takes u8 up to 255 without saturating (VNNI does; `maddubs` does not, so the
/// Q8_0 tile, which offsets weights by 128, is left out there); false means `$dot` is `maddubs` + `madd`.
macro_rules! x86_tiled {
    ($features:literal, $dot:path, $full_u8:literal) => {
        use crate::dot::TiledFn;
        use crate::dot::x86::zmm_matvec::Prefetch;

        /// Tile shapes (weight rows, tokens), from `x86::ab::plain_tile_shapes_ab` on a Zen 4 under
        /// `CRIA_ISA=avx2-novnni` (a loaded machine: differences under ~10% are noise there): with `maddubs`
        /// the 32-element formats are fastest at 2×4 (R·T float accumulators, each updated every block, must
        /// fit in AVX2's 16 registers), the K-quants at 4×4 (their float accumulators change once per 256).
        const LEGACY_TILE: (usize, usize) = if $full_u8 { (4, 4) } else { (2, 4) };
        const Q8_SIGNED_TILE: (usize, usize) = (2, 4);
        const K_TILE: (usize, usize) = (4, 4);

        /// Activation block: (d, s or 0, quants).
        #[inline]
        #[target_feature(enable = $features)]
        fn act_q8_0(b: &BlockQ8_0) -> (f32, f32, __m256i) {
            (h1(b.d), 0.0, ld(&b.qs))
        }

        #[inline]
        #[target_feature(enable = $features)]
        fn act_q8_1(b: &BlockQ8_1) -> (f32, f32, __m256i) {
            let (d, s) = h2(b.d, b.s);
            (d, s, ld(&b.qs))
        }

        /// The block scales of a row of 32-element blocks as f32, converted once per call (activations) or per
        /// row tile (weights) rather than once per tile: `d[b]`, and in `m[b]` the f16 after it (a Q4_1 / Q5_1
        /// weight's min, a Q8_1 activation's s; the first two quants of a Q8_0 / Q4_0 / Q5_0 block, unused).
        #[inline]
        #[target_feature(enable = $features)]
        fn block_scales<X: Pod>(blocks: &[X], d: &mut [f32], m: &mut [f32]) {
            let mut b = 0;
            while b + 8 <= blocks.len() {
                let (dv, mv) = scales8(&blocks[b..b + 8]);
                // SAFETY: d and m hold at least blocks.len() ≥ b + 8 floats (the callers size them so).
                unsafe {
                    _mm256_storeu_ps(d[b..b + 8].as_mut_ptr(), dv);
                    _mm256_storeu_ps(m[b..b + 8].as_mut_ptr(), mv);
                }
                b += 8;
            }
            for i in b..blocks.len() {
                let x: &[u8] = cs(std::slice::from_ref(&blocks[i]));
                (d[i], m[i]) = h2([x[0], x[1]], [x[2], x[3]]);
            }
        }

        /// One R×T tile of a 32-element block format with weight offset `$off` (value (u − off)·d + m), its
        /// scales from [`block_scales`] (`ws` the rows' (d, m); `ad`/`am` the tokens' d and s, block-major with
        /// `st` floats a block, starting at the tile's first token). Each (row, token) pair
        /// is summed in the row kernel's order: block by block into its 8-lane accumulator with d_w·d_a
        /// rounded once, Σ m_w·s_a in order as a scalar.
        macro_rules! legacy_tile {
            ($tile:ident, $W:ty, $A:ty, $u:ident, $off:expr, $has_min:expr) => {
                #[inline]
                #[target_feature(enable = $features)]
                fn $tile<const RR: usize, const TT: usize>(
                    w: [&[$W]; RR],
                    ws: [(&[f32], &[f32]); RR],
                    a: [&[$A]; TT],
                    (ad, am, st): (&[f32], &[f32], usize),
                    out: &mut [[f32; TT]; RR],
                ) {
                    let nb = w[0].len();
                    // lengths up front let the compiler drop the bounds checks in the loop
                    assert!((0..RR).all(|r| w[r].len() == nb && ws[r].0.len() >= nb && ws[r].1.len() >= nb));
                    assert!((0..TT).all(|t| a[t].len() >= nb));
                    assert!(nb == 0 || (ad.len().min(am.len()) >= (nb - 1) * st + TT));
                    let mut acc = [[_mm256_setzero_ps(); TT]; RR];
                    let mut mins = [[0f32; TT]; RR];
                    let ones = _mm256_set1_epi8(1);
                    for b in 0..nb {
                        // the tokens' scales of block b lie side by side (block-major), so these are vectors
                        let da: [f32; TT] = std::array::from_fn(|t| ad[b * st + t]);
                        let sa: [f32; TT] = std::array::from_fn(|t| am[b * st + t]);
                        let av: [__m256i; TT] = std::array::from_fn(|t| ld(&a[t][b].qs));
                        // −off·Σa as the starting value of each token's integer sum
                        let base: [__m256i; TT] = std::array::from_fn(|t| {
                            if $off != 0 {
                                _mm256_mullo_epi32(dot_us(ones, av[t]), _mm256_set1_epi32(-$off))
                            } else {
                                _mm256_setzero_si256()
                            }
                        });
                        for r in 0..RR {
                            let u = $u(&w[r][b]);
                            let (dw, mw) = (ws[r].0[b], ws[r].1[b]);
                            let dd: [f32; TT] = std::array::from_fn(|t| dw * da[t]);
                            for t in 0..TT {
                                let p = _mm256_cvtepi32_ps($dot(base[t], u, av[t]));
                                acc[r][t] = _mm256_fmadd_ps(p, _mm256_set1_ps(dd[t]), acc[r][t]);
                            }
                            if $has_min {
                                for t in 0..TT {
                                    mins[r][t] += mw * sa[t];
                                }
                            }
                        }
                    }
                    for r in 0..RR {
                        for t in 0..TT {
                            out[r][t] = hsum(acc[r][t]) + mins[r][t];
                        }
                    }
                }
            };
        }
        legacy_tile!(tile_q4_0, BlockQ4_0, BlockQ8_0, u_q4_0, 8, false);
        legacy_tile!(tile_q4_1, BlockQ4_1, BlockQ8_1, u_q4_1, 0, true);
        legacy_tile!(tile_q5_0, BlockQ5_0, BlockQ8_0, u_q5_0, 16, false);
        legacy_tile!(tile_q5_1, BlockQ5_1, BlockQ8_1, u_q5_1, 0, true);
        legacy_tile!(tile_q8_0, BlockQ8_0, BlockQ8_0, u_q8_0, 128, false);

        /// Q8_0 × Q8_0 without u8 headroom (`maddubs`: u·s pairs saturate past i16): the row kernel's
        /// |w| · sign(a, w) form, one `vpsignb` per pair, the same integer lanes and float steps as `blk_q8_0`.
        /// The scale products d_w·d_a of a run of blocks are computed first into a table, so the hot loop reads
        /// each as a broadcast load instead of a scalar multiply and a register broadcast per (row, token,
        /// block): five vector ops per 32 MACs (`vpsignb`, `vpmaddubsw`, `vpmaddwd`, convert, FMA) instead of
        /// seven. The same f32 products and the same FMAs in the same order: the same bits.
        #[inline]
        #[target_feature(enable = $features)]
        fn tile_q8_0_ss<const RR: usize, const TT: usize>(
            w: [&[BlockQ8_0]; RR],
            ws: [(&[f32], &[f32]); RR],
            a: [&[BlockQ8_0]; TT],
            (ad, _, st): (&[f32], &[f32], usize),
            out: &mut [[f32; TT]; RR],
        ) {
            /// Blocks per table: 2×4 tiles take 1 KiB, in L1 beside the rows.
            const RUN: usize = 32;
            let nb = w[0].len();
            assert!((0..RR).all(|r| w[r].len() == nb && ws[r].0.len() >= nb));
            assert!((0..TT).all(|t| a[t].len() >= nb));
            assert!(nb == 0 || ad.len() >= (nb - 1) * st + TT);
            let mut acc = [[_mm256_setzero_ps(); TT]; RR];
            let mut dd = [[[0f32; TT]; RR]; RUN];
            let mut b0 = 0;
            while b0 < nb {
                let n = RUN.min(nb - b0);
                for (i, ddi) in dd.iter_mut().enumerate().take(n) {
                    let da = &ad[(b0 + i) * st..(b0 + i) * st + TT];
                    for (r, ddr) in ddi.iter_mut().enumerate() {
                        let dw = ws[r].0[b0 + i];
                        for (d, &x) in ddr.iter_mut().zip(da) {
                            *d = dw * x;
                        }
                    }
                }
                for (i, ddi) in dd.iter().enumerate().take(n) {
                    let b = b0 + i;
                    // token by token, so that one activation block is live at a time: with the rows' |w|,
                    // the accumulators and the operands in AVX2's 16 registers, none spill
                    let q: [__m256i; RR] = std::array::from_fn(|r| ld(&w[r][b].qs));
                    let u: [__m256i; RR] = std::array::from_fn(|r| _mm256_abs_epi8(q[r]));
                    for t in 0..TT {
                        let at = ld(&a[t][b].qs);
                        for r in 0..RR {
                            let p = _mm256_cvtepi32_ps(dot_us(u[r], _mm256_sign_epi8(at, q[r])));
                            acc[r][t] = _mm256_fmadd_ps(p, _mm256_broadcast_ss(&ddi[r][t]), acc[r][t]);
                        }
                    }
                }
                b0 += n;
            }
            for r in 0..RR {
                for t in 0..TT {
                    out[r][t] = hsum(acc[r][t]);
                }
            }
        }

        /// Unsigned quants of a weight block (value (u − OFF)·d + m), without its scales.
        #[inline]
        #[target_feature(enable = $features)]
        fn u_q4_0(b: &BlockQ4_0) -> __m256i {
            nib32(&b.qs)
        }

        #[inline]
        #[target_feature(enable = $features)]
        fn u_q4_1(b: &BlockQ4_1) -> __m256i {
            nib32(&b.qs)
        }

        #[inline]
        #[target_feature(enable = $features)]
        fn u_q5_0(b: &BlockQ5_0) -> __m256i {
            q5(&b.qs, b.qh)
        }

        #[inline]
        #[target_feature(enable = $features)]
        fn u_q5_1(b: &BlockQ5_1) -> __m256i {
            q5(&b.qs, b.qh)
        }

        #[inline]
        #[target_feature(enable = $features)]
        fn u_q8_0(b: &BlockQ8_0) -> __m256i {
            _mm256_xor_si256(ld(&b.qs), _mm256_set1_epi8(-128))
        }

        /// The f16 pairs at the start of 8 consecutive blocks (d and the next 2 bytes: m, or quants) as
        /// (8 × d, 8 × second half) in f32. Plain 4-byte loads, not a gather: a gather whose lines miss the
        /// caches stalls far longer than eight loads do (AMD microcodes it), and decode streams from memory.
        #[inline]
        #[target_feature(enable = $features)]
        fn scales8<W: Pod>(w: &[W]) -> (__m256, __m256) {
            let w8: &[u8] = cs(&w[..8]);
            let stride = std::mem::size_of::<W>();
            let dm: [i32; 8] = std::array::from_fn(|i| {
                let b = &w8[i * stride..i * stride + 4];
                i32::from_le_bytes([b[0], b[1], b[2], b[3]])
            });
            f16_pairs(dm)
        }

        /// Eight (f16, f16) pairs, each as one little-endian `i32`, as (8 × first, 8 × second) in f32.
        #[inline]
        #[target_feature(enable = $features)]
        fn f16_pairs(dm: [i32; 8]) -> (__m256, __m256) {
            // SAFETY: dm is exactly 32 readable bytes.
            let dm = unsafe { _mm256_loadu_si256(dm.as_ptr().cast()) };
            let lo = _mm256_and_si256(dm, _mm256_set1_epi32(0xFFFF));
            let hi = _mm256_srli_epi32::<16>(dm);
            // packus interleaves 128-bit lanes: [d0-3 m0-3 | d4-7 m4-7] -> [d0-7 | m0-7]
            let p = _mm256_permute4x64_epi64::<0b11_01_10_00>(_mm256_packus_epi32(lo, hi));
            (
                _mm256_cvtph_ps(_mm256_castsi256_si128(p)),
                _mm256_cvtph_ps(_mm256_extracti128_si256::<1>(p)),
            )
        }

        /// [`scales8`] of the last, partial run of a row (fewer than 8 blocks), zeros past its end: the same
        /// conversions, so the same f32 scales.
        #[inline]
        #[target_feature(enable = $features)]
        fn scales_part<W: Pod>(w: &[W]) -> (__m256, __m256) {
            let w8: &[u8] = cs(w);
            let stride = std::mem::size_of::<W>();
            // past the run's end `get` finds no bytes (w8 holds exactly w.len() blocks)
            let dm: [i32; 8] = std::array::from_fn(|i| match w8.get(i * stride..i * stride + 4) {
                Some(b) => i32::from_le_bytes([b[0], b[1], b[2], b[3]]),
                None => 0,
            });
            f16_pairs(dm)
        }

        /// Decode matvec of a 32-element format: `RR` rows at a time share each activation block; the block
        /// scales of each run of 8 blocks (a row's last run may be shorter) are read and multiplied in one go.
        /// Each row is summed exactly as the tiled kernel (and llama.cpp) sums it: in block order into one
        /// 8-lane accumulator, d_w·d_a as one f32 product, Σ m·s in order as a scalar, so a token gets the same
        /// bits as in a batch. Each pass prefetches the rows `PF` bytes ahead (at least the next pass) as the
        /// AVX-512 matvec does (`zmm_matvec::Prefetch`), one share at each run of 8 blocks, the last partial
        /// run included (before, a 576- or 640-wide row's third run prefetched nothing: a third of each pass).
        /// A pass of four short rows takes less time than a line takes to come from memory, so one pass ahead
        /// is too close: the first pass of a call also prefetches the passes up to the distance.
        macro_rules! legacy_matvec {
            ($name:ident, $at:ident, $W:ty, $A:ty, $act:ident, $bdot:ident, $off:expr, $has_min:expr) => {
                /// The matvec at [`MATVEC_PREFETCH`].
                #[target_feature(enable = $features)]
                pub(in crate::dot::x86) fn $name(w: &[u8], w_row: usize, act: &[u8], out: &mut [f32]) {
                    $at::<MATVEC_PREFETCH>(w, w_row, act, out)
                }

                /// The matvec prefetching `PF` bytes ahead.
                #[target_feature(enable = $features)]
                pub(in crate::dot::x86) fn $at<const PF: usize>(
                    w: &[u8],
                    w_row: usize,
                    act: &[u8],
                    out: &mut [f32],
                ) {
                    #[inline]
                    #[target_feature(enable = $features)]
                    fn rows<const RR: usize>(
                        w: [&[$W]; RR],
                        da: &[f32],
                        sa: &[f32],
                        av: &[(__m256i, __m256i)],
                        out: &mut [f32],
                        prefetch: Prefetch,
                    ) {
                        let nb = av.len();
                        let padded = nb.next_multiple_of(8);
                        assert!(w.iter().all(|r| r.len() == nb) && da.len() >= padded && sa.len() >= padded);
                        let mut acc = [_mm256_setzero_ps(); RR];
                        let mut mins = [0f32; RR];
                        // one prefetch call per run of 8 blocks, the partial last run included
                        for (c, b0) in (0..nb).step_by(8).enumerate() {
                            let n = (nb - b0).min(8);
                            let mut dd = [[0f32; 8]; RR];
                            let mut ms = [[0f32; 8]; RR];
                            for r in 0..RR {
                                let (dw, mw) = if n == 8 {
                                    scales8(&w[r][b0..b0 + 8])
                                } else {
                                    scales_part(&w[r][b0..nb])
                                };
                                // SAFETY: da and sa hold padded ≥ b0 + 8 floats (zeros past nb); dd and ms are 8
                                // floats.
                                unsafe {
                                    let d = _mm256_mul_ps(dw, _mm256_loadu_ps(da[b0..b0 + 8].as_ptr()));
                                    _mm256_storeu_ps(dd[r].as_mut_ptr(), d);
                                    if $has_min {
                                        let m = _mm256_mul_ps(mw, _mm256_loadu_ps(sa[b0..b0 + 8].as_ptr()));
                                        _mm256_storeu_ps(ms[r].as_mut_ptr(), m);
                                    }
                                }
                            }
                            prefetch.step(c);
                            // a constant count for whole runs, so that loop unrolls
                            macro_rules! run {
                                ($count:expr) => {
                                    for i in 0..$count {
                                        // SAFETY: b0 + i < b0 + n ≤ nb = av.len() = w[r].len() (asserted above).
                                        let (a_q, base) = unsafe { *av.get_unchecked(b0 + i) };
                                        // a constant zero without an offset, so adding it compiles away
                                        let base = if $off != 0 { base } else { _mm256_setzero_si256() };
                                        for r in 0..RR {
                                            // SAFETY: as above.
                                            let wb = unsafe { w[r].get_unchecked(b0 + i) };
                                            let p = _mm256_cvtepi32_ps($bdot(base, wb, a_q));
                                            acc[r] = _mm256_fmadd_ps(p, _mm256_set1_ps(dd[r][i]), acc[r]);
                                            if $has_min {
                                                mins[r] += ms[r][i];
                                            }
                                        }
                                    }
                                };
                            }
                            if n == 8 {
                                run!(8)
                            } else {
                                run!(n)
                            }
                        }
                        for r in 0..RR {
                            out[r] = hsum(acc[r]) + mins[r];
                        }
                    }

                    let a: &[$A] = cs(act);
                    let ones = _mm256_set1_epi8(1);
                    let padded = a.len().next_multiple_of(8);
                    let mut da = Vec::with_capacity(padded);
                    let mut sa = Vec::with_capacity(padded);
                    let mut av = Vec::with_capacity(a.len());
                    for b in a {
                        let (d, s, q) = $act(b);
                        let base = if $off != 0 {
                            _mm256_mullo_epi32(dot_us(ones, q), _mm256_set1_epi32(-$off))
                        } else {
                            _mm256_setzero_si256()
                        };
                        da.push(d);
                        sa.push(s);
                        av.push((q, base));
                    }
                    da.resize(padded, 0.0);
                    sa.resize(padded, 0.0);
                    let wr = |r: usize| -> &[$W] { cs(&w[r * w_row..(r + 1) * w_row]) };
                    let n_rows = out.len();
                    let runs = av.len().div_ceil(8);
                    let mut r = 0;
                    while r + 4 <= n_rows {
                        let pf = Prefetch::ahead(w, r / 4, 4 * w_row, PF, n_rows * w_row, runs);
                        let w4 = [wr(r), wr(r + 1), wr(r + 2), wr(r + 3)];
                        rows::<4>(w4, &da, &sa, &av, &mut out[r..r + 4], pf);
                        r += 4;
                    }
                    while r < n_rows {
                        let pf = Prefetch::for_pass(w, r, w_row, n_rows * w_row, runs);
                        rows::<1>([wr(r)], &da, &sa, &av, &mut out[r..r + 1], pf);
                        r += 1;
                    }
                }
            };
        }
        /// A weight block's integer dot with the activation quants, added to `base` (the offset term).
        macro_rules! unsigned_block_dot {
            ($name:ident, $W:ty, $u:ident) => {
                #[inline]
                #[target_feature(enable = $features)]
                fn $name(base: __m256i, w: &$W, a_q: __m256i) -> __m256i {
                    $dot(base, $u(w), a_q)
                }
            };
        }
        unsigned_block_dot!(bd_q4_0, BlockQ4_0, u_q4_0);
        unsigned_block_dot!(bd_q4_1, BlockQ4_1, u_q4_1);
        unsigned_block_dot!(bd_q5_0, BlockQ5_0, u_q5_0);
        unsigned_block_dot!(bd_q5_1, BlockQ5_1, u_q5_1);
        unsigned_block_dot!(bd_q8_0, BlockQ8_0, u_q8_0);

        /// How far ahead `legacy_matvec!` prefetches, in bytes (`x86::ab::plain_matvec_ab` measures others).
        const MATVEC_PREFETCH: usize = 8192;

        legacy_matvec!(mv_q4_0, mv_q4_0_at, BlockQ4_0, BlockQ8_0, act_q8_0, bd_q4_0, 8, false);
        legacy_matvec!(mv_q4_1, mv_q4_1_at, BlockQ4_1, BlockQ8_1, act_q8_1, bd_q4_1, 0, true);
        legacy_matvec!(mv_q5_0, mv_q5_0_at, BlockQ5_0, BlockQ8_0, act_q8_0, bd_q5_0, 16, false);
        legacy_matvec!(mv_q5_1, mv_q5_1_at, BlockQ5_1, BlockQ8_1, act_q8_1, bd_q5_1, 0, true);
        legacy_matvec!(mv_q8_0, mv_q8_0_at, BlockQ8_0, BlockQ8_0, act_q8_0, bd_q8_0, 128, false);

        /// The decode matvec kernel for `ty`, if any (same bits as `tiled_kernel(ty)` at one token). Handed
        /// out only on a CPU with `$features`.
        pub(in crate::dot::x86) fn matvec_kernel(ty: GgmlType) -> Option<RowsFn> {
            macro_rules! mv {
                ($f:ident) => {
                    Some(|w: &[u8], wr: usize, a: &[u8], out: &mut [f32]| {
                        // SAFETY: this table is only reached on a CPU with $features (see above).
                        unsafe { $f(w, wr, a, out) }
                    })
                };
            }
            use GgmlType::*;
            match ty {
                Q4_0 => mv!(mv_q4_0),
                Q4_1 => mv!(mv_q4_1),
                Q5_0 => mv!(mv_q5_0),
                Q5_1 => mv!(mv_q5_1),
                // (decode's Q8_0 takes the prefetched row kernel, or on AVX-512 for narrow rows the zmm matvec:
                // `x86::matvec_kernel`)
                Q8_0 if $full_u8 => mv!(mv_q8_0),
                // Plain AVX2's Q8_0 takes the row kernel: a four-row matvec here (session 9) read gemma-3-270m's
                // 262144 × 640 output matrix a third slower (decode 97 against 134 t/s, avx2-novnni, Zen 5,
                // alternated) and the 1B shape's Q8_0 matrices no faster (33.0 against 33.0 t/s).
                _ => None,
            }
        }

        /// Q4_K group g (32 elements): unsigned quants and the sub-block scale for both halves.
        #[inline]
        #[target_feature(enable = $features)]
        fn grp_q4_k(w: &BlockQ4K, g: usize, sc: &[(i32, i32); 8]) -> (__m256i, i32, i32) {
            let q = ld(&w.qs[32 * (g / 2)..]);
            let q = if g % 2 == 0 { q } else { _mm256_srli_epi16::<4>(q) };
            (_mm256_and_si256(q, _mm256_set1_epi8(0xF)), sc[g].0, sc[g].1)
        }

        #[inline]
        #[target_feature(enable = $features)]
        fn grp_q6_k(w: &BlockQ6K, g: usize, sc: &[(i32, i32); 8]) -> (__m256i, i32, i32) {
            let (h, k) = (g / 4, g % 4);
            let ql = ld(&w.ql[64 * h + 32 * (k & 1)..]);
            let low = if k < 2 { ql } else { _mm256_srli_epi16::<4>(ql) };
            let low = _mm256_and_si256(low, _mm256_set1_epi8(0xF));
            let qh = _mm256_srl_epi16(ld(&w.qh[32 * h..]), _mm_cvtsi32_si128(2 * k as i32));
            let high = _mm256_slli_epi16::<4>(_mm256_and_si256(qh, _mm256_set1_epi8(3)));
            (_mm256_or_si256(low, high), sc[g].0, sc[g].1)
        }

        /// Q4_K: per-group scales, d, dmin, and the weights of the min term −dmin·Σ_k c_k·bsum_k over the 16
        /// activation sub-sums (c_k = m_(k/2), 16 × i16 as [`k_mins`] takes them).
        #[inline]
        #[target_feature(enable = $features)]
        fn meta_q4_k(w: &BlockQ4K) -> ([(i32, i32); 8], __m256i, f32, f32) {
            let mut sc = [(0, 0); 8];
            let mut m = [0i32; 8];
            for j in 0..8 {
                let (s, mm) = scale_min_k4(j, &w.scales);
                sc[j] = (s as i32, s as i32);
                m[j] = mm as i32;
            }
            // SAFETY: m is exactly 32 readable bytes.
            let m = unsafe { _mm256_loadu_si256(m.as_ptr().cast()) };
            let (d, dmin) = h2(w.d, w.dmin);
            (sc, _mm256_or_si256(m, _mm256_slli_epi32::<16>(m)), d, dmin)
        }

        #[inline]
        #[target_feature(enable = $features)]
        fn meta_q6_k(w: &BlockQ6K) -> ([(i32, i32); 8], __m256i, f32, f32) {
            let mut sc = [(0, 0); 8];
            for (g, s) in sc.iter_mut().enumerate() {
                let i = 8 * (g / 4) + 2 * (g % 4);
                *s = (w.scales[i] as i32, w.scales[i + 1] as i32);
            }
            // the −32 offset: Σ sc·(q − 32)·a = Σ sc·q·a − 32·Σ sc·bsum, folded as "min" with dmin = 32·d
            // SAFETY: scales is exactly 16 readable bytes.
            let c = _mm256_cvtepi8_epi16(unsafe { _mm_loadu_si128(w.scales.as_ptr().cast()) });
            let d = h1(w.d);
            (sc, c, d, 32.0 * d)
        }

        /// A K-quant group's two sub-block scales as [`dot_us_sc`] takes them: `sa` for lanes 0-3 (the first 16
        /// quants), `sb` for lanes 4-7; i32 lanes for VNNI, i16 pairs for `maddubs`.
        #[inline]
        #[target_feature(enable = $features)]
        fn scale_pair(sa: i32, sb: i32) -> __m256i {
            if $full_u8 {
                _mm256_set_m128i(_mm_set1_epi32(sb), _mm_set1_epi32(sa))
            } else {
                _mm256_set_m128i(_mm_set1_epi16(sb as i16), _mm_set1_epi16(sa as i16))
            }
        }

        /// `dot_us(u, s)` with each lane times its scale from [`scale_pair`], exact in i32. Without VNNI the scale
        /// is the `madd` multiplier of `maddubs`' i16 pair sums (where `dot_us` multiplies by 1), which saves
        /// a `vpmulld` per 32 products: |u| ≤ 63 and |s| ≤ 127 keep the pairs within i16 (2·63·127 = 16002),
        /// and |sc| ≤ 128 the results within i32.
        #[inline]
        #[target_feature(enable = $features)]
        fn dot_us_sc(u: __m256i, s: __m256i, sc: __m256i) -> __m256i {
            if $full_u8 {
                _mm256_mullo_epi32(dot_us(u, s), sc)
            } else {
                _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), sc)
            }
        }

        /// One super-block of a K-quant weight row unpacked once per row tile, so that every token tile of
        /// the call reuses it: each group's unsigned quants and scale pair ([`dot_us_sc`]'s form), the min
        /// term's weights ([`k_mins`]), d and dmin.
        #[derive(Clone, Copy)]
        struct KUnpacked {
            q: [__m256i; 8],
            sc: [__m256i; 8],
            c: __m256i,
            d: f32,
            dmin: f32,
        }

        macro_rules! k_unpack {
            ($name:ident, $W:ty, $grp:ident, $meta:ident) => {
                #[inline]
                #[target_feature(enable = $features)]
                fn $name(w: &$W) -> KUnpacked {
                    let (sc, c, d, dmin) = $meta(w);
                    KUnpacked {
                        q: std::array::from_fn(|g| $grp(w, g, &sc).0),
                        sc: std::array::from_fn(|g| scale_pair(sc[g].0, sc[g].1)),
                        c,
                        d,
                        dmin,
                    }
                }
            };
        }
        k_unpack!(unpack_q4_k, BlockQ4K, grp_q4_k, meta_q4_k);
        k_unpack!(unpack_q6_k, BlockQ6K, grp_q6_k, meta_q6_k);

        /// One R×T tile of a K-quant: Σ over super-blocks of d·da·Σ_g sc_g·(q_g·a_g), plus each (row, token)'s
        /// min term from [`k_mins`] (`mins[r]` starts at the tile's first token).
        #[inline]
        #[target_feature(enable = $features)]
        fn tile_k<const RR: usize, const TT: usize>(
            w: [&[KUnpacked]; RR],
            a: [&[BlockQ8K]; TT],
            mins: [&[f32]; RR],
            out: &mut [[f32; TT]; RR],
        ) {
            let nb = w[0].len();
            assert!((0..RR).all(|r| w[r].len() == nb && mins[r].len() >= TT) && (0..TT).all(|t| a[t].len() >= nb));
            let mut acc = [[_mm256_setzero_ps(); TT]; RR];
            for b in 0..nb {
                let da: [f32; TT] = std::array::from_fn(|t| a[t][b].d());
                for r in 0..RR {
                    let k = &w[r][b];
                    let mut sumi = [_mm256_setzero_si256(); TT];
                    for g in 0..8 {
                        for t in 0..TT {
                            let p = dot_us_sc(k.q[g], ld(&a[t][b].qs[32 * g..]), k.sc[g]);
                            sumi[t] = _mm256_add_epi32(sumi[t], p);
                        }
                    }
                    for t in 0..TT {
                        let p = _mm256_cvtepi32_ps(sumi[t]);
                        acc[r][t] = _mm256_fmadd_ps(p, _mm256_set1_ps(k.d * da[t]), acc[r][t]);
                    }
                }
            }
            for r in 0..RR {
                for t in 0..TT {
                    out[r][t] = hsum(acc[r][t]) + mins[r][t];
                }
            }
        }

        /// The tokens' side of [`k_mins`], once per call: d_a `[b * ntp + t]` and the bsums in pairs
        /// (2k in the low i16, 2k+1 in the high) `[(b * 8 + k) * ntp + t]`, tokens padded to `ntp` (a multiple
        /// of 8) with zeros.
        struct KActs {
            da: Vec<f32>,
            bsp: Vec<i32>,
            ntp: usize,
        }

        impl KActs {
            fn new<'a>(a: impl Fn(usize) -> &'a [BlockQ8K], n_tok: usize, nb: usize) -> KActs {
                let ntp = n_tok.next_multiple_of(8);
                let (mut da, mut bsp) = (vec![0f32; nb * ntp], vec![0i32; nb * 8 * ntp]);
                for t in 0..n_tok {
                    for (b, blk) in a(t)[..nb].iter().enumerate() {
                        da[b * ntp + t] = blk.d();
                        for k in 0..8 {
                            let (lo, hi) = (blk.bsum(2 * k) as u16 as u32, blk.bsum(2 * k + 1) as u16 as u32);
                            bsp[(b * 8 + k) * ntp + t] = (lo | hi << 16) as i32;
                        }
                    }
                }
                KActs { da, bsp, ntp }
            }
        }

        /// A K-quant row's min terms for every token (`mins[t]`, `ntp` of them), eight tokens a vector: the
        /// row kernels' scalar chain `m −= (dmin·d_a)·corr` per super-block in order, with corr = Σ_k c_k·bsum_k
        /// an exact integer as the old per-tile horizontal sum's, so each lane has the scalar's bits. (Computed in the tile
        /// it cost a horizontal integer sum per row, token and super-block: about a quarter of the tile.)
        #[inline]
        #[target_feature(enable = $features)]
        fn k_mins(w: &[KUnpacked], acts: &KActs, mins: &mut [f32]) {
            let ntp = acts.ntp;
            assert!(mins.len() >= ntp && acts.da.len() >= w.len() * ntp && acts.bsp.len() >= w.len() * 8 * ntp);
            mins[..ntp].fill(0.0);
            for (b, k) in w.iter().enumerate() {
                let mut c = [0i32; 8];
                // SAFETY: c is exactly 32 writable bytes.
                unsafe { _mm256_storeu_si256(c.as_mut_ptr().cast(), k.c) };
                let c: [__m256i; 8] = std::array::from_fn(|j| _mm256_set1_epi32(c[j]));
                let dmin = _mm256_set1_ps(k.dmin);
                for t in (0..ntp).step_by(8) {
                    // SAFETY: every index below is < b·8·ntp + 7·ntp + ntp ≤ bsp.len(), < b·ntp + ntp ≤ da.len(),
                    // < ntp ≤ mins.len() (asserted above; t + 8 ≤ ntp).
                    unsafe {
                        let bs = acts.bsp.as_ptr().add(b * 8 * ntp + t);
                        let mut corr = _mm256_setzero_si256();
                        for (j, cj) in c.iter().enumerate() {
                            let x = _mm256_loadu_si256(bs.add(j * ntp).cast());
                            corr = _mm256_add_epi32(corr, _mm256_madd_epi16(x, *cj));
                        }
                        let da = _mm256_loadu_ps(acts.da.as_ptr().add(b * ntp + t));
                        let m = mins.as_mut_ptr().add(t);
                        let f = _mm256_mul_ps(dmin, da);
                        _mm256_storeu_ps(m, _mm256_sub_ps(_mm256_loadu_ps(m), _mm256_mul_ps(f, _mm256_cvtepi32_ps(corr))));
                    }
                }
            }
        }

        /// Walks the output in R×T tiles (edges with 1-row / 1-token tiles) over K-quant rows unpacked once per
        /// row tile ([`KUnpacked`]).
        macro_rules! k_driver {
            ($name:ident, $W:ty, $unpack:ident) => {
                #[target_feature(enable = $features)]
                pub(in crate::dot::x86) fn $name<const R: usize, const T: usize>(
                    w: &[u8], w_row: usize, acts: &[u8], a_row: usize, n_tok: usize, out: &mut [f32], stride: usize,
                ) {
                    let rows = w.len() / w_row;
                    let nb = w_row / std::mem::size_of::<$W>();
                    let wr = |r: usize| -> &[$W] { cs(&w[r * w_row..(r + 1) * w_row]) };
                    let ar = |t: usize| -> &[BlockQ8K] { cs(&acts[t * a_row..(t + 1) * a_row]) };
                    let zero = KUnpacked {
                        q: [_mm256_setzero_si256(); 8],
                        sc: [_mm256_setzero_si256(); 8],
                        c: _mm256_setzero_si256(),
                        d: 0.0,
                        dmin: 0.0,
                    };
                    let mut buf = vec![zero; R * nb];
                    let k_acts = KActs::new(ar, n_tok, nb);
                    let ntp = k_acts.ntp;
                    let mut mins = vec![0f32; R * ntp];
                    let mut r0 = 0;
                    while r0 < rows {
                        let rr = if r0 + R <= rows { R } else { 1 };
                        for i in 0..rr {
                            for (dst, blk) in buf[i * nb..(i + 1) * nb].iter_mut().zip(wr(r0 + i)) {
                                *dst = $unpack(blk);
                            }
                        }
                        let ur = |i: usize| &buf[i * nb..(i + 1) * nb];
                        for i in 0..rr {
                            k_mins(ur(i), &k_acts, &mut mins[i * ntp..(i + 1) * ntp]);
                        }
                        let mr = |i: usize, t0: usize| &mins[i * ntp + t0..(i + 1) * ntp];
                        let mut t0 = 0;
                        while t0 < n_tok {
                            let tt = if t0 + T <= n_tok { T } else { 1 };
                            match (rr == R, tt == T) {
                                (true, true) => {
                                    let mut o = [[0f32; T]; R];
                                    tile_k::<R, T>(std::array::from_fn(ur), std::array::from_fn(|i| ar(t0 + i)), std::array::from_fn(|i| mr(i, t0)), &mut o);
                                    for (i, row) in o.iter().enumerate() {
                                        for (t, v) in row.iter().enumerate() {
                                            out[(t0 + t) * stride + r0 + i] = *v;
                                        }
                                    }
                                }
                                (true, false) => {
                                    let mut o = [[0f32; 1]; R];
                                    tile_k::<R, 1>(std::array::from_fn(ur), [ar(t0)], std::array::from_fn(|i| mr(i, t0)), &mut o);
                                    for (i, row) in o.iter().enumerate() {
                                        out[t0 * stride + r0 + i] = row[0];
                                    }
                                }
                                (false, true) => {
                                    let mut o = [[0f32; T]; 1];
                                    tile_k::<1, T>([ur(0)], std::array::from_fn(|i| ar(t0 + i)), [mr(0, t0)], &mut o);
                                    for (t, v) in o[0].iter().enumerate() {
                                        out[(t0 + t) * stride + r0] = *v;
                                    }
                                }
                                (false, false) => {
                                    let mut o = [[0f32; 1]; 1];
                                    tile_k::<1, 1>([ur(0)], [ar(t0)], [mr(0, t0)], &mut o);
                                    out[t0 * stride + r0] = o[0][0];
                                }
                            }
                            t0 += tt;
                        }
                        r0 += rr;
                    }
                }
            };
        }
        k_driver!(gemm_q4_k, BlockQ4K, unpack_q4_k);
        k_driver!(gemm_q6_k, BlockQ6K, unpack_q6_k);

        /// [`k_driver`]'s walk for the 32-element formats, with every block scale converted to f32 once:
        /// the tokens' for the whole call, each row tile's before its pass over the tokens.
        macro_rules! legacy_driver {
            ($name:ident, $tile:ident, $W:ty, $A:ty) => {
                #[target_feature(enable = $features)]
                pub(in crate::dot::x86) fn $name<const R: usize, const T: usize>(
                    w: &[u8], w_row: usize, acts: &[u8], a_row: usize, n_tok: usize, out: &mut [f32], stride: usize,
                ) {
                    let rows = w.len() / w_row;
                    let nb = w_row / std::mem::size_of::<$W>();
                    let wr = |r: usize| -> &[$W] { cs(&w[r * w_row..(r + 1) * w_row]) };
                    let ar = |t: usize| -> &[$A] { cs(&acts[t * a_row..(t + 1) * a_row]) };
                    let mut a_sc = vec![0f32; 2 * n_tok * nb];
                    let (ad, am) = a_sc.split_at_mut(n_tok * nb);
                    for t in 0..n_tok {
                        block_scales(&ar(t)[..nb], &mut ad[t * nb..(t + 1) * nb], &mut am[t * nb..(t + 1) * nb]);
                    }
                    // block-major, so that a tile's tokens' scales of one block are neighbours
                    let mut a_bm = vec![0f32; 2 * n_tok * nb];
                    let (bd, bm) = a_bm.split_at_mut(n_tok * nb);
                    for t in 0..n_tok {
                        for b in 0..nb {
                            (bd[b * n_tok + t], bm[b * n_tok + t]) = (ad[t * nb + b], am[t * nb + b]);
                        }
                    }
                    let (bd, bm) = (&*bd, &*bm);
                    let asc = |t: usize| (&bd[t..], &bm[t..], n_tok);
                    let mut w_sc = vec![0f32; 2 * R * nb];
                    let mut r0 = 0;
                    while r0 < rows {
                        let rr = if r0 + R <= rows { R } else { 1 };
                        {
                            let (wd, wm) = w_sc.split_at_mut(R * nb);
                            for i in 0..rr {
                                block_scales(wr(r0 + i), &mut wd[i * nb..(i + 1) * nb], &mut wm[i * nb..(i + 1) * nb]);
                            }
                        }
                        let (wd, wm) = w_sc.split_at(R * nb);
                        let wsc = |i: usize| (&wd[i * nb..(i + 1) * nb], &wm[i * nb..(i + 1) * nb]);
                        let mut t0 = 0;
                        while t0 < n_tok {
                            let tt = if t0 + T <= n_tok { T } else { 1 };
                            match (rr == R, tt == T) {
                                (true, true) => {
                                    let mut o = [[0f32; T]; R];
                                    $tile::<R, T>(
                                        std::array::from_fn(|i| wr(r0 + i)),
                                        std::array::from_fn(wsc),
                                        std::array::from_fn(|i| ar(t0 + i)),
                                        asc(t0),
                                        &mut o,
                                    );
                                    for (i, row) in o.iter().enumerate() {
                                        for (t, v) in row.iter().enumerate() {
                                            out[(t0 + t) * stride + r0 + i] = *v;
                                        }
                                    }
                                }
                                (true, false) => {
                                    let mut o = [[0f32; 1]; R];
                                    $tile::<R, 1>(
                                        std::array::from_fn(|i| wr(r0 + i)),
                                        std::array::from_fn(wsc),
                                        [ar(t0)],
                                        asc(t0),
                                        &mut o,
                                    );
                                    for (i, row) in o.iter().enumerate() {
                                        out[t0 * stride + r0 + i] = row[0];
                                    }
                                }
                                (false, true) => {
                                    let mut o = [[0f32; T]; 1];
                                    $tile::<1, T>(
                                        [wr(r0)],
                                        [wsc(0)],
                                        std::array::from_fn(|i| ar(t0 + i)),
                                        asc(t0),
                                        &mut o,
                                    );
                                    for (t, v) in o[0].iter().enumerate() {
                                        out[(t0 + t) * stride + r0] = *v;
                                    }
                                }
                                (false, false) => {
                                    let mut o = [[0f32; 1]; 1];
                                    $tile::<1, 1>([wr(r0)], [wsc(0)], [ar(t0)], asc(t0), &mut o);
                                    out[t0 * stride + r0] = o[0][0];
                                }
                            }
                            t0 += tt;
                        }
                        r0 += rr;
                    }
                }
            };
        }
        legacy_driver!(gemm_q4_0, tile_q4_0, BlockQ4_0, BlockQ8_0);
        legacy_driver!(gemm_q4_1, tile_q4_1, BlockQ4_1, BlockQ8_1);
        legacy_driver!(gemm_q5_0, tile_q5_0, BlockQ5_0, BlockQ8_0);
        legacy_driver!(gemm_q5_1, tile_q5_1, BlockQ5_1, BlockQ8_1);
        legacy_driver!(gemm_q8_0, tile_q8_0, BlockQ8_0, BlockQ8_0);
        legacy_driver!(gemm_q8_0_ss, tile_q8_0_ss, BlockQ8_0, BlockQ8_0);

        /// The tiled GEMM kernel for `ty`, if any. Handed out only on a CPU with `$features`.
        pub(in crate::dot::x86) fn tiled_kernel(ty: GgmlType) -> Option<TiledFn> {
            macro_rules! tiled {
                ($f:ident, $shape:expr) => {
                    Some(|w: &[u8], wr: usize, a: &[u8], ar: usize, n: usize, out: &mut [f32], s: usize| {
                        // SAFETY: this table is only reached on a CPU with $features (see above).
                        unsafe { $f::<{ $shape.0 }, { $shape.1 }>(w, wr, a, ar, n, out, s) }
                    })
                };
            }
            use GgmlType::*;
            match ty {
                Q4_0 => tiled!(gemm_q4_0, LEGACY_TILE),
                Q4_1 => tiled!(gemm_q4_1, LEGACY_TILE),
                Q5_0 => tiled!(gemm_q5_0, LEGACY_TILE),
                Q5_1 => tiled!(gemm_q5_1, LEGACY_TILE),
                Q8_0 if $full_u8 => tiled!(gemm_q8_0, LEGACY_TILE),
                Q8_0 => tiled!(gemm_q8_0_ss, Q8_SIGNED_TILE),
                Q4_K => tiled!(gemm_q4_k, K_TILE),
                Q6_K => tiled!(gemm_q6_k, K_TILE),
                _ => None,
            }
        }
    };
}

pub(super) use x86_tiled;
