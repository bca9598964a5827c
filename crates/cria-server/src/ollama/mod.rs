//! Ollama's API over the engine, a thin translation: `/api/chat` and `/api/generate` (streamed as NDJSON
//! by default, whole with `"stream": false`), `/api/embed` and the older `/api/embeddings`, `/api/tags`,
//! `/api/show`, `/api/ps`, `/api/version`. `options` map to the OpenAI path's sampling fields, `format`
//! (`"json"` or a schema) to its structured output. Errors are Ollama's `{"error": "..."}` with the status
//! the same failure gets on the OpenAI routes.

mod calls;
mod chat;
mod embed;
mod info;
mod types;

pub use info::rfc3339;

use axum::Router;
use axum::extract::{FromRequest, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::auth;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::models::Lease;
use crate::state::{AppState, Shared};
use crate::types::{CommonFields, ResponseFormat, Stop};
use crate::validate::{self, GenParams};
use types::Options;

/// The routes, behind the API key (`Authorization: Bearer`) when one is set.
pub fn routes(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/api/chat", post(chat::chat))
        .route("/api/generate", post(chat::generate))
        .route("/api/embed", post(embed::embed))
        .route("/api/embeddings", post(embed::legacy_embeddings))
        .route("/api/tags", get(info::tags))
        .route("/api/show", post(info::show))
        .route("/api/ps", get(info::ps))
        .route("/api/version", get(info::version))
        .route_layer(middleware::from_fn_with_state(state, require_key))
}

async fn require_key(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if auth::key_matches(&state, req.headers()) {
        next.run(req).await
    } else {
        let e = ApiError::unauthorized();
        OllamaError(ApiError {
            message: "unauthorized".into(),
            ..e
        })
        .into_response()
    }
}

/// An [`ApiError`] answered in Ollama's shape.
#[derive(Debug)]
pub struct OllamaError(pub ApiError);

impl From<ApiError> for OllamaError {
    fn from(e: ApiError) -> Self {
        OllamaError(e)
    }
}

impl OllamaError {
    pub fn body(&self) -> Value {
        let message = self.0.message_with_param();
        json!({ "error": message })
    }
}

impl IntoResponse for OllamaError {
    fn into_response(self) -> Response {
        let body = self.body();
        self.0.response_with_body(body)
    }
}

/// A JSON body whose rejections are Ollama-shaped.
pub struct Json<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for Json<T> {
    type Rejection = OllamaError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let ApiJson(value) = ApiJson::<T>::from_request(req, state).await?;
        Ok(Json(value))
    }
}

/// The name `/api/tags` lists: the model id with Ollama's `:latest` tag unless it has a tag.
pub fn tagged_name(id: &str) -> String {
    if id.contains(':') {
        id.to_string()
    } else {
        format!("{id}:latest")
    }
}

/// The model a request names (absent or `""`: the first served), loaded if needed; an unknown one is a 404
/// in Ollama's words.
async fn model(state: &Shared, name: Option<&str>) -> Result<Lease, ApiError> {
    find(state, name)?;
    state.model(name).await
}

/// The index of the model `name` names, or Ollama's 404.
fn find(state: &Shared, name: Option<&str>) -> Result<usize, ApiError> {
    state.find_model(name).map_err(|e| ApiError {
        message: format!("model '{}' not found", name.unwrap_or_default()),
        param: None,
        ..e
    })
}

/// `options`, `format` and `stream` as the OpenAI path's checked parameters (llama.cpp's defaults for what
/// is not given). Errors name Ollama's fields.
fn params(
    options: &Options,
    format: Option<&Value>,
    stream: bool,
    vocab: usize,
) -> Result<GenParams, ApiError> {
    let (response_format, json_schema) = format_fields(format)?;
    let fields = CommonFields {
        temperature: options.temperature,
        top_p: options.top_p,
        top_k: options.top_k,
        min_p: options.min_p,
        seed: options.seed,
        stop: options.stop.clone().map(Stop::Many),
        repetition_penalty: options.repeat_penalty,
        presence_penalty: options.presence_penalty,
        frequency_penalty: options.frequency_penalty,
        stream: Some(stream),
        response_format,
        json_schema,
        ..CommonFields::default()
    };
    let max_tokens = options.num_predict.filter(|&n| n > 0);
    validate::common(&fields, max_tokens, vocab).map_err(|e| {
        let param = match e.param.as_deref() {
            Some("response_format" | "json_schema") => "format",
            Some("max_tokens") => "options.num_predict",
            Some("repetition_penalty") => "options.repeat_penalty",
            Some(p) => {
                return ApiError {
                    param: Some(format!("options.{p}")),
                    ..e
                };
            }
            None => return e,
        };
        ApiError {
            param: Some(param.into()),
            ..e
        }
    })
}

/// `format`: `"json"` (any JSON object), a schema object, or `""` / absent (free text).
fn format_fields(
    format: Option<&Value>,
) -> Result<(Option<ResponseFormat>, Option<Value>), ApiError> {
    match format {
        None | Some(Value::Null) => Ok((None, None)),
        Some(Value::String(s)) if s.is_empty() => Ok((None, None)),
        Some(Value::String(s)) if s == "json" => Ok((
            Some(ResponseFormat {
                kind: "json_object".into(),
                json_schema: None,
                schema: None,
            }),
            None,
        )),
        Some(schema @ Value::Object(_)) => Ok((None, Some(schema.clone()))),
        Some(other) => Err(ApiError::invalid(
            "format",
            format!("format must be \"json\" or a JSON schema object, got {other}"),
        )),
    }
}

/// 400 for a request field Cria cannot honour yet (rather than ignoring it).
fn refuse_if(present: bool, param: &str, message: &str) -> Result<(), ApiError> {
    if present {
        Err(ApiError::invalid(param, message))
    } else {
        Ok(())
    }
}
