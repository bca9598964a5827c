//! Tool calls in Anthropic's and Ollama's shapes (fake model, byte vocabulary, the generic call syntax): a
//! required call comes back as the same function and arguments the OpenAI route returns, whole and
//! streamed.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use axum::http::StatusCode;
use common::{Setup, app, post};
use cria_engine::EngineConfig;
use serde_json::{Value, json};

fn schema() -> Value {
    json!({"type": "object", "properties": {"city": {"type": "string", "maxLength": 8}},
           "required": ["city"], "additionalProperties": false})
}

const ASK: &str = r#"[{"role": "user", "content": "Weather?"}]"#;

/// A byte per token: the generic tool description alone is a few hundred tokens.
fn setup() -> Setup {
    Setup {
        engine: EngineConfig {
            ctx: 2048,
            ..EngineConfig::default()
        },
        ..Setup::default()
    }
}

fn anthropic_body(extra: Value) -> Value {
    let mut body = json!({"max_tokens": 200, "temperature": 1.0, "messages": serde_json::from_str::<Value>(ASK).unwrap(),
        "tools": [{"name": "get_weather", "description": "The weather", "input_schema": schema()}],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": true}});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    body
}

/// A request to a fresh server: the fake model's logits hang on what its slot was fed, so a prompt-cache hit
/// from an earlier request would change them.
async fn fresh(path: &str, body: &Value) -> common::Answer {
    let (app, _) = app(setup());
    post(&app, path, &body.to_string()).await
}

/// The `data:` payloads of an SSE body, parsed.
fn events(text: &str) -> Vec<Value> {
    text.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

#[tokio::test]
async fn anthropic_tool_use_whole_and_streamed_agree() {
    // Anthropic's API has no seed: greedy, with the prompt varied instead.
    for ask in ["Weather?", "Weather in Oslo?", "Is it raining?"] {
        let request = json!({"temperature": 0, "messages": [{"role": "user", "content": ask}]});
        let whole = fresh("/v1/messages", &anthropic_body(request.clone())).await;
        assert_eq!(whole.status, StatusCode::OK, "{}", whole.text);
        let message = whole.json();
        assert_eq!(message["stop_reason"], "tool_use", "{message}");
        let uses: Vec<&Value> = message["content"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|b| b["type"] == "tool_use")
            .collect();
        assert_eq!(uses.len(), 1, "{message}");
        let use_ = uses[0];
        assert!(use_["id"].as_str().unwrap().starts_with("toolu_"));
        assert_eq!(use_["name"], "get_weather");
        assert!(use_["input"]["city"].is_string(), "{use_}");

        let mut streaming = anthropic_body(request);
        streaming["stream"] = json!(true);
        let streamed = fresh("/v1/messages", &streaming).await;
        let events = events(&streamed.text);
        let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(kinds[..2], ["message_start", "ping"], "{kinds:?}");
        assert_eq!(kinds[kinds.len() - 2..], ["message_delta", "message_stop"]);
        let start = events
            .iter()
            .find(|e| {
                e["type"] == "content_block_start" && e["content_block"]["type"] == "tool_use"
            })
            .unwrap();
        assert_eq!(start["content_block"]["name"], "get_weather");
        assert_eq!(start["content_block"]["input"], json!({}));
        let index = &start["index"];
        let partial: String = events
            .iter()
            .filter(|e| e["type"] == "content_block_delta" && &e["index"] == index)
            .map(|e| {
                assert_eq!(e["delta"]["type"], "input_json_delta");
                e["delta"]["partial_json"].as_str().unwrap()
            })
            .collect();
        assert_eq!(
            serde_json::from_str::<Value>(&partial).unwrap(),
            use_["input"]
        );
        let delta = &events[events.len() - 2];
        assert_eq!(delta["delta"]["stop_reason"], "tool_use");
        // Starts and stops pair up, indices in order.
        let starts: Vec<&Value> = events
            .iter()
            .filter(|e| e["type"] == "content_block_start")
            .map(|e| &e["index"])
            .collect();
        let stops: Vec<&Value> = events
            .iter()
            .filter(|e| e["type"] == "content_block_stop")
            .map(|e| &e["index"])
            .collect();
        assert_eq!(starts, stops);
    }
}

#[tokio::test]
async fn anthropic_tool_results_reach_the_prompt_and_bad_choices_are_400() {
    let (app, _) = app(setup());
    let ask = anthropic_body(json!({}));
    let count = |body: &Value| {
        let app = app.clone();
        let body = body.to_string();
        async move {
            let a = post(&app, "/v1/messages/count_tokens", &body).await;
            assert_eq!(a.status, StatusCode::OK, "{}", a.text);
            a.json()["input_tokens"].as_u64().unwrap()
        }
    };
    let mut back = ask.clone();
    back["messages"] = json!([
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Oslo"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny, 18 C"}]},
    ]);
    // One byte a token: the call and the result are in the prompt.
    let grew = count(&back).await - count(&ask).await;
    assert!(
        grew as usize >= "Oslo".len() + "sunny, 18 C".len(),
        "{grew}"
    );
    let mut bad = ask.clone();
    bad["tool_choice"] = json!({"type": "tool", "name": "nope"});
    let a = post(&app, "/v1/messages", &bad.to_string()).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.text);
    assert_eq!(a.json()["error"]["type"], "invalid_request_error");
}

#[tokio::test]
async fn ollama_tool_calls_are_objects_whole_and_streamed() {
    // Ollama has no tool_choice: with the generic syntax on this fake model, a call is whatever the seed
    // gives. Look at the OpenAI route's answer for the same seed and expect the same.
    let tools =
        json!([{"type": "function", "function": {"name": "get_weather", "parameters": schema()}}]);
    for seed in 0..6 {
        let openai = fresh(
            "/v1/chat/completions",
            &json!({"messages": serde_json::from_str::<Value>(ASK).unwrap(), "tools": tools,
                    "max_tokens": 200, "temperature": 1.0, "seed": seed}),
        )
        .await
        .json();
        let expected: Vec<Value> = openai["choices"][0]["message"]["tool_calls"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|c| {
                let args: Value =
                    serde_json::from_str(c["function"]["arguments"].as_str().unwrap()).unwrap();
                json!({"name": c["function"]["name"], "arguments": args})
            })
            .collect();
        let body = json!({"messages": serde_json::from_str::<Value>(ASK).unwrap(), "tools": tools,
                          "options": {"num_predict": 200, "temperature": 1.0, "seed": seed}});
        let mut whole_body = body.clone();
        whole_body["stream"] = json!(false);
        let whole = fresh("/api/chat", &whole_body).await.json();
        let got: Vec<Value> = whole["message"]["tool_calls"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(
                |c| json!({"name": c["function"]["name"], "arguments": c["function"]["arguments"]}),
            )
            .collect();
        assert_eq!(got, expected, "seed {seed}: {whole}");
        let content = openai["choices"][0]["message"]["content"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert_eq!(whole["message"]["content"], content.as_str());
        let lines = fresh("/api/chat", &body).await.text;
        let lines: Vec<Value> = lines
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let streamed: Vec<Value> = lines
            .iter()
            .flat_map(|l| {
                l["message"]["tool_calls"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .map(
                |c| json!({"name": c["function"]["name"], "arguments": c["function"]["arguments"]}),
            )
            .collect();
        assert_eq!(streamed, expected);
        let text: String = lines
            .iter()
            .map(|l| l["message"]["content"].as_str().unwrap_or_default())
            .collect();
        assert_eq!(text, content);
        assert_eq!(lines.last().unwrap()["done"], true);
    }
}
