//! Reference dequantization of real tensors of the two reference models, against the `gguf` Python package's
//! output for the same rows (tests/data/make_model_rows.py), bit for bit.

use cria_gguf::GgufFile;
use cria_kernels::quant::dequantize_row;
use serde_json::Value;
use std::path::PathBuf;

/// `${CRIA_HOME:-$HOME/.cache/cria}/models/<name>.gguf`, or None when CRIA_SKIP_MODEL_TESTS=1.
fn model_path(name: &str) -> Option<PathBuf> {
    if std::env::var("CRIA_SKIP_MODEL_TESTS").is_ok_and(|v| v == "1") {
        return None;
    }
    let home = std::env::var("CRIA_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/cria"));
    let path = home.join("models").join(format!("{name}.gguf"));
    assert!(
        path.exists(),
        "{} is missing: run `cargo run --release -- pull {name}`",
        path.display()
    );
    Some(path)
}

#[test]
fn real_tensor_rows_dequantize_like_gguf_py() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/model_rows.json");
    let cases: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut files: Vec<(String, GgufFile)> = Vec::new();
    let mut checked = 0;
    for case in cases.as_array().unwrap() {
        let model = case["model"].as_str().unwrap();
        let Some(p) = model_path(model) else { return };
        if !files.iter().any(|(m, _)| m == model) {
            files.push((model.to_owned(), GgufFile::open(p).unwrap()));
        }
        let file = &files.iter().find(|(m, _)| m == model).unwrap().1;
        let t = file.tensor(case["tensor"].as_str().unwrap()).unwrap();
        assert_eq!(t.ty().name(), case["type"].as_str().unwrap());
        let n_cols = t.shape()[0] as usize;
        let rb = t.ty().row_bytes(n_cols).unwrap();
        let row = case["row"].as_u64().unwrap() as usize;
        let mut got = vec![0f32; n_cols];
        dequantize_row(t.ty(), &t.data[row * rb..(row + 1) * rb], &mut got).unwrap();
        let hex = case["deq"].as_str().unwrap();
        for (i, g) in got.iter().enumerate() {
            let want = u32::from_str_radix(&hex[8 * i..8 * i + 8], 16)
                .unwrap()
                .swap_bytes();
            assert_eq!(g.to_bits(), want, "{model} {} row {row} col {i}", t.name());
        }
        checked += 1;
    }
    assert_eq!(checked, 18);
}
