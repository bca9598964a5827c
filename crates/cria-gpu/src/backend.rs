//! `cria_kernels::backend::Backend` on the GPU: each op recorded into the step's command encoder ([`Step`]),
//! on weights uploaded once ([`GpuMatrix`], [`GpuBuffer`]) and per-sequence KV caches on the device
//! ([`GpuKv`]). Reading a buffer back submits what was recorded and starts a new encoder.

use cria_gguf::GgmlType;
use cria_kernels::backend::{Activation, AttentionSpec, Backend, Op, Rows, TokenPos};
use cria_kernels::ops::{QueryRow, RopeParams};

use crate::{
    AttentionRow, GatedAct, Gpu, GpuAttention, GpuBuffer, GpuError, GpuKv, GpuMatrix, GpuRope, Step,
};

/// One step on a GPU over the caches of its sequences (by their index in the step).
pub struct GpuBackend<'a> {
    gpu: &'a Gpu,
    step: Step<'a>,
    caches: Vec<&'a mut GpuKv>,
    /// The first error of an op that cannot fail at record time on the CPU (an allocation inside a
    /// composed op), returned by the next [`Backend::read`].
    failed: Option<GpuError>,
}

impl<'a> GpuBackend<'a> {
    pub fn new(gpu: &'a Gpu, caches: Vec<&'a mut GpuKv>) -> Self {
        GpuBackend {
            gpu,
            step: gpu.step(),
            caches,
            failed: None,
        }
    }

    /// Submits what is recorded (a step that ends without a read).
    pub fn submit(self) {
        self.step.submit();
    }

    fn fail(&mut self, e: GpuError) {
        self.failed.get_or_insert(e);
    }

    /// Maximal runs of consecutive tokens of one sequence: `(sequence, first index, end index)`.
    fn runs(seqs: impl Iterator<Item = usize>) -> Vec<(usize, usize, usize)> {
        let mut runs: Vec<(usize, usize, usize)> = Vec::new();
        for (i, seq) in seqs.enumerate() {
            match runs.last_mut() {
                Some(r) if r.0 == seq && r.2 == i => r.2 = i + 1,
                _ => runs.push((seq, i, i + 1)),
            }
        }
        runs
    }
}

impl Backend for GpuBackend<'_> {
    type Buf = GpuBuffer;
    type Matrix = GpuMatrix;
    type Vector = GpuBuffer;
    type Error = GpuError;

    fn supports(&self, op: Op, ty: GgmlType) -> bool {
        match op {
            Op::MatMul | Op::GetRows | Op::MatMulId => crate::supports_format(ty),
            Op::SigmoidGate => false,
            _ => ty == GgmlType::F32,
        }
    }

    fn buffer(&mut self, len: usize) -> Result<GpuBuffer, GpuError> {
        self.gpu.zeros(len)
    }

    fn get_rows(&mut self, w: &GpuMatrix, ids: &[u32], out: &GpuBuffer) {
        self.step.get_rows(w, ids, out);
    }

    fn matmul(&mut self, ws: &[&GpuMatrix], x: &GpuBuffer, n_tok: usize, outs: &[&GpuBuffer]) {
        for (w, out) in ws.iter().zip(outs) {
            self.step.matmul(w, x, n_tok, out);
        }
    }

    fn rms_norm(&mut self, x: &GpuBuffer, w: &GpuBuffer, rows: Rows, eps: f32, out: &GpuBuffer) {
        self.step
            .rms_norm(x, Some(w), (rows.cols, rows.n_rows), eps, out);
    }

    fn add_bias(&mut self, x: &GpuBuffer, bias: &GpuBuffer, rows: Rows) {
        self.step.add(x, bias, rows.len(), rows.cols);
    }

    fn add(&mut self, x: &GpuBuffer, y: &GpuBuffer, rows: Rows) {
        self.step.add(x, y, rows.len(), rows.len());
    }

    fn scale(&mut self, x: &GpuBuffer, rows: Rows, s: f32) {
        self.step.scale(x, rows.len(), s);
    }

    fn softcap(&mut self, x: &GpuBuffer, rows: Rows, cap: f32) {
        self.step.softcap(x, rows.len(), cap);
    }

    fn gated(
        &mut self,
        act: Activation,
        (gate, up): (&GpuBuffer, &GpuBuffer),
        rows: Rows,
        out: &GpuBuffer,
    ) {
        let n = rows.len();
        match act {
            Activation::SwiGlu => self.step.silu_mul(out, gate, up, n),
            Activation::GeGlu => self.step.gelu_mul(out, gate, up, n),
            Activation::SwiGluOai { alpha, limit } => {
                self.step.swiglu_oai_mul(out, gate, up, n, alpha, limit)
            }
        }
    }

    fn matmul_gated(
        &mut self,
        act: Activation,
        (gate, up): (&GpuMatrix, &GpuMatrix),
        x: &GpuBuffer,
        rows: Rows,
        (gate_out, up_out, out): (&GpuBuffer, &GpuBuffer, &GpuBuffer),
    ) {
        let fused = match act {
            Activation::SwiGlu => GatedAct::Silu,
            Activation::GeGlu => GatedAct::Gelu,
            // gpt-oss's clamped SwiGLU has no fused kernel.
            Activation::SwiGluOai { .. } => {
                self.matmul(&[gate, up], x, rows.n_rows, &[gate_out, up_out]);
                return self.gated(act, (gate_out, up_out), rows, out);
            }
        };
        self.step
            .matmul_gated((gate, up), x, rows.n_rows, fused, out);
    }

    fn rope(
        &mut self,
        x: &GpuBuffer,
        tokens: &[(usize, &RopeParams)],
        (n_heads, head_dim): (usize, usize),
    ) {
        self.step.rope(x, tokens, &GpuRope { n_heads, head_dim });
    }

    fn kv_store(
        &mut self,
        layer: usize,
        tokens: &[TokenPos],
        (k, v): (&GpuBuffer, &GpuBuffer),
        kvd: usize,
    ) {
        for (seq, lo, hi) in Self::runs(tokens.iter().map(|t| t.seq)) {
            let rows: Vec<u32> = tokens[lo..hi].iter().map(|t| t.pos as u32).collect();
            let cache = &*self.caches[seq];
            self.step.kv_store((k, lo), &cache.k[layer], &rows, kvd);
            self.step.kv_store((v, lo), &cache.v[layer], &rows, kvd);
        }
    }

    fn attention(
        &mut self,
        layer: usize,
        rows: &[QueryRow],
        q: &GpuBuffer,
        p: &AttentionSpec<'_, GpuBuffer>,
        out: &GpuBuffer,
    ) {
        let params = GpuAttention {
            n_head: p.n_head,
            n_kv_head: p.n_kv_head,
            head_dim: p.head_dim,
            scale: p.scale,
            softcap: p.softcap,
            sinks: p.sinks,
        };
        for (seq, lo, hi) in Self::runs(rows.iter().map(|r| r.seq)) {
            let windows: Vec<AttentionRow> = rows[lo..hi]
                .iter()
                .map(|r| AttentionRow {
                    kv_base: 0,
                    window: r.window.clone(),
                })
                .collect();
            let cache = &*self.caches[seq];
            let kv = (&cache.k[layer], &cache.v[layer]);
            self.step.attention((q, lo), kv, &windows, &params, out);
        }
    }

    fn copy(&mut self, src: (&GpuBuffer, usize), dst: (&GpuBuffer, usize), n: usize) {
        self.step.copy(src, dst, n);
    }

    fn write(&mut self, x: &GpuBuffer, data: &[f32]) {
        // Through a copy recorded in the step (a queue write would land before ops recorded earlier).
        match self.gpu.upload_f32(data) {
            Ok(src) => self.step.copy((&src, 0), (x, 0), data.len()),
            Err(e) => self.fail(e),
        }
    }

    fn read(&mut self, x: &GpuBuffer, n: usize) -> Result<Vec<f32>, GpuError> {
        std::mem::replace(&mut self.step, self.gpu.step()).submit();
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        self.gpu.read_f32(x, n)
    }

    fn copy_rows(
        &mut self,
        src: &GpuBuffer,
        moves: &[(usize, usize)],
        cols: usize,
        dst: &GpuBuffer,
    ) {
        for &(from, to) in moves {
            self.step.copy((src, from * cols), (dst, to * cols), cols);
        }
    }

    fn scale_rows(&mut self, x: &GpuBuffer, weights: &[f32], cols: usize) {
        // Each row's weight spread over its values, one element-wise multiply.
        let spread: Vec<f32> = weights
            .iter()
            .flat_map(|&w| std::iter::repeat_n(w, cols))
            .collect();
        match self.gpu.upload_f32(&spread) {
            Ok(w) => self.step.mul(x, &w, spread.len(), spread.len()),
            Err(e) => self.fail(e),
        }
    }

    fn sum_groups(&mut self, src: &GpuBuffer, k: usize, rows: Rows, dst: &GpuBuffer) {
        let (d, n) = (rows.cols, rows.n_rows);
        let tmp = match self.gpu.zeros(rows.len()) {
            Ok(t) => t,
            Err(e) => return self.fail(e),
        };
        for j in 0..k {
            let into = if j == 0 { dst } else { &tmp };
            for t in 0..n {
                self.step.copy((src, (t * k + j) * d), (into, t * d), d);
            }
            if j > 0 {
                self.step.add(dst, &tmp, rows.len(), rows.len());
            }
        }
    }

    fn sigmoid_gate_add(
        &mut self,
        _x: &GpuBuffer,
        _y_inp: (&GpuBuffer, &GpuBuffer),
        _g: &GpuBuffer,
        _rows: Rows,
    ) {
        self.fail(GpuError::UnsupportedOp("sigmoid-gated shared expert"));
    }
}
