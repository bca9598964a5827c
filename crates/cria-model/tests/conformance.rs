//! The conformance suite: tiny random-weight models, one per architecture feature
//! (`testdata/conformance/<case>/`, written by `scripts/conformance/make_cases.py`) and one per IQ, ternary and
//! MXFP4 weight format (`testdata/conformance-formats/<format>/`, `scripts/conformance/make_format_cases.py`),
//! against llama.cpp's teacher-forced logits.
//!
//! Over llama.cpp's top-20 ids of every position, after log-softmax: mean |Δ| ≤ 0.04, max |Δ| ≤ 0.5, and the
//! top-1 equal wherever llama.cpp's margin between its first two is at least 0.1.

#![allow(clippy::unwrap_used)] // tests fail loudly on bad fixtures

mod common;

use std::path::{Path, PathBuf};

use common::lse;
use cria_model::{Logits, Model, Runner, SeqBatch};

const MEAN_MAX: f64 = 0.04;
const MAX_MAX: f64 = 0.5;
const CONFIDENT_MARGIN: f64 = 0.1;
/// llama-ref-dump's context: RoPE variants that depend on it (LongRoPE's long factors) see the same.
const REF_CTX: usize = 4096;

fn suite_dir(suite: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata")
        .join(suite)
}

/// One position of llama.cpp's dump: log-sum-exp of the whole row and the top ids with their logits.
struct RefRow {
    lse: f64,
    top: Vec<(usize, f64)>,
}

fn read_reference(dir: &Path) -> Vec<RefRow> {
    let text = std::fs::read_to_string(dir.join("reference.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json.as_array()
        .unwrap()
        .iter()
        .map(|r| RefRow {
            lse: r["lse"].as_f64().unwrap(),
            top: r["top"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| (p[0].as_u64().unwrap() as usize, p[1].as_f64().unwrap()))
                .collect(),
        })
        .collect()
}

fn read_tokens(dir: &Path) -> Vec<u32> {
    std::fs::read_to_string(dir.join("tokens.txt"))
        .unwrap()
        .split_whitespace()
        .map(|t| t.parse().unwrap())
        .collect()
}

/// How one case's logits compare with llama.cpp's.
#[derive(Debug)]
struct Agreement {
    mean_abs: f64,
    max_abs: f64,
    /// Positions where llama.cpp is confident and Cria's top-1 differs.
    confident_misses: Vec<usize>,
}

fn agreement(reference: &[RefRow], logits: &[f32], n_vocab: usize) -> Agreement {
    let (mut sum, mut n, mut max_abs) = (0.0, 0usize, 0.0f64);
    let mut confident_misses = Vec::new();
    for (pos, (r, row)) in reference
        .iter()
        .zip(logits.chunks_exact(n_vocab))
        .enumerate()
    {
        let ours_lse = lse(row);
        for &(id, logit) in &r.top {
            let d = ((row[id] as f64 - ours_lse) - (logit - r.lse)).abs();
            sum += d;
            n += 1;
            max_abs = max_abs.max(d);
        }
        let margin = r.top[0].1 - r.top[1].1;
        if margin >= CONFIDENT_MARGIN && common::argmax(row) != r.top[0].0 {
            confident_misses.push(pos);
        }
    }
    Agreement {
        mean_abs: sum / n.max(1) as f64,
        max_abs,
        confident_misses,
    }
}

fn run_case(dir: &Path) -> Agreement {
    let model = Model::load(&dir.join("model.gguf")).unwrap();
    let tokens = read_tokens(dir);
    let reference = read_reference(dir);
    assert_eq!(reference.len(), tokens.len(), "one reference row a token");
    let mut runner = Runner::new(&model, 2);
    let mut cache = model.new_cache(REF_CTX);
    let mut batch = [SeqBatch {
        cache: &mut cache,
        tokens: &tokens,
        logits: Logits::All,
    }];
    let logits = runner.forward(&model, &mut batch).unwrap().remove(0);
    agreement(&reference, &logits, model.n_vocab())
}

fn case_dirs(suite: &str) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(suite_dir(suite))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("model.gguf").exists())
        .collect();
    dirs.sort();
    dirs
}

/// Runs every case of a suite folder; fails listing the cases off llama.cpp.
fn check_suite(suite: &str) {
    let dirs = case_dirs(suite);
    assert!(!dirs.is_empty(), "no cases under {:?}", suite_dir(suite));
    let mut failures = Vec::new();
    for dir in &dirs {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let a = run_case(dir);
        eprintln!(
            "{name}: mean |Δ| {:.5}, max |Δ| {:.5}, confident top-1 misses {:?}",
            a.mean_abs, a.max_abs, a.confident_misses
        );
        if a.mean_abs > MEAN_MAX || a.max_abs > MAX_MAX || !a.confident_misses.is_empty() {
            failures.push((name, a));
        }
    }
    assert!(failures.is_empty(), "cases off llama.cpp: {failures:#?}");
}

#[test]
fn every_conformance_case_matches_llama_cpp() {
    check_suite("conformance");
}

#[test]
fn every_weight_format_matches_llama_cpp() {
    check_suite("conformance-formats");
}
