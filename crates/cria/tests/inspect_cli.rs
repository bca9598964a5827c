#![allow(clippy::unwrap_used)] // tests may unwrap
//! `cria inspect` as a user runs it: the built binary, on valid, malformed and real files.

use std::path::PathBuf;
use std::process::{Command, Output};

use cria_gguf::{Array, GgmlType, GgufWriter, Value, ValueType};

/// Writes `bytes` to a fresh file under the temp dir and returns its path.
fn temp_file(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cria-inspect-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.gguf"));
    std::fs::write(&path, bytes).unwrap();
    path
}

fn inspect(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cria"))
        .arg("inspect")
        .args(args)
        .output()
        .unwrap()
}

fn valid_file() -> Vec<u8> {
    let mut w = GgufWriter::new();
    w.add_metadata("general.architecture", Value::String("llama".into()));
    w.add_metadata("general.name", Value::String("tiny".into()));
    w.add_metadata("llama.context_length", Value::U32(128));
    let tokens = (0..40).map(|i| Value::String(format!("tok{i}"))).collect();
    let arr = Array::new(ValueType::String, tokens).unwrap();
    w.add_metadata("tokenizer.ggml.tokens", Value::Array(arr));
    w.add_tensor("token_embd.weight", GgmlType::Q8_0, &[32, 4], vec![0; 136])
        .unwrap();
    w.add_tensor("output_norm.weight", GgmlType::F32, &[32], vec![0; 128])
        .unwrap();
    w.to_bytes().unwrap()
}

/// Fails the test unless `out` is a clean refusal: an exit code (no signal), not 0, a message.
fn assert_refused(case: &str, out: &Output) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.code().is_some(),
        "{case}: killed by a signal: {:?}",
        out.status
    );
    assert!(!out.status.success(), "{case}: accepted");
    assert!(!stderr.trim().is_empty(), "{case}: no message on stderr");
    assert!(!stderr.contains("panicked"), "{case}: panicked: {stderr}");
}

#[test]
fn valid_file_as_json() {
    let path = temp_file("valid", &valid_file());
    let out = inspect(&[path.to_str().unwrap(), "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["architecture"], "llama");
    assert_eq!(j["tensor_count"], 2);
    assert_eq!(j["context_length"], 128);
    assert_eq!(j["parameter_count"], 32 * 4 + 32);
    assert_eq!(j["tensor_types"]["Q8_0"]["bytes"], 136);
    assert_eq!(j["metadata"]["tokenizer.ggml.tokens"]["len"], 40);
    assert_eq!(j["tensors"][0]["shape"], serde_json::json!([32, 4]));
}

#[test]
fn valid_file_as_text() {
    let path = temp_file("valid-text", &valid_file());
    let out = inspect(&[path.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "architecture:   llama",
        "context length: 128",
        "tensors (2):",
        "Q8_0",
        "[String x 40]",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
}

#[test]
fn unsupported_architecture_is_named_with_the_supported_ones() {
    let mut w = GgufWriter::new();
    w.add_metadata("general.architecture", Value::String("mamba".into()));
    w.add_tensor("token_embd.weight", GgmlType::F32, &[4, 2], vec![0; 32])
        .unwrap();
    let path = temp_file("unsupported-arch", &w.to_bytes().unwrap());
    let out = inspect(&[path.to_str().unwrap()]);
    assert!(out.status.success(), "inspect still describes the file");
    let text = String::from_utf8(out.stdout).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("runs in Cria:"))
        .unwrap_or_else(|| panic!("no support line in:\n{text}"));
    for needle in [
        "no", "'mamba'", "qwen3", "gemma2", "phi3", "exaone4", "gpt-oss",
    ] {
        assert!(line.contains(needle), "missing {needle:?} in {line:?}");
    }
}

/// Raw little-endian pieces of a GGUF file.
fn header(version: u32, n_tensors: u64, n_kv: u64) -> Vec<u8> {
    let mut b = b"GGUF".to_vec();
    b.extend_from_slice(&version.to_le_bytes());
    b.extend_from_slice(&n_tensors.to_le_bytes());
    b.extend_from_slice(&n_kv.to_le_bytes());
    b
}

fn string(b: &mut Vec<u8>, s: &str) {
    b.extend_from_slice(&(s.len() as u64).to_le_bytes());
    b.extend_from_slice(s.as_bytes());
}

/// A header with one tensor info (`dims`, type `ty`, `offset`) then `data` zero bytes.
fn one_tensor(dims: &[u64], ty: u32, offset: u64, data: usize) -> Vec<u8> {
    let mut b = header(3, 1, 0);
    string(&mut b, "t");
    b.extend_from_slice(&(dims.len() as u32).to_le_bytes());
    dims.iter()
        .for_each(|d| b.extend_from_slice(&d.to_le_bytes()));
    b.extend_from_slice(&ty.to_le_bytes());
    b.extend_from_slice(&offset.to_le_bytes());
    b.resize(b.len().next_multiple_of(32) + data, 0);
    b
}

fn kv(key: &str, ty: u32, value: &[u8]) -> Vec<u8> {
    let mut b = header(3, 0, 1);
    string(&mut b, key);
    b.extend_from_slice(&ty.to_le_bytes());
    b.extend_from_slice(value);
    b
}

fn malformed_cases() -> Vec<(&'static str, Vec<u8>)> {
    let mut dup = header(3, 0, 2);
    for _ in 0..2 {
        string(&mut dup, "k");
        dup.extend_from_slice(&[4, 0, 0, 0, 1, 0, 0, 0]);
    }
    let valid = valid_file();
    let infos = valid
        .windows(18)
        .position(|w| w == b"output_norm.weight")
        .unwrap();
    vec![
        ("empty", vec![]),
        ("bad magic", b"GGML\x03\0\0\0".to_vec()),
        ("version 0", header(0, 0, 0)),
        ("version 1", header(1, 0, 0)),
        ("future version", header(4, 0, 0)),
        ("huge tensor count", header(3, u64::MAX, 0)),
        ("huge key count", header(3, 0, 1 << 60)),
        (
            "huge key length",
            [header(3, 0, 1), u64::MAX.to_le_bytes().to_vec()].concat(),
        ),
        ("bad value type", kv("k", 13, &[0; 8])),
        (
            "bad array type",
            kv("k", 9, &[13, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]),
        ),
        (
            "huge array count",
            kv("k", 9, &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 16]),
        ),
        ("duplicate key", dup),
        (
            "alignment 3",
            kv("general.alignment", 4, &3u32.to_le_bytes()),
        ),
        (
            "alignment as u64",
            kv("general.alignment", 10, &32u64.to_le_bytes()),
        ),
        ("too many dims", one_tensor(&[1, 1, 1, 1, 1], 0, 0, 4)),
        ("dims overflow", one_tensor(&[1 << 32, 1 << 32], 0, 0, 4)),
        ("unknown tensor type", one_tensor(&[32], 4, 0, 128)),
        ("offset beyond file", one_tensor(&[4], 0, 1 << 20, 16)),
        ("unaligned offset", one_tensor(&[4], 0, 4, 64)),
        ("data cut short", one_tensor(&[8], 0, 0, 31)),
        ("partial block row", one_tensor(&[33], 8, 0, 64)),
        ("truncated in metadata", valid[..60].to_vec()),
        ("truncated in tensor infos", valid[..infos + 5].to_vec()),
        ("truncated in data", valid[..valid.len() - 10].to_vec()),
    ]
}

#[test]
fn every_malformed_file_is_refused_cleanly() {
    for (case, bytes) in malformed_cases() {
        let path = temp_file(&case.replace(' ', "-"), &bytes);
        assert_refused(case, &inspect(&[path.to_str().unwrap()]));
        assert_refused(case, &inspect(&[path.to_str().unwrap(), "--json"]));
    }
}

#[test]
fn duplicate_tensor_name_refused() {
    let mut b = header(3, 2, 0);
    for offset in [0u64, 32] {
        string(&mut b, "t");
        b.extend_from_slice(&1u32.to_le_bytes());
        b.extend_from_slice(&4u64.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(&offset.to_le_bytes());
    }
    b.resize(b.len().next_multiple_of(32) + 64, 0);
    let path = temp_file("duplicate-tensor", &b);
    let out = inspect(&[path.to_str().unwrap()]);
    assert_refused("duplicate tensor", &out);
    assert!(String::from_utf8_lossy(&out.stderr).contains("duplicate tensor name"));
}

#[test]
fn missing_file_refused() {
    assert_refused("missing", &inspect(&["/nonexistent/model.gguf"]));
}

fn model_path(name: &str) -> Option<PathBuf> {
    if std::env::var("CRIA_SKIP_MODEL_TESTS").is_ok_and(|v| v == "1") {
        return None;
    }
    let home = std::env::var_os("CRIA_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/cria"));
    let path = home.join("models").join(format!("{name}.gguf"));
    assert!(
        path.exists(),
        "{} is missing: run `cargo run --release -- pull {name}`",
        path.display()
    );
    Some(path)
}

#[test]
fn real_models_report_architecture_and_tensor_count() {
    for (name, arch, count) in [
        ("smollm2-135m-instruct", "llama", 272),
        ("gemma-3-270m", "gemma3", 236),
    ] {
        let Some(path) = model_path(name) else { return };
        let out = inspect(&[path.to_str().unwrap(), "--json"]);
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            (j["architecture"].as_str(), j["tensor_count"].as_u64()),
            (Some(arch), Some(count))
        );
    }
}
