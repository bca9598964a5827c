//! The model's tensors, found by name and checked against the spec: matrices stay in the memory map,
//! small vectors (norms, biases) are read into f32 once.

use std::ops::Range;

use cria_gguf::{GgmlType, GgufFile, TensorView};
use cria_kernels::matmul::WeightRef;
use cria_kernels::quant::dequantize_row;

use crate::ModelError;
use crate::spec::ArchSpec;

/// A weight matrix of `rows` x `cols` (`cols` contiguous) living in the file's tensor data.
#[derive(Clone, Debug)]
pub struct Matrix {
    pub ty: GgmlType,
    pub rows: usize,
    pub cols: usize,
    bytes: Range<usize>,
}

impl Matrix {
    /// The matrix as the kernels take it, over the file's tensor data.
    pub fn view<'a>(&self, data: &'a [u8]) -> WeightRef<'a> {
        WeightRef {
            ty: self.ty,
            rows: self.rows,
            cols: self.cols,
            data: &data[self.bytes.clone()],
        }
    }

    /// Row `i` of the matrix, still in its block format.
    pub fn row<'a>(&self, data: &'a [u8], i: usize) -> &'a [u8] {
        let row_bytes = self.bytes.len() / self.rows;
        let start = self.bytes.start + i * row_bytes;
        &data[start..start + row_bytes]
    }
}

/// The tensors of one decoder block.
#[derive(Clone, Debug)]
pub struct LayerWeights {
    pub attn_norm: Vec<f32>,
    pub wq: Matrix,
    pub wk: Matrix,
    pub wv: Matrix,
    pub wo: Matrix,
    pub q_bias: Option<Vec<f32>>,
    pub k_bias: Option<Vec<f32>>,
    pub v_bias: Option<Vec<f32>>,
    pub q_norm: Option<Vec<f32>>,
    pub k_norm: Option<Vec<f32>>,
    pub post_attn_norm: Option<Vec<f32>>,
    pub ffn_norm: Vec<f32>,
    pub w_gate: Matrix,
    pub w_up: Matrix,
    pub w_down: Matrix,
    pub post_ffn_norm: Option<Vec<f32>>,
}

/// Every tensor the forward pass reads.
#[derive(Clone, Debug)]
pub struct Weights {
    pub token_embd: Matrix,
    pub layers: Vec<LayerWeights>,
    pub output_norm: Vec<f32>,
    /// `None`: the output matrix is tied to the embeddings.
    pub output: Option<Matrix>,
    /// LLaMA-3 RoPE frequency factors, one per rotated pair.
    pub rope_freqs: Option<Vec<f32>>,
}

struct Loader<'a> {
    file: &'a GgufFile,
    spec: &'a ArchSpec,
}

impl Loader<'_> {
    fn tensor(&self, name: &str) -> Result<TensorView<'_>, ModelError> {
        self.file
            .tensor(name)
            .ok_or_else(|| ModelError::MissingTensor(name.to_string()))
    }

    fn matrix(&self, name: &str, cols: usize, rows: usize) -> Result<Matrix, ModelError> {
        let t = self.tensor(name)?;
        let expected = [cols as u64, rows as u64];
        if t.shape() != expected {
            return Err(ModelError::BadShape {
                name: name.to_string(),
                expected: expected.to_vec(),
                found: t.shape().to_vec(),
            });
        }
        if matches!(t.ty(), GgmlType::Q8_1 | GgmlType::Q8_K) {
            // Activation-only formats: ggml has no dot product with them as weights.
            return Err(ModelError::BadTensorType {
                name: name.to_string(),
                ty: t.ty(),
            });
        }
        let start =
            usize::try_from(t.info.offset).map_err(|_| ModelError::MissingTensor(name.into()))?;
        Ok(Matrix {
            ty: t.ty(),
            rows,
            cols,
            bytes: start..start + t.data.len(),
        })
    }

    fn vector(&self, name: &str, len: usize) -> Result<Vec<f32>, ModelError> {
        let t = self.tensor(name)?;
        if t.n_elements() != len as u64 || t.shape().iter().skip(1).any(|d| *d != 1) {
            return Err(ModelError::BadShape {
                name: name.to_string(),
                expected: vec![len as u64],
                found: t.shape().to_vec(),
            });
        }
        let mut out = vec![0.0; len];
        dequantize_row(t.ty(), t.data, &mut out).map_err(|_| ModelError::BadTensorType {
            name: name.to_string(),
            ty: t.ty(),
        })?;
        Ok(out)
    }

    fn optional_vector(&self, name: &str, len: usize) -> Result<Option<Vec<f32>>, ModelError> {
        match self.file.tensor(name) {
            Some(_) => self.vector(name, len).map(Some),
            None => Ok(None),
        }
    }

    fn layer(&self, il: usize) -> Result<LayerWeights, ModelError> {
        let s = self.spec;
        let n = |suffix: &str| format!("blk.{il}.{suffix}");
        let (d, q, kv, ff) = (s.n_embd, s.q_dim(), s.kv_dim(), s.n_ff);
        let required =
            |name: &str, len: usize, wanted: bool| -> Result<Option<Vec<f32>>, ModelError> {
                if wanted {
                    self.vector(&n(name), len).map(Some)
                } else {
                    Ok(None)
                }
            };
        Ok(LayerWeights {
            attn_norm: self.vector(&n("attn_norm.weight"), d)?,
            wq: self.matrix(&n("attn_q.weight"), d, q)?,
            wk: self.matrix(&n("attn_k.weight"), d, kv)?,
            wv: self.matrix(&n("attn_v.weight"), d, kv)?,
            wo: self.matrix(&n("attn_output.weight"), q, d)?,
            q_bias: required("attn_q.bias", q, s.qkv_bias)?,
            k_bias: required("attn_k.bias", kv, s.qkv_bias)?,
            v_bias: required("attn_v.bias", kv, s.qkv_bias)?,
            q_norm: required("attn_q_norm.weight", s.head_dim, s.qk_norm)?,
            k_norm: required("attn_k_norm.weight", s.head_dim, s.qk_norm)?,
            post_attn_norm: required("post_attention_norm.weight", d, s.post_norms)?,
            ffn_norm: self.vector(&n("ffn_norm.weight"), d)?,
            w_gate: self.matrix(&n("ffn_gate.weight"), d, ff)?,
            w_up: self.matrix(&n("ffn_up.weight"), d, ff)?,
            w_down: self.matrix(&n("ffn_down.weight"), ff, d)?,
            post_ffn_norm: required("post_ffw_norm.weight", d, s.post_norms)?,
        })
    }
}

impl Weights {
    /// Finds and checks every tensor `spec` needs in `file`.
    pub fn load(file: &GgufFile, spec: &ArchSpec) -> Result<Weights, ModelError> {
        let l = Loader { file, spec };
        let layers = (0..spec.n_layer)
            .map(|il| l.layer(il))
            .collect::<Result<Vec<_>, _>>()?;
        let output = match file.tensor("output.weight") {
            Some(_) => Some(l.matrix("output.weight", spec.n_embd, spec.n_vocab)?),
            None => None,
        };
        Ok(Weights {
            token_embd: l.matrix("token_embd.weight", spec.n_embd, spec.n_vocab)?,
            layers,
            output_norm: l.vector("output_norm.weight", spec.n_embd)?,
            output,
            rope_freqs: l.optional_vector("rope_freqs.weight", spec.rope.n_rot / 2)?,
        })
    }

    /// The matrix that turns the final hidden state into logits.
    pub fn output_matrix(&self) -> &Matrix {
        self.output.as_ref().unwrap_or(&self.token_embd)
    }
}
