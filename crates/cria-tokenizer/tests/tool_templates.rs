#![allow(clippy::unwrap_used)] // tests may unwrap
//! Templates with tools, tool calls, tool results and `chat_template_kwargs` (testdata/templates/, from
//! llama.cpp's copies of Qwen2.5's, Qwen3's, Llama 3.1's and Mistral Nemo's) rendered by Cria equal Python
//! jinja2's render as Hugging Face's `apply_chat_template` does it (`scripts/templates/render_reference.py`
//! wrote `testdata/templates/rendered/`).

use cria_tokenizer::{ChatTemplate, TemplateInput, Tokenizer, TokenizerSpec};
use serde_json::Value;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/templates/");

/// A tokenizer whose BOS text is empty and EOS text `<|im_end|>`, as the reference render assumed.
fn tokenizer() -> Tokenizer {
    let tokens = ["<|im_end|>", "a"].iter().map(|s| s.to_string()).collect();
    Tokenizer::from_spec(&TokenizerSpec {
        model: "gpt2".into(),
        tokens,
        token_types: Some(vec![3, 1]),
        eos: Some(0),
        add_bos: Some(false),
        ..TokenizerSpec::default()
    })
    .unwrap()
}

#[test]
fn tool_templates_render_as_hugging_face_does() {
    let cases: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(format!("{DIR}cases.json")).unwrap())
            .unwrap();
    assert_eq!(cases.len(), 4);
    let tok = tokenizer();
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let source =
            std::fs::read_to_string(format!("{DIR}{}", case["template"].as_str().unwrap()))
                .unwrap();
        let template = ChatTemplate::from_source(&tok, source).unwrap();
        let messages = case["messages"].as_array().unwrap();
        let extra = case["extra"].as_object().cloned().unwrap_or_default();
        let rendered = template
            .render_input(&TemplateInput {
                messages,
                tools: case.get("tools"),
                extra: &extra,
                add_generation_prompt: true,
            })
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let expected = std::fs::read_to_string(format!("{DIR}rendered/{name}.txt")).unwrap();
        assert_eq!(rendered, expected, "{name}");
    }
}
