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

mod grammars {
    use std::sync::Arc;

    use cria_sampling::TokenConstraint;
    use cria_sampling::grammar::{Grammar, GrammarVocab, Tokenize, VocabToken};

    use super::*;

    const EOS: u32 = 256;
    const OPEN: u32 = 257;
    const CLOSE: u32 = 258;

    /// Bytes as tokens, an end-of-text token, and `<tool_call>` / `</tool_call>` as special tokens.
    fn vocab() -> GrammarVocab {
        let mut tokens: Vec<VocabToken> = (0..=255u8)
            .map(|b| VocabToken {
                bytes: vec![b],
                special: false,
            })
            .collect();
        for text in ["<|end|>", "<tool_call>", "</tool_call>"] {
            tokens.push(VocabToken {
                bytes: text.as_bytes().to_vec(),
                special: true,
            });
        }
        let tokenize: Tokenize = Arc::new(|s: &[u8]| s.iter().map(|&b| u32::from(b)).collect());
        GrammarVocab::new(&tokens, &[EOS], tokenize).unwrap()
    }

    /// Whether `tokens` then end of generation are allowed.
    fn accepts_tokens(lark: &str, tokens: &[u32]) -> bool {
        let mut c = vocab().compile(&Grammar::Lark(lark.to_string())).unwrap();
        for &t in tokens {
            if !c.allows(t).unwrap() {
                return false;
            }
            c.accept(t).unwrap();
        }
        c.allows(EOS).unwrap()
    }

    /// Whether `text` (one token a byte) then end of generation is allowed.
    fn accepts(lark: &str, text: &str) -> bool {
        let tokens: Vec<u32> = text.bytes().map(u32::from).collect();
        accepts_tokens(lark, &tokens)
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
        for choice in [ToolChoice::Required, ToolChoice::Auto] {
            let g = tool_grammar(&fns, &choice, true, Family::Hermes, &specials).unwrap();
            assert!(accepts_tokens(&g, &call), "{g}");
            // The markers as plain text are not the tokens.
            let as_text = [
                bytes("<tool_call>"),
                call[1..call.len() - 1].to_vec(),
                bytes("</tool_call>"),
            ]
            .concat();
            assert!(
                !accepts_tokens(&g, &as_text) || choice == ToolChoice::Auto,
                "{g}"
            );
        }
        let auto = tool_grammar(&fns, &ToolChoice::Auto, true, Family::Hermes, &specials).unwrap();
        assert!(accepts_tokens(&auto, &[bytes("Sure. "), call].concat()));
        assert!(accepts(&auto, "No call at all."));
    }

    fn lark(choice: ToolChoice, parallel: bool, family: Family) -> String {
        let fns: Vec<FunctionDef> = [weather()].iter().map(|t| t.function.clone()).collect();
        tool_grammar(&fns, &choice, parallel, family, &|_| None).unwrap()
    }

    const CALL: &str = "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"unit\": \"c\"}}\n</tool_call>";

    #[test]
    fn required_hermes_call_follows_the_schema() {
        let g = lark(ToolChoice::Required, true, Family::Hermes);
        assert!(accepts(&g, CALL), "{g}");
        assert!(accepts(&g, &format!("{CALL}\n{CALL}")));
        assert!(!accepts(&g, "Sure."));
        assert!(!accepts(&g, &CALL.replace("\"c\"", "\"k\"")));
        assert!(!accepts(&g, &CALL.replace(", \"unit\": \"c\"", "")));
        // No run-on whitespace inside the arguments.
        assert!(!accepts(&g, &CALL.replace("{\"city\"", "{   \"city\"")));
        let single = lark(ToolChoice::Required, false, Family::Hermes);
        assert!(!accepts(&single, &format!("{CALL}\n{CALL}")));
    }

    #[test]
    fn auto_allows_text_or_a_constrained_call() {
        let g = lark(ToolChoice::Auto, true, Family::Hermes);
        assert!(accepts(&g, "Just text, no call."), "{g}");
        assert!(accepts(&g, ""));
        assert!(accepts(&g, &format!("Checking.\n{CALL}")));
        assert!(!accepts(&g, "<tool_call>\n{\"name\": \"other\""));
    }

    #[test]
    fn mistral_and_llama3_shapes() {
        let m = lark(ToolChoice::Required, true, Family::Mistral);
        let args = r#"{"city": "Rome", "unit": "f"}"#;
        let one = format!(r#"{{"name": "get_weather", "arguments": {args}}}"#);
        assert!(accepts(&m, &format!("[TOOL_CALLS][{one}, {one}]")), "{m}");
        let l = lark(ToolChoice::Required, true, Family::Llama3);
        let one = format!(r#"{{"name": "get_weather", "parameters": {args}}}"#);
        assert!(accepts(&l, &one), "{l}");
        assert!(accepts(&l, &format!("{one}; {one}")));
        let fns = [weather().function];
        assert!(tool_grammar(&fns, &ToolChoice::Auto, true, Family::Llama3, &|_| None).is_none());
    }
}
