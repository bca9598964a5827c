//! The encoder's tensors, found by name and checked against its spec: matrices stay in the memory map (as
//! byte ranges of the file's tensor data), vectors (norms, biases, the type row) are read into f32 once.

use cria_gguf::GgufFile;
use cria_kernels::quant::dequantize_row;

use super::spec::{EncoderFfn, EncoderSpec, Positions};
use crate::ModelError;
use crate::weights::{Matrix, read_matrix, read_optional_vector, read_vector};

/// A LayerNorm's weight and bias.
#[derive(Clone, Debug)]
pub(crate) struct Norm {
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
}

/// Q, K and V: one fused matrix (rows Q, then K, then V) or three.
#[derive(Clone, Debug)]
pub(crate) enum Qkv {
    Fused {
        w: Matrix,
        bias: Option<Vec<f32>>,
    },
    Split {
        q: Matrix,
        k: Matrix,
        v: Matrix,
        q_bias: Option<Vec<f32>>,
        k_bias: Option<Vec<f32>>,
        v_bias: Option<Vec<f32>>,
    },
}

#[derive(Clone, Debug)]
pub(crate) struct EncoderLayer {
    pub qkv: Qkv,
    pub wo: Matrix,
    pub wo_bias: Option<Vec<f32>>,
    pub attn_out_norm: Norm,
    pub up: Matrix,
    pub up_bias: Option<Vec<f32>>,
    /// SwiGLU's gate (nomic-bert).
    pub gate: Option<Matrix>,
    pub down: Matrix,
    pub down_bias: Option<Vec<f32>>,
    pub layer_out_norm: Norm,
}

#[derive(Clone, Debug)]
pub(crate) struct EncoderWeights {
    pub token_embd: Matrix,
    /// Row 0 of `token_types` (llama.cpp feeds every token as type 0, "sentence A").
    pub type_row0: Option<Vec<f32>>,
    pub position_embd: Option<Matrix>,
    pub embd_norm: Norm,
    pub layers: Vec<EncoderLayer>,
}

struct Loader<'a> {
    file: &'a GgufFile,
}

impl Loader<'_> {
    fn matrix(&self, name: &str, cols: usize, rows: usize) -> Result<Matrix, ModelError> {
        let m = read_matrix(self.file, name, cols, rows)?;
        if m.ty.row_bytes(cols).is_none() {
            return Err(ModelError::BadTensorType {
                name: name.to_string(),
                ty: m.ty,
            });
        }
        Ok(m)
    }

    fn optional_matrix(
        &self,
        name: &str,
        cols: usize,
        rows: usize,
    ) -> Result<Option<Matrix>, ModelError> {
        match self.file.tensor(name) {
            Some(_) => self.matrix(name, cols, rows).map(Some),
            None => Ok(None),
        }
    }

    fn vector(&self, name: &str, len: usize) -> Result<Vec<f32>, ModelError> {
        read_vector(self.file, name, len)
    }

    fn optional_vector(&self, name: &str, len: usize) -> Result<Option<Vec<f32>>, ModelError> {
        read_optional_vector(self.file, name, len)
    }

    fn norm(&self, prefix: &str, len: usize) -> Result<Norm, ModelError> {
        Ok(Norm {
            weight: self.vector(&format!("{prefix}.weight"), len)?,
            bias: self.vector(&format!("{prefix}.bias"), len)?,
        })
    }

    /// Row 0 of the `{n_embd, n_types}` token-type table, if there is one.
    fn type_row0(&self, d: usize) -> Result<Option<Vec<f32>>, ModelError> {
        let name = "token_types.weight";
        let Some(t) = self.file.tensor(name) else {
            return Ok(None);
        };
        let bad_shape = || ModelError::BadShape {
            name: name.to_string(),
            expected: vec![d as u64, 1],
            found: t.shape().to_vec(),
        };
        if t.shape().first() != Some(&(d as u64)) {
            return Err(bad_shape());
        }
        let row_bytes = t.ty().row_bytes(d).ok_or_else(bad_shape)?;
        let row = t.data.get(..row_bytes).ok_or_else(bad_shape)?;
        let mut out = vec![0.0; d];
        dequantize_row(t.ty(), row, &mut out).map_err(|_| ModelError::BadTensorType {
            name: name.to_string(),
            ty: t.ty(),
        })?;
        Ok(Some(out))
    }

    fn qkv(&self, il: usize, s: &EncoderSpec) -> Result<Qkv, ModelError> {
        let n = |suffix: &str| format!("blk.{il}.{suffix}");
        let (d, q, kv) = (s.n_embd, s.q_dim(), s.kv_dim());
        if let Some(w) = self.optional_matrix(&n("attn_qkv.weight"), d, q + 2 * kv)? {
            let bias = self.optional_vector(&n("attn_qkv.bias"), q + 2 * kv)?;
            return Ok(Qkv::Fused { w, bias });
        }
        Ok(Qkv::Split {
            q: self.matrix(&n("attn_q.weight"), d, q)?,
            k: self.matrix(&n("attn_k.weight"), d, kv)?,
            v: self.matrix(&n("attn_v.weight"), d, kv)?,
            q_bias: self.optional_vector(&n("attn_q.bias"), q)?,
            k_bias: self.optional_vector(&n("attn_k.bias"), kv)?,
            v_bias: self.optional_vector(&n("attn_v.bias"), kv)?,
        })
    }

    fn layer(&self, il: usize, s: &EncoderSpec) -> Result<EncoderLayer, ModelError> {
        let n = |suffix: &str| format!("blk.{il}.{suffix}");
        let (d, ff) = (s.n_embd, s.n_ff);
        let gelu = s.ffn == EncoderFfn::Gelu;
        // nomic-bert's graph passes no FFN biases, whatever the file holds
        let ffn_bias = |name: &str, len: usize| {
            if gelu {
                self.optional_vector(&n(name), len)
            } else {
                Ok(None)
            }
        };
        Ok(EncoderLayer {
            qkv: self.qkv(il, s)?,
            wo: self.matrix(&n("attn_output.weight"), s.q_dim(), d)?,
            wo_bias: self.optional_vector(&n("attn_output.bias"), d)?,
            attn_out_norm: self.norm(&n("attn_output_norm"), d)?,
            up: self.matrix(&n("ffn_up.weight"), d, ff)?,
            up_bias: ffn_bias("ffn_up.bias", ff)?,
            gate: if gelu {
                None
            } else {
                Some(self.matrix(&n("ffn_gate.weight"), d, ff)?)
            },
            down: self.matrix(&n("ffn_down.weight"), ff, d)?,
            down_bias: ffn_bias("ffn_down.bias", d)?,
            layer_out_norm: self.norm(&n("layer_output_norm"), d)?,
        })
    }
}

impl EncoderWeights {
    /// Finds and checks every tensor `spec` needs in `file`.
    pub fn load(file: &GgufFile, spec: &EncoderSpec) -> Result<EncoderWeights, ModelError> {
        let l = Loader { file };
        let d = spec.n_embd;
        let position_embd = match spec.positions {
            Positions::Absolute => Some(l.matrix("position_embd.weight", d, spec.n_ctx_train)?),
            Positions::Rope(_) => None,
        };
        Ok(EncoderWeights {
            token_embd: l.matrix("token_embd.weight", d, spec.n_vocab)?,
            type_row0: l.type_row0(d)?,
            position_embd,
            embd_norm: l.norm("token_embd_norm", d)?,
            layers: (0..spec.n_layer)
                .map(|il| l.layer(il, spec))
                .collect::<Result<Vec<_>, _>>()?,
        })
    }
}
