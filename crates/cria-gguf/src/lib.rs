//! GGUF v2/v3 reader and writer: header, metadata, tensor infos, memory-mapped tensor data, validation.
//!
//! Every size and offset read from a file is checked before it is used; a malformed file yields a
//! [`GgufError`] naming the problem, never a panic or an allocation the file's size cannot justify.

#![cfg_attr(test, allow(clippy::unwrap_used))]

mod array;
mod cursor;
mod error;
mod file;
mod parse;
mod tensor;
mod types;
mod value;
mod writer;

pub use array::Array;
pub use error::GgufError;
pub use file::GgufFile;
pub use tensor::{TensorInfo, TensorView};
pub use types::GgmlType;
pub use value::{Value, ValueType};
pub use writer::GgufWriter;

/// The four bytes every GGUF file starts with.
pub const GGUF_MAGIC: [u8; 4] = *b"GGUF";
/// Tensor data alignment when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// Largest `general.alignment` accepted. llama.cpp only asks for a power of two, but no real file
/// aligns past a huge page (2 MiB); a 2 GiB alignment in a header of a few bytes would make a
/// rewrite pad gigabytes of zeros (found by the fuzzer), so larger values are refused.
pub const MAX_ALIGNMENT: u64 = 16 << 20;
/// Most dimensions a tensor may have (ggml's `GGML_MAX_DIMS`).
pub const MAX_DIMS: usize = 4;
/// Deepest nesting of arrays inside arrays accepted in metadata.
pub const MAX_ARRAY_DEPTH: usize = 16;
