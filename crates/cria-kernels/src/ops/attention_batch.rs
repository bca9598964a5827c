//! Causal attention for many query tokens at once (prefill, or decode of several sequences' worth of
//! heads), spread over the thread pool by (token, head).

use std::cell::RefCell;

use half::f16;

use super::attention::{AttentionParams, attend_head, check_shapes, kv_dim, scores_to_probs};
use super::simd;
use crate::pool::ThreadPool;

/// Consecutive query rows one task of the grouped path takes (all heads of them).
const ROWS_PER_TASK: usize = 4;
/// Queries attended together against the same K/V rows (the multi kernels tile them: 8 queries x 2 keys for
/// the dots, 16 queries a V chunk for the weighted sum).
const MAX_GROUP: usize = 16;

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
    static GROUP: RefCell<GroupScratch> = const { RefCell::new(GroupScratch::new()) };
}

/// Scratch of [`attend_group`]: the group's queries, scores and output accumulators, each `[query][...]`.
struct GroupScratch {
    q: Vec<f32>,
    scores: Vec<f32>,
    acc: Vec<f32>,
}

impl GroupScratch {
    const fn new() -> Self {
        GroupScratch {
            q: Vec::new(),
            scores: Vec::new(),
            acc: Vec::new(),
        }
    }
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
    // Enough rows for every thread to get several blocks: the grouped path (prefill). Fewer (decode): one
    // task per (row, head), as many tasks as there is work to spread.
    if simd::kernels().has_multi(p.head_dim) && rows.len() >= 2 * ROWS_PER_TASK * pool.n_threads() {
        attention_rows_grouped(pool, q, rows, kv, p, out);
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

/// [`attention_rows`] with the queries that read the same K/V rows attended together: a task takes
/// [`ROWS_PER_TASK`] consecutive rows, and for each KV head groups up to [`MAX_GROUP`] of their (row, head)
/// queries of one sequence (row-major, so the query heads of one row, which share its window, sit together).
/// Each K/V row is then converted from f16 once for the group. Outputs are bit for bit the one-query path's.
fn attention_rows_grouped<'c>(
    pool: &ThreadPool,
    q: &[f32],
    rows: &[QueryRow],
    kv: &(dyn Fn(usize) -> (&'c [f16], &'c [f16]) + Sync),
    p: &AttentionParams,
    out: &mut [f32],
) {
    let q_dim = p.n_head * p.head_dim;
    let group = p.n_head / p.n_kv_head.max(1);
    pool.for_each_chunk_mut(out, ROWS_PER_TASK * q_dim, &|task, out_blk| {
        let r0 = task * ROWS_PER_TASK;
        let blk = &rows[r0..r0 + out_blk.len() / q_dim];
        for row in blk {
            let (k, v) = kv(row.seq);
            check_shapes(p, q_dim, q_dim, k.len().min(v.len()), row.window.end);
            assert!(!row.window.is_empty(), "attention_rows: empty window");
        }
        let q_blk = &q[r0 * q_dim..(r0 + blk.len()) * q_dim];
        GROUP.with_borrow_mut(|s| {
            for kv_head in 0..p.n_kv_head {
                let mut members = [(0, 0); MAX_GROUP];
                let mut n = 0;
                for (i, row) in blk.iter().enumerate() {
                    for h in kv_head * group..(kv_head + 1) * group {
                        if n == MAX_GROUP || (n > 0 && blk[members[0].0].seq != row.seq) {
                            let g = Group {
                                blk,
                                members: &members[..n],
                                kv_head,
                            };
                            attend_group(&g, (q_blk, out_blk), kv, p, s);
                            n = 0;
                        }
                        members[n] = (i, h);
                        n += 1;
                    }
                }
                let g = Group {
                    blk,
                    members: &members[..n],
                    kv_head,
                };
                attend_group(&g, (q_blk, out_blk), kv, p, s);
            }
        });
    });
}

/// Queries of one sequence reading one KV head: `members` are (row in `blk`, query head).
struct Group<'a> {
    blk: &'a [QueryRow],
    members: &'a [(usize, usize)],
    kv_head: usize,
}

/// Attends the group's queries (`q_blk`/`out_blk` are the block's `[row][n_head * head_dim]`). The keys all
/// of them see (the intersection of their windows) go through the multi-query kernels; each query's keys
/// outside it alone, before and after, so every query still sees its own keys in order: its scores are
/// the same dot products, its softmax the same, and its V rows are added in the same order with the
/// same FMAs (the running sums pass through `acc` in f32, exactly).
fn attend_group<'c>(
    g: &Group<'_>,
    (q_blk, out_blk): (&[f32], &mut [f32]),
    kv: &(dyn Fn(usize) -> (&'c [f16], &'c [f16]) + Sync),
    p: &AttentionParams,
    s: &mut GroupScratch,
) {
    let Some(&(i0, _)) = g.members.first() else {
        return;
    };
    let (hd, stride) = (p.head_dim, kv_dim(p));
    let q_dim = p.n_head * hd;
    let at = |&(i, h): &(usize, usize)| i * q_dim + h * hd..i * q_dim + (h + 1) * hd;
    let win = |&(i, _): &(usize, usize)| g.blk[i].window.clone();
    let (k, v) = kv(g.blk[i0].seq);
    let lo = g.members.iter().map(|m| win(m).start).max().unwrap_or(0);
    let hi = g.members.iter().map(|m| win(m).end).min().unwrap_or(0);
    if g.members.len() == 1 || lo >= hi {
        for m in g.members {
            let (q_h, out_h) = (&q_blk[at(m)], &mut out_blk[at(m)]);
            attend_head(q_h, (k, v), win(m), g.kv_head, p, out_h, &mut s.scores);
        }
        return;
    }
    // Query j's score for key position t sits at scores[j * span + t - first].
    let first = g.members.iter().map(|m| win(m).start).min().unwrap_or(0);
    let span = g.members.iter().map(|m| win(m).end).max().unwrap_or(0) - first;
    let col = g.kv_head * hd;
    let kern = simd::kernels();
    s.q.clear();
    for m in g.members {
        s.q.extend_from_slice(&q_blk[at(m)]);
    }
    s.scores.clear();
    s.scores.resize(g.members.len() * span, 0.0);
    s.acc.clear();
    s.acc.resize(g.members.len() * hd, 0.0);
    let own = |m: &(usize, usize)| [win(m).start..lo, hi..win(m).end];
    for (j, m) in g.members.iter().enumerate() {
        let q_j = &s.q[j * hd..(j + 1) * hd];
        for r in own(m).into_iter().filter(|r| !r.is_empty()) {
            let sc = &mut s.scores[j * span + r.start - first..j * span + r.end - first];
            kern.dot_rows_f16(q_j, &k[r.start * stride + col..], stride, sc);
        }
    }
    kern.dot_rows_f16_multi(
        (&s.q, hd),
        (&k[lo * stride + col..], stride),
        (&mut s.scores[lo - first..], span),
        hi - lo,
    );
    for (j, m) in g.members.iter().enumerate() {
        let w = win(m);
        scores_to_probs(
            &mut s.scores[j * span + w.start - first..j * span + w.end - first],
            p,
        );
    }
    // V: each query's keys before the shared ones, the shared ones together, then its keys after.
    for (j, m) in g.members.iter().enumerate() {
        let r = win(m).start..lo;
        let probs = &s.scores[j * span + r.start - first..j * span + r.end - first];
        if !r.is_empty() {
            let acc = &mut s.acc[j * hd..(j + 1) * hd];
            kern.axpy_rows_f16(acc, probs, &v[r.start * stride + col..], stride);
        }
    }
    kern.axpy_rows_f16_multi(
        (&mut s.acc, hd),
        (&s.scores[lo - first..], span),
        (&v[lo * stride + col..], stride),
        hi - lo,
    );
    for (j, m) in g.members.iter().enumerate() {
        let r = hi..win(m).end;
        if !r.is_empty() {
            let probs = &s.scores[j * span + r.start - first..j * span + r.end - first];
            let acc = &mut s.acc[j * hd..(j + 1) * hd];
            kern.axpy_rows_f16(acc, probs, &v[r.start * stride + col..], stride);
        }
        out_blk[at(m)].copy_from_slice(&s.acc[j * hd..(j + 1) * hd]);
    }
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

    /// Uniform-ish values in [-2, 2) from a xorshift, as f16 where the cache needs them.
    fn noise(seed: u64, n: usize) -> Vec<f32> {
        let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 40) as f32 / (1u64 << 24) as f32 * 4.0 - 2.0
            })
            .collect()
    }

    fn f16s(v: &[f32]) -> Vec<f16> {
        v.iter().map(|&x| f16::from_f32(x)).collect()
    }

    /// The grouped (multi-query) path against the one-query path, bit for bit: head sizes the AVX-512 kernels
    /// specialize and one they do not, GQA ratios, full and sliding windows (ragged group ends), blocks that
    /// mix two sequences, a soft-cap, and row counts that leave a short last block.
    #[test]
    fn grouped_rows_equal_one_query_path_bit_for_bit() {
        let heads = [(1, 1), (2, 2), (4, 1), (9, 3), (8, 2)];
        let mut seed = 1;
        for hd in [64, 128, 256, 80] {
            for (n_head, n_kv_head) in heads {
                for (win, softcap) in [(None, None), (Some(5), None), (Some(13), Some(30.0))] {
                    let p = AttentionParams {
                        n_head,
                        n_kv_head,
                        head_dim: hd,
                        scale: 1.0 / (hd as f32).sqrt(),
                        softcap,
                    };
                    seed += 1;
                    check_grouped(&p, win, seed);
                }
            }
        }
    }

    fn check_grouped(p: &AttentionParams, win: Option<usize>, seed: u64) {
        let kv_dim = p.n_kv_head * p.head_dim;
        let q_dim = p.n_head * p.head_dim;
        let lens = [40, 23];
        let seqs: Vec<(Vec<f16>, Vec<f16>)> = lens
            .iter()
            .enumerate()
            .map(|(s, &n)| {
                let k = noise(seed * 7 + s as u64, n * kv_dim);
                let v = noise(seed * 11 + s as u64, n * kv_dim);
                (f16s(&k), f16s(&v))
            })
            .collect();
        // Sequence 0 prefills positions 3..40, then sequence 1 positions 0..23 (blocks straddle the switch).
        let rows: Vec<QueryRow> = (3..lens[0])
            .map(|pos| QueryRow::causal(0, pos, win))
            .chain((0..lens[1]).map(|pos| QueryRow::causal(1, pos, win)))
            .collect();
        let q = noise(seed * 13, rows.len() * q_dim);
        let kv = |s: usize| (&seqs[s].0[..], &seqs[s].1[..]);
        let mut want = vec![0.0; q.len()];
        for (i, row) in rows.iter().enumerate() {
            let (k, v) = kv(row.seq);
            let r = i * q_dim..(i + 1) * q_dim;
            let out = &mut want[r.clone()];
            super::super::attention_ext(&q[r], k, v, row.window.clone(), p, out, &mut Vec::new());
        }
        for threads in [1, 2] {
            let pool = ThreadPool::new(threads);
            let mut got = vec![f32::NAN; q.len()];
            attention_rows_grouped(&pool, &q, &rows, &kv, p, &mut got);
            let mut through_rows = vec![f32::NAN; q.len()];
            attention_rows(&pool, &q, &rows, &kv, p, &mut through_rows);
            for (i, ((w, g), t)) in want.iter().zip(&got).zip(&through_rows).enumerate() {
                assert_eq!(
                    (w.to_bits(), w.to_bits()),
                    (g.to_bits(), t.to_bits()),
                    "{p:?} window {win:?}, {threads} threads: row {}, element {}: {w} vs {g}, {t}",
                    i / q_dim,
                    i % q_dim
                );
            }
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
