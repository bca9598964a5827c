#![allow(clippy::unwrap_used)] // tests may unwrap
//! Writer → reader round trips: everything written reads back exactly, and rewriting a file
//! reproduces its bytes.

use cria_gguf::{Array, GgmlType, GgufError, GgufFile, GgufWriter, Value, ValueType};
use proptest::prelude::*;

fn arr(elem_type: ValueType, values: Vec<Value>) -> Value {
    Value::Array(Array::new(elem_type, values).unwrap())
}

/// One value of every type, arrays of several, nested and empty arrays.
fn every_value() -> Vec<(String, Value)> {
    let nested = arr(
        ValueType::Array,
        vec![
            arr(ValueType::I16, vec![Value::I16(-3), Value::I16(4)]),
            arr(ValueType::I16, vec![]),
        ],
    );
    let values = vec![
        Value::U8(255),
        Value::I8(-128),
        Value::U16(65535),
        Value::I16(-2),
        Value::U32(u32::MAX),
        Value::I32(i32::MIN),
        Value::F32(-1.5),
        Value::U64(u64::MAX),
        Value::I64(i64::MIN),
        Value::F64(std::f64::consts::PI),
        Value::Bool(true),
        Value::Bool(false),
        Value::String("héllo, 세계 🦙".into()),
        Value::String(String::new()),
        arr(
            ValueType::String,
            vec![Value::String("a".into()), Value::String("<0x0A>".into())],
        ),
        arr(ValueType::F32, vec![Value::F32(0.25), Value::F32(-0.0)]),
        arr(ValueType::Bool, vec![Value::Bool(true)]),
        arr(ValueType::U64, vec![]),
        nested,
    ];
    values
        .into_iter()
        .enumerate()
        .map(|(i, v)| (format!("k.{i}"), v))
        .collect()
}

fn sample_data(ty: GgmlType, blocks: usize) -> Vec<u8> {
    (0..ty.type_size() * blocks)
        .map(|i| (i * 7 + ty.id() as usize) as u8)
        .collect()
}

#[test]
fn every_value_type_round_trips() {
    let mut w = GgufWriter::new();
    for (k, v) in every_value() {
        w.add_metadata(k, v);
    }
    let f = GgufFile::from_bytes(w.to_bytes().unwrap()).unwrap();
    assert_eq!(f.metadata(), &every_value()[..]);
    assert_eq!(f.version(), 3);
    assert_eq!(f.alignment(), 32);
}

#[test]
fn tensors_of_every_type_round_trip() {
    let mut w = GgufWriter::new();
    for (i, ty) in GgmlType::ALL.into_iter().enumerate() {
        let shape = [ty.block_size() as u64 * 2, 3, 1];
        w.add_tensor(format!("t{i}"), ty, &shape, sample_data(ty, 6))
            .unwrap();
    }
    let bytes = w.to_bytes().unwrap();
    let f = GgufFile::from_bytes(bytes.clone()).unwrap();
    assert_eq!(f.tensors().len(), GgmlType::ALL.len());
    for (i, ty) in GgmlType::ALL.into_iter().enumerate() {
        let t = f.tensor(&format!("t{i}")).unwrap();
        assert_eq!(
            (t.ty(), t.shape()),
            (ty, &[ty.block_size() as u64 * 2, 3, 1][..])
        );
        assert_eq!(t.data, sample_data(ty, 6));
        assert_eq!(t.n_elements(), ty.block_size() as u64 * 6);
        assert_eq!(t.info.offset % 32, 0);
    }
    assert_eq!(
        GgufWriter::from_file(&f).unwrap().to_bytes().unwrap(),
        bytes
    );
}

#[test]
fn version_2_and_custom_alignment_round_trip() {
    let mut w = GgufWriter::new();
    w.set_version(2)
        .add_metadata("general.alignment", Value::U32(128));
    w.add_tensor("a", GgmlType::F16, &[3], vec![1; 6]).unwrap();
    w.add_tensor("b", GgmlType::F32, &[5], vec![2; 20]).unwrap();
    let f = GgufFile::from_bytes(w.to_bytes().unwrap()).unwrap();
    assert_eq!((f.version(), f.alignment()), (2, 128));
    assert_eq!(f.data_offset() % 128, 0);
    assert_eq!(f.tensor("b").unwrap().info.offset, 128);
    assert_eq!(f.tensor("b").unwrap().data, vec![2; 20]);
}

#[test]
fn writer_refuses_data_of_the_wrong_size() {
    let e = GgufWriter::new()
        .add_tensor("t", GgmlType::Q4_0, &[32, 2], vec![0; 35])
        .err();
    assert!(matches!(
        e,
        Some(GgufError::TensorDataSize {
            expected: 36,
            actual: 35,
            ..
        })
    ));
}

#[test]
fn writer_refuses_duplicates_bad_arrays_and_bad_alignment() {
    let mut w = GgufWriter::new();
    w.add_tensor("t", GgmlType::F32, &[1], vec![0; 4]).unwrap();
    let e = w.add_tensor("t", GgmlType::F32, &[1], vec![0; 4]).err();
    assert!(matches!(e, Some(GgufError::DuplicateTensor { .. })));
    w.add_metadata("k", Value::U8(1))
        .add_metadata("k", Value::U8(2));
    assert!(matches!(w.to_bytes(), Err(GgufError::DuplicateKey { .. })));

    // An array holds one type: a mixed one cannot be built, so cannot be written.
    assert!(matches!(
        Array::new(ValueType::U8, vec![Value::U16(1)]),
        Err(GgufError::ArrayElementType { .. })
    ));

    let mut w = GgufWriter::new();
    w.add_metadata("general.alignment", Value::U32(24));
    assert!(matches!(
        w.to_bytes(),
        Err(GgufError::BadAlignment { value: 24 })
    ));
    let mut w = GgufWriter::new();
    w.add_metadata("general.alignment", Value::U32(1 << 31));
    assert!(matches!(
        w.to_bytes(),
        Err(GgufError::BadAlignment { value: 0x8000_0000 })
    ));
    let e = GgufWriter::new()
        .add_tensor("t", GgmlType::F32, &[1, 1, 1, 1, 1], vec![0; 4])
        .err();
    assert!(matches!(e, Some(GgufError::TooManyDims { n_dims: 5, .. })));
}

fn value_strategy() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        any::<u8>().prop_map(Value::U8),
        any::<i16>().prop_map(Value::I16),
        any::<u32>().prop_map(Value::U32),
        any::<i64>().prop_map(Value::I64),
        (-1e6f32..1e6).prop_map(Value::F32),
        (-1e9f64..1e9).prop_map(Value::F64),
        any::<bool>().prop_map(Value::Bool),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        // Arrays hold one type: clone the first element's kind across the array.
        prop::collection::vec(inner, 0..6).prop_map(|vals| {
            let elem_type = vals.first().map_or(ValueType::U8, Value::value_type);
            let values = vals
                .into_iter()
                .filter(|v| v.value_type() == elem_type)
                .collect();
            Value::Array(Array::new(elem_type, values).unwrap())
        })
    })
}

proptest! {
    #[test]
    fn random_files_round_trip(
        values in prop::collection::vec(value_strategy(), 0..12),
        tensors in prop::collection::vec((0usize..15, 1u64..4, 1u64..3), 0..6),
    ) {
        let mut w = GgufWriter::new();
        for (i, v) in values.iter().enumerate() {
            w.add_metadata(format!("key.{i}"), v.clone());
        }
        for (i, &(t, blocks, rows)) in tensors.iter().enumerate() {
            let ty = GgmlType::ALL[t];
            let shape = [ty.block_size() as u64 * blocks, rows];
            let data = sample_data(ty, (blocks * rows) as usize);
            w.add_tensor(format!("tensor.{i}"), ty, &shape, data).unwrap();
        }
        let bytes = w.to_bytes().unwrap();
        let f = GgufFile::from_bytes(bytes.clone()).unwrap();
        prop_assert_eq!(f.metadata().len(), values.len());
        for (i, v) in values.iter().enumerate() {
            prop_assert_eq!(f.get(&format!("key.{i}")), Some(v));
        }
        prop_assert_eq!(f.tensors().len(), tensors.len());
        prop_assert_eq!(GgufWriter::from_file(&f).unwrap().to_bytes().unwrap(), bytes);
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = GgufFile::from_bytes(bytes);
    }

    #[test]
    fn mutated_valid_files_never_panic(pos in 0usize..400, byte in any::<u8>()) {
        let mut w = GgufWriter::new();
        w.add_metadata("s", arr(ValueType::String, vec![Value::String("xy".into())]));
        w.add_tensor("t", GgmlType::Q8_0, &[32, 2], vec![0; 68]).unwrap();
        let mut bytes = w.to_bytes().unwrap();
        let n = bytes.len();
        bytes[pos % n] = byte;
        if let Ok(f) = GgufFile::from_bytes(bytes) {
            for t in f.tensors() {
                prop_assert_eq!(f.tensor_data(t).len() as u64, t.n_bytes);
            }
        }
    }
}
