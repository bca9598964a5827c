//! The small ops of a transformer forward pass, on f32 rows: normalisation (RMS and layer norm), rotary
//! embedding, softmax, gated activations, residual add, attention over an f16 KV cache, and embedding lookup.
//!
//! Shapes are the caller's contract: a mismatch is a bug in the caller, so these functions `assert!` (and
//! panic with a message) rather than return errors. Each op has a scalar body; the hot ones (attention's
//! q·k and v accumulation, rms_norm's sum of squares, silu) go through [`simd`] kernels picked once from
//! [`crate::isa::active`].

mod act;
mod attention;
mod attention_batch;
mod get_rows;
mod kv_view;
mod layer_norm;
mod norm;
mod rope;
#[doc(hidden)]
pub mod simd;
mod softmax;

pub use act::{
    add_inplace, gelu, gelu_as_ggml, gelu_mul, mul_inplace, scale_inplace, silu, silu_mul,
    swiglu_oai_mul,
};
pub use attention::{AttentionParams, attention, attention_ext};
pub use attention_batch::{CausalBatch, QueryRow, attention_batch, attention_rows};
pub use get_rows::get_rows;
pub use kv_view::KvView;
pub use layer_norm::{layer_norm, layer_norm_inplace};
pub use norm::{rms_norm, rms_norm_inplace};
pub use rope::{RopeParams, RopeStyle, Yarn, rope_cos_sin, rope_inplace, yarn_corr_dims};
pub use softmax::softmax_inplace;
