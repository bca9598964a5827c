//! The prompt cache on the real default model: greedy text is byte-identical with the cache on and off, for
//! n > 1 copies of a prompt, after eviction, and a conversation sent back with one more turn reuses the KV of
//! what it already computed, in whole blocks wherever they end (not only at prefill-chunk boundaries).

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::path::PathBuf;
use std::sync::Arc;

use cria_engine::{Engine, EngineConfig, Event, ModelBackend, Request};
use cria_model::Model;
use cria_sampling::SamplingParams;
use cria_tokenizer::{ChatMessage, ChatTemplate, Tokenizer};

const NAME: &str = "smollm2-135m-instruct";
/// The reference model with sliding-window layers (window 512; five of each six layers).
const SWA_NAME: &str = "gemma-3-270m";

fn load() -> Option<(Arc<Model>, Arc<Tokenizer>)> {
    load_named(NAME)
}

fn load_named(name: &str) -> Option<(Arc<Model>, Arc<Tokenizer>)> {
    if std::env::var("CRIA_SKIP_MODEL_TESTS").is_ok_and(|v| v == "1") {
        return None;
    }
    let home = std::env::var("CRIA_HOME").map_or_else(
        |_| PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/cria"),
        PathBuf::from,
    );
    let path = home.join("models").join(format!("{name}.gguf"));
    assert!(
        path.exists(),
        "{} is missing: run `cria pull {name}`",
        path.display()
    );
    let model = Arc::new(Model::load(&path).unwrap());
    let tok = Arc::new(Tokenizer::from_gguf(model.gguf()).unwrap());
    Some((model, tok))
}

fn engine(model: &Arc<Model>, tok: &Arc<Tokenizer>, config: EngineConfig) -> Engine {
    let (model, backend_config) = (Arc::clone(model), config.clone());
    Engine::start(config, tok.clone(), move || {
        Ok(ModelBackend::for_config(model, &backend_config, 2))
    })
    .unwrap()
}

fn config(prompt_cache: bool) -> EngineConfig {
    EngineConfig {
        parallel: 4,
        ctx: 512,
        prompt_cache,
        ..EngineConfig::default()
    }
}

/// Submits `prompt` `n` times at once; each copy's greedy text and cached prompt tokens.
fn generate(engine: &Engine, prompt: &[u32], n: usize) -> Vec<(String, usize)> {
    generate_ids(engine, prompt, n)
        .into_iter()
        .map(|r| (r.text, r.cached))
        .collect()
}

/// One copy's output: its text, its token ids (without an end-of-generation token) and its cached prompt
/// tokens.
struct Reply {
    text: String,
    ids: Vec<u32>,
    cached: usize,
}

/// [`generate`], with each copy's token ids.
fn generate_ids(engine: &Engine, prompt: &[u32], n: usize) -> Vec<Reply> {
    let rxs: Vec<_> = (0..n)
        .map(|_| {
            let req = Request {
                prompt: prompt.to_vec(),
                sampling: SamplingParams::greedy(),
                max_tokens: 24,
                stop: vec![],
                logprobs: Some(0),
                ignore_eos: false,
                constraint: None,
                cache_salt: None,
            };
            engine.submit(req).unwrap()
        })
        .collect();
    rxs.into_iter()
        .map(|mut rx| {
            let (mut text, mut ids) = (String::new(), Vec::new());
            while let Some(ev) = rx.blocking_recv() {
                match ev {
                    Event::Token { text: t, logprob } => {
                        text.push_str(&t);
                        ids.extend(logprob.map(|lp| lp.id));
                    }
                    Event::Done { cached_tokens, .. } => {
                        return Reply {
                            text,
                            ids,
                            cached: cached_tokens,
                        };
                    }
                    Event::Failed(m) => panic!("{m}"),
                }
            }
            panic!("no Done event");
        })
        .collect()
}

/// Positions per KV block of [`config`] (the default).
const BLOCK: usize = 16;

fn story(tok: &Tokenizer, topic: &str) -> Vec<u32> {
    let text = format!(
        "Write one sentence about {topic}. Here are some notes first. {}",
        "The harbour was quiet, the boats were tied up and the gulls circled over the nets. "
            .repeat(8)
    );
    tok.encode(&text, true, false)
}

#[test]
fn greedy_text_is_identical_with_the_cache_on_and_off_for_n_copies() {
    let Some((model, tok)) = load() else { return };
    let prompt = story(&tok, "the sea");
    assert!(prompt.len() > 130, "the prompt spans several blocks");
    let cold = generate(&engine(&model, &tok, config(false)), &prompt, 1);
    let want = cold[0].0.clone();
    assert!(!want.is_empty());
    let warm = engine(&model, &tok, config(true));
    let first = generate(&warm, &prompt, 3);
    let again = generate(&warm, &prompt, 2);
    for (text, _) in first.iter().chain(&again) {
        assert_eq!(text, &want);
    }
    let reusable = (prompt.len() - 1) / BLOCK * BLOCK;
    assert!(
        again.iter().all(|&(_, cached)| cached == reusable),
        "{again:?}"
    );
}

#[test]
fn greedy_text_is_identical_after_eviction() {
    let Some((model, tok)) = load() else { return };
    let small = EngineConfig {
        parallel: 1,
        ctx: 256,
        ..config(true)
    };
    let engine = engine(&model, &tok, small);
    let (a, b) = (story(&tok, "the sea"), story(&tok, "a mountain"));
    let want = generate(&engine, &a, 1).remove(0).0;
    generate(&engine, &b, 1);
    let (text, cached) = generate(&engine, &a, 1).remove(0);
    assert_eq!(text, want);
    let reusable = (a.len() - 1) / BLOCK * BLOCK;
    assert!(
        cached < reusable,
        "b evicted some of a's blocks ({cached} cached)"
    );
}

/// Regression (chat turn 2 recomputed up to a prefill chunk of what it had): a chat sent back with the reply
/// and one more user turn, rendered by the template as `cria chat` does, computes only what follows the
/// common prefix of the first turn's tokens (prompt and reply) and the second prompt, plus at most one
/// part-filled block, and generates what a cold run does.
#[test]
fn a_conversation_with_one_more_turn_computes_only_its_new_tokens() {
    let Some((model, tok)) = load() else { return };
    let template = ChatTemplate::for_model(&tok, &model.spec().arch, None).unwrap();
    let warm = engine(&model, &tok, config(true));
    let mut messages = vec![
        ChatMessage::new(
            "system",
            "You are a helpful assistant who answers in one sentence. ".repeat(6),
        ),
        ChatMessage::new("user", "Name three colors of the rainbow."),
    ];
    let encode = |m: &[ChatMessage]| tok.encode(&template.render(m, true).unwrap(), true, true);
    let first = encode(&messages);
    let reply = generate_ids(&warm, &first, 1).remove(0);
    messages.push(ChatMessage::new("assistant", &reply.text));
    messages.push(ChatMessage::new("user", "And two more?"));
    let second = encode(&messages);
    // What the first turn left in the cache: its prompt and reply, but the reply's last token (never fed).
    let fed = [first.as_slice(), &reply.ids[..reply.ids.len() - 1]].concat();
    let common = fed.iter().zip(&second).take_while(|(a, b)| a == b).count();
    assert!(common > first.len(), "the reply re-encodes as generated");
    let again = generate_ids(&warm, &second, 1).remove(0);
    let computed = second.len() - again.cached;
    assert!(
        computed < second.len() - common + BLOCK,
        "{computed} of {} tokens computed; {} follow the common prefix",
        second.len(),
        second.len() - common
    );
    let cold = engine(&model, &tok, config(false));
    assert_eq!(again.text, generate(&cold, &second, 1).remove(0).0);
}

/// Gemma 3's sliding-window layers keep only their window (a pool of their own, blocks behind the window given
/// back): greedy text past the window is the same with the cache on and off, for the same prompt again and for
/// the conversation sent back with one more turn, which starts from cached blocks whose window is still there.
#[test]
fn sliding_window_layers_keep_their_window_and_greedy_text_is_identical_with_the_cache() {
    let Some((model, tok)) = load_named(SWA_NAME) else {
        return;
    };
    let window = model.sliding_window().unwrap();
    let long = EngineConfig {
        parallel: 2,
        ctx: 2048,
        ..config(true)
    };
    let template = ChatTemplate::for_model(&tok, &model.spec().arch, None).unwrap();
    let encode = |m: &[ChatMessage]| tok.encode(&template.render(m, true).unwrap(), true, true);
    let notes =
        "The harbour was quiet, the boats were tied up and the gulls circled over the nets. ";
    let mut messages = vec![ChatMessage::new(
        "user",
        format!("{}Write one sentence about the harbour.", notes.repeat(40)),
    )];
    let first = encode(&messages);
    assert!(first.len() > window + 100, "{} tokens", first.len());
    let cold = engine(
        &model,
        &tok,
        EngineConfig {
            prompt_cache: false,
            ..long.clone()
        },
    );
    let warm = engine(&model, &tok, long.clone());
    let want = generate(&cold, &first, 1).remove(0).0;
    assert_eq!(generate(&warm, &first, 1).remove(0).0, want);
    let (again, cached) = generate(&warm, &first, 1).remove(0);
    assert_eq!(again, want);
    assert_eq!(cached, (first.len() - 1) / BLOCK * BLOCK);
    messages.push(ChatMessage::new("assistant", want.trim()));
    messages.push(ChatMessage::new("user", "And one about the gulls?"));
    let second = encode(&messages);
    let (text, cached) = generate(&warm, &second, 1).remove(0);
    assert_eq!(text, generate(&cold, &second, 1).remove(0).0);
    assert!(
        cached >= (first.len() - 8) / BLOCK * BLOCK,
        "{cached} cached"
    );
    // The sliding-window layers' pool holds two windows and a chunk a slot, not the slots' whole contexts:
    // here 15 of the 18 layers keep 2 x 608 positions a slot instead of 2,048 (2/3 of the bytes in all; the
    // longer the context, the larger the saving).
    let full = model.new_pool(long.block_size, long.kv_blocks()).bytes();
    let kv = warm.stats().kv_bytes;
    assert!(
        kv < full * 3 / 4,
        "{kv} bytes of KV against {full} without a window pool"
    );
}
