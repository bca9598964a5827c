//! 256-bit matmul for several tokens against the 32-element block formats (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0),
//! on plain AVX2 (`maddubs`) and AVX-VNNI: a serving step's decoding sequences, one token each (the AVX2
//! counterpart of `zmm_batch.rs`), and for the 4- and 5-bit formats the prefill too (`x86::small_batch_kernel`
//! says which counts take it).
//!
//! Why a kernel of its own: the tiled GEMM (`tiled.rs`) unpacks each weight block once per tile of 4 tokens
//! (once per token at 2 or 3), sums the minima and the scale products in scalars and allocates its scale
//! tables on every call; at 8 tokens it cost 6-6.4 times one token's matvec on smollm2's Q4_1 matrices.
//! Here each pass of [`BATCH_ROWS`] rows is decoded once into a small per-thread buffer (unpacked quants,
//! block scales as f32, block-major), each token's offset sums and scales are prepared once per call, and
//! then each token runs over the decoded pass with the 8 rows' scale products and minima in one vector
//! each: 5.1-5.2x at 8 tokens, and 1.3-1.9x the tiled GEMM's speed from 16 to 256 tokens (`mod ab` below,
//! Zen 4, plain AVX2 and AVX-VNNI alike). Plain AVX2's Q8_0 (`maddubs` cannot take u8 up to 255, so the
//! tiled GEMM's signed form |w| · sign(a, w) pays a `vpsignb` per (row, token, block)) has its own pass,
//! [`mb_q8_0_w16`]: both sides widened to i16 once, two `vpmaddwd` and an add.
//!
//! The bits are the one-token kernel's (`legacy_matvec!`), for every token and row: the same integer lanes
//! (`$dot` from the same offset base), one f32 product
//! `d_w·d_a` per block, one FMA per block in block order into an 8-lane accumulator, Σ m_w·s_a as a separate
//! sum in block order, then `hsum(acc) + mins`. The last `rows % BATCH_ROWS` rows go through the one-token
//! kernel itself. Tested below against it and the scalar reference, and in `tests/dot_order.rs`.
//!
//! Expanded by `x86_batch!` in the same module as `x86_kernels!` and `x86_tiled!`, whose helpers (`ld`,
//! `h2`, `hsum`, `scales8`, `u_q4_0`, `act_q8_0`, `mv_q4_0`, ...) it uses.

/// `$dot` and `$full_u8`: as in `x86_tiled!` (VNNI takes u8 up to 255, so Q8_0 runs offset by 128;
/// `maddubs` does not, so Q8_0 takes `mb_q8_0_w16` there).
macro_rules! x86_batch {
    ($features:literal, $dot:path, $full_u8:literal) => {
        /// Weight rows decoded per pass, and output rows per register tile (× 2 tokens: 8 accumulators).
        const BATCH_ROWS: usize = 8;

        /// Per-thread scratch, reused across calls (it only grows). A pass's rows, block-major (entry
        /// `b * BATCH_ROWS + r`): unsigned quants `u`, scales `dw` and minima
        /// `mw`. The call's tokens, token-major (entry
        /// `t * nb + b`): offset sums `base` (−off·Σa per lane), scales `da` and sums `sa` (Q8_1's s).
        #[derive(Default)]
        struct BatchScratch {
            u: Vec<__m256i>,
            dw: Vec<f32>,
            mw: Vec<f32>,
            base: Vec<__m256i>,
            da: Vec<f32>,
            sa: Vec<f32>,
            /// One token's `d_w·d_a` for the pass's rows, block-major like `dw` (see `$tile`).
            dd: Vec<f32>,
            /// Plain AVX2's Q8_0 ([`mb_q8_0_w16`]): the pass's quants and the tokens' as i16 pairs, two
            /// vectors per block (entries `2 (b * BATCH_ROWS + r)` and `2 (t * nb + b)`, + 1).
            w16: Vec<__m256i>,
            a16: Vec<__m256i>,
        }

        thread_local! {
            static BATCH: std::cell::RefCell<BatchScratch> =
                std::cell::RefCell::new(BatchScratch::default());
        }

        impl BatchScratch {
            /// Room for a pass of `nb` blocks and `n_tok` tokens of `nb` blocks.
            #[inline]
            #[target_feature(enable = $features)]
            fn reserve(&mut self, nb: usize, n_tok: usize) {
                let (zi, pass, toks) = (_mm256_setzero_si256(), BATCH_ROWS * nb, n_tok * nb);
                let wide = [(&mut self.w16, 2 * pass), (&mut self.a16, 2 * toks)];
                for (v, n) in [(&mut self.u, pass), (&mut self.base, toks)].into_iter().chain(wide) {
                    if v.len() < n {
                        v.resize(n, zi);
                    }
                }
                let floats = [
                    (&mut self.dw, pass),
                    (&mut self.mw, pass),
                    (&mut self.da, toks),
                    (&mut self.sa, toks),
                    (&mut self.dd, pass),
                ];
                for (v, n) in floats {
                    if v.len() < n {
                        v.resize(n, 0.0);
                    }
                }
            }
        }

        /// The 8×8 transpose: lane `r` of output `i` is lane `i` of input `r`.
        #[inline]
        #[target_feature(enable = $features)]
        fn transpose8(x: [__m256; 8]) -> [__m256; 8] {
            let t: [__m256; 8] = std::array::from_fn(|i| {
                let (a, b) = (x[2 * (i / 2)], x[2 * (i / 2) + 1]);
                if i % 2 == 0 { _mm256_unpacklo_ps(a, b) } else { _mm256_unpackhi_ps(a, b) }
            });
            // t[2k], t[2k+1]: rows 2k, 2k+1 interleaved (lanes 0,1 / 2,3 of each 128-bit half)
            let u: [__m256; 8] = std::array::from_fn(|i| {
                let (g, j) = (i / 4, i % 4);
                let (a, b) = (t[4 * g + j / 2], t[4 * g + 2 + j / 2]);
                if j % 2 == 0 {
                    _mm256_shuffle_ps::<0x44>(a, b)
                } else {
                    _mm256_shuffle_ps::<0xEE>(a, b)
                }
            });
            // u[4g + j]: column j (and j + 4 in the high half) of rows 4g..4g+4
            std::array::from_fn(|i| {
                let (a, b) = (u[i % 4], u[4 + i % 4]);
                if i < 4 {
                    _mm256_permute2f128_ps::<0x20>(a, b)
                } else {
                    _mm256_permute2f128_ps::<0x31>(a, b)
                }
            })
        }

        /// Lane `r` = `hsum(v[r])`, the 8 sums in one go: each in `hsum`'s order ((hi + lo) per 128-bit
        /// half, then lanes 0 + 2 and 1 + 3, then those two), so the same bits, in about a third of the
        /// operations of eight `hsum`s (which a token's pass of 8 rows otherwise pays over only nb blocks).
        #[inline]
        #[target_feature(enable = $features)]
        fn hsum8(v: [__m256; 8]) -> __m256 {
            // x[k]: [lo + hi of v[2k] | lo + hi of v[2k + 1]]
            let x: [__m256; 4] = std::array::from_fn(|k| {
                let (a, b) = (v[2 * k], v[2 * k + 1]);
                _mm256_add_ps(
                    _mm256_permute2f128_ps::<0x31>(a, b),
                    _mm256_permute2f128_ps::<0x20>(a, b),
                )
            });
            // y[j]: per half, [s0 + s2, s1 + s3] of x[2j]'s vector, then of x[2j + 1]'s
            let y: [__m256; 2] = std::array::from_fn(|j| {
                let (a, b) = (_mm256_castps_pd(x[2 * j]), _mm256_castps_pd(x[2 * j + 1]));
                _mm256_add_ps(
                    _mm256_castpd_ps(_mm256_unpacklo_pd(a, b)),
                    _mm256_castpd_ps(_mm256_unpackhi_pd(a, b)),
                )
            });
            // lanes [v0, v2, v4, v6 | v1, v3, v5, v7]
            let even = _mm256_shuffle_ps::<0b10_00_10_00>(y[0], y[1]);
            let odd = _mm256_shuffle_ps::<0b11_01_11_01>(y[0], y[1]);
            let z = _mm256_add_ps(even, odd);
            _mm256_permutevar8x32_ps(z, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7))
        }

        macro_rules! batch_fmt {
            ($name:ident, $prep:ident, $decode:ident, $tile:ident, $mv:ident, $W:ty, $A:ty, $act:ident, $u:ident,
             $off:expr, $has_min:expr) => {
                /// The tokens' scales and offset sums, as the one-token kernel prepares its activation.
                #[inline]
                #[target_feature(enable = $features)]
fn $prep<'a>(tokens: impl Fn(usize) -> &'a [$A], n_tok: usize, nb: usize, s: &mut BatchScratch) {
                    assert!(s.base.len() >= n_tok * nb && s.da.len() >= n_tok * nb && s.sa.len() >= n_tok * nb);
                    let ones = _mm256_set1_epi8(1);
                    for t in 0..n_tok {
                        for (b, blk) in tokens(t)[..nb].iter().enumerate() {
                            let (d, sum, q) = $act(blk);
                            s.base[t * nb + b] = if $off != 0 {
                                _mm256_mullo_epi32(dot_us(ones, q), _mm256_set1_epi32(-$off))
                            } else {
                                _mm256_setzero_si256()
                            };
                            s.da[t * nb + b] = d;
                            s.sa[t * nb + b] = sum;
                        }
                    }
                }

                /// Decodes [`BATCH_ROWS`] rows into the pass buffers; prefetches the next pass meanwhile.
                #[inline]
                #[target_feature(enable = $features)]
                fn $decode(w: [&[$W]; BATCH_ROWS], s: &mut BatchScratch, prefetch: Prefetch) {
                    let nb = w[0].len();
                    assert!(w.iter().all(|r| r.len() == nb));
                    assert!(s.u.len() >= BATCH_ROWS * nb);
                    assert!(s.dw.len() >= BATCH_ROWS * nb && s.mw.len() >= BATCH_ROWS * nb);
                    let full = nb - nb % 8;
                    for (c, b0) in (0..full).step_by(8).enumerate() {
                        // each row's 8 block scales, then transposed to block-major in registers (64 scalar
                        // stores a pass of 8 blocks measured as costly as the rest of the decoding)
                        let scales: [(__m256, __m256); BATCH_ROWS] =
                            std::array::from_fn(|r| scales8(&w[r][b0..b0 + 8]));
                        let dw = transpose8(std::array::from_fn(|r| scales[r].0));
                        // SAFETY: (b0 + 8)·BATCH_ROWS ≤ nb·BATCH_ROWS ≤ the lengths of dw and mw (asserted above).
                        unsafe {
                            for (i, v) in dw.iter().enumerate() {
                                _mm256_storeu_ps(s.dw.as_mut_ptr().add((b0 + i) * BATCH_ROWS), *v);
                            }
                            if $has_min {
                                let mw = transpose8(std::array::from_fn(|r| scales[r].1));
                                for (i, v) in mw.iter().enumerate() {
                                    _mm256_storeu_ps(s.mw.as_mut_ptr().add((b0 + i) * BATCH_ROWS), *v);
                                }
                            }
                        }
                        prefetch.step(c);
                    }
                    // the steps a row's last partial run of 8 blocks would have taken: the whole next pass
                    for c in full / 8..nb.div_ceil(8) {
                        prefetch.step(c);
                    }
                    for b in full..nb {
                        for (r, row) in w.iter().enumerate() {
                            let bytes: &[u8] = cs(std::slice::from_ref(&row[b]));
                            let (d, m) = h2([bytes[0], bytes[1]], [bytes[2], bytes[3]]);
                            s.dw[b * BATCH_ROWS + r] = d;
                            s.mw[b * BATCH_ROWS + r] = m;
                        }
                    }
                    for b in 0..nb {
                        for (r, row) in w.iter().enumerate() {
                            s.u[b * BATCH_ROWS + r] = $u(&row[b]);
                        }
                    }
                }

                /// Token `t` (`a`, prepared at entry `t`) against the decoded pass, each row summed as the
                /// one-token kernel sums it.
                ///
                /// The rows' `d_w·d_a` products are written to `dd` in a first loop and broadcast from
                /// memory in the second: built in a register, each row's product took a shuffle or two to
                /// broadcast (`vshufps` + `vpermpd` ...), on the same vector ports as the dot itself.
                #[inline]
                #[target_feature(enable = $features)]
                fn $tile(
                    s: &BatchScratch,
                    dd: &mut [f32],
                    nb: usize,
                    a: &[$A],
                    t: usize,
                ) -> [f32; BATCH_ROWS] {
                    assert!(s.u.len() >= BATCH_ROWS * nb && a.len() >= nb);
                    assert!(s.dw.len() >= BATCH_ROWS * nb && s.mw.len() >= BATCH_ROWS * nb);
                    assert!(dd.len() >= BATCH_ROWS * nb);
                    assert!((t + 1) * nb <= s.base.len().min(s.da.len()).min(s.sa.len()));
                    let mut mins = _mm256_setzero_ps();
                    for b in 0..nb {
                        let k = t * nb + b;
                        // SAFETY: (b + 1)·BATCH_ROWS ≤ the lengths of dw, mw and dd; k < the token buffers'
                        // lengths (all asserted above).
                        unsafe {
                            let dw = _mm256_loadu_ps(s.dw.as_ptr().add(b * BATCH_ROWS));
                            let da = _mm256_set1_ps(*s.da.get_unchecked(k));
                            // the rows' d_w·d_a, each one f32 product as in the one-token kernel
                            _mm256_storeu_ps(dd.as_mut_ptr().add(b * BATCH_ROWS), _mm256_mul_ps(dw, da));
                            if $has_min {
                                let mw = _mm256_loadu_ps(s.mw.as_ptr().add(b * BATCH_ROWS));
                                let sa = _mm256_set1_ps(*s.sa.get_unchecked(k));
                                mins = _mm256_add_ps(mins, _mm256_mul_ps(mw, sa));
                            }
                        }
                    }
                    let mut acc = [_mm256_setzero_ps(); BATCH_ROWS];
                    for b in 0..nb {
                        // SAFETY: b < a.len() and t·nb + b < base.len() (asserted above).
                        let (blk, base) = unsafe { (a.get_unchecked(b), *s.base.get_unchecked(t * nb + b)) };
                        let aq = ld(&blk.qs);
                        let base = if $off != 0 { base } else { _mm256_setzero_si256() };
                        for r in 0..BATCH_ROWS {
                            let i = b * BATCH_ROWS + r;
                            // SAFETY: i < nb·BATCH_ROWS ≤ the lengths of u and dd (asserted above).
                            let (u, d) = unsafe { (*s.u.get_unchecked(i), _mm256_broadcast_ss(dd.get_unchecked(i))) };
                            let p = _mm256_cvtepi32_ps($dot(base, u, aq));
                            acc[r] = _mm256_fmadd_ps(p, d, acc[r]);
                        }
                    }
                    let mut o = [0f32; BATCH_ROWS];
                    // SAFETY: o is BATCH_ROWS (8) floats.
                    unsafe { _mm256_storeu_ps(o.as_mut_ptr(), _mm256_add_ps(hsum8(acc), mins)) };
                    o
                }

                /// `out[t * stride + r]` = dot(row r of `w`, token t of `acts`) for `n_tok` tokens of `a_row`
                /// bytes.
                #[target_feature(enable = $features)]
                fn $name(
                    w: &[u8],
                    w_row: usize,
                    acts: &[u8],
                    a_row: usize,
                    n_tok: usize,
                    out: &mut [f32],
                    stride: usize,
                ) {
                    let nb = a_row / std::mem::size_of::<$A>();
                    if w_row == 0 || n_tok == 0 || nb == 0 {
                        return;
                    }
                    let rows = w.len() / w_row;
                    assert!(w_row >= nb * std::mem::size_of::<$W>() && acts.len() >= n_tok * a_row);
                    let tok = |t: usize| -> &[$A] { cs(&acts[t * a_row..][..nb * std::mem::size_of::<$A>()]) };
                    let wr = |r: usize| -> &[$W] { cs(&w[r * w_row..][..nb * std::mem::size_of::<$W>()]) };
                    let full = rows - rows % BATCH_ROWS;
                    let mut s = BATCH.take();
                    s.reserve(nb, n_tok);
                    $prep(tok, n_tok, nb, &mut s);
                    let mut dd = std::mem::take(&mut s.dd);
                    let pass_bytes = BATCH_ROWS * w_row;
                    for c in 0..full / BATCH_ROWS {
                        let r0 = c * BATCH_ROWS;
                        let pf = Prefetch::for_pass(w, c, pass_bytes, full * w_row, nb.div_ceil(8));
                        $decode(std::array::from_fn(|i| wr(r0 + i)), &mut s, pf);
                        for t in 0..n_tok {
                            let o = $tile(&s, &mut dd, nb, tok(t), t);
                            out[t * stride + r0..][..BATCH_ROWS].copy_from_slice(&o);
                        }
                    }
                    s.dd = dd;
                    BATCH.set(s);
                    if full < rows {
                        for t in 0..n_tok {
                            let act = &acts[t * a_row..(t + 1) * a_row];
                            let dst = &mut out[t * stride + full..t * stride + rows];
                            $mv(&w[full * w_row..rows * w_row], w_row, act, dst);
                        }
                    }
                }
            };
        }
        batch_fmt!(
            mb_q4_0, prep_q4_0, decode_q4_0, btile_q4_0, mv_q4_0,
            BlockQ4_0, BlockQ8_0, act_q8_0, u_q4_0, 8, false
        );
        batch_fmt!(
            mb_q4_1, prep_q4_1, decode_q4_1, btile_q4_1, mv_q4_1,
            BlockQ4_1, BlockQ8_1, act_q8_1, u_q4_1, 0, true
        );
        batch_fmt!(
            mb_q5_0, prep_q5_0, decode_q5_0, btile_q5_0, mv_q5_0,
            BlockQ5_0, BlockQ8_0, act_q8_0, u_q5_0, 16, false
        );
        batch_fmt!(
            mb_q5_1, prep_q5_1, decode_q5_1, btile_q5_1, mv_q5_1,
            BlockQ5_1, BlockQ8_1, act_q8_1, u_q5_1, 0, true
        );
        batch_fmt!(
            mb_q8_0, prep_q8_0, decode_q8_0, btile_q8_0, mv_q8_0,
            BlockQ8_0, BlockQ8_0, act_q8_0, u_q8_0, 128, false
        );

        /// A Q8_0 block's 32 quants as two vectors of 16 i16: the pairs (4i, 4i + 1) in the first and
        /// (4i + 2, 4i + 3) in the second, so that `madd` of each against another block widened alike, added,
        /// gives in lane i the sum over elements 4i..4i + 4: the lane `maddubs` + `madd` give (the integers are
        /// exact either way, so the same bits follow).
        #[inline]
        #[target_feature(enable = $features)]
        fn widen_q8(q: __m256i) -> [__m256i; 2] {
            let pairs = _mm256_setr_epi8(
                0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15,
                0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15,
            );
            // per 128-bit half [(4i, 4i+1) pairs | (4i+2, 4i+3) pairs], then the halves' quarters gathered
            let q = _mm256_permute4x64_epi64::<0b11_01_10_00>(_mm256_shuffle_epi8(q, pairs));
            [
                _mm256_cvtepi8_epi16(_mm256_castsi256_si128(q)),
                _mm256_cvtepi8_epi16(_mm256_extracti128_si256::<1>(q)),
            ]
        }

        /// The tokens' scales and widened quants ([`widen_q8`]).
        #[inline]
        #[target_feature(enable = $features)]
        fn prep_q8_0_w16<'a>(tokens: impl Fn(usize) -> &'a [BlockQ8_0], n_tok: usize, nb: usize, s: &mut BatchScratch) {
            assert!(s.a16.len() >= 2 * n_tok * nb && s.da.len() >= n_tok * nb);
            for t in 0..n_tok {
                for (b, blk) in tokens(t)[..nb].iter().enumerate() {
                    let (d, _, q) = act_q8_0(blk);
                    let k = t * nb + b;
                    [s.a16[2 * k], s.a16[2 * k + 1]] = widen_q8(q);
                    s.da[k] = d;
                }
            }
        }

        /// Decodes [`BATCH_ROWS`] Q8_0 rows into the pass buffers (scales `dw`, widened quants `w16`);
        /// prefetches the next pass meanwhile.
        #[inline]
        #[target_feature(enable = $features)]
        fn decode_q8_0_w16(w: [&[BlockQ8_0]; BATCH_ROWS], s: &mut BatchScratch, prefetch: Prefetch) {
            let nb = w[0].len();
            assert!(w.iter().all(|r| r.len() == nb));
            assert!(s.dw.len() >= BATCH_ROWS * nb && s.w16.len() >= 2 * BATCH_ROWS * nb);
            let full = nb - nb % 8;
            for (c, b0) in (0..full).step_by(8).enumerate() {
                let dw = transpose8(std::array::from_fn(|r| scales8(&w[r][b0..b0 + 8]).0));
                // SAFETY: (b0 + 8)·BATCH_ROWS ≤ nb·BATCH_ROWS ≤ dw's length (asserted above).
                unsafe {
                    for (i, v) in dw.iter().enumerate() {
                        _mm256_storeu_ps(s.dw.as_mut_ptr().add((b0 + i) * BATCH_ROWS), *v);
                    }
                }
                prefetch.step(c);
            }
            for c in full / 8..nb.div_ceil(8) {
                prefetch.step(c);
            }
            for b in full..nb {
                for (r, row) in w.iter().enumerate() {
                    s.dw[b * BATCH_ROWS + r] = h1(row[b].d);
                }
            }
            for b in 0..nb {
                for (r, row) in w.iter().enumerate() {
                    let i = 2 * (b * BATCH_ROWS + r);
                    [s.w16[i], s.w16[i + 1]] = widen_q8(ld(&row[b].qs));
                }
            }
        }

        /// Token `t` against the decoded Q8_0 pass: per (row, block) two `madd`, an add, the conversion and
        /// the FMA with the block's `d_w·d_a` (one f32 product, broadcast from `dd` as in `$tile`), in block
        /// order, then `hsum`: the one-token kernel's integers, products, FMAs and sum.
        #[inline]
        #[target_feature(enable = $features)]
        fn btile_q8_0_w16(s: &BatchScratch, dd: &mut [f32], nb: usize, t: usize) -> [f32; BATCH_ROWS] {
            assert!(s.w16.len() >= 2 * BATCH_ROWS * nb && s.dw.len() >= BATCH_ROWS * nb);
            assert!(dd.len() >= BATCH_ROWS * nb);
            assert!((t + 1) * nb <= s.da.len() && 2 * (t + 1) * nb <= s.a16.len());
            for b in 0..nb {
                // SAFETY: (b + 1)·BATCH_ROWS ≤ the lengths of dw and dd; t·nb + b < da's (asserted above).
                unsafe {
                    let dw = _mm256_loadu_ps(s.dw.as_ptr().add(b * BATCH_ROWS));
                    let da = _mm256_set1_ps(*s.da.get_unchecked(t * nb + b));
                    _mm256_storeu_ps(dd.as_mut_ptr().add(b * BATCH_ROWS), _mm256_mul_ps(dw, da));
                }
            }
            let mut acc = [_mm256_setzero_ps(); BATCH_ROWS];
            for b in 0..nb {
                let k = 2 * (t * nb + b);
                // SAFETY: k + 1 < a16's length (asserted above).
                let (a0, a1) = unsafe { (*s.a16.get_unchecked(k), *s.a16.get_unchecked(k + 1)) };
                for r in 0..BATCH_ROWS {
                    let i = b * BATCH_ROWS + r;
                    // SAFETY: 2i + 1 < w16's length and i < dd's (asserted above).
                    let (w0, w1, d) = unsafe {
                        (
                            *s.w16.get_unchecked(2 * i),
                            *s.w16.get_unchecked(2 * i + 1),
                            _mm256_broadcast_ss(dd.get_unchecked(i)),
                        )
                    };
                    let sum = _mm256_add_epi32(_mm256_madd_epi16(w0, a0), _mm256_madd_epi16(w1, a1));
                    acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum), d, acc[r]);
                }
            }
            let mut o = [0f32; BATCH_ROWS];
            // SAFETY: o is BATCH_ROWS (8) floats.
            unsafe { _mm256_storeu_ps(o.as_mut_ptr(), hsum8(acc)) };
            o
        }

        /// Q8_0 for a few tokens without AVX-VNNI: `maddubs` needs an unsigned side, which Q8_0 has only
        /// through |w| · sign(a, w), five vector operations per (row, token, block) with the `vpsignb`, all on
        /// the ports the multiplies use. Both sides widened to i16 once (the weights per pass, the tokens per
        /// call), two `vpmaddwd` and an integer add (which any vector port takes) give the same lanes. As
        /// `$name` otherwise: `out[t * stride + r]` = dot(row r of `w`, token t of `acts`).
        #[target_feature(enable = $features)]
        fn mb_q8_0_w16(
            w: &[u8],
            w_row: usize,
            acts: &[u8],
            a_row: usize,
            n_tok: usize,
            out: &mut [f32],
            stride: usize,
        ) {
            let (wb, ab) = (std::mem::size_of::<BlockQ8_0>(), std::mem::size_of::<BlockQ8_0>());
            let nb = a_row / ab;
            if w_row == 0 || n_tok == 0 || nb == 0 {
                return;
            }
            let rows = w.len() / w_row;
            assert!(w_row >= nb * wb && acts.len() >= n_tok * a_row);
            let tok = |t: usize| -> &[BlockQ8_0] { cs(&acts[t * a_row..][..nb * ab]) };
            let wr = |r: usize| -> &[BlockQ8_0] { cs(&w[r * w_row..][..nb * wb]) };
            let full = rows - rows % BATCH_ROWS;
            let mut s = BATCH.take();
            s.reserve(nb, n_tok);
            prep_q8_0_w16(tok, n_tok, nb, &mut s);
            let mut dd = std::mem::take(&mut s.dd);
            let pass_bytes = BATCH_ROWS * w_row;
            for c in 0..full / BATCH_ROWS {
                let r0 = c * BATCH_ROWS;
                let pf = Prefetch::for_pass(w, c, pass_bytes, full * w_row, nb.div_ceil(8));
                decode_q8_0_w16(std::array::from_fn(|i| wr(r0 + i)), &mut s, pf);
                for t in 0..n_tok {
                    let o = btile_q8_0_w16(&s, &mut dd, nb, t);
                    out[t * stride + r0..][..BATCH_ROWS].copy_from_slice(&o);
                }
            }
            s.dd = dd;
            BATCH.set(s);
            // the last rows through the row kernel (`mv_q8_0` is the offset form, for AVX-VNNI only)
            for t in 0..n_tok {
                let act = &acts[t * a_row..(t + 1) * a_row];
                for r in full..rows {
                    out[t * stride + r] = dot_q8_0(&w[r * w_row..(r + 1) * w_row], act);
                }
            }
        }

        /// The small-batch kernel for `ty`, if any (a token's bits as `matvec_kernel(ty)` gives them). Handed out
        /// only on a CPU with `$features`.
        pub(in crate::dot::x86) fn batch_kernel(ty: GgmlType) -> Option<TiledFn> {
            macro_rules! k {
                ($f:ident) => {
                    Some(|w: &[u8], wr: usize, a: &[u8], ar: usize, n: usize, out: &mut [f32], s: usize| {
                        // SAFETY: this table is only reached on a CPU with $features (see above).
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
                Q8_0 if $full_u8 => k!(mb_q8_0),
                Q8_0 => k!(mb_q8_0_w16),
                _ => None,
            }
        }
    };
}

pub(super) use x86_batch;

#[cfg(test)]
mod tests {
    use super::super::avx2;
    use crate::GgmlType;
    use crate::dot::{RowsFn, TiledFn};
    use crate::isa::Isa;
    use crate::quant::{activation_type, quantize_activation_with, quantize_row};

    fn data(n: usize, seed: u32, outlier: f32) -> Vec<f32> {
        crate::test_data::with_outliers(n, seed, outlier)
    }

    type Table = fn(GgmlType) -> Option<TiledFn>;
    type MvTable = fn(GgmlType) -> Option<RowsFn>;

    /// Every token of a batch of 1 to 9 gets the one-token kernel's bits (and the scalar reference's: these
    /// formats' reference sums in the x86 order), in full passes and in the tail rows, written at its stride
    /// and nowhere else; on plain AVX2 and on AVX-VNNI where the CPU has it.
    #[test]
    fn a_few_tokens_get_the_one_token_kernels_bits() {
        let mut variants: Vec<(&str, Table, MvTable, MvTable)> = Vec::new();
        if Isa::Avx2.supported() {
            variants.push((
                "avx2",
                avx2::plain::batch_kernel,
                avx2::plain::matvec_kernel,
                avx2::plain::kmatvec_kernel,
            ));
        }
        if Isa::Avx2.supported() && is_x86_feature_detected!("avxvnni") {
            variants.push((
                "avxvnni",
                avx2::vnni::batch_kernel,
                avx2::vnni::matvec_kernel,
                avx2::vnni::kmatvec_kernel,
            ));
        }
        use GgmlType::*;
        for (name, batch, matvec, kmatvec) in variants {
            for ty in [Q4_0, Q4_1, Q5_0, Q5_1, Q8_0] {
                let many = batch(ty).unwrap_or_else(|| panic!("{name} {ty:?}: no batch kernel"));
                // the decode kernel that runs this format at one token (Q8_0: the prefetched row kernel)
                let one = matvec(ty).or_else(|| kmatvec(ty)).unwrap();
                for (cols, rows) in [(32, 4), (64, 7), (288, 9), (576, 48), (640, 37), (1536, 10)] {
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
                            quantize_activation_with(Isa::Avx2, at, &x, a);
                        }
                        let stride = rows + 3;
                        let mut got = vec![f32::NAN; stride * n_tok];
                        many(&w, rb, &acts, ab, n_tok, &mut got, stride);
                        for t in 0..n_tok {
                            let a = &acts[t * ab..(t + 1) * ab];
                            let mut want = vec![0f32; rows];
                            one(&w, rb, a, &mut want);
                            for r in 0..rows {
                                let g = got[t * stride + r];
                                let at = format!(
                                    "{name} {ty:?} {cols}x{rows}, {n_tok} tokens: token {t} row {r}"
                                );
                                assert_eq!(
                                    g.to_bits(),
                                    want[r].to_bits(),
                                    "{at}: {g} vs {}",
                                    want[r]
                                );
                                let s = crate::dot::scalar::dot(ty, &w[r * rb..(r + 1) * rb], a);
                                assert_eq!(g.to_bits(), s.to_bits(), "{at}: {g} vs scalar {s}");
                            }
                            assert!(got[t * stride + rows..][..3].iter().all(|x| x.is_nan()));
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod ab {
    //! A/B timing on this CPU (ignored by default; timings, not a check): the one-token kernel, the tiled
    //! GEMM and this kernel on smollm2-135m's matrix shapes, one thread, interleaved, best of many calls:
    //! `cargo test --release -p cria-kernels --lib ymm_batch::ab -- --ignored --nocapture`.
    use super::super::avx2;
    use crate::GgmlType;
    use crate::dot::{RowsFn, TiledFn};
    use crate::isa::Isa;
    use crate::quant::{activation_type, quantize_activation_with, quantize_row};
    use std::time::Instant;

    type Variant = (&'static str, RowsFn, TiledFn, TiledFn);

    #[test]
    #[ignore]
    fn small_batch_against_tiled_ab() {
        let mut variants: Vec<fn(GgmlType) -> Option<Variant>> = Vec::new();
        if Isa::Avx2.supported() {
            variants.push(|ty| {
                Some((
                    "avx2",
                    avx2::plain::matvec_kernel(ty).or_else(|| avx2::plain::kmatvec_kernel(ty))?,
                    avx2::plain::tiled_kernel(ty)?,
                    avx2::plain::batch_kernel(ty)?,
                ))
            });
        }
        if Isa::Avx2.supported() && is_x86_feature_detected!("avxvnni") {
            variants.push(|ty| {
                Some((
                    "avxvnni",
                    avx2::vnni::matvec_kernel(ty).or_else(|| avx2::vnni::kmatvec_kernel(ty))?,
                    avx2::vnni::tiled_kernel(ty)?,
                    avx2::vnni::batch_kernel(ty)?,
                ))
            });
        }
        use GgmlType::*;
        let shapes = [
            ("attn_q", Q4_1, 576, 576),
            ("attn_q as Q4_0", Q4_0, 576, 576),
            ("attn_q as Q5_0", Q5_0, 576, 576),
            ("attn_q as Q5_1", Q5_1, 576, 576),
            ("ffn_up", Q4_1, 1536, 576),
            ("ffn_down", Q4_1, 576, 1536),
            ("output 4096 rows", Q8_0, 4096, 576),
        ];
        println!(
            "| isa | matrix | n=1 µs | tiled / this kernel at n=2 | 4 | 8 | 16 | 32 | 64 | 128 | 256 \
             (x the n=1 call) |"
        );
        for make in &variants {
            for (name, ty, rows, cols) in shapes {
                let Some((isa, one, tiled, batch)) = make(ty) else {
                    continue;
                };
                let rb = ty.row_bytes(cols).unwrap();
                let mut w = vec![0u8; rb * rows];
                for (r, row) in w.chunks_exact_mut(rb).enumerate() {
                    let x: Vec<f32> = (0..cols)
                        .map(|i| ((i * 7 + r * 13) as f32 * 0.37).sin() * 0.05)
                        .collect();
                    quantize_row(ty, &x, row).unwrap();
                }
                let at = activation_type(ty);
                let ab = at.row_bytes(cols).unwrap();
                let mut acts = vec![0u8; ab * 256];
                for (t, a) in acts.chunks_exact_mut(ab).enumerate() {
                    let x: Vec<f32> = (0..cols)
                        .map(|i| ((i + 3 * t) as f32 * 0.11).cos())
                        .collect();
                    quantize_activation_with(Isa::Avx2, at, &x, a);
                }
                let mut out = vec![0f32; rows * 256];
                let best = |f: &mut dyn FnMut()| {
                    let mut b = f64::MAX;
                    for _ in 0..30 {
                        let t = Instant::now();
                        f();
                        b = b.min(t.elapsed().as_secs_f64());
                    }
                    b
                };
                let t1 = best(&mut || one(&w, rb, &acts[..ab], &mut out[..rows]));
                let mut cells = Vec::new();
                for n in [2, 4, 8, 16, 32, 64, 128, 256] {
                    let tt = best(&mut || tiled(&w, rb, &acts, ab, n, &mut out, rows));
                    let tb = best(&mut || batch(&w, rb, &acts, ab, n, &mut out, rows));
                    cells.push(format!("{:.2} / {:.2}", tt / t1, tb / t1));
                }
                println!(
                    "| {isa} | {name} {ty:?} | {:.1} | {} |",
                    t1 * 1e6,
                    cells.join(" | ")
                );
                // the same from memory: copies of the matrix cycled through 128 MiB, as a step reads a model
                // larger than the caches
                let copies = (128 << 20) / w.len();
                let big: Vec<u8> = w.iter().copied().cycle().take(w.len() * copies).collect();
                let cold = |f: &mut dyn FnMut(&[u8])| {
                    let mut b = f64::MAX;
                    for _ in 0..5 {
                        let t = Instant::now();
                        big.chunks_exact(w.len()).for_each(&mut *f);
                        b = b.min(t.elapsed().as_secs_f64() / copies as f64);
                    }
                    b
                };
                let c1 = cold(&mut |m| one(m, rb, &acts[..ab], &mut out[..rows]));
                let cells: Vec<String> = [2, 4, 8]
                    .iter()
                    .map(|&n| {
                        let tt = cold(&mut |m| tiled(m, rb, &acts, ab, n, &mut out, rows));
                        let tb = cold(&mut |m| batch(m, rb, &acts, ab, n, &mut out, rows));
                        format!("{:.2} / {:.2}", tt / c1, tb / c1)
                    })
                    .collect();
                println!(
                    "| {isa} | {name}, from memory | {:.1} | {} |",
                    c1 * 1e6,
                    cells.join(" | ")
                );
            }
        }
    }
}
