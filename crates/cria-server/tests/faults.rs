//! Issue 18: a panic in the engine fails only the requests of its step (a 500 in the OpenAI shape, an error
//! event and `[DONE]` on a stream) and the server goes on; an engine that cannot go on turns `/health` 503.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use axum::http::StatusCode;
use common::{Setup, app, get, post};
use cria_engine::{EngineConfig, FaultPlan};
use serde_json::json;

fn faulty(at: u64, repeat: bool, max_consecutive_faults: usize) -> Setup {
    Setup {
        engine: EngineConfig {
            ctx: 512,
            parallel: 1,
            fault: Some(FaultPlan { at, repeat }),
            max_consecutive_faults,
            ..EngineConfig::default()
        },
        ..Setup::default()
    }
}

fn completion(stream: bool) -> String {
    json!({"prompt": "hello", "max_tokens": 8, "stream": stream}).to_string()
}

#[tokio::test]
async fn a_panic_in_a_step_is_a_500_for_its_request_and_the_next_one_is_served() {
    let (app, engine) = app(faulty(2, false, 3));
    let failed = post(&app, "/v1/completions", &completion(false)).await;
    let error = failed.error(StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("injected fault at step 2")
    );
    let served = post(&app, "/v1/completions", &completion(false)).await;
    assert_eq!(served.status, StatusCode::OK, "{}", served.text);
    assert_eq!(get(&app, "/health").await.json(), json!({"status": "ok"}));
    let engine = engine.unwrap();
    for _ in 0..200 {
        if engine.stats().running == 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!(
        "a sequence is still counted as running: {:?}",
        engine.stats()
    );
}

#[tokio::test]
async fn a_stream_hit_by_a_panic_ends_with_an_error_event_and_done() {
    let (app, _) = app(faulty(3, false, 3));
    let events = post(&app, "/v1/completions", &completion(true))
        .await
        .events();
    assert_eq!(
        events.last().map(String::as_str),
        Some("[DONE]"),
        "{events:?}"
    );
    let error: serde_json::Value = serde_json::from_str(&events[events.len() - 2]).unwrap();
    assert_eq!(error["error"]["type"], "server_error", "{error}");
    let next = post(&app, "/v1/completions", &completion(true))
        .await
        .events();
    assert!(
        next.iter()
            .any(|e| e.contains("\"finish_reason\":\"length\"")),
        "{next:?}"
    );
}

/// The zombie of issue 18: a dead engine answered `/health` 200 and kept its running gauge at 1.
#[tokio::test]
async fn an_engine_that_cannot_go_on_turns_health_503() {
    let (app, engine) = app(faulty(1, true, 1));
    post(&app, "/v1/completions", &completion(false))
        .await
        .error(StatusCode::INTERNAL_SERVER_ERROR);
    let engine = engine.unwrap();
    for _ in 0..200 {
        if engine.failure().is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let health = get(&app, "/health").await;
    assert_eq!(health.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(health.json()["status"], "error");
    let refused = post(&app, "/v1/completions", &completion(false)).await;
    assert_eq!(
        refused.error(StatusCode::SERVICE_UNAVAILABLE)["code"],
        "engine_failed"
    );
    let metrics = get(&app, "/metrics").await.text;
    assert!(metrics.contains("cria_running_sequences 0"), "{metrics}");
}
