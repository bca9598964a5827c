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
        QueryRow::causal(0, self.first_pos + i, self.sliding_window).window
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
    let rows: Vec<QueryRow> = (0..b.n_tokens)
        .map(|i| QueryRow::causal(0, b.first_pos + i, b.sliding_window))
        .collect();
    attention_rows(pool, q, &rows, &|_| (k_cache, v_cache), p, out);
}

/// One query row of [`attention_rows`]: the sequence whose KV cache it reads, and the cache positions it sees.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryRow {
    pub seq: usize,
    pub window: std::ops::Range<usize>,
}

impl QueryRow {
    /// The query of sequence `seq` at position `pos`, causal: it sees the keys at `pos + 1 - window ..= pos`
    /// with a sliding window (llama.cpp's standard SWA mask, Gemma's local layers), else all of `0..=pos`.
    pub fn causal(seq: usize, pos: usize, sliding_window: Option<usize>) -> Self {
        let end = pos + 1;
        let start = sliding_window.map_or(0, |w| end.saturating_sub(w));
        QueryRow {
            seq,
            window: start..end,
        }
    }
}

/// Attention of query rows from any number of sequences in one parallel loop over (row, head): row `i` reads
/// the caches `kv(rows[i].seq)` over `rows[i].window`. Each output equals what
/// [`attention_ext`](super::attention_ext) gives for that row alone, so a sequence's result does not depend on
/// which others share the call. `q` and `out` are `[rows.len()][n_head * head_dim]`.
///
/// # Panics
/// If a slice is too short, a window is empty or past its cache, or `n_head` is not a multiple of `n_kv_head`.
pub fn attention_rows<'c>(
    pool: &ThreadPool,
    q: &[f32],
    rows: &[QueryRow],
    kv: &(dyn Fn(usize) -> (&'c [f16], &'c [f16]) + Sync),
    p: &AttentionParams,
    out: &mut [f32],
) {
    let q_dim = p.n_head * p.head_dim;
    assert_eq!(q.len(), rows.len() * q_dim, "attention_rows: q length");
    assert_eq!(out.len(), rows.len() * q_dim, "attention_rows: out length");
    if rows.is_empty() {
        return;
    }
    let group = p.n_head / p.n_kv_head.max(1);
    pool.for_each_chunk_mut(out, p.head_dim, &|task, out_h| {
        let (i, h) = (task / p.n_head, task % p.n_head);
        let row = &rows[i];
        let (k, v) = kv(row.seq);
        if h == 0 {
            check_shapes(p, q_dim, q_dim, k.len().min(v.len()), row.window.end);
        }
        assert!(!row.window.is_empty(), "attention_rows: empty window");
        let q_h = &q[task * p.head_dim..(task + 1) * p.head_dim];
        SCORES.with_borrow_mut(|scores| {
            attend_head(q_h, (k, v), row.window.clone(), h / group, p, out_h, scores);
        });
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_of_several_sequences_equal_each_alone() {
        let p = AttentionParams {
            n_head: 4,
            n_kv_head: 2,
            head_dim: 8,
            scale: 0.3,
            softcap: None,
        };
        let kv_dim = p.n_kv_head * p.head_dim;
        let cache = |seed: f32, n: usize| -> Vec<f16> {
            (0..n * kv_dim)
                .map(|i| f16::from_f32(((i as f32 * 0.37 + seed).sin()) * 2.0))
                .collect()
        };
        let seqs = [
            (cache(0.1, 5), cache(0.2, 5)),
            (cache(0.7, 9), cache(0.9, 9)),
        ];
        let rows = [
            QueryRow {
                seq: 1,
                window: 0..9,
            },
            QueryRow {
                seq: 0,
                window: 2..5,
            },
            QueryRow {
                seq: 1,
                window: 3..7,
            },
        ];
        let q_dim = p.n_head * p.head_dim;
        let q: Vec<f32> = (0..rows.len() * q_dim)
            .map(|i| (i as f32 * 0.11).cos())
            .collect();
        let mut out = vec![0.0; q.len()];
        let pool = ThreadPool::new(3);
        let kv = |s: usize| (&seqs[s].0[..], &seqs[s].1[..]);
        attention_rows(&pool, &q, &rows, &kv, &p, &mut out);
        for (i, row) in rows.iter().enumerate() {
            let mut alone = vec![0.0; q_dim];
            let (k, v) = kv(row.seq);
            let q_i = &q[i * q_dim..(i + 1) * q_dim];
            super::super::attention_ext(
                q_i,
                k,
                v,
                row.window.clone(),
                &p,
                &mut alone,
                &mut Vec::new(),
            );
            assert_eq!(&out[i * q_dim..(i + 1) * q_dim], &alone[..], "row {i}");
        }
    }

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
