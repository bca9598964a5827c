//! The forward pass: one decoder block for every architecture, over a batch of sequences.
//!
//! All tokens of a step (prefill chunks and decode tokens of any number of sequences) are stacked into one
//! activation matrix, so each weight matrix is read once per step whatever the batch holds. Each token's row
//! is computed independently of the others', so a sequence's logits do not depend on who shares its batch.

use cria_kernels::matmul::matmul;
use cria_kernels::ops::{self, AttentionParams, QueryRow};
use cria_kernels::pool::ThreadPool;
use cria_kernels::quant::dequantize_row;

use crate::ModelError;
use crate::fused::{FusedScratch, matmul_fused};
use crate::kv_cache::{KvCache, KvPool};
use crate::kv_store::{FlatCaches, KvStore, PagedCaches, SeqStep};
use crate::model::Model;
use crate::moe::{MoeScratch, moe_ffn};
use crate::spec::{ArchSpec, FfnKind, QkNorm, SWIGLU_OAI_ALPHA, SWIGLU_OAI_LIMIT};
use crate::weights::{FfnWeights, Matrix};

/// Which logits a sequence wants back from a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Logits {
    None,
    /// Only the last token's (generation).
    Last,
    /// Every token's (evaluation, perplexity).
    All,
}

/// One sequence's part of a step: the tokens to append to its cache.
pub struct SeqBatch<'a> {
    pub cache: &'a mut KvCache,
    pub tokens: &'a [u32],
    pub logits: Logits,
}

/// One sequence's part of a step on a paged cache ([`Runner::forward_paged`]): the tokens to append at
/// positions `start..`, through its block table.
pub struct PagedSeq<'a> {
    /// The pool blocks holding the sequence's positions, in order; they must cover `start + tokens.len()`.
    pub blocks: &'a [u32],
    /// Where the pool's sliding-window layers have a pool of their own ([`Model::new_windowed_pool`]): their
    /// block table, in position order like `blocks`, holding at least the positions the step's queries see
    /// (a window before the first); blocks before those may be given back (`u32::MAX`). `None` otherwise.
    pub window_blocks: Option<&'a [u32]>,
    /// Positions already in the cache (computed earlier, by this sequence or one it shares blocks with).
    pub start: usize,
    /// The sequence's context size (LongRoPE picks its factors by it).
    pub ctx: usize,
    pub tokens: &'a [u32],
    pub logits: Logits,
}

/// What a step returns: logits rows, or every token's normed hidden state (embeddings).
#[derive(Clone, Copy)]
enum Output {
    Logits,
    Hidden,
}

/// Where each stacked token row came from.
#[derive(Clone, Copy)]
struct TokenSlot {
    seq: usize,
    pos: usize,
}

/// Activations of a step, reused between steps.
#[derive(Default)]
struct Scratch {
    x: Vec<f32>,
    xn: Vec<f32>,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    attn: Vec<f32>,
    proj: Vec<f32>,
    gate: Vec<f32>,
    up: Vec<f32>,
    quant: Vec<u8>,
    fused: FusedScratch,
    moe: MoeScratch,
    /// Per stacked token: its sequence and the cache positions it attends to (this layer's window).
    query_rows: Vec<QueryRow>,
    logits: Vec<f32>,
}

/// Runs a model: its thread pool and scratch buffers. One per engine thread.
pub struct Runner {
    pool: ThreadPool,
    scratch: Scratch,
}

impl Runner {
    /// A runner with `n_threads` threads (the caller's included).
    pub fn new(_model: &Model, n_threads: usize) -> Runner {
        Runner {
            pool: ThreadPool::new(n_threads.max(1)),
            scratch: Scratch::default(),
        }
    }

    /// The runner's thread pool.
    pub fn pool(&self) -> &ThreadPool {
        &self.pool
    }

    /// Appends each entry's tokens to its cache and returns, per entry, the logits rows it asked for
    /// (`n_vocab` floats a row).
    pub fn forward(
        &mut self,
        model: &Model,
        batch: &mut [SeqBatch<'_>],
    ) -> Result<Vec<Vec<f32>>, ModelError> {
        self.forward_flat(model, batch, Output::Logits)
    }

    /// Appends each entry's tokens to its cache and returns, per entry, every token's last-layer output after
    /// the output norm (`n_embd` floats a row): llama.cpp's `result_norm`, what its embeddings pool for a
    /// decoder model. The entries' `logits` are ignored.
    pub fn hidden_states(
        &mut self,
        model: &Model,
        batch: &mut [SeqBatch<'_>],
    ) -> Result<Vec<Vec<f32>>, ModelError> {
        self.forward_flat(model, batch, Output::Hidden)
    }

    /// [`forward`](Self::forward) or [`hidden_states`](Self::hidden_states) on each entry's own cache.
    fn forward_flat(
        &mut self,
        model: &Model,
        batch: &mut [SeqBatch<'_>],
        output: Output,
    ) -> Result<Vec<Vec<f32>>, ModelError> {
        for entry in batch.iter() {
            let needed = entry.cache.len() + entry.tokens.len();
            if needed > entry.cache.capacity() {
                return Err(ModelError::ContextFull {
                    needed,
                    capacity: entry.cache.capacity(),
                });
            }
        }
        let (steps, caches): (Vec<SeqStep<'_>>, Vec<&mut KvCache>) = batch
            .iter_mut()
            .map(|e| {
                let step = SeqStep {
                    tokens: e.tokens,
                    logits: e.logits,
                    start: e.cache.len(),
                    ctx: e.cache.capacity(),
                };
                (step, &mut *e.cache)
            })
            .unzip();
        let mut store = FlatCaches(caches);
        let out = self.run(model, &steps, &mut store, output)?;
        for (cache, step) in store.0.iter_mut().zip(&steps) {
            cache.advance(step.tokens.len());
        }
        Ok(out)
    }

    /// Every token's row of the residual stream (`scratch.x`) through the output norm, per entry.
    fn hidden(&self, model: &Model, batch: &[SeqStep<'_>]) -> Vec<Vec<f32>> {
        let spec = model.spec();
        let d = spec.n_embd;
        let weight = &model.weights().output_norm;
        let x = &self.scratch.x;
        let mut first = 0;
        batch
            .iter()
            .map(|entry| {
                let rows = &x[first * d..(first + entry.tokens.len()) * d];
                first += entry.tokens.len();
                let mut out = vec![0.0; rows.len()];
                for_rows(&self.pool, &mut out, d, &|i, dst| {
                    ops::rms_norm(&rows[i * d..(i + 1) * d], weight, spec.norm_eps, dst)
                });
                out
            })
            .collect()
    }

    /// [`forward`](Self::forward) on a paged cache: each entry's tokens are stored through its block table
    /// into `pool`, and attention reads its positions through the table. Returns, per entry, the logits rows it
    /// asked for.
    pub fn forward_paged(
        &mut self,
        model: &Model,
        pool: &mut KvPool,
        batch: &[PagedSeq<'_>],
    ) -> Result<Vec<Vec<f32>>, ModelError> {
        let steps: Vec<SeqStep<'_>> = batch
            .iter()
            .map(|e| SeqStep {
                tokens: e.tokens,
                logits: e.logits,
                start: e.start,
                ctx: e.ctx,
            })
            .collect();
        let tables = batch.iter().map(|e| e.blocks).collect();
        let window_tables = batch.iter().map(|e| e.window_blocks).collect();
        let mut store = PagedCaches {
            pool,
            tables,
            window_tables,
        };
        store.check(&steps, model.sliding_window())?;
        self.run(model, &steps, &mut store, Output::Logits)
    }

    fn run(
        &mut self,
        model: &Model,
        steps: &[SeqStep<'_>],
        store: &mut dyn KvStore,
        output: Output,
    ) -> Result<Vec<Vec<f32>>, ModelError> {
        let slots = plan(model, steps)?;
        if slots.is_empty() {
            return Ok(steps.iter().map(|_| Vec::new()).collect());
        }
        self.embed(model, steps, slots.len());
        for il in 0..model.spec().n_layer {
            self.attention_block(model, il, steps, store, &slots);
            self.ffn_block(model, il, slots.len());
        }
        Ok(match output {
            Output::Logits => self.logits(model, steps),
            Output::Hidden => self.hidden(model, steps),
        })
    }

    fn embed(&mut self, model: &Model, batch: &[SeqStep<'_>], n_tok: usize) {
        let spec = model.spec();
        let d = spec.n_embd;
        let emb = &model.weights().token_embd;
        let x = resized(&mut self.scratch.x, n_tok * d);
        let tokens = batch.iter().flat_map(|e| e.tokens.iter());
        for (row, &tok) in x.chunks_exact_mut(d).zip(tokens) {
            // The planner checked every id against the vocabulary and the row format at load.
            let _ = dequantize_row(emb.ty, emb.row(model.data(), tok as usize), row);
            if let Some(scale) = spec.embed_scale {
                row.iter_mut().for_each(|v| *v *= scale);
            }
        }
    }

    fn attention_block(
        &mut self,
        model: &Model,
        il: usize,
        batch: &[SeqStep<'_>],
        store: &mut dyn KvStore,
        slots: &[TokenSlot],
    ) {
        let spec = model.spec();
        let lw = &model.weights().layers[il];
        let n_tok = slots.len();
        let (d, qd, kvd, hd) = (spec.n_embd, spec.q_dim(), spec.kv_dim(), spec.head_dim);
        let s = &mut self.scratch;
        let xn = resized(&mut s.xn, n_tok * d);
        norm_rows(&self.pool, &s.x, lw.attn_norm.as_deref(), spec.norm_eps, xn);
        self.project_qkv(model, il, n_tok);
        let s = &mut self.scratch;
        // Each sequence's RoPE (LongRoPE picks its factors by the sequence's context).
        let ropes: Vec<_> = batch.iter().map(|e| model.layer_rope(il, e.ctx)).collect();
        let heads = [
            (&mut s.q, qd, spec.n_head, &lw.q_norm),
            (&mut s.k, kvd, spec.n_head_kv, &lw.k_norm),
        ];
        for (buf, dim, n_heads, qk_norm) in heads {
            for_rows(&self.pool, &mut buf[..n_tok * dim], dim, &|t, row| {
                match (qk_norm, spec.qk_norm) {
                    (Some(w), QkNorm::Full) => ops::rms_norm_inplace(row, w, spec.norm_eps),
                    (Some(w), _) => row
                        .chunks_exact_mut(hd)
                        .for_each(|h| ops::rms_norm_inplace(h, w, spec.norm_eps)),
                    (None, _) => {}
                }
                if let Some(rope) = ropes[slots[t].seq] {
                    ops::rope_inplace(row, n_heads, hd, slots[t].pos, rope);
                }
            });
        }
        for (t, slot) in slots.iter().enumerate() {
            let k = &s.k[t * kvd..(t + 1) * kvd];
            let v = &s.v[t * kvd..(t + 1) * kvd];
            store.store(slot.seq, il, slot.pos, k, v);
        }
        attend(
            &self.pool,
            model,
            il,
            &*store,
            slots,
            &mut s.query_rows,
            &s.q,
            resized(&mut s.attn, n_tok * qd),
        );
        let o = resized(&mut s.proj, n_tok * d);
        let wo = [lw.wo.view(model.data())];
        matmul_fused(
            &self.pool,
            &wo,
            &s.attn,
            n_tok,
            &mut [&mut *o],
            &mut s.fused,
        );
        if let Some(b) = &lw.o_bias {
            o.chunks_exact_mut(d).for_each(|r| ops::add_inplace(r, b));
        }
        residual_add(
            &self.pool,
            &mut s.x,
            o,
            d,
            lw.post_attn_norm.as_deref(),
            spec,
        );
    }

    fn ffn_block(&mut self, model: &Model, il: usize, n_tok: usize) {
        let spec = model.spec();
        let lw = &model.weights().layers[il];
        let d = spec.n_embd;
        let s = &mut self.scratch;
        let xn = resized(&mut s.xn, n_tok * d);
        norm_rows(&self.pool, &s.x, lw.ffn_norm.as_deref(), spec.norm_eps, xn);
        let down = resized(&mut s.proj, n_tok * d);
        match &lw.ffn {
            FfnWeights::Experts(w) => {
                moe_ffn(&self.pool, model.data(), w, &s.xn, n_tok, down, &mut s.moe);
            }
            FfnWeights::Dense { gate, up, down: w } => {
                let ffn = DenseFfn { gate, up, down: w };
                dense_ffn(&self.pool, model, ffn, n_tok, s);
            }
        }
        residual_add(
            &self.pool,
            &mut s.x,
            &mut s.proj,
            d,
            lw.post_ffn_norm.as_deref(),
            spec,
        );
    }

    /// Q, K and V of every stacked token (biases added), in one fused parallel loop for a decode-sized batch.
    fn project_qkv(&mut self, model: &Model, il: usize, n_tok: usize) {
        let lw = &model.weights().layers[il];
        let data = model.data();
        let s = &mut self.scratch;
        let mats = [lw.wq.view(data), lw.wk.view(data), lw.wv.view(data)];
        let (q, k, v) = (
            resized(&mut s.q, n_tok * mats[0].rows),
            resized(&mut s.k, n_tok * mats[1].rows),
            resized(&mut s.v, n_tok * mats[2].rows),
        );
        matmul_fused(
            &self.pool,
            &mats,
            &s.xn,
            n_tok,
            &mut [&mut *q, &mut *k, &mut *v],
            &mut s.fused,
        );
        let biases = [&lw.q_bias, &lw.k_bias, &lw.v_bias];
        for ((out, w), bias) in [q, k, v].into_iter().zip(&mats).zip(biases) {
            if let Some(b) = bias {
                out.chunks_exact_mut(w.rows)
                    .for_each(|r| ops::add_inplace(r, b));
            }
        }
    }

    /// Final norm and output matrix for the rows that asked for logits, all in one matmul (the output
    /// matrix is read once per step, however many sequences share it).
    fn logits(&mut self, model: &Model, batch: &[SeqStep<'_>]) -> Vec<Vec<f32>> {
        let spec = model.spec();
        let (d, n_vocab) = (spec.n_embd, spec.n_vocab);
        let s = &mut self.scratch;
        let mut wanted = Vec::with_capacity(batch.len());
        let mut first = 0;
        for entry in batch {
            let n = entry.tokens.len();
            wanted.push(match entry.logits {
                Logits::None => first + n..first + n,
                Logits::Last => first + n.saturating_sub(1)..first + n,
                Logits::All => first..first + n,
            });
            first += n;
        }
        let n_rows: usize = wanted.iter().map(|r| r.len()).sum();
        let xn = resized(&mut s.xn, n_rows * d);
        let rows = wanted.iter().flat_map(|r| r.clone());
        for (row, dst) in rows.zip(xn.chunks_exact_mut(d)) {
            ops::rms_norm(
                &s.x[row * d..(row + 1) * d],
                &model.weights().output_norm,
                spec.norm_eps,
                dst,
            );
        }
        let logits = resized(&mut s.logits, n_rows * n_vocab);
        let out_w = model.weights().output_matrix();
        matmul(
            &self.pool,
            &out_w.view(model.data()),
            xn,
            n_rows,
            logits,
            &mut s.quant,
        );
        if let Some(scale) = spec.logit_scale {
            let inv = 1.0 / scale;
            logits.iter_mut().for_each(|l| *l *= inv);
        }
        if let Some(cap) = spec.final_logit_softcap {
            logits.iter_mut().for_each(|l| *l = cap * (*l / cap).tanh());
        }
        let mut next = 0;
        wanted
            .iter()
            .map(|r| {
                let part = &logits[next * n_vocab..(next + r.len()) * n_vocab];
                next += r.len();
                part.to_vec()
            })
            .collect()
    }
}

/// A dense FFN's three matrices.
struct DenseFfn<'a> {
    gate: &'a Matrix,
    up: &'a Matrix,
    down: &'a Matrix,
}

/// `s.proj` = the gated FFN of `s.xn`, every token through the same matrices.
fn dense_ffn(pool: &ThreadPool, model: &Model, w: DenseFfn<'_>, n_tok: usize, s: &mut Scratch) {
    let spec = model.spec();
    let (d, ff) = (spec.n_embd, spec.n_ff);
    let data = model.data();
    let mats = [w.gate.view(data), w.up.view(data)];
    let gate = resized(&mut s.gate, n_tok * ff);
    let up = resized(&mut s.up, n_tok * ff);
    matmul_fused(
        pool,
        &mats,
        &s.xn,
        n_tok,
        &mut [&mut *gate, &mut *up],
        &mut s.fused,
    );
    let (gate, up) = (&*gate, &*up);
    // `attn` is free until the next layer's attention: it holds the gated activation.
    let act = resized(&mut s.attn, n_tok * ff);
    for_rows(pool, act, ff, &|t, row| {
        let (g, u) = (&gate[t * ff..(t + 1) * ff], &up[t * ff..(t + 1) * ff]);
        gated_activation(spec.ffn, g, u, row)
    });
    let down = resized(&mut s.proj, n_tok * d);
    let w_down = [w.down.view(data)];
    matmul_fused(
        pool,
        &w_down,
        &s.attn,
        n_tok,
        &mut [&mut *down],
        &mut s.fused,
    );
}

/// `out = act(gate) * up` for the FFN kind (dense FFNs and experts alike).
pub(crate) fn gated_activation(kind: FfnKind, gate: &[f32], up: &[f32], out: &mut [f32]) {
    match kind {
        FfnKind::SwiGlu => ops::silu_mul(gate, up, out),
        FfnKind::GeGlu => ops::gelu_mul(gate, up, out),
        FfnKind::SwiGluOai => {
            ops::swiglu_oai_mul(gate, up, SWIGLU_OAI_ALPHA, SWIGLU_OAI_LIMIT, out)
        }
    }
}

/// Checks the batch and lists every token's sequence and position.
fn plan(model: &Model, batch: &[SeqStep<'_>]) -> Result<Vec<TokenSlot>, ModelError> {
    let n_vocab = model.n_vocab();
    let mut slots = Vec::new();
    for (seq, entry) in batch.iter().enumerate() {
        if let Some(&id) = entry.tokens.iter().find(|&&id| id as usize >= n_vocab) {
            return Err(ModelError::TokenOutOfRange { id, n_vocab });
        }
        let start = entry.start;
        slots.extend((0..entry.tokens.len()).map(|i| TokenSlot {
            seq,
            pos: start + i,
        }));
    }
    Ok(slots)
}

/// Causal attention of every stacked token against its own sequence's cache, all sequences in one parallel
/// loop over (token, head).
#[allow(clippy::too_many_arguments)]
fn attend(
    pool: &ThreadPool,
    model: &Model,
    il: usize,
    store: &dyn KvStore,
    slots: &[TokenSlot],
    rows: &mut Vec<QueryRow>,
    q: &[f32],
    out: &mut [f32],
) {
    let spec = model.spec();
    let params = AttentionParams {
        n_head: spec.n_head,
        n_kv_head: spec.n_head_kv,
        head_dim: spec.head_dim,
        scale: spec.attn_scale,
        softcap: spec.attn_softcap,
        sinks: model.weights().layers[il].attn_sinks.as_deref(),
    };
    let sliding_window = spec.layer_attention(il).window;
    rows.clear();
    // The query at `pos` sees the keys up to itself (this step's are already stored), within the window.
    rows.extend(
        slots
            .iter()
            .map(|slot| QueryRow::causal(slot.seq, slot.pos, sliding_window)),
    );
    let kv = |seq: usize| store.view(seq, il);
    ops::attention_rows(pool, q, rows, &kv, &params, out);
}

/// Rows below which a per-row pass runs inline: a fork costs more than a few rows of norm or rope.
const PAR_ROWS: usize = 16;

/// `f(i, row)` for each `row_len`-long row of `data`: across the pool for a prefill-sized batch, inline for a
/// few rows. A row is processed the same way either way, so the split never changes a result.
fn for_rows(
    pool: &ThreadPool,
    data: &mut [f32],
    row_len: usize,
    f: &(dyn Fn(usize, &mut [f32]) + Sync),
) {
    let n = data.len() / row_len.max(1);
    if n < PAR_ROWS || pool.n_threads() == 1 {
        data.chunks_exact_mut(row_len)
            .enumerate()
            .for_each(|(i, r)| f(i, r));
        return;
    }
    let per_task = n.div_ceil(4 * pool.n_threads());
    pool.for_each_chunk_mut(data, per_task * row_len, &|t, chunk| {
        for (j, r) in chunk.chunks_exact_mut(row_len).enumerate() {
            f(t * per_task + j, r);
        }
    });
}

/// `out` = RMS norm of each row of `x` (rows as wide as `out` / `x`), or a copy of `x` without a weight (blocks
/// that only post-norm).
fn norm_rows(pool: &ThreadPool, x: &[f32], weight: Option<&[f32]>, eps: f32, out: &mut [f32]) {
    let Some(weight) = weight else {
        out.copy_from_slice(&x[..out.len()]);
        return;
    };
    let d = weight.len();
    for_rows(pool, out, d, &|i, dst| {
        ops::rms_norm(&x[i * d..(i + 1) * d], weight, eps, dst)
    });
}

/// `x += norm(y) · residual_scale` row by row: the post-norm where the block has one (Gemma, OLMo 2), the
/// multiplier where the architecture has one (Granite); rows of `d`.
fn residual_add(
    pool: &ThreadPool,
    x: &mut [f32],
    y: &mut [f32],
    d: usize,
    post: Option<&[f32]>,
    spec: &ArchSpec,
) {
    if let Some(w) = post {
        for_rows(pool, y, d, &|_, r| {
            ops::rms_norm_inplace(r, w, spec.norm_eps)
        });
    }
    if let Some(scale) = spec.residual_scale {
        for_rows(pool, y, d, &|_, r| ops::scale_inplace(r, scale));
    }
    for_rows(pool, x, d, &|i, r| {
        ops::add_inplace(r, &y[i * d..(i + 1) * d])
    });
}

fn resized(v: &mut Vec<f32>, n: usize) -> &mut [f32] {
    v.resize(n, 0.0);
    &mut v[..n]
}
