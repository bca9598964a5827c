//! One step's ops, recorded into one command encoder and submitted together. Small per-call inputs (token ids,
//! positions' angles, attention windows, kernel parameters) travel as small buffers made at record time.

use std::ops::Range;

use cria_kernels::ops::{RopeParams, RopeStyle, rope_cos_sin};
use wgpu::util::DeviceExt;

use crate::gpu::{Gpu, GpuBuffer, GpuMatrix};
use crate::kernels;

/// Groups of a dispatch's first dimension (the rest goes into the second): WebGPU's per-dimension limit.
const MAX_GROUPS_X: u32 = 65_535;
/// Threads per workgroup of the element-wise kernels.
const WG: usize = 64;
/// Weight rows per matmul workgroup (`RPW` in matmul.wgsl).
const MATMUL_ROWS: usize = 4;
/// Tokens per matmul workgroup (`TILE` in matmul.wgsl).
const MATMUL_TILE: usize = 8;

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

/// A step being recorded.
pub struct Step<'g> {
    gpu: &'g Gpu,
    enc: wgpu::CommandEncoder,
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
        Step { gpu, enc }
    }

    /// Submits the step's work (results are read with [`Gpu::read_f32`], which waits for it).
    pub fn submit(self) {
        self.gpu.queue.submit([self.enc.finish()]);
    }

    fn small(&self, words: &[u32], usage: wgpu::BufferUsages) -> wgpu::Buffer {
        let contents: &[u8] = if words.is_empty() {
            &[0; 4]
        } else {
            bytemuck::cast_slice(words)
        };
        self.gpu
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: None,
                contents,
                usage,
            })
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

    /// `y[t] = W · x[t]` for `n_tok` rows of `x` (`w.cols` each) into `y` (`w.rows` each): decode's
    /// matrix-vector product for one token, the tiled prefill matmul for more. One dispatch per part of `w`.
    pub fn matmul(&mut self, w: &GpuMatrix, x: &GpuBuffer, n_tok: usize, y: &GpuBuffer) {
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
        let pipe = self.gpu.pipeline("rows", || kernels::ROWS.to_string());
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
    /// caches, into the same row of `out`.
    pub fn attention(
        &mut self,
        (q, q_row0): (&GpuBuffer, usize),
        (k_cache, v_cache): (&GpuBuffer, &GpuBuffer),
        rows: &[AttentionRow],
        p: &GpuAttention<'_>,
        out: &GpuBuffer,
    ) {
        let pipe = self
            .gpu
            .pipeline("attention", || kernels::ATTENTION.to_string());
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
        let scores = self.gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("attention scores"),
            size: (rows.len() * p.n_head * stride * 4).max(4) as u64,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        });
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
            &scores,
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
        let (from, to) = ((src_at * 4) as u64, (dst_at * 4) as u64);
        self.enc
            .copy_buffer_to_buffer(&src.buf, from, &dst.buf, to, (n * 4) as u64);
    }
}
