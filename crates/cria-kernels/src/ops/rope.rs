//! Rotary position embedding, as ggml's `rope` computes it (with its YaRN ramp and magnitude scaling).

/// Which dimensions form a rotated pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RopeStyle {
    /// Adjacent pairs `(x[2i], x[2i+1])` (LLaMA as converted to GGUF).
    Normal,
    /// Pairs split across halves `(x[i], x[i + n_rot/2])` (GPT-NeoX, Qwen2, Gemma).
    Neox,
}

/// How positions become angles.
#[derive(Clone, Debug, PartialEq)]
pub struct RopeParams {
    pub style: RopeStyle,
    /// Rotated dimensions per head (the first `n_rot`; the rest pass through). Even, `<= head_dim`.
    pub n_rot: usize,
    /// `theta_i = pos * freq_base^(-2i/n_rot)`.
    pub freq_base: f32,
    /// Linear position scaling: angles use `pos * freq_scale` (1.0 for none).
    pub freq_scale: f32,
    /// Per-pair divisors (LLaMA-3 scaling, GGUF `rope_freqs.weight`): `theta_i / factor_i`; `n_rot/2` values.
    pub freq_factors: Option<Vec<f32>>,
    /// YaRN's blend of interpolated and extrapolated angles; `None` for plain (linear) scaling.
    pub yarn: Option<Yarn>,
    /// Multiplies cos and sin (ggml's `attn_factor`: LongRoPE's and YaRN's magnitude scaling); 1.0 for none.
    pub attn_factor: f32,
}

/// YaRN's parameters as ggml's `rope_yarn` takes them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Yarn {
    /// How much of the extrapolated angle the ramp mixes in (1.0 for YaRN).
    pub ext_factor: f32,
    /// The pair indices where the ramp starts and ends ([`yarn_corr_dims`]).
    pub corr_dims: [f32; 2],
}

/// ggml's `ggml_rope_yarn_corr_dims`: the first and last pair index between which YaRN blends angles, for a
/// model trained on `n_ctx_orig` positions (`beta_fast`, `beta_slow`: rotations per context, 32 and 1).
pub fn yarn_corr_dims(
    n_rot: usize,
    n_ctx_orig: usize,
    freq_base: f32,
    beta_fast: f32,
    beta_slow: f32,
) -> [f32; 2] {
    let corr_dim = |n_rotations: f32| {
        n_rot as f32 * (n_ctx_orig as f32 / (n_rotations * 2.0 * std::f32::consts::PI)).ln()
            / (2.0 * freq_base.ln())
    };
    let start = corr_dim(beta_fast).floor();
    let end = corr_dim(beta_slow).ceil();
    [start.max(0.0), end.min(n_rot as f32 - 1.0)]
}

impl RopeParams {
    /// Plain RoPE: no scaling, no factors.
    pub fn new(style: RopeStyle, n_rot: usize, freq_base: f32) -> Self {
        Self {
            style,
            n_rot,
            freq_base,
            freq_scale: 1.0,
            freq_factors: None,
            yarn: None,
            attn_factor: 1.0,
        }
    }
}

/// Rotates every head of one token at position `pos`. `x` holds `n_heads` heads of `head_dim` back to back.
///
/// # Panics
/// If `x.len() != n_heads * head_dim`, `n_rot` is odd or above `head_dim`, or `freq_factors` is shorter than `n_rot/2`.
pub fn rope_inplace(x: &mut [f32], n_heads: usize, head_dim: usize, pos: usize, p: &RopeParams) {
    assert_eq!(x.len(), n_heads * head_dim, "rope: x length");
    assert!(
        p.n_rot.is_multiple_of(2) && p.n_rot <= head_dim,
        "rope: n_rot {} vs head_dim {head_dim}",
        p.n_rot
    );
    if let Some(ff) = &p.freq_factors {
        assert!(
            ff.len() >= p.n_rot / 2,
            "rope: {} freq factors for n_rot {}",
            ff.len(),
            p.n_rot
        );
    }
    with_cos_sin(pos, p, |cs| rotate_heads(x, head_dim, cs, p.style));
}

/// [`rotate_head`] on each head of `x`. Where the CPU has FMA, in a body compiled for it: `mul_add` is then one
/// instruction, not a call into the software routine per element (1.6% of an 8-sequence serving step, all on
/// the engine thread). The same fused operations either way, so the same bits.
fn rotate_heads(x: &mut [f32], head_dim: usize, cs: &[(f32, f32)], style: RopeStyle) {
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has FMA (checked just above).
        unsafe { rotate_heads_fma(x, head_dim, cs, style) };
        return;
    }
    for head in x.chunks_exact_mut(head_dim) {
        rotate_head(head, cs, style);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "fma")]
fn rotate_heads_fma(x: &mut [f32], head_dim: usize, cs: &[(f32, f32)], style: RopeStyle) {
    for head in x.chunks_exact_mut(head_dim) {
        rotate_head(head, cs, style);
    }
}

/// Positions whose angles a thread keeps per parameter set: a direct-mapped cache (`pos % COS_SIN_SLOTS`), so a
/// prefill chunk's positions are computed once per thread and reused by the query and key heads of every layer
/// that shares the parameters.
const COS_SIN_SLOTS: usize = 512;
/// Parameter sets a thread keeps angles for (Gemma 3 has two: local and global layers).
const COS_SIN_TABLES: usize = 4;

/// One parameter set's cached `(cos θ_i, sin θ_i)` rows, as [`cos_sin`] computes them.
struct CosSinTable {
    /// The parameters the angles depend on (everything but the style), floats by their bits.
    key: TableKey,
    /// Position held by each slot, `usize::MAX` for none.
    pos: Vec<usize>,
    /// `COS_SIN_SLOTS` rows of `n_rot / 2` pairs.
    cs: Vec<(f32, f32)>,
}

/// `(n_rot, freq_base, freq_scale, attn_factor, yarn [ext_factor, corr_dims], freq_factors)`, floats as bits.
type TableKey = (usize, u32, u32, u32, Option<[u32; 3]>, Option<Vec<u32>>);

fn yarn_key(y: &Option<Yarn>) -> Option<[u32; 3]> {
    y.map(|y| {
        [
            y.ext_factor.to_bits(),
            y.corr_dims[0].to_bits(),
            y.corr_dims[1].to_bits(),
        ]
    })
}

fn table_key(p: &RopeParams) -> TableKey {
    let factors = p
        .freq_factors
        .as_ref()
        .map(|f| f[..p.n_rot / 2].iter().map(|x| x.to_bits()).collect());
    (
        p.n_rot,
        p.freq_base.to_bits(),
        p.freq_scale.to_bits(),
        p.attn_factor.to_bits(),
        yarn_key(&p.yarn),
        factors,
    )
}

impl CosSinTable {
    /// Whether the table holds `p`'s angles ([`table_key`] without building it).
    fn holds(&self, p: &RopeParams) -> bool {
        let (n_rot, base, scale, attn_factor, yarn, factors) = &self.key;
        let same_factors = match (factors, &p.freq_factors) {
            (None, None) => true,
            (Some(a), Some(b)) => a.iter().zip(b).all(|(x, y)| *x == y.to_bits()),
            _ => false,
        };
        *n_rot == p.n_rot
            && *base == p.freq_base.to_bits()
            && *scale == p.freq_scale.to_bits()
            && *attn_factor == p.attn_factor.to_bits()
            && *yarn == yarn_key(&p.yarn)
            && same_factors
    }
}

thread_local! {
    static COS_SIN: std::cell::RefCell<Vec<CosSinTable>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// `f` of the angles for `pos` under `p`: from this thread's cache, computed by [`cos_sin`] on a miss (so the
/// values are the same either way).
fn with_cos_sin<R>(pos: usize, p: &RopeParams, f: impl FnOnce(&[(f32, f32)]) -> R) -> R {
    let half = p.n_rot / 2;
    COS_SIN.with_borrow_mut(|tables| {
        let i = match tables.iter().position(|t| t.holds(p)) {
            Some(i) => i,
            None => {
                if tables.len() == COS_SIN_TABLES {
                    tables.remove(0);
                }
                tables.push(CosSinTable {
                    key: table_key(p),
                    pos: vec![usize::MAX; COS_SIN_SLOTS],
                    cs: vec![(0.0, 0.0); COS_SIN_SLOTS * half],
                });
                tables.len() - 1
            }
        };
        let t = &mut tables[i];
        let slot = pos % COS_SIN_SLOTS;
        let cs = &mut t.cs[slot * half..(slot + 1) * half];
        if t.pos[slot] != pos {
            cos_sin(pos, p, cs);
            t.pos[slot] = pos;
        }
        f(cs)
    })
}

/// The `(cos θ_i, sin θ_i)` of each rotated pair at `pos` under `p` (`n_rot / 2` of them), exactly as
/// [`rope_inplace`] uses them: for backends that rotate elsewhere (a GPU) with the CPU's angles.
///
/// # Panics
/// If `out` is not `n_rot / 2` long or `freq_factors` is shorter.
pub fn rope_cos_sin(pos: usize, p: &RopeParams, out: &mut [(f32, f32)]) {
    assert_eq!(out.len(), p.n_rot / 2, "rope_cos_sin: out length");
    cos_sin(pos, p, out);
}

/// `(cos θ_i, sin θ_i)` for each pair, computed like ggml's `rope_cache_init`: the angle multiplied by
/// `freq_base^(-2/n_rot)` step by step in f32, so results match llama.cpp to the last bits.
fn cos_sin(pos: usize, p: &RopeParams, out: &mut [(f32, f32)]) {
    let theta_scale = p.freq_base.powf(-2.0 / p.n_rot as f32);
    let mut theta = pos as f32;
    for (i, cs) in out.iter_mut().enumerate() {
        let ff = p.freq_factors.as_ref().map_or(1.0, |f| f[i]);
        *cs = rope_yarn(theta / ff, i, p);
        theta *= theta_scale;
    }
}

/// ggml's `rope_yarn` for pair `i`: the interpolated angle `freq_scale · θ`, blended with the extrapolated `θ`
/// by YaRN's ramp, and cos/sin scaled by `attn_factor` (times YaRN's `1 + 0.1 ln(1/freq_scale)`).
fn rope_yarn(theta_extrap: f32, i: usize, p: &RopeParams) -> (f32, f32) {
    let theta_interp = p.freq_scale * theta_extrap;
    let mut theta = theta_interp;
    let mut mscale = p.attn_factor;
    if let Some(y) = p.yarn.filter(|y| y.ext_factor != 0.0) {
        let [low, high] = y.corr_dims;
        let ramp = 1.0 - ((i as f32 - low) / (high - low).max(0.001)).clamp(0.0, 1.0);
        let mix = ramp * y.ext_factor;
        theta = theta_interp * (1.0 - mix) + theta_extrap * mix;
        mscale *= 1.0 + 0.1 * (1.0 / p.freq_scale).ln();
    }
    (theta.cos() * mscale, theta.sin() * mscale)
}

/// ggml's `rotate_pairs` as GCC compiles it with FMA (llama.cpp's x86 builds contract `a*b - c*d` into
/// `fma(a, b, -(c*d))`): so the rotated Q and K are llama.cpp's bits, not an ulp off in a fifth of them.
#[inline(always)]
fn rotate_head(head: &mut [f32], cs: &[(f32, f32)], style: RopeStyle) {
    let half = cs.len();
    for (i, &(c, s)) in cs.iter().enumerate() {
        let (a, b) = match style {
            RopeStyle::Normal => (2 * i, 2 * i + 1),
            RopeStyle::Neox => (i, i + half),
        };
        let (x0, x1) = (head[a], head[b]);
        head[a] = x0.mul_add(c, -(x1 * s));
        head[b] = x0.mul_add(s, x1 * c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(v: &[f32]) -> f32 {
        v.iter().map(|x| x * x).sum::<f32>().sqrt()
    }

    /// Regression (issue 13): each rotated value is one fused multiply-add over the other product, as
    /// llama.cpp's FMA builds compute it, which differs from two rounded products for some inputs.
    #[test]
    fn rope_rotation_is_fused_as_in_llama_cpp() {
        let p = RopeParams::new(RopeStyle::Neox, 4, 10000.0);
        let mut differs = false;
        for pos in 1..64 {
            let orig: Vec<f32> = (0..4)
                .map(|i| ((pos * 7 + i) as f32 * 0.731).sin() * 3.3)
                .collect();
            let mut x = orig.clone();
            rope_inplace(&mut x, 1, 4, pos, &p);
            let mut cs = vec![(0.0, 0.0); 2];
            cos_sin(pos, &p, &mut cs);
            for (i, &(c, s)) in cs.iter().enumerate() {
                let (x0, x1) = (orig[i], orig[i + 2]);
                // fma(x0, c, -(x1*s)) rounds once after the exact x0*c: the same in f64, then rounded
                // (x0*c is exact in f64; the one rounding of x1*s is f32's).
                let a = (f64::from(x0) * f64::from(c) - f64::from(x1 * s)) as f32;
                let b = (f64::from(x0) * f64::from(s) + f64::from(x1 * c)) as f32;
                assert_eq!(x[i].to_bits(), a.to_bits(), "pos {pos} pair {i}");
                assert_eq!(x[i + 2].to_bits(), b.to_bits(), "pos {pos} pair {i}");
                differs |= x0 * c - x1 * s != a;
            }
        }
        assert!(
            differs,
            "the inputs must tell fused from unfused rotation apart"
        );
    }

    /// The heads loop compiled for FMA (`rotate_heads`) gives each element the one-rounding result, as the
    /// portable body does: both styles, several heads of 64, rotated and passed-through elements.
    #[test]
    fn rotate_heads_is_fused_in_every_head_and_style() {
        let (heads, hd) = (3, 64);
        for style in [RopeStyle::Normal, RopeStyle::Neox] {
            let p = RopeParams::new(style, 48, 10000.0);
            let mut cs = vec![(0.0, 0.0); 24];
            cos_sin(37, &p, &mut cs);
            let orig: Vec<f32> = (0..heads * hd)
                .map(|i| (i as f32 * 0.377).sin() * 2.9)
                .collect();
            let mut x = orig.clone();
            rotate_heads(&mut x, hd, &cs, style);
            for (h, head) in orig.chunks_exact(hd).enumerate() {
                let mut want = head.to_vec();
                for (i, &(c, s)) in cs.iter().enumerate() {
                    let (a, b) = match style {
                        RopeStyle::Normal => (2 * i, 2 * i + 1),
                        RopeStyle::Neox => (i, i + 24),
                    };
                    let (x0, x1) = (head[a], head[b]);
                    want[a] = (f64::from(x0) * f64::from(c) - f64::from(x1 * s)) as f32;
                    want[b] = (f64::from(x0) * f64::from(s) + f64::from(x1 * c)) as f32;
                }
                let got = &x[h * hd..(h + 1) * hd];
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(got), bits(&want), "{style:?} head {h}");
            }
        }
    }

    #[test]
    fn rope_at_position_zero_is_identity() {
        let orig: Vec<f32> = (0..2 * 8).map(|i| i as f32 - 3.0).collect();
        for style in [RopeStyle::Normal, RopeStyle::Neox] {
            let mut x = orig.clone();
            rope_inplace(&mut x, 2, 8, 0, &RopeParams::new(style, 8, 10000.0));
            assert_eq!(x, orig);
        }
    }

    #[test]
    fn rope_normal_rotates_adjacent_pairs_by_pos_times_theta() {
        // head_dim 4, n_rot 4: pair 0 angle = pos, pair 1 angle = pos * base^(-1/2).
        let mut x = vec![1.0, 0.0, 0.0, 1.0];
        let p = RopeParams::new(RopeStyle::Normal, 4, 100.0);
        rope_inplace(&mut x, 1, 4, 3, &p);
        let t1 = 3.0f32 * 0.1;
        let want = [3.0f32.cos(), 3.0f32.sin(), -t1.sin(), t1.cos()];
        for (a, b) in x.iter().zip(want) {
            assert!((a - b).abs() < 1e-6, "{x:?} vs {want:?}");
        }
    }

    #[test]
    fn rope_neox_pairs_halves_and_keeps_tail() {
        // head_dim 6, n_rot 4: pairs (0,2), (1,3); dims 4 and 5 untouched.
        let mut x = vec![1.0, 0.0, 0.0, 1.0, 7.0, 8.0];
        let p = RopeParams::new(RopeStyle::Neox, 4, 100.0);
        rope_inplace(&mut x, 1, 6, 2, &p);
        let t1 = 2.0f32 * 0.1;
        let want = [2.0f32.cos(), -t1.sin(), 2.0f32.sin(), t1.cos(), 7.0, 8.0];
        for (a, b) in x.iter().zip(want) {
            assert!((a - b).abs() < 1e-6, "{x:?} vs {want:?}");
        }
    }

    #[test]
    fn rope_linear_scaling_and_freq_factors_divide_the_angle() {
        let orig: Vec<f32> = (0..16).map(|i| (i as f32).sin()).collect();
        let base = RopeParams::new(RopeStyle::Normal, 16, 10000.0);
        // pos 10 with freq_scale 0.5 == pos 5 unscaled.
        let mut a = orig.clone();
        rope_inplace(
            &mut a,
            1,
            16,
            10,
            &RopeParams {
                freq_scale: 0.5,
                ..base.clone()
            },
        );
        let mut b = orig.clone();
        rope_inplace(&mut b, 1, 16, 5, &base);
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() < 1e-5);
        }
        // All factors 2 == freq_scale 0.5.
        let mut c = orig.clone();
        rope_inplace(
            &mut c,
            1,
            16,
            10,
            &RopeParams {
                freq_factors: Some(vec![2.0; 8]),
                ..base
            },
        );
        for (x, y) in c.iter().zip(&b) {
            assert!((x - y).abs() < 1e-5);
        }
        assert!(
            (norm(&c) - norm(&orig)).abs() < 1e-5,
            "rotation keeps the norm"
        );
    }

    /// The cached angles give the same bits as computing them afresh, across positions that share a slot,
    /// parameter sets that take turns, and more sets than the cache keeps.
    #[test]
    fn cached_angles_equal_fresh_ones_bit_for_bit() {
        let orig: Vec<f32> = (0..3 * 12).map(|i| (i as f32 * 0.3).sin() * 3.0).collect();
        let params: Vec<RopeParams> = (0..6)
            .map(|i| RopeParams {
                freq_scale: [1.0, 0.25][i % 2],
                freq_factors: (i % 3 == 2).then(|| vec![1.5, 2.0, 3.0, 4.0, 0.5]),
                ..RopeParams::new(
                    [RopeStyle::Neox, RopeStyle::Normal][i % 2],
                    10,
                    [10000.0, 1e6, 500.0][i % 3],
                )
            })
            .collect();
        for round in 0..3 {
            for pos in [0, 7, 7 + COS_SIN_SLOTS, 7, 3 * COS_SIN_SLOTS + 1, 100_000] {
                for p in &params {
                    let mut got = orig.clone();
                    rope_inplace(&mut got, 3, 12, pos, p);
                    let mut cs = vec![(0.0, 0.0); p.n_rot / 2];
                    cos_sin(pos, p, &mut cs);
                    let mut want = orig.clone();
                    for head in want.chunks_exact_mut(12) {
                        rotate_head(head, &cs, p.style);
                    }
                    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&got), bits(&want), "round {round} pos {pos} {p:?}");
                }
            }
        }
    }

    /// YaRN as its paper and ggml define it, in f64: pair i's angle blends pos·θ_i·s (interpolated) with
    /// pos·θ_i (extrapolated) by ramp(i) = 1 - clamp((i - low) / (high - low)), and cos/sin are scaled by
    /// attn_factor · (1 + 0.1 ln(1/s)).
    #[test]
    fn yarn_blends_interpolated_and_extrapolated_angles_by_the_ramp() {
        let (n_rot, base, scale, n_ctx_orig, pos) = (32usize, 10_000f32, 0.25f32, 64usize, 37usize);
        let corr = yarn_corr_dims(n_rot, n_ctx_orig, base, 32.0, 1.0);
        // c(b) = n_rot ln(n_ctx_orig / (2π b)) / (2 ln base): c(32) = -1.99 -> 0; c(1) = 4.03 -> 5.
        assert_eq!(corr, [0.0, 5.0]);
        let p = RopeParams {
            freq_scale: scale,
            yarn: Some(Yarn {
                ext_factor: 1.0,
                corr_dims: corr,
            }),
            attn_factor: 1.5,
            ..RopeParams::new(RopeStyle::Neox, n_rot, base)
        };
        let mut cs = vec![(0.0, 0.0); n_rot / 2];
        cos_sin(pos, &p, &mut cs);
        let mscale = 1.5 * (1.0 + 0.1 * (1.0 / f64::from(scale)).ln());
        for (i, &(c, s)) in cs.iter().enumerate() {
            let theta = pos as f64 * f64::from(base).powf(-2.0 * i as f64 / n_rot as f64);
            let ramp = 1.0 - (i as f64 / 5.0).clamp(0.0, 1.0);
            let angle = theta * f64::from(scale) * (1.0 - ramp) + theta * ramp;
            let (wc, ws) = (angle.cos() * mscale, angle.sin() * mscale);
            assert!((f64::from(c) - wc).abs() < 2e-4, "cos {i}: {c} vs {wc}");
            assert!((f64::from(s) - ws).abs() < 2e-4, "sin {i}: {s} vs {ws}");
        }
    }

    #[test]
    fn attn_factor_alone_scales_cos_and_sin() {
        let plain = RopeParams::new(RopeStyle::Normal, 8, 10_000.0);
        let scaled = RopeParams {
            attn_factor: 2.0,
            ..plain.clone()
        };
        let (mut a, mut b) = (vec![(0.0, 0.0); 4], vec![(0.0, 0.0); 4]);
        cos_sin(9, &plain, &mut a);
        cos_sin(9, &scaled, &mut b);
        for (x, y) in a.iter().zip(&b) {
            assert_eq!((x.0 * 2.0, x.1 * 2.0), *y);
        }
    }

    #[test]
    fn rope_relative_property_dot_depends_on_distance_only() {
        let q: Vec<f32> = (0..8).map(|i| (i as f32 * 0.7).cos()).collect();
        let k: Vec<f32> = (0..8).map(|i| (i as f32 * 1.3).sin()).collect();
        let p = RopeParams::new(RopeStyle::Neox, 8, 10000.0);
        let dot_at = |pq: usize, pk: usize| {
            let (mut a, mut b) = (q.clone(), k.clone());
            rope_inplace(&mut a, 1, 8, pq, &p);
            rope_inplace(&mut b, 1, 8, pk, &p);
            a.iter().zip(&b).map(|(x, y)| x * y).sum::<f32>()
        };
        assert!((dot_at(5, 2) - dot_at(13, 10)).abs() < 1e-4);
    }
}
