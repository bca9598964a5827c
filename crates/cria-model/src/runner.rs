//! The forward pass: one decoder block for every architecture, over a batch of sequences.
//!
//! All tokens of a step (prefill chunks and decode tokens of any number of sequences) are stacked into one
//! activation matrix, so each weight matrix is read once per step whatever the batch holds. Each token's row
//! is computed independently of the others', so a sequence's logits do not depend on who shares its batch.

use cria_kernels::matmul::matmul;
use cria_kernels::ops::{self, AttentionParams, CausalBatch};
use cria_kernels::pool::ThreadPool;
use cria_kernels::quant::dequantize_row;

use crate::ModelError;
use crate::kv_cache::KvCache;
use crate::model::Model;
use crate::spec::FfnKind;
use crate::weights::Matrix;

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
        let slots = plan(model, batch)?;
        if slots.is_empty() {
            return Ok(batch.iter().map(|_| Vec::new()).collect());
        }
        self.embed(model, batch, slots.len());
        for il in 0..model.spec().n_layer {
            self.attention_block(model, il, batch, &slots);
            self.ffn_block(model, il, slots.len());
        }
        for entry in batch.iter_mut() {
            entry.cache.advance(entry.tokens.len());
        }
        Ok(self.logits(model, batch))
    }

    fn embed(&mut self, model: &Model, batch: &[SeqBatch<'_>], n_tok: usize) {
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
        batch: &mut [SeqBatch<'_>],
        slots: &[TokenSlot],
    ) {
        let spec = model.spec();
        let lw = &model.weights().layers[il];
        let n_tok = slots.len();
        let (d, qd, kvd, hd) = (spec.n_embd, spec.q_dim(), spec.kv_dim(), spec.head_dim);
        let s = &mut self.scratch;
        norm_rows(
            &s.x,
            &lw.attn_norm,
            spec.norm_eps,
            resized(&mut s.xn, n_tok * d),
            d,
        );
        self.project(model, &lw.wq, n_tok, Proj::Q, lw.q_bias.as_deref());
        self.project(model, &lw.wk, n_tok, Proj::K, lw.k_bias.as_deref());
        self.project(model, &lw.wv, n_tok, Proj::V, lw.v_bias.as_deref());
        let s = &mut self.scratch;
        let rope = model.layer_rope(il);
        for (t, slot) in slots.iter().enumerate() {
            let q = &mut s.q[t * qd..(t + 1) * qd];
            let k = &mut s.k[t * kvd..(t + 1) * kvd];
            if let (Some(qn), Some(kn)) = (&lw.q_norm, &lw.k_norm) {
                q.chunks_exact_mut(hd)
                    .for_each(|h| ops::rms_norm_inplace(h, qn, spec.norm_eps));
                k.chunks_exact_mut(hd)
                    .for_each(|h| ops::rms_norm_inplace(h, kn, spec.norm_eps));
            }
            ops::rope_inplace(q, spec.n_head, hd, slot.pos, rope);
            ops::rope_inplace(k, spec.n_head_kv, hd, slot.pos, rope);
            let v = &s.v[t * kvd..(t + 1) * kvd];
            batch[slot.seq].cache.store(il, slot.pos, k, v);
        }
        attend(
            &self.pool,
            model,
            il,
            batch,
            &s.q,
            resized(&mut s.attn, n_tok * qd),
        );
        let o = resized(&mut s.proj, n_tok * d);
        matmul(
            &self.pool,
            &lw.wo.view(model.data()),
            &s.attn,
            n_tok,
            o,
            &mut s.quant,
        );
        if let Some(post) = &lw.post_attn_norm {
            o.chunks_exact_mut(d)
                .for_each(|r| ops::rms_norm_inplace(r, post, spec.norm_eps));
        }
        ops::add_inplace(&mut s.x, o);
    }

    fn ffn_block(&mut self, model: &Model, il: usize, n_tok: usize) {
        let spec = model.spec();
        let lw = &model.weights().layers[il];
        let (d, ff) = (spec.n_embd, spec.n_ff);
        let data = model.data();
        let s = &mut self.scratch;
        norm_rows(
            &s.x,
            &lw.ffn_norm,
            spec.norm_eps,
            resized(&mut s.xn, n_tok * d),
            d,
        );
        let gate = resized(&mut s.gate, n_tok * ff);
        matmul(
            &self.pool,
            &lw.w_gate.view(data),
            &s.xn,
            n_tok,
            gate,
            &mut s.quant,
        );
        let up = resized(&mut s.up, n_tok * ff);
        matmul(
            &self.pool,
            &lw.w_up.view(data),
            &s.xn,
            n_tok,
            up,
            &mut s.quant,
        );
        // `attn` is free until the next layer's attention: it holds the gated activation.
        let act = resized(&mut s.attn, n_tok * ff);
        match spec.ffn {
            FfnKind::SwiGlu => ops::silu_mul(&s.gate, &s.up, act),
            FfnKind::GeGlu => ops::gelu_mul(&s.gate, &s.up, act),
        }
        let down = resized(&mut s.proj, n_tok * d);
        matmul(
            &self.pool,
            &lw.w_down.view(data),
            &s.attn,
            n_tok,
            down,
            &mut s.quant,
        );
        if let Some(post) = &lw.post_ffn_norm {
            down.chunks_exact_mut(d)
                .for_each(|r| ops::rms_norm_inplace(r, post, spec.norm_eps));
        }
        ops::add_inplace(&mut s.x, down);
    }

    fn project(
        &mut self,
        model: &Model,
        w: &Matrix,
        n_tok: usize,
        which: Proj,
        bias: Option<&[f32]>,
    ) {
        let s = &mut self.scratch;
        let out = match which {
            Proj::Q => &mut s.q,
            Proj::K => &mut s.k,
            Proj::V => &mut s.v,
        };
        let out = resized(out, n_tok * w.rows);
        matmul(
            &self.pool,
            &w.view(model.data()),
            &s.xn,
            n_tok,
            out,
            &mut s.quant,
        );
        if let Some(b) = bias {
            out.chunks_exact_mut(w.rows)
                .for_each(|r| ops::add_inplace(r, b));
        }
    }

    /// Final norm and output matrix for the rows that asked for logits.
    fn logits(&mut self, model: &Model, batch: &[SeqBatch<'_>]) -> Vec<Vec<f32>> {
        let spec = model.spec();
        let d = spec.n_embd;
        let out_w = model.weights().output_matrix();
        let s = &mut self.scratch;
        let mut first = 0;
        let mut result = Vec::with_capacity(batch.len());
        for entry in batch {
            let n = entry.tokens.len();
            let rows = match entry.logits {
                Logits::None => first + n..first + n,
                Logits::Last => first + n.saturating_sub(1)..first + n,
                Logits::All => first..first + n,
            };
            first += n;
            let n_rows = rows.len();
            if n_rows == 0 {
                result.push(Vec::new());
                continue;
            }
            let xn = resized(&mut s.xn, n_rows * d);
            norm_rows(
                &s.x[rows.start * d..rows.end * d],
                &model.weights().output_norm,
                spec.norm_eps,
                xn,
                d,
            );
            let mut logits = vec![0.0; n_rows * spec.n_vocab];
            matmul(
                &self.pool,
                &out_w.view(model.data()),
                xn,
                n_rows,
                &mut logits,
                &mut s.quant,
            );
            if let Some(cap) = spec.final_logit_softcap {
                logits.iter_mut().for_each(|l| *l = cap * (*l / cap).tanh());
            }
            result.push(logits);
        }
        result
    }
}

#[derive(Clone, Copy)]
enum Proj {
    Q,
    K,
    V,
}

/// Checks the batch and lists every token's sequence and position.
fn plan(model: &Model, batch: &[SeqBatch<'_>]) -> Result<Vec<TokenSlot>, ModelError> {
    let n_vocab = model.n_vocab();
    let mut slots = Vec::new();
    for (seq, entry) in batch.iter().enumerate() {
        let needed = entry.cache.len() + entry.tokens.len();
        if needed > entry.cache.capacity() {
            return Err(ModelError::ContextFull {
                needed,
                capacity: entry.cache.capacity(),
            });
        }
        if let Some(&id) = entry.tokens.iter().find(|&&id| id as usize >= n_vocab) {
            return Err(ModelError::TokenOutOfRange { id, n_vocab });
        }
        let start = entry.cache.len();
        slots.extend((0..entry.tokens.len()).map(|i| TokenSlot {
            seq,
            pos: start + i,
        }));
    }
    Ok(slots)
}

/// Causal attention of every stacked token against its own sequence's cache: one parallel call per
/// sequence, spread over (token, head).
fn attend(
    pool: &ThreadPool,
    model: &Model,
    il: usize,
    batch: &[SeqBatch<'_>],
    q: &[f32],
    out: &mut [f32],
) {
    let spec = model.spec();
    let qd = spec.q_dim();
    let params = AttentionParams {
        n_head: spec.n_head,
        n_kv_head: spec.n_head_kv,
        head_dim: spec.head_dim,
        scale: spec.attn_scale,
        softcap: None,
    };
    let sliding_window = spec.layer_attention(il).window;
    let mut first_row = 0;
    for entry in batch {
        let n = entry.tokens.len();
        let rows = first_row * qd..(first_row + n) * qd;
        first_row += n;
        if n == 0 {
            continue;
        }
        let (k, v) = entry.cache.layer(il);
        // The cache has not advanced yet: this step's tokens start at its current length.
        let b = CausalBatch {
            first_pos: entry.cache.len(),
            n_tokens: n,
            sliding_window,
        };
        ops::attention_batch(pool, &q[rows.clone()], k, v, &b, &params, &mut out[rows]);
    }
}

fn norm_rows(x: &[f32], weight: &[f32], eps: f32, out: &mut [f32], d: usize) {
    for (src, dst) in x.chunks_exact(d).zip(out.chunks_exact_mut(d)) {
        ops::rms_norm(src, weight, eps, dst);
    }
}

fn resized(v: &mut Vec<f32>, n: usize) -> &mut [f32] {
    v.resize(n, 0.0);
    &mut v[..n]
}
