#![allow(clippy::unwrap_used)] // tests may unwrap
//! Malformed files, one test per way of being wrong (llama.cpp's test-gguf.cpp list and more):
//! each is refused with the error that names it, never a panic or a huge allocation.

mod common;

use common::Raw;
use cria_gguf::{GgmlType, GgufError, GgufFile, GgufWriter, Value, ValueType};

fn parse(raw: Raw) -> Result<GgufFile, GgufError> {
    GgufFile::from_bytes(raw.0)
}

fn err(raw: Raw) -> GgufError {
    match parse(raw) {
        Ok(f) => panic!("malformed file accepted: {f:?}"),
        Err(e) => {
            assert!(!e.to_string().is_empty());
            e
        }
    }
}

/// A valid file with one F32 tensor of `n` elements at offset 0.
fn one_tensor(dims: &[u64], ty: u32, offset: u64, data: usize) -> Raw {
    Raw::header(3, 1, 0)
        .tensor("t", dims, ty, offset)
        .pad(32)
        .zeros(data)
}

#[test]
fn minimal_files_are_valid() {
    let f = parse(Raw::header(3, 0, 0)).unwrap();
    assert_eq!((f.tensors().len(), f.metadata().len()), (0, 0));
    let f = parse(one_tensor(&[4], 0, 0, 16)).unwrap();
    assert_eq!(f.tensor("t").unwrap().data.len(), 16);
}

#[test]
fn bad_magic() {
    let e = err(Raw(b"GGUX".to_vec()).u32(3).u64(0).u64(0));
    assert!(
        matches!(e, GgufError::BadMagic { ref found } if found == b"GGUX"),
        "{e}"
    );
}

#[test]
fn empty_or_tiny_file_is_bad_magic() {
    assert!(matches!(err(Raw(vec![])), GgufError::BadMagic { .. }));
    assert!(matches!(
        err(Raw(b"GG".to_vec())),
        GgufError::BadMagic { .. }
    ));
}

#[test]
fn version_0_1_and_future_refused() {
    for version in [0, 1, 4, 99, u32::MAX] {
        let e = err(Raw::header(version, 0, 0));
        assert!(
            matches!(e, GgufError::UnsupportedVersion { version: v } if v == version),
            "{e}"
        );
    }
}

#[test]
fn big_endian_file_named_as_such() {
    let e = err(Raw::header(3u32.swap_bytes(), 0, 0));
    assert!(matches!(e, GgufError::BigEndian { .. }), "{e}");
}

#[test]
fn version_2_accepted() {
    assert_eq!(parse(Raw::header(2, 0, 0)).unwrap().version(), 2);
}

#[test]
fn huge_tensor_count() {
    for count in [u64::MAX, 1 << 60, 1000] {
        let e = err(Raw::header(3, count, 0).zeros(64));
        assert!(
            matches!(
                e,
                GgufError::CountTooLarge {
                    what: "tensor",
                    offset: 8,
                    ..
                }
            ),
            "{e}"
        );
    }
}

#[test]
fn huge_key_count() {
    for count in [u64::MAX, 1 << 60, 100] {
        let e = err(Raw::header(3, 0, count).zeros(64));
        let ok = matches!(
            e,
            GgufError::CountTooLarge {
                what: "metadata key/value",
                offset: 16,
                ..
            }
        );
        assert!(ok, "{e}");
    }
}

#[test]
fn huge_key_length() {
    let e = err(Raw::header(3, 0, 1).u64(u64::MAX).zeros(32));
    assert!(
        matches!(
            e,
            GgufError::Truncated {
                what: "metadata key",
                offset: 32,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn huge_string_value_length() {
    let e = err(Raw::header(3, 0, 1).str("k").u32(8).u64(1 << 62).zeros(8));
    assert!(
        matches!(
            e,
            GgufError::Truncated {
                what: "metadata string",
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn key_not_utf8() {
    let e = err(Raw::header(3, 0, 1)
        .u64(2)
        .bytes(&[0xff, 0xfe])
        .u32(0)
        .u8(0));
    assert!(
        matches!(
            e,
            GgufError::InvalidUtf8 {
                what: "metadata key",
                offset: 24
            }
        ),
        "{e}"
    );
}

#[test]
fn bad_value_type() {
    for id in [13, 255, u32::MAX] {
        let e = err(Raw::header(3, 0, 1).str("k").u32(id).zeros(8));
        assert!(
            matches!(e, GgufError::BadValueType { id: i, offset: 33 } if i == id),
            "{e}"
        );
    }
}

#[test]
fn bad_array_element_type() {
    let e = err(Raw::header(3, 0, 1).str("k").u32(9).u32(13).u64(1).zeros(8));
    assert!(
        matches!(e, GgufError::BadArrayType { id: 13, offset: 37 }),
        "{e}"
    );
}

#[test]
fn huge_array_count_on_a_100_byte_file_fails_before_allocating() {
    for elem in [0u32, 8, 9] {
        let raw = Raw::header(3, 0, 1).str("k").u32(9).u32(elem).u64(1 << 60);
        let n = raw.len();
        let e = err(raw.zeros(100 - n));
        assert!(
            matches!(
                e,
                GgufError::CountTooLarge {
                    what: "array element",
                    ..
                }
            ),
            "{e}"
        );
    }
}

#[test]
fn string_array_count_bounded_by_length_prefixes() {
    // 10 strings need at least 80 bytes of length prefixes; only 40 are left.
    let e = err(Raw::header(3, 0, 1)
        .str("k")
        .u32(9)
        .u32(8)
        .u64(10)
        .zeros(40));
    assert!(
        matches!(
            e,
            GgufError::CountTooLarge {
                count: 10,
                available: 40,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn arrays_nested_too_deep() {
    let mut raw = Raw::header(3, 0, 1).str("k").u32(9);
    for _ in 0..40 {
        raw = raw.u32(9).u64(1);
    }
    let e = err(raw.u32(0).u64(0));
    assert!(matches!(e, GgufError::ArrayTooDeep { .. }), "{e}");
}

#[test]
fn bool_other_than_0_or_1() {
    let e = err(Raw::header(3, 0, 1).str("k").u32(7).u8(2));
    assert!(
        matches!(
            e,
            GgufError::BadBool {
                value: 2,
                offset: 37
            }
        ),
        "{e}"
    );
}

#[test]
fn duplicate_key() {
    let e = err(Raw::header(3, 0, 2).kv_u32("a.b", 1).kv_str("a.b", "x"));
    assert!(
        matches!(e, GgufError::DuplicateKey { ref key, offset: 43 } if key == "a.b"),
        "{e}"
    );
}

#[test]
fn alignment_not_a_power_of_two() {
    for value in [0, 3, 48] {
        let e = err(Raw::header(3, 0, 1).kv_u32("general.alignment", value));
        assert!(
            matches!(e, GgufError::BadAlignment { value: v } if v == u64::from(value)),
            "{e}"
        );
    }
}

/// Regression (fuzz, oom-0028da4d): a 2 GiB alignment in a 150-byte header with no tensors was
/// accepted, and rewriting the file padded 2 GiB of zeros. Alignments past 16 MiB are refused.
#[test]
fn alignment_too_large_is_refused() {
    for value in [1u32 << 25, 1 << 31] {
        let e = err(Raw::header(3, 0, 1).kv_u32("general.alignment", value));
        assert!(
            matches!(e, GgufError::BadAlignment { value: v } if v == u64::from(value)),
            "{e}"
        );
    }
    let largest = Raw::header(3, 0, 1).kv_u32("general.alignment", 1 << 24);
    let file = parse(largest).expect("16 MiB alignment is accepted");
    assert_eq!(file.alignment(), 1 << 24);
}

#[test]
fn alignment_of_wrong_type() {
    let as_u64 = Raw::header(3, 0, 1)
        .str("general.alignment")
        .u32(10)
        .u64(32);
    assert!(matches!(
        err(as_u64),
        GgufError::AlignmentType {
            found: ValueType::U64
        }
    ));
    let as_i32 = Raw::header(3, 0, 1).str("general.alignment").u32(5).u32(32);
    assert!(matches!(
        err(as_i32),
        GgufError::AlignmentType {
            found: ValueType::I32
        }
    ));
    let as_str = Raw::header(3, 0, 1).kv_str("general.alignment", "32");
    assert!(matches!(
        err(as_str),
        GgufError::AlignmentType {
            found: ValueType::String
        }
    ));
}

#[test]
fn custom_alignment_honoured() {
    let raw = Raw::header(3, 1, 1).kv_u32("general.alignment", 64);
    let f = parse(raw.tensor("t", &[16], 0, 0).pad(64).zeros(64)).unwrap();
    assert_eq!((f.alignment(), f.data_offset() % 64), (64, 0));
}

#[test]
fn too_many_dims() {
    for n in [5u32, 64, u32::MAX] {
        let e = err(Raw::header(3, 1, 0).str("t").u32(n).zeros(64));
        let ok = matches!(e, GgufError::TooManyDims { n_dims, offset: 33, .. } if n_dims == n);
        assert!(ok, "{e}");
    }
}

#[test]
fn dims_whose_product_overflows() {
    for dims in [
        &[1u64 << 32, 1 << 32][..],
        &[u64::MAX],
        &[1 << 40, 1 << 20, 1 << 4],
    ] {
        let e = err(one_tensor(dims, 0, 0, 64));
        assert!(matches!(e, GgufError::DimsOverflow { .. }), "{dims:?}: {e}");
    }
}

#[test]
fn unknown_tensor_type() {
    for id in [4u32, 5, 24, 31, 40, 1000, u32::MAX] {
        let e = err(one_tensor(&[32], id, 0, 128));
        assert!(
            matches!(e, GgufError::UnknownTensorType { id: i, .. } if i == id),
            "{e}"
        );
        // the message lists what Cria reads
        assert!(
            e.to_string().contains("Q4_K, Q5_K") && e.to_string().contains("IQ4_XS"),
            "{e}"
        );
    }
}

#[test]
fn row_not_a_whole_number_of_blocks() {
    let q4_k = GgmlType::Q4_K.id();
    let e = err(one_tensor(&[100, 2], q4_k, 0, 1024));
    assert!(
        matches!(
            e,
            GgufError::RowNotBlockMultiple {
                row: 100,
                block: 256,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn tensor_offset_beyond_the_file() {
    for offset in [1 << 20, u64::MAX - 31] {
        let e = err(one_tensor(&[4], 0, offset, 16));
        assert!(matches!(e, GgufError::TensorOutOfBounds { .. }), "{e}");
    }
}

#[test]
fn unaligned_tensor_offset() {
    let e = err(one_tensor(&[4], 0, 4, 64));
    assert!(
        matches!(
            e,
            GgufError::UnalignedTensor {
                offset: 4,
                alignment: 32,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn tensor_data_cut_short() {
    let e = err(one_tensor(&[8], 0, 0, 31));
    let ok = matches!(
        e,
        GgufError::TensorOutOfBounds {
            n_bytes: 32,
            available: 31,
            ..
        }
    );
    assert!(ok, "{e}");
}

#[test]
fn duplicate_tensor_name() {
    let raw = Raw::header(3, 2, 0)
        .tensor("t", &[4], 0, 0)
        .tensor("t", &[4], 0, 32);
    let e = err(raw.pad(32).zeros(64));
    assert!(
        matches!(e, GgufError::DuplicateTensor { ref name, offset: 57 } if name == "t"),
        "{e}"
    );
}

#[test]
fn overlapping_tensors() {
    let raw = Raw::header(3, 2, 0)
        .tensor("a", &[16], 0, 0)
        .tensor("b", &[16], 0, 32);
    let e = err(raw.pad(32).zeros(128));
    assert!(matches!(e, GgufError::TensorOverlap { .. }), "{e}");
}

#[test]
fn data_section_past_the_end() {
    // The tensor infos end unaligned and the file stops there.
    let e = err(Raw::header(3, 1, 0).tensor("t", &[0], 0, 0));
    assert!(matches!(e, GgufError::DataOffsetBeyondFile { .. }), "{e}");
}

/// A file with every section: header, metadata (scalars, strings, arrays), infos, data.
fn full_file() -> Vec<u8> {
    let mut w = GgufWriter::new();
    w.add_metadata("general.architecture", Value::String("llama".into()));
    w.add_metadata("n", Value::U32(7));
    let strings = vec![Value::String("ab".into()), Value::String("c".into())];
    let arr = cria_gguf::Array::new(ValueType::String, strings).unwrap();
    w.add_metadata("tokens", Value::Array(arr));
    w.add_tensor("a", GgmlType::F32, &[3], vec![1; 12]).unwrap();
    w.add_tensor("b", GgmlType::Q8_0, &[32, 2], vec![2; 68])
        .unwrap();
    w.add_tensor("c", GgmlType::F32, &[8], vec![3; 32]).unwrap();
    w.to_bytes().unwrap()
}

#[test]
fn truncated_anywhere_is_refused() {
    let bytes = full_file();
    assert!(GgufFile::from_bytes(bytes.clone()).is_ok());
    assert_eq!(bytes.len() % 32, 0, "the last tensor ends the file exactly");
    for len in 0..bytes.len() {
        let e = GgufFile::from_bytes(bytes[..len].to_vec()).unwrap_err();
        match e {
            GgufError::Truncated {
                offset,
                needed,
                available,
                ..
            } => {
                assert_eq!(offset + available, len as u64, "cut at {len}: {e}");
                assert!(needed > available);
            }
            GgufError::BadMagic { .. } => assert!(len < 4),
            GgufError::CountTooLarge { .. }
            | GgufError::DataOffsetBeyondFile { .. }
            | GgufError::TensorOutOfBounds { .. } => {}
            other => panic!("cut at {len}: unexpected {other}"),
        }
    }
}

#[test]
fn truncated_in_each_section_names_it() {
    let bytes = full_file();
    let f = GgufFile::from_bytes(bytes.clone()).unwrap();
    let data = f.data_offset() as usize;
    let cases: [(usize, &str); 4] = [
        (6, "version"),
        (20, "metadata key/value"),
        (40, "metadata key"),
        (200, "tensor"),
    ];
    for (len, section) in cases {
        let e = GgufFile::from_bytes(bytes[..len].to_vec()).unwrap_err();
        assert!(e.to_string().contains(section), "cut at {len}: {e}");
    }
    let e = GgufFile::from_bytes(bytes[..data + 20].to_vec()).unwrap_err();
    assert!(matches!(e, GgufError::TensorOutOfBounds { .. }), "{e}");
}

#[test]
fn bool_array_element_other_than_0_or_1() {
    // Array header at 37: type (4), count (8), then elements from 49; the third is bad.
    let raw = Raw::header(3, 0, 1)
        .str("k")
        .u32(9)
        .u32(7)
        .u64(3)
        .bytes(&[1, 0, 5]);
    let e = err(raw);
    assert!(
        matches!(
            e,
            GgufError::BadBool {
                value: 5,
                offset: 51
            }
        ),
        "{e}"
    );
}
