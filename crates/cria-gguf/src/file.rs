//! `GgufFile`: a validated GGUF file, its metadata, and its tensor data.

use std::path::Path;

use filebuffer::FileBuffer;

use crate::array::Array;
use crate::error::GgufError;
use crate::parse::{Parsed, parse};
use crate::tensor::{TensorInfo, TensorView};
use crate::value::{Value, ValueType};

/// The file's bytes: memory-mapped (with a handle for reads past the map), or an owned buffer.
enum Storage {
    Mapped(FileBuffer, std::fs::File),
    Owned(Vec<u8>),
}

impl Storage {
    fn bytes(&self) -> &[u8] {
        match self {
            Storage::Mapped(map, _) => map,
            Storage::Owned(bytes) => bytes,
        }
    }
}

/// A GGUF file, fully validated when opened: every tensor's data lies inside it.
pub struct GgufFile {
    storage: Storage,
    parsed: Parsed,
}

impl std::fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufFile")
            .field("version", &self.parsed.version)
            .field("metadata", &self.parsed.metadata.len())
            .field("tensors", &self.parsed.tensors.len())
            .finish_non_exhaustive()
    }
}

impl GgufFile {
    /// Memory-maps the file at `path` and validates it.
    pub fn open(path: impl AsRef<Path>) -> Result<GgufFile, GgufError> {
        let path = path.as_ref();
        let open_err = |source| GgufError::Open {
            path: path.to_owned(),
            source,
        };
        let map = FileBuffer::open(path).map_err(open_err)?;
        let handle = std::fs::File::open(path).map_err(open_err)?;
        Self::new(Storage::Mapped(map, handle))
    }

    /// Validates `bytes` as a GGUF file and keeps them.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<GgufFile, GgufError> {
        Self::new(Storage::Owned(bytes))
    }

    fn new(storage: Storage) -> Result<GgufFile, GgufError> {
        let parsed = parse(storage.bytes())?;
        Ok(GgufFile { storage, parsed })
    }

    /// GGUF format version (2 or 3).
    pub fn version(&self) -> u32 {
        self.parsed.version
    }

    /// Tensor data alignment in bytes.
    pub fn alignment(&self) -> u64 {
        self.parsed.alignment
    }

    /// Byte offset of the tensor-data section from the start of the file.
    pub fn data_offset(&self) -> u64 {
        self.parsed.data_offset
    }

    /// Every metadata entry, in file order.
    pub fn metadata(&self) -> &[(String, Value)] {
        &self.parsed.metadata
    }

    /// The value of metadata key `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        let i = *self.parsed.key_index.get(key)?;
        self.parsed.metadata.get(i).map(|(_, v)| v)
    }

    /// Every tensor info, in file order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.parsed.tensors
    }

    /// The tensor named `name`, with its data.
    pub fn tensor(&self, name: &str) -> Option<TensorView<'_>> {
        let info = self
            .parsed
            .tensors
            .get(*self.parsed.tensor_index.get(name)?)?;
        Some(TensorView {
            info,
            data: self.tensor_data(info),
        })
    }

    /// The bytes of the tensor `info` describes. Infos of this file were checked in range at
    /// open; for a foreign info out of range this returns an empty slice.
    pub fn tensor_data(&self, info: &TensorInfo) -> &[u8] {
        let data = self.data();
        let range = usize::try_from(info.offset).ok().and_then(|start| {
            let end = start.checked_add(usize::try_from(info.n_bytes).ok()?)?;
            Some(start..end)
        });
        range.and_then(|r| data.get(r)).unwrap_or(&[])
    }

    /// Copies `dst.len()` bytes of the tensor-data section, from `offset` in it, into `dst`. A mapped file is
    /// read with `pread`, not through the map, so those pages never join this process's resident set: a
    /// caller that converts a tensor into its own copy (the kernels' repacked weights) holds it once.
    pub fn read_data(&self, offset: usize, dst: &mut [u8]) -> Result<(), GgufError> {
        let out_of_range = || {
            GgufError::Read(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "range past the tensor data",
            ))
        };
        let end = offset.checked_add(dst.len()).ok_or_else(out_of_range)?;
        let src = self.data().get(offset..end).ok_or_else(out_of_range)?;
        match &self.storage {
            #[cfg(unix)]
            Storage::Mapped(_, file) => {
                use std::os::unix::fs::FileExt;
                let at = self.parsed.data_offset + offset as u64;
                file.read_exact_at(dst, at).map_err(GgufError::Read)
            }
            _ => {
                dst.copy_from_slice(src);
                Ok(())
            }
        }
    }

    /// The whole tensor-data section.
    pub fn data(&self) -> &[u8] {
        let bytes = self.storage.bytes();
        let start = usize::try_from(self.parsed.data_offset).unwrap_or(usize::MAX);
        bytes.get(start..).unwrap_or(&[])
    }

    /// `general.architecture`.
    pub fn architecture(&self) -> Result<&str, GgufError> {
        self.str("general.architecture")
    }

    fn require(&self, key: &str) -> Result<&Value, GgufError> {
        self.get(key).ok_or_else(|| GgufError::MissingKey {
            key: key.to_owned(),
        })
    }

    fn wrong_type(key: &str, expected: &'static str, found: &Value) -> GgufError {
        GgufError::WrongType {
            key: key.to_owned(),
            expected,
            found: found.value_type(),
        }
    }

    fn out_of_range(key: &str, value: &Value, target: &'static str) -> GgufError {
        GgufError::OutOfRange {
            key: key.to_owned(),
            value: format!("{value:?}"),
            target,
        }
    }

    /// An integer of any type whose value fits `u64`.
    pub fn u64(&self, key: &str) -> Result<u64, GgufError> {
        let v = self.require(key)?;
        if !v.is_integer() {
            return Err(Self::wrong_type(key, "integer", v));
        }
        v.as_u64().ok_or_else(|| Self::out_of_range(key, v, "u64"))
    }

    /// An integer of any type whose value fits `u32`.
    pub fn u32(&self, key: &str) -> Result<u32, GgufError> {
        let v = self.u64(key)?;
        u32::try_from(v).map_err(|_| Self::out_of_range(key, &Value::U64(v), "u32"))
    }

    /// An integer of any type whose value fits `i32`.
    pub fn i32(&self, key: &str) -> Result<i32, GgufError> {
        let v = self.require(key)?;
        if !v.is_integer() {
            return Err(Self::wrong_type(key, "integer", v));
        }
        let wide = v
            .as_i64()
            .ok_or_else(|| Self::out_of_range(key, v, "i32"))?;
        i32::try_from(wide).map_err(|_| Self::out_of_range(key, v, "i32"))
    }

    /// An `f32` (or an `f64`, rounded).
    pub fn f32(&self, key: &str) -> Result<f32, GgufError> {
        let v = self.require(key)?;
        v.as_f32().ok_or_else(|| Self::wrong_type(key, "float", v))
    }

    pub fn bool(&self, key: &str) -> Result<bool, GgufError> {
        let v = self.require(key)?;
        v.as_bool().ok_or_else(|| Self::wrong_type(key, "bool", v))
    }

    pub fn str(&self, key: &str) -> Result<&str, GgufError> {
        let v = self.require(key)?;
        v.as_str().ok_or_else(|| Self::wrong_type(key, "string", v))
    }

    /// The array at `key`, whose elements must all be of `elem` type(s) (by `accept`).
    fn array(
        &self,
        key: &str,
        expected: &'static str,
        accept: fn(ValueType) -> bool,
    ) -> Result<&Array, GgufError> {
        let v = self.require(key)?;
        match v.as_array() {
            Some(a) if accept(a.elem_type()) => Ok(a),
            Some(a) => Err(GgufError::WrongType {
                key: key.to_owned(),
                expected,
                found: a.elem_type(),
            }),
            None => Err(Self::wrong_type(key, expected, v)),
        }
    }

    /// An array of strings.
    pub fn str_array(&self, key: &str) -> Result<Vec<&str>, GgufError> {
        let a = self.array(key, "array of strings", |t| t == ValueType::String)?;
        Ok(a.strs().collect())
    }

    /// An array of `f32` (or `f64`, rounded).
    pub fn f32_array(&self, key: &str) -> Result<Vec<f32>, GgufError> {
        let floats = |t| matches!(t, ValueType::F32 | ValueType::F64);
        let a = self.array(key, "array of floats", floats)?;
        Ok(a.iter().filter_map(|v| v.as_f32()).collect())
    }

    /// An array of integers of any type, each of which must fit `i32`.
    pub fn i32_array(&self, key: &str) -> Result<Vec<i32>, GgufError> {
        let a = self.array(key, "array of integers", ValueType::is_integer)?;
        a.iter()
            .map(|v| {
                let wide = v
                    .as_i64()
                    .ok_or_else(|| Self::out_of_range(key, &v, "i32"))?;
                i32::try_from(wide).map_err(|_| Self::out_of_range(key, &v, "i32"))
            })
            .collect()
    }
}
