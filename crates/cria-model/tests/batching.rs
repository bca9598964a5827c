//! A prompt's logits are the same whether it is fed in one batch, token by token through the KV cache, in
//! uneven chunks, or beside another sequence in the same step.

#![allow(clippy::unwrap_used)] // tests fail loudly on bad fixtures

mod common;

use common::*;
use cria_model::{Logits, Model, Runner, SeqBatch};

/// Logits of every position of `tokens`, fed in chunks of the given sizes.
fn logits_in_chunks(
    model: &Model,
    runner: &mut Runner,
    tokens: &[u32],
    chunks: &[usize],
) -> Vec<f32> {
    let mut cache = model.new_cache(tokens.len());
    let mut all = Vec::new();
    let mut start = 0;
    for &n in chunks {
        let part = &tokens[start..start + n];
        let mut batch = [SeqBatch {
            cache: &mut cache,
            tokens: part,
            logits: Logits::All,
        }];
        all.extend(
            runner
                .forward(model, &mut batch)
                .expect("forward")
                .remove(0),
        );
        start += n;
    }
    assert_eq!(start, tokens.len());
    all
}

fn assert_close(name: &str, what: &str, a: &[f32], b: &[f32]) {
    assert_eq!(a.len(), b.len());
    let scale = a.iter().fold(0f32, |m, v| m.max(v.abs()));
    let worst = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max);
    eprintln!("{name} {what}: max |diff| {worst:.2e} over max |logit| {scale:.1}");
    assert!(
        worst <= 1e-3 * scale,
        "{name} {what}: max |diff| {worst} exceeds 1e-3 x {scale}"
    );
}

/// Feeds a prompt whole, `step` tokens at a time, in uneven chunks of multiples of `step`, and beside another
/// sequence of a multiple of `step` tokens. `step` is 1, or 4 for a model with repacked Q4_0 / Q4_K matrices:
/// those run the first `n - n % 4` rows of a matmul in llama.cpp's `gemm` order and the rest in its `gemv`
/// order (as llama.cpp does), so only batches cut at multiples of 4 keep every row in one order.
fn check(name: &str, folder: &str, step: usize) {
    let Some(model) = load(name) else { return };
    let mut runner = Runner::new(&model, 2);
    let cases = read_jsonl(&reference_file(folder, "logits.jsonl"));
    let mut tokens: Vec<u32> = ids(&cases[3]["tokens"]).into_iter().take(40).collect();
    tokens.truncate(tokens.len() - tokens.len() % step);
    let n = tokens.len();
    let whole = logits_in_chunks(&model, &mut runner, &tokens, &[n]);
    let stepwise = logits_in_chunks(&model, &mut runner, &tokens, &vec![step; n / step]);
    assert_close(
        name,
        &format!("{step} token(s) at a time"),
        &whole,
        &stepwise,
    );
    let uneven: [usize; 4] = if step == 1 {
        [7, 1, 13, 2]
    } else {
        [2 * step, step, 3 * step, step]
    };
    let uneven: Vec<usize> = uneven
        .iter()
        .copied()
        .chain([n - uneven.iter().sum::<usize>()])
        .collect();
    assert_close(
        name,
        "uneven chunks",
        &whole,
        &logits_in_chunks(&model, &mut runner, &tokens, &uneven),
    );

    // The same prompt beside another sequence in one step.
    let mut other: Vec<u32> = ids(&cases[0]["tokens"]);
    other.truncate(other.len() - other.len() % step);
    let (mut c1, mut c2) = (model.new_cache(n), model.new_cache(other.len()));
    let mut batch = [
        SeqBatch {
            cache: &mut c2,
            tokens: &other,
            logits: Logits::Last,
        },
        SeqBatch {
            cache: &mut c1,
            tokens: &tokens,
            logits: Logits::All,
        },
    ];
    let shared = runner
        .forward(&model, &mut batch)
        .expect("forward")
        .remove(1);
    assert_close(name, "batched with another sequence", &whole, &shared);
}

#[test]
fn smollm2_batching_does_not_change_logits() {
    check(MODELS[0].0, MODELS[0].1, 1);
}

#[test]
fn gemma3_batching_does_not_change_logits() {
    // gemma-3-270m Q4_K_M: attn_output and half the ffn_down are Q4_K.
    let repacked = cria_kernels::packed::packs(cria_gguf::GgmlType::Q4_K, 8, 256);
    check(MODELS[1].0, MODELS[1].1, if repacked { 4 } else { 1 });
}

#[test]
fn context_overflow_is_an_error_not_a_crash() {
    let Some(model) = load(MODELS[0].0) else {
        return;
    };
    let mut runner = Runner::new(&model, 1);
    let mut cache = model.new_cache(4);
    let tokens = [1u32, 2, 3, 4, 5];
    let mut batch = [SeqBatch {
        cache: &mut cache,
        tokens: &tokens,
        logits: Logits::Last,
    }];
    let err = runner.forward(&model, &mut batch).unwrap_err();
    assert!(err.to_string().contains("context full"), "{err}");
    let bad = [u32::MAX];
    let mut batch = [SeqBatch {
        cache: &mut cache,
        tokens: &bad,
        logits: Logits::Last,
    }];
    assert!(runner.forward(&model, &mut batch).is_err());
    assert_eq!(cache.len(), 0, "a refused batch leaves the cache as it was");
}

/// Regression: an AVX-512 matvec kernel gave a single decode step logits 0.07 away from llama.cpp's while the
/// batched path stayed within 1e-6. A one-token step must match the reference as closely as a batch does.
#[test]
fn decode_step_matches_llama_cpp_at_position_zero() {
    for (name, folder) in MODELS {
        let Some(model) = load(name) else { return };
        let mut runner = Runner::new(&model, 2);
        let case = &read_jsonl(&reference_file(folder, "logits.jsonl"))[4];
        let first = ids(&case["tokens"])[0];
        let mut cache = model.new_cache(1);
        let mut batch = [SeqBatch {
            cache: &mut cache,
            tokens: &[first],
            logits: Logits::Last,
        }];
        let row = runner
            .forward(&model, &mut batch)
            .expect("forward")
            .remove(0);
        let worst = case["positions"][0]["top"]
            .as_array()
            .expect("top")
            .iter()
            .map(|p| (row[p[0].as_u64().unwrap() as usize] as f64 - p[1].as_f64().unwrap()).abs())
            .fold(0.0, f64::max);
        eprintln!("{name}: one-token step, max |logit - llama.cpp| over its top-20: {worst:.2e}");
        assert!(worst < 1e-2, "{name}: {worst}");
    }
}
