//! Every conformance case (one tiny random-weight model per architecture feature) through the GPU runner,
//! against llama.cpp's teacher-forced logits with the CPU suite's bounds (`conformance_data/mod.rs`): the one
//! decoder block serves every architecture on the GPU too, mixtures of experts included. A case with a part
//! the GPU backend lacks is refused when the runner is made (`Backend::supports`) and runs on the CPU; the
//! refused cases must be exactly [`REFUSED`].
//!
//! Runs where `CRIA_GPU_REQUIRED=1` (tests/gpu/run.sh, on lavapipe in CI), skips with a message elsewhere.

#![allow(clippy::unwrap_used)] // tests fail loudly on bad fixtures

mod common;
mod conformance_data;

use conformance_data::*;
use cria_gpu::{DeviceChoice, Gpu};
use cria_model::gpu::{GpuRunner, GpuSeq};
use cria_model::{Logits, Model};

/// The cases the GPU backend refuses, and why.
const REFUSED: [(&str, &str); 2] = [
    ("gpt_oss", "MXFP4 experts: no GPU kernel for the format"),
    ("qwen2moe", "a sigmoid-gated shared expert"),
];

#[test]
fn every_conformance_case_matches_llama_cpp_on_gpu() {
    if std::env::var("CRIA_GPU_REQUIRED").as_deref() != Ok("1") {
        eprintln!("skipping: CRIA_GPU_REQUIRED=1 not set (tests/gpu/run.sh runs it)");
        return;
    }
    let (mut refused, mut failures) = (Vec::new(), Vec::new());
    for dir in case_dirs("conformance") {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let model = Model::load(&dir.join("model.gguf")).unwrap();
        let gpu = Gpu::open(DeviceChoice::Gpu(None)).expect("CRIA_GPU_REQUIRED=1: a GPU adapter");
        let mut runner = match GpuRunner::new(&model, gpu) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("{name}: refused on the GPU: {e}");
                refused.push(name);
                continue;
            }
        };
        let tokens = read_tokens(&dir);
        let mut cache = runner.new_cache(&model, REF_CTX).unwrap();
        let mut batch = [GpuSeq {
            cache: &mut cache,
            tokens: &tokens,
            logits: Logits::All,
        }];
        let logits = runner.forward(&model, &mut batch).unwrap().remove(0);
        let a = agreement(&read_reference(&dir), &logits, model.n_vocab());
        eprintln!(
            "{name} (gpu): mean |Δ| {:.5}, max |Δ| {:.5}, confident top-1 misses {:?}",
            a.mean_abs, a.max_abs, a.confident_misses
        );
        if !a.holds() {
            failures.push((name, a));
        }
    }
    assert!(
        failures.is_empty(),
        "cases off llama.cpp on the GPU: {failures:#?}"
    );
    let expected: Vec<&str> = REFUSED.iter().map(|(n, _)| *n).collect();
    assert_eq!(refused, expected, "the cases the GPU refuses");
}
