//! The model's weights as one backend holds them: the same tensors as [`Weights`], each uploaded once when the
//! runner is made (the CPU keeps views of the mapped file and its repacked copies; a GPU copies them to device
//! memory). The decoder block reads a layer's tensors from here, whatever the device.

use cria_kernels::backend::cpu::CpuMatrix;

use crate::model::Model;
use crate::spec::MoeSpec;
use crate::weights::{ExpertBiases, FfnWeights, LayerWeights, Matrix, Weights};

/// How a backend takes a model's tensors: matrices of `M`, f32 vectors of `V`.
pub(crate) trait Upload {
    type M;
    type V;
    type E;
    fn matrix(&self, m: &Matrix) -> Result<Self::M, Self::E>;
    fn vector(&self, v: &[f32]) -> Result<Self::V, Self::E>;
}

/// Every tensor the block reads, on one backend.
pub(crate) struct BlockWeights<M, V> {
    pub token_embd: M,
    /// `None`: tied to the embeddings.
    pub output: Option<M>,
    pub output_norm: V,
    pub layers: Vec<BlockLayer<M, V>>,
}

impl<M, V> BlockWeights<M, V> {
    pub fn output(&self) -> &M {
        self.output.as_ref().unwrap_or(&self.token_embd)
    }
}

/// One decoder block's tensors (as [`LayerWeights`]).
pub(crate) struct BlockLayer<M, V> {
    pub attn_norm: Option<V>,
    pub wq: M,
    pub wk: M,
    pub wv: M,
    pub wo: M,
    pub q_bias: Option<V>,
    pub k_bias: Option<V>,
    pub v_bias: Option<V>,
    pub o_bias: Option<V>,
    pub attn_sinks: Option<V>,
    pub q_norm: Option<V>,
    pub k_norm: Option<V>,
    pub post_attn_norm: Option<V>,
    pub ffn_norm: Option<V>,
    pub ffn: BlockFfn<M, V>,
    pub post_ffn_norm: Option<V>,
}

pub(crate) enum BlockFfn<M, V> {
    Dense { gate: M, up: M, down: M },
    Experts(Box<BlockExperts<M, V>>),
}

/// A mixture of experts (as [`crate::weights::ExpertWeights`]), each expert's biases cut out at upload.
pub(crate) struct BlockExperts<M, V> {
    pub spec: MoeSpec,
    /// The experts' input and output width (`n_embd`) and hidden width.
    pub d: usize,
    pub ff: usize,
    pub router: M,
    pub router_bias: Option<V>,
    pub experts: Vec<BlockExpert<M, V>>,
    pub shared: Option<BlockShared<M, V>>,
}

pub(crate) struct BlockExpert<M, V> {
    pub gate: M,
    pub up: M,
    pub down: M,
    /// Gate, up and down biases (gpt-oss).
    pub biases: Option<[V; 3]>,
}

/// Qwen2-MoE's shared expert and its sigmoid gate.
pub(crate) struct BlockShared<M, V> {
    /// Its hidden width.
    pub ff: usize,
    pub gate_inp: V,
    pub gate: M,
    pub up: M,
    pub down: M,
}

fn opt<U: Upload>(u: &U, v: &Option<Vec<f32>>) -> Result<Option<U::V>, U::E> {
    v.as_deref().map(|v| u.vector(v)).transpose()
}

fn ffn<U: Upload>(u: &U, f: &FfnWeights) -> Result<BlockFfn<U::M, U::V>, U::E> {
    let e = match f {
        FfnWeights::Dense { gate, up, down } => {
            return Ok(BlockFfn::Dense {
                gate: u.matrix(gate)?,
                up: u.matrix(up)?,
                down: u.matrix(down)?,
            });
        }
        FfnWeights::Experts(e) => e,
    };
    let d = e.down.first().map_or(0, |m| m.rows);
    let experts = (0..e.spec.n_expert)
        .map(|i| {
            let ff = e.gate[i].rows;
            let biases = e
                .biases
                .as_ref()
                .map(|b| {
                    Ok([
                        u.vector(ExpertBiases::row(&b.gate, i, ff))?,
                        u.vector(ExpertBiases::row(&b.up, i, ff))?,
                        u.vector(ExpertBiases::row(&b.down, i, d))?,
                    ])
                })
                .transpose()?;
            Ok(BlockExpert {
                gate: u.matrix(&e.gate[i])?,
                up: u.matrix(&e.up[i])?,
                down: u.matrix(&e.down[i])?,
                biases,
            })
        })
        .collect::<Result<_, U::E>>()?;
    let shared = e
        .shared
        .as_ref()
        .map(|s| {
            Ok(BlockShared {
                ff: s.gate.rows,
                gate_inp: u.vector(&s.gate_inp)?,
                gate: u.matrix(&s.gate)?,
                up: u.matrix(&s.up)?,
                down: u.matrix(&s.down)?,
            })
        })
        .transpose()?;
    Ok(BlockFfn::Experts(Box::new(BlockExperts {
        spec: e.spec.clone(),
        d,
        ff: e.gate.first().map_or(0, |m| m.rows),
        router: u.matrix(&e.router)?,
        router_bias: opt(u, &e.router_bias)?,
        experts,
        shared,
    })))
}

fn layer<U: Upload>(u: &U, lw: &LayerWeights) -> Result<BlockLayer<U::M, U::V>, U::E> {
    Ok(BlockLayer {
        attn_norm: opt(u, &lw.attn_norm)?,
        wq: u.matrix(&lw.wq)?,
        wk: u.matrix(&lw.wk)?,
        wv: u.matrix(&lw.wv)?,
        wo: u.matrix(&lw.wo)?,
        q_bias: opt(u, &lw.q_bias)?,
        k_bias: opt(u, &lw.k_bias)?,
        v_bias: opt(u, &lw.v_bias)?,
        o_bias: opt(u, &lw.o_bias)?,
        attn_sinks: opt(u, &lw.attn_sinks)?,
        q_norm: opt(u, &lw.q_norm)?,
        k_norm: opt(u, &lw.k_norm)?,
        post_attn_norm: opt(u, &lw.post_attn_norm)?,
        ffn_norm: opt(u, &lw.ffn_norm)?,
        ffn: ffn(u, &lw.ffn)?,
        post_ffn_norm: opt(u, &lw.post_ffn_norm)?,
    })
}

/// Uploads every tensor a step reads (the tied output matrix once).
pub(crate) fn upload<U: Upload>(u: &U, w: &Weights) -> Result<BlockWeights<U::M, U::V>, U::E> {
    Ok(BlockWeights {
        token_embd: u.matrix(&w.token_embd)?,
        output: w.output.as_ref().map(|m| u.matrix(m)).transpose()?,
        output_norm: u.vector(&w.output_norm)?,
        layers: w
            .layers
            .iter()
            .map(|lw| layer(u, lw))
            .collect::<Result<_, _>>()?,
    })
}

/// The CPU's upload: views of the model's tensor data (or its repacked copies) and copies of the vectors.
pub(crate) struct CpuUpload;

impl Upload for CpuUpload {
    type M = CpuMatrix;
    type V = Vec<f32>;
    type E = std::convert::Infallible;

    fn matrix(&self, m: &Matrix) -> Result<CpuMatrix, Self::E> {
        Ok(m.cpu())
    }

    fn vector(&self, v: &[f32]) -> Result<Vec<f32>, Self::E> {
        Ok(v.to_vec())
    }
}

/// The CPU's weights of `model`.
pub(crate) fn cpu_weights(model: &Model) -> BlockWeights<CpuMatrix, Vec<f32>> {
    match upload(&CpuUpload, model.weights()) {
        Ok(w) => w,
        Err(never) => match never {},
    }
}
