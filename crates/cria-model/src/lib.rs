//! The transformer: `ArchSpec` (an architecture as data), weights read from GGUF, the KV cache, and one
//! forward pass shared by every architecture (`spec::SUPPORTED_ARCHITECTURES`); and the BERT-family encoders for
//! embeddings ([`Encoder`]).

pub mod arch;
mod block;
mod block_weights;
mod device;
pub mod encoder;
mod error;
pub mod gpu;
mod kv_cache;
mod kv_store;
mod model;
mod moe;
mod runner;
pub mod spec;
mod weights;

pub use cria_gpu::DeviceChoice;
pub use device::{DeviceCache, DeviceRunner};
pub use encoder::{Encoder, Pooling};
pub use error::ModelError;
pub use kv_cache::{KvCache, KvPool};
pub use model::Model;
pub use runner::{Logits, PagedSeq, Runner, SeqBatch};
pub use spec::ArchSpec;
