//! The model's tensors, found by name and checked against the spec: matrices are read where the file lays
//! them out (the map, or on Linux its copy on 2 MiB pages: [`resident_copy`]; the layers' Q4_0 / Q4_K ones
//! repacked for the kernels where they take them), small vectors (norms, biases) are read into f32 once.

use std::ops::Range;
use std::sync::Arc;

use cria_gguf::{GgmlType, GgufFile, TensorView};
use cria_kernels::backend::cpu::CpuMatrix;
use cria_kernels::matmul::WeightRef;
use cria_kernels::packed::{self, Layout};
use cria_kernels::quant::dequantize_row;

use crate::ModelError;
use crate::spec::{ArchSpec, MoeSpec, QkNorm};

/// A weight matrix of `rows` x `cols` (`cols` contiguous) living in the file's tensor data, or repacked
/// into the kernels' 8-row groups ([`Matrix::repack`]).
#[derive(Clone, Debug)]
pub struct Matrix {
    pub ty: GgmlType,
    pub rows: usize,
    pub cols: usize,
    bytes: Range<usize>,
    /// The repacked copy, which replaces `bytes` of the file for the kernels.
    packed: Option<Arc<Vec<u8>>>,
}

impl Matrix {
    /// The matrix as the kernels take it, over the file's tensor data (or its repacked copy).
    pub fn view<'a>(&'a self, data: &'a [u8]) -> WeightRef<'a> {
        match &self.packed {
            Some(p) => WeightRef {
                ty: self.ty,
                rows: self.rows,
                cols: self.cols,
                data: p,
                layout: Layout::Groups8,
            },
            None => WeightRef {
                ty: self.ty,
                rows: self.rows,
                cols: self.cols,
                data: &data[self.bytes.clone()],
                layout: Layout::Rows,
            },
        }
    }

    /// Repacks the matrix into the kernels' 8-row groups where they take it (`packed::packs`: Q4_0 and
    /// Q4_K, rows a multiple of 8, on x86-64), as llama.cpp does at load, so that its products keep
    /// llama.cpp's repacked summation order. The bytes are read from the file with `pread`, not through the
    /// map, so the file's copy of them never becomes resident: RAM holds the repacked copy alone.
    fn repack(&mut self, file: &GgufFile) -> Result<(), ModelError> {
        if self.packed.is_some() || !packed::packs(self.ty, self.rows, self.cols) {
            return Ok(());
        }
        let mut rows = vec![0u8; self.bytes.len()];
        file.read_data(self.bytes.start, &mut rows)?;
        self.packed = Some(Arc::new(packed::pack(
            self.ty, self.rows, self.cols, &rows,
        )?));
        Ok(())
    }

    /// The matrix cut into consecutive blocks of rows (a fused tensor's parts: Q, K, V or gate, up).
    /// `None` unless the counts add up to `rows`.
    pub fn split_rows(&self, counts: &[usize]) -> Option<Vec<Matrix>> {
        if counts.iter().sum::<usize>() != self.rows || self.rows == 0 {
            return None;
        }
        let row_bytes = self.bytes.len() / self.rows;
        let mut start = self.bytes.start;
        let parts = counts.iter().map(|&rows| {
            let part = Matrix {
                ty: self.ty,
                rows,
                cols: self.cols,
                bytes: start..start + rows * row_bytes,
                packed: None,
            };
            start += rows * row_bytes;
            part
        });
        Some(parts.collect())
    }

    /// The matrix as the CPU backend holds it (the same bytes [`Matrix::view`] reads).
    pub fn cpu(&self) -> CpuMatrix {
        let shape = (self.rows, self.cols);
        match &self.packed {
            Some(p) => CpuMatrix::packed(self.ty, shape, Arc::clone(p)),
            None => CpuMatrix::in_file(self.ty, shape, self.bytes.clone()),
        }
    }

    /// The whole matrix, still in its block format, from the file (embeddings; never repacked).
    pub fn bytes<'a>(&self, data: &'a [u8]) -> &'a [u8] {
        &data[self.bytes.clone()]
    }
}

/// The tensors of one decoder block.
#[derive(Clone, Debug)]
pub struct LayerWeights {
    /// `None` for post-norm-only blocks (OLMo 2, EXAONE 4).
    pub attn_norm: Option<Vec<f32>>,
    pub wq: Matrix,
    pub wk: Matrix,
    pub wv: Matrix,
    pub wo: Matrix,
    pub q_bias: Option<Vec<f32>>,
    pub k_bias: Option<Vec<f32>>,
    pub v_bias: Option<Vec<f32>>,
    /// The output projection's bias (gpt-oss), wherever the file has one.
    pub o_bias: Option<Vec<f32>>,
    /// One sink logit per query head (gpt-oss).
    pub attn_sinks: Option<Vec<f32>>,
    pub q_norm: Option<Vec<f32>>,
    pub k_norm: Option<Vec<f32>>,
    pub post_attn_norm: Option<Vec<f32>>,
    pub ffn_norm: Option<Vec<f32>>,
    pub ffn: FfnWeights,
    pub post_ffn_norm: Option<Vec<f32>>,
}

impl LayerWeights {
    /// The attention and dense FFN matrices, which are repacked for the kernels where they take them
    /// (experts keep the file's layout; the embeddings and the output matrix too).
    fn repackable(&mut self) -> Vec<&mut Matrix> {
        let mut all = vec![&mut self.wq, &mut self.wk, &mut self.wv, &mut self.wo];
        if let FfnWeights::Dense { gate, up, down } = &mut self.ffn {
            all.extend([gate, up, down]);
        }
        all
    }
}

/// The feed-forward network of one block.
#[derive(Clone, Debug)]
pub enum FfnWeights {
    Dense {
        gate: Matrix,
        up: Matrix,
        down: Matrix,
    },
    /// Boxed: the experts' matrices and biases outweigh a dense FFN's three matrices many times over.
    Experts(Box<ExpertWeights>),
}

impl FfnWeights {
    /// Every matrix of the FFN (all experts).
    pub fn matrices(&self) -> Vec<&Matrix> {
        match self {
            FfnWeights::Dense { gate, up, down } => vec![gate, up, down],
            FfnWeights::Experts(e) => {
                let mut all = vec![&e.router];
                all.extend(e.gate.iter().chain(&e.up).chain(&e.down));
                if let Some(s) = &e.shared {
                    all.extend([&s.gate, &s.up, &s.down]);
                }
                all
            }
        }
    }
}

/// A mixture of experts: the router and each expert's matrices (views into the stacked 3-D tensors).
#[derive(Clone, Debug)]
pub struct ExpertWeights {
    /// How the router picks and weighs them (the spec's, kept beside the weights it describes).
    pub spec: MoeSpec,
    /// `n_expert` rows: one logit per expert.
    pub router: Matrix,
    /// Added to the router's logits (gpt-oss).
    pub router_bias: Option<Vec<f32>>,
    pub gate: Vec<Matrix>,
    pub up: Vec<Matrix>,
    pub down: Vec<Matrix>,
    /// Per-expert biases of the three projections (gpt-oss), wherever the file has them.
    pub biases: Option<ExpertBiases>,
    pub shared: Option<SharedExpert>,
}

/// Each expert's gate, up and down biases, stacked: expert `e`'s are rows `e` of `{width, n_expert}` tensors.
#[derive(Clone, Debug)]
pub struct ExpertBiases {
    pub gate: Vec<f32>,
    pub up: Vec<f32>,
    pub down: Vec<f32>,
}

impl ExpertBiases {
    /// Expert `e`'s row of a stacked bias.
    pub fn row(stacked: &[f32], e: usize, width: usize) -> &[f32] {
        &stacked[e * width..(e + 1) * width]
    }
}

/// Qwen2-MoE's shared expert and its sigmoid gate (`ffn_gate_inp_shexp`, one weight per input).
#[derive(Clone, Debug)]
pub struct SharedExpert {
    pub gate_inp: Vec<f32>,
    pub gate: Matrix,
    pub up: Matrix,
    pub down: Matrix,
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
    /// LongRoPE's factors (Phi-3): short for a sequence context within the original one, long beyond it.
    pub rope_factors_short: Option<Vec<f32>>,
    pub rope_factors_long: Option<Vec<f32>>,
    /// The file ranges of the matrices `repack_all` repacked.
    repacked: Vec<Range<usize>>,
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
        read_matrix(self.file, name, cols, rows)
    }

    fn vector(&self, name: &str, len: usize) -> Result<Vec<f32>, ModelError> {
        read_vector(self.file, name, len)
    }

    fn optional_vector(&self, name: &str, len: usize) -> Result<Option<Vec<f32>>, ModelError> {
        read_optional_vector(self.file, name, len)
    }

    /// A vector read only when `wanted`.
    fn vector_if(
        &self,
        name: &str,
        len: usize,
        wanted: bool,
    ) -> Result<Option<Vec<f32>>, ModelError> {
        if wanted {
            self.vector(name, len).map(Some)
        } else {
            Ok(None)
        }
    }

    /// A matrix split into row blocks of `counts` (a fused tensor).
    fn fused(&self, name: &str, cols: usize, counts: &[usize]) -> Result<Vec<Matrix>, ModelError> {
        let whole = self.matrix(name, cols, counts.iter().sum())?;
        whole
            .split_rows(counts)
            .ok_or_else(|| ModelError::MissingTensor(name.to_string()))
    }

    /// Q, K and V: three tensors, or one fused `attn_qkv` (rows Q, then K, then V).
    fn qkv(&self, il: usize) -> Result<[Matrix; 3], ModelError> {
        let s = self.spec;
        let (d, q, kv) = (s.n_embd, s.q_dim(), s.kv_dim());
        let fused = format!("blk.{il}.attn_qkv.weight");
        if self.file.tensor(&fused).is_some() {
            let mut parts = self.fused(&fused, d, &[q, kv, kv])?.into_iter();
            let mut next = || {
                parts
                    .next()
                    .ok_or_else(|| ModelError::MissingTensor(fused.clone()))
            };
            return Ok([next()?, next()?, next()?]);
        }
        let n = |suffix: &str| format!("blk.{il}.{suffix}");
        Ok([
            self.matrix(&n("attn_q.weight"), d, q)?,
            self.matrix(&n("attn_k.weight"), d, kv)?,
            self.matrix(&n("attn_v.weight"), d, kv)?,
        ])
    }

    /// Q, K and V biases: required where the spec says so, used wherever the file has them (separate or one
    /// fused `attn_qkv.bias`).
    fn qkv_bias(&self, il: usize) -> Result<[Option<Vec<f32>>; 3], ModelError> {
        let s = self.spec;
        let (q, kv) = (s.q_dim(), s.kv_dim());
        let fused = format!("blk.{il}.attn_qkv.bias");
        if self.file.tensor(&fused).is_some() {
            let all = self.vector(&fused, q + 2 * kv)?;
            let (bq, rest) = all.split_at(q);
            let (bk, bv) = rest.split_at(kv);
            return Ok([Some(bq.to_vec()), Some(bk.to_vec()), Some(bv.to_vec())]);
        }
        let bias = |name: &str, len: usize| {
            let full = format!("blk.{il}.{name}");
            let present = s.qkv_bias || self.file.tensor(&full).is_some();
            self.vector_if(&full, len, present)
        };
        Ok([
            bias("attn_q.bias", q)?,
            bias("attn_k.bias", kv)?,
            bias("attn_v.bias", kv)?,
        ])
    }

    /// Gate and up: two tensors, or one `ffn_up` of twice the width with the gate first (Phi-3).
    fn gate_up(&self, il: usize) -> Result<[Matrix; 2], ModelError> {
        let (d, ff) = (self.spec.n_embd, self.spec.n_ff);
        let up = format!("blk.{il}.ffn_up.weight");
        let gate = format!("blk.{il}.ffn_gate.weight");
        if self.file.tensor(&gate).is_none()
            && let Some(t) = self.file.tensor(&up)
            && t.shape() == [d as u64, 2 * ff as u64]
        {
            let mut parts = self.fused(&up, d, &[ff, ff])?.into_iter();
            let mut next = || {
                parts
                    .next()
                    .ok_or_else(|| ModelError::MissingTensor(up.clone()))
            };
            return Ok([next()?, next()?]);
        }
        Ok([self.matrix(&gate, d, ff)?, self.matrix(&up, d, ff)?])
    }

    /// A stacked 3-D tensor `{cols, rows, n}` as its `n` matrices.
    fn experts(
        &self,
        name: &str,
        cols: usize,
        rows: usize,
        n: usize,
    ) -> Result<Vec<Matrix>, ModelError> {
        let t = self.tensor(name)?;
        let expected = [cols as u64, rows as u64, n as u64];
        if t.shape() != expected {
            return Err(ModelError::BadShape {
                name: name.to_string(),
                expected: expected.to_vec(),
                found: t.shape().to_vec(),
            });
        }
        let start =
            usize::try_from(t.info.offset).map_err(|_| ModelError::MissingTensor(name.into()))?;
        let whole = Matrix {
            ty: t.ty(),
            rows: rows * n,
            cols,
            bytes: start..start + t.data.len(),
            packed: None,
        };
        whole
            .split_rows(&vec![rows; n])
            .ok_or_else(|| ModelError::MissingTensor(name.to_string()))
    }

    /// A 2-D tensor `{width, n}` of `n` vectors (per-expert biases), read into f32 row after row.
    fn stacked_vectors(&self, name: &str, width: usize, n: usize) -> Result<Vec<f32>, ModelError> {
        let t = self.tensor(name)?;
        let expected = [width as u64, n as u64];
        if t.shape() != expected {
            return Err(ModelError::BadShape {
                name: name.to_string(),
                expected: expected.to_vec(),
                found: t.shape().to_vec(),
            });
        }
        let mut out = vec![0.0; width * n];
        dequantize_row(t.ty(), t.data, &mut out).map_err(|_| ModelError::BadTensorType {
            name: name.to_string(),
            ty: t.ty(),
        })?;
        Ok(out)
    }

    fn ffn(&self, il: usize) -> Result<FfnWeights, ModelError> {
        let Some(moe) = &self.spec.moe else {
            let [gate, up] = self.gate_up(il)?;
            let down = format!("blk.{il}.ffn_down.weight");
            let down = self.matrix(&down, self.spec.n_ff, self.spec.n_embd)?;
            return Ok(FfnWeights::Dense { gate, up, down });
        };
        let n = |suffix: &str| format!("blk.{il}.{suffix}");
        let (d, ff, x) = (self.spec.n_embd, moe.n_ff_exp, moe.n_expert);
        let shared = match moe.n_ff_shared {
            Some(sff) => Some(SharedExpert {
                gate_inp: self.vector(&n("ffn_gate_inp_shexp.weight"), d)?,
                gate: self.matrix(&n("ffn_gate_shexp.weight"), d, sff)?,
                up: self.matrix(&n("ffn_up_shexp.weight"), d, sff)?,
                down: self.matrix(&n("ffn_down_shexp.weight"), sff, d)?,
            }),
            None => None,
        };
        let bias_names = [
            "ffn_gate_exps.bias",
            "ffn_up_exps.bias",
            "ffn_down_exps.bias",
        ];
        let biases = if bias_names.iter().any(|b| self.file.tensor(&n(b)).is_some()) {
            Some(ExpertBiases {
                gate: self.stacked_vectors(&n(bias_names[0]), ff, x)?,
                up: self.stacked_vectors(&n(bias_names[1]), ff, x)?,
                down: self.stacked_vectors(&n(bias_names[2]), d, x)?,
            })
        } else {
            None
        };
        Ok(FfnWeights::Experts(Box::new(ExpertWeights {
            spec: moe.clone(),
            router: self.matrix(&n("ffn_gate_inp.weight"), d, x)?,
            router_bias: self.optional_vector(&n("ffn_gate_inp.bias"), x)?,
            gate: self.experts(&n("ffn_gate_exps.weight"), d, ff, x)?,
            up: self.experts(&n("ffn_up_exps.weight"), d, ff, x)?,
            down: self.experts(&n("ffn_down_exps.weight"), ff, d, x)?,
            biases,
            shared,
        })))
    }

    fn layer(&self, il: usize) -> Result<LayerWeights, ModelError> {
        let s = self.spec;
        let n = |suffix: &str| format!("blk.{il}.{suffix}");
        let (d, q, kv) = (s.n_embd, s.q_dim(), s.kv_dim());
        let (q_norm_len, k_norm_len) = match s.qk_norm {
            QkNorm::Full => (q, kv),
            _ => (s.head_dim, s.head_dim),
        };
        let qk_norm = s.qk_norm != QkNorm::None;
        let [wq, wk, wv] = self.qkv(il)?;
        let [q_bias, k_bias, v_bias] = self.qkv_bias(il)?;
        Ok(LayerWeights {
            attn_norm: self.vector_if(&n("attn_norm.weight"), d, s.pre_norms)?,
            wq,
            wk,
            wv,
            wo: self.matrix(&n("attn_output.weight"), q, d)?,
            q_bias,
            k_bias,
            v_bias,
            o_bias: self.optional_vector(&n("attn_output.bias"), d)?,
            attn_sinks: self.vector_if(&n("attn_sinks.weight"), s.n_head, s.attn_sinks)?,
            q_norm: self.vector_if(&n("attn_q_norm.weight"), q_norm_len, qk_norm)?,
            k_norm: self.vector_if(&n("attn_k_norm.weight"), k_norm_len, qk_norm)?,
            post_attn_norm: self.vector_if(&n("post_attention_norm.weight"), d, s.post_norms)?,
            ffn_norm: self.vector_if(&n(&format!("{}.weight", s.ffn_norm_name)), d, s.pre_norms)?,
            ffn: self.ffn(il)?,
            post_ffn_norm: self.vector_if(&n("post_ffw_norm.weight"), d, s.post_norms)?,
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
        let mut layers = layers;
        let repacked = repack_all(
            file,
            layers
                .iter_mut()
                .flat_map(LayerWeights::repackable)
                .collect(),
        )?;
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
            rope_factors_short: l
                .optional_vector("rope_factors_short.weight", spec.rope.n_rot / 2)?,
            rope_factors_long: l
                .optional_vector("rope_factors_long.weight", spec.rope.n_rot / 2)?,
            repacked,
        })
    }

    /// The file ranges whose bytes no kernel reads from the file's layout (the matrices repacked at load),
    /// sorted by start.
    pub(crate) fn repacked_ranges(&self) -> &[Range<usize>] {
        &self.repacked
    }

    /// The matrix that turns the final hidden state into logits.
    pub fn output_matrix(&self) -> &Matrix {
        self.output.as_ref().unwrap_or(&self.token_embd)
    }
}

/// Repacks `matrices` on up to `available_parallelism` threads (each takes the next matrix not yet taken),
/// so that loading a model costs little more than reading its repacked tensors. The first error wins.
/// Returns the file ranges of the matrices it repacked, sorted by start.
fn repack_all(
    file: &GgufFile,
    matrices: Vec<&mut Matrix>,
) -> Result<Vec<Range<usize>>, ModelError> {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let jobs: Vec<Mutex<&mut Matrix>> = matrices.into_iter().map(Mutex::new).collect();
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(jobs.len());
    let next = AtomicUsize::new(0);
    let first_error = Mutex::new(None);
    let work = || {
        while let Some(job) = jobs.get(next.fetch_add(1, Ordering::Relaxed)) {
            // A poisoned lock means another thread panicked mid-repack; its panic propagates from the scope.
            let Ok(mut m) = job.lock() else { return };
            if let Err(e) = m.repack(file) {
                if let Ok(mut slot) = first_error.lock() {
                    slot.get_or_insert(e);
                }
                return;
            }
        }
    };
    std::thread::scope(|s| {
        for _ in 1..threads {
            s.spawn(work);
        }
        work();
    });
    if let Ok(Some(e)) = first_error.into_inner() {
        return Err(e);
    }
    let mut repacked: Vec<Range<usize>> = jobs
        .into_iter()
        .filter_map(|job| job.into_inner().ok())
        .filter(|m| m.packed.is_some())
        .map(|m| m.bytes.clone())
        .collect();
    repacked.sort_by_key(|r| r.start);
    Ok(repacked)
}

/// The `rows` x `cols` matrix `name` of `file`: its shape checked, and refused in a format that is only
/// ever an activation (ggml has no dot product with Q8_1 or Q8_K as weights).
pub(crate) fn read_matrix(
    file: &GgufFile,
    name: &str,
    cols: usize,
    rows: usize,
) -> Result<Matrix, ModelError> {
    let t = file
        .tensor(name)
        .ok_or_else(|| ModelError::MissingTensor(name.to_string()))?;
    let expected = [cols as u64, rows as u64];
    if t.shape() != expected {
        return Err(ModelError::BadShape {
            name: name.to_string(),
            expected: expected.to_vec(),
            found: t.shape().to_vec(),
        });
    }
    if matches!(t.ty(), GgmlType::Q8_1 | GgmlType::Q8_K) {
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
        packed: None,
    })
}

/// A 1-D tensor of `len` values (norm weights, biases) read into f32.
pub(crate) fn read_vector(file: &GgufFile, name: &str, len: usize) -> Result<Vec<f32>, ModelError> {
    let t = file
        .tensor(name)
        .ok_or_else(|| ModelError::MissingTensor(name.to_string()))?;
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

/// `read_vector`, or `None` when the file has no such tensor.
pub(crate) fn read_optional_vector(
    file: &GgufFile,
    name: &str,
    len: usize,
) -> Result<Option<Vec<f32>>, ModelError> {
    match file.tensor(name) {
        Some(_) => read_vector(file, name, len).map(Some),
        None => Ok(None),
    }
}

/// Whether `CRIA_MMAP=1` asks to read the weights through the file's map (4 KiB page-cache pages, pages
/// loaded on first use) rather than from a copy on 2 MiB pages ([`resident_copy`]); llama.cpp's `--mmap`.
pub fn mmap_requested() -> bool {
    std::env::var("CRIA_MMAP").is_ok_and(|v| v.trim() == "1")
}

/// The file's tensor data copied into memory advised for 2 MiB pages (`cria_kernels::pages`), laid out as
/// in the file, so the kernels read every weight they take in file layout (Q8_0, Q6_K, the output matrix,
/// the embeddings) from huge pages: decode's one-token kernels ran 9-27% faster per CPU-second from them
/// than from 4 KiB pages (cria-kernels tests/page_ab.rs). The ranges of repacked matrices are left unwritten
/// (their pages are never allocated), and the bytes are read with `pread`, so the map's pages never become
/// resident: RAM holds the model about once. `None` on request ([`mmap_requested`]), where the copy would
/// take more than three quarters of the available memory, where the OS refuses the mapping, or on a target
/// without huge pages.
pub(crate) fn resident_copy(
    file: &GgufFile,
    weights: &Weights,
) -> Result<Option<cria_kernels::pages::HugeBytes>, ModelError> {
    if mmap_requested() || !cfg!(target_os = "linux") {
        return Ok(None);
    }
    let skip = weights.repacked_ranges();
    let ranges: Vec<Range<usize>> = file
        .tensors()
        .iter()
        .filter_map(|info| {
            // Out of range: `open` refused such a file already.
            let start = usize::try_from(info.offset).ok()?;
            let len = usize::try_from(info.n_bytes).ok()?;
            Some(uncovered(start..start + len, skip))
        })
        .flatten()
        .collect();
    let bytes: usize = ranges.iter().map(|r| r.len()).sum();
    if !fits_in_memory(bytes, available_memory()) {
        // A model near or past the RAM: read through the map, whose pages the OS can drop and reload.
        return Ok(None);
    }
    let Ok(mut copy) = cria_kernels::pages::HugeBytes::zeroed(file.data().len()) else {
        return Ok(None);
    };
    for r in ranges {
        file.read_data(r.start, &mut copy[r])?;
    }
    Ok(Some(copy))
}

/// Whether a copy of `bytes` leaves room: at most three quarters of the memory available now (Linux's
/// `MemAvailable`, which counts the page cache the copy can displace). Unknown memory allows it.
fn fits_in_memory(bytes: usize, available: Option<u64>) -> bool {
    available.is_none_or(|a| bytes as u64 <= a / 4 * 3)
}

/// `MemAvailable` of /proc/meminfo in bytes, where there is one.
fn available_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kb.checked_mul(1024)
}

/// The parts of `r` outside every range of `skip` (sorted by start).
fn uncovered(r: Range<usize>, skip: &[Range<usize>]) -> Vec<Range<usize>> {
    let mut parts = Vec::new();
    let mut at = r.start;
    for s in skip.iter().filter(|s| s.start < r.end && s.end > r.start) {
        if s.start > at {
            parts.push(at..s.start);
        }
        at = at.max(s.end);
    }
    if at < r.end {
        parts.push(at..r.end);
    }
    parts
}

#[cfg(test)]
mod resident_tests {
    use super::{available_memory, fits_in_memory, mmap_requested, uncovered};
    use crate::Model;

    /// Every conformance model's copy on 2 MiB pages holds the file's bytes wherever a kernel reads the file
    /// layout (all but the repacked matrices), and is not the map itself.
    #[test]
    fn copy_only_where_it_fits_in_memory() {
        let gib = 1u64 << 30;
        assert!(fits_in_memory(3 << 30, Some(4 * gib)));
        assert!(!fits_in_memory((3 << 30) + 1, Some(4 * gib)));
        assert!(!fits_in_memory(8 << 30, Some(4 * gib)));
        assert!(fits_in_memory(usize::MAX, None));
        if cfg!(target_os = "linux") {
            assert!(available_memory().is_some_and(|a| a > 0));
        }
    }

    #[test]
    fn resident_copy_holds_the_files_bytes() {
        let root =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/conformance");
        let mut checked = 0;
        for case in std::fs::read_dir(&root)
            .expect("testdata/conformance")
            .flatten()
        {
            let path = case.path().join("model.gguf");
            let Ok(model) = Model::load(&path) else {
                continue; // not a decoder (the cases' loader tests cover those)
            };
            let (file, copy) = (model.gguf().data(), model.data());
            assert_eq!(file.len(), copy.len());
            if cfg!(target_os = "linux") && !mmap_requested() {
                assert_ne!(file.as_ptr(), copy.as_ptr(), "{path:?}: no copy");
            }
            let skip = model.weights().repacked_ranges();
            for info in model.gguf().tensors() {
                let start = info.offset as usize;
                for r in uncovered(start..start + info.n_bytes as usize, skip) {
                    assert!(
                        file[r.clone()] == copy[r.clone()],
                        "{path:?} {}: {r:?}",
                        info.name
                    );
                }
            }
            checked += 1;
        }
        assert!(checked >= 10, "only {checked} conformance models loaded");
    }

    #[test]
    #[allow(clippy::single_range_in_vec_init)] // slices of ranges, as `resident_copy` passes
    fn uncovered_leaves_out_the_repacked_parts() {
        assert_eq!(uncovered(0..10, &[]), vec![0..10]);
        assert_eq!(
            uncovered(0..10, &[0..10]),
            Vec::<std::ops::Range<usize>>::new()
        );
        assert_eq!(uncovered(0..10, &[2..4, 6..8]), vec![0..2, 4..6, 8..10]);
        assert_eq!(uncovered(5..10, &[0..6, 9..20]), vec![6..9]);
        assert_eq!(uncovered(5..10, &[10..12]), vec![5..10]);
    }
}
