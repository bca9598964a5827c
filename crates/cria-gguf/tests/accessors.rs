#![allow(clippy::unwrap_used)] // tests may unwrap
//! Typed metadata accessors: lenient about integer widths, strict about kinds.

use cria_gguf::{Array, GgufError, GgufFile, GgufWriter, Value, ValueType};

fn file(entries: Vec<(&str, Value)>) -> GgufFile {
    let mut w = GgufWriter::new();
    for (k, v) in entries {
        w.add_metadata(k, v);
    }
    GgufFile::from_bytes(w.to_bytes().unwrap()).unwrap()
}

fn arr(elem_type: ValueType, values: Vec<Value>) -> Value {
    Value::Array(Array::new(elem_type, values).unwrap())
}

#[test]
fn integer_accessors_take_any_width_that_fits() {
    let f = file(vec![
        ("a", Value::I32(30)),
        ("b", Value::U64(7)),
        ("c", Value::U8(2)),
    ]);
    assert_eq!(f.u32("a").unwrap(), 30);
    assert_eq!(f.u64("a").unwrap(), 30);
    assert_eq!(f.i32("b").unwrap(), 7);
    assert_eq!(f.u32("c").unwrap(), 2);
}

#[test]
fn integer_out_of_range_is_an_error() {
    let f = file(vec![("neg", Value::I32(-1)), ("big", Value::U64(1 << 40))]);
    assert!(matches!(f.u32("neg"), Err(GgufError::OutOfRange { .. })));
    assert!(matches!(
        f.u32("big"),
        Err(GgufError::OutOfRange { target: "u32", .. })
    ));
    assert!(matches!(
        f.i32("big"),
        Err(GgufError::OutOfRange { target: "i32", .. })
    ));
    assert_eq!(f.u64("big").unwrap(), 1 << 40);
}

#[test]
fn missing_and_wrong_type() {
    let f = file(vec![
        ("s", Value::String("x".into())),
        ("f", Value::F32(0.5)),
    ]);
    assert!(matches!(f.u32("nope"), Err(GgufError::MissingKey { ref key }) if key == "nope"));
    let e = f.u32("s").unwrap_err();
    assert!(
        matches!(
            e,
            GgufError::WrongType {
                found: ValueType::String,
                ..
            }
        ),
        "{e}"
    );
    assert!(matches!(
        f.str("f"),
        Err(GgufError::WrongType {
            found: ValueType::F32,
            ..
        })
    ));
    assert!(matches!(f.bool("f"), Err(GgufError::WrongType { .. })));
    assert_eq!(f.f32("f").unwrap(), 0.5);
    assert_eq!(f.str("s").unwrap(), "x");
    assert!(matches!(
        f.architecture(),
        Err(GgufError::MissingKey { .. })
    ));
}

#[test]
fn array_accessors() {
    let strs = arr(
        ValueType::String,
        vec![Value::String("a".into()), Value::String("b".into())],
    );
    let floats = arr(ValueType::F32, vec![Value::F32(1.0), Value::F32(-2.0)]);
    let bytes = arr(ValueType::U8, vec![Value::U8(1), Value::U8(255)]);
    let big = arr(ValueType::U64, vec![Value::U64(1 << 40)]);
    let f = file(vec![
        ("s", strs),
        ("f", floats),
        ("u", bytes),
        ("big", big),
        ("x", Value::U8(1)),
    ]);
    assert_eq!(f.str_array("s").unwrap(), vec!["a", "b"]);
    assert_eq!(f.f32_array("f").unwrap(), vec![1.0, -2.0]);
    assert_eq!(f.i32_array("u").unwrap(), vec![1, 255]);
    let e = f.str_array("f").unwrap_err();
    assert!(
        matches!(
            e,
            GgufError::WrongType {
                found: ValueType::F32,
                ..
            }
        ),
        "{e}"
    );
    assert!(matches!(f.i32_array("s"), Err(GgufError::WrongType { .. })));
    assert!(matches!(
        f.i32_array("big"),
        Err(GgufError::OutOfRange { .. })
    ));
    assert!(matches!(
        f.f32_array("x"),
        Err(GgufError::WrongType {
            found: ValueType::U8,
            ..
        })
    ));
}

#[test]
fn bool_and_get() {
    let f = file(vec![("b", Value::Bool(true))]);
    assert!(f.bool("b").unwrap());
    assert_eq!(f.get("b"), Some(&Value::Bool(true)));
    assert_eq!(f.get("c"), None);
}

#[test]
fn file_is_send_and_sync() {
    fn shared<T: Send + Sync>(_: &T) {}
    let f = file(vec![("k", Value::U8(1))]);
    shared(&f);
    let handle = std::thread::spawn(move || f.u32("k").unwrap());
    assert_eq!(handle.join().unwrap(), 1);
}
