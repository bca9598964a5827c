//! Causal attention for many query tokens at once (prefill, or decode of several sequences' worth of
//! heads), spread over the thread pool by (token, head).

use std::cell::RefCell;
use std::ops::Range;

use half::f16;
use half::slice::HalfFloatSliceExt;

use super::attention::{
    AttentionParams, attend_head, attend_kv_group, axpy_view, check_shapes, kv_dim, scores_to_probs,
};
use super::kv_view::KvView;
use super::simd::{self, KvElem};
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
    /// The f32 copies of [`attention_rows_grouped`] (the calling thread's; the tasks only read them).
    static KV_F32: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
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
    let kv = KvView::contiguous(k_cache, v_cache);
    attention_rows(pool, q, &rows, &|_| kv, p, out);
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
/// the cache `kv(rows[i].seq)` (flat or paged) over `rows[i].window`. Each output equals what
/// [`attention_ext`](super::attention_ext) gives for that row alone, so a sequence's result does not depend on
/// which others share the call. `q` and `out` are `[rows.len()][n_head * head_dim]`.
///
/// # Panics
/// If a slice is too short, a window is empty or past its cache, or `n_head` is not a multiple of `n_kv_head`.
pub fn attention_rows<'c>(
    pool: &ThreadPool,
    q: &[f32],
    rows: &[QueryRow],
    kv: &SeqKv<'c>,
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
    attention_rows_single(pool, q, rows, kv, p, out);
}

/// Each sequence's cache, by the sequence number of a [`QueryRow`].
pub type SeqKv<'c> = dyn Fn(usize) -> KvView<'c> + Sync + 'c;

/// [`attention_rows`] one task per (row, KV head): the query heads that share a KV head read its rows
/// together ([`attend_kv_group`]: each K/V row converted once, not once per query head), with each head's
/// result the one-query path's bits.
fn attention_rows_single<'c>(
    pool: &ThreadPool,
    q: &[f32],
    rows: &[QueryRow],
    kv: &SeqKv<'c>,
    p: &AttentionParams,
    out: &mut [f32],
) {
    let q_dim = p.n_head * p.head_dim;
    let n_kv = p.n_kv_head.max(1);
    let group_dim = q_dim / n_kv;
    pool.for_each_chunk_mut(out, group_dim, &|task, out_g| {
        let (i, kv_head) = (task / n_kv, task % n_kv);
        let row = &rows[i];
        let view = kv(row.seq);
        if kv_head == 0 {
            check_shapes(p, q_dim, q_dim, &view, row.window.clone());
        }
        assert!(!row.window.is_empty(), "attention_rows: empty window");
        let q_g = &q[task * group_dim..(task + 1) * group_dim];
        SCORES.with_borrow_mut(|scores| {
            attend_kv_group(q_g, view, row.window.clone(), kv_head, p, out_g, scores);
        });
    });
}

/// The f32 copies of K/V rows the grouped path makes, at most this many floats (32 MiB); a batch that would
/// need more reads the f16 cache directly.
const KV_F32_MAX: usize = 1 << 23;

/// Where one sequence's f32 copies sit in the buffer: its cache rows `rows` (all KV heads), K at `k..v`, V at
/// `v..v + (v - k)`.
struct SeqCopy {
    seq: usize,
    rows: Range<usize>,
    k: usize,
    v: usize,
}

/// [`attention_rows`] with the queries that read the same K/V rows attended together. The K/V rows the batch
/// reads are first copied to f32 (exact, so the same bits), once for all of its queries, so the multi-query
/// kernels load them as they are; then a task takes [`ROWS_PER_TASK`] consecutive rows, and for each KV head
/// groups up to [`MAX_GROUP`] of their (row, head) queries of one sequence (row-major, so the query heads of one
/// row, which share its window, sit together). Outputs are bit for bit the one-query path's.
fn attention_rows_grouped<'c>(
    pool: &ThreadPool,
    q: &[f32],
    rows: &[QueryRow],
    kv: &SeqKv<'c>,
    p: &AttentionParams,
    out: &mut [f32],
) {
    let (q_dim, kv_dim) = (p.n_head * p.head_dim, kv_dim(p));
    let mut copies: Vec<SeqCopy> = Vec::new();
    for row in rows {
        check_shapes(p, q_dim, q_dim, &kv(row.seq), row.window.clone());
        assert!(!row.window.is_empty(), "attention_rows: empty window");
        let w = &row.window;
        match copies.iter_mut().find(|c| c.seq == row.seq) {
            Some(c) => c.rows = c.rows.start.min(w.start)..c.rows.end.max(w.end),
            None => copies.push(SeqCopy {
                seq: row.seq,
                rows: w.clone(),
                k: 0,
                v: 0,
            }),
        }
    }
    let mut total = 0;
    for c in &mut copies {
        c.k = total;
        c.v = c.k + c.rows.len() * kv_dim;
        total = c.v + c.rows.len() * kv_dim;
    }
    if total > KV_F32_MAX {
        // A paged cache has no one run of rows to hand the multi kernels: the one-query path (same bits).
        if !copies.iter().all(|c| kv(c.seq).is_contiguous()) {
            return attention_rows_single(pool, q, rows, kv, p, out);
        }
        let cache = |seq: usize| {
            let view = kv(seq);
            (view.k, view.v, 0)
        };
        grouped_tasks(pool, q, rows, kv, &cache, p, out);
        return;
    }
    KV_F32.with_borrow_mut(|buf| {
        if buf.len() < total {
            buf.resize(total, 0.0);
        }
        for c in &copies {
            let view = kv(c.seq);
            for (run, row) in view.runs(c.rows.clone()) {
                let src = row * kv_dim..(row + run.len()) * kv_dim;
                let at = (run.start - c.rows.start) * kv_dim;
                let n = run.len() * kv_dim;
                view.k[src.clone()].convert_to_f32_slice(&mut buf[c.k + at..c.k + at + n]);
                view.v[src].convert_to_f32_slice(&mut buf[c.v + at..c.v + at + n]);
            }
        }
        let buf = &buf[..];
        let copy = |seq: usize| {
            let c = copies.iter().find(|c| c.seq == seq);
            let c = c.expect("attention_rows: every row's sequence is copied");
            let n = c.v - c.k;
            (&buf[c.k..c.v], &buf[c.v..c.v + n], c.rows.start)
        };
        grouped_tasks(pool, q, rows, kv, &copy, p, out);
    });
}

/// K and V rows of a sequence for the multi-query kernels, and the cache row the first of them is.
type SharedRows<'s, T> = dyn Fn(usize) -> (&'s [T], &'s [T], usize) + Sync + 's;

/// The parallel loop of [`attention_rows_grouped`]: the shared part of each group reads `shared`, the rest the
/// f16 cache.
fn grouped_tasks<'c, T: KvElem>(
    pool: &ThreadPool,
    q: &[f32],
    rows: &[QueryRow],
    kv: &SeqKv<'c>,
    shared: &SharedRows<'_, T>,
    p: &AttentionParams,
    out: &mut [f32],
) {
    let q_dim = p.n_head * p.head_dim;
    let group = p.n_head / p.n_kv_head.max(1);
    pool.for_each_chunk_mut(out, ROWS_PER_TASK * q_dim, &|task, out_blk| {
        let r0 = task * ROWS_PER_TASK;
        let blk = &rows[r0..r0 + out_blk.len() / q_dim];
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
                            attend_group(&g, (q_blk, out_blk), kv, shared, p, s);
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
                attend_group(&g, (q_blk, out_blk), kv, shared, p, s);
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

/// Attends the group's queries (`q_blk`/`out_blk` are the block's `[row][n_head * head_dim]`). The dots go
/// through the multi-query kernel for every key any member sees (each dot is the one-query path's, whichever
/// others are computed beside it). For the weighted sum, the keys all of them see (the intersection of their
/// windows) go through the multi-query kernel; each query's keys outside it alone, before and after, so every
/// query still adds its own V rows in order with the same FMAs (the running sums pass through `acc` in f32,
/// exactly).
fn attend_group<'c, T: KvElem>(
    g: &Group<'_>,
    (q_blk, out_blk): (&[f32], &mut [f32]),
    kv: &SeqKv<'c>,
    shared: &SharedRows<'_, T>,
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
    let view = kv(g.blk[i0].seq);
    let lo = g.members.iter().map(|m| win(m).start).max().unwrap_or(0);
    let hi = g.members.iter().map(|m| win(m).end).min().unwrap_or(0);
    if g.members.len() == 1 || lo >= hi || !simd::kernels().has_multi(hd) {
        for m in g.members {
            let (q_h, out_h) = (&q_blk[at(m)], &mut out_blk[at(m)]);
            attend_head(q_h, view, win(m), m.1, p, out_h, &mut s.scores);
        }
        return;
    }
    // Query j's score for key position t sits at scores[j * span + t - first].
    let first = g.members.iter().map(|m| win(m).start).min().unwrap_or(0);
    let span = g.members.iter().map(|m| win(m).end).max().unwrap_or(0) - first;
    let col = g.kv_head * hd;
    let kern = simd::kernels();
    let n = g.members.len();
    // When the members' queries are one run of the block (whole rows: one KV head, or every query head of a KV
    // head), they are read, and their outputs accumulated, in place; otherwise gathered into scratch.
    let base = at(&g.members[0]).start;
    let in_place = g
        .members
        .iter()
        .enumerate()
        .all(|(j, m)| at(m).start == base + j * hd);
    let GroupScratch {
        q: gathered,
        scores,
        acc: acc_scratch,
    } = s;
    if !in_place {
        gathered.clear();
        for m in g.members {
            gathered.extend_from_slice(&q_blk[at(m)]);
        }
    }
    let qs: &[f32] = if in_place {
        &q_blk[base..base + n * hd]
    } else {
        gathered
    };
    // Not zeroed: the dots below write all of the first n * span.
    if scores.len() < n * span {
        scores.resize(n * span, 0.0);
    }
    // Every query's dots with every key of the span: a query's dots outside its window are computed with the
    // rest but never read (its softmax and weighted sum only see its window).
    let (ks, vs, row0) = shared(g.blk[i0].seq);
    kern.dot_rows_multi(
        (qs, hd),
        (&ks[(first - row0) * stride + col..], stride),
        (&mut scores[..], span),
        span,
    );
    for (j, m) in g.members.iter().enumerate() {
        let w = win(m);
        scores_to_probs(
            &mut scores[j * span + w.start - first..j * span + w.end - first],
            p,
            m.1,
        );
    }
    let acc: &mut [f32] = if in_place {
        &mut out_blk[base..base + n * hd]
    } else {
        acc_scratch.clear();
        acc_scratch.resize(n * hd, 0.0);
        acc_scratch
    };
    acc.fill(0.0);
    // V: each query's keys before the shared ones, the shared ones together, then its keys after.
    for (j, m) in g.members.iter().enumerate() {
        let r = win(m).start..lo;
        if !r.is_empty() {
            let probs = &scores[j * span + r.start - first..j * span + r.end - first];
            let acc_j = &mut acc[j * hd..(j + 1) * hd];
            axpy_view(acc_j, probs, view, r, col, stride);
        }
    }
    kern.axpy_rows_multi(
        (acc, hd),
        (&scores[lo - first..], span),
        (&vs[(lo - row0) * stride + col..], stride),
        hi - lo,
    );
    for (j, m) in g.members.iter().enumerate() {
        let r = hi..win(m).end;
        if !r.is_empty() {
            let probs = &scores[j * span + r.start - first..j * span + r.end - first];
            let acc_j = &mut acc[j * hd..(j + 1) * hd];
            axpy_view(acc_j, probs, view, r, col, stride);
        }
    }
    if !in_place {
        for (j, m) in g.members.iter().enumerate() {
            out_blk[at(m)].copy_from_slice(&acc_scratch[j * hd..(j + 1) * hd]);
        }
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
            sinks: None,
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
        let kv = |s: usize| KvView::contiguous(&seqs[s].0[..], &seqs[s].1[..]);
        attention_rows(&pool, &q, &rows, &kv, &p, &mut out);
        for (i, row) in rows.iter().enumerate() {
            let mut alone = vec![0.0; q_dim];
            let KvView { k, v, .. } = kv(row.seq);
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
    /// mix two sequences, a soft-cap, attention sinks, and row counts that leave a short last block.
    #[test]
    fn grouped_rows_equal_one_query_path_bit_for_bit() {
        let heads = [(1, 1), (2, 2), (4, 1), (9, 3), (8, 2)];
        let sinks: Vec<f32> = (0..9).map(|h| h as f32 * 0.7 - 2.0).collect();
        let mut seed = 1;
        for hd in [64, 128, 256, 80] {
            for (n_head, n_kv_head) in heads {
                let variants = [
                    (None, None, false),
                    (Some(5), None, true),
                    (Some(13), Some(30.0), false),
                    (None, None, true),
                ];
                for (win, softcap, with_sinks) in variants {
                    let p = AttentionParams {
                        n_head,
                        n_kv_head,
                        head_dim: hd,
                        scale: 1.0 / (hd as f32).sqrt(),
                        softcap,
                        sinks: with_sinks.then_some(&sinks[..n_head]),
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
        let kv = |s: usize| KvView::contiguous(&seqs[s].0[..], &seqs[s].1[..]);
        let mut want = vec![0.0; q.len()];
        for (i, row) in rows.iter().enumerate() {
            let KvView { k, v, .. } = kv(row.seq);
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
            // The same caches scattered in blocks of 3 rows over a pool, in another order: the same bits.
            let paged = Paged::scatter(&seqs, kv_dim, 3);
            let paged_kv = |s: usize| paged.view(s);
            let mut through_blocks = vec![f32::NAN; q.len()];
            attention_rows(&pool, &q, &rows, &paged_kv, p, &mut through_blocks);
            let mut grouped_blocks = vec![f32::NAN; q.len()];
            attention_rows_grouped(&pool, &q, &rows, &paged_kv, p, &mut grouped_blocks);
            let mut single_blocks = vec![f32::NAN; q.len()];
            attention_rows_single(&pool, &q, &rows, &paged_kv, p, &mut single_blocks);
            for (i, w) in want.iter().enumerate() {
                let got = [through_blocks[i], grouped_blocks[i], single_blocks[i]];
                assert_eq!(
                    [w.to_bits(); 3],
                    got.map(f32::to_bits),
                    "{p:?} window {win:?}, paged: element {i}"
                );
            }
            // The path a batch too large for f32 copies takes: the multi kernels on the f16 cache.
            let mut from_f16 = vec![f32::NAN; q.len()];
            let cache = |s: usize| (&seqs[s].0[..], &seqs[s].1[..], 0);
            grouped_tasks(&pool, &q, &rows, &kv, &cache, p, &mut from_f16);
            for (i, w) in want.iter().enumerate() {
                let (g, t, h) = (got[i], through_rows[i], from_f16[i]);
                assert_eq!(
                    [w.to_bits(); 3],
                    [g.to_bits(), t.to_bits(), h.to_bits()],
                    "{p:?} window {win:?}, {threads} threads: row {}, element {}: {w} vs {g}, {t}, {h}",
                    i / q_dim,
                    i % q_dim
                );
            }
        }
    }

    /// Sequences' K/V rows copied into one pool in blocks, the blocks of all sequences interleaved backwards.
    struct Paged {
        k: Vec<f16>,
        v: Vec<f16>,
        tables: Vec<Vec<u32>>,
        block_rows: usize,
    }

    impl Paged {
        fn scatter(seqs: &[(Vec<f16>, Vec<f16>)], kv_dim: usize, block_rows: usize) -> Paged {
            let counts: Vec<usize> = seqs
                .iter()
                .map(|s| (s.0.len() / kv_dim).div_ceil(block_rows))
                .collect();
            let total: usize = counts.iter().sum();
            let (mut k, mut v) = (vec![f16::ZERO; total * block_rows * kv_dim], Vec::new());
            v.resize(k.len(), f16::ZERO);
            let mut next = total as u32;
            let mut tables = Vec::new();
            for (s, &n) in seqs.iter().zip(&counts) {
                let mut table = Vec::new();
                for b in 0..n {
                    next -= 1;
                    let rows =
                        b * block_rows * kv_dim..((b + 1) * block_rows * kv_dim).min(s.0.len());
                    let at = next as usize * block_rows * kv_dim;
                    k[at..at + rows.len()].copy_from_slice(&s.0[rows.clone()]);
                    v[at..at + rows.len()].copy_from_slice(&s.1[rows]);
                    table.push(next);
                }
                tables.push(table);
            }
            Paged {
                k,
                v,
                tables,
                block_rows,
            }
        }

        fn view(&self, seq: usize) -> KvView<'_> {
            KvView::paged(&self.k, &self.v, &self.tables[seq], self.block_rows)
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
