//! Anthropic's Messages API over the engine: `POST /v1/messages` (whole or streamed as Anthropic's SSE
//! events) and `POST /v1/messages/count_tokens`. A thin translation: the request becomes chat turns and
//! the OpenAI path's generation parameters; errors take Anthropic's shape ([`AnthropicError`]).
//!
//! Tools (`tools`, `tool_choice`) render through the chat template as the OpenAI path's function tools do;
//! a parsed call becomes a `tool_use` block (streamed as its own content block with `input_json_delta`
//! deltas) and `stop_reason: "tool_use"`; `tool_result` blocks go back as the template's `tool` messages.

mod error;
mod stream;
mod tools;
mod types;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use cria_engine::FinishReason;
use serde_json::json;

pub use error::AnthropicError;
use error::Json;
use types::{MessageOut, MessagesRequest, Usage};

use crate::error::ApiError;
use crate::state::{AppState, Loaded};
use crate::tools::{ChatSetup, ReasoningFormat};
use crate::types::{CommonFields, Stop};
use crate::validate::{self, GenParams};
use crate::{auth, generate};

/// The routes, behind the API key (`x-api-key` or `Authorization: Bearer`) with Anthropic's 401.
pub fn routes(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/v1/messages", post(messages))
        .route("/v1/messages/count_tokens", post(count_tokens))
        .route_layer(middleware::from_fn_with_state(state, require_key))
}

async fn require_key(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if auth::key_matches(&state, req.headers()) {
        next.run(req).await
    } else {
        let e = ApiError::unauthorized();
        AnthropicError(ApiError {
            message: "invalid x-api-key".into(),
            ..e
        })
        .into_response()
    }
}

pub async fn messages(
    State(state): State<AppState>,
    Json(req): Json<MessagesRequest>,
) -> Result<Response, AnthropicError> {
    let loaded = state.model(req.model.as_deref()).await?;
    loaded.engine()?;
    let mut params = params(&req, loaded.frontend.vocab_size())?;
    let setup = prepare(&loaded, &req)?;
    if let Some(grammar) = setup.grammar {
        params.grammar = Some((grammar, "tools"));
    }
    let input_tokens = setup.prompt.len();
    let mut choices = generate::submit(
        &state,
        &loaded,
        vec![setup.prompt],
        &params,
        None,
        usize::MAX,
    )?;
    let choice = choices
        .pop()
        .ok_or_else(|| ApiError::internal("no choice was submitted"))?;
    let head = MessageOut {
        id: generate::response_id("msg").replacen('-', "_", 1),
        kind: "message",
        role: "assistant",
        content: Vec::new(),
        model: loaded.id().to_string(),
        stop_reason: None,
        stop_sequence: None,
        usage: Usage {
            input_tokens,
            output_tokens: 0,
        },
    };
    if params.stream {
        return Ok(stream::sse(&state, head, params.stop, choice, setup.syntax).into_response());
    }
    let done = generate::collect_all(&state, vec![choice]).await?;
    let done = done
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::internal("no choice was collected"))?;
    let (content, calls) = tools::output_blocks(done.text, setup.syntax);
    let (stop_reason, stop_sequence) = stop_reason(done.finish, &params.stop, calls);
    Ok(axum::Json(MessageOut {
        content,
        stop_reason: Some(stop_reason),
        stop_sequence,
        usage: Usage {
            input_tokens,
            output_tokens: done.completion_tokens,
        },
        ..head
    })
    .into_response())
}

pub async fn count_tokens(
    State(state): State<AppState>,
    Json(req): Json<MessagesRequest>,
) -> Result<Response, AnthropicError> {
    let loaded = state.model(req.model.as_deref()).await?;
    let setup = prepare(&loaded, &req)?;
    Ok(axum::Json(json!({"input_tokens": setup.prompt.len()})).into_response())
}

/// The conversation and tools through the model's chat template: the prompt, the tool-call grammar and
/// how to read the output. `<think>` blocks are left in the text (Anthropic's `thinking` blocks are not
/// produced). A last assistant message of text is a prefill: the answer continues it (llama-server's way:
/// the turns before it with the generation prompt, then its text).
fn prepare(loaded: &Loaded, req: &MessagesRequest) -> Result<ChatSetup, ApiError> {
    let tool_request = tools::request(req)?;
    let mut messages = tools::template_messages(req)?;
    let prefill = match messages.last() {
        Some(last)
            if messages.len() > 1
                && last["role"] == "assistant"
                && last.get("tool_calls").is_none() =>
        {
            let text = last["content"].as_str().unwrap_or_default().to_string();
            messages.pop();
            Some(text)
        }
        _ => None,
    };
    let mut setup = crate::tools::prepare(
        loaded.frontend.as_ref(),
        messages,
        tool_request.as_ref(),
        &serde_json::Map::new(),
        ReasoningFormat::Inline,
    )?;
    if let Some(prefill) = prefill.filter(|p| !p.is_empty()) {
        let frontend = &loaded.frontend;
        setup.prompt = if setup.text.is_empty() {
            [setup.prompt, frontend.text_prompt(&prefill)].concat()
        } else {
            frontend.text_prompt(&format!("{}{prefill}", setup.text))
        };
    }
    Ok(setup)
}

/// Anthropic's `stop_reason` and `stop_sequence` for how generation ended (`tool_use` when the model
/// ended its turn after calling tools).
pub fn stop_reason(
    finish: FinishReason,
    stops: &[String],
    calls: usize,
) -> (&'static str, Option<String>) {
    match finish {
        FinishReason::Stop if calls > 0 => ("tool_use", None),
        FinishReason::Stop => ("end_turn", None),
        FinishReason::StopSequence(i) => ("stop_sequence", stops.get(i).cloned()),
        FinishReason::Length => ("max_tokens", None),
    }
}

/// The request's sampling and limits, checked as the OpenAI path checks them (llama.cpp's defaults for
/// what is not given); `max_tokens` is required.
fn params(req: &MessagesRequest, vocab_size: usize) -> Result<GenParams, ApiError> {
    let max_tokens = req
        .max_tokens
        .ok_or_else(|| ApiError::invalid("max_tokens", "Field required"))?;
    let fields = CommonFields {
        temperature: req.temperature,
        top_p: req.top_p,
        top_k: req.top_k,
        stop: req.stop_sequences.clone().map(Stop::Many),
        stream: req.stream,
        ..CommonFields::default()
    };
    validate::common(&fields, Some(max_tokens), vocab_size).map_err(|e| match e.param.as_deref() {
        Some("stop") => ApiError {
            param: Some("stop_sequences".into()),
            ..e
        },
        _ => e,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_reasons_follow_anthropic() {
        let stops = vec!["END".to_string(), "\n\n".to_string()];
        assert_eq!(
            stop_reason(FinishReason::Stop, &stops, 0),
            ("end_turn", None)
        );
        assert_eq!(
            stop_reason(FinishReason::Stop, &stops, 2),
            ("tool_use", None)
        );
        assert_eq!(
            stop_reason(FinishReason::Length, &stops, 1),
            ("max_tokens", None)
        );
        assert_eq!(
            stop_reason(FinishReason::StopSequence(1), &stops, 0),
            ("stop_sequence", Some("\n\n".to_string()))
        );
    }
}
