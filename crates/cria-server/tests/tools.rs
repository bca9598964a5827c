//! Tool calling through the handlers (fake model, byte vocabulary, no template of its own: the generic
//! syntax): the tool grammar makes the calls, the parser returns them whole and streamed alike.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use std::collections::BTreeMap;

use axum::http::StatusCode;
use common::{MODEL, Setup, app, post};
use cria_engine::EngineConfig;
use serde_json::{Value, json};

fn tools() -> Value {
    json!([
        {"type": "function", "function": {"name": "get_weather", "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "maxLength": 8}, "days": {"type": "integer", "minimum": 1, "maximum": 9}},
            "required": ["city", "days"], "additionalProperties": false}}},
        {"type": "function", "function": {"name": "ping", "parameters": {"type": "object", "properties": {}, "additionalProperties": false}}}
    ])
}

fn body(extra: Value) -> Value {
    let mut body = json!({"model": MODEL, "messages": [{"role": "user", "content": "Weather?"}],
        "tools": tools(), "max_tokens": 300, "temperature": 1.0, "seed": 3});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    body
}

/// A byte per token: the generic tool description alone is about 450 tokens.
fn setup() -> Setup {
    Setup {
        engine: EngineConfig {
            ctx: 2048,
            ..EngineConfig::default()
        },
        ..Setup::default()
    }
}

/// `(name, arguments)` of each call of a whole response, and its finish reason.
async fn whole(extra: Value) -> (Vec<(String, String)>, String) {
    let (app, _) = app(setup());
    let a = post(&app, "/v1/chat/completions", &body(extra).to_string()).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let choice = &a.json()["choices"][0];
    let calls = choice["message"]["tool_calls"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|c| {
            assert!(c["id"].as_str().unwrap().starts_with("call_"), "{c}");
            assert_eq!(c["type"], "function");
            let f = &c["function"];
            (
                f["name"].as_str().unwrap().to_owned(),
                f["arguments"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    (calls, choice["finish_reason"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn required_call_arguments_follow_the_schema() {
    for seed in 0..4 {
        let (calls, finish) =
            whole(json!({"tool_choice": "required", "seed": seed, "parallel_tool_calls": false}))
                .await;
        assert_eq!(finish, "tool_calls");
        assert_eq!(calls.len(), 1, "{calls:?}");
        let (name, arguments) = &calls[0];
        let args: Value = serde_json::from_str(arguments).unwrap();
        match name.as_str() {
            "get_weather" => {
                assert!(args["city"].as_str().unwrap().chars().count() <= 8);
                assert!((1..=9).contains(&args["days"].as_i64().unwrap()), "{args}");
            }
            "ping" => assert_eq!(args, json!({})),
            other => panic!("unknown function {other}"),
        }
    }
}

#[tokio::test]
async fn named_choice_calls_that_function() {
    let choice = json!({"type": "function", "function": {"name": "ping"}});
    let (calls, _) = whole(json!({"tool_choice": choice})).await;
    assert!(!calls.is_empty());
    assert!(calls.iter().all(|(name, _)| name == "ping"), "{calls:?}");
}

#[tokio::test]
async fn streamed_deltas_assemble_to_the_whole_calls() {
    let request = json!({"tool_choice": "required", "seed": 11});
    let (calls, finish) = whole(request.clone()).await;
    let mut streamed = request;
    streamed["stream"] = json!(true);
    let (app, _) = app(setup());
    let a = post(&app, "/v1/chat/completions", &body(streamed).to_string()).await;
    let mut by_index: BTreeMap<u64, (String, String)> = BTreeMap::new();
    let mut last_finish = String::new();
    for event in a.events().iter().filter(|e| *e != "[DONE]") {
        let v: Value = serde_json::from_str(event).unwrap();
        let choice = &v["choices"][0];
        if let Some(f) = choice["finish_reason"].as_str() {
            last_finish = f.to_owned();
        }
        for d in choice["delta"]["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let index = d["index"].as_u64().unwrap();
            let entry = by_index.entry(index).or_insert_with(|| {
                assert!(d["id"].as_str().unwrap().starts_with("call_"), "{d}");
                (
                    d["function"]["name"].as_str().unwrap().to_owned(),
                    String::new(),
                )
            });
            entry
                .1
                .push_str(d["function"]["arguments"].as_str().unwrap());
        }
    }
    assert_eq!(by_index.into_values().collect::<Vec<_>>(), calls);
    assert_eq!(last_finish, finish);
}

#[tokio::test]
async fn bad_tool_requests_are_400s() {
    let (app, _) = app(setup());
    for (extra, param) in [
        (
            json!({"tool_choice": {"type": "function", "function": {"name": "nope"}}}),
            "tool_choice",
        ),
        (json!({"tool_choice": "sometimes"}), "tool_choice"),
        (json!({"tool_choice": "required", "regex": "a"}), "regex"),
        (json!({"reasoning_format": "loud"}), "reasoning_format"),
        (
            json!({"tools": [{"type": "retrieval", "function": {"name": "x"}}]}),
            "tools[0].type",
        ),
    ] {
        let a = post(&app, "/v1/chat/completions", &body(extra).to_string()).await;
        assert_eq!(
            a.error(StatusCode::BAD_REQUEST)["param"],
            param,
            "{}",
            a.text
        );
    }
}
