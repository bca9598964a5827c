//! The conformance suite: tiny random-weight models, one per architecture feature
//! (`testdata/conformance/<case>/`, written by `scripts/conformance/make_cases.py`) and one per IQ, ternary and
//! MXFP4 weight format (`testdata/conformance-formats/<format>/`, `scripts/conformance/make_format_cases.py`),
//! against llama.cpp's teacher-forced logits. The data and bounds are in `conformance_data/mod.rs`.

#![allow(clippy::unwrap_used)] // tests fail loudly on bad fixtures

mod common;
mod conformance_data;

use std::path::Path;

use conformance_data::*;
use cria_model::{Logits, Model, Runner, SeqBatch};

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
        if !a.holds() {
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
