//! Middleware: the API key check (constant time) and the request counter.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::state::AppState;

/// Lets a request through only with `Authorization: Bearer <key>` when a key is configured.
pub async fn require_key(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if key_matches(&state, req.headers()) {
        next.run(req).await
    } else {
        ApiError::unauthorized().into_response()
    }
}

/// True when no key is configured, or the request carries it as `Authorization: Bearer <key>` or
/// `x-api-key: <key>` (Anthropic's header), compared in constant time.
pub fn key_matches(state: &AppState, headers: &HeaderMap) -> bool {
    let Some(key) = state.config.api_key.as_deref() else {
        return true;
    };
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token);
    let x_api_key = headers.get("x-api-key").and_then(|v| v.to_str().ok());
    [bearer, x_api_key]
        .into_iter()
        .flatten()
        .any(|given| bool::from(given.as_bytes().ct_eq(key.as_bytes())))
}

/// The token of an `Authorization: Bearer <token>` value; the scheme is case-insensitive (RFC 9110 11.1).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim_start_matches(' '))
}

/// The routes counted by name in `cria_requests_total` (others count as `other`).
const ENDPOINTS: &[&str] = &[
    "/v1/chat/completions",
    "/v1/completions",
    "/v1/embeddings",
    "/v1/models",
    "/v1/messages",
    "/v1/messages/count_tokens",
    "/api/chat",
    "/api/generate",
    "/api/embed",
    "/api/embeddings",
    "/api/tags",
    "/api/show",
    "/api/ps",
    "/api/version",
    "/health",
    "/metrics",
];

/// Counts every response by endpoint and status.
pub async fn count_requests(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let endpoint = if ENDPOINTS.contains(&path) {
        path.to_string()
    } else {
        "other".to_string()
    };
    let response = next.run(req).await;
    state
        .metrics
        .requests
        .with_label_values(&[endpoint.as_str(), response.status().as_str()])
        .inc();
    response
}

#[cfg(test)]
mod tests {
    use super::bearer_token;

    /// Issue 18: `bearer` in lower case was refused.
    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        for value in ["Bearer k1", "bearer k1", "BEARER k1", "bEaReR  k1"] {
            assert_eq!(bearer_token(value), Some("k1"), "{value:?}");
        }
        for value in ["Basic k1", "Bearerk1", "k1", ""] {
            assert_ne!(bearer_token(value), Some("k1"), "{value:?}");
        }
    }
}
