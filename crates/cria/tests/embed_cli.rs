#![allow(clippy::unwrap_used)] // tests may unwrap
//! `cria embed` against `llama-embedding` itself on the same text lines (tiny random-weight encoders in
//! testdata/bert/, made by scripts/bert-conformance/make.py; see PROVENANCE.md there).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/bert")
}

fn cria_embed(model: &Path, stdin: &str) -> Vec<Vec<f32>> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cria"))
        .args(["embed", "-t", "1", "-m"])
        .arg(model)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "cria embed failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            serde_json::from_value(v["embedding"].clone()).unwrap()
        })
        .collect()
}

fn matches_llama_embedding(arch: &str) {
    let text = std::fs::read_to_string(data_dir().join(format!("{arch}.embeddings.json"))).unwrap();
    let reference: serde_json::Value = serde_json::from_str(&text).unwrap();
    let texts: Vec<String> =
        serde_json::from_value(reference["llama_embedding"]["texts"].clone()).unwrap();
    let want: Vec<Vec<f32>> =
        serde_json::from_value(reference["llama_embedding"]["embeddings"].clone()).unwrap();
    let got = cria_embed(
        &data_dir().join(format!("{arch}.gguf")),
        &(texts.join("\n") + "\n"),
    );
    assert_eq!(got.len(), texts.len());
    for ((g, w), t) in got.iter().zip(&want).zip(&texts) {
        let dot: f32 = g.iter().zip(w).map(|(a, b)| a * b).sum();
        // unit vectors: the dot is the cosine; llama-embedding prints 7 decimals and uses flash attention
        assert!(dot >= 0.9995, "{arch} {t:?}: cosine {dot}");
        let diff = g
            .iter()
            .zip(w)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(diff <= 2e-2, "{arch} {t:?}: |delta| {diff}");
    }
}

#[test]
fn embed_bert_lines_match_llama_embedding() {
    matches_llama_embedding("bert");
}

#[test]
fn embed_nomic_bert_lines_match_llama_embedding() {
    matches_llama_embedding("nomic-bert");
}
