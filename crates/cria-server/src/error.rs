//! `ApiError`: every failure as OpenAI's error body with the matching HTTP status.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cria_engine::SubmitError;
use serde_json::json;

/// An error answer: `{"error": {"message", "type", "param", "code"}}`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{status}: {message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub kind: &'static str,
    pub param: Option<String>,
    pub code: Option<&'static str>,
    /// Seconds for a `Retry-After` header.
    pub retry_after: Option<u32>,
}

impl ApiError {
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            kind,
            param: None,
            code: None,
            retry_after: None,
        }
    }

    /// 400 for a malformed or out-of-range request field.
    pub fn invalid(param: &str, message: impl Into<String>) -> Self {
        ApiError {
            param: Some(param.to_string()),
            ..Self::new(StatusCode::BAD_REQUEST, "invalid_request_error", message)
        }
    }

    /// 400 for a body that is not the JSON expected.
    pub fn bad_json(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request_error", message)
    }

    /// 401 for a missing or wrong API key.
    pub fn unauthorized() -> Self {
        let e = Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "Incorrect or missing API key.",
        );
        ApiError {
            code: Some("invalid_api_key"),
            ..e
        }
    }

    /// 404 for an unknown route.
    pub fn unknown_route(method: &str, path: &str) -> Self {
        let e = Self::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            format!("Unknown request URL: {method} {path}"),
        );
        ApiError {
            code: Some("unknown_url"),
            ..e
        }
    }

    /// 405 for a known route asked with the wrong method.
    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid_request_error",
            "Method not allowed on this URL.",
        )
    }

    /// 404 for a model this server does not serve.
    pub fn unknown_model(model: &str) -> Self {
        let msg = format!("The model `{model}` does not exist or you do not have access to it.");
        ApiError {
            code: Some("model_not_found"),
            param: Some("model".into()),
            ..Self::new(StatusCode::NOT_FOUND, "invalid_request_error", msg)
        }
    }

    /// 413 for a body over the limit.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request_error",
            format!("The request body is over {limit} bytes."),
        )
    }

    /// 408 for a request body that stopped arriving (the connection is closed after the answer).
    pub fn body_timeout() -> Self {
        let e = Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "invalid_request_error",
            "The request body stopped arriving before it was complete.",
        );
        ApiError {
            code: Some("request_timeout"),
            ..e
        }
    }

    /// 503 for a request still running when the server's shutdown deadline passed.
    pub fn shutdown_deadline() -> Self {
        let e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "server_error",
            "The server shut down before this request finished (its shutdown deadline passed).",
        );
        ApiError {
            code: Some("shutting_down"),
            retry_after: Some(5),
            ..e
        }
    }

    /// 503 when the engine failed for good: the server is about to exit and be restarted.
    pub fn engine_failed(reason: &str) -> Self {
        let e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "server_error",
            format!("The engine failed and this server is stopping: {reason}"),
        );
        ApiError {
            code: Some("engine_failed"),
            retry_after: Some(5),
            ..e
        }
    }

    /// 503 for a connection over `--max-connections` (written by hand: it never reaches the router).
    pub fn too_many_connections(max: usize) -> Self {
        let e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "server_error",
            format!("The server has its maximum of {max} open connections; retry later."),
        );
        ApiError {
            code: Some("too_many_connections"),
            retry_after: Some(1),
            ..e
        }
    }

    /// 503 while the model loads.
    pub fn loading() -> Self {
        let e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "server_error",
            "The model is still loading.",
        );
        ApiError {
            code: Some("model_loading"),
            retry_after: Some(1),
            ..e
        }
    }

    /// 503 for a model that cannot be loaded now: it is over the memory budget on its own, or the models
    /// holding the room are all busy.
    pub fn no_room(message: impl Into<String>) -> Self {
        let e = Self::new(StatusCode::SERVICE_UNAVAILABLE, "server_error", message);
        ApiError {
            code: Some("model_does_not_fit"),
            retry_after: Some(5),
            ..e
        }
    }

    /// 500 for a model whose loading failed on this request.
    pub fn load_failed(model: &str, why: &str) -> Self {
        let e = Self::internal(format!("Loading the model `{model}` failed: {why}"));
        ApiError {
            code: Some("model_load_failed"),
            ..e
        }
    }

    /// 400 for a generation request to a model that only embeds.
    pub fn cannot_generate() -> Self {
        let e = Self::invalid(
            "model",
            "This model is an embedding model (an encoder): it cannot generate text. Use /v1/embeddings.",
        );
        ApiError {
            code: Some("model_cannot_generate"),
            ..e
        }
    }

    /// 500 for a failure that is the server's, not the client's.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", message)
    }

    /// The JSON body alone (also sent as an SSE event when a stream fails midway).
    pub fn body(&self) -> serde_json::Value {
        json!({"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}})
    }

    /// The message with the offending field in front, for the dialects whose errors have no `param`
    /// (Ollama, Anthropic).
    pub fn message_with_param(&self) -> String {
        match &self.param {
            Some(param) => format!("{param}: {}", self.message),
            None => self.message.clone(),
        }
    }

    /// This error's status and headers (Retry-After, Connection) around `body`: its own, or another
    /// dialect's shape of it.
    pub fn response_with_body(self, body: serde_json::Value) -> Response {
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == StatusCode::REQUEST_TIMEOUT {
            // The rest of the body may still trickle in: the connection is not reused.
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

impl From<SubmitError> for ApiError {
    fn from(e: SubmitError) -> Self {
        let message = e.to_string();
        match e {
            SubmitError::EmptyPrompt => ApiError::invalid("prompt", message),
            SubmitError::PromptTooLong { .. } => {
                let e = ApiError::invalid(
                    "messages",
                    format!("This model's maximum context length is exceeded: {message}."),
                );
                ApiError {
                    code: Some("context_length_exceeded"),
                    ..e
                }
            }
            SubmitError::QueueFull { .. } => {
                let e = Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limit_error", message);
                ApiError {
                    code: Some("queue_full"),
                    retry_after: Some(1),
                    ..e
                }
            }
            SubmitError::EngineFailed(reason) => ApiError::engine_failed(&reason),
            SubmitError::ShuttingDown => {
                let e = Self::new(StatusCode::SERVICE_UNAVAILABLE, "server_error", message);
                ApiError {
                    code: Some("shutting_down"),
                    retry_after: Some(5),
                    ..e
                }
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = self.body();
        self.response_with_body(body)
    }
}
