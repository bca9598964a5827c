//! Shared helpers of the model's integration tests: where the reference models and data are.

#![allow(clippy::unwrap_used)] // tests fail loudly on bad fixtures
#![allow(dead_code)]

use std::path::PathBuf;

use cria_model::Model;

/// The two reference models: (registry name, reference-data folder).
pub const MODELS: [(&str, &str); 2] = [
    ("smollm2-135m-instruct", "smollm2-135m-instruct-q4_1"),
    ("gemma-3-270m", "gemma-3-270m-q4_k_m"),
];

/// The model file `cria pull NAME` stores, or `None` (with a message) when model tests are skipped.
pub fn model_path(name: &str) -> Option<PathBuf> {
    let home = std::env::var_os("CRIA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/cria")))
        .expect("neither CRIA_HOME nor HOME is set");
    let path = home.join("models").join(format!("{name}.gguf"));
    if path.exists() {
        return Some(path);
    }
    if std::env::var_os("CRIA_SKIP_MODEL_TESTS").is_some() {
        eprintln!(
            "skipping: {} missing and CRIA_SKIP_MODEL_TESTS is set",
            path.display()
        );
        return None;
    }
    panic!(
        "{} is missing: run `cargo run --release -- pull {name}` first",
        path.display()
    );
}

pub fn load(name: &str) -> Option<Model> {
    model_path(name).map(|p| Model::load(&p).expect("reference model loads"))
}

/// The repository's copy of the llama.cpp reference data for one model.
pub fn reference_file(folder: &str, file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/reference")
        .join(folder)
        .join(file)
}

/// Reads a JSON-lines file.
pub fn read_jsonl(path: &PathBuf) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .expect("reference data readable")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("valid JSON line"))
        .collect()
}

pub fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .expect("array of ids")
        .iter()
        .map(|x| x.as_u64().expect("id") as u32)
        .collect()
}

/// log-sum-exp of a row of logits.
pub fn lse(row: &[f32]) -> f64 {
    let max = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max) as f64;
    max + row
        .iter()
        .map(|&l| (l as f64 - max).exp())
        .sum::<f64>()
        .ln()
}

pub fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best
}
