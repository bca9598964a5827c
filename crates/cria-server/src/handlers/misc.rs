//! `/v1/models`, `/health`, `/metrics` and the fallbacks.

use axum::Json;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::error::ApiError;
use crate::state::AppState;
use crate::types::{ModelCard, ModelList};

pub async fn models(State(state): State<AppState>) -> Json<ModelList> {
    let card = ModelCard {
        id: state.config.model_id.clone(),
        object: "model",
        created: state.started,
        owned_by: "cria",
    };
    Json(ModelList {
        object: "list",
        data: vec![card],
    })
}

/// 200 `{"status":"ok"}` while the server can take requests; 503 while the model loads, once shutdown has
/// begun, and once the engine has failed for good (with the reason), so a load balancer stops sending
/// traffic.
pub async fn health(State(state): State<AppState>) -> Response {
    let unavailable =
        |body: serde_json::Value| (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
    let Some(loaded) = state.loaded.get() else {
        return unavailable(json!({"status": "loading model"}));
    };
    if let Some(reason) = loaded.failure() {
        return unavailable(json!({"status": "error", "error": reason}));
    }
    if !loaded.is_accepting() {
        return unavailable(json!({"status": "shutting down"}));
    }
    Json(json!({"status": "ok"})).into_response()
}

pub async fn metrics(State(state): State<AppState>) -> Response {
    let stats = state
        .loaded
        .get()
        .and_then(|l| l.engine.as_ref().map(|e| e.stats()));
    let body = state.metrics.render(stats);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

pub async fn fallback(method: Method, uri: Uri) -> ApiError {
    ApiError::unknown_route(method.as_str(), uri.path())
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::method_not_allowed()
}
