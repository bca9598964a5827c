//! `/v1/embeddings` through the router on a fake embedding model, and an embedding-only (encoder) server
//! refusing generation.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use base64::Engine as _;
use cria_engine::{EmbedBackend, Embedder, EmbedderConfig, EngineConfig, EngineError};
use cria_server::{Loaded, ModelInfo, ServerConfig, Shared};
use serde_json::Value;

use common::{ByteVocab, MODEL, get, post, start_engine};

/// `[len, first id, 1]` scaled to unit length.
struct FakeEmbed;

impl EmbedBackend for FakeEmbed {
    fn n_embd(&self) -> usize {
        3
    }

    fn embed(&mut self, ids: &[u32]) -> Result<Vec<f32>, EngineError> {
        Ok(expected(ids))
    }
}

fn expected(ids: &[u32]) -> Vec<f32> {
    let v = [ids.len() as f32, ids[0] as f32, 1.0];
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter().map(|x| x / norm).collect()
}

fn embedder() -> Arc<Embedder> {
    let config = EmbedderConfig {
        max_tokens: 16,
        max_queue: 4,
    };
    Arc::new(Embedder::start(config, || Ok(FakeEmbed)).unwrap())
}

/// A server whose model generates (`generates`) or only embeds, with embeddings on or off.
fn app(generates: bool, embeddings: bool) -> Router {
    let engine = generates.then(|| start_engine(EngineConfig::default(), Duration::ZERO));
    let loaded = Loaded {
        engine,
        frontend: Arc::new(ByteVocab::new()),
        embedder: if embeddings {
            Ok(embedder())
        } else {
            Err("no pooling: start with --pooling".into())
        },
        info: ModelInfo::default(),
    };
    cria_server::router(Shared::with_loaded(ServerConfig::default(), MODEL, loaded))
}

fn vector(item: &Value) -> Vec<f32> {
    item["embedding"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

#[tokio::test]
async fn texts_and_token_ids_give_one_vector_each_with_usage() {
    let app = app(true, true);
    let r = post(
        &app,
        "/v1/embeddings",
        r#"{"input": "abc", "model": "fake-model"}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let body = r.json();
    assert_eq!(body["object"], "list");
    assert_eq!(body["model"], MODEL);
    assert_eq!(body["data"][0]["object"], "embedding");
    assert_eq!(vector(&body["data"][0]), expected(&[97, 98, 99]));
    assert_eq!(body["usage"]["prompt_tokens"], 3);
    assert_eq!(body["usage"]["total_tokens"], 3);

    let r = post(&app, "/v1/embeddings", r#"{"input": ["a", "xyzw"]}"#).await;
    let body = r.json();
    assert_eq!(body["data"][1]["index"], 1);
    assert_eq!(
        vector(&body["data"][1]),
        expected(b"xyzw".map(u32::from).as_slice())
    );
    assert_eq!(body["usage"]["prompt_tokens"], 5);

    let r = post(&app, "/v1/embeddings", r#"{"input": [5, 6]}"#).await;
    assert_eq!(vector(&r.json()["data"][0]), expected(&[5, 6]));
    let r = post(&app, "/v1/embeddings", r#"{"input": [[5], [7, 8, 9]]}"#).await;
    let body = r.json();
    assert_eq!(vector(&body["data"][0]), expected(&[5]));
    assert_eq!(vector(&body["data"][1]), expected(&[7, 8, 9]));
}

#[tokio::test]
async fn base64_is_the_little_endian_floats() {
    let app = app(true, true);
    let body = r#"{"input": "abc", "encoding_format": "base64", "dimensions": 3}"#;
    let r = post(&app, "/v1/embeddings", body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let text = r.json()["data"][0]["embedding"]
        .as_str()
        .unwrap()
        .to_string();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap();
    let floats: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    assert_eq!(floats, expected(&[97, 98, 99]));
}

#[tokio::test]
async fn bad_inputs_are_400_naming_the_field() {
    let app = app(true, true);
    let cases = [
        (r#"{"input": "abc", "dimensions": 2}"#, "dimensions"),
        (
            r#"{"input": "abc", "encoding_format": "int8"}"#,
            "encoding_format",
        ),
        (r#"{"input": []}"#, "input"),
        (r#"{"input": ""}"#, "input"),
        (r#"{"input": [300]}"#, "input"),
        (r#"{"input": "seventeen letters"}"#, "input"),
    ];
    for (body, param) in cases {
        let r = post(&app, "/v1/embeddings", body).await;
        let err = r.error(StatusCode::BAD_REQUEST);
        assert_eq!(err["param"], param, "{body}: {err}");
    }
    let r = post(
        &app,
        "/v1/embeddings",
        r#"{"input": "a", "model": "other"}"#,
    )
    .await;
    r.error(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_model_without_pooling_says_how_to_serve_embeddings() {
    let app = app(true, false);
    let r = post(&app, "/v1/embeddings", r#"{"input": "abc"}"#).await;
    let err = r.error(StatusCode::BAD_REQUEST);
    assert!(
        err["message"].as_str().unwrap().contains("--pooling"),
        "{err}"
    );
}

#[tokio::test]
async fn an_embedding_only_model_refuses_generation_and_is_healthy() {
    let app = app(false, true);
    for (path, body) in [
        (
            "/v1/chat/completions",
            r#"{"messages": [{"role": "user", "content": "hi"}]}"#,
        ),
        ("/v1/completions", r#"{"prompt": "hi"}"#),
    ] {
        let r = post(&app, path, body).await;
        let err = r.error(StatusCode::BAD_REQUEST);
        assert_eq!(err["code"], "model_cannot_generate", "{path}");
    }
    assert_eq!(get(&app, "/health").await.status, StatusCode::OK);
    let r = post(&app, "/v1/embeddings", r#"{"input": "abc"}"#).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(get(&app, "/metrics").await.status, StatusCode::OK);
}
