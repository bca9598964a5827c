//! Grammar mask time per token on a real vocabulary: `mask_bench VOCAB.gguf [REPEATS]`.
//!
//! For each grammar (JSON object, a JSON schema, tool calls in Hermes syntax, Lark grammars with free text) a
//! valid output is tokenized with the file's tokenizer and replayed token by token; at every step the full
//! mask over the vocabulary is computed (the slow path: the sampler computes it only when the token it drew is
//! refused) and timed, as is the check of the one drawn token (the fast path). Each replay compiles the
//! grammar as a request does (the first compile builds it, later ones copy the kept one). Prints one JSON line
//! per grammar with p50, p99 and max in microseconds, over all steps, the first replay, the later ones, and
//! over the steps of each step's median in the later replays (robust to a machine that takes the core away
//! now and then), and the compile times in milliseconds. With llama.cpp's `models/ggml-vocab-llama-bpe.gguf` the vocabulary
//! is Llama 3's 128,256 tokens. `MASK_TRACE=1` prints each step's token and mask time on stderr.

use std::sync::Arc;
use std::time::Instant;

use cria_gguf::GgufFile;
use cria_sampling::TokenConstraint;
use cria_sampling::grammar::{Grammar, GrammarVocab, VocabToken};
use cria_server::tools::{Family, FunctionDef, ToolChoice, tool_grammar};
use cria_tokenizer::Tokenizer;
use serde_json::json;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let Some(path) = args.get(1) else {
        return Err("usage: mask_bench VOCAB.gguf [REPEATS]".into());
    };
    let repeats: usize = args.get(2).map(|r| r.parse()).transpose()?.unwrap_or(20);
    let tok = Arc::new(Tokenizer::from_gguf(&GgufFile::open(path)?)?);
    let t0 = Instant::now();
    let vocab = grammar_vocab(&tok)?;
    println!(
        "{{\"vocab\": {}, \"trie_build_ms\": {:.1}}}",
        tok.vocab_size(),
        t0.elapsed().as_secs_f64() * 1e3
    );
    for (name, grammar, text) in cases() {
        let ids = tok.encode(&text, false, false);
        let (mut masks, mut checks, mut compiles) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..repeats.max(2) {
            let t = Instant::now();
            let mut c = vocab.compile(&grammar)?;
            compiles.push(t.elapsed().as_secs_f64() * 1e3);
            for &id in &ids {
                let t = Instant::now();
                let mask = c.mask()?;
                masks.push(t.elapsed().as_secs_f64() * 1e6);
                if std::env::var_os("MASK_TRACE").is_some() {
                    eprintln!(
                        "{name} {:?} {:.1}",
                        tok.decode(&[id]),
                        masks[masks.len() - 1]
                    );
                }
                let t = Instant::now();
                let allowed = c.allows(id)?;
                checks.push(t.elapsed().as_secs_f64() * 1e6);
                // Where the grammar forces text, llguidance's mask holds only the forced text's canonical
                // token; the check takes any tokenization of it.
                if !allowed || (mask.allowed().nth(1).is_some() && !mask.allows(id)) {
                    return Err(format!("{name}: token {id} refused in {text:?}").into());
                }
                c.accept(id)?;
            }
        }
        let steps = masks.len();
        let all = percentiles(&mut masks.clone());
        let mut step_medians = step_medians(&masks[ids.len()..], ids.len());
        let (first, warm) = masks.split_at_mut(ids.len());
        let compile_first = compiles[0];
        println!(
            "{{\"grammar\": \"{name}\", \"tokens\": {}, \"steps\": {}, \"mask_us\": {}, \"mask_first_replay_us\": {}, \"mask_warm_us\": {}, \"mask_step_median_us\": {}, \"check_us\": {}, \"compile_first_ms\": {:.2}, \"compile_again_ms\": {}}}",
            ids.len(),
            steps,
            all,
            percentiles(first),
            percentiles(warm),
            percentiles(&mut step_medians),
            percentiles(&mut checks),
            compile_first,
            percentiles(&mut compiles[1..])
        );
    }
    Ok(())
}

fn grammar_vocab(tok: &Arc<Tokenizer>) -> Result<GrammarVocab, Box<dyn std::error::Error>> {
    let tokens: Vec<VocabToken> = (0..tok.vocab_size() as u32)
        .map(|id| VocabToken {
            bytes: tok.token_bytes(id).to_vec(),
            special: tok.is_control(id),
        })
        .collect();
    let for_text = Arc::clone(tok);
    let tokenize =
        Arc::new(move |b: &[u8]| for_text.encode(&String::from_utf8_lossy(b), false, false));
    Ok(GrammarVocab::new(
        &tokens,
        tok.end_of_generation_ids(),
        tokenize,
    )?)
}

fn cases() -> Vec<(&'static str, Grammar, String)> {
    let city = json!({"type": "object", "properties": {
        "name": {"type": "string"}, "country": {"type": "string"},
        "population": {"type": "integer"}, "coastal": {"type": "boolean"}},
        "required": ["name", "country", "population", "coastal"], "additionalProperties": false});
    let weather: FunctionDef = serde_json::from_value(json!({"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, "required": ["city", "unit"]}}))
    .unwrap_or_else(|e| panic!("{e}"));
    let tool = |choice: ToolChoice| {
        tool_grammar(
            std::slice::from_ref(&weather),
            &choice,
            true,
            Family::Hermes,
            &|_| None,
        )
    };
    let summary = json!({"type": "object", "properties": {
        "title": {"type": "string"}, "summary": {"type": "string"}},
        "required": ["title", "summary"], "additionalProperties": false});
    let prose = "The old lighthouse stood at the end of the pier, its paint peeling in long grey strips. Every evening the keeper climbed the spiral stairs, counted the steps out loud, and lit the lamp as the fishing boats came home across the bay.";
    let call = "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"unit\": \"celsius\"}}\n</tool_call>";
    vec![
        (
            "json_object",
            Grammar::JsonObject,
            r#"{"title": "Notes on cats", "tags": ["pets", "animals"], "count": 12, "ok": true}"#.into(),
        ),
        (
            "json_schema",
            Grammar::JsonSchema(city),
            r#"{"name": "Lisbon", "country": "Portugal", "population": 545000, "coastal": true}"#.into(),
        ),
        (
            "json_long_string",
            Grammar::JsonSchema(summary),
            format!(r#"{{"title": "The lighthouse", "summary": "{prose}"}}"#),
        ),
        ("tool_call_required", tool(ToolChoice::Required), call.into()),
        (
            "tool_call_auto",
            tool(ToolChoice::Auto),
            format!("Let me look that up for you.\n{call}"),
        ),
        (
            "lark_free_text",
            Grammar::Lark("start: \"Answer: \" LINE \"\\nConfidence: \" /[0-9]{1,3}/ \"%\"\nLINE: /[^\\n]+/".into()),
            format!("Answer: {prose}\nConfidence: 90%"),
        ),
        (
            "lark",
            Grammar::Lark(
                "start: sentence (\" \" sentence)*\nsentence: WORD (\" \" WORD)* \".\"\nWORD: /[A-Za-z]+/".into(),
            ),
            "The cat sat on the mat. It was warm there.".into(),
        ),
    ]
}

/// For each step of the replays in `warm` (`steps` a replay), its median time over the replays: a step the
/// machine was taken away from in one replay does not count as slow.
fn step_medians(warm: &[f64], steps: usize) -> Vec<f64> {
    (0..steps)
        .map(|i| {
            let mut at: Vec<f64> = warm.iter().skip(i).step_by(steps).copied().collect();
            at.sort_by(f64::total_cmp);
            at[at.len() / 2]
        })
        .collect()
}

/// `{"p50": .., "p99": .., "max": ..}` of `xs`.
fn percentiles(xs: &mut [f64]) -> String {
    xs.sort_by(f64::total_cmp);
    let at = |q: f64| xs[((xs.len() - 1) as f64 * q).round() as usize];
    format!(
        "{{\"p50\": {:.1}, \"p99\": {:.1}, \"max\": {:.1}}}",
        at(0.5),
        at(0.99),
        at(1.0)
    )
}
