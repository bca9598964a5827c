//! The forward pass on a GPU: the same decoder block as [`crate::Runner`], driven by the same [`ArchSpec`],
//! with each op recorded into one command encoder per step ([`cria_gpu::Step`]) on weights uploaded once and a
//! KV cache that lives on the device ([`GpuKv`]).
//!
//! The block's structure mirrors the CPU runner's `attention_block` / `ffn_block` step for step (norms,
//! biases, QK-norm, RoPE with the CPU's angles, sliding windows, soft-caps, sinks, post-norms, residual
//! scale), so an architecture described by its `ArchSpec` runs on both; what has no GPU kernel yet
//! (mixture-of-experts layers, IQ formats) is refused at load with [`ModelError::NoGpuPath`] or
//! [`ModelError::Gpu`], and the caller stays on the CPU.

mod weights;

use cria_gpu::{AdapterSummary, AttentionRow, Gpu, GpuAttention, GpuBuffer, GpuRope, Step};
use cria_kernels::ops::QueryRow;

use crate::ModelError;
use crate::model::Model;
use crate::runner::Logits;
use crate::spec::{ArchSpec, FfnKind, QkNorm, SWIGLU_OAI_ALPHA, SWIGLU_OAI_LIMIT};
use weights::{GpuLayer, GpuWeights};

/// One sequence's KV cache on the device: per layer, K and V rows of `kv_dim` f16 values.
pub struct GpuKv {
    k: Vec<GpuBuffer>,
    v: Vec<GpuBuffer>,
    len: usize,
    capacity: usize,
}

impl GpuKv {
    /// Positions stored.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Positions the cache can hold.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Forgets the positions from `n` on (the next step writes over them).
    pub fn truncate(&mut self, n: usize) {
        self.len = self.len.min(n);
    }
}

/// One sequence's part of a GPU step (as [`crate::SeqBatch`] on the CPU).
pub struct GpuSeq<'a> {
    pub cache: &'a mut GpuKv,
    pub tokens: &'a [u32],
    pub logits: Logits,
}

/// Runs a model on a GPU: the device, and the model's weights on it.
pub struct GpuRunner {
    gpu: Gpu,
    weights: GpuWeights,
}

/// A step's activations on the device.
struct Acts {
    x: GpuBuffer,
    xn: GpuBuffer,
    q: GpuBuffer,
    k: GpuBuffer,
    v: GpuBuffer,
    attn: GpuBuffer,
    proj: GpuBuffer,
    gate: GpuBuffer,
    up: GpuBuffer,
    act: GpuBuffer,
}

impl Acts {
    fn new(gpu: &Gpu, spec: &ArchSpec, n: usize) -> Result<Acts, ModelError> {
        let (d, qd, kvd, ff) = (spec.n_embd, spec.q_dim(), spec.kv_dim(), spec.n_ff);
        let z = |len: usize| gpu.zeros(n * len);
        Ok(Acts {
            x: z(d)?,
            xn: z(d)?,
            q: z(qd)?,
            k: z(kvd)?,
            v: z(kvd)?,
            attn: z(qd)?,
            proj: z(d)?,
            gate: z(ff)?,
            up: z(ff)?,
            act: z(ff)?,
        })
    }
}

/// Where each stacked token came from: its sequence, its position, its row among the step's tokens.
#[derive(Clone, Copy)]
struct Slot {
    seq: usize,
    pos: usize,
}

impl GpuRunner {
    /// Uploads `model`'s weights to `gpu`.
    ///
    /// # Errors
    /// [`ModelError::NoGpuPath`] or [`ModelError::Gpu`] where a part of the model has no GPU kernels or does
    /// not fit the device.
    pub fn new(model: &Model, gpu: Gpu) -> Result<GpuRunner, ModelError> {
        if !model.spec().kv_dim().is_multiple_of(2) {
            return Err(ModelError::NoGpuPath("an odd KV width".into()));
        }
        let weights = weights::upload(&gpu, model)?;
        Ok(GpuRunner { gpu, weights })
    }

    /// The adapter the runner uses.
    pub fn device(&self) -> &AdapterSummary {
        self.gpu.summary()
    }

    /// A device KV cache for one sequence of up to `max_tokens` positions.
    ///
    /// # Errors
    /// [`ModelError::Gpu`] when a layer's cache exceeds the device's limits.
    pub fn new_cache(&self, model: &Model, max_tokens: usize) -> Result<GpuKv, ModelError> {
        let spec = model.spec();
        let words = max_tokens.max(1) * spec.kv_dim() / 2;
        let layer = || self.gpu.zeros(words);
        let (k, v) = (0..spec.n_layer)
            .map(|_| Ok((layer()?, layer()?)))
            .collect::<Result<Vec<_>, ModelError>>()?
            .into_iter()
            .unzip();
        Ok(GpuKv {
            k,
            v,
            len: 0,
            capacity: max_tokens,
        })
    }

    /// Appends each entry's tokens to its cache and returns, per entry, the logits rows it asked for
    /// (`n_vocab` floats a row), as [`crate::Runner::forward`] does.
    ///
    /// # Errors
    /// [`ModelError::ContextFull`], [`ModelError::TokenOutOfRange`], or a device error.
    pub fn forward(
        &mut self,
        model: &Model,
        batch: &mut [GpuSeq<'_>],
    ) -> Result<Vec<Vec<f32>>, ModelError> {
        let slots = plan(model, batch)?;
        if slots.is_empty() {
            return Ok(batch.iter().map(|_| Vec::new()).collect());
        }
        let spec = model.spec();
        let acts = Acts::new(&self.gpu, spec, slots.len())?;
        let mut step = self.gpu.step();
        let ids: Vec<u32> = batch
            .iter()
            .flat_map(|e| e.tokens.iter().copied())
            .collect();
        step.get_rows(&self.weights.token_embd, &ids, &acts.x);
        if let Some(scale) = spec.embed_scale {
            step.scale(&acts.x, ids.len() * spec.n_embd, scale);
        }
        for (il, lw) in self.weights.layers.iter().enumerate() {
            attention_block(&mut step, model, il, lw, batch, &slots, &acts);
            ffn_block(&mut step, spec, lw, slots.len(), &acts);
        }
        let wanted = wanted_rows(batch);
        let n_rows: usize = wanted.iter().map(|r| r.len()).sum();
        let logits = self.logits(&mut step, spec, &acts, &wanted, n_rows)?;
        step.submit();
        let all = self.gpu.read_f32(&logits, n_rows * spec.n_vocab)?;
        for e in batch.iter_mut() {
            e.cache.len += e.tokens.len();
        }
        let mut next = 0;
        Ok(wanted
            .iter()
            .map(|r| {
                let part = all[next * spec.n_vocab..(next + r.len()) * spec.n_vocab].to_vec();
                next += r.len();
                part
            })
            .collect())
    }

    /// Output norm and matrix for the wanted rows, all in one matmul; logit scale and soft-cap.
    fn logits(
        &self,
        step: &mut Step<'_>,
        spec: &ArchSpec,
        acts: &Acts,
        wanted: &[std::ops::Range<usize>],
        n_rows: usize,
    ) -> Result<GpuBuffer, ModelError> {
        let d = spec.n_embd;
        for (dst, row) in wanted.iter().flat_map(|r| r.clone()).enumerate() {
            step.copy((&acts.x, row * d), (&acts.xn, dst * d), d);
        }
        let w = &self.weights;
        step.rms_norm(
            &acts.xn,
            Some(&w.output_norm),
            (d, n_rows),
            spec.norm_eps,
            &acts.xn,
        );
        let logits = self.gpu.zeros(n_rows * spec.n_vocab)?;
        step.matmul(&w.output, &acts.xn, n_rows, &logits);
        let n = n_rows * spec.n_vocab;
        if let Some(scale) = spec.logit_scale {
            step.scale(&logits, n, 1.0 / scale);
        }
        if let Some(cap) = spec.final_logit_softcap {
            step.softcap(&logits, n, cap);
        }
        Ok(logits)
    }
}

/// Checks the batch (context room, token ids) and lists every token's sequence and position.
fn plan(model: &Model, batch: &[GpuSeq<'_>]) -> Result<Vec<Slot>, ModelError> {
    let n_vocab = model.n_vocab();
    let mut slots = Vec::new();
    for (seq, e) in batch.iter().enumerate() {
        let needed = e.cache.len + e.tokens.len();
        if needed > e.cache.capacity {
            let capacity = e.cache.capacity;
            return Err(ModelError::ContextFull { needed, capacity });
        }
        if let Some(&id) = e.tokens.iter().find(|&&id| id as usize >= n_vocab) {
            return Err(ModelError::TokenOutOfRange { id, n_vocab });
        }
        let start = e.cache.len;
        slots.extend((0..e.tokens.len()).map(|i| Slot {
            seq,
            pos: start + i,
        }));
    }
    Ok(slots)
}

/// Each entry's rows (in the step's stacked order) whose logits it wants.
fn wanted_rows(batch: &[GpuSeq<'_>]) -> Vec<std::ops::Range<usize>> {
    let mut first = 0;
    batch
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

/// `out` = RMS norm of each row of `x` with `weight`, or a copy of `x` without one (post-norm-only blocks).
fn norm_rows(
    step: &mut Step<'_>,
    x: &GpuBuffer,
    weight: Option<&GpuBuffer>,
    spec: &ArchSpec,
    n_tok: usize,
    out: &GpuBuffer,
) {
    let d = spec.n_embd;
    match weight {
        Some(w) => step.rms_norm(x, Some(w), (d, n_tok), spec.norm_eps, out),
        None => step.copy((x, 0), (out, 0), n_tok * d),
    }
}

/// QK-norm of `n_tok` rows of `heads` heads in place: over the whole row (OLMo 2) or each head.
fn qk_norm(
    step: &mut Step<'_>,
    buf: &GpuBuffer,
    w: Option<&GpuBuffer>,
    spec: &ArchSpec,
    heads: usize,
    n_tok: usize,
) {
    let hd = spec.head_dim;
    match (w, spec.qk_norm) {
        (Some(w), QkNorm::Full) => {
            step.rms_norm(buf, Some(w), (heads * hd, n_tok), spec.norm_eps, buf)
        }
        (Some(w), _) => step.rms_norm(buf, Some(w), (hd, heads * n_tok), spec.norm_eps, buf),
        (None, _) => {}
    }
}

/// `x += norm(y) · residual_scale`: the post-norm and the multiplier where the architecture has them.
fn residual_add(
    step: &mut Step<'_>,
    acts: &Acts,
    post: Option<&GpuBuffer>,
    spec: &ArchSpec,
    n_tok: usize,
) {
    let (d, y) = (spec.n_embd, &acts.proj);
    if let Some(w) = post {
        step.rms_norm(y, Some(w), (d, n_tok), spec.norm_eps, y);
    }
    if let Some(scale) = spec.residual_scale {
        step.scale(y, n_tok * d, scale);
    }
    step.add(&acts.x, y, n_tok * d, n_tok * d);
}

fn attention_block(
    step: &mut Step<'_>,
    model: &Model,
    il: usize,
    lw: &GpuLayer,
    batch: &[GpuSeq<'_>],
    slots: &[Slot],
    acts: &Acts,
) {
    let spec = model.spec();
    let n_tok = slots.len();
    let (qd, kvd) = (spec.q_dim(), spec.kv_dim());
    norm_rows(step, &acts.x, lw.attn_norm.as_ref(), spec, n_tok, &acts.xn);
    let projections = [
        (&lw.wq, &acts.q, &lw.q_bias, qd),
        (&lw.wk, &acts.k, &lw.k_bias, kvd),
        (&lw.wv, &acts.v, &lw.v_bias, kvd),
    ];
    for (w, out, bias, width) in projections {
        step.matmul(w, &acts.xn, n_tok, out);
        if let Some(b) = bias {
            step.add(out, b, n_tok * width, width);
        }
    }
    qk_norm(step, &acts.q, lw.q_norm.as_ref(), spec, spec.n_head, n_tok);
    qk_norm(
        step,
        &acts.k,
        lw.k_norm.as_ref(),
        spec,
        spec.n_head_kv,
        n_tok,
    );
    // Each sequence's RoPE (LongRoPE picks its factors by the sequence's context), per token.
    let ropes: Option<Vec<_>> = slots
        .iter()
        .map(|s| {
            model
                .layer_rope(il, batch[s.seq].cache.capacity)
                .map(|r| (s.pos, r))
        })
        .collect();
    if let Some(tokens) = ropes {
        let hd = spec.head_dim;
        step.rope(
            &acts.q,
            &tokens,
            &GpuRope {
                n_heads: spec.n_head,
                head_dim: hd,
            },
        );
        step.rope(
            &acts.k,
            &tokens,
            &GpuRope {
                n_heads: spec.n_head_kv,
                head_dim: hd,
            },
        );
    }
    let params = GpuAttention {
        n_head: spec.n_head,
        n_kv_head: spec.n_head_kv,
        head_dim: spec.head_dim,
        scale: spec.attn_scale,
        softcap: spec.attn_softcap,
        sinks: lw.attn_sinks.as_ref(),
    };
    let window = spec.layer_attention(il).window;
    let mut row0 = 0;
    for e in batch {
        let start = e.cache.len;
        let positions = start..start + e.tokens.len();
        let cache_rows: Vec<u32> = positions.clone().map(|p| p as u32).collect();
        step.kv_store((&acts.k, row0), &e.cache.k[il], &cache_rows, kvd);
        step.kv_store((&acts.v, row0), &e.cache.v[il], &cache_rows, kvd);
        let rows: Vec<AttentionRow> = positions
            .map(|pos| AttentionRow {
                kv_base: 0,
                window: QueryRow::causal(0, pos, window).window,
            })
            .collect();
        let caches = (&e.cache.k[il], &e.cache.v[il]);
        step.attention((&acts.q, row0), caches, &rows, &params, &acts.attn);
        row0 += e.tokens.len();
    }
    step.matmul(&lw.wo, &acts.attn, n_tok, &acts.proj);
    if let Some(b) = &lw.o_bias {
        step.add(&acts.proj, b, n_tok * spec.n_embd, spec.n_embd);
    }
    residual_add(step, acts, lw.post_attn_norm.as_ref(), spec, n_tok);
}

fn ffn_block(step: &mut Step<'_>, spec: &ArchSpec, lw: &GpuLayer, n_tok: usize, acts: &Acts) {
    norm_rows(step, &acts.x, lw.ffn_norm.as_ref(), spec, n_tok, &acts.xn);
    step.matmul(&lw.gate, &acts.xn, n_tok, &acts.gate);
    step.matmul(&lw.up, &acts.xn, n_tok, &acts.up);
    let n = n_tok * spec.n_ff;
    match spec.ffn {
        FfnKind::SwiGlu => step.silu_mul(&acts.act, &acts.gate, &acts.up, n),
        FfnKind::GeGlu => step.gelu_mul(&acts.act, &acts.gate, &acts.up, n),
        FfnKind::SwiGluOai => step.swiglu_oai_mul(
            &acts.act,
            &acts.gate,
            &acts.up,
            n,
            SWIGLU_OAI_ALPHA,
            SWIGLU_OAI_LIMIT,
        ),
    }
    step.matmul(&lw.down, &acts.act, n_tok, &acts.proj);
    residual_add(step, acts, lw.post_ffn_norm.as_ref(), spec, n_tok);
}
