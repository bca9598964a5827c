//! The encoder's forward pass (llama.cpp's `src/models/bert.cpp` graph): embeddings and their LayerNorm, then
//! per layer non-causal attention (K and V in f16), residual and LayerNorm, FFN, residual and LayerNorm. No KV cache: the whole
//! input is one batch, every token sees every other.

use cria_kernels::matmul::{WeightRef, matmul};
use cria_kernels::ops::{self, AttentionParams, QueryRow, RopeParams};
use cria_kernels::pool::ThreadPool;
use half::f16;

use super::spec::{EncoderFfn, EncoderSpec, Positions};
use super::weights::{EncoderLayer, EncoderWeights, Norm, Qkv};
use crate::ModelError;
use crate::weights::Matrix;

/// What a forward pass reads: the spec, the weights and the file's tensor data.
pub(crate) struct Pass<'a> {
    pub spec: &'a EncoderSpec,
    pub weights: &'a EncoderWeights,
    pub data: &'a [u8],
    pub pool: &'a ThreadPool,
}

impl Pass<'_> {
    /// The last layer's output for every token: `ids.len()` rows of `n_embd`.
    pub fn run(&self, ids: &[u32]) -> Result<Vec<f32>, ModelError> {
        let mut x = self.embed(ids)?;
        let mut scratch = Vec::new();
        for layer in &self.weights.layers {
            self.layer(layer, &mut x, ids.len(), &mut scratch);
        }
        Ok(x)
    }

    /// `LN(tok + type_row0 + pos)`.
    fn embed(&self, ids: &[u32]) -> Result<Vec<f32>, ModelError> {
        let (s, w, d) = (self.spec, self.weights, self.spec.n_embd);
        if let Some(&id) = ids.iter().find(|&&id| id as usize >= s.n_vocab) {
            return Err(ModelError::TokenOutOfRange {
                id,
                n_vocab: s.n_vocab,
            });
        }
        let mut x = vec![0.0; ids.len() * d];
        get_rows(&w.token_embd, self.data, ids, &mut x)?;
        if let Some(type_row) = &w.type_row0 {
            x.chunks_exact_mut(d)
                .for_each(|r| ops::add_inplace(r, type_row));
        }
        if let Some(pos_embd) = &w.position_embd {
            if ids.len() > s.n_ctx_train {
                return Err(ModelError::ContextFull {
                    needed: ids.len(),
                    capacity: s.n_ctx_train,
                });
            }
            let positions: Vec<u32> = (0..ids.len()).map(|p| p as u32).collect();
            let mut pos = vec![0.0; x.len()];
            get_rows(pos_embd, self.data, &positions, &mut pos)?;
            ops::add_inplace(&mut x, &pos);
        }
        layer_norm_rows(&mut x, &w.embd_norm, s.norm_eps);
        Ok(x)
    }

    fn layer(&self, lw: &EncoderLayer, x: &mut [f32], n_tok: usize, scratch: &mut Vec<u8>) {
        let (s, d) = (self.spec, self.spec.n_embd);
        let (mut q, mut k, v) = self.qkv(&lw.qkv, x, n_tok, scratch);
        if let Positions::Rope(rope) = &s.positions {
            rope_rows(&mut q, s.n_head, s.head_dim, rope);
            rope_rows(&mut k, s.n_head_kv, s.head_dim, rope);
        }
        let attn = attention(self.pool, s, &q, &k, &v, n_tok);
        let mut cur = self.project(&lw.wo, lw.wo_bias.as_deref(), &attn, n_tok, scratch);
        ops::add_inplace(&mut cur, x);
        layer_norm_rows(&mut cur, &lw.attn_out_norm, s.norm_eps);
        let mut out = self.ffn(lw, &cur, n_tok, scratch);
        ops::add_inplace(&mut out, &cur);
        layer_norm_rows(&mut out, &lw.layer_out_norm, s.norm_eps);
        debug_assert_eq!(out.len(), n_tok * d);
        x.copy_from_slice(&out);
    }

    fn qkv(
        &self,
        qkv: &Qkv,
        x: &[f32],
        n_tok: usize,
        scratch: &mut Vec<u8>,
    ) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let (qd, kvd) = (self.spec.q_dim(), self.spec.kv_dim());
        match qkv {
            Qkv::Fused { w, bias } => {
                let all = self.project(w, bias.as_deref(), x, n_tok, scratch);
                let mut parts = (Vec::new(), Vec::new(), Vec::new());
                for row in all.chunks_exact(qd + 2 * kvd) {
                    parts.0.extend_from_slice(&row[..qd]);
                    parts.1.extend_from_slice(&row[qd..qd + kvd]);
                    parts.2.extend_from_slice(&row[qd + kvd..]);
                }
                parts
            }
            Qkv::Split {
                q,
                k,
                v,
                q_bias,
                k_bias,
                v_bias,
            } => (
                self.project(q, q_bias.as_deref(), x, n_tok, scratch),
                self.project(k, k_bias.as_deref(), x, n_tok, scratch),
                self.project(v, v_bias.as_deref(), x, n_tok, scratch),
            ),
        }
    }

    fn ffn(&self, lw: &EncoderLayer, x: &[f32], n_tok: usize, scratch: &mut Vec<u8>) -> Vec<f32> {
        let mut up = self.project(&lw.up, lw.up_bias.as_deref(), x, n_tok, scratch);
        let hidden = match (self.spec.ffn, &lw.gate) {
            (EncoderFfn::SwiGlu, Some(gate)) => {
                let g = self.project(gate, None, x, n_tok, scratch);
                let mut h = vec![0.0; up.len()];
                ops::silu_mul(&g, &up, &mut h);
                h
            }
            _ => {
                up.iter_mut().for_each(|v| *v = ops::gelu_as_ggml(*v));
                up
            }
        };
        self.project(&lw.down, lw.down_bias.as_deref(), &hidden, n_tok, scratch)
    }

    /// `x · Wᵀ (+ bias)` for `n_tok` rows.
    fn project(
        &self,
        w: &Matrix,
        bias: Option<&[f32]>,
        x: &[f32],
        n_tok: usize,
        scratch: &mut Vec<u8>,
    ) -> Vec<f32> {
        let wr: WeightRef = w.view(self.data);
        let mut y = vec![0.0; n_tok * w.rows];
        matmul(self.pool, &wr, x, n_tok, &mut y, scratch);
        if let Some(b) = bias {
            y.chunks_exact_mut(w.rows)
                .for_each(|r| ops::add_inplace(r, b));
        }
        y
    }
}

fn get_rows(m: &Matrix, data: &[u8], ids: &[u32], out: &mut [f32]) -> Result<(), ModelError> {
    ops::get_rows(m.ty, m.bytes(data), m.cols, ids, out).map_err(|_| ModelError::BadTensorType {
        name: "embedding table".to_string(),
        ty: m.ty,
    })
}

fn layer_norm_rows(x: &mut [f32], norm: &Norm, eps: f32) {
    x.chunks_exact_mut(norm.weight.len())
        .for_each(|r| ops::layer_norm_inplace(r, &norm.weight, &norm.bias, eps));
}

/// RoPE on every row of `x` (`n_heads` heads of `head_dim`), the row index being the position.
fn rope_rows(x: &mut [f32], n_heads: usize, head_dim: usize, rope: &RopeParams) {
    for (pos, row) in x.chunks_exact_mut(n_heads * head_dim).enumerate() {
        ops::rope_inplace(row, n_heads, head_dim, pos, rope);
    }
}

/// Non-causal scaled dot-product attention: every query row sees every key. K and V go through f16, as in
/// Cria's KV cache and in llama.cpp's default (flash) attention; the kernels' grouped path spreads the rows
/// over the pool.
fn attention(
    pool: &ThreadPool,
    s: &EncoderSpec,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    n_tok: usize,
) -> Vec<f32> {
    let k16: Vec<f16> = k.iter().map(|&x| f16::from_f32(x)).collect();
    let v16: Vec<f16> = v.iter().map(|&x| f16::from_f32(x)).collect();
    let rows: Vec<QueryRow> = (0..n_tok)
        .map(|_| QueryRow {
            seq: 0,
            window: 0..n_tok,
        })
        .collect();
    let params = AttentionParams {
        n_head: s.n_head,
        n_kv_head: s.n_head_kv,
        head_dim: s.head_dim,
        scale: 1.0 / (s.head_dim as f32).sqrt(),
        softcap: None,
        sinks: None,
    };
    let mut out = vec![0.0; n_tok * s.q_dim()];
    let kv = ops::KvView::contiguous(&k16, &v16);
    ops::attention_rows(pool, q, &rows, &|_| kv, &params, &mut out);
    out
}
