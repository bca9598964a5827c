//! The endpoints.

pub mod chat;
mod chat_stream;
pub mod completions;
pub mod embeddings;
pub mod misc;

pub use chat::chat_completions;
pub use completions::completions;
pub use embeddings::embeddings;
pub use misc::{fallback, health, method_not_allowed, metrics, models};

/// The `system_fingerprint` of every response.
pub const FINGERPRINT: &str = concat!("cria-", env!("CARGO_PKG_VERSION"));
