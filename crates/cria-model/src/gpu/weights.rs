//! The model's weights on the device, uploaded once when the GPU runner is made, and the check that the GPU
//! backend supports every op and format the model needs.

use cria_gguf::GgmlType;
use cria_gpu::{Gpu, GpuBackend, GpuBuffer, GpuError, GpuMatrix};
use cria_kernels::backend::{Backend, Op};

use crate::ModelError;
use crate::block_weights::{self, BlockWeights, Upload};
use crate::model::Model;
use crate::weights::{FfnWeights, Matrix};

/// Uploads in the file's layout (the CPU's repacked copies are not what the GPU kernels read).
struct GpuUpload<'a> {
    gpu: &'a Gpu,
    data: &'a [u8],
}

impl Upload for GpuUpload<'_> {
    type M = GpuMatrix;
    type V = GpuBuffer;
    type E = GpuError;

    fn matrix(&self, m: &Matrix) -> Result<GpuMatrix, GpuError> {
        self.gpu
            .upload_matrix(m.ty, m.rows, m.cols, m.bytes(self.data))
    }

    fn vector(&self, v: &[f32]) -> Result<GpuBuffer, GpuError> {
        self.gpu.upload_f32(v)
    }
}

/// Uploads every tensor a step reads.
///
/// # Errors
/// [`ModelError::Gpu`] for a tensor past the device's limits.
pub(super) fn upload(
    gpu: &Gpu,
    model: &Model,
) -> Result<BlockWeights<GpuMatrix, GpuBuffer>, ModelError> {
    // The file's own bytes, not `model.data()`: the CPU's 2 MiB-page copy leaves the ranges of the matrices it
    // repacked unwritten (zeros), and the GPU uploads every matrix in file layout.
    let up = GpuUpload {
        gpu,
        data: model.gguf().data(),
    };
    Ok(block_weights::upload(&up, model.weights())?)
}

/// Errors unless `b` runs every op on every format the model's block needs.
///
/// # Errors
/// [`ModelError::Gpu`] (`Unsupported`) for a weight format, [`ModelError::NoGpuPath`] for a model part.
pub(super) fn check_supported(b: &GpuBackend<'_>, model: &Model) -> Result<(), ModelError> {
    let w = model.weights();
    let format = |op: Op, m: &Matrix| -> Result<(), ModelError> {
        if b.supports(op, m.ty) {
            Ok(())
        } else {
            Err(GpuError::Unsupported(m.ty).into())
        }
    };
    format(Op::GetRows, &w.token_embd)?;
    format(Op::MatMul, w.output_matrix())?;
    for op in [
        Op::RmsNorm,
        Op::Rope,
        Op::Attention,
        Op::Activation,
        Op::Elementwise,
        Op::Copy,
        Op::Read,
    ] {
        if !b.supports(op, GgmlType::F32) {
            return Err(ModelError::NoGpuPath(format!("{op:?}")));
        }
    }
    for lw in &w.layers {
        for m in [&lw.wq, &lw.wk, &lw.wv, &lw.wo] {
            format(Op::MatMul, m)?;
        }
        let FfnWeights::Experts(e) = &lw.ffn else {
            for m in lw.ffn.matrices() {
                format(Op::MatMul, m)?;
            }
            continue;
        };
        format(Op::MatMul, &e.router)?;
        for m in e.gate.iter().chain(&e.up).chain(&e.down) {
            format(Op::MatMulId, m)?;
        }
        if let Some(s) = &e.shared {
            if !b.supports(Op::SigmoidGate, GgmlType::F32) {
                return Err(ModelError::NoGpuPath(
                    "a sigmoid-gated shared expert".into(),
                ));
            }
            for m in [&s.gate, &s.up, &s.down] {
                format(Op::MatMul, m)?;
            }
        }
    }
    Ok(())
}
