//! Ollama's and Anthropic's APIs through the router on the fake model (one token per byte): their shapes,
//! their streams' framing and order, their error bodies. The official clients run against the real model
//! in tests/openai.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{Answer, MODEL, Setup, app, get, post, send};
use cria_server::ServerConfig;
use serde_json::{Value, json};

fn lines(a: &Answer) -> Vec<Value> {
    a.text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `(event name, data)` of each SSE event.
fn named_events(a: &Answer) -> Vec<(String, Value)> {
    a.text
        .split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let name = e.lines().find_map(|l| l.strip_prefix("event: ")).unwrap();
            let data = e.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
            (name.to_string(), serde_json::from_str(data).unwrap())
        })
        .collect()
}

const OLLAMA_CHAT: &str = r#"{"model": "fake-model", "messages": [{"role": "user", "content": "Hi"}],
    "options": {"temperature": 0, "num_predict": 6}"#;

#[tokio::test]
async fn ollama_chat_streams_ndjson_by_default_and_equals_the_whole_answer() {
    let (app, _) = app(Setup::default());
    let streamed = post(&app, "/api/chat", &format!("{OLLAMA_CHAT}}}")).await;
    assert_eq!(streamed.status, StatusCode::OK, "{}", streamed.text);
    assert_eq!(streamed.headers["content-type"], "application/x-ndjson");
    let lines = lines(&streamed);
    let (last, parts) = lines.split_last().unwrap();
    assert!(
        parts
            .iter()
            .all(|l| l["done"] == false && l["model"] == MODEL)
    );
    assert_eq!(last["done"], true);
    assert_eq!(last["done_reason"], "length");
    assert_eq!(
        (
            last["eval_count"].as_u64(),
            last["prompt_eval_count"].as_u64()
        ),
        (Some(6), Some(9))
    );
    let text: String = parts
        .iter()
        .map(|l| l["message"]["content"].as_str().unwrap())
        .collect();

    let whole = post(
        &app,
        "/api/chat",
        &format!(r#"{OLLAMA_CHAT}, "stream": false}}"#),
    )
    .await;
    let v = whole.json();
    assert_eq!(
        (v["done"].as_bool(), v["message"]["role"].as_str()),
        (Some(true), Some("assistant"))
    );
    assert_eq!(v["message"]["content"].as_str().unwrap(), text);
    assert!(v["created_at"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test]
async fn ollama_generate_format_and_options_are_checked() {
    let (app, _) = app(Setup::default());
    let body = r#"{"prompt": "Hi", "stream": false, "format": "json", "options": {"num_predict": 40, "seed": 1}}"#;
    let v = post(&app, "/api/generate", body).await.json();
    let text = v["response"].as_str().unwrap();
    assert!(
        v["done_reason"] == "length" || serde_json::from_str::<Value>(text).is_ok(),
        "{v}"
    );
    // An empty prompt loads the model (Ollama's idiom) and answers at once.
    let v = post(&app, "/api/generate", r#"{"prompt": ""}"#)
        .await
        .json();
    assert_eq!(
        (v["done"].as_bool(), v["done_reason"].as_str()),
        (Some(true), Some("load"))
    );
    let cases = [
        (
            r#"{"prompt": "Hi", "options": {"temperature": 9}}"#,
            "options.temperature",
        ),
        (r#"{"prompt": "Hi", "format": 3}"#, "format"),
        (
            r#"{"prompt": "Hi", "format": {"type": "nonsense"}}"#,
            "format",
        ),
        (r#"{"prompt": "Hi", "suffix": "end"}"#, "suffix"),
    ];
    for (body, field) in cases {
        let a = post(&app, "/api/generate", body).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{body}: {}", a.text);
        let v = a.json();
        assert_eq!(v.as_object().unwrap().len(), 1, "{v}");
        assert!(
            v["error"].as_str().unwrap().starts_with(field),
            "{body}: {v}"
        );
    }
}

#[tokio::test]
async fn ollama_model_routes_and_errors() {
    let (app, _) = app(Setup::default());
    let tags = get(&app, "/api/tags").await.json();
    assert_eq!(tags["models"][0]["name"], format!("{MODEL}:latest"));
    let shown = post(
        &app,
        "/api/show",
        &json!({"model": format!("{MODEL}:latest")}).to_string(),
    )
    .await;
    assert_eq!(shown.json()["capabilities"], json!(["completion"]));
    assert_eq!(
        get(&app, "/api/ps").await.json()["models"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert!(get(&app, "/api/version").await.json()["version"].is_string());
    let missing = post(&app, "/api/chat", r#"{"model": "other", "messages": []}"#).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.json(), json!({"error": "model 'other' not found"}));
    let bad = post(&app, "/api/chat", "{").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.json()["error"].is_string());
    // No embedding worker on this server: a 400 saying why.
    let embed = post(&app, "/api/embed", r#"{"input": "x"}"#).await;
    assert_eq!(embed.status, StatusCode::BAD_REQUEST, "{}", embed.text);
}

const MESSAGES: &str = r#""messages": [{"role": "user", "content": "Hi"}]"#;

#[tokio::test]
async fn anthropic_message_and_stream_events_in_order() {
    let (app, _) = app(Setup::default());
    let body =
        format!(r#"{{"model": "fake-model", "max_tokens": 5, "temperature": 0, {MESSAGES}}}"#);
    let v = post(&app, "/v1/messages", &body).await.json();
    assert_eq!(
        (v["type"].as_str(), v["role"].as_str()),
        (Some("message"), Some("assistant"))
    );
    assert!(v["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(v["stop_reason"], "max_tokens");
    assert_eq!(v["usage"], json!({"input_tokens": 9, "output_tokens": 5}));
    let text = v["content"][0]["text"].as_str().unwrap().to_string();

    let body = format!(r#"{{"max_tokens": 5, "temperature": 0, "stream": true, {MESSAGES}}}"#);
    let events = named_events(&post(&app, "/v1/messages", &body).await);
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names[..3], ["message_start", "content_block_start", "ping"]);
    assert_eq!(
        names[names.len() - 3..],
        ["content_block_stop", "message_delta", "message_stop"]
    );
    assert!(events.iter().all(|(n, d)| d["type"] == n.as_str()));
    let deltas: String = events
        .iter()
        .filter(|(n, _)| n == "content_block_delta")
        .map(|(_, d)| d["delta"]["text"].as_str().unwrap())
        .collect();
    assert_eq!(deltas, text);
    let delta = &events[events.len() - 2].1;
    assert_eq!(delta["delta"]["stop_reason"], "max_tokens");
    assert_eq!(delta["usage"]["output_tokens"], 5);
}

#[tokio::test]
async fn anthropic_stop_sequence_is_named() {
    let (app, _) = app(Setup::default());
    let free = format!(r#"{{"max_tokens": 30, "temperature": 0, {MESSAGES}}}"#);
    let text = post(&app, "/v1/messages", &free).await.json()["content"][0]["text"]
        .as_str()
        .unwrap()
        .to_string();
    let stop: String = text.chars().skip(4).take(2).collect();
    let body = json!({"max_tokens": 30, "temperature": 0, "stop_sequences": ["@@", stop],
                      "messages": [{"role": "user", "content": "Hi"}]});
    let v = post(&app, "/v1/messages", &body.to_string()).await.json();
    assert_eq!(v["stop_reason"], "stop_sequence");
    assert_eq!(v["stop_sequence"], json!(stop));
    assert_eq!(
        v["content"][0]["text"],
        json!(&text[..text.find(&stop).unwrap()])
    );
}

#[tokio::test]
async fn anthropic_count_tokens_and_errors() {
    let (app, _) = app(Setup::default());
    let body = format!(r#"{{"system": [{{"type": "text", "text": "Be"}}], {MESSAGES}}}"#);
    let v = post(&app, "/v1/messages/count_tokens", &body).await.json();
    assert_eq!(v["input_tokens"], "system: Be\nuser: Hi\n".len());
    let cases = [
        (
            format!("{{{MESSAGES}}}"),
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
        ),
        (
            r#"{"max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "image"}]}]}"#
                .into(),
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
        ),
        (
            format!(r#"{{"model": "claude-x", "max_tokens": 5, {MESSAGES}}}"#),
            StatusCode::NOT_FOUND,
            "not_found_error",
        ),
        ("{".into(), StatusCode::BAD_REQUEST, "invalid_request_error"),
    ];
    for (body, status, kind) in cases {
        let a = post(&app, "/v1/messages", &body).await;
        assert_eq!(a.status, status, "{body}: {}", a.text);
        let v = a.json();
        assert_eq!(
            (v["type"].as_str(), v["error"]["type"].as_str()),
            (Some("error"), Some(kind)),
            "{v}"
        );
        assert!(v["error"]["message"].is_string());
    }
}

#[tokio::test]
async fn keys_are_checked_in_each_dialects_shape() {
    let (app, _) = app(Setup {
        config: ServerConfig {
            api_key: Some("k1".into()),
            ..ServerConfig::default()
        },
        ..Setup::default()
    });
    let body = format!(r#"{{"max_tokens": 2, {MESSAGES}}}"#);
    let denied = post(&app, "/v1/messages", &body).await;
    assert_eq!(denied.status, StatusCode::UNAUTHORIZED);
    assert_eq!(denied.json()["error"]["type"], "authentication_error");
    let req = |key: &str| {
        Request::post("/v1/messages")
            .header("x-api-key", key)
            .body(Body::from(body.clone()))
            .unwrap()
    };
    assert_eq!(send(&app, req("k1")).await.status, StatusCode::OK);
    assert_eq!(send(&app, req("k2")).await.status, StatusCode::UNAUTHORIZED);
    let tags = get(&app, "/api/tags").await;
    assert_eq!(
        (tags.status, tags.json()),
        (StatusCode::UNAUTHORIZED, json!({"error": "unauthorized"}))
    );
    let with_bearer = Request::get("/api/tags")
        .header("authorization", "Bearer k1")
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&app, with_bearer).await.status, StatusCode::OK);
}

#[tokio::test]
async fn ollama_generate_returns_its_context_and_continues_from_one() {
    let (app, _) = app(Setup::default());
    let ask = r#"{"prompt": "Hi", "raw": true, "stream": false, "options": {"num_predict": 5, "seed": 1}}"#;
    let first = post(&app, "/api/generate", ask).await.json();
    let context: Vec<u64> = first["context"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    // One token a byte: the prompt's bytes, then the answer's.
    let answer = first["response"].as_str().unwrap();
    let expected: Vec<u64> = "Hi".bytes().chain(answer.bytes()).map(u64::from).collect();
    assert_eq!(context, expected, "{first}");
    // Streamed, the last line carries the same.
    let streamed = post(&app, "/api/generate", &ask.replace("false", "true")).await;
    let last = lines(&streamed).pop().unwrap();
    assert_eq!(last["context"], first["context"]);
    // Sent back, it comes before the new prompt.
    let more = json!({"prompt": "!", "raw": true, "stream": false, "context": context,
                      "options": {"num_predict": 2}});
    let next = post(&app, "/api/generate", &more.to_string()).await.json();
    assert_eq!(next["prompt_eval_count"], context.len() + 1, "{next}");
    let bad = json!({"prompt": "!", "context": [999_999]});
    let refused = post(&app, "/api/generate", &bad.to_string()).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(
        refused.json()["error"]
            .as_str()
            .unwrap()
            .starts_with("context:")
    );
}

#[tokio::test]
async fn anthropic_last_assistant_text_is_continued() {
    let (app, _) = app(Setup::default());
    let ask = json!({"role": "user", "content": "Count."});
    let count = |messages: Value| {
        let app = app.clone();
        async move {
            let body = json!({"messages": messages});
            let a = post(&app, "/v1/messages/count_tokens", &body.to_string()).await;
            a.json()["input_tokens"].as_u64().unwrap()
        }
    };
    let alone = count(json!([ask])).await;
    let prefilled =
        json!([ask, {"role": "assistant", "content": [{"type": "text", "text": "1, 2,"}]}]);
    // One token a byte: the turns before it, then the prefill's text as it is (no turn of its own).
    assert_eq!(count(prefilled.clone()).await, alone + "1, 2,".len() as u64);
    let body = json!({"max_tokens": 4, "messages": prefilled});
    let r = post(&app, "/v1/messages", &body.to_string()).await.json();
    assert_eq!(r["usage"]["input_tokens"], alone + 5, "{r}");
}
