//! The forward pass against llama.cpp's logits on the two reference models
//! (`testdata/reference/*/logits.jsonl`, teacher-forced, each prompt in one batch).

#![allow(clippy::unwrap_used)] // tests fail loudly on bad fixtures

mod agreement;
mod common;

use agreement::assert_parity;
use common::*;
use cria_model::{Logits, Model, Runner, SeqBatch};

/// Every logits row of `tokens` run as one batch on the CPU.
fn cpu_forward(runner: &mut Runner) -> impl FnMut(&Model, &[u32]) -> Vec<f32> + '_ {
    move |model, tokens| {
        let mut cache = model.new_cache(tokens.len());
        let mut batch = [SeqBatch {
            cache: &mut cache,
            tokens,
            logits: Logits::All,
        }];
        runner
            .forward(model, &mut batch)
            .expect("forward")
            .remove(0)
    }
}

fn cpu_parity(name: &str, folder: &str) {
    let Some(model) = load(name) else { return };
    let mut runner = Runner::new(&model, 2);
    assert_parity(
        &model,
        (name, folder),
        usize::MAX,
        &mut cpu_forward(&mut runner),
    );
}

#[test]
fn smollm2_logits_match_llama_cpp() {
    cpu_parity(MODELS[0].0, MODELS[0].1);
}

#[test]
fn gemma3_logits_match_llama_cpp() {
    cpu_parity(MODELS[1].0, MODELS[1].1);
}
