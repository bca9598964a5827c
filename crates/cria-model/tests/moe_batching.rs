//! The mixture-of-experts FFN batches the tokens that chose the same expert: a prompt's logits must not depend
//! on which other tokens share its step (its own chunks or another sequence's), nor differ from the
//! one-token decode path that runs each expert on a single row.

#![allow(clippy::unwrap_used)] // tests fail loudly on bad fixtures

use std::path::PathBuf;

use cria_model::{Logits, Model, Runner, SeqBatch};

fn conformance_model(case: &str) -> Model {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/conformance")
        .join(case)
        .join("model.gguf");
    Model::load(&path).unwrap()
}

/// Logits of every position of `tokens` fed in chunks of the given sizes, beside `other` (a second
/// sequence in the first step) when given.
fn logits(model: &Model, tokens: &[u32], chunks: &[usize], other: Option<&[u32]>) -> Vec<f32> {
    let mut runner = Runner::new(model, 2);
    let mut cache = model.new_cache(tokens.len());
    let mut other_cache = model.new_cache(64);
    let mut all = Vec::new();
    let mut start = 0;
    for (i, &n) in chunks.iter().enumerate() {
        let mut batch = vec![SeqBatch {
            cache: &mut cache,
            tokens: &tokens[start..start + n],
            logits: Logits::All,
        }];
        if let (0, Some(o)) = (i, other) {
            batch.insert(
                0,
                SeqBatch {
                    cache: &mut other_cache,
                    tokens: o,
                    logits: Logits::Last,
                },
            );
        }
        let mut out = runner.forward(model, &mut batch).unwrap();
        all.extend(out.pop().unwrap());
        start += n;
    }
    all
}

fn assert_close(what: &str, a: &[f32], b: &[f32]) {
    assert_eq!(a.len(), b.len());
    let scale = a.iter().fold(0f32, |m, v| m.max(v.abs()));
    let worst = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max);
    assert!(
        worst <= 1e-4 * scale,
        "{what}: max |diff| {worst} exceeds 1e-4 x {scale}"
    );
}

#[test]
fn moe_logits_do_not_depend_on_who_shares_the_step() {
    for case in [
        "llama_moe",
        "llama_moe_q4_0",
        "qwen3moe",
        "qwen3moe_q8_0",
        "qwen2moe",
        "gpt_oss",
    ] {
        let model = conformance_model(case);
        let tokens: Vec<u32> = (0..40).map(|i| (i * 97 + 13) % 256).collect();
        let other: Vec<u32> = (0..23).map(|i| (i * 31 + 5) % 256).collect();
        let n = tokens.len();
        let whole = logits(&model, &tokens, &[n], None);
        let one_by_one = logits(&model, &tokens, &vec![1; n], None);
        assert_close(&format!("{case} token by token"), &whole, &one_by_one);
        let uneven = logits(&model, &tokens, &[7, 1, 13, 2, n - 23], None);
        assert_close(&format!("{case} uneven chunks"), &whole, &uneven);
        let beside = logits(&model, &tokens, &[n], Some(&other));
        assert_close(&format!("{case} beside another sequence"), &whole, &beside);
    }
}
