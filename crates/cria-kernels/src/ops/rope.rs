//! Rotary position embedding, as ggml's `rope` computes it (without YaRN).

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
    let mut cache = [(0.0f32, 0.0f32); 256];
    let mut heap = Vec::new();
    let cs: &mut [(f32, f32)] = if p.n_rot / 2 <= cache.len() {
        &mut cache[..p.n_rot / 2]
    } else {
        heap.resize(p.n_rot / 2, (0.0, 0.0));
        &mut heap
    };
    cos_sin(pos, p, cs);
    for head in x.chunks_exact_mut(head_dim) {
        rotate_head(head, cs, p.style);
    }
}

/// `(cos θ_i, sin θ_i)` for each pair, computed like ggml's `rope_cache_init`: the angle multiplied by
/// `freq_base^(-2/n_rot)` step by step in f32, so results match llama.cpp to the last bits.
fn cos_sin(pos: usize, p: &RopeParams, out: &mut [(f32, f32)]) {
    let theta_scale = p.freq_base.powf(-2.0 / p.n_rot as f32);
    let mut theta = pos as f32;
    for (i, cs) in out.iter_mut().enumerate() {
        let ff = p.freq_factors.as_ref().map_or(1.0, |f| f[i]);
        let t = p.freq_scale * (theta / ff);
        *cs = (t.cos(), t.sin());
        theta *= theta_scale;
    }
}

fn rotate_head(head: &mut [f32], cs: &[(f32, f32)], style: RopeStyle) {
    let half = cs.len();
    for (i, &(c, s)) in cs.iter().enumerate() {
        let (a, b) = match style {
            RopeStyle::Normal => (2 * i, 2 * i + 1),
            RopeStyle::Neox => (i, i + half),
        };
        let (x0, x1) = (head[a], head[b]);
        head[a] = x0 * c - x1 * s;
        head[b] = x0 * s + x1 * c;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(v: &[f32]) -> f32 {
        v.iter().map(|x| x * x).sum::<f32>().sqrt()
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
