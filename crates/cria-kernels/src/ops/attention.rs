//! Causal attention of one query token against a sequence's KV cache, stored in f16.
//!
//! Cache layout: token-major, `[n_kv_tokens][n_kv_head * head_dim]` of `half::f16`, the same for K and V
//! (what llama.cpp keeps by default: f16 halves the cache's memory traffic at no measurable accuracy cost).
//! Scores and the weighted sum of V are accumulated in f32.

use std::ops::Range;

use half::f16;

use super::kv_view::KvView;
use super::simd;
#[cfg(test)]
use super::softmax::softmax_inplace;

/// Shape and scaling of one attention call.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AttentionParams<'a> {
    /// Query heads.
    pub n_head: usize,
    /// KV heads; `n_head` must be a multiple (grouped-query: query head `h` reads KV head `h / (n_head / n_kv_head)`).
    pub n_kv_head: usize,
    pub head_dim: usize,
    /// Multiplies every q·k (usually `1/sqrt(head_dim)`).
    pub scale: f32,
    /// Logit soft-cap (Gemma 2): scores become `cap * tanh(score / cap)` after `scale`. `None` for none.
    pub softcap: Option<f32>,
    /// Attention sinks (gpt-oss): one learned logit per query head that joins the softmax's denominator but
    /// has no value, so a head can attend to "nothing". `None` for none; else `n_head` of them.
    pub sinks: Option<&'a [f32]>,
}

impl AttentionParams<'_> {
    /// The sink logit of query head `h`, if the call has sinks.
    fn sink(&self, h: usize) -> Option<f32> {
        self.sinks.and_then(|s| s.get(h).copied())
    }
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
        sinks: None,
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
    let kv = KvView::contiguous(k_cache, v_cache);
    check_shapes(p, q.len(), out.len(), &kv, window.clone());
    out.fill(0.0);
    if window.is_empty() {
        return;
    }
    for (h, out_h) in out.chunks_exact_mut(p.head_dim).enumerate() {
        let q_h = &q[h * p.head_dim..(h + 1) * p.head_dim];
        attend_head(q_h, kv, window.clone(), h, p, out_h, scratch);
    }
}

/// Query head `head` against its KV head over the cache positions in `window` (non-empty):
/// `out_h = softmax(softcap(scale · q_h·K))) · V`, `out_h` zeroed first. `scores` is scratch. The positions are
/// read run by run ([`KvView::runs`]): each score is its own dot product and V is accumulated row after row,
/// so a paged cache gives the same bits as a flat one.
pub(super) fn attend_head(
    q_h: &[f32],
    kv: KvView<'_>,
    window: Range<usize>,
    head: usize,
    p: &AttentionParams,
    out_h: &mut [f32],
    scores: &mut Vec<f32>,
) {
    let kern = simd::kernels();
    let (hd, stride) = (p.head_dim, kv_dim(p));
    let kv_head = head / (p.n_head / p.n_kv_head.max(1)).max(1);
    scores.clear();
    scores.resize(window.len(), 0.0);
    for (run, row) in kv.runs(window.clone()) {
        let dst = &mut scores[run.start - window.start..run.end - window.start];
        kern.dot_rows_f16(q_h, &kv.k[row * stride + kv_head * hd..], stride, dst);
    }
    scores_to_probs(scores, p, head);
    out_h.fill(0.0);
    axpy_view(out_h, scores, kv, window, kv_head * hd, stride);
}

/// The query heads of KV head `kv_head` (`q_g` is `[group][head_dim]`, heads `kv_head * group ..`) over the
/// cache positions in `window` (non-empty), into `out_g` (same shape, zeroed first): what [`attend_head`] gives
/// each of them, bit for bit, with each K and V row read (and converted from f16) once for the whole group
/// ([`Kernels::dot_rows_group`](super::simd::Kernels::dot_rows_group)): grouped-query attention's heads
/// share their KV head's rows. `scores` is scratch (`group` rows of `window.len()`).
pub(super) fn attend_kv_group(
    q_g: &[f32],
    kv: KvView<'_>,
    window: Range<usize>,
    kv_head: usize,
    p: &AttentionParams,
    out_g: &mut [f32],
    scores: &mut Vec<f32>,
) {
    let kern = simd::kernels();
    let (hd, stride, span) = (p.head_dim, kv_dim(p), window.len());
    let group = q_g.len() / hd;
    let col = kv_head * hd;
    scores.clear();
    scores.resize(group * span, 0.0);
    for (run, row) in kv.runs(window.clone()) {
        let at = run.start - window.start;
        let k = &kv.k[row * stride + col..];
        kern.dot_rows_group((q_g, hd), (k, stride), (&mut scores[at..], span), run.len());
    }
    for (j, s) in scores.chunks_exact_mut(span).enumerate() {
        scores_to_probs(s, p, kv_head * group + j);
    }
    out_g.fill(0.0);
    for (run, row) in kv.runs(window.clone()) {
        let at = run.start - window.start;
        let v = &kv.v[row * stride + col..];
        kern.axpy_rows_group((out_g, hd), (&scores[at..], span), (v, stride), run.len());
    }
}

/// `out += Σ_t probs[t - window.start] · V[t][col..]` for the positions `t` of `window`, in order, run by run.
pub(super) fn axpy_view(
    out: &mut [f32],
    probs: &[f32],
    kv: KvView<'_>,
    window: Range<usize>,
    col: usize,
    stride: usize,
) {
    let kern = simd::kernels();
    for (run, row) in kv.runs(window.clone()) {
        let probs = &probs[run.start - window.start..run.end - window.start];
        kern.axpy_rows_f16(out, probs, &kv.v[row * stride + col..], stride);
    }
}

/// Raw q·k dot products of query head `head` to attention weights, in place: scale, soft-cap, softmax. The
/// softmax is [`softmax_inplace`]'s steps (maximum, `exp(x - max)` and its sum, times `1 / sum`), with the
/// maximum taken while scaling and the steps vectorized: the same bits. With a sink `s` (ggml's `soft_max`
/// with sinks): the maximum includes `s` and the sum `exp(s - max)`, so the weights add up to less than 1.
pub(super) fn scores_to_probs(scores: &mut [f32], p: &AttentionParams, head: usize) {
    let kern = simd::kernels();
    let mut max = match p.softcap {
        None => kern.scale_max(scores, p.scale),
        Some(_) => scores.iter_mut().fold(f32::NEG_INFINITY, |m, s| {
            *s = softcap(p.scale * *s, p.softcap);
            m.max(*s)
        }),
    };
    let sink = p.sink(head);
    if let Some(s) = sink {
        max = max.max(s);
    }
    if max == f32::NEG_INFINITY {
        scores.fill(0.0);
        return;
    }
    let mut sum = kern.exp_sub_sum(scores, max);
    if let Some(s) = sink {
        sum += (s - max).exp();
    }
    kern.scale(scores, 1.0 / sum);
}

pub(super) fn kv_dim(p: &AttentionParams) -> usize {
    p.n_kv_head * p.head_dim
}

pub(super) fn check_shapes(
    p: &AttentionParams,
    q_len: usize,
    out_len: usize,
    kv: &KvView<'_>,
    window: Range<usize>,
) {
    assert!(
        p.n_kv_head > 0 && p.n_head.is_multiple_of(p.n_kv_head),
        "attention: {} heads, {} kv heads",
        p.n_head,
        p.n_kv_head
    );
    assert_eq!(q_len, p.n_head * p.head_dim, "attention: q length");
    assert_eq!(out_len, p.n_head * p.head_dim, "attention: out length");
    kv.check(window, kv_dim(p));
}

#[inline]
fn softcap(s: f32, cap: Option<f32>) -> f32 {
    match cap {
        Some(c) => c * (s / c).tanh(),
        None => s,
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

    /// The vectorized scale + softmax against the scalar scale and [`softmax_inplace`], bit for bit: lengths
    /// around the 16-lane steps, with and without a soft-cap, masked (`-inf`), NaN and all-masked rows.
    #[test]
    fn scores_to_probs_equals_scale_then_softmax_bit_for_bit() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut noise = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 40) as f32 / (1u64 << 24) as f32 * 80.0 - 40.0
        };
        for softcap in [None, Some(30.0)] {
            let p = AttentionParams {
                n_head: 1,
                n_kv_head: 1,
                head_dim: 64,
                scale: 0.125,
                softcap,
                sinks: None,
            };
            for n in [1, 2, 15, 16, 17, 31, 33, 100, 513] {
                for special in [None, Some(f32::NEG_INFINITY), Some(f32::NAN), Some(0.0)] {
                    let mut raw: Vec<f32> = (0..n).map(|_| noise()).collect();
                    if let Some(v) = special {
                        raw.iter_mut().step_by(3).for_each(|x| *x = v);
                    }
                    for all_masked in [false, true] {
                        if all_masked {
                            raw.fill(f32::NEG_INFINITY);
                        }
                        let mut want = raw.clone();
                        want.iter_mut()
                            .for_each(|s| *s = super::softcap(p.scale * *s, p.softcap));
                        softmax_inplace(&mut want);
                        let mut got = raw.clone();
                        scores_to_probs(&mut got, &p, 0);
                        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                        assert_eq!(bits(&got), bits(&want), "n {n} {special:?} {softcap:?}");
                    }
                }
            }
        }
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
            sinks: None,
        };
        let mut out = vec![0.0];
        attention_ext(&[1.0], &k, &v, 0..2, &p, &mut out, &mut Vec::new());
        let e = 10.0f32.tanh().exp();
        assert!((out[0] - e / (e + 1.0)).abs() < 1e-3, "{out:?}");
    }
}
