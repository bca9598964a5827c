#![allow(clippy::unwrap_used)] // tests may unwrap
//! `cria run` and `cria chat` on the real models: they generate through the engine, and print what the
//! model's plain greedy loop prints (the one held to llama.cpp's); a chat's next turn starts from the KV its
//! earlier turns left in the engine's prompt cache.

mod common;

use common::{cria_output as cria, model_path, reference_path};
use cria_model::{Logits, Model, Runner, SeqBatch};
use cria_tokenizer::{IncrementalDecoder, Tokenizer};

/// The text the model's plain greedy loop (one flat cache, the whole prompt in one batch: what `cria run` ran
/// before it drove the engine) prints after `prompt`: `n` tokens or up to end of generation. The loop is held
/// to llama.cpp's greedy continuations by cria-model's tests/greedy.rs.
fn plain_greedy(model: &Model, tokenizer: &Tokenizer, prompt: &[u32], n: usize) -> String {
    let mut runner = Runner::new(model, 2);
    let mut cache = model.new_cache(prompt.len() + n);
    let mut decoder = IncrementalDecoder::new(tokenizer);
    let mut text = String::new();
    let mut feed = prompt.to_vec();
    for _ in 0..n {
        let mut batch = [SeqBatch {
            cache: &mut cache,
            tokens: &feed,
            logits: Logits::Last,
        }];
        let row = runner.forward(model, &mut batch).unwrap().remove(0);
        let best = (0..row.len()).fold(0, |b, i| if row[i] > row[b] { i } else { b }) as u32;
        if tokenizer.is_end_of_generation(best) {
            break;
        }
        text.push_str(&decoder.push(best));
        feed = vec![best];
    }
    text + &decoder.finish()
}

/// `cria run --raw --temp 0` prints, byte for byte, the plain greedy loop's text after each raw-text
/// reference prompt (the prompts of testdata/reference/*/greedy.jsonl), then a newline.
fn greedy_run_matches_plain_loop(name: &str, folder: &str) {
    let Some(path) = model_path(name) else {
        return;
    };
    let model = Model::load(&path).unwrap();
    let tokenizer = Tokenizer::from_gguf(model.gguf()).unwrap();
    let cases = std::fs::read_to_string(reference_path(&[folder, "greedy.jsonl"])).unwrap();
    let mut checked = 0;
    for line in cases.lines() {
        let case: serde_json::Value = serde_json::from_str(line).unwrap();
        if case["kind"] != "raw" {
            continue;
        }
        let text = case["text"].as_str().unwrap();
        let n = 64;
        let prompt = tokenizer.encode(text, true, false);
        let expected = plain_greedy(&model, &tokenizer, &prompt, n) + "\n";
        let (path, n) = (path.to_str().unwrap(), n.to_string());
        let args = [
            "run", "-m", path, "--raw", "--temp", "0", "-n", &n, "-t", "2", text,
        ];
        let out = cria(&args, "");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            expected,
            "{name}: {text:?}"
        );
        checked += 1;
    }
    assert!(checked >= 4, "{name}: only {checked} raw cases");
}

#[test]
fn smollm2_greedy_run_prints_the_plain_greedy_loops_text() {
    greedy_run_matches_plain_loop("smollm2-135m-instruct", "smollm2-135m-instruct-q4_1");
}

#[test]
fn gemma3_greedy_run_prints_the_plain_greedy_loops_text() {
    greedy_run_matches_plain_loop("gemma-3-270m", "gemma-3-270m-q4_k_m");
}

/// The prompt tokens each turn's timing line says were computed.
fn computed_prompt_tokens(stderr: &str) -> Vec<usize> {
    stderr
        .lines()
        .filter_map(|l| l.strip_prefix("prompt: "))
        .map(|l| l.split(' ').next().unwrap().parse().unwrap())
        .collect()
}

#[test]
fn chat_second_turn_reuses_the_first_turns_kv() {
    let Some(model) = model_path("smollm2-135m-instruct") else {
        return;
    };
    let license = std::fs::read_to_string(reference_path(&["texts", "apache-2.0.txt"])).unwrap();
    let long: Vec<&str> = license.split_whitespace().take(600).collect();
    let input = format!(
        "Summarize this text: {}\nThank you. Now say hi.\n",
        long.join(" ")
    );
    let args = [
        "chat",
        "-m",
        model.to_str().unwrap(),
        "--temp",
        "0",
        "-n",
        "16",
        "-t",
        "2",
    ];
    let out = cria(&args, &input);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let computed = computed_prompt_tokens(&stderr);
    assert_eq!(computed.len(), 2, "{stderr}");
    assert!(computed[0] > 600, "{stderr}");
    // Turn 2's prompt holds all of turn 1 and its reply; the cache gives back all of it but the part-filled
    // block (16 positions) the reply ended in: turn 2 computes that, the reply's last token and its own
    // ~20 tokens of template and text (the chunk-aligned reuse before issue 15 computed 113 here).
    assert!(computed[1] < 16 + 24, "{stderr}");
}
