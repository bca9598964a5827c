//! One step's ops, recorded into one command encoder and submitted together. Small per-call inputs (token ids,
//! positions' angles, attention windows, kernel parameters) travel as small buffers made at record time.

use std::ops::Range;

use cria_kernels::ops::{RopeParams, RopeStyle, rope_cos_sin};

use crate::gpu::{Gpu, GpuBuffer, GpuMatrix};
use crate::kernels;

/// Groups of a dispatch's first dimension (the rest goes into the second): WebGPU's per-dimension limit.
const MAX_GROUPS_X: u32 = 65_535;
/// Threads per workgroup of the element-wise kernels.
const WG: usize = 64;
/// Weight rows per matmul workgroup (`RPW` in matmul.wgsl).
const MATMUL_ROWS: usize = 4;
/// Tokens per matmul workgroup (`TILE` in matmul.wgsl and matvec_q8.wgsl).
const MATMUL_TILE: usize = 8;
/// Words per quantized activation block of 32 (`quantize_q8.wgsl`: d, s, 8 words of packed i8).
const Q8_BLOCK_WORDS: usize = 10;
/// Up to this many tokens a matmul over a quantized format takes the int8 matrix-vector product (decode and
/// small batches); more take the tiled f32 matmul, which dequantizes each weight group once per 8 tokens.
pub const INT8_MAX_TOKENS: usize = MATMUL_TILE;
/// Keys per workgroup of the split attention (`CHUNK` in attention_split.wgsl).
const ATTENTION_CHUNK: usize = 256;
/// From this many keys in a query row's window on, [`Step::attention`] splits the keys over workgroups
/// (flash-decoding): one workgroup per head would leave most of a GPU idle during decode.
pub const ATTENTION_SPLIT_KEYS: usize = 1024;

/// One query row of [`Step::attention`]: where its sequence's cache rows start, and the positions it sees.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttentionRow {
    pub kv_base: u32,
    pub window: Range<usize>,
}

/// Shape and scaling of [`Step::attention`] (as `cria_kernels::ops::AttentionParams`).
pub struct GpuAttention<'a> {
    pub n_head: usize,
    pub n_kv_head: usize,
    pub head_dim: usize,
    pub scale: f32,
    pub softcap: Option<f32>,
    /// One sink logit per query head (gpt-oss), on the device.
    pub sinks: Option<&'a GpuBuffer>,
}

/// Heads of [`Step::rope`]: `n_heads` of `head_dim` per token row.
pub struct GpuRope {
    pub n_heads: usize,
    pub head_dim: usize,
}

/// The gated activation of [`Step::matmul_gated`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GatedAct {
    /// `silu(gate) · up` (SwiGLU).
    Silu,
    /// `gelu(gate) · up` (GeGLU, ggml's f16-rounded GELU).
    Gelu,
}

/// Element-wise op codes of `elementwise.wgsl`.
#[derive(Clone, Copy)]
enum Elementwise {
    Add = 0,
    Mul = 1,
    Scale = 2,
    SiluMul = 3,
    GeluMul = 4,
    SwigluOai = 5,
    Softcap = 6,
}

/// Activations quantized to 8 bits by the last matmul: reused while no other op has run since (the Q, K and V
/// projections, or gate and up, share one input).
struct QuantizedInput {
    x: wgpu::Buffer,
    n_tok: usize,
    cols: usize,
    mode: kernels::Q8Mode,
    xq: GpuBuffer,
}

/// A step being recorded.
pub struct Step<'g> {
    gpu: &'g Gpu,
    enc: wgpu::CommandEncoder,
    quantized: Option<QuantizedInput>,
    /// Pooled buffers the recorded work uses: given back to the pool after the step is submitted.
    held: Vec<GpuBuffer>,
}

fn grid(groups: usize) -> (u32, u32) {
    let g = u32::try_from(groups.max(1)).unwrap_or(u32::MAX);
    if g <= MAX_GROUPS_X {
        (g, 1)
    } else {
        (MAX_GROUPS_X, g.div_ceil(MAX_GROUPS_X))
    }
}

fn u(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl<'g> Step<'g> {
    pub(crate) fn new(gpu: &'g Gpu) -> Self {
        let enc = gpu.device.create_command_encoder(&Default::default());
        Step {
            gpu,
            enc,
            quantized: None,
            held: Vec::new(),
        }
    }

    /// Submits the step's work (results are read with [`Gpu::read_f32`], which waits for it).
    pub fn submit(self) {
        self.gpu.queue.submit([self.enc.finish()]);
    }

    /// A pooled buffer holding `words` (written when the step is submitted, before its work runs), held by
    /// the step until then.
    fn small(&mut self, words: &[u32], usage: wgpu::BufferUsages) -> wgpu::Buffer {
        let (buf, _) = self
            .gpu
            .pooled(usage | wgpu::BufferUsages::COPY_DST, words.len());
        if !words.is_empty() {
            self.gpu
                .queue
                .write_buffer(&buf.buf, 0, bytemuck::cast_slice(words));
        }
        let raw = buf.buf.clone();
        self.held.push(buf);
        raw
    }

    /// A pooled scratch buffer of `words` words, held by the step until it is submitted.
    fn scratch(&mut self, words: usize) -> GpuBuffer {
        let buf = self.gpu.scratch(words);
        self.held.push(buf.clone());
        buf
    }

    /// Records `pipeline` over `groups` workgroups with `buffers` bound in order and `params` last (uniform).
    fn dispatch(
        &mut self,
        pipeline: &wgpu::ComputePipeline,
        buffers: &[&wgpu::Buffer],
        params: &[u32],
        groups: usize,
    ) {
        let mut words = params.to_vec();
        words.resize(params.len().div_ceil(4).max(1) * 4, 0);
        let params = self.small(&words, wgpu::BufferUsages::UNIFORM);
        // Any op may write the buffer the last quantized activations came from.
        self.quantized = None;
        let mut entries: Vec<wgpu::BindGroupEntry<'_>> = buffers
            .iter()
            .enumerate()
            .map(|(i, b)| wgpu::BindGroupEntry {
                binding: u(i),
                resource: b.as_entire_binding(),
            })
            .collect();
        entries.push(wgpu::BindGroupEntry {
            binding: u(buffers.len()),
            resource: params.as_entire_binding(),
        });
        let bind = self
            .gpu
            .device
            .create_bind_group(&wgpu::BindGroupDescriptor {
                label: None,
                layout: &pipeline.get_bind_group_layout(0),
                entries: &entries,
            });
        let mut pass = self.enc.begin_compute_pass(&Default::default());
        pass.set_pipeline(pipeline);
        pass.set_bind_group(0, &bind, &[]);
        let (x, y) = grid(groups);
        pass.dispatch_workgroups(x, y, 1);
    }

    /// `y[t] = W · x[t]` for `n_tok` rows of `x` (`w.cols` each) into `y` (`w.rows` each). Up to
    /// [`INT8_MAX_TOKENS`] tokens over a quantized format: the activations quantized to 8 bits (as the CPU's
    /// matmul does) and the int8 matrix-vector product; otherwise the tiled f32 matmul
    /// ([`Step::matmul_dequantized`]). One dispatch per part of `w`.
    pub fn matmul(&mut self, w: &GpuMatrix, x: &GpuBuffer, n_tok: usize, y: &GpuBuffer) {
        match kernels::q8_mode(w.ty) {
            Some(mode) if n_tok <= INT8_MAX_TOKENS => self.matmul_int8(w, (x, mode), n_tok, y),
            _ => self.matmul_dequantized(w, x, n_tok, y),
        }
    }

    /// `x`'s `n_tok` rows of `cols` quantized to 8 bits, by `mode`, reused from the last matmul when it had the same input.
    fn quantize_input(
        &mut self,
        x: &GpuBuffer,
        (n_tok, cols): (usize, usize),
        mode: kernels::Q8Mode,
    ) -> GpuBuffer {
        if let Some(q) = self.quantized.take()
            && q.x == x.buf
            && (q.n_tok, q.cols, q.mode) == (n_tok, cols, mode)
        {
            let xq = q.xq.clone();
            self.quantized = Some(q);
            return xq;
        }
        let groups = cols / 32;
        let words = n_tok * groups * Q8_BLOCK_WORDS;
        let xq = self.scratch(words);
        let pipe = self
            .gpu
            .pipeline("quantize_q8", || kernels::QUANTIZE_Q8.to_string());
        let params = [u(n_tok), u(cols), u(groups), mode as u32];
        self.dispatch(
            &pipe,
            &[&x.buf, &xq.buf],
            &params,
            (n_tok * groups).div_ceil(WG),
        );
        self.quantized = Some(QuantizedInput {
            x: x.buf.clone(),
            n_tok,
            cols,
            mode,
            xq: xq.clone(),
        });
        xq
    }

    fn matmul_int8(
        &mut self,
        w: &GpuMatrix,
        (x, mode): (&GpuBuffer, kernels::Q8Mode),
        n_tok: usize,
        y: &GpuBuffer,
    ) {
        let xq = self.quantize_input(x, (n_tok, w.cols), mode);
        let key = format!("matvec_q8_{:?}", w.ty);
        let pipe = self
            .gpu
            .pipeline(&key, || kernels::matvec_q8(w.ty).unwrap_or_default());
        let kept = self.quantized.take();
        for (i, part) in w.parts.iter().enumerate() {
            let row0 = i * w.part_rows;
            let rows = w.part_rows.min(w.rows - row0);
            let params = [
                u(rows),
                u(w.row_bytes),
                u(n_tok),
                u(w.cols / 32),
                u(row0),
                u(w.rows),
            ];
            let groups = rows.div_ceil(MATMUL_ROWS) * n_tok.div_ceil(MATMUL_TILE);
            self.dispatch(&pipe, &[&part.buf, &xq.buf, &y.buf], &params, groups);
        }
        // The matmul wrote only `y`: the quantized input stays good for the next one unless `y` is its source.
        self.quantized = kept.filter(|q| q.x != y.buf);
    }

    /// `out[t] = act(gate · x[t]) · (up · x[t])` for `n_tok` rows of `x`: the feed-forward's two projections
    /// and its gated activation. In one kernel (the gate and up outputs never stored) where both matrices share
    /// a format with an int8 path and one shape, each in one part, for up to [`INT8_MAX_TOKENS`] tokens;
    /// otherwise as two [`Step::matmul`]s and [`Step::silu_mul`] / [`Step::gelu_mul`].
    pub fn matmul_gated(
        &mut self,
        (gate, up): (&GpuMatrix, &GpuMatrix),
        x: &GpuBuffer,
        n_tok: usize,
        act: GatedAct,
        out: &GpuBuffer,
    ) {
        let fused = kernels::q8_mode(gate.ty)
            .filter(|_| gate.ty == up.ty && (gate.rows, gate.cols) == (up.rows, up.cols))
            .filter(|_| gate.parts.len() == 1 && up.parts.len() == 1 && n_tok <= INT8_MAX_TOKENS);
        let Some(mode) = fused else {
            let (g, u_out) = (
                self.scratch(n_tok * gate.rows),
                self.scratch(n_tok * up.rows),
            );
            self.matmul(gate, x, n_tok, &g);
            self.matmul(up, x, n_tok, &u_out);
            let n = n_tok * gate.rows;
            match act {
                GatedAct::Silu => self.silu_mul(out, &g, &u_out, n),
                GatedAct::Gelu => self.gelu_mul(out, &g, &u_out, n),
            }
            return;
        };
        let xq = self.quantize_input(x, (n_tok, gate.cols), mode);
        let key = format!("matvec_q8_gated_{:?}", gate.ty);
        let pipe = self.gpu.pipeline(&key, || {
            kernels::matvec_q8_gated(gate.ty).unwrap_or_default()
        });
        let kept = self.quantized.take();
        let params = [
            u(gate.rows),
            u(gate.row_bytes),
            u(n_tok),
            u(gate.cols / 32),
            u32::from(act == GatedAct::Gelu),
        ];
        let groups = gate.rows.div_ceil(MATMUL_ROWS) * n_tok.div_ceil(MATMUL_TILE);
        let buffers = [&gate.parts[0].buf, &up.parts[0].buf, &xq.buf, &out.buf];
        self.dispatch(&pipe, &buffers, &params, groups);
        self.quantized = kept.filter(|q| q.x != out.buf);
    }

    /// [`Step::matmul`] with f32 activations whatever the format and token count: each lane dequantizes a
    /// 32-wide weight group and dots it with up to 8 tokens (the prefill matmul; tests compare it with the int8
    /// path).
    pub fn matmul_dequantized(
        &mut self,
        w: &GpuMatrix,
        x: &GpuBuffer,
        n_tok: usize,
        y: &GpuBuffer,
    ) {
        let key = format!("matmul_{:?}", w.ty);
        let pipe = self.gpu.pipeline(&key, || {
            kernels::with_format(kernels::MATMUL, w.ty).unwrap_or_default()
        });
        for (i, part) in w.parts.iter().enumerate() {
            let row0 = i * w.part_rows;
            let rows = w.part_rows.min(w.rows - row0);
            let params = [
                u(rows),
                u(w.cols),
                u(w.row_bytes),
                u(n_tok),
                u(w.cols.div_ceil(32)),
                u(row0),
                u(w.rows),
            ];
            let groups = rows.div_ceil(MATMUL_ROWS) * n_tok.div_ceil(MATMUL_TILE);
            self.dispatch(&pipe, &[&part.buf, &x.buf, &y.buf], &params, groups);
        }
    }

    /// `out[i] = W[ids[i]]`, dequantized (embedding lookup). One dispatch per part of `w`.
    pub fn get_rows(&mut self, w: &GpuMatrix, ids: &[u32], out: &GpuBuffer) {
        let key = format!("get_rows_{:?}", w.ty);
        let pipe = self.gpu.pipeline(&key, || {
            kernels::with_format(kernels::GET_ROWS, w.ty).unwrap_or_default()
        });
        let ids_buf = self.small(ids, wgpu::BufferUsages::STORAGE);
        let groups = w.cols.div_ceil(32);
        for (i, part) in w.parts.iter().enumerate() {
            let lo = i * w.part_rows;
            let hi = (lo + w.part_rows).min(w.rows);
            let params = [
                u(w.cols),
                u(w.row_bytes),
                u(ids.len()),
                u(groups),
                u(lo),
                u(hi),
            ];
            let n = (ids.len() * groups).div_ceil(WG);
            self.dispatch(&pipe, &[&part.buf, &ids_buf, &out.buf], &params, n);
        }
    }

    fn rows_op(&mut self, x: &GpuBuffer, w: Option<&GpuBuffer>, out: &GpuBuffer, p: [u32; 8]) {
        let pipe = self.gpu.reducing_pipeline("rows", kernels::ROWS);
        let wbuf = w.map_or(&self.gpu.dummy, |b| &b.buf);
        let n_rows = p[1] as usize;
        self.dispatch(&pipe, &[&x.buf, wbuf, &out.buf], &p, n_rows);
    }

    /// `out` = RMS norm of each of `n_rows` rows of `cols` in `x`, times `weight` if given (`out` may be `x`).
    pub fn rms_norm(
        &mut self,
        x: &GpuBuffer,
        weight: Option<&GpuBuffer>,
        (cols, n_rows): (usize, usize),
        eps: f32,
        out: &GpuBuffer,
    ) {
        let p = [
            u(cols),
            u(n_rows),
            u32::from(weight.is_some()),
            eps.to_bits(),
            0,
            0,
            0,
            0,
        ];
        self.rows_op(x, weight, out, p);
    }

    /// Softmax of each of `n_rows` rows of `cols`, in place.
    pub fn softmax(&mut self, x: &GpuBuffer, cols: usize, n_rows: usize) {
        let p = [u(cols), u(n_rows), 0, 0, 1, 0, 0, 0];
        self.rows_op(x, None, x, p);
    }

    /// Rotates the heads of token row `t` of `x` for `tokens[t]` = (position, RoPE parameters), with the CPU's
    /// angles. Every token's parameters share one style and `n_rot` (the first's).
    pub fn rope(&mut self, x: &GpuBuffer, tokens: &[(usize, &RopeParams)], r: &GpuRope) {
        let Some(&(_, first)) = tokens.first() else {
            return;
        };
        let half = first.n_rot / 2;
        let mut pairs = vec![(0.0f32, 0.0f32); half];
        let mut table = Vec::with_capacity(tokens.len() * half * 2);
        for &(pos, params) in tokens {
            rope_cos_sin(pos, params, &mut pairs);
            table.extend(pairs.iter().flat_map(|&(c, s)| [c.to_bits(), s.to_bits()]));
        }
        let cs = self.small(&table, wgpu::BufferUsages::STORAGE);
        let style = u32::from(first.style == RopeStyle::Neox);
        let params = [
            u(tokens.len()),
            u(r.n_heads),
            u(r.head_dim),
            u(first.n_rot),
            style,
        ];
        let pipe = self.gpu.pipeline("rope", || kernels::ROPE.to_string());
        let n = (tokens.len() * r.n_heads * half).div_ceil(WG);
        self.dispatch(&pipe, &[&x.buf, &cs], &params, n);
    }

    fn elementwise(
        &mut self,
        op: Elementwise,
        a: &GpuBuffer,
        (b, c): (Option<&GpuBuffer>, Option<&GpuBuffer>),
        n: usize,
        nb: usize,
        floats: [f32; 3],
    ) {
        let pipe = self
            .gpu
            .pipeline("elementwise", || kernels::ELEMENTWISE.to_string());
        let dummy = &self.gpu.dummy;
        let (b, c) = (b.map_or(dummy, |x| &x.buf), c.map_or(dummy, |x| &x.buf));
        let [s, alpha, limit] = floats.map(f32::to_bits);
        let params = [u(n), u(nb.max(1)), op as u32, s, alpha, limit, 0, 0];
        self.dispatch(&pipe, &[&a.buf, b, c], &params, n.div_ceil(WG));
    }

    /// `a[i] += b[i % b_len]` for the first `n` elements (a residual, or a bias on every row).
    pub fn add(&mut self, a: &GpuBuffer, b: &GpuBuffer, n: usize, b_len: usize) {
        self.elementwise(Elementwise::Add, a, (Some(b), None), n, b_len, [0.0; 3]);
    }

    /// `a[i] *= b[i % b_len]` for the first `n` elements.
    pub fn mul(&mut self, a: &GpuBuffer, b: &GpuBuffer, n: usize, b_len: usize) {
        self.elementwise(Elementwise::Mul, a, (Some(b), None), n, b_len, [0.0; 3]);
    }

    /// `a[i] *= s` for the first `n` elements.
    pub fn scale(&mut self, a: &GpuBuffer, n: usize, s: f32) {
        self.elementwise(Elementwise::Scale, a, (None, None), n, 1, [s, 0.0, 0.0]);
    }

    /// `a[i] = cap · tanh(a[i] / cap)` for the first `n` elements.
    pub fn softcap(&mut self, a: &GpuBuffer, n: usize, cap: f32) {
        self.elementwise(Elementwise::Softcap, a, (None, None), n, 1, [cap, 0.0, 0.0]);
    }

    /// `out = silu(gate) · up` (SwiGLU), `n` elements.
    pub fn silu_mul(&mut self, out: &GpuBuffer, gate: &GpuBuffer, up: &GpuBuffer, n: usize) {
        self.elementwise(
            Elementwise::SiluMul,
            out,
            (Some(gate), Some(up)),
            n,
            1,
            [0.0; 3],
        );
    }

    /// `out = gelu(gate) · up` (GeGLU, ggml's f16-rounded GELU), `n` elements.
    pub fn gelu_mul(&mut self, out: &GpuBuffer, gate: &GpuBuffer, up: &GpuBuffer, n: usize) {
        self.elementwise(
            Elementwise::GeluMul,
            out,
            (Some(gate), Some(up)),
            n,
            1,
            [0.0; 3],
        );
    }

    /// gpt-oss's clamped SwiGLU, `n` elements.
    #[allow(clippy::too_many_arguments)] // Mirrors the CPU op's signature plus the buffers.
    pub fn swiglu_oai_mul(
        &mut self,
        out: &GpuBuffer,
        gate: &GpuBuffer,
        up: &GpuBuffer,
        n: usize,
        alpha: f32,
        limit: f32,
    ) {
        self.elementwise(
            Elementwise::SwigluOai,
            out,
            (Some(gate), Some(up)),
            n,
            1,
            [0.0, alpha, limit],
        );
    }

    /// Stores row `src_row0 + t` of `src` (`kvd` f32s, `kvd` even) as f16 into row `rows[t]` of `cache`.
    pub fn kv_store(
        &mut self,
        (src, src_row0): (&GpuBuffer, usize),
        cache: &GpuBuffer,
        rows: &[u32],
        kvd: usize,
    ) {
        let pipe = self
            .gpu
            .pipeline("kv_store", || kernels::KV_STORE.to_string());
        let dst = self.small(rows, wgpu::BufferUsages::STORAGE);
        let params = [u(kvd), u(rows.len()), u(src_row0)];
        let n = (rows.len() * kvd / 2).div_ceil(WG);
        self.dispatch(&pipe, &[&src.buf, &cache.buf, &dst], &params, n);
    }

    /// Attention of query row `q_row0 + t` of `q` (`n_head · head_dim`) over `rows[t]`'s window of the f16
    /// caches, into the same row of `out`. Windows of [`ATTENTION_SPLIT_KEYS`] keys or more take
    /// [`Step::attention_split`].
    pub fn attention(
        &mut self,
        q: (&GpuBuffer, usize),
        caches: (&GpuBuffer, &GpuBuffer),
        rows: &[AttentionRow],
        p: &GpuAttention<'_>,
        out: &GpuBuffer,
    ) {
        let longest = rows.iter().map(|r| r.window.len()).max().unwrap_or(0);
        if longest >= ATTENTION_SPLIT_KEYS {
            self.attention_split(q, caches, rows, p, out);
        } else {
            self.attention_one_pass(q, caches, rows, p, out);
        }
    }

    /// [`Step::attention`] with the keys split into chunks of 256, a workgroup per (row, head, chunk) keeping
    /// its max, sum and partial output, and a second pass merging them (flash-decoding), whatever the length.
    pub fn attention_split(
        &mut self,
        (q, q_row0): (&GpuBuffer, usize),
        (k_cache, v_cache): (&GpuBuffer, &GpuBuffer),
        rows: &[AttentionRow],
        p: &GpuAttention<'_>,
        out: &GpuBuffer,
    ) {
        let longest = rows.iter().map(|r| r.window.len()).max().unwrap_or(0);
        let n_chunks = longest.div_ceil(ATTENTION_CHUNK).max(1);
        let info: Vec<u32> = rows
            .iter()
            .flat_map(|r| [r.kv_base, u(r.window.start), u(r.window.end)])
            .collect();
        let info = self.small(&info, wgpu::BufferUsages::STORAGE);
        let heads = rows.len() * p.n_head;
        let parts = self.scratch(heads * n_chunks * (p.head_dim + 2));
        let split = self
            .gpu
            .reducing_pipeline("attention_split", kernels::ATTENTION_SPLIT);
        let params = [
            u(p.n_head),
            u(p.n_kv_head),
            u(p.head_dim),
            u(rows.len()),
            p.scale.to_bits(),
            p.softcap.unwrap_or(0.0).to_bits(),
            u(n_chunks),
            u(q_row0),
        ];
        let buffers = [&q.buf, &k_cache.buf, &v_cache.buf, &parts.buf, &info];
        self.dispatch(&split, &buffers, &params, heads * n_chunks);
        let combine = self.gpu.pipeline("attention_combine", || {
            kernels::ATTENTION_COMBINE.to_string()
        });
        let sinks = p.sinks.map_or(&self.gpu.dummy, |s| &s.buf);
        let params = [
            u(p.n_head),
            u(p.head_dim),
            u(rows.len()),
            u(n_chunks),
            u32::from(p.sinks.is_some()),
            u(q_row0),
        ];
        self.dispatch(
            &combine,
            &[&parts.buf, &out.buf, sinks, &info],
            &params,
            heads,
        );
    }

    fn attention_one_pass(
        &mut self,
        (q, q_row0): (&GpuBuffer, usize),
        (k_cache, v_cache): (&GpuBuffer, &GpuBuffer),
        rows: &[AttentionRow],
        p: &GpuAttention<'_>,
        out: &GpuBuffer,
    ) {
        let pipe = self.gpu.reducing_pipeline("attention", kernels::ATTENTION);
        let info: Vec<u32> = rows
            .iter()
            .flat_map(|r| [r.kv_base, u(r.window.start), u(r.window.end)])
            .collect();
        let info = self.small(&info, wgpu::BufferUsages::STORAGE);
        let stride = rows
            .iter()
            .map(|r| r.window.len())
            .max()
            .unwrap_or(0)
            .max(1);
        let scores = self.scratch(rows.len() * p.n_head * stride);
        let sinks = p.sinks.map_or(&self.gpu.dummy, |s| &s.buf);
        let params = [
            u(p.n_head),
            u(p.n_kv_head),
            u(p.head_dim),
            u(rows.len()),
            p.scale.to_bits(),
            p.softcap.unwrap_or(0.0).to_bits(),
            u32::from(p.sinks.is_some()),
            u(stride),
            u(q_row0),
        ];
        let buffers = [
            &q.buf,
            &k_cache.buf,
            &v_cache.buf,
            &out.buf,
            &info,
            &scores.buf,
            sinks,
        ];
        self.dispatch(&pipe, &buffers, &params, rows.len() * p.n_head);
    }

    /// Copies `n` f32s from `src` at `src_at` to `dst` at `dst_at` (offsets in f32s).
    pub fn copy(
        &mut self,
        (src, src_at): (&GpuBuffer, usize),
        (dst, dst_at): (&GpuBuffer, usize),
        n: usize,
    ) {
        self.quantized = None;
        let (from, to) = ((src_at * 4) as u64, (dst_at * 4) as u64);
        self.enc
            .copy_buffer_to_buffer(&src.buf, from, &dst.buf, to, (n * 4) as u64);
    }
}
