//! BERT-family encoders for embeddings (`bert`, `nomic-bert`): an [`EncoderSpec`] read from GGUF, the
//! weights memory-mapped, one forward pass over the whole input, then pooling and L2 normalisation as
//! llama.cpp's `llama-embedding` does them.

mod forward;
mod pooling;
mod spec;
mod weights;

use std::path::Path;

use cria_gguf::GgufFile;
use cria_kernels::pool::ThreadPool;

pub use pooling::{Pooling, l2_normalize};
pub use spec::{ENCODER_ARCHS, EncoderFfn, EncoderSpec, Positions};

use crate::ModelError;
use weights::EncoderWeights;

/// An embedding model, with its own thread pool for the matrix products.
pub struct Encoder {
    file: GgufFile,
    spec: EncoderSpec,
    weights: EncoderWeights,
    pool: ThreadPool,
}

impl Encoder {
    /// Opens, validates and maps a GGUF encoder file; `n_threads` run its matrix products.
    pub fn load(path: &Path, n_threads: usize) -> Result<Encoder, ModelError> {
        Encoder::from_gguf(GgufFile::open(path)?, n_threads)
    }

    /// Builds an encoder from an opened file; [`ModelError::NotAnEncoder`] for other architectures.
    pub fn from_gguf(file: GgufFile, n_threads: usize) -> Result<Encoder, ModelError> {
        let spec = EncoderSpec::from_gguf(&file)?;
        let weights = EncoderWeights::load(&file, &spec)?;
        Ok(Encoder {
            file,
            spec,
            weights,
            pool: ThreadPool::new(n_threads.max(1)),
        })
    }

    /// The GGUF file (metadata, tokenizer data).
    pub fn gguf(&self) -> &GgufFile {
        &self.file
    }

    pub fn spec(&self) -> &EncoderSpec {
        &self.spec
    }

    /// Values per embedding.
    pub fn n_embd(&self) -> usize {
        self.spec.n_embd
    }

    /// The last layer's output for every token of `ids` (`ids.len()` rows of [`Encoder::n_embd`]).
    ///
    /// # Errors
    /// An id outside the vocabulary; more tokens than a model with absolute positions has positions.
    pub fn hidden_states(&self, ids: &[u32]) -> Result<Vec<f32>, ModelError> {
        forward::Pass {
            spec: &self.spec,
            weights: &self.weights,
            data: self.file.data(),
            pool: &self.pool,
        }
        .run(ids)
    }

    /// `ids` pooled as `pooling` asks, not normalised: one row of [`Encoder::n_embd`], or every token's row
    /// for [`Pooling::None`]. Empty input gives an empty vector.
    pub fn embed_with(&self, ids: &[u32], pooling: Pooling) -> Result<Vec<f32>, ModelError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let states = self.hidden_states(ids)?;
        Ok(pooling.apply(&states, self.spec.n_embd))
    }

    /// The embedding of `ids` (already tokenized with `add_special`, so `[CLS] ... [SEP]`) as
    /// `llama-embedding` prints it: the model's pooling, then each vector scaled to unit length (with
    /// [`Pooling::None`], each token's).
    pub fn embed(&self, ids: &[u32]) -> Result<Vec<f32>, ModelError> {
        let mut v = self.embed_with(ids, self.spec.pooling)?;
        v.chunks_mut(self.spec.n_embd.max(1)).for_each(l2_normalize);
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The server shares one encoder between request handlers.
    #[test]
    fn encoder_is_send_and_sync() {
        fn shareable<T: Send + Sync>() {}
        shareable::<Encoder>();
    }
}
