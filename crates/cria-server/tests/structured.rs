//! Structured output through the handlers (fake model, byte vocabulary): `response_format`, `json_schema`,
//! `grammar` (Lark and GBNF) and `regex` constrain the text; an unusable one is a 400 before generation.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use axum::http::StatusCode;
use common::{MODEL, Setup, app, post};
use serde_json::{Value, json};

fn chat(extra: Value) -> String {
    let mut body = json!({"model": MODEL, "messages": [{"role": "user", "content": "Hi"}],
        "max_tokens": 200, "temperature": 1.0, "seed": 7});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    body.to_string()
}

async fn content(extra: Value) -> (String, String) {
    let (app, _) = app(Setup::default());
    let a = post(&app, "/v1/chat/completions", &chat(extra)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let v = a.json();
    let choice = &v["choices"][0];
    (
        choice["message"]["content"].as_str().unwrap().to_owned(),
        choice["finish_reason"].as_str().unwrap().to_owned(),
    )
}

/// The fake model favours spaces; JSON whitespace is bounded (20 in a row), so the object still gets finished
/// (it ran on in spaces to `max_tokens` when llguidance's unbounded default applied).
#[tokio::test]
async fn json_schema_output_parses_and_validates() {
    let schema = json!({"type": "object", "properties": {"ok": {"type": "boolean"}, "n": {"type": "integer", "minimum": 0, "maximum": 99}},
        "required": ["ok", "n"], "additionalProperties": false});
    let format = json!({"response_format": {"type": "json_schema", "json_schema": {"name": "r", "schema": schema, "strict": true}}});
    let (text, reason) = content(format).await;
    assert_eq!(reason, "stop", "{text:?}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert!(
        v["ok"].is_boolean() && v["n"].as_i64().is_some_and(|n| (0..=99).contains(&n)),
        "{text}"
    );
}

#[tokio::test]
async fn json_object_output_parses() {
    for seed in 0..3 {
        let (text, _) = content(
            json!({"response_format": {"type": "json_object"}, "seed": seed, "max_tokens": 400}),
        )
        .await;
        let v: Result<Value, _> = serde_json::from_str(&text);
        // A stream cut by max_tokens may end early; a finished object must parse.
        if let Ok(v) = v {
            assert!(v.is_object(), "{text}");
        } else {
            assert!(text.starts_with('{'), "{text}");
        }
    }
}

#[tokio::test]
async fn regex_and_grammars_constrain_the_text() {
    let (text, _) = content(json!({"regex": "(yes|no)-[0-9]{2}"})).await;
    assert!(text.len() == 5 || text.len() == 6, "{text}");
    assert!(
        text.starts_with("yes-") || text.starts_with("no-"),
        "{text}"
    );
    let (text, _) = content(json!({"grammar": "start: \"id:\" /[a-f]{4}/"})).await;
    assert!(text.starts_with("id:") && text.len() == 7, "{text}");
    let (text, _) = content(json!({"grammar": "root ::= \"x\" [0-9] [0-9]"})).await;
    assert!(text.starts_with('x') && text.len() == 3, "{text}");
}

#[tokio::test]
async fn unusable_constraints_are_400_before_generation() {
    let (app, _) = app(Setup::default());
    for (extra, param) in [
        (
            json!({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "nope"}}}}),
            "response_format",
        ),
        (
            json!({"response_format": {"type": "json_schema"}}),
            "response_format",
        ),
        (
            json!({"response_format": {"type": "yaml"}}),
            "response_format",
        ),
        (json!({"grammar": "start: missing_rule"}), "grammar"),
        (json!({"grammar": "root ::= \"unterminated"}), "grammar"),
        (json!({"regex": "(open"}), "regex"),
        (json!({"regex": "a", "grammar": "start: \"a\""}), "regex"),
    ] {
        let a = post(&app, "/v1/chat/completions", &chat(extra.clone())).await;
        let err = a.error(StatusCode::BAD_REQUEST);
        assert_eq!(err["param"], param, "{extra}: {}", a.text);
    }
}

#[tokio::test]
async fn each_choice_follows_the_grammar() {
    let (app, _) = app(Setup::default());
    let a = post(
        &app,
        "/v1/chat/completions",
        &chat(json!({"regex": "[0-9]{4}", "n": 3})),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    for choice in a.json()["choices"].as_array().unwrap() {
        let text = choice["message"]["content"].as_str().unwrap();
        assert!(
            text.len() == 4 && text.bytes().all(|b| b.is_ascii_digit()),
            "{text}"
        );
    }
}
