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

/// 200 `{"status":"ok"}` once the model is loaded, 503 before.
pub async fn health(State(state): State<AppState>) -> Response {
    if state.loaded.get().is_some() {
        Json(json!({"status": "ok"})).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "loading model"})),
        )
            .into_response()
    }
}

pub async fn metrics(State(state): State<AppState>) -> Response {
    let stats = state.loaded.get().map(|l| l.engine.stats());
    let body = state.metrics.render(stats);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

pub async fn fallback(method: Method, uri: Uri) -> ApiError {
    ApiError::unknown_route(method.as_str(), uri.path())
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::method_not_allowed()
}
