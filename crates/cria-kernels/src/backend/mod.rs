//! The op-level backend seam: the ops one decoder block needs, on buffers that live where the backend computes
//! (host memory for the CPU, device memory for a GPU), with a [`Backend::supports`] query so a model part a
//! device lacks is found at load and runs on the CPU instead.
//!
//! A [`Backend`] value is one *step* in flight: it records (GPU) or runs (CPU) ops in the order they are
//! called, over the step's activation buffers ([`Backend::buffer`]), the weights uploaded once at load
//! ([`Backend::Matrix`], [`Backend::Vector`]) and the step's KV caches (bound when the step is made). The
//! model crate writes the decoder block once against this trait; [`cpu::CpuBackend`] is the first
//! implementation (the kernels of this crate, bit for bit what the CPU runner always ran), `cria-gpu`'s is the
//! second.

pub mod cpu;
mod fused;

use crate::GgmlType;
use crate::ops::{KvView, QueryRow, RopeParams};

pub use fused::{FusedScratch, MAX_FUSED_TOKENS, matmul_fused, matmul_gated_fused};

/// The ops of [`Backend`], for [`Backend::supports`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// Embedding lookup from a weight matrix ([`Backend::get_rows`]); asked with the matrix's format.
    GetRows,
    /// Weight matrix × activations ([`Backend::matmul`]); asked with the matrix's format.
    MatMul,
    /// The per-expert matmul of a mixture of experts (llama.cpp's `mul_mat_id`): each used expert's tokens
    /// gathered ([`Backend::copy_rows`]) through one [`Backend::matmul`], its output rows scattered back,
    /// weighted ([`Backend::scale_rows`]) and summed per token ([`Backend::sum_groups`]); asked with the
    /// experts' format.
    MatMulId,
    /// Qwen2-MoE's sigmoid-gated shared expert ([`Backend::sigmoid_gate_add`]).
    SigmoidGate,
    RmsNorm,
    Rope,
    /// Storing K/V rows and attending over the KV cache.
    Attention,
    /// Gated activations (SwiGLU, GeGLU, gpt-oss's clamped SwiGLU).
    Activation,
    /// add, scale, soft-cap, bias broadcast.
    Elementwise,
    Copy,
    /// Reading a buffer back to the host mid-step (MoE routing, logits).
    Read,
}

/// A gated activation `out = act(gate) · up`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    SwiGlu,
    /// ggml's f16-rounded GELU.
    GeGlu,
    /// gpt-oss's clamped SwiGLU.
    SwiGluOai {
        alpha: f32,
        limit: f32,
    },
}

/// `n_rows` rows of `cols` values, back to back from a buffer's start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rows {
    pub cols: usize,
    pub n_rows: usize,
}

impl Rows {
    pub fn new(cols: usize, n_rows: usize) -> Rows {
        Rows { cols, n_rows }
    }

    /// Values covered.
    pub fn len(&self) -> usize {
        self.cols * self.n_rows
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One stacked token of a step: its sequence (index into the step's caches) and its position there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenPos {
    pub seq: usize,
    pub pos: usize,
}

/// Shape and scaling of [`Backend::attention`] (as [`crate::ops::AttentionParams`]), with the sinks on the
/// backend.
pub struct AttentionSpec<'a, V> {
    pub n_head: usize,
    pub n_kv_head: usize,
    pub head_dim: usize,
    pub scale: f32,
    pub softcap: Option<f32>,
    /// One sink logit per query head (gpt-oss).
    pub sinks: Option<&'a V>,
}

/// The KV caches of a CPU step's sequences, by their index in the step: each a flat cache, or a shared pool
/// through block tables (the model crate implements both).
pub trait KvCaches: Sync {
    fn store(&mut self, seq: usize, layer: usize, pos: usize, k: &[f32], v: &[f32]);
    fn view(&self, seq: usize, layer: usize) -> KvView<'_>;
}

/// One step of ops on a device. Shapes are the caller's contract (a mismatch is a bug and may panic, as
/// [`crate::ops`] does); what can fail on a device (allocation, read-back) returns [`Backend::Error`].
pub trait Backend {
    /// An activation buffer of f32s on the device.
    type Buf: Clone;
    /// A weight matrix on the device, uploaded once at load in the layout the backend's matmul reads.
    type Matrix;
    /// An f32 weight vector (norm weights, biases, sinks) on the device.
    type Vector;
    type Error;

    /// Whether the backend runs `op` on data of format `ty` (weights' format for the matmuls and get_rows,
    /// `F32` for the rest). Asked at load: a model that needs an op its device lacks runs on the CPU.
    fn supports(&self, op: Op, ty: GgmlType) -> bool;

    /// A buffer of `len` f32s for this step (contents unspecified until written).
    ///
    /// # Errors
    /// When the device cannot hold it.
    fn buffer(&mut self, len: usize) -> Result<Self::Buf, Self::Error>;

    /// `out[i] = W[ids[i]]`, dequantized.
    fn get_rows(&mut self, w: &Self::Matrix, ids: &[u32], out: &Self::Buf);

    /// `outs[m][t] = ws[m] · x[t]` for `n_tok` rows of `x`: several matrices that read the same input
    /// (Q, K, V; gate, up) in one call, so a backend can fuse them.
    fn matmul(&mut self, ws: &[&Self::Matrix], x: &Self::Buf, n_tok: usize, outs: &[&Self::Buf]);

    /// `out` = RMS norm of each row of `x` times `weight` (`out` may be `x`).
    fn rms_norm(
        &mut self,
        x: &Self::Buf,
        weight: &Self::Vector,
        rows: Rows,
        eps: f32,
        out: &Self::Buf,
    );

    /// `x[row] += bias` for every row.
    fn add_bias(&mut self, x: &Self::Buf, bias: &Self::Vector, rows: Rows);

    /// `x[i] += y[i]` for the first `rows.len()` values.
    fn add(&mut self, x: &Self::Buf, y: &Self::Buf, rows: Rows);

    /// `x[i] *= s`.
    fn scale(&mut self, x: &Self::Buf, rows: Rows, s: f32);

    /// `x[i] = cap · tanh(x[i] / cap)`.
    fn softcap(&mut self, x: &Self::Buf, rows: Rows, cap: f32);

    /// `out = act(gate) · up`, row by row.
    fn gated(
        &mut self,
        act: Activation,
        gate_up: (&Self::Buf, &Self::Buf),
        rows: Rows,
        out: &Self::Buf,
    );

    /// The feed-forward's two projections and its gated activation: `out[t] = act(gate · x[t]) · (up · x[t])`
    /// for `n_tok` rows of `x`, with `gate_up_out` the buffers the projections may be written to. By default
    /// two matmuls and [`Backend::gated`]; a backend with a fused kernel overrides it.
    fn matmul_gated(
        &mut self,
        act: Activation,
        (gate, up): (&Self::Matrix, &Self::Matrix),
        x: &Self::Buf,
        rows: Rows,
        (gate_out, up_out, out): (&Self::Buf, &Self::Buf, &Self::Buf),
    ) {
        self.matmul(&[gate, up], x, rows.n_rows, &[gate_out, up_out]);
        self.gated(act, (gate_out, up_out), rows, out);
    }

    /// Rotates row `t` of `x` (`n_heads` heads of `head_dim`) for `tokens[t]` = (position, its RoPE).
    fn rope(&mut self, x: &Self::Buf, tokens: &[(usize, &RopeParams)], heads: (usize, usize));

    /// Stores row `t` of `k` and `v` (`kv_dim` each) at `tokens[t]` in layer `layer` of its sequence's cache.
    fn kv_store(
        &mut self,
        layer: usize,
        tokens: &[TokenPos],
        kv: (&Self::Buf, &Self::Buf),
        kv_dim: usize,
    );

    /// Attention of query row `t` of `q` over `rows[t]`'s window of its sequence's layer-`layer` cache, into
    /// row `t` of `out`.
    fn attention(
        &mut self,
        layer: usize,
        rows: &[QueryRow],
        q: &Self::Buf,
        p: &AttentionSpec<'_, Self::Vector>,
        out: &Self::Buf,
    );

    /// Copies `n` values from `src` at `src_at` to `dst` at `dst_at`.
    fn copy(&mut self, src: (&Self::Buf, usize), dst: (&Self::Buf, usize), n: usize);

    /// Writes host values into the start of `x`, in order with the ops recorded before and after.
    fn write(&mut self, x: &Self::Buf, data: &[f32]);

    /// The first `n` values of `x`, on the host, after every op recorded so far.
    ///
    /// # Errors
    /// When the device cannot read it back.
    fn read(&mut self, x: &Self::Buf, n: usize) -> Result<Vec<f32>, Self::Error>;

    /// Rows of `width` values of `x` on the host, one `Vec` per range of rows (in order; the ranges need
    /// not touch), after every op recorded so far: what [`Self::read`] and a split give, without the copy of
    /// the whole that a host backend can skip (a serving step's logits: 8 × a vocabulary of rows).
    ///
    /// # Errors
    /// When the device cannot read it back.
    fn read_rows(
        &mut self,
        x: &Self::Buf,
        width: usize,
        ranges: &[std::ops::Range<usize>],
    ) -> Result<Vec<Vec<f32>>, Self::Error> {
        let end = ranges.iter().map(|r| r.end).max().unwrap_or(0);
        let all = self.read(x, end * width)?;
        Ok(ranges
            .iter()
            .map(|r| all[r.start * width..r.end * width].to_vec())
            .collect())
    }

    /// `dst[to] = src[from]` for each `(from, to)` in `moves`, rows of `cols` (an expert's tokens gathered,
    /// its output rows scattered to their choices).
    fn copy_rows(
        &mut self,
        src: &Self::Buf,
        moves: &[(usize, usize)],
        cols: usize,
        dst: &Self::Buf,
    );

    /// `x[t] *= weights[t]`, rows of `cols` (each choice's router weight).
    fn scale_rows(&mut self, x: &Self::Buf, weights: &[f32], cols: usize);

    /// `dst[t] = Σ_{j<k} src[t·k + j]`, in `j` order, for `rows.n_rows` rows of `rows.cols` (each token's
    /// choices summed).
    fn sum_groups(&mut self, src: &Self::Buf, k: usize, rows: Rows, dst: &Self::Buf);

    /// `x[t] += y[t] · sigmoid(g · inp[t])` per row (Qwen2-MoE's gated shared expert).
    fn sigmoid_gate_add(
        &mut self,
        x: &Self::Buf,
        y_inp: (&Self::Buf, &Self::Buf),
        g: &Self::Vector,
        rows: Rows,
    );
}
