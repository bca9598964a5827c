//! `GgufWriter`: builds GGUF files that `GgufFile` reads back exactly.

use std::io::Write;

use crate::array::Array;
use crate::error::GgufError;
use crate::file::GgufFile;
use crate::parse::align_up;
use crate::tensor::tensor_n_bytes;
use crate::types::GgmlType;
use crate::value::Value;
use crate::{DEFAULT_ALIGNMENT, GGUF_MAGIC, MAX_ALIGNMENT, MAX_DIMS};

struct PendingTensor {
    name: String,
    ty: GgmlType,
    shape: Vec<u64>,
    data: Vec<u8>,
}

/// Collects metadata and tensors, then writes them as one GGUF file.
///
/// The layout is llama.cpp's: header, metadata, tensor infos, zero padding to the alignment,
/// then each tensor's data, each padded to the alignment.
pub struct GgufWriter {
    version: u32,
    metadata: Vec<(String, Value)>,
    tensors: Vec<PendingTensor>,
}

impl Default for GgufWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl GgufWriter {
    /// An empty GGUF v3 file; alignment 32 unless `general.alignment` is set.
    pub fn new() -> Self {
        GgufWriter {
            version: 3,
            metadata: Vec::new(),
            tensors: Vec::new(),
        }
    }

    /// A writer holding a copy of everything in `file` (metadata, tensors, data, version).
    pub fn from_file(file: &GgufFile) -> Result<Self, GgufError> {
        let mut w = GgufWriter::new();
        w.set_version(file.version());
        for (key, value) in file.metadata() {
            w.add_metadata(key.clone(), value.clone());
        }
        for info in file.tensors() {
            let data = file.tensor_data(info).to_vec();
            w.add_tensor(info.name.clone(), info.ty, &info.shape, data)?;
        }
        Ok(w)
    }

    /// The GGUF version written in the header (2 and 3 share one layout).
    pub fn set_version(&mut self, version: u32) -> &mut Self {
        self.version = version;
        self
    }

    /// Appends a metadata entry (a repeated key is refused when writing).
    pub fn add_metadata(&mut self, key: impl Into<String>, value: Value) -> &mut Self {
        self.metadata.push((key.into(), value));
        self
    }

    /// Appends a tensor; `data` must be exactly the bytes its type and shape need.
    pub fn add_tensor(
        &mut self,
        name: impl Into<String>,
        ty: GgmlType,
        shape: &[u64],
        data: Vec<u8>,
    ) -> Result<&mut Self, GgufError> {
        let name = name.into();
        if shape.len() > MAX_DIMS {
            let n_dims = u32::try_from(shape.len()).unwrap_or(u32::MAX);
            return Err(GgufError::TooManyDims {
                tensor: name,
                n_dims,
                offset: 0,
                max: MAX_DIMS,
            });
        }
        let expected = tensor_n_bytes(&name, ty, shape)?;
        if expected != data.len() as u64 {
            let actual = data.len() as u64;
            return Err(GgufError::TensorDataSize {
                tensor: name,
                expected,
                actual,
            });
        }
        if self.tensors.iter().any(|t| t.name == name) {
            return Err(GgufError::DuplicateTensor { name, offset: 0 });
        }
        self.tensors.push(PendingTensor {
            name,
            ty,
            shape: shape.to_vec(),
            data,
        });
        Ok(self)
    }

    /// The whole file as bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, GgufError> {
        let mut out = Vec::new();
        self.write_to(&mut out)?;
        Ok(out)
    }

    /// Writes the whole file to `w`.
    pub fn write_to(&self, w: &mut impl Write) -> Result<(), GgufError> {
        let alignment = self.check_metadata()?;
        let mut head = Vec::new();
        self.encode_head(&mut head, alignment)?;
        let mut pos = head.len() as u64;
        pos = pad(&mut head, pos, alignment)?;
        w.write_all(&head).map_err(GgufError::Write)?;
        for t in &self.tensors {
            w.write_all(&t.data).map_err(GgufError::Write)?;
            let mut padding = Vec::new();
            pos = pad(&mut padding, pos + t.data.len() as u64, alignment)?;
            w.write_all(&padding).map_err(GgufError::Write)?;
        }
        w.flush().map_err(GgufError::Write)
    }

    /// No repeated key (arrays hold one type by construction); returns the alignment to use.
    fn check_metadata(&self) -> Result<u64, GgufError> {
        let mut seen = std::collections::HashSet::new();
        let mut alignment = DEFAULT_ALIGNMENT;
        for (key, value) in &self.metadata {
            if !seen.insert(key.as_str()) {
                return Err(GgufError::DuplicateKey {
                    key: key.clone(),
                    offset: 0,
                });
            }
            if key == "general.alignment" {
                alignment = match *value {
                    Value::U32(v) if v.is_power_of_two() && u64::from(v) <= MAX_ALIGNMENT => {
                        v.into()
                    }
                    Value::U32(v) => return Err(GgufError::BadAlignment { value: v.into() }),
                    ref v => {
                        return Err(GgufError::AlignmentType {
                            found: v.value_type(),
                        });
                    }
                };
            }
        }
        Ok(alignment)
    }

    /// Header, metadata and tensor infos.
    fn encode_head(&self, out: &mut Vec<u8>, alignment: u64) -> Result<(), GgufError> {
        out.extend_from_slice(&GGUF_MAGIC);
        out.extend_from_slice(&self.version.to_le_bytes());
        out.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        out.extend_from_slice(&(self.metadata.len() as u64).to_le_bytes());
        for (key, value) in &self.metadata {
            put_str(out, key);
            out.extend_from_slice(&value.value_type().id().to_le_bytes());
            put_value(out, value);
        }
        let mut offset = 0u64;
        for t in &self.tensors {
            put_str(out, &t.name);
            out.extend_from_slice(&(t.shape.len() as u32).to_le_bytes());
            for &dim in &t.shape {
                out.extend_from_slice(&dim.to_le_bytes());
            }
            out.extend_from_slice(&t.ty.id().to_le_bytes());
            out.extend_from_slice(&offset.to_le_bytes());
            let end = offset
                .checked_add(t.data.len() as u64)
                .ok_or(GgufError::TooLarge)?;
            offset = align_up(end, alignment).ok_or(GgufError::TooLarge)?;
        }
        Ok(())
    }
}

/// Appends zeros to `out` so that `pos` reaches a multiple of `alignment`; returns the new pos.
fn pad(out: &mut Vec<u8>, pos: u64, alignment: u64) -> Result<u64, GgufError> {
    let aligned = align_up(pos, alignment).ok_or(GgufError::TooLarge)?;
    out.resize(out.len() + (aligned - pos) as usize, 0);
    Ok(aligned)
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// A value without its type id (array elements carry none).
fn put_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::String(s) => put_str(out, s),
        Value::Array(a) => put_array(out, a),
        fixed => fixed.put_fixed(out),
    }
}

fn put_array(out: &mut Vec<u8>, a: &Array) {
    out.extend_from_slice(&a.elem_type().id().to_le_bytes());
    out.extend_from_slice(&(a.len() as u64).to_le_bytes());
    if let Some(bytes) = a.fixed_bytes() {
        out.extend_from_slice(bytes);
    }
    for s in a.strs() {
        put_str(out, s);
    }
    for inner in a.arrays() {
        put_array(out, inner);
    }
}
