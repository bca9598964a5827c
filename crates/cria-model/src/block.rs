//! The forward pass: one decoder block for every architecture and every device, over a batch of sequences,
//! written once against [`Backend`] and driven by [`ArchSpec`].
//!
//! All tokens of a step (prefill chunks and decode tokens of any number of sequences) are stacked into one
//! activation matrix, so each weight matrix is read once per step whatever the batch holds. Each token's row
//! is computed independently of the others', so a sequence's logits do not depend on who shares its batch.

use std::ops::Range;

use cria_kernels::backend::{Activation, AttentionSpec, Backend, Rows, TokenPos};
use cria_kernels::ops::{QueryRow, RopeParams};

use crate::ModelError;
use crate::block_weights::{BlockFfn, BlockLayer, BlockWeights};
use crate::kv_store::SeqStep;
use crate::model::Model;
use crate::moe::{MoeBufs, moe_ffn};
use crate::runner::Logits;
use crate::spec::{ArchSpec, FfnKind, QkNorm, SWIGLU_OAI_ALPHA, SWIGLU_OAI_LIMIT};

/// What a step returns: logits rows, or every token's normed hidden state (embeddings).
#[derive(Clone, Copy)]
pub(crate) enum Output {
    Logits,
    Hidden,
}

/// A backend's weights for the block.
pub(crate) type Weights<B> = BlockWeights<<B as Backend>::Matrix, <B as Backend>::Vector>;
type Layer<B> = BlockLayer<<B as Backend>::Matrix, <B as Backend>::Vector>;

/// A step's activations, `n` stacked tokens.
pub(crate) struct Acts<B: Backend> {
    x: B::Buf,
    xn: B::Buf,
    q: B::Buf,
    k: B::Buf,
    v: B::Buf,
    attn: B::Buf,
    proj: B::Buf,
    gate: B::Buf,
    up: B::Buf,
    act: B::Buf,
    moe: Option<MoeBufs<B>>,
}

impl<B: Backend> Acts<B> {
    fn new(b: &mut B, spec: &ArchSpec, w: &Weights<B>, n: usize) -> Result<Self, B::Error> {
        let (d, qd, kvd) = (spec.n_embd, spec.q_dim(), spec.kv_dim());
        let dense_ff = w
            .layers
            .iter()
            .any(|l| matches!(l.ffn, BlockFfn::Dense { .. }));
        let ff = if dense_ff { spec.n_ff } else { 0 };
        let experts = w.layers.iter().find_map(|l| match &l.ffn {
            BlockFfn::Experts(e) => Some(e.as_ref()),
            BlockFfn::Dense { .. } => None,
        });
        Ok(Acts {
            x: b.buffer(n * d)?,
            xn: b.buffer(n * d)?,
            q: b.buffer(n * qd)?,
            k: b.buffer(n * kvd)?,
            v: b.buffer(n * kvd)?,
            attn: b.buffer(n * qd)?,
            proj: b.buffer(n * d)?,
            gate: b.buffer(n * ff)?,
            up: b.buffer(n * ff)?,
            act: b.buffer(n * ff)?,
            moe: experts.map(|e| MoeBufs::new(b, e, n)).transpose()?,
        })
    }
}

/// The gated activation of an FFN kind.
pub(crate) fn activation(kind: FfnKind) -> Activation {
    match kind {
        FfnKind::SwiGlu => Activation::SwiGlu,
        FfnKind::GeGlu => Activation::GeGlu,
        FfnKind::SwiGluOai => Activation::SwiGluOai {
            alpha: SWIGLU_OAI_ALPHA,
            limit: SWIGLU_OAI_LIMIT,
        },
    }
}

/// Runs `steps` through the model on `b`: embeddings, every layer's attention and FFN block, then the logits
/// rows each entry asked for (or every token's normed hidden state). The caller has checked the caches' room.
pub(crate) fn forward<B>(
    b: &mut B,
    model: &Model,
    w: &Weights<B>,
    steps: &[SeqStep<'_>],
    output: Output,
) -> Result<Vec<Vec<f32>>, ModelError>
where
    B: Backend,
    ModelError: From<B::Error>,
{
    let slots = plan(model, steps)?;
    if slots.is_empty() {
        return Ok(steps.iter().map(|_| Vec::new()).collect());
    }
    let spec = model.spec();
    let n = slots.len();
    let a = Acts::new(b, spec, w, n)?;
    let ids: Vec<u32> = steps
        .iter()
        .flat_map(|e| e.tokens.iter().copied())
        .collect();
    b.get_rows(&w.token_embd, &ids, &a.x);
    if let Some(scale) = spec.embed_scale {
        b.scale(&a.x, Rows::new(spec.n_embd, n), scale);
    }
    for (il, lw) in w.layers.iter().enumerate() {
        attention_block(b, model, (il, lw), steps, &slots, &a);
        ffn_block(b, spec, lw, n, &a)?;
    }
    match output {
        Output::Logits => logits(b, spec, w, steps, &a),
        Output::Hidden => hidden(b, spec, w, steps, &a),
    }
}

/// Checks the batch's token ids and lists every token's sequence and position.
fn plan(model: &Model, batch: &[SeqStep<'_>]) -> Result<Vec<TokenPos>, ModelError> {
    let n_vocab = model.n_vocab();
    let mut slots = Vec::new();
    for (seq, entry) in batch.iter().enumerate() {
        if let Some(&id) = entry.tokens.iter().find(|&&id| id as usize >= n_vocab) {
            return Err(ModelError::TokenOutOfRange { id, n_vocab });
        }
        let start = entry.start;
        slots.extend((0..entry.tokens.len()).map(|i| TokenPos {
            seq,
            pos: start + i,
        }));
    }
    Ok(slots)
}

/// `out` = RMS norm of each row of `x` with `weight`, or a copy of `x` without one (post-norm-only blocks).
fn norm_rows<B: Backend>(
    b: &mut B,
    (x, out): (&B::Buf, &B::Buf),
    weight: Option<&B::Vector>,
    spec: &ArchSpec,
    n: usize,
) {
    let d = spec.n_embd;
    match weight {
        Some(w) => b.rms_norm(x, w, Rows::new(d, n), spec.norm_eps, out),
        None => b.copy((x, 0), (out, 0), n * d),
    }
}

/// QK-norm of `n` rows of `heads` heads in place: over the whole row (OLMo 2) or each head.
fn qk_norm<B: Backend>(
    b: &mut B,
    buf: &B::Buf,
    w: Option<&B::Vector>,
    spec: &ArchSpec,
    heads: usize,
    n: usize,
) {
    let hd = spec.head_dim;
    let rows = match spec.qk_norm {
        QkNorm::Full => Rows::new(heads * hd, n),
        _ => Rows::new(hd, heads * n),
    };
    if let Some(w) = w {
        b.rms_norm(buf, w, rows, spec.norm_eps, buf);
    }
}

/// `x += norm(proj) · residual_scale`: the post-norm (Gemma, OLMo 2) and the multiplier (Granite) where the
/// architecture has them.
fn residual_add<B: Backend>(
    b: &mut B,
    a: &Acts<B>,
    post: Option<&B::Vector>,
    spec: &ArchSpec,
    n: usize,
) {
    let rows = Rows::new(spec.n_embd, n);
    if let Some(w) = post {
        b.rms_norm(&a.proj, w, rows, spec.norm_eps, &a.proj);
    }
    if let Some(scale) = spec.residual_scale {
        b.scale(&a.proj, rows, scale);
    }
    b.add(&a.x, &a.proj, rows);
}

fn attention_block<B: Backend>(
    b: &mut B,
    model: &Model,
    (il, lw): (usize, &Layer<B>),
    steps: &[SeqStep<'_>],
    slots: &[TokenPos],
    a: &Acts<B>,
) {
    let spec = model.spec();
    let n = slots.len();
    let (d, qd, kvd) = (spec.n_embd, spec.q_dim(), spec.kv_dim());
    norm_rows(b, (&a.x, &a.xn), lw.attn_norm.as_ref(), spec, n);
    b.matmul(&[&lw.wq, &lw.wk, &lw.wv], &a.xn, n, &[&a.q, &a.k, &a.v]);
    let biases = [
        (&a.q, &lw.q_bias, qd),
        (&a.k, &lw.k_bias, kvd),
        (&a.v, &lw.v_bias, kvd),
    ];
    for (buf, bias, width) in biases {
        if let Some(bias) = bias {
            b.add_bias(buf, bias, Rows::new(width, n));
        }
    }
    qk_norm(b, &a.q, lw.q_norm.as_ref(), spec, spec.n_head, n);
    qk_norm(b, &a.k, lw.k_norm.as_ref(), spec, spec.n_head_kv, n);
    // Each sequence's RoPE (LongRoPE picks its factors by the sequence's context); a layer rotates all or none.
    let ropes: Option<Vec<(usize, &RopeParams)>> = slots
        .iter()
        .map(|s| model.layer_rope(il, steps[s.seq].ctx).map(|r| (s.pos, r)))
        .collect();
    if let Some(tokens) = ropes {
        b.rope(&a.q, &tokens, (spec.n_head, spec.head_dim));
        b.rope(&a.k, &tokens, (spec.n_head_kv, spec.head_dim));
    }
    b.kv_store(il, slots, (&a.k, &a.v), kvd);
    // The query at `pos` sees the keys up to itself (this step's are already stored), within the window.
    let window = spec.layer_attention(il).window;
    let rows: Vec<QueryRow> = slots
        .iter()
        .map(|s| QueryRow::causal(s.seq, s.pos, window))
        .collect();
    let params = AttentionSpec {
        n_head: spec.n_head,
        n_kv_head: spec.n_head_kv,
        head_dim: spec.head_dim,
        scale: spec.attn_scale,
        softcap: spec.attn_softcap,
        sinks: lw.attn_sinks.as_ref(),
    };
    b.attention(il, &rows, &a.q, &params, &a.attn);
    b.matmul(&[&lw.wo], &a.attn, n, &[&a.proj]);
    if let Some(bias) = &lw.o_bias {
        b.add_bias(&a.proj, bias, Rows::new(d, n));
    }
    residual_add(b, a, lw.post_attn_norm.as_ref(), spec, n);
}

fn ffn_block<B>(
    b: &mut B,
    spec: &ArchSpec,
    lw: &Layer<B>,
    n: usize,
    a: &Acts<B>,
) -> Result<(), ModelError>
where
    B: Backend,
    ModelError: From<B::Error>,
{
    norm_rows(b, (&a.x, &a.xn), lw.ffn_norm.as_ref(), spec, n);
    match &lw.ffn {
        BlockFfn::Dense { gate, up, down } => {
            let rows = Rows::new(spec.n_ff, n);
            let outs = (&a.gate, &a.up, &a.act);
            b.matmul_gated(activation(spec.ffn), (gate, up), &a.xn, rows, outs);
            b.matmul(&[down], &a.act, n, &[&a.proj]);
        }
        BlockFfn::Experts(e) => {
            // `Acts::new` made the expert buffers wherever a layer has experts.
            if let Some(bufs) = &a.moe {
                moe_ffn(b, e, (&a.xn, &a.proj), n, bufs)?;
            }
        }
    }
    residual_add(b, a, lw.post_ffn_norm.as_ref(), spec, n);
    Ok(())
}

/// Each entry's rows (in the step's stacked order) whose logits it wants.
fn wanted_rows(steps: &[SeqStep<'_>]) -> Vec<Range<usize>> {
    let mut first = 0;
    steps
        .iter()
        .map(|e| {
            let n = e.tokens.len();
            let r = match e.logits {
                Logits::None => first + n..first + n,
                Logits::Last => first + n.saturating_sub(1)..first + n,
                Logits::All => first..first + n,
            };
            first += n;
            r
        })
        .collect()
}

/// `all` (rows of `width`) cut into each range's rows, in order. One entry (a single sequence's step) gets
/// `all` itself: no second copy.
fn split_rows(all: Vec<f32>, ranges: &[Range<usize>], width: usize) -> Vec<Vec<f32>> {
    if let [only] = ranges
        && only.len() * width == all.len()
    {
        return vec![all];
    }
    let mut next = 0;
    ranges
        .iter()
        .map(|r| {
            let part = all[next * width..(next + r.len()) * width].to_vec();
            next += r.len();
            part
        })
        .collect()
}

/// Final norm and output matrix for the rows that asked for logits, all in one matmul (the output matrix is
/// read once per step, however many sequences share it); logit scale and soft-cap.
fn logits<B>(
    b: &mut B,
    spec: &ArchSpec,
    w: &Weights<B>,
    steps: &[SeqStep<'_>],
    a: &Acts<B>,
) -> Result<Vec<Vec<f32>>, ModelError>
where
    B: Backend,
    ModelError: From<B::Error>,
{
    let (d, n_vocab) = (spec.n_embd, spec.n_vocab);
    let wanted = wanted_rows(steps);
    let n_rows: usize = wanted.iter().map(|r| r.len()).sum();
    if n_rows == 0 {
        return Ok(steps.iter().map(|_| Vec::new()).collect());
    }
    let sel = b.buffer(n_rows * d)?;
    for (dst, row) in wanted.iter().flat_map(|r| r.clone()).enumerate() {
        b.copy((&a.x, row * d), (&sel, dst * d), d);
    }
    b.rms_norm(
        &sel,
        &w.output_norm,
        Rows::new(d, n_rows),
        spec.norm_eps,
        &sel,
    );
    let logits = b.buffer(n_rows * n_vocab)?;
    b.matmul(&[w.output()], &sel, n_rows, &[&logits]);
    let rows = Rows::new(n_vocab, n_rows);
    if let Some(scale) = spec.logit_scale {
        b.scale(&logits, rows, 1.0 / scale);
    }
    if let Some(cap) = spec.final_logit_softcap {
        b.softcap(&logits, rows, cap);
    }
    // each entry's rows straight from the step's buffer (`split_rows` of a `read` copied them twice)
    let mut next = 0;
    let parts: Vec<Range<usize>> = wanted
        .iter()
        .map(|r| {
            next += r.len();
            next - r.len()..next
        })
        .collect();
    Ok(b.read_rows(&logits, n_vocab, &parts)?)
}

/// Every token's row of the residual stream through the output norm (llama.cpp's `result_norm`), per entry.
fn hidden<B>(
    b: &mut B,
    spec: &ArchSpec,
    w: &Weights<B>,
    steps: &[SeqStep<'_>],
    a: &Acts<B>,
) -> Result<Vec<Vec<f32>>, ModelError>
where
    B: Backend,
    ModelError: From<B::Error>,
{
    let d = spec.n_embd;
    let n: usize = steps.iter().map(|e| e.tokens.len()).sum();
    b.rms_norm(&a.x, &w.output_norm, Rows::new(d, n), spec.norm_eps, &a.xn);
    let all = b.read(&a.xn, n * d)?;
    let mut first = 0;
    let ranges: Vec<Range<usize>> = steps
        .iter()
        .map(|e| {
            first += e.tokens.len();
            first - e.tokens.len()..first
        })
        .collect();
    Ok(split_rows(all, &ranges, d))
}
