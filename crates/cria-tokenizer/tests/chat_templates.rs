#![allow(clippy::unwrap_used)] // tests may unwrap
//! Chat templates of the two reference models against the prompts of testdata/reference/*/logits.jsonl
//! (`"kind": "chat"`), which were formatted by hand following each model's template.

mod common;

use common::{GEMMA, LogitsCase, Model, SMOLLM, read_jsonl, tokenizer};
use cria_tokenizer::{BuiltinTemplate, ChatMessage, ChatTemplate};

/// The conversations behind the four chat prompts, in file order.
fn conversations() -> Vec<Vec<ChatMessage>> {
    let m = ChatMessage::new;
    vec![
        vec![m("user", "What is the capital of France?")],
        vec![m("user", "Write a haiku about the ocean.")],
        vec![
            m("system", "You answer in one sentence."),
            m("user", "Why is the sky blue?"),
        ],
        vec![
            m("user", "List three prime numbers."),
            m("assistant", "2, 3 and 5."),
            m("user", "Three more, please."),
        ],
    ]
}

fn chat_cases(model: &Model) -> Vec<LogitsCase> {
    let cases: Vec<LogitsCase> = read_jsonl(model, "logits.jsonl");
    let chats: Vec<LogitsCase> = cases.into_iter().filter(|c| c.kind == "chat").collect();
    assert_eq!(
        chats.len(),
        conversations().len(),
        "{}: chat prompts in logits.jsonl",
        model.name
    );
    chats
}

#[test]
fn smollm2_template_from_gguf_renders_the_reference_prompts() {
    let Some(tok) = tokenizer(&SMOLLM) else {
        return;
    };
    let tmpl = ChatTemplate::for_model(tok, SMOLLM.arch, None).unwrap();
    assert_eq!(
        tmpl.builtin_kind(),
        None,
        "SmolLM2's GGUF carries its own template"
    );
    for (case, messages) in chat_cases(&SMOLLM).iter().zip(conversations()) {
        let prompt = tmpl.render(&messages, true).unwrap();
        assert_eq!(prompt, case.text);
        assert_eq!(tok.encode(&prompt, true, true), case.tokens, "{prompt:?}");
    }
}

#[test]
fn gemma3_builtin_template_renders_the_reference_prompts() {
    let Some(tok) = tokenizer(&GEMMA) else { return };
    assert!(
        tok.chat_template().is_none(),
        "the gemma GGUF has no template"
    );
    let tmpl = ChatTemplate::for_model(tok, GEMMA.arch, None).unwrap();
    assert_eq!(tmpl.builtin_kind(), Some(BuiltinTemplate::Gemma));
    for (i, (case, messages)) in chat_cases(&GEMMA).iter().zip(conversations()).enumerate() {
        let raw = tmpl.render_raw(&messages, true).unwrap();
        let ids = tok.encode(&tmpl.render(&messages, true).unwrap(), true, true);
        if i == 2 {
            // The reference wrote the system message as its own `system` turn; Gemma's official
            // template folds it into the first user turn, so this one prompt differs by design.
            let folded = "<bos><start_of_turn>user\nYou answer in one sentence.\n\nWhy is the sky blue?<end_of_turn>\n<start_of_turn>model\n";
            assert_eq!(raw, folded);
            assert_ne!(ids, case.tokens);
            continue;
        }
        assert_eq!(raw, case.text);
        assert_eq!(ids, case.tokens, "{raw:?}");
    }
}

#[test]
fn bos_is_not_doubled_when_the_template_writes_it() {
    let Some(tok) = tokenizer(&GEMMA) else { return };
    let tmpl = ChatTemplate::for_model(tok, GEMMA.arch, None).unwrap();
    let messages = &conversations()[0];
    let raw = tmpl.render_raw(messages, true).unwrap();
    assert!(raw.starts_with("<bos>"));
    // encoding the raw output would give two BOS tokens, which is why render() drops the written one
    assert_eq!(tok.encode(&raw, true, true)[..2], [2, 2]);
    let ids = tok.encode(&tmpl.render(messages, true).unwrap(), true, true);
    assert_eq!(ids[0], 2);
    assert_ne!(ids[1], 2);
}

#[test]
fn a_builtin_can_override_the_models_template() {
    let Some(tok) = tokenizer(&SMOLLM) else {
        return;
    };
    let tmpl = ChatTemplate::for_model(tok, SMOLLM.arch, Some(BuiltinTemplate::Vicuna)).unwrap();
    let prompt = tmpl.render(&conversations()[0], true).unwrap();
    assert!(
        prompt.ends_with("USER: What is the capital of France? ASSISTANT:"),
        "{prompt}"
    );
}

/// gpt-oss's "harmony" template (llama.cpp's `models/templates/openai-gpt-oss-120b.jinja`, the one its GGUF
/// files carry) against jinja2's rendering of the same conversations
/// (`scripts/chat-templates/render_reference.py`); only the date `strftime_now` prints differs.
#[test]
fn gpt_oss_harmony_template_renders_as_jinja2_does() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/chat-templates");
    let source = std::fs::read_to_string(dir.join("gpt-oss.jinja")).unwrap();
    let expected = std::fs::read_to_string(dir.join("gpt-oss.expected.json")).unwrap();
    let cases: Vec<serde_json::Value> = serde_json::from_str(&expected).unwrap();
    let tok = cria_tokenizer::Tokenizer::from_spec(&cria_tokenizer::TokenizerSpec {
        model: "gpt2".into(),
        tokens: vec!["<|startoftext|>".into(), "<|return|>".into(), "a".into()],
        token_types: Some(vec![3, 3, 1]),
        bos: Some(0),
        eos: Some(1),
        ..Default::default()
    })
    .unwrap();
    let tmpl = ChatTemplate::from_source(&tok, source).unwrap();
    const DATE: &str = "Current date: ";
    for case in &cases {
        let messages: Vec<ChatMessage> = serde_json::from_value(case["messages"].clone()).unwrap();
        let want = case["prompt"].as_str().unwrap();
        let mut got = tmpl.render(&messages, true).unwrap();
        let at = got.find(DATE).unwrap() + DATE.len();
        let date = &got[at..at + 10];
        assert!(
            date.bytes().enumerate().all(|(i, b)| match i {
                4 | 7 => b == b'-',
                _ => b.is_ascii_digit(),
            }),
            "{date:?}"
        );
        let want_at = want.find(DATE).unwrap() + DATE.len();
        got.replace_range(at..at + 10, &want[want_at..want_at + 10]);
        assert_eq!(got, want);
    }
}
