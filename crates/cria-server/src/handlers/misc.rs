//! `/v1/models`, `/health`, `/metrics` and the fallbacks.

use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::error::ApiError;
use crate::metrics::ModelGauges;
use crate::state::AppState;
use crate::types::{ModelCard, ModelList, ModelStatus};

/// Every served model; `status.value` says whether it is `loaded`, `loading` or `unloaded` (as
/// llama-server's router mode writes it).
pub async fn models(State(state): State<AppState>) -> Json<ModelList> {
    let data = state
        .models
        .sources()
        .iter()
        .enumerate()
        .map(|(i, source)| ModelCard {
            id: source.id.clone(),
            object: "model",
            created: state.started,
            owned_by: "cria",
            status: ModelStatus {
                value: state.models.status(i).as_str(),
            },
        })
        .collect();
    Json(ModelList {
        object: "list",
        data,
    })
}

/// 200 `{"status":"ok"}` while the server can take requests; 503 while the first model loads, once shutdown
/// has begun, and once an engine has failed for good (with the reason), so a load balancer stops sending
/// traffic.
pub async fn health(State(state): State<AppState>) -> Response {
    let unavailable =
        |body: serde_json::Value| (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
    if !state.models.is_started() {
        return unavailable(json!({"status": "loading model"}));
    }
    let loaded = state.models.loaded();
    if let Some(reason) = loaded.iter().find_map(|m| m.loaded.failure()) {
        return unavailable(json!({"status": "error", "error": reason}));
    }
    if loaded.iter().any(|m| !m.loaded.is_accepting()) {
        return unavailable(json!({"status": "shutting down"}));
    }
    Json(json!({"status": "ok"})).into_response()
}

pub async fn metrics(State(state): State<AppState>) -> Response {
    let loaded = state.models.loaded();
    let models: Vec<ModelGauges> = state
        .models
        .sources()
        .iter()
        .enumerate()
        .map(|(i, source)| {
            let held = loaded.iter().find(|m| m.index == i);
            ModelGauges {
                id: source.id.clone(),
                stats: held.and_then(|m| m.loaded.engine.as_ref().map(|e| e.stats())),
                loaded: held.is_some(),
            }
        })
        .collect();
    let (loads, unloads) = (
        state.models.loads.load(Ordering::Relaxed),
        state.models.unloads.load(Ordering::Relaxed),
    );
    let body = state.metrics.render(&models, loads, unloads);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

pub async fn fallback(method: Method, uri: Uri) -> ApiError {
    ApiError::unknown_route(method.as_str(), uri.path())
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::method_not_allowed()
}
