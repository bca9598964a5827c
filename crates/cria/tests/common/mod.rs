//! What the CLI's integration tests share: where the reference models and data are.

#![allow(dead_code)]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

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

/// Runs the `cria` binary with `args`, `stdin` written to it; panics (with its stderr) unless it succeeds.
pub fn cria_output(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cria"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cria starts");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(stdin.as_bytes())
        .expect("stdin written");
    let out = child.wait_with_output().expect("cria ends");
    assert!(
        out.status.success(),
        "cria {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}
