//! The engine on the real default model: a sequence's logits and greedy text do not depend on what else is
//! in the batch.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::path::PathBuf;
use std::sync::Arc;

use cria_engine::{Backend, Engine, EngineConfig, Event, ModelBackend, Request, Step};
use cria_model::Model;
use cria_sampling::SamplingParams;
use cria_tokenizer::Tokenizer;

const NAME: &str = "smollm2-135m-instruct";

fn model_path() -> Option<PathBuf> {
    if std::env::var("CRIA_SKIP_MODEL_TESTS").is_ok_and(|v| v == "1") {
        return None;
    }
    let home = std::env::var("CRIA_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/cria")
        });
    let path = home.join("models").join(format!("{NAME}.gguf"));
    assert!(
        path.exists(),
        "{} is missing: run `cargo run --release -- pull {NAME}`",
        path.display()
    );
    Some(path)
}

fn load() -> Option<(Arc<Model>, Arc<Tokenizer>)> {
    let model = Arc::new(Model::load(&model_path()?).unwrap());
    let tok = Arc::new(Tokenizer::from_gguf(model.gguf()).unwrap());
    Some((model, tok))
}

fn argmax(v: &[f32]) -> u32 {
    cria_sampling::Sampler::new(SamplingParams::greedy()).sample(v, &[])
}

/// Decodes `steps` greedy tokens for slot 0, alone or alongside other slots that decode or prefill.
fn decode(
    backend: &mut ModelBackend,
    prompt: &[u32],
    others: &[Vec<u32>],
    steps: usize,
) -> Vec<Vec<f32>> {
    for slot in 0..=others.len() {
        backend.reset_slot(slot);
    }
    let mut rows = Vec::new();
    let mut next = prompt.to_vec();
    let mut other_next: Vec<Vec<u32>> = others.to_vec();
    for _ in 0..steps {
        let mut batch = vec![Step {
            slot: 0,
            tokens: &next,
            want_logits: true,
        }];
        for (i, t) in other_next.iter().enumerate() {
            batch.push(Step {
                slot: i + 1,
                tokens: t,
                want_logits: true,
            });
        }
        let out = backend.forward(&batch).unwrap();
        let fresh: Vec<Vec<u32>> = out[1..].iter().map(|l| vec![argmax(l)]).collect();
        next = vec![argmax(&out[0])];
        rows.push(out.into_iter().next().unwrap());
        other_next = fresh;
    }
    rows
}

#[test]
fn logits_do_not_depend_on_the_rest_of_the_batch() {
    let Some((model, tok)) = load() else { return };
    let mut backend = ModelBackend::new(model, 8, 256, 2);
    let prompt = tok.encode("The sea is", true, false);
    let alone = decode(&mut backend, &prompt, &[], 6);
    let others: Vec<Vec<u32>> = (0..7)
        .map(|i| tok.encode(&format!("Count from {i} to twenty:"), true, false))
        .collect();
    let batched = decode(&mut backend, &prompt, &others, 6);
    for (step, (a, b)) in alone.iter().zip(&batched).enumerate() {
        let max_diff = a
            .iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, f32::max);
        assert_eq!(
            a, b,
            "step {step}: logits differ in a batch (max diff {max_diff})"
        );
    }
}

fn greedy_text(engine: &Engine, prompt: &[u32], max_tokens: usize) -> String {
    let req = Request {
        prompt: prompt.to_vec(),
        sampling: SamplingParams::greedy(),
        max_tokens,
        stop: vec![],
        logprobs: None,
    };
    let mut rx = engine.submit(req).unwrap();
    let mut text = String::new();
    while let Some(ev) = rx.blocking_recv() {
        match ev {
            Event::Token { text: t, .. } => text.push_str(&t),
            Event::Done { .. } => break,
            Event::Failed(m) => panic!("{m}"),
        }
    }
    text
}

#[test]
fn greedy_text_is_the_same_alone_and_among_seven_others() {
    let Some((model, tok)) = load() else { return };
    let config = EngineConfig {
        parallel: 8,
        ctx: 512,
        step_tokens: 16,
        ..EngineConfig::default()
    };
    let engine = Arc::new(
        Engine::start(config, tok.clone(), move || {
            Ok(ModelBackend::new(model, 8, 512, 2))
        })
        .unwrap(),
    );
    let prompt = tok.encode(
        "Once upon a time, in a small village by the sea,",
        true,
        false,
    );
    let alone = greedy_text(&engine, &prompt, 32);
    let handles: Vec<_> = (0..7)
        .map(|i| {
            let engine = Arc::clone(&engine);
            let p = tok.encode(
                &format!("Here is a list of {i} fruits and their colors:"),
                true,
                false,
            );
            std::thread::spawn(move || greedy_text(&engine, &p, 24 + i))
        })
        .collect();
    let together = greedy_text(&engine, &prompt, 32);
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(alone, together);
    assert!(!alone.is_empty());
}

#[test]
fn engine_text_equals_direct_greedy_decoding_and_cancellation_frees_the_slot() {
    let Some((model, tok)) = load() else { return };
    let template = cria_tokenizer::ChatTemplate::for_model(&tok, "llama", None).unwrap();
    let messages = [cria_tokenizer::ChatMessage {
        role: "user".into(),
        content: "Name three colors.".into(),
    }];
    let prompt = tok.encode(&template.render(&messages, true).unwrap(), true, true);
    let mut backend = ModelBackend::new(Arc::clone(&model), 1, 512, 2);
    let ids: Vec<u32> = decode(&mut backend, &prompt, &[], 40)
        .iter()
        .map(|row| argmax(row))
        .collect();
    let end = ids
        .iter()
        .position(|&id| tok.is_end_of_generation(id))
        .unwrap_or(ids.len());
    let expected = tok.decode(&ids[..end]);
    drop(backend);

    let config = EngineConfig {
        parallel: 2,
        ctx: 512,
        ..EngineConfig::default()
    };
    let engine = Engine::start(config, tok.clone(), move || {
        Ok(ModelBackend::new(model, 2, 512, 2))
    })
    .unwrap();
    let text = greedy_text(&engine, &prompt, 40);
    assert_eq!(text, expected);
    assert!(!text.is_empty());

    let req = Request {
        prompt,
        sampling: SamplingParams::greedy(),
        max_tokens: 400,
        stop: vec![],
        logprobs: None,
    };
    let mut rx = engine.submit(req).unwrap();
    assert!(matches!(rx.blocking_recv(), Some(Event::Token { .. })));
    drop(rx);
    for _ in 0..500 {
        if engine.stats().running == 0 && engine.stats().kv_tokens == 0 {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("cancelled sequence still running: {:?}", engine.stats());
}
