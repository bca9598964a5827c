//! The one error type of this crate.

use std::path::PathBuf;

use crate::value::ValueType;

/// Everything that can go wrong reading, validating, querying or writing a GGUF file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GgufError {
    #[error("cannot open {path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read tensor data: {0}")]
    Read(#[source] std::io::Error),
    #[error("cannot write GGUF data: {0}")]
    Write(#[source] std::io::Error),
    #[error("not a GGUF file: magic {found:02x?} at offset 0 (expected \"GGUF\")")]
    BadMagic { found: Vec<u8> },
    #[error("big-endian GGUF files are not supported (version field reads {version:#010x})")]
    BigEndian { version: u32 },
    #[error("unsupported GGUF version {version} (supported: 2 and 3)")]
    UnsupportedVersion { version: u32 },
    #[error("file truncated: {what} at offset {offset} needs {needed} bytes, {available} left")]
    Truncated {
        what: &'static str,
        offset: u64,
        needed: u64,
        available: u64,
    },
    #[error(
        "{what} count {count} at offset {offset} is more than the {available} bytes left could hold"
    )]
    CountTooLarge {
        what: &'static str,
        count: u64,
        offset: u64,
        available: u64,
    },
    #[error("{what} at offset {offset} is not valid UTF-8")]
    InvalidUtf8 { what: &'static str, offset: u64 },
    #[error("unknown metadata value type {id} at offset {offset}")]
    BadValueType { id: u32, offset: u64 },
    #[error("unknown array element type {id} at offset {offset}")]
    BadArrayType { id: u32, offset: u64 },
    #[error("arrays nested deeper than {max} at offset {offset}")]
    ArrayTooDeep { max: usize, offset: u64 },
    #[error("bool value {value} at offset {offset} is neither 0 nor 1")]
    BadBool { value: u8, offset: u64 },
    #[error("duplicate metadata key {key:?} at offset {offset}")]
    DuplicateKey { key: String, offset: u64 },
    #[error("general.alignment has type {found:?}, expected u32")]
    AlignmentType { found: ValueType },
    #[error("general.alignment {value} is not a power of two from 1 to 16 MiB")]
    BadAlignment { value: u64 },
    #[error("tensor {tensor:?} at offset {offset} has {n_dims} dimensions (at most {max})")]
    TooManyDims {
        tensor: String,
        n_dims: u32,
        offset: u64,
        max: usize,
    },
    #[error("tensor {tensor:?}: dimensions {shape:?} overflow")]
    DimsOverflow { tensor: String, shape: Vec<u64> },
    #[error(
        "tensor {tensor:?} at offset {offset} has ggml type id {id}, which Cria does not read (it reads {})",
        crate::types::supported_type_names()
    )]
    UnknownTensorType {
        tensor: String,
        id: u32,
        offset: u64,
    },
    #[error("tensor {tensor:?}: row length {row} is not a multiple of {ty}'s block size {block}")]
    RowNotBlockMultiple {
        tensor: String,
        ty: &'static str,
        row: u64,
        block: usize,
    },
    #[error("duplicate tensor name {name:?} at offset {offset}")]
    DuplicateTensor { name: String, offset: u64 },
    #[error(
        "tensor {tensor:?}: data offset {offset} is not a multiple of the alignment {alignment}"
    )]
    UnalignedTensor {
        tensor: String,
        offset: u64,
        alignment: u64,
    },
    #[error(
        "tensor {tensor:?}: data [{offset}, {offset}+{n_bytes}) lies outside the {available}-byte data section"
    )]
    TensorOutOfBounds {
        tensor: String,
        offset: u64,
        n_bytes: u64,
        available: u64,
    },
    #[error("tensors {first:?} and {second:?} overlap in the data section")]
    TensorOverlap { first: String, second: String },
    #[error(
        "data section starts at offset {data_offset}, past the end of the {file_len}-byte file"
    )]
    DataOffsetBeyondFile { data_offset: u64, file_len: u64 },
    #[error("file is too large for this platform's address space")]
    TooLarge,
    #[error("metadata key {key:?} is missing")]
    MissingKey { key: String },
    #[error("metadata key {key:?} holds {found:?}, expected {expected}")]
    WrongType {
        key: String,
        expected: &'static str,
        found: ValueType,
    },
    #[error("metadata key {key:?} holds {value}, out of range for {target}")]
    OutOfRange {
        key: String,
        value: String,
        target: &'static str,
    },
    #[error("tensor {tensor:?}: {actual} bytes of data given, its type and shape need {expected}")]
    TensorDataSize {
        tensor: String,
        expected: u64,
        actual: u64,
    },
    #[error("array declared as {declared:?} holds a {found:?} value")]
    ArrayElementType {
        declared: ValueType,
        found: ValueType,
    },
}
