//! Shared helpers for the tests on the real models.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::OnceLock;

use cria_gguf::GgufFile;
use cria_tokenizer::Tokenizer;
use serde::Deserialize;

/// A model under test: its `cria pull` name and its folder of reference data.
pub struct Model {
    pub name: &'static str,
    pub reference: &'static str,
    pub arch: &'static str,
}

pub const SMOLLM: Model = Model {
    name: "smollm2-135m-instruct",
    reference: "smollm2-135m-instruct-q4_1",
    arch: "llama",
};
pub const GEMMA: Model = Model {
    name: "gemma-3-270m",
    reference: "gemma-3-270m-q4_k_m",
    arch: "gemma3",
};

/// The model file, or `None` when CRIA_SKIP_MODEL_TESTS=1 and it is missing; panics otherwise.
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
        eprintln!(
            "skipping: {} is missing and CRIA_SKIP_MODEL_TESTS=1",
            path.display()
        );
        return None;
    }
    panic!(
        "model file {} is missing: run `cargo run --release -- pull {name}`",
        path.display()
    );
}

/// The model's tokenizer, loaded once per test binary.
pub fn tokenizer(model: &Model) -> Option<&'static Tokenizer> {
    static SMOLLM_TOK: OnceLock<Option<Tokenizer>> = OnceLock::new();
    static GEMMA_TOK: OnceLock<Option<Tokenizer>> = OnceLock::new();
    let cell = if model.name == SMOLLM.name {
        &SMOLLM_TOK
    } else {
        &GEMMA_TOK
    };
    cell.get_or_init(|| {
        let path = model_path(model.name)?;
        let file = GgufFile::open(&path).unwrap();
        Some(Tokenizer::from_gguf(&file).unwrap())
    })
    .as_ref()
}

pub fn reference_path(model: &Model, file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/reference")
        .join(model.reference)
        .join(file)
}

#[derive(Debug, Deserialize)]
pub struct TokenizeCase {
    pub text: String,
    pub add_special: bool,
    pub parse_special: bool,
    pub ids: Vec<u32>,
}

#[derive(Debug, Deserialize)]
pub struct LogitsCase {
    pub kind: String,
    pub text: String,
    pub tokens: Vec<u32>,
}

pub fn read_jsonl<T: for<'de> Deserialize<'de>>(model: &Model, file: &str) -> Vec<T> {
    let text = std::fs::read_to_string(reference_path(model, file)).unwrap();
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}
