//! The CPU backend: the kernels of this crate behind [`Backend`], exactly as the CPU runner called them
//! (the thread pool, the fused matmul over repacked or file-layout weights, per-row ops spread over the pool
//! for prefill-sized batches), so its results are bit for bit the same.
//!
//! Buffers are slots of a [`CpuScratch`] kept between steps: a step takes them in the order it asks, so the
//! same block asking the same way reuses the same memory.

use std::ops::Range;
use std::sync::Arc;

use super::{
    Activation, AttentionSpec, Backend, FusedScratch, KvCaches, Op, Rows, TokenPos, matmul_fused,
    matmul_gated_fused,
};
use crate::matmul::WeightRef;
use crate::ops::{self, AttentionParams, QueryRow, RopeParams};
use crate::packed::Layout;
use crate::pool::ThreadPool;
use crate::quant::dequantize_row;
use crate::{GgmlType, KernelError};

/// A weight matrix for the CPU: where its rows lie in the model's tensor data, or the copy repacked at load
/// into 8-row groups (which replaces the file's bytes for the matmul).
#[derive(Clone, Debug)]
pub struct CpuMatrix {
    pub ty: GgmlType,
    pub rows: usize,
    pub cols: usize,
    bytes: CpuBytes,
}

#[derive(Clone, Debug)]
enum CpuBytes {
    File(Range<usize>),
    Packed(Arc<Vec<u8>>),
}

impl CpuMatrix {
    /// Rows `bytes` of the model's tensor data, in the file's layout.
    pub fn in_file(ty: GgmlType, (rows, cols): (usize, usize), bytes: Range<usize>) -> CpuMatrix {
        CpuMatrix {
            ty,
            rows,
            cols,
            bytes: CpuBytes::File(bytes),
        }
    }

    /// A copy repacked into [`Layout::Groups8`].
    pub fn packed(ty: GgmlType, (rows, cols): (usize, usize), data: Arc<Vec<u8>>) -> CpuMatrix {
        CpuMatrix {
            ty,
            rows,
            cols,
            bytes: CpuBytes::Packed(data),
        }
    }

    /// The matrix as the matmul takes it, over the model's tensor data `data`.
    pub fn view<'a>(&'a self, data: &'a [u8]) -> WeightRef<'a> {
        let (data, layout) = match &self.bytes {
            CpuBytes::File(r) => (&data[r.clone()], Layout::Rows),
            CpuBytes::Packed(p) => (p.as_slice(), Layout::Groups8),
        };
        WeightRef {
            ty: self.ty,
            rows: self.rows,
            cols: self.cols,
            data,
            layout,
        }
    }
}

/// Activation buffers and matmul scratch, kept between steps.
#[derive(Default)]
pub struct CpuScratch {
    bufs: Vec<Vec<f32>>,
    used: usize,
    fused: FusedScratch,
}

/// A buffer of a CPU step: a slot of its [`CpuScratch`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuBuf(usize);

/// One step on the CPU: the pool, the model's tensor data the weights point into, the step's KV caches.
pub struct CpuBackend<'a> {
    pool: &'a ThreadPool,
    data: &'a [u8],
    kv: &'a mut (dyn KvCaches + 'a),
    s: &'a mut CpuScratch,
}

impl<'a> CpuBackend<'a> {
    /// A step over `data` (the tensor data [`CpuMatrix`] rows point into) and the caches `kv`.
    pub fn new(
        pool: &'a ThreadPool,
        data: &'a [u8],
        kv: &'a mut (dyn KvCaches + 'a),
        scratch: &'a mut CpuScratch,
    ) -> Self {
        scratch.used = 0;
        CpuBackend {
            pool,
            data,
            kv,
            s: scratch,
        }
    }

    fn take(&mut self, b: CpuBuf) -> Vec<f32> {
        std::mem::take(&mut self.s.bufs[b.0])
    }

    fn put(&mut self, b: CpuBuf, v: Vec<f32>) {
        self.s.bufs[b.0] = v;
    }

    /// `f(src, dst)` with `dst` taken out of the scratch for the call (`src` and `dst` must differ).
    fn with_dst(
        &mut self,
        src: CpuBuf,
        dst: CpuBuf,
        f: impl FnOnce(&ThreadPool, &[f32], &mut [f32]),
    ) {
        assert_ne!(src, dst, "cpu backend: an op's input is its output");
        let mut out = self.take(dst);
        f(self.pool, &self.s.bufs[src.0], &mut out);
        self.put(dst, out);
    }
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
        data.chunks_exact_mut(row_len.max(1))
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

/// `out = act(gate) · up` over one row.
pub fn gated_activation(act: Activation, gate: &[f32], up: &[f32], out: &mut [f32]) {
    match act {
        Activation::SwiGlu => ops::silu_mul(gate, up, out),
        Activation::GeGlu => ops::gelu_mul(gate, up, out),
        Activation::SwiGluOai { alpha, limit } => ops::swiglu_oai_mul(gate, up, alpha, limit, out),
    }
}

impl Backend for CpuBackend<'_> {
    type Buf = CpuBuf;
    type Matrix = CpuMatrix;
    type Vector = Vec<f32>;
    type Error = KernelError;

    fn supports(&self, _op: Op, _ty: GgmlType) -> bool {
        // Every format the loader accepts has CPU kernels; every op has a CPU body.
        true
    }

    fn buffer(&mut self, len: usize) -> Result<CpuBuf, KernelError> {
        if self.s.used == self.s.bufs.len() {
            self.s.bufs.push(Vec::new());
        }
        let id = self.s.used;
        self.s.bufs[id].resize(len, 0.0);
        self.s.used += 1;
        Ok(CpuBuf(id))
    }

    fn get_rows(&mut self, w: &CpuMatrix, ids: &[u32], out: &CpuBuf) {
        let view = w.view(self.data);
        let row_bytes = view.data.len() / w.rows.max(1);
        let mut o = self.take(*out);
        for (row, &id) in o.chunks_exact_mut(w.cols).zip(ids) {
            let at = id as usize * row_bytes;
            // The caller checked every id against the vocabulary, and the format at load.
            if let Some(src) = view.data.get(at..at + row_bytes) {
                let _ = dequantize_row(w.ty, src, row);
            }
        }
        self.put(*out, o);
    }

    fn matmul(&mut self, ws: &[&CpuMatrix], x: &CpuBuf, n_tok: usize, outs: &[&CpuBuf]) {
        let Some(first) = ws.first() else {
            return;
        };
        let mut taken: Vec<Vec<f32>> = outs.iter().map(|o| self.take(**o)).collect();
        let s = &mut *self.s;
        let views: Vec<WeightRef<'_>> = ws.iter().map(|w| w.view(self.data)).collect();
        let mut dst: Vec<&mut [f32]> = taken
            .iter_mut()
            .zip(&views)
            .map(|(v, w)| &mut v[..n_tok * w.rows])
            .collect();
        let x = &s.bufs[x.0][..n_tok * first.cols];
        matmul_fused(self.pool, &views, x, n_tok, &mut dst, &mut s.fused);
        for (o, v) in outs.iter().zip(taken) {
            self.put(**o, v);
        }
    }

    fn rms_norm(&mut self, x: &CpuBuf, weight: &Vec<f32>, rows: Rows, eps: f32, out: &CpuBuf) {
        let (d, n) = (rows.cols, rows.len());
        if x == out {
            let buf = &mut self.s.bufs[x.0][..n];
            for_rows(self.pool, buf, d, &|_, r| {
                ops::rms_norm_inplace(r, weight, eps)
            });
            return;
        }
        self.with_dst(*x, *out, |pool, x, out| {
            for_rows(pool, &mut out[..n], d, &|i, dst| {
                ops::rms_norm(&x[i * d..(i + 1) * d], weight, eps, dst)
            });
        });
    }

    fn add_bias(&mut self, x: &CpuBuf, bias: &Vec<f32>, rows: Rows) {
        self.s.bufs[x.0][..rows.len()]
            .chunks_exact_mut(rows.cols)
            .for_each(|r| ops::add_inplace(r, bias));
    }

    fn add(&mut self, x: &CpuBuf, y: &CpuBuf, rows: Rows) {
        let (d, n) = (rows.cols, rows.len());
        self.with_dst(*y, *x, |pool, y, x| {
            for_rows(pool, &mut x[..n], d, &|i, r| {
                ops::add_inplace(r, &y[i * d..(i + 1) * d])
            });
        });
    }

    fn scale(&mut self, x: &CpuBuf, rows: Rows, s: f32) {
        let buf = &mut self.s.bufs[x.0][..rows.len()];
        for_rows(self.pool, buf, rows.cols, &|_, r| ops::scale_inplace(r, s));
    }

    fn softcap(&mut self, x: &CpuBuf, rows: Rows, cap: f32) {
        let buf = &mut self.s.bufs[x.0][..rows.len()];
        buf.iter_mut().for_each(|l| *l = cap * (*l / cap).tanh());
    }

    fn gated(&mut self, act: Activation, (gate, up): (&CpuBuf, &CpuBuf), rows: Rows, out: &CpuBuf) {
        let (ff, n) = (rows.cols, rows.len());
        let mut o = self.take(*out);
        let (g, u) = (&self.s.bufs[gate.0], &self.s.bufs[up.0]);
        for_rows(self.pool, &mut o[..n], ff, &|t, row| {
            let r = t * ff..(t + 1) * ff;
            gated_activation(act, &g[r.clone()], &u[r], row)
        });
        self.put(*out, o);
    }

    fn matmul_gated(
        &mut self,
        act: Activation,
        (gate, up): (&CpuMatrix, &CpuMatrix),
        x: &CpuBuf,
        rows: Rows,
        (gate_out, up_out, out): (&CpuBuf, &CpuBuf, &CpuBuf),
    ) {
        assert_ne!(x, out, "cpu backend: matmul_gated's input is its output");
        let n_tok = rows.n_rows;
        let mut o = self.take(*out);
        let (g, u) = (gate.view(self.data), up.view(self.data));
        let s = &mut *self.s;
        let xs = &s.bufs[x.0][..n_tok * g.cols];
        let fused = matmul_gated_fused(
            self.pool,
            (&g, &u),
            xs,
            n_tok,
            act,
            &mut o[..rows.len()],
            &mut s.fused,
        );
        self.put(*out, o);
        if !fused {
            self.matmul(&[gate, up], x, n_tok, &[gate_out, up_out]);
            self.gated(act, (gate_out, up_out), rows, out);
        }
    }

    fn rope(
        &mut self,
        x: &CpuBuf,
        tokens: &[(usize, &RopeParams)],
        (n_heads, head_dim): (usize, usize),
    ) {
        let dim = n_heads * head_dim;
        let buf = &mut self.s.bufs[x.0][..tokens.len() * dim];
        for_rows(self.pool, buf, dim, &|t, row| {
            let (pos, p) = tokens[t];
            ops::rope_inplace(row, n_heads, head_dim, pos, p)
        });
    }

    fn kv_store(
        &mut self,
        layer: usize,
        tokens: &[TokenPos],
        (k, v): (&CpuBuf, &CpuBuf),
        kvd: usize,
    ) {
        let (k, v) = (&self.s.bufs[k.0], &self.s.bufs[v.0]);
        for (t, tok) in tokens.iter().enumerate() {
            let r = t * kvd..(t + 1) * kvd;
            self.kv.store(tok.seq, layer, tok.pos, &k[r.clone()], &v[r]);
        }
    }

    fn attention(
        &mut self,
        layer: usize,
        rows: &[QueryRow],
        q: &CpuBuf,
        p: &AttentionSpec<'_, Vec<f32>>,
        out: &CpuBuf,
    ) {
        let params = AttentionParams {
            n_head: p.n_head,
            n_kv_head: p.n_kv_head,
            head_dim: p.head_dim,
            scale: p.scale,
            softcap: p.softcap,
            sinks: p.sinks.map(Vec::as_slice),
        };
        let n = rows.len() * p.n_head * p.head_dim;
        let mut o = self.take(*out);
        let kv = &*self.kv;
        let view = |seq: usize| kv.view(seq, layer);
        let q = &self.s.bufs[q.0][..n];
        ops::attention_rows(self.pool, q, rows, &view, &params, &mut o[..n]);
        self.put(*out, o);
    }

    fn copy(&mut self, (src, src_at): (&CpuBuf, usize), (dst, dst_at): (&CpuBuf, usize), n: usize) {
        if src == dst {
            self.s.bufs[src.0].copy_within(src_at..src_at + n, dst_at);
            return;
        }
        self.with_dst(*src, *dst, |_, s, d| {
            d[dst_at..dst_at + n].copy_from_slice(&s[src_at..src_at + n])
        });
    }

    fn write(&mut self, x: &CpuBuf, data: &[f32]) {
        self.s.bufs[x.0][..data.len()].copy_from_slice(data);
    }

    fn read(&mut self, x: &CpuBuf, n: usize) -> Result<Vec<f32>, KernelError> {
        Ok(self.s.bufs[x.0][..n].to_vec())
    }

    fn read_rows(
        &mut self,
        x: &CpuBuf,
        width: usize,
        ranges: &[std::ops::Range<usize>],
    ) -> Result<Vec<Vec<f32>>, KernelError> {
        let buf = &self.s.bufs[x.0];
        Ok(ranges
            .iter()
            .map(|r| buf[r.start * width..r.end * width].to_vec())
            .collect())
    }

    fn copy_rows(&mut self, src: &CpuBuf, moves: &[(usize, usize)], cols: usize, dst: &CpuBuf) {
        self.with_dst(*src, *dst, |_, s, d| {
            for &(from, to) in moves {
                d[to * cols..(to + 1) * cols].copy_from_slice(&s[from * cols..(from + 1) * cols]);
            }
        });
    }

    fn scale_rows(&mut self, x: &CpuBuf, weights: &[f32], cols: usize) {
        let rows = self.s.bufs[x.0].chunks_exact_mut(cols);
        for (row, &w) in rows.zip(weights) {
            ops::scale_inplace(row, w);
        }
    }

    fn sum_groups(&mut self, src: &CpuBuf, k: usize, rows: Rows, dst: &CpuBuf) {
        let d = rows.cols;
        self.with_dst(*src, *dst, |_, s, out| {
            for (t, row) in out[..rows.len()].chunks_exact_mut(d).enumerate() {
                row.fill(0.0);
                for c in t * k..(t + 1) * k {
                    ops::add_inplace(row, &s[c * d..(c + 1) * d]);
                }
            }
        });
    }

    fn sigmoid_gate_add(
        &mut self,
        x: &CpuBuf,
        (y, inp): (&CpuBuf, &CpuBuf),
        g: &Vec<f32>,
        rows: Rows,
    ) {
        let d = rows.cols;
        let mut out = self.take(*x);
        let (y, inp) = (&self.s.bufs[y.0], &self.s.bufs[inp.0]);
        for ((row, y), x) in out[..rows.len()]
            .chunks_exact_mut(d)
            .zip(y.chunks_exact(d))
            .zip(inp.chunks_exact(d))
        {
            let logit: f32 = x.iter().zip(g).map(|(a, b)| a * b).sum();
            let gate = 1.0 / (1.0 + (-logit).exp());
            row.iter_mut().zip(y).for_each(|(o, v)| *o += v * gate);
        }
        self.put(*x, out);
    }
}
