//! Parsing and validating a whole GGUF file: header, metadata, tensor infos, data layout.

use std::collections::HashMap;

use crate::array::Array;
use crate::cursor::Cursor;
use crate::error::GgufError;
use crate::tensor::{TensorInfo, tensor_n_bytes};
use crate::types::GgmlType;
use crate::value::{Value, ValueType};
use crate::{DEFAULT_ALIGNMENT, GGUF_MAGIC, MAX_ALIGNMENT, MAX_ARRAY_DEPTH, MAX_DIMS};

/// Fewest bytes a metadata entry takes: key length, value type, a one-byte value.
const MIN_KV_SIZE: u64 = 8 + 4 + 1;
/// Fewest bytes a tensor info takes: name length, n_dims, type, offset.
const MIN_TENSOR_INFO_SIZE: u64 = 8 + 4 + 4 + 8;
/// Cap on up-front `Vec` capacity, so a count that is merely plausible costs no more than
/// the elements actually parsed.
const MAX_PREALLOC: u64 = 1 << 16;

/// Everything the header sections say, validated.
pub(crate) struct Parsed {
    pub version: u32,
    pub alignment: u64,
    pub metadata: Vec<(String, Value)>,
    pub key_index: HashMap<String, usize>,
    pub tensors: Vec<TensorInfo>,
    pub tensor_index: HashMap<String, usize>,
    pub data_offset: u64,
}

/// Parses and validates `bytes` as a GGUF file.
pub(crate) fn parse(bytes: &[u8]) -> Result<Parsed, GgufError> {
    let mut c = Cursor::new(bytes);
    let version = read_header(&mut c)?;
    let n_tensors_offset = c.offset();
    let n_tensors = c.u64("tensor count")?;
    let n_kv = c.count("metadata key/value", MIN_KV_SIZE)?;
    // The tensor count is checked only now that the metadata count is read too.
    let available = c.remaining();
    if n_tensors > available / MIN_TENSOR_INFO_SIZE {
        return Err(GgufError::CountTooLarge {
            what: "tensor",
            count: n_tensors,
            offset: n_tensors_offset,
            available,
        });
    }
    let (metadata, key_index) = read_metadata(&mut c, n_kv)?;
    let alignment = alignment_of(&metadata, &key_index)?;
    let (tensors, tensor_index) = read_tensor_infos(&mut c, n_tensors)?;
    let data_offset = align_up(c.offset(), alignment).ok_or(GgufError::TooLarge)?;
    check_data_layout(&tensors, alignment, data_offset, bytes.len() as u64)?;
    Ok(Parsed {
        version,
        alignment,
        metadata,
        key_index,
        tensors,
        tensor_index,
        data_offset,
    })
}

fn read_header(c: &mut Cursor<'_>) -> Result<u32, GgufError> {
    let magic = c
        .take(4, "magic")
        .map_err(|_| GgufError::BadMagic { found: c_prefix(c) })?;
    if magic != GGUF_MAGIC {
        return Err(GgufError::BadMagic {
            found: magic.to_vec(),
        });
    }
    let version = c.u32("version")?;
    match version {
        2 | 3 => Ok(version),
        v if v.swap_bytes() == 2 || v.swap_bytes() == 3 => Err(GgufError::BigEndian { version }),
        v => Err(GgufError::UnsupportedVersion { version: v }),
    }
}

/// What is left of a file too short to hold a magic.
fn c_prefix(c: &mut Cursor<'_>) -> Vec<u8> {
    let n = c.remaining();
    c.take(n, "magic").map(<[u8]>::to_vec).unwrap_or_default()
}

type Metadata = (Vec<(String, Value)>, HashMap<String, usize>);

fn read_metadata(c: &mut Cursor<'_>, n_kv: u64) -> Result<Metadata, GgufError> {
    let cap = n_kv.min(MAX_PREALLOC) as usize;
    let mut entries = Vec::with_capacity(cap);
    let mut index = HashMap::with_capacity(cap);
    for _ in 0..n_kv {
        let offset = c.offset();
        let key = c.string("metadata key")?;
        let value = read_typed_value(c, 0)?;
        if index.contains_key(&key) {
            return Err(GgufError::DuplicateKey { key, offset });
        }
        index.insert(key.clone(), entries.len());
        entries.push((key, value));
    }
    Ok((entries, index))
}

/// A value type id followed by a value of that type.
fn read_typed_value(c: &mut Cursor<'_>, depth: usize) -> Result<Value, GgufError> {
    let offset = c.offset();
    let id = c.u32("value type")?;
    let ty = ValueType::from_id(id).ok_or(GgufError::BadValueType { id, offset })?;
    read_value(c, ty, depth)
}

fn read_value(c: &mut Cursor<'_>, ty: ValueType, depth: usize) -> Result<Value, GgufError> {
    const W: &str = "metadata value";
    Ok(match ty {
        ValueType::U8 => Value::U8(c.u8(W)?),
        ValueType::I8 => Value::I8(c.u8(W)? as i8),
        ValueType::U16 => Value::U16(c.u16(W)?),
        ValueType::I16 => Value::I16(c.u16(W)? as i16),
        ValueType::U32 => Value::U32(c.u32(W)?),
        ValueType::I32 => Value::I32(c.u32(W)? as i32),
        ValueType::F32 => Value::F32(f32::from_bits(c.u32(W)?)),
        ValueType::U64 => Value::U64(c.u64(W)?),
        ValueType::I64 => Value::I64(c.u64(W)? as i64),
        ValueType::F64 => Value::F64(f64::from_bits(c.u64(W)?)),
        ValueType::Bool => read_bool(c)?,
        ValueType::String => Value::String(c.string("metadata string")?),
        ValueType::Array => Value::Array(read_array(c, depth + 1)?),
    })
}

fn read_bool(c: &mut Cursor<'_>) -> Result<Value, GgufError> {
    let offset = c.offset();
    match c.u8("metadata value")? {
        0 => Ok(Value::Bool(false)),
        1 => Ok(Value::Bool(true)),
        value => Err(GgufError::BadBool { value, offset }),
    }
}

fn read_array(c: &mut Cursor<'_>, depth: usize) -> Result<Array, GgufError> {
    let offset = c.offset();
    if depth > MAX_ARRAY_DEPTH {
        return Err(GgufError::ArrayTooDeep {
            max: MAX_ARRAY_DEPTH,
            offset,
        });
    }
    let id = c.u32("array element type")?;
    let elem_type = ValueType::from_id(id).ok_or(GgufError::BadArrayType { id, offset })?;
    let count = c.count("array element", elem_type.min_encoded_size())?;
    match elem_type {
        ValueType::String => read_strings(c, count),
        ValueType::Array => read_arrays(c, count, depth),
        _ => read_fixed_values(c, elem_type, count),
    }
}

/// `count` strings, appended to one buffer as they are read.
fn read_strings(c: &mut Cursor<'_>, count: u64) -> Result<Array, GgufError> {
    let mut array = Array::empty(ValueType::String);
    for _ in 0..count {
        array.push_str(c.str("metadata string")?);
    }
    Ok(array)
}

fn read_arrays(c: &mut Cursor<'_>, count: u64, depth: usize) -> Result<Array, GgufError> {
    let mut array = Array::empty(ValueType::Array);
    for _ in 0..count {
        array.push(Value::Array(read_array(c, depth + 1)?))?;
    }
    Ok(array)
}

/// `count` values of a fixed-size type, kept as the file's bytes (the fast path for the vocabulary's score
/// and type arrays) once every bool among them is checked. `count` was checked against the bytes left, so
/// the slice is there and the allocation is what those bytes justify.
fn read_fixed_values(c: &mut Cursor<'_>, ty: ValueType, count: u64) -> Result<Array, GgufError> {
    let size = ty.min_encoded_size();
    let start = c.offset();
    let bytes = c.take(count * size, "metadata value")?;
    if ty == ValueType::Bool
        && let Some(i) = bytes.iter().position(|&b| b > 1)
    {
        return Err(GgufError::BadBool {
            value: bytes[i],
            offset: start + i as u64,
        });
    }
    Ok(Array::from_fixed_bytes(ty, bytes.to_vec()))
}

/// `general.alignment`: absent means 32; present, it must be a u32 power of two no larger than
/// [`MAX_ALIGNMENT`].
fn alignment_of(
    metadata: &[(String, Value)],
    index: &HashMap<String, usize>,
) -> Result<u64, GgufError> {
    let Some(&i) = index.get("general.alignment") else {
        return Ok(DEFAULT_ALIGNMENT);
    };
    match metadata[i].1 {
        Value::U32(v) if v.is_power_of_two() && u64::from(v) <= MAX_ALIGNMENT => Ok(v.into()),
        Value::U32(v) => Err(GgufError::BadAlignment { value: v.into() }),
        ref other => Err(GgufError::AlignmentType {
            found: other.value_type(),
        }),
    }
}

type Tensors = (Vec<TensorInfo>, HashMap<String, usize>);

fn read_tensor_infos(c: &mut Cursor<'_>, n_tensors: u64) -> Result<Tensors, GgufError> {
    let cap = n_tensors.min(MAX_PREALLOC) as usize;
    let mut tensors = Vec::with_capacity(cap);
    let mut index = HashMap::with_capacity(cap);
    for _ in 0..n_tensors {
        let offset = c.offset();
        let info = read_tensor_info(c)?;
        if index.contains_key(&info.name) {
            return Err(GgufError::DuplicateTensor {
                name: info.name,
                offset,
            });
        }
        index.insert(info.name.clone(), tensors.len());
        tensors.push(info);
    }
    Ok((tensors, index))
}

fn read_tensor_info(c: &mut Cursor<'_>) -> Result<TensorInfo, GgufError> {
    let name = c.string("tensor name")?;
    let dims_offset = c.offset();
    let n_dims = c.u32("tensor dimension count")?;
    if n_dims as usize > MAX_DIMS {
        let tensor = name;
        return Err(GgufError::TooManyDims {
            tensor,
            n_dims,
            offset: dims_offset,
            max: MAX_DIMS,
        });
    }
    let mut shape = Vec::with_capacity(n_dims as usize);
    for _ in 0..n_dims {
        shape.push(c.u64("tensor dimension")?);
    }
    let type_offset = c.offset();
    let id = c.u32("tensor type")?;
    let Some(ty) = GgmlType::from_id(id) else {
        return Err(GgufError::UnknownTensorType {
            tensor: name,
            id,
            offset: type_offset,
        });
    };
    let offset = c.u64("tensor data offset")?;
    let n_bytes = tensor_n_bytes(&name, ty, &shape)?;
    Ok(TensorInfo {
        name,
        ty,
        shape,
        offset,
        n_bytes,
    })
}

/// `offset` rounded up to a multiple of `alignment` (a power of two).
pub(crate) fn align_up(offset: u64, alignment: u64) -> Option<u64> {
    Some(offset.checked_add(alignment - 1)? & !(alignment - 1))
}

/// Every tensor aligned, inside the data section, and apart from the others.
fn check_data_layout(
    tensors: &[TensorInfo],
    alignment: u64,
    data_offset: u64,
    file_len: u64,
) -> Result<(), GgufError> {
    if data_offset > file_len {
        if tensors.is_empty() {
            return Ok(());
        }
        return Err(GgufError::DataOffsetBeyondFile {
            data_offset,
            file_len,
        });
    }
    let available = file_len - data_offset;
    for t in tensors {
        if !t.offset.is_multiple_of(alignment) {
            let (tensor, offset) = (t.name.clone(), t.offset);
            return Err(GgufError::UnalignedTensor {
                tensor,
                offset,
                alignment,
            });
        }
        let end = t.offset.checked_add(t.n_bytes);
        if end.is_none_or(|end| end > available) {
            return Err(GgufError::TensorOutOfBounds {
                tensor: t.name.clone(),
                offset: t.offset,
                n_bytes: t.n_bytes,
                available,
            });
        }
    }
    check_no_overlap(tensors)
}

fn check_no_overlap(tensors: &[TensorInfo]) -> Result<(), GgufError> {
    let mut order: Vec<&TensorInfo> = tensors.iter().filter(|t| t.n_bytes > 0).collect();
    order.sort_by_key(|t| t.offset);
    for pair in order.windows(2) {
        // Both ends were checked to fit in the file, so the addition cannot overflow.
        if pair[0].offset + pair[0].n_bytes > pair[1].offset {
            return Err(GgufError::TensorOverlap {
                first: pair[0].name.clone(),
                second: pair[1].name.clone(),
            });
        }
    }
    Ok(())
}
