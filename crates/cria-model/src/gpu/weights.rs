//! The model's weights on the device, uploaded once when the GPU runner is made.

use cria_gpu::{Gpu, GpuBuffer, GpuMatrix};

use crate::ModelError;
use crate::model::Model;
use crate::weights::{FfnWeights, LayerWeights, Matrix};

/// One decoder block's tensors on the device (the same parts as [`LayerWeights`]; dense FFNs only).
pub(super) struct GpuLayer {
    pub attn_norm: Option<GpuBuffer>,
    pub wq: GpuMatrix,
    pub wk: GpuMatrix,
    pub wv: GpuMatrix,
    pub wo: GpuMatrix,
    pub q_bias: Option<GpuBuffer>,
    pub k_bias: Option<GpuBuffer>,
    pub v_bias: Option<GpuBuffer>,
    pub o_bias: Option<GpuBuffer>,
    pub attn_sinks: Option<GpuBuffer>,
    pub q_norm: Option<GpuBuffer>,
    pub k_norm: Option<GpuBuffer>,
    pub post_attn_norm: Option<GpuBuffer>,
    pub ffn_norm: Option<GpuBuffer>,
    pub gate: GpuMatrix,
    pub up: GpuMatrix,
    pub down: GpuMatrix,
    pub post_ffn_norm: Option<GpuBuffer>,
}

pub(super) struct GpuWeights {
    pub token_embd: GpuMatrix,
    pub layers: Vec<GpuLayer>,
    pub output_norm: GpuBuffer,
    /// The output matrix (the embedding matrix again when tied: one upload).
    pub output: GpuMatrix,
}

fn matrix(gpu: &Gpu, model: &Model, m: &Matrix) -> Result<GpuMatrix, ModelError> {
    // The file layout: the CPU kernels' repacked copy (Q4_0/Q4_K on x86) is not what the GPU kernels read.
    let data = m.bytes(model.data());
    Ok(gpu.upload_matrix(m.ty, m.rows, m.cols, data)?)
}

fn vector(gpu: &Gpu, v: &Option<Vec<f32>>) -> Result<Option<GpuBuffer>, ModelError> {
    v.as_deref()
        .map(|v| gpu.upload_f32(v).map_err(ModelError::from))
        .transpose()
}

fn layer(gpu: &Gpu, model: &Model, lw: &LayerWeights) -> Result<GpuLayer, ModelError> {
    let FfnWeights::Dense { gate, up, down } = &lw.ffn else {
        return Err(ModelError::NoGpuPath("mixture-of-experts layers".into()));
    };
    Ok(GpuLayer {
        attn_norm: vector(gpu, &lw.attn_norm)?,
        wq: matrix(gpu, model, &lw.wq)?,
        wk: matrix(gpu, model, &lw.wk)?,
        wv: matrix(gpu, model, &lw.wv)?,
        wo: matrix(gpu, model, &lw.wo)?,
        q_bias: vector(gpu, &lw.q_bias)?,
        k_bias: vector(gpu, &lw.k_bias)?,
        v_bias: vector(gpu, &lw.v_bias)?,
        o_bias: vector(gpu, &lw.o_bias)?,
        attn_sinks: vector(gpu, &lw.attn_sinks)?,
        q_norm: vector(gpu, &lw.q_norm)?,
        k_norm: vector(gpu, &lw.k_norm)?,
        post_attn_norm: vector(gpu, &lw.post_attn_norm)?,
        ffn_norm: vector(gpu, &lw.ffn_norm)?,
        gate: matrix(gpu, model, gate)?,
        up: matrix(gpu, model, up)?,
        down: matrix(gpu, model, down)?,
        post_ffn_norm: vector(gpu, &lw.post_ffn_norm)?,
    })
}

/// Uploads every tensor a step reads.
///
/// # Errors
/// [`ModelError::NoGpuPath`] for mixture-of-experts layers, [`ModelError::Gpu`] for a weight format without
/// GPU kernels or a tensor past the device's limits.
pub(super) fn upload(gpu: &Gpu, model: &Model) -> Result<GpuWeights, ModelError> {
    let w = model.weights();
    let token_embd = matrix(gpu, model, &w.token_embd)?;
    let output = match &w.output {
        Some(m) => matrix(gpu, model, m)?,
        None => token_embd.clone(),
    };
    Ok(GpuWeights {
        layers: w
            .layers
            .iter()
            .map(|lw| layer(gpu, model, lw))
            .collect::<Result<_, _>>()?,
        token_embd,
        output_norm: gpu.upload_f32(&w.output_norm)?,
        output,
    })
}
