//! The handlers through the router with tower's `oneshot`, on a fake model.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{MODEL, Setup, app, get, post};
use cria_engine::EngineConfig;
use cria_server::MetricNames;
use serde_json::{Value, json};

fn chat_body(extra: Value) -> String {
    let mut body = json!({"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 8, "temperature": 0});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    body.to_string()
}

#[tokio::test]
async fn chat_completion_has_openai_shape() {
    let (app, _) = app(Setup::default());
    let a = post(&app, "/v1/chat/completions", &chat_body(json!({}))).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let v = a.json();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], MODEL);
    assert!(v["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert!(v["created"].as_u64().unwrap() > 0 && v["system_fingerprint"].is_string());
    let choice = &v["choices"][0];
    assert_eq!(
        (choice["index"].as_u64(), choice["message"]["role"].as_str()),
        (Some(0), Some("assistant"))
    );
    assert_eq!(choice["finish_reason"], "length");
    assert_eq!(choice["message"]["content"].as_str().unwrap().len(), 8);
    assert_eq!(v["usage"]["completion_tokens"], 8);
    assert_eq!(v["usage"]["prompt_tokens"], "user: Hi\n".len());
    assert_eq!(v["usage"]["total_tokens"], 8 + "user: Hi\n".len());
}

#[tokio::test]
async fn content_parts_are_joined() {
    let (app, _) = app(Setup::default());
    let parts = json!({"messages": [{"role": "user", "content": [{"type": "text", "text": "H"}, {"type": "text", "text": "i"}]}]});
    let a = post(&app, "/v1/chat/completions", &chat_body(parts)).await;
    assert_eq!(a.json()["usage"]["prompt_tokens"], "user: Hi\n".len());
    let image = json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]});
    let err = post(&app, "/v1/chat/completions", &chat_body(image))
        .await
        .error(StatusCode::BAD_REQUEST);
    assert_eq!(err["param"], "messages[0].content");
}

#[tokio::test]
async fn streamed_text_equals_non_streamed_text() {
    let (app, _) = app(Setup::default());
    let plain = post(
        &app,
        "/v1/chat/completions",
        &chat_body(json!({"max_tokens": 30})),
    )
    .await
    .json();
    let streamed = post(
        &app,
        "/v1/chat/completions",
        &chat_body(json!({"max_tokens": 30, "stream": true})),
    )
    .await;
    assert_eq!(streamed.status, StatusCode::OK);
    assert!(
        streamed.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let events = streamed.events();
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    assert!(
        chunks
            .iter()
            .all(|c| c["object"] == "chat.completion.chunk" && c.get("usage").is_none())
    );
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let last = &chunks[chunks.len() - 1]["choices"][0];
    assert_eq!(last["finish_reason"], "length");
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(
        text,
        plain["choices"][0]["message"]["content"].as_str().unwrap()
    );
}

#[tokio::test]
async fn stream_usage_chunk_comes_last_when_asked() {
    let (app, _) = app(Setup::default());
    let body =
        chat_body(json!({"stream": true, "stream_options": {"include_usage": true}, "n": 2}));
    let events = post(&app, "/v1/chat/completions", &body).await.events();
    let usage: Value = serde_json::from_str(&events[events.len() - 2]).unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["completion_tokens"], 16);
    assert_eq!(usage["usage"]["prompt_tokens"], "user: Hi\n".len());
    let first: Value = serde_json::from_str(&events[0]).unwrap();
    assert!(first["usage"].is_null() && first.get("usage").is_some());
}

#[tokio::test]
async fn n_choices_and_seeds_reproduce() {
    let (app, _) = app(Setup::default());
    let body = chat_body(json!({"n": 3, "temperature": 1.0, "seed": 5, "max_tokens": 20}));
    let a = post(&app, "/v1/chat/completions", &body).await.json();
    let b = post(&app, "/v1/chat/completions", &body).await.json();
    let texts = |v: &Value| {
        v["choices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["message"]["content"].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(texts(&a).len(), 3);
    assert_eq!(texts(&a), texts(&b));
    assert_ne!(texts(&a)[0], texts(&a)[1], "choices use different seeds");
    let indices: Vec<_> = a["choices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["index"].as_u64().unwrap())
        .collect();
    assert_eq!(indices, vec![0, 1, 2]);
}

#[tokio::test]
async fn stop_string_cuts_the_text() {
    let (app, _) = app(Setup::default());
    let full = post(
        &app,
        "/v1/chat/completions",
        &chat_body(json!({"max_tokens": 40})),
    )
    .await
    .json();
    let full = full["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_string();
    let stop = &full[12..14];
    let cut = post(
        &app,
        "/v1/chat/completions",
        &chat_body(json!({"max_tokens": 40, "stop": [stop]})),
    )
    .await
    .json();
    assert_eq!(
        cut["choices"][0]["message"]["content"].as_str().unwrap(),
        &full[..full.find(stop).unwrap()]
    );
    assert_eq!(cut["choices"][0]["finish_reason"], "stop");
}

#[tokio::test]
async fn chat_logprobs_list_each_token() {
    let (app, _) = app(Setup::default());
    let v = post(
        &app,
        "/v1/chat/completions",
        &chat_body(json!({"logprobs": true, "top_logprobs": 2})),
    )
    .await
    .json();
    let content = v["choices"][0]["logprobs"]["content"].as_array().unwrap();
    assert_eq!(content.len(), 8);
    let text: String = content
        .iter()
        .map(|t| t["token"].as_str().unwrap())
        .collect();
    assert_eq!(
        text,
        v["choices"][0]["message"]["content"].as_str().unwrap()
    );
    assert_eq!(content[0]["top_logprobs"].as_array().unwrap().len(), 2);
    assert!(content[0]["logprob"].as_f64().unwrap() <= 0.0);
}

#[tokio::test]
async fn completions_accept_prompt_lists() {
    let (app, _) = app(Setup::default());
    let body = json!({"model": MODEL, "prompt": ["ab", "cde"], "n": 2, "max_tokens": 4, "temperature": 0, "logprobs": 1});
    let v = post(&app, "/v1/completions", &body.to_string())
        .await
        .json();
    assert_eq!(v["object"], "text_completion");
    let choices = v["choices"].as_array().unwrap();
    assert_eq!(choices.len(), 4);
    assert_eq!(
        choices[0]["text"], choices[1]["text"],
        "greedy choices of one prompt agree"
    );
    assert_eq!(
        choices[2]["logprobs"]["tokens"].as_array().unwrap().len(),
        4
    );
    assert_eq!(v["usage"]["prompt_tokens"], 5);
    assert_eq!(v["usage"]["completion_tokens"], 16);
}

#[tokio::test]
async fn completions_stream_and_default_max_tokens() {
    let (app, _) = app(Setup::default());
    let body = json!({"model": MODEL, "prompt": "xyz", "stream": true, "temperature": 0});
    let events = post(&app, "/v1/completions", &body.to_string())
        .await
        .events();
    assert_eq!(events.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["text"].as_str())
        .collect();
    assert_eq!(text.len(), 16);
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "length"
    );
}

#[tokio::test]
async fn models_and_health() {
    let (app, _) = app(Setup::default());
    let v = get(&app, "/v1/models").await.json();
    assert_eq!(v["data"][0]["id"], MODEL);
    assert_eq!(v["object"], "list");
    assert_eq!(get(&app, "/health").await.json(), json!({"status": "ok"}));
}

#[tokio::test]
async fn loading_server_answers_503() {
    let (app, _) = app(Setup {
        loaded: false,
        ..Setup::default()
    });
    assert_eq!(
        get(&app, "/health").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    let a = post(&app, "/v1/chat/completions", &chat_body(json!({}))).await;
    a.error(StatusCode::SERVICE_UNAVAILABLE);
    assert!(a.headers.contains_key("retry-after"));
}

#[tokio::test]
async fn bad_requests_are_400_naming_the_field() {
    let (app, _) = app(Setup::default());
    let cases = [
        (json!({"temperature": -1}), "temperature"),
        (json!({"top_p": 0}), "top_p"),
        (json!({"top_p": 1.5}), "top_p"),
        (json!({"max_tokens": 0}), "max_tokens"),
        (json!({"n": 17}), "n"),
        (json!({"n": 0}), "n"),
        (json!({"stop": ["a", "b", "c", "d", "e"]}), "stop"),
        (json!({"presence_penalty": 3}), "presence_penalty"),
        (json!({"logit_bias": {"999999": 1}}), "logit_bias"),
        (json!({"top_logprobs": 3}), "top_logprobs"),
        (json!({"messages": []}), "messages"),
        (
            json!({"messages": [{"role": "wizard", "content": "x"}]}),
            "messages[0].role",
        ),
    ];
    for (extra, param) in cases {
        let err = post(&app, "/v1/chat/completions", &chat_body(extra.clone()))
            .await
            .error(StatusCode::BAD_REQUEST);
        assert_eq!(err["param"], param, "{extra}");
        assert_eq!(err["type"], "invalid_request_error");
    }
}

#[tokio::test]
async fn malformed_json_and_wrong_types_are_400() {
    let (app, _) = app(Setup::default());
    post(&app, "/v1/chat/completions", "{not json")
        .await
        .error(StatusCode::BAD_REQUEST);
    post(&app, "/v1/chat/completions", r#"{"model": "fake-model"}"#)
        .await
        .error(StatusCode::BAD_REQUEST);
    post(
        &app,
        "/v1/chat/completions",
        &chat_body(json!({"temperature": "hot"})),
    )
    .await
    .error(StatusCode::BAD_REQUEST);
    post(&app, "/v1/completions", r#"{"prompt": [1, 99999]}"#)
        .await
        .error(StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn unknown_fields_are_ignored() {
    let (app, _) = app(Setup::default());
    let a = post(
        &app,
        "/v1/chat/completions",
        &chat_body(json!({"frobnicate": true, "user": "u1", "tools": []})),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
}

#[tokio::test]
async fn unknown_model_and_route_are_404() {
    let (app, _) = app(Setup::default());
    let err = post(
        &app,
        "/v1/chat/completions",
        &chat_body(json!({"model": "gpt-9"})),
    )
    .await
    .error(StatusCode::NOT_FOUND);
    assert_eq!(err["code"], "model_not_found");
    let err = get(&app, "/v1/nothing").await.error(StatusCode::NOT_FOUND);
    assert_eq!(err["code"], "unknown_url");
    get(&app, "/v1/chat/completions")
        .await
        .error(StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn prompt_over_the_context_is_400_context_length_exceeded() {
    let (app, _) = app(Setup {
        engine: EngineConfig {
            ctx: 64,
            ..EngineConfig::default()
        },
        ..Setup::default()
    });
    let long = "x".repeat(100);
    let err = post(
        &app,
        "/v1/chat/completions",
        &chat_body(json!({"messages": [{"role": "user", "content": long}]})),
    )
    .await
    .error(StatusCode::BAD_REQUEST);
    assert_eq!(err["code"], "context_length_exceeded");
}

#[tokio::test]
async fn body_over_the_limit_is_413() {
    let mut setup = Setup::default();
    setup.config.body_limit = 1000;
    let (app, _) = app(setup);
    let big = "y".repeat(2000);
    post(
        &app,
        "/v1/chat/completions",
        &chat_body(json!({"messages": [{"role": "user", "content": big}]})),
    )
    .await
    .error(StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn api_key_guards_v1_but_not_health() {
    let mut setup = Setup::default();
    setup.config.api_key = Some("sekret".into());
    let (app, _) = app(setup);
    let with_key = |key: &str| {
        Request::get("/v1/models")
            .header("authorization", format!("Bearer {key}"))
            .body(Body::empty())
            .unwrap()
    };
    let err = get(&app, "/v1/models")
        .await
        .error(StatusCode::UNAUTHORIZED);
    assert_eq!(err["code"], "invalid_api_key");
    common::send(&app, with_key("wrong"))
        .await
        .error(StatusCode::UNAUTHORIZED);
    assert_eq!(
        common::send(&app, with_key("sekret")).await.status,
        StatusCode::OK
    );
    assert_eq!(get(&app, "/health").await.status, StatusCode::OK);
    get(&app, "/metrics").await.error(StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn full_queue_is_429_with_retry_after() {
    let setup = Setup {
        engine: EngineConfig {
            parallel: 1,
            max_queue: 1,
            ctx: 100_000,
            ..EngineConfig::default()
        },
        delay: std::time::Duration::from_millis(5),
        ..Setup::default()
    };
    let (app, engine) = app(setup);
    let engine = engine.unwrap();
    let long = chat_body(json!({"max_tokens": 100_000}));
    let running = tokio::spawn({
        let app = app.clone();
        let body = long.clone();
        async move { post(&app, "/v1/chat/completions", &body).await }
    });
    while engine.stats().running == 0 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let queued = tokio::spawn({
        let app = app.clone();
        async move { post(&app, "/v1/chat/completions", &long).await }
    });
    while engine.stats().waiting == 0 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let a = post(&app, "/v1/chat/completions", &chat_body(json!({}))).await;
    let err = a.error(StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(err["code"], "queue_full");
    assert!(a.headers.contains_key("retry-after"));
    running.abort();
    queued.abort();
}

#[tokio::test]
async fn dropped_request_is_cancelled() {
    let setup = Setup {
        engine: EngineConfig {
            ctx: 100_000,
            ..EngineConfig::default()
        },
        delay: std::time::Duration::from_millis(2),
        ..Setup::default()
    };
    let (app, engine) = app(setup);
    let engine = engine.unwrap();
    let body = chat_body(json!({"max_tokens": 100_000, "stream": true}));
    let client = tokio::spawn(async move { post(&app, "/v1/chat/completions", &body).await });
    while engine.stats().running == 0 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    client.abort();
    for _ in 0..400 {
        if engine.stats().running == 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    panic!(
        "the sequence kept running after its client left: {:?}",
        engine.stats()
    );
}

#[tokio::test]
async fn metrics_expose_counts_and_latencies() {
    let (app, _) = app(Setup::default());
    post(
        &app,
        "/v1/chat/completions",
        &chat_body(json!({"stream": true})),
    )
    .await;
    post(&app, "/v1/chat/completions", &chat_body(json!({"n": 0}))).await;
    let text = get(&app, "/metrics").await.text;
    for needle in [
        "cria_requests_total{endpoint=\"/v1/chat/completions\",status=\"200\"} 1",
        "cria_requests_total{endpoint=\"/v1/chat/completions\",status=\"400\"} 1",
        "cria_generated_tokens_total 8",
        "cria_prompt_tokens_total 9",
        "cria_time_to_first_token_seconds_count 1",
        "cria_inter_token_latency_seconds_count 7",
        "cria_running_sequences 0",
        "cria_queue_depth 0",
        "cria_kv_cache_capacity_tokens",
        // The endpoint picker's model-server protocol under Cria's names
        // (deploy/kubernetes/epp/endpoint-picker-config.yaml) and, by default, under vLLM's.
        "cria_kv_cache_usage_ratio 0",
        "cria_cache_config_info{block_size=",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
    for (vllm, cria) in [
        ("vllm:num_requests_waiting", "cria_queue_depth"),
        ("vllm:num_requests_running", "cria_running_sequences"),
        ("vllm:kv_cache_usage_perc", "cria_kv_cache_usage_ratio"),
        ("vllm:cache_config_info", "cria_cache_config_info"),
        (
            "vllm:prefix_cache_queries_total",
            "cria_prefix_cache_queries_total",
        ),
        (
            "vllm:prefix_cache_hits_total",
            "cria_prefix_cache_hits_total",
        ),
    ] {
        let copy = sample(&text, vllm);
        assert!(copy.is_some(), "missing {vllm} in\n{text}");
        assert_eq!(copy, sample(&text, cria), "{vllm} is not {cria} in\n{text}");
    }
}

/// `--metrics-names cria`: no `vllm:` name (promtool lints their colons), Cria's gateway gauges still there.
#[tokio::test]
async fn metric_names_cria_leaves_the_vllm_names_out() {
    let mut setup = Setup::default();
    setup.config.metric_names = MetricNames::Cria;
    let (app, _) = app(setup);
    let text = get(&app, "/metrics").await.text;
    assert!(!text.contains("vllm:"), "{text}");
    for needle in [
        "cria_queue_depth 0",
        "cria_running_sequences 0",
        "cria_kv_cache_usage_ratio 0",
        "cria_cache_config_info{block_size=",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
}

/// The labels (if any) and value of the first sample of `name` in an exposition.
fn sample<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.lines().find_map(|line| {
        line.strip_prefix(name)
            .filter(|rest| rest.starts_with('{') || rest.starts_with(' '))
    })
}

/// The chat page and its files: content types, revalidation by ETag, no key needed; `--no-webui` removes them.
#[tokio::test]
async fn web_page_is_served_without_the_key_and_revalidates() {
    let mut setup = Setup::default();
    setup.config.api_key = Some("k1".into());
    let (app, _) = app(setup);
    for (path, kind) in [
        ("/", "text/html; charset=utf-8"),
        ("/webui/app.js", "text/javascript; charset=utf-8"),
        ("/webui/markdown.js", "text/javascript; charset=utf-8"),
        ("/webui/app.css", "text/css; charset=utf-8"),
    ] {
        let a = get(&app, path).await;
        assert_eq!(a.status, StatusCode::OK, "{path}");
        assert_eq!(a.headers["content-type"], kind, "{path}");
        assert_eq!(a.headers["cache-control"], "no-cache", "{path}");
        assert_eq!(a.headers["x-content-type-options"], "nosniff", "{path}");
        assert!(!a.text.is_empty(), "{path}");
        let etag = a.headers["etag"].to_str().unwrap().to_string();
        assert!(
            etag.len() == 18 && etag.starts_with('"') && etag.ends_with('"'),
            "{etag}"
        );
        for tags in [
            etag.clone(),
            format!("\"other\", W/{etag}"),
            "*".to_string(),
        ] {
            let req = Request::get(path)
                .header("if-none-match", tags.as_str())
                .body(Body::empty())
                .unwrap();
            let again = common::send(&app, req).await;
            assert_eq!(again.status, StatusCode::NOT_MODIFIED, "{path} {tags}");
            assert_eq!(
                (again.headers["etag"].to_str().unwrap(), again.text.as_str()),
                (etag.as_str(), "")
            );
        }
        let req = Request::get(path)
            .header("if-none-match", "\"0000000000000000\"")
            .body(Body::empty())
            .unwrap();
        assert_eq!(
            common::send(&app, req).await.status,
            StatusCode::OK,
            "{path}"
        );
    }
    let page = get(&app, "/").await;
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    assert!(page.text.contains("/webui/app.js") && page.text.contains("/webui/app.css"));
    assert_eq!(
        get(&app, "/v1/models").await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn no_webui_leaves_slash_unrouted() {
    let mut setup = Setup::default();
    setup.config.webui = false;
    let (app, _) = app(setup);
    for path in ["/", "/webui/app.js"] {
        let err = get(&app, path).await.error(StatusCode::NOT_FOUND);
        assert_eq!(err["code"], "unknown_url", "{path}");
    }
    assert_eq!(get(&app, "/health").await.status, StatusCode::OK);
}
