//! Several models behind one router (fake models): listing, picking by name in each dialect, unknown
//! names in each dialect's shape, loading on first use, LRU unloading, `/api/ps` and the per-model metrics.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use common::{ByteVocab, get, post, start_engine};
use cria_engine::EngineConfig;
use cria_server::{LoadLimits, Loaded, ModelSource, ServerConfig, Shared};
use serde_json::{Value, json};

const IDS: [&str; 3] = ["alpha", "beta", "gamma"];

/// Three fake models (each load starts a fresh engine and is counted); the first is loaded, as `serve` does
/// at start.
async fn app(limits: LoadLimits) -> (Router, Arc<AtomicUsize>) {
    let loads = Arc::new(AtomicUsize::new(0));
    let sources = IDS
        .iter()
        .map(|id| {
            let loads = Arc::clone(&loads);
            let mut source = ModelSource::new(
                *id,
                Arc::new(move || {
                    loads.fetch_add(1, Ordering::SeqCst);
                    let config = EngineConfig {
                        ctx: 512,
                        ..EngineConfig::default()
                    };
                    let engine = start_engine(config, Duration::ZERO);
                    Ok(Loaded::generator(engine, Arc::new(ByteVocab::new())))
                }),
            );
            source.info.file_size = 1000;
            source.cost = 1000;
            source
        })
        .collect();
    let config = ServerConfig {
        limits,
        ..ServerConfig::default()
    };
    let state = Shared::new(config, sources);
    drop(state.models.acquire(0).await.unwrap());
    state.models.mark_started();
    (cria_server::router(state), loads)
}

fn one_loaded() -> LoadLimits {
    LoadLimits {
        max_loaded: Some(1),
        memory_budget: None,
    }
}

async fn chat(app: &Router, model: Option<&str>) -> common::Answer {
    let mut body = json!({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 3});
    if let Some(m) = model {
        body["model"] = json!(m);
    }
    post(app, "/v1/chat/completions", &body.to_string()).await
}

fn statuses(models: &Value) -> Vec<(String, String)> {
    models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let id = m["id"].as_str().unwrap().to_string();
            (id, m["status"]["value"].as_str().unwrap().to_string())
        })
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[tokio::test]
async fn every_model_is_listed_and_each_answers_by_name() {
    let (app, loads) = app(LoadLimits::default()).await;
    let models = get(&app, "/v1/models").await.json();
    assert_eq!(
        statuses(&models),
        pairs(&[
            ("alpha", "loaded"),
            ("beta", "unloaded"),
            ("gamma", "unloaded")
        ])
    );
    let tags = get(&app, "/api/tags").await.json();
    let names: Vec<&str> = tags["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alpha:latest", "beta:latest", "gamma:latest"]);
    // No model named: the first one.
    assert_eq!(chat(&app, None).await.json()["model"], "alpha");
    for id in ["beta", "gamma"] {
        let a = chat(&app, Some(id)).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
        assert_eq!(a.json()["model"], id);
    }
    assert_eq!(loads.load(Ordering::SeqCst), 3);
    // Loaded ones are not loaded again.
    chat(&app, Some("beta")).await;
    assert_eq!(loads.load(Ordering::SeqCst), 3);
    let anthropic = post(
        &app,
        "/v1/messages",
        &json!({"model": "gamma", "max_tokens": 2, "messages": [{"role": "user", "content": "hi"}]})
            .to_string(),
    )
    .await;
    assert_eq!(anthropic.json()["model"], "gamma");
    let ollama = post(
        &app,
        "/api/chat",
        &json!({"model": "beta:latest", "stream": false, "options": {"num_predict": 2},
                "messages": [{"role": "user", "content": "hi"}]})
        .to_string(),
    )
    .await;
    assert_eq!(ollama.json()["model"], "beta");
}

#[tokio::test]
async fn an_unknown_model_is_each_dialects_404() {
    let (app, _) = app(LoadLimits::default()).await;
    let openai = chat(&app, Some("delta")).await;
    assert_eq!(
        openai.error(StatusCode::NOT_FOUND)["code"],
        "model_not_found"
    );
    let body =
        json!({"model": "delta", "max_tokens": 2, "messages": [{"role": "user", "content": "hi"}]});
    let anthropic = post(&app, "/v1/messages", &body.to_string()).await;
    assert_eq!(anthropic.status, StatusCode::NOT_FOUND);
    assert_eq!(anthropic.json()["error"]["type"], "not_found_error");
    let ollama = post(&app, "/api/chat", &body.to_string()).await;
    assert_eq!(
        (ollama.status, ollama.json()),
        (
            StatusCode::NOT_FOUND,
            json!({"error": "model 'delta' not found"})
        )
    );
    let show = post(&app, "/api/show", r#"{"model": "delta"}"#).await;
    assert_eq!(show.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn past_max_loaded_the_least_recently_used_model_is_unloaded() {
    let (app, loads) = app(one_loaded()).await;
    assert_eq!(chat(&app, Some("beta")).await.status, StatusCode::OK);
    let models = get(&app, "/v1/models").await.json();
    assert_eq!(
        statuses(&models),
        pairs(&[
            ("alpha", "unloaded"),
            ("beta", "loaded"),
            ("gamma", "unloaded")
        ])
    );
    let ps = get(&app, "/api/ps").await.json();
    let held: Vec<&str> = ps["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(held, ["beta:latest"]);
    assert_eq!(ps["models"][0]["size"], 1000);
    // Back to alpha: loaded again.
    assert_eq!(chat(&app, Some("alpha")).await.status, StatusCode::OK);
    assert_eq!(loads.load(Ordering::SeqCst), 3);
    let metrics = get(&app, "/metrics").await.text;
    for line in [
        "cria_model_loaded{model=\"alpha\"} 1",
        "cria_model_loaded{model=\"beta\"} 0",
        "cria_model_loads_total 3",
        "cria_model_unloads_total 2",
    ] {
        assert!(metrics.contains(line), "{line} not in\n{metrics}");
    }
}

#[tokio::test]
async fn a_model_that_cannot_fit_beside_a_busy_one_is_a_503() {
    let (app, _) = app(one_loaded()).await;
    // A stream that stays open holds alpha (ignore_eos and a large max_tokens keep it generating).
    let body = json!({"model": "alpha", "prompt": "x", "max_tokens": 400, "ignore_eos": true,
                      "stream": true});
    let req = axum::http::Request::post("/v1/completions")
        .header("content-type", "application/json")
        .body(axum::body::Body::from(body.to_string()))
        .unwrap();
    use tower::ServiceExt;
    let response = app.clone().oneshot(req).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let refused = chat(&app, Some("beta")).await;
    let err = refused.error(StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(err["code"], "model_does_not_fit");
    let anthropic = post(
        &app,
        "/v1/messages",
        &json!({"model": "beta", "max_tokens": 2, "messages": [{"role": "user", "content": "hi"}]})
            .to_string(),
    )
    .await;
    assert_eq!(anthropic.json()["error"]["type"], "overloaded_error");
    // Once the stream is gone, beta loads in alpha's place.
    drop(response);
    let a = chat(&app, Some("beta")).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
}

#[tokio::test]
async fn the_memory_budget_unloads_until_the_new_model_fits() {
    let (app, _) = app(LoadLimits {
        max_loaded: None,
        memory_budget: Some(2500),
    })
    .await;
    assert_eq!(chat(&app, Some("beta")).await.status, StatusCode::OK);
    // 3 x 1000 > 2500: alpha (least recently used) makes way.
    assert_eq!(chat(&app, Some("gamma")).await.status, StatusCode::OK);
    let models = get(&app, "/v1/models").await.json();
    assert_eq!(
        statuses(&models),
        pairs(&[
            ("alpha", "unloaded"),
            ("beta", "loaded"),
            ("gamma", "loaded")
        ])
    );
}
