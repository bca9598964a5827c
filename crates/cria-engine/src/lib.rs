//! cria-engine: requests in, token events out.
//!
//! One engine thread owns the model. Each step it admits queued requests into free sequence slots, plans a
//! batch (one token per decoding sequence, a chunk of prompt for those still prefilling), runs one forward
//! pass through a [`Backend`], samples, applies the stop rules and sends each request its events. A request
//! whose receiver is dropped is cancelled at the next step and its slot (and KV cache) freed.
//!
//! A panic inside a step is caught: the requests of that step fail, their slots are emptied, and the engine
//! goes on. A panic it cannot recover from (outside a step, while freeing a slot, or too many steps in a row)
//! stops the engine for good: every request fails and [`Engine::failure`] says why.
//!
//! Embeddings run on a worker of their own ([`Embedder`]), beside the generation engine.

mod backend;
mod blocks;
#[cfg(feature = "model")]
mod device_backend;
mod embed;
#[cfg(feature = "model")]
mod embed_model;
mod engine;
mod error;
mod fault;
#[cfg(feature = "model")]
mod model_backend;
mod request;
pub mod scheduler;
mod sequence;
mod stats;
pub mod text;
mod window;
mod worker;

pub use backend::{Backend, Step, Vocab};
#[cfg(feature = "model")]
pub use device_backend::{DeviceBackend, GpuBackend};
pub use embed::{EmbedBackend, EmbedResult, Embedder, EmbedderConfig};
#[cfg(feature = "model")]
pub use embed_model::{DecoderEmbedder, EncoderEmbedder};
pub use engine::{Engine, EngineConfig};
pub use error::{EngineError, SubmitError};
pub use fault::{FAULT_ENV, FaultPlan};
#[cfg(feature = "model")]
pub use model_backend::ModelBackend;
pub use request::{Event, FinishReason, Request, TokenLogprob};
pub use stats::StatsSnapshot;
