#![allow(clippy::unwrap_used)] // tests may unwrap
//! `cria tokenize` on the real models against llama.cpp's output (testdata/reference/*/tokenize.jsonl).

mod common;

use common::{model_path, reference_path};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

fn reference(dir: &str) -> String {
    std::fs::read_to_string(reference_path(&[dir, "tokenize.jsonl"])).unwrap()
}

fn cria_tokenize(model: &PathBuf, extra: &[&str], stdin: &str) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cria"))
        .arg("tokenize")
        .arg("-m")
        .arg(model)
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let text = stdin.to_string();
    let writer = std::thread::spawn(move || input.write_all(text.as_bytes()).unwrap());
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(
        output.status.success(),
        "cria tokenize failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn jsonl_matches_llama_cpp(name: &str, dir: &str) {
    let Some(model) = model_path(name) else {
        return;
    };
    let input = reference(dir);
    let output = cria_tokenize(&model, &["--jsonl"], &input);
    let want: Vec<serde_json::Value> = input
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let got: Vec<serde_json::Value> = output
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(got.len(), want.len(), "one answer per request");
    for (w, g) in want.iter().zip(&got) {
        assert_eq!(g["ids"], w["ids"], "text {:?}", w["text"]);
    }
}

#[test]
fn jsonl_mode_matches_llama_cpp_on_smollm2() {
    jsonl_matches_llama_cpp("smollm2-135m-instruct", "smollm2-135m-instruct-q4_1");
}

#[test]
fn jsonl_mode_matches_llama_cpp_on_gemma3() {
    jsonl_matches_llama_cpp("gemma-3-270m", "gemma-3-270m-q4_k_m");
}

#[test]
fn plain_mode_prints_one_array_for_all_of_stdin() {
    let Some(model) = model_path("gemma-3-270m") else {
        return;
    };
    let out = cria_tokenize(&model, &["--add-special"], "Hello world");
    assert_eq!(out.trim(), "[2,9259,1902]");
    let out = cria_tokenize(&model, &["--parse-special"], "<start_of_turn>user\n");
    assert_eq!(out.trim(), "[105,2364,107]");
    let out = cria_tokenize(&model, &[], "<start_of_turn>");
    assert_ne!(out.trim(), "[105]");
}
