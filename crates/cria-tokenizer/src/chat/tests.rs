use super::*;
use crate::TokenizerSpec;

fn tok(bos_added: bool) -> Tokenizer {
    let tokens = ["<s>", "</s>", "a"].iter().map(|s| s.to_string()).collect();
    Tokenizer::from_spec(&TokenizerSpec {
        model: "gpt2".into(),
        tokens,
        token_types: Some(vec![3, 3, 1]),
        bos: Some(0),
        eos: Some(1),
        add_bos: Some(bos_added),
        ..TokenizerSpec::default()
    })
    .unwrap()
}

fn msgs(pairs: &[(&str, &str)]) -> Vec<ChatMessage> {
    pairs
        .iter()
        .map(|(r, c)| ChatMessage::new(*r, *c))
        .collect()
}

#[test]
fn builtin_names_parse() {
    for b in BuiltinTemplate::ALL {
        assert_eq!(b.name().parse::<BuiltinTemplate>().unwrap(), b);
    }
    assert!("nope".parse::<BuiltinTemplate>().is_err());
}

#[test]
fn chatml_renders_turns_and_generation_prompt() {
    let t = ChatTemplate::builtin(&tok(false), BuiltinTemplate::ChatMl).unwrap();
    let out = t.render(&msgs(&[("user", "Hi")]), true).unwrap();
    assert_eq!(
        out,
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    );
}

#[test]
fn llama2_folds_system_into_first_turn() {
    let t = ChatTemplate::builtin(&tok(true), BuiltinTemplate::Llama2).unwrap();
    let m = msgs(&[
        ("system", "Be brief."),
        ("user", " Hi "),
        ("assistant", "Hello"),
        ("user", "Bye"),
    ]);
    assert_eq!(
        t.render_raw(&m, true).unwrap(),
        "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\n Hi [/INST] Hello </s><s>[INST] Bye [/INST]"
    );
    // the tokenizer adds BOS itself, so the rendered prompt drops the leading one
    assert!(t.render(&m, true).unwrap().starts_with("[INST]"));
}

#[test]
fn alpaca_and_vicuna_render() {
    let m = msgs(&[("user", "Sum 2+2")]);
    let a = ChatTemplate::builtin(&tok(false), BuiltinTemplate::Alpaca)
        .unwrap()
        .render(&m, true)
        .unwrap();
    assert!(
        a.ends_with("### Instruction:\nSum 2+2\n\n### Response:\n"),
        "{a}"
    );
    let v = ChatTemplate::builtin(&tok(false), BuiltinTemplate::Vicuna)
        .unwrap()
        .render(&m, true)
        .unwrap();
    assert!(v.ends_with("USER: Sum 2+2 ASSISTANT:"), "{v}");
}

#[test]
fn gemma_folds_system_and_renames_assistant() {
    let t = ChatTemplate::builtin(&tok(false), BuiltinTemplate::Gemma).unwrap();
    let m = msgs(&[("system", "S"), ("user", "U"), ("assistant", "A")]);
    assert_eq!(
        t.render(&m, false).unwrap(),
        "<s><start_of_turn>user\nS\n\nU<end_of_turn>\n<start_of_turn>model\nA<end_of_turn>\n"
    );
}

#[test]
fn raise_exception_becomes_an_error() {
    let t = ChatTemplate::builtin(&tok(false), BuiltinTemplate::Gemma).unwrap();
    let err = t.render(&msgs(&[("assistant", "A")]), false).unwrap_err();
    assert!(err.to_string().contains("alternate"), "{err}");
}

#[test]
fn python_string_methods_work() {
    let src = "{{ messages[0]['content'].strip().upper() }}{% if messages[0]['content'].startswith(' x') %}!{% endif %}";
    let t = ChatTemplate::from_source(&tok(false), src).unwrap();
    assert_eq!(t.render(&msgs(&[("user", " xy ")]), false).unwrap(), "XY!");
}

#[test]
fn endless_loop_runs_out_of_fuel() {
    let src = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}";
    let t = ChatTemplate::from_source(&tok(false), src).unwrap();
    let err = t.render(&[], false).unwrap_err();
    assert!(matches!(err, TokenizerError::Template(_)), "{err}");
}

#[test]
fn huge_output_is_cut_off() {
    let src = "{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}";
    let t = ChatTemplate::from_source(&tok(false), src).unwrap();
    let err = t.render(&[], false).unwrap_err();
    assert!(
        matches!(err, TokenizerError::TemplateOutputTooLarge { .. }),
        "{err}"
    );
}

#[test]
fn templates_cannot_reach_files_or_python_internals() {
    let include = ChatTemplate::from_source(&tok(false), "{% include '/etc/passwd' %}").unwrap();
    assert!(include.render(&[], false).is_err());
    // the CVE-2024-34359 payload: attribute walks to Python's os module find nothing here
    let src = "{{ ''.__class__.__mro__[1].__subclasses__() }}";
    let t = ChatTemplate::from_source(&tok(false), src);
    let rendered = t.and_then(|t| t.render(&[], false));
    assert!(rendered.is_err() || !rendered.unwrap().contains("class"));
}

#[test]
fn render_input_passes_tools_structured_messages_and_extra_variables() {
    let source = "{% for m in messages %}{{ m.role }}:{{ m.content }}\
        {% for c in m.tool_calls or [] %}[{{ c.function.name }} {{ c.function.arguments | tojson }}]{% endfor %}\
        {% if m.tool_call_id %}({{ m.tool_call_id }}){% endif %};{% endfor %}\
        {% for t in tools or [] %}<{{ t.function.name }}>{% endfor %}{{ enable_thinking }}|{{ add_generation_prompt }}";
    let t = ChatTemplate::from_source(&tok(false), source).unwrap();
    let messages = [
        serde_json::json!({"role": "assistant", "content": "", "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": {"x": 1}}}]}),
        serde_json::json!({"role": "tool", "content": "42", "tool_call_id": "call_1"}),
    ];
    let tools = serde_json::json!([{"type": "function", "function": {"name": "f"}}]);
    let mut extra = serde_json::Map::new();
    extra.insert("enable_thinking".into(), false.into());
    // A fixed variable is not overridden by an extra one of the same name.
    extra.insert("add_generation_prompt".into(), "overridden".into());
    let out = t
        .render_input(&TemplateInput {
            messages: &messages,
            tools: Some(&tools),
            extra: &extra,
            add_generation_prompt: true,
        })
        .unwrap();
    assert_eq!(
        out,
        "assistant:[f {\"x\": 1}];tool:42(call_1);<f>False|True"
    );
}

#[test]
fn tojson_writes_what_python_json_dumps_writes() {
    let render = |src: &str| {
        let t = ChatTemplate::from_source(&tok(false), src).unwrap();
        let messages = [
            serde_json::json!({"role": "user", "content": "a < b & 'c' é",
            "z": 1, "a": [1, 2.5, true, null], "o": {}}),
        ];
        let extra = serde_json::Map::new();
        t.render_input(&TemplateInput {
            messages: &messages,
            tools: None,
            extra: &extra,
            add_generation_prompt: false,
        })
        .unwrap()
    };
    // json.dumps(m, ensure_ascii=False): key order kept, ", " and ": ", no HTML escapes.
    assert_eq!(
        render("{{ messages[0] | tojson }}"),
        r#"{"role": "user", "content": "a < b & 'c' é", "z": 1, "a": [1, 2.5, true, null], "o": {}}"#
    );
    assert_eq!(
        render(
            "{{ messages[0].a | tojson(indent=2) }}|{{ messages[0] | tojson(ensure_ascii=False, sort_keys=true, separators=[',', ':']) }}"
        ),
        "[\n  1,\n  2.5,\n  true,\n  null\n]|{\"a\":[1,2.5,true,null],\"content\":\"a < b & 'c' é\",\"o\":{},\"role\":\"user\",\"z\":1}"
    );
}
