//! GGUF v2/v3 reader and writer: header, metadata, tensor infos, memory-mapped tensor data, validation.

mod types;

pub use types::GgmlType;
