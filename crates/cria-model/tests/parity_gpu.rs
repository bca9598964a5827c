//! The GPU forward pass against llama.cpp's logits on the two reference models, with the CPU parity test's
//! data and bounds (`agreement/mod.rs`), on the adapter `--device gpu` picks (lavapipe in CI).
//!
//! lavapipe runs compute on the CPU, slowly: the prompts of up to [`MAX_PROMPT`] tokens (all but the longest of
//! each model's, about 150 positions each) keep the test to a few minutes.
//!
//! They run where `CRIA_GPU_REQUIRED=1` (tests/gpu/run.sh sets it after installing lavapipe; then a missing
//! adapter fails them) and skip with a message elsewhere, so the workspace's test run does not repeat them.

#![allow(clippy::unwrap_used)] // tests fail loudly on bad fixtures

mod agreement;
mod common;

use agreement::assert_parity;
use common::*;
use cria_gpu::{DeviceChoice, Gpu};
use cria_model::Logits;
use cria_model::gpu::{GpuRunner, GpuSeq};

/// The longest reference prompt the GPU runs.
const MAX_PROMPT: usize = 40;

fn gpu() -> Option<Gpu> {
    if std::env::var("CRIA_GPU_REQUIRED").as_deref() != Ok("1") {
        eprintln!("skipping GPU parity: CRIA_GPU_REQUIRED=1 not set (tests/gpu/run.sh runs it)");
        return None;
    }
    Some(Gpu::open(DeviceChoice::Gpu(None)).expect("CRIA_GPU_REQUIRED=1: a GPU adapter"))
}

fn gpu_parity(name: &str, folder: &str) {
    let Some(model) = load(name) else { return };
    let Some(gpu) = gpu() else { return };
    let mut runner = GpuRunner::new(&model, gpu).expect("weights upload");
    let mut forward = |model: &cria_model::Model, tokens: &[u32]| {
        let mut cache = runner.new_cache(model, tokens.len()).expect("cache");
        let mut batch = [GpuSeq {
            cache: &mut cache,
            tokens,
            logits: Logits::All,
        }];
        runner
            .forward(model, &mut batch)
            .expect("forward")
            .remove(0)
    };
    assert_parity(&model, (name, folder), MAX_PROMPT, &mut forward);
}

#[test]
fn smollm2_logits_match_llama_cpp_on_gpu() {
    gpu_parity(MODELS[0].0, MODELS[0].1);
}

#[test]
fn gemma3_logits_match_llama_cpp_on_gpu() {
    gpu_parity(MODELS[1].0, MODELS[1].1);
}
