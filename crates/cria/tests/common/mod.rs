//! What the CLI's integration tests share: where the reference models and data are.

#![allow(dead_code)]

use std::path::PathBuf;

/// The model file `cria pull NAME` stores, or `None` when CRIA_SKIP_MODEL_TESTS=1 and it is missing;
/// panics otherwise.
pub fn model_path(name: &str) -> Option<PathBuf> {
    let home = std::env::var_os("CRIA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/cria")))
        .unwrap_or_else(|| PathBuf::from(".cache/cria"));
    let path = home.join("models").join(format!("{name}.gguf"));
    if path.exists() {
        return Some(path);
    }
    if std::env::var("CRIA_SKIP_MODEL_TESTS").as_deref() == Ok("1") {
        return None;
    }
    panic!(
        "model file {} is missing: run `cargo run --release -- pull {name}`",
        path.display()
    );
}

/// A file of the repository's copy of llama.cpp's reference data.
pub fn reference_path(parts: &[&str]) -> PathBuf {
    let mut path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/reference");
    path.extend(parts);
    path
}
