//! Causal attention of one query token against a sequence's KV cache, stored in f16.
//!
//! Cache layout: token-major, `[n_kv_tokens][n_kv_head * head_dim]` of `half::f16`, the same for K and V
//! (what llama.cpp keeps by default: f16 halves the cache's memory traffic at no measurable accuracy cost).
//! Scores and the weighted sum of V are accumulated in f32.

use std::ops::Range;

use half::f16;

use super::simd;
use super::softmax::softmax_inplace;

/// Shape and scaling of one attention call.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AttentionParams {
    /// Query heads.
    pub n_head: usize,
    /// KV heads; `n_head` must be a multiple (grouped-query: query head `h` reads KV head `h / (n_head / n_kv_head)`).
    pub n_kv_head: usize,
    pub head_dim: usize,
    /// Multiplies every q·k (usually `1/sqrt(head_dim)`).
    pub scale: f32,
    /// Logit soft-cap (Gemma 2): scores become `cap * tanh(score / cap)` after `scale`. `None` for none.
    pub softcap: Option<f32>,
}

/// Attention for one query token, as the contract states it (no soft-cap); see [`attention_ext`].
///
/// # Panics
/// See [`attention_ext`].
#[allow(clippy::too_many_arguments)] // The agreed signature between kernels and model.
pub fn attention(
    q: &[f32],
    k_cache: &[f16],
    v_cache: &[f16],
    n_kv_tokens: usize,
    window_start: usize,
    n_head: usize,
    n_kv_head: usize,
    head_dim: usize,
    scale: f32,
    out: &mut [f32],
    scratch: &mut Vec<f32>,
) {
    let p = AttentionParams {
        n_head,
        n_kv_head,
        head_dim,
        scale,
        softcap: None,
    };
    attention_ext(
        q,
        k_cache,
        v_cache,
        window_start..n_kv_tokens,
        &p,
        out,
        scratch,
    );
}

/// `out[h] = Σ_t softmax_t(scale · q[h]·k[t]) · v[t]` over the cache positions `t` in `window` (causal:
/// `window.end` is the number of cached tokens the query may see; `window.start` the sliding-window start),
/// for each query head `h`. `q` and `out` are `n_head * head_dim`; the caches hold at least `window.end` rows
/// of `n_kv_head * head_dim` (more is fine: a preallocated cache). An empty window gives zeros.
/// `scratch` holds the scores and is reused across calls.
///
/// # Panics
/// If a slice is too short or `n_head` is not a multiple of `n_kv_head`.
pub fn attention_ext(
    q: &[f32],
    k_cache: &[f16],
    v_cache: &[f16],
    window: Range<usize>,
    p: &AttentionParams,
    out: &mut [f32],
    scratch: &mut Vec<f32>,
) {
    let cache_len = k_cache.len().min(v_cache.len());
    check_shapes(p, q.len(), out.len(), cache_len, window.end);
    out.fill(0.0);
    if window.is_empty() {
        return;
    }
    let n_win = window.len();
    scratch.clear();
    scratch.resize(p.n_head * n_win, 0.0);
    let rows = window.start * kv_dim(p)..window.end * kv_dim(p);
    scores(q, &k_cache[rows.clone()], p, scratch);
    for row in scratch.chunks_exact_mut(n_win) {
        softmax_inplace(row);
    }
    weighted_values(scratch, &v_cache[rows], p, out);
}

fn kv_dim(p: &AttentionParams) -> usize {
    p.n_kv_head * p.head_dim
}

fn check_shapes(
    p: &AttentionParams,
    q_len: usize,
    out_len: usize,
    cache_len: usize,
    n_kv_tokens: usize,
) {
    assert!(
        p.n_kv_head > 0 && p.n_head.is_multiple_of(p.n_kv_head),
        "attention: {} heads, {} kv heads",
        p.n_head,
        p.n_kv_head
    );
    assert_eq!(q_len, p.n_head * p.head_dim, "attention: q length");
    assert_eq!(out_len, p.n_head * p.head_dim, "attention: out length");
    assert!(
        cache_len >= n_kv_tokens * kv_dim(p),
        "attention: cache shorter than {n_kv_tokens} tokens"
    );
}

/// `scores[h][t] = softcap(scale · q[h]·k[t])`; `k` holds only the window.
fn scores(q: &[f32], k: &[f16], p: &AttentionParams, scores: &mut [f32]) {
    let kern = simd::kernels();
    let (hd, group) = (p.head_dim, p.n_head / p.n_kv_head);
    let n_win = scores.len() / p.n_head;
    for (h, row) in scores.chunks_exact_mut(n_win).enumerate() {
        let qh = &q[h * hd..(h + 1) * hd];
        let off = (h / group) * hd;
        for (t, s) in row.iter_mut().enumerate() {
            let kt = &k[t * kv_dim(p) + off..][..hd];
            *s = softcap(p.scale * kern.dot_f16(qh, kt), p.softcap);
        }
    }
}

#[inline]
fn softcap(s: f32, cap: Option<f32>) -> f32 {
    match cap {
        Some(c) => c * (s / c).tanh(),
        None => s,
    }
}

/// `out[h] = Σ_t probs[h][t] · v[t]` for the KV head of `h`.
fn weighted_values(probs: &[f32], v: &[f16], p: &AttentionParams, out: &mut [f32]) {
    let kern = simd::kernels();
    let (hd, group) = (p.head_dim, p.n_head / p.n_kv_head);
    let n_win = probs.len() / p.n_head;
    for (h, oh) in out.chunks_exact_mut(hd).enumerate() {
        let off = (h / group) * hd;
        for (t, &pt) in probs[h * n_win..(h + 1) * n_win].iter().enumerate() {
            kern.axpy_f16(oh, pt, &v[t * kv_dim(p) + off..][..hd]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn to_f16(v: &[f32]) -> Vec<f16> {
        v.iter().map(|&x| f16::from_f32(x)).collect()
    }

    #[test]
    fn single_token_returns_its_value() {
        let (q, k, v) = (
            vec![0.3f32; 4],
            to_f16(&[1.0; 4]),
            to_f16(&[1.0, 2.0, 3.0, 4.0]),
        );
        let mut out = vec![0.0; 4];
        attention(&q, &k, &v, 1, 0, 1, 1, 4, 0.5, &mut out, &mut Vec::new());
        assert_eq!(out, [1.0, 2.0, 3.0, 4.0]);
    }

    #[test]
    fn equal_keys_average_values_and_window_cuts() {
        // 3 tokens, identical keys: output = mean of the values in the window.
        let k = to_f16(&[1.0; 6]);
        let v = to_f16(&[0.0, 3.0, 6.0, 9.0, 12.0, 15.0]);
        let mut out = vec![0.0; 2];
        attention(
            &[1.0, 1.0],
            &k,
            &v,
            3,
            0,
            1,
            1,
            2,
            1.0,
            &mut out,
            &mut Vec::new(),
        );
        assert!(
            (out[0] - 6.0).abs() < 1e-5 && (out[1] - 9.0).abs() < 1e-5,
            "{out:?}"
        );
        attention(
            &[1.0, 1.0],
            &k,
            &v,
            3,
            1,
            1,
            1,
            2,
            1.0,
            &mut out,
            &mut Vec::new(),
        );
        assert!(
            (out[0] - 9.0).abs() < 1e-5 && (out[1] - 12.0).abs() < 1e-5,
            "{out:?}"
        );
        attention(
            &[1.0, 1.0],
            &k,
            &v,
            3,
            3,
            1,
            1,
            2,
            1.0,
            &mut out,
            &mut Vec::new(),
        );
        assert_eq!(out, [0.0, 0.0]);
    }

    #[test]
    fn grouped_query_heads_share_kv_heads() {
        // 4 query heads, 2 kv heads, head_dim 1, 1 token: heads 0,1 read kv head 0, heads 2,3 kv head 1.
        let (k, v) = (to_f16(&[1.0, 1.0]), to_f16(&[5.0, -7.0]));
        let mut out = vec![0.0; 4];
        attention(
            &[1.0; 4],
            &k,
            &v,
            1,
            0,
            4,
            2,
            1,
            1.0,
            &mut out,
            &mut Vec::new(),
        );
        assert_eq!(out, [5.0, 5.0, -7.0, -7.0]);
    }

    #[test]
    fn softcap_flattens_scores() {
        // Two tokens with scores 10 and 0: soft-cap 1 turns them into tanh(10)≈1 and 0.
        let k = to_f16(&[10.0, 0.0]);
        let v = to_f16(&[1.0, 0.0]);
        let p = AttentionParams {
            n_head: 1,
            n_kv_head: 1,
            head_dim: 1,
            scale: 1.0,
            softcap: Some(1.0),
        };
        let mut out = vec![0.0];
        attention_ext(&[1.0], &k, &v, 0..2, &p, &mut out, &mut Vec::new());
        let e = 10.0f32.tanh().exp();
        assert!((out[0] - e / (e + 1.0)).abs() < 1e-3, "{out:?}");
    }
}
