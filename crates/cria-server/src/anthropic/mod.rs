//! Anthropic's Messages API over the engine: `POST /v1/messages` (whole or streamed as Anthropic's SSE
//! events) and `POST /v1/messages/count_tokens`. A thin translation: the request becomes chat turns and
//! the OpenAI path's generation parameters; errors take Anthropic's shape ([`AnthropicError`]).
//!
//! `tool_use`: tools are refused with a 400 for now. When tool calling lands in the chat path, `tools`
//! render through the template as there and a parsed call becomes an `OutBlock::ToolUse` (and a stream's
//! second content block) with `stop_reason: "tool_use"`.

mod error;
mod stream;
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
use types::{Block, Content, MessageOut, MessagesRequest, OutBlock, Usage};

use crate::error::ApiError;
use crate::frontend::ChatTurn;
use crate::state::AppState;
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
    state.check_model(req.model.as_deref())?;
    let loaded = state.ready()?;
    loaded.engine()?;
    let params = params(&req, loaded.frontend.vocab_size())?;
    let prompt = prompt(&state, &req)?;
    let input_tokens = prompt.len();
    let mut choices = generate::submit(&state, loaded, vec![prompt], &params, None, usize::MAX)?;
    let choice = choices
        .pop()
        .ok_or_else(|| ApiError::internal("no choice was submitted"))?;
    let head = MessageOut {
        id: generate::response_id("msg").replacen('-', "_", 1),
        kind: "message",
        role: "assistant",
        content: Vec::new(),
        model: state.config.model_id.clone(),
        stop_reason: None,
        stop_sequence: None,
        usage: Usage {
            input_tokens,
            output_tokens: 0,
        },
    };
    if params.stream {
        return Ok(stream::sse(&state, head, params.stop, choice).into_response());
    }
    let done = generate::collect_all(&state, vec![choice]).await?;
    let done = done
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::internal("no choice was collected"))?;
    let (stop_reason, stop_sequence) = stop_reason(done.finish, &params.stop);
    Ok(axum::Json(MessageOut {
        content: vec![OutBlock::Text { text: done.text }],
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
    state.check_model(req.model.as_deref())?;
    let prompt = prompt(&state, &req)?;
    Ok(axum::Json(json!({"input_tokens": prompt.len()})).into_response())
}

/// Anthropic's `stop_reason` and `stop_sequence` for how generation ended.
pub fn stop_reason(finish: FinishReason, stops: &[String]) -> (&'static str, Option<String>) {
    match finish {
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
    if req.tools.as_ref().is_some_and(|t| !t.is_empty()) {
        return Err(ApiError::invalid(
            "tools",
            "Tool use is not supported by this server yet.",
        ));
    }
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

/// The conversation through the model's chat template, tokenized.
fn prompt(state: &AppState, req: &MessagesRequest) -> Result<Vec<u32>, ApiError> {
    let loaded = state.ready()?;
    let turns = turns(req)?;
    loaded
        .frontend
        .chat_prompt(&turns)
        .map_err(|e| ApiError::invalid("messages", e))
}

/// `system` then the messages, as chat turns.
fn turns(req: &MessagesRequest) -> Result<Vec<ChatTurn>, ApiError> {
    if req.messages.is_empty() {
        return Err(ApiError::invalid(
            "messages",
            "messages: at least one message is required",
        ));
    }
    let mut turns = Vec::with_capacity(req.messages.len() + 1);
    if let Some(system) = &req.system {
        turns.push(ChatTurn {
            role: "system".into(),
            content: text(system, "system", "\n")?,
        });
    }
    for (i, m) in req.messages.iter().enumerate() {
        if m.role != "user" && m.role != "assistant" {
            return Err(ApiError::invalid(
                &format!("messages.{i}.role"),
                format!("role must be user or assistant, got {:?}", m.role),
            ));
        }
        turns.push(ChatTurn {
            role: m.role.clone(),
            content: text(&m.content, &format!("messages.{i}.content"), "")?,
        });
    }
    Ok(turns)
}

/// A content's text: a string, or its text blocks joined by `sep`.
fn text(content: &Content, param: &str, sep: &str) -> Result<String, ApiError> {
    match content {
        Content::Text(t) => Ok(t.clone()),
        Content::Blocks(blocks) => blocks
            .iter()
            .map(|b| block_text(b, param))
            .collect::<Result<Vec<_>, _>>()
            .map(|texts| texts.join(sep)),
    }
}

fn block_text<'a>(block: &'a Block, param: &str) -> Result<&'a str, ApiError> {
    match (block.kind.as_str(), &block.text) {
        ("text", Some(t)) => Ok(t),
        ("text", None) => Err(ApiError::invalid(param, "a text block needs its text")),
        (kind, _) => Err(ApiError::invalid(
            param,
            format!("content blocks of type {kind:?} are not supported by this server (text only)"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_reasons_follow_anthropic() {
        let stops = vec!["END".to_string(), "\n\n".to_string()];
        assert_eq!(stop_reason(FinishReason::Stop, &stops), ("end_turn", None));
        assert_eq!(
            stop_reason(FinishReason::Length, &stops),
            ("max_tokens", None)
        );
        assert_eq!(
            stop_reason(FinishReason::StopSequence(1), &stops),
            ("stop_sequence", Some("\n\n".to_string()))
        );
    }
}
