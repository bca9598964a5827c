#![allow(clippy::unwrap_used)] // tests may unwrap
//! The two real models open, validate, and report what llama.cpp reports for them.

use std::path::PathBuf;
use std::time::Instant;

use cria_gguf::{GgmlType, GgufFile};

/// `${CRIA_HOME:-$HOME/.cache/cria}/models/<name>.gguf`, or `None` when model tests are skipped.
fn model_path(name: &str) -> Option<PathBuf> {
    if std::env::var("CRIA_SKIP_MODEL_TESTS").is_ok_and(|v| v == "1") {
        return None;
    }
    let home = std::env::var_os("CRIA_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").expect("HOME is set");
            PathBuf::from(home).join(".cache/cria")
        });
    let path = home.join("models").join(format!("{name}.gguf"));
    assert!(
        path.exists(),
        "model file {} is missing: run `cargo run --release -- pull {name}` (or set CRIA_SKIP_MODEL_TESTS=1)",
        path.display()
    );
    Some(path)
}

#[test]
fn smollm2_header_and_tensors() {
    let Some(path) = model_path("smollm2-135m-instruct") else {
        return;
    };
    let f = GgufFile::open(path).unwrap();
    assert_eq!(f.architecture().unwrap(), "llama");
    assert_eq!(f.tensors().len(), 272);
    assert_eq!(f.u32("llama.block_count").unwrap(), 30);
    assert_eq!(f.u32("llama.embedding_length").unwrap(), 576);
    let tokens = f.str_array("tokenizer.ggml.tokens").unwrap();
    assert_eq!(tokens.len(), 49152);
    let embd = f.tensor("token_embd.weight").unwrap();
    assert_eq!(embd.shape(), &[576, 49152]);
    assert_eq!(embd.data.len() as u64, embd.info.n_bytes);
    assert_eq!(f.data_offset() % f.alignment(), 0);
}

#[test]
fn gemma3_header_and_tensors() {
    let Some(path) = model_path("gemma-3-270m") else {
        return;
    };
    let f = GgufFile::open(path).unwrap();
    assert_eq!(f.architecture().unwrap(), "gemma3");
    assert_eq!(f.tensors().len(), 236);
    assert_eq!(f.str_array("tokenizer.ggml.tokens").unwrap().len(), 262144);
    assert_eq!(f.f32_array("tokenizer.ggml.scores").unwrap().len(), 262144);
    assert_eq!(
        f.i32_array("tokenizer.ggml.token_type").unwrap().len(),
        262144
    );
    let types: Vec<GgmlType> = f.tensors().iter().map(|t| t.ty).collect();
    assert!(
        types.contains(&GgmlType::Q4_K),
        "gemma q4_k_m holds Q4_K tensors"
    );
}

#[test]
fn tensors_tile_the_data_section_in_order() {
    for name in ["smollm2-135m-instruct", "gemma-3-270m"] {
        let Some(path) = model_path(name) else { return };
        let f = GgufFile::open(path).unwrap();
        let mut expected = 0u64;
        for t in f.tensors() {
            assert_eq!(t.offset, expected, "{name}: {}", t.name);
            expected = (t.offset + t.n_bytes).next_multiple_of(f.alignment());
        }
        assert_eq!(
            f.data().len() as u64,
            expected,
            "{name}: data section ends with the last tensor"
        );
    }
}

#[test]
fn opening_gemma_is_fast() {
    let Some(path) = model_path("gemma-3-270m") else {
        return;
    };
    let start = Instant::now();
    let f = GgufFile::open(path).unwrap();
    let took = start.elapsed();
    eprintln!("opened gemma-3-270m in {took:?}");
    assert_eq!(f.tensors().len(), 236);
    // Generous: the release target is well under 100 ms; this runs in the test profile on a shared machine.
    assert!(took.as_millis() < 2000, "open took {took:?}");
}

#[test]
fn rewriting_smollm2_reproduces_its_bytes() {
    let Some(path) = model_path("smollm2-135m-instruct") else {
        return;
    };
    let f = GgufFile::open(&path).unwrap();
    let bytes = cria_gguf::GgufWriter::from_file(&f)
        .unwrap()
        .to_bytes()
        .unwrap();
    let original = std::fs::read(&path).unwrap();
    assert_eq!(bytes.len(), original.len());
    assert!(
        bytes == original,
        "rewritten file differs from the original"
    );
}
