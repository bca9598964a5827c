use super::*;

fn syntax(family: Family) -> OutputSyntax {
    OutputSyntax {
        calls: Some(family),
        reasoning: false,
        starts_in_think: false,
    }
}

/// The pieces of `text` fed one character at a time, merged as a client assembles a stream.
fn streamed(syntax: OutputSyntax, text: &str) -> ParsedOutput {
    let mut parser = OutputParser::new(syntax);
    let mut pieces = Vec::new();
    for c in text.chars() {
        pieces.extend(parser.push(&c.to_string()));
    }
    pieces.extend(parser.finish());
    let mut out = ParsedOutput::default();
    for piece in pieces {
        match piece {
            Piece::Content(t) => out.content.push_str(&t),
            Piece::Reasoning(t) => out.reasoning.push_str(&t),
            Piece::CallStart(name) => out.calls.push(FunctionCall {
                name,
                arguments: String::new(),
            }),
            Piece::Arguments(t) => out.calls.last_mut().unwrap().arguments.push_str(&t),
        }
    }
    out
}

/// Parses whole and a character at a time; both must agree.
fn parse(syntax: OutputSyntax, text: &str) -> ParsedOutput {
    let whole = parse_output(syntax, text);
    assert_eq!(
        whole,
        streamed(syntax, text),
        "streamed differs for {text:?}"
    );
    whole
}

fn call(name: &str, arguments: &str) -> FunctionCall {
    FunctionCall {
        name: name.into(),
        arguments: arguments.into(),
    }
}

#[test]
fn hermes_calls_between_tags() {
    let text = "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"get_time\", \"arguments\": {\"tz\": \"CET\", \"n\": [1, {\"a\": \"}\"}]}}\n</tool_call>";
    let out = parse(syntax(Family::Hermes), text);
    assert_eq!(out.content, "");
    assert_eq!(
        out.calls,
        vec![
            call("get_weather", r#"{"city": "Paris"}"#),
            call("get_time", r#"{"tz": "CET", "n": [1, {"a": "}"}]}"#)
        ]
    );
}

#[test]
fn hermes_text_before_a_call_is_content() {
    let text = "Let me look <that> up.\n<tool_call>\n{\"arguments\": {\"q\": 1}, \"name\": \"search\"}\n</tool_call>";
    let out = parse(syntax(Family::Hermes), text);
    assert_eq!(out.content, "Let me look <that> up.\n");
    assert_eq!(out.calls, vec![call("search", r#"{"q": 1}"#)]);
}

#[test]
fn hermes_plain_answer_is_untouched() {
    let text = "  The answer is 42 <tool";
    let out = parse(syntax(Family::Hermes), text);
    assert_eq!(out.content, text);
    assert!(out.calls.is_empty());
}

#[test]
fn hermes_string_arguments_are_decoded() {
    let text = "<tool_call>{\"name\": \"f\", \"arguments\": \"{\\\"x\\\": 1}\"}</tool_call>";
    let out = parse(syntax(Family::Hermes), text);
    assert_eq!(out.calls, vec![call("f", r#"{"x": 1}"#)]);
}

#[test]
fn llama3_bare_json_and_python_tag() {
    let out = parse(
        syntax(Family::Llama3),
        "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Oslo\"}}",
    );
    assert_eq!(out.calls, vec![call("get_weather", r#"{"city": "Oslo"}"#)]);
    let out = parse(
        syntax(Family::Llama3),
        "<|python_tag|>{\"type\": \"function\", \"name\": \"a\", \"parameters\": {}}; {\"name\": \"b\", \"parameters\": {\"k\": true}}",
    );
    assert_eq!(
        out.calls,
        vec![call("a", "{}"), call("b", r#"{"k": true}"#)]
    );
    assert_eq!(out.content, "");
}

#[test]
fn llama3_json_answer_that_is_not_a_call_stays_content() {
    let text = "{\"city\": \"Oslo\", \"temp\": 3}";
    let out = parse(syntax(Family::Llama3), text);
    assert_eq!(out.content, text);
    assert!(out.calls.is_empty());
}

#[test]
fn mistral_call_list() {
    let text = "[TOOL_CALLS] [{\"name\": \"a\", \"arguments\": {\"x\": 1}}, {\"name\": \"b\", \"arguments\": {}}]";
    let out = parse(syntax(Family::Mistral), text);
    assert_eq!(out.calls, vec![call("a", r#"{"x": 1}"#), call("b", "{}")]);
    assert_eq!(out.content, "");
}

#[test]
fn generic_uses_hermes_tags() {
    let text = "<tool_call>\n{\"name\": \"f\", \"arguments\": {}}\n</tool_call>";
    assert_eq!(
        parse(syntax(Family::Generic), text).calls,
        vec![call("f", "{}")]
    );
}

#[test]
fn unfinished_call_without_a_name_is_content() {
    let text = "<tool_call>\n{\"argu";
    let out = parse(syntax(Family::Hermes), text);
    assert_eq!(out.content, "\n{\"argu");
    assert!(out.calls.is_empty());
}

#[test]
fn think_block_becomes_reasoning() {
    let s = OutputSyntax {
        calls: None,
        reasoning: true,
        starts_in_think: false,
    };
    let out = parse(s, "<think>\nWhy? Because.\n</think>\n\nHello <b>there</b>");
    assert_eq!(out.reasoning, "\nWhy? Because.\n");
    assert_eq!(out.content, "Hello <b>there</b>");
    // No think block: all content.
    let out = parse(s, "Hi <th");
    assert_eq!(
        (out.reasoning.as_str(), out.content.as_str()),
        ("", "Hi <th")
    );
}

#[test]
fn think_opened_by_the_prompt() {
    let s = OutputSyntax {
        calls: Some(Family::Hermes),
        reasoning: true,
        starts_in_think: true,
    };
    let out = parse(
        s,
        "plan</think>\n<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": 1}}\n</tool_call>",
    );
    assert_eq!(out.reasoning, "plan");
    assert_eq!(out.content, "");
    assert_eq!(out.calls, vec![call("f", r#"{"a": 1}"#)]);
    // Cut before `</think>`: everything is reasoning.
    assert_eq!(
        parse(s, "still thinking</thi").reasoning,
        "still thinking</thi"
    );
}

#[test]
fn family_is_recognised_from_templates() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/templates/");
    let read = |name: &str| std::fs::read_to_string(format!("{dir}{name}")).unwrap();
    assert_eq!(
        Family::detect(&read("qwen2.5-instruct.jinja")),
        Family::Hermes
    );
    assert_eq!(Family::detect(&read("qwen3.jinja")), Family::Hermes);
    assert_eq!(
        Family::detect(&read("llama-3.1-instruct.jinja")),
        Family::Llama3
    );
    assert_eq!(
        Family::detect(&read("mistral-nemo-instruct.jinja")),
        Family::Mistral
    );
    assert_eq!(
        Family::detect(&read("llama-3.2-instruct.jinja")),
        Family::Llama3
    );
    for v11 in [
        "mistral-small-3.2-instruct.jinja",
        "devstral-small-2507.jinja",
    ] {
        assert_eq!(Family::detect(&read(v11)), Family::MistralArgs, "{v11}");
    }
    assert_eq!(Family::detect("{{ messages[0].content }}"), Family::Generic);
    assert!(template_thinks(&read("qwen3.jinja")));
    assert!(!template_thinks(&read("qwen2.5-instruct.jinja")));
}

fn weather() -> Tool {
    serde_json::from_value(serde_json::json!({
        "type": "function",
        "function": {"name": "get_weather", "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}},
            "required": ["city", "unit"], "additionalProperties": false}}
    }))
    .unwrap()
}

#[test]
fn tool_choice_checks() {
    let tools = [weather()];
    let named: ToolChoiceField = serde_json::from_value(
        serde_json::json!({"type": "function", "function": {"name": "get_weather"}}),
    )
    .unwrap();
    let req = check(Some(&tools), Some(&named), Some(false))
        .unwrap()
        .unwrap();
    assert_eq!(req.choice, ToolChoice::Named("get_weather".into()));
    assert!(!req.parallel);
    let none = ToolChoiceField::Mode("none".into());
    assert_eq!(check(Some(&tools), Some(&none), None).unwrap(), None);
    let required = ToolChoiceField::Mode("required".into());
    assert!(check(Some(&[]), Some(&required), None).is_err());
    assert!(
        check(
            Some(&tools),
            Some(&ToolChoiceField::Mode("always".into())),
            None
        )
        .is_err()
    );
    let other: ToolChoiceField = serde_json::from_value(
        serde_json::json!({"type": "function", "function": {"name": "nope"}}),
    )
    .unwrap();
    assert!(check(Some(&tools), Some(&other), None).is_err());
    assert!(check(Some(&[weather(), weather()]), None, None).is_err());
}

#[test]
fn mistral_v11_calls_one_after_another() {
    let text = "[TOOL_CALLS]get_weather[ARGS]{\"city\": \"Paris\", \"n\": [1, {\"a\": \"}\"}]}[TOOL_CALLS]get_time[CALL_ID]a1B2c3D4e[ARGS]{}";
    let out = parse(syntax(Family::MistralArgs), text);
    assert_eq!(
        out.calls,
        vec![
            call("get_weather", r#"{"city": "Paris", "n": [1, {"a": "}"}]}"#),
            call("get_time", "{}")
        ]
    );
    assert_eq!(out.content, "");
}

#[test]
fn mistral_v11_text_before_a_call_and_text_that_is_not_one() {
    let out = parse(
        syntax(Family::MistralArgs),
        "Checking. [TOOL_CALLS]search[ARGS] {\"q\": \"x\"}",
    );
    assert_eq!(out.content, "Checking. ");
    assert_eq!(out.calls, vec![call("search", r#"{"q": "x"}"#)]);
    for text in [
        "Use [TOOL_CALLS] to call a tool.",
        "[TOOL_CALLS]unfinished",
        "[TOOL_CALLS][ARGS]{}",
    ] {
        let out = parse(syntax(Family::MistralArgs), text);
        assert_eq!(out.content, text);
        assert!(out.calls.is_empty(), "{text}");
    }
}

#[test]
fn mistral_ids_are_nine_letters_and_digits() {
    let id = setup::mistral_id("call_0123456789abcdef01234567");
    assert_eq!(id.len(), 9);
    assert!(id.bytes().all(|b| b.is_ascii_alphanumeric()));
    assert_eq!(id, setup::mistral_id("call_0123456789abcdef01234567"));
    assert_ne!(id, setup::mistral_id("call_0123456789abcdef01234568"));
    assert_eq!(setup::mistral_id("a1B2c3D4e"), "a1B2c3D4e");
}

mod grammars {
    use std::sync::Arc;

    use cria_sampling::TokenConstraint;
    use cria_sampling::grammar::{Grammar, GrammarVocab, Tokenize, Trigger, VocabToken};

    use super::*;

    const EOS: u32 = 256;
    const OPEN: u32 = 257;
    const CLOSE: u32 = 258;
    const TAG: u32 = 259;

    /// Bytes as tokens, an end-of-text token, and `<tool_call>` / `</tool_call>` / `<|python_tag|>` as
    /// special tokens.
    fn vocab() -> GrammarVocab {
        let mut tokens: Vec<VocabToken> = (0..=255u8)
            .map(|b| VocabToken {
                bytes: vec![b],
                special: false,
            })
            .collect();
        for text in ["<|end|>", "<tool_call>", "</tool_call>", "<|python_tag|>"] {
            tokens.push(VocabToken {
                bytes: text.as_bytes().to_vec(),
                special: true,
            });
        }
        let tokenize: Tokenize = Arc::new(|s: &[u8]| s.iter().map(|&b| u32::from(b)).collect());
        GrammarVocab::new(&tokens, &[EOS], tokenize).unwrap()
    }

    /// Whether `tokens` then end of generation are allowed.
    fn accepts_tokens(g: &Grammar, tokens: &[u32]) -> bool {
        let mut c = vocab().compile(g).unwrap();
        for &t in tokens {
            if !c.allows(t).unwrap() {
                return false;
            }
            c.accept(t).unwrap();
        }
        c.allows(EOS).unwrap()
    }

    /// Whether `text` (one token a byte) then end of generation is allowed.
    fn accepts(g: &Grammar, text: &str) -> bool {
        accepts_tokens(g, &bytes(text))
    }

    fn bytes(text: &str) -> Vec<u32> {
        text.bytes().map(u32::from).collect()
    }

    #[test]
    fn special_token_markers_are_named_by_id() {
        let fns = [weather().function];
        let specials = |t: &str| match t {
            "<tool_call>" => Some(OPEN),
            "</tool_call>" => Some(CLOSE),
            _ => None,
        };
        let body = bytes(
            "\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Rome\", \"unit\": \"f\"}}\n",
        );
        let call: Vec<u32> = [vec![OPEN], body, vec![CLOSE]].concat();
        let required = tool_grammar(&fns, &ToolChoice::Required, true, Family::Hermes, &specials);
        assert!(accepts_tokens(&required, &call), "{required:?}");
        // The markers as plain text are not the tokens.
        let as_text = [
            bytes("<tool_call>"),
            call[1..call.len() - 1].to_vec(),
            bytes("</tool_call>"),
        ]
        .concat();
        assert!(!accepts_tokens(&required, &as_text));
        let auto = tool_grammar(&fns, &ToolChoice::Auto, true, Family::Hermes, &specials);
        assert!(
            matches!(&auto, Grammar::Lazy { triggers, .. } if triggers == &[Trigger::Token(OPEN)])
        );
        assert!(accepts_tokens(&auto, &call));
        assert!(accepts_tokens(
            &auto,
            &[bytes("Sure. "), call.clone()].concat()
        ));
        assert!(
            accepts_tokens(&auto, &as_text),
            "text markers are free text"
        );
        assert!(accepts(&auto, "No call at all."));
    }

    fn grammar(choice: ToolChoice, parallel: bool, family: Family) -> Grammar {
        let fns: Vec<FunctionDef> = [weather()].iter().map(|t| t.function.clone()).collect();
        tool_grammar(&fns, &choice, parallel, family, &|_| None)
    }

    const CALL: &str = "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"unit\": \"c\"}}\n</tool_call>";

    #[test]
    fn required_hermes_call_follows_the_schema() {
        let g = grammar(ToolChoice::Required, true, Family::Hermes);
        assert!(accepts(&g, CALL), "{g:?}");
        assert!(accepts(&g, &format!("{CALL}\n{CALL}")));
        assert!(!accepts(&g, "Sure."));
        assert!(!accepts(&g, &CALL.replace("\"c\"", "\"k\"")));
        assert!(!accepts(&g, &CALL.replace(", \"unit\": \"c\"", "")));
        // No run-on whitespace inside the arguments.
        assert!(!accepts(&g, &CALL.replace("{\"city\"", "{   \"city\"")));
        let single = grammar(ToolChoice::Required, false, Family::Hermes);
        assert!(!accepts(&single, &format!("{CALL}\n{CALL}")));
    }

    #[test]
    fn auto_allows_text_or_a_constrained_call() {
        let g = grammar(ToolChoice::Auto, true, Family::Hermes);
        assert!(accepts(&g, "Just text, no call."), "{g:?}");
        assert!(accepts(&g, ""));
        assert!(accepts(&g, &format!("Checking.\n{CALL}")));
        assert!(accepts(&g, &format!("Checking.\n{CALL}\n{CALL}")));
        assert!(!accepts(&g, "<tool_call>\n{\"name\": \"other\""));
        assert!(!accepts(&g, &CALL.replace("\"c\"", "\"k\"")));
    }

    #[test]
    fn mistral_list_shape() {
        let m = grammar(ToolChoice::Required, true, Family::Mistral);
        let args = r#"{"city": "Rome", "unit": "f"}"#;
        let one = format!(r#"{{"name": "get_weather", "arguments": {args}}}"#);
        assert!(accepts(&m, &format!("[TOOL_CALLS][{one}, {one}]")), "{m:?}");
        let auto = grammar(ToolChoice::Auto, true, Family::Mistral);
        assert!(accepts(&auto, &format!("Sure: [TOOL_CALLS][{one}]")));
        assert!(!accepts(&auto, "[TOOL_CALLS][{\"name\": \"nope\""));
    }

    #[test]
    fn mistral_v11_shape_with_and_without_call_ids() {
        let args = r#"{"city": "Rome", "unit": "f"}"#;
        let one = format!("[TOOL_CALLS]get_weather[ARGS]{args}");
        let with_id = format!("[TOOL_CALLS]get_weather[CALL_ID]a1B2c3D4e[ARGS]{args}");
        for choice in [ToolChoice::Required, ToolChoice::Auto] {
            let g = grammar(choice.clone(), true, Family::MistralArgs);
            assert!(accepts(&g, &one), "{g:?}");
            assert!(accepts(&g, &format!("{one}{with_id}")));
            assert!(!accepts(&g, &one.replace("get_weather", "get_time")));
            assert!(!accepts(&g, &one.replace("\"f\"", "\"k\"")));
        }
        let single = grammar(ToolChoice::Required, false, Family::MistralArgs);
        assert!(!accepts(&single, &format!("{one}{one}")));
        let auto = grammar(ToolChoice::Auto, true, Family::MistralArgs);
        assert!(accepts(&auto, &format!("Let me check.{one}")));
        assert!(accepts(&auto, "No call."));
    }

    #[test]
    fn llama3_bare_json_is_held_once_the_reply_opens_with_it() {
        let args = r#"{"city": "Rome", "unit": "f"}"#;
        let one = format!(r#"{{"name": "get_weather", "parameters": {args}}}"#);
        let required = grammar(ToolChoice::Required, true, Family::Llama3);
        assert!(accepts(&required, &one) && accepts(&required, &format!("{one}; {one}")));
        let auto = grammar(ToolChoice::Auto, true, Family::Llama3);
        assert!(accepts(&auto, &one), "{auto:?}");
        assert!(accepts(&auto, &format!("\n {one}")));
        assert!(accepts(&auto, "Plain text, then {\"a\": 1} is free."));
        assert!(!accepts(&auto, r#"{"name": "other", "parameters": {}}"#));
        assert!(!accepts(&auto, &one.replace("\"f\"", "\"k\"")));
        assert!(accepts(&auto, &format!("Text, then <|python_tag|>{one}")));
        // `<|python_tag|>` as a special token.
        let fns = [weather().function];
        let tag = |t: &str| (t == "<|python_tag|>").then_some(TAG);
        let auto = tool_grammar(&fns, &ToolChoice::Auto, true, Family::Llama3, &tag);
        assert!(accepts_tokens(&auto, &[vec![TAG], bytes(&one)].concat()));
        assert!(!accepts_tokens(
            &auto,
            &[vec![TAG], bytes("{\"name\": \"x")].concat()
        ));
    }
}
