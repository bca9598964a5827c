//! Causal attention for many query tokens at once (prefill, or decode of several sequences' worth of
//! heads), spread over the thread pool by (token, head).

use std::cell::RefCell;

use half::f16;

use super::attention::{AttentionParams, attend_head, check_shapes};
use crate::pool::ThreadPool;

/// Where a batch of consecutive query tokens sits in its sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CausalBatch {
    /// Position of the first query token; the batch covers `first_pos .. first_pos + n_tokens`.
    pub first_pos: usize,
    pub n_tokens: usize,
    /// Sliding window (Gemma's local layers): the query at position `p` sees keys at positions
    /// `p + 1 - window ..= p` (llama.cpp's standard SWA mask). `None`: all of `0..=p`.
    pub sliding_window: Option<usize>,
}

impl CausalBatch {
    /// Cache positions visible to the `i`-th query token of the batch.
    pub fn window(&self, i: usize) -> std::ops::Range<usize> {
        let end = self.first_pos + i + 1;
        let start = self.sliding_window.map_or(0, |w| end.saturating_sub(w));
        start..end
    }
}

thread_local! {
    static SCORES: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Attention of `b.n_tokens` query tokens against one sequence's f16 KV cache, causal, in parallel over
/// (token, head). The batch's own keys and values must already be in the cache (rows `first_pos ..
/// first_pos + n_tokens`). `q` and `out` are `[n_tokens][n_head * head_dim]`; the cache layout is
/// [`attention_ext`](super::attention_ext)'s. Each output equals what `attention_ext` gives for that token
/// alone with window [`CausalBatch::window`].
///
/// # Panics
/// If a slice is too short or `n_head` is not a multiple of `n_kv_head`.
pub fn attention_batch(
    pool: &ThreadPool,
    q: &[f32],
    k_cache: &[f16],
    v_cache: &[f16],
    b: &CausalBatch,
    p: &AttentionParams,
    out: &mut [f32],
) {
    let q_dim = p.n_head * p.head_dim;
    assert_eq!(q.len(), b.n_tokens * q_dim, "attention_batch: q length");
    assert_eq!(out.len(), b.n_tokens * q_dim, "attention_batch: out length");
    if b.n_tokens == 0 {
        return;
    }
    let cache_len = k_cache.len().min(v_cache.len());
    check_shapes(p, q_dim, q_dim, cache_len, b.first_pos + b.n_tokens);
    let group = p.n_head / p.n_kv_head;
    pool.for_each_chunk_mut(out, p.head_dim, &|task, out_h| {
        let (i, h) = (task / p.n_head, task % p.n_head);
        let q_h = &q[task * p.head_dim..(task + 1) * p.head_dim];
        SCORES.with_borrow_mut(|scores| {
            let kv = (k_cache, v_cache);
            attend_head(q_h, kv, b.window(i), h / group, p, out_h, scores);
        });
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_follow_llama_cpp_swa_mask() {
        let b = CausalBatch {
            first_pos: 3,
            n_tokens: 3,
            sliding_window: Some(2),
        };
        assert_eq!(b.window(0), 2..4);
        assert_eq!(b.window(2), 4..6);
        let full = CausalBatch {
            sliding_window: None,
            ..b
        };
        assert_eq!(full.window(1), 0..5);
        let wide = CausalBatch {
            first_pos: 0,
            n_tokens: 1,
            sliding_window: Some(512),
        };
        assert_eq!(wide.window(0), 0..1);
    }
}
