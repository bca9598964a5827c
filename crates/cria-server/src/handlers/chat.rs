//! `POST /v1/chat/completions`.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use cria_engine::{FinishReason, TokenLogprob};
use serde_json::{Value, json};

use super::FINGERPRINT;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::frontend::{ChatTurn, Frontend};
use crate::generate::{self, Collected};
use crate::state::{AppState, unix_now};
use crate::stream::{self, ChunkFormat};
use crate::types::{
    ChatChoice, ChatChunk, ChatChunkChoice, ChatMessageOut, ChatRequest, ChatResponse, Content,
    Delta, Message, Usage,
};
use crate::{logprobs, validate};

const ROLES: &[&str] = &["system", "developer", "user", "assistant", "tool"];

pub async fn chat_completions(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<ChatRequest>,
) -> Result<Response, ApiError> {
    state.check_model(req.common.model.as_deref())?;
    let loaded = state.ready()?;
    loaded.engine()?;
    let max_tokens = req.max_completion_tokens.or(req.common.max_tokens);
    let params = validate::common(&req.common, max_tokens, loaded.frontend.vocab_size())?;
    let logprobs = validate::chat_logprobs(req.logprobs, req.top_logprobs)?;
    let turns = turns(&req.messages)?;
    let prompt = loaded
        .frontend
        .chat_prompt(&turns)
        .map_err(|e| ApiError::invalid("messages", e))?;
    let choices = generate::submit(&state, loaded, vec![prompt], &params, logprobs, usize::MAX)?;
    let meta = Meta {
        id: generate::response_id("chatcmpl"),
        created: unix_now(),
        model: state.config.model_id.clone(),
    };
    if params.stream {
        let format = ChatFormat {
            meta,
            include_usage: params.include_usage,
        };
        return Ok(stream::sse(
            &state,
            format,
            loaded.frontend.clone(),
            choices,
            params.include_usage,
        )
        .into_response());
    }
    let done = generate::collect_all(&state, choices).await?;
    Ok(Json(response(
        meta,
        done,
        logprobs.is_some(),
        loaded.frontend.as_ref(),
    ))
    .into_response())
}

/// The messages as plain turns: content parts joined, `developer` read as `system`.
fn turns(messages: &[Message]) -> Result<Vec<ChatTurn>, ApiError> {
    if messages.is_empty() {
        return Err(ApiError::invalid("messages", "messages must not be empty."));
    }
    messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            if !ROLES.contains(&m.role.as_str()) {
                return Err(ApiError::invalid(
                    &format!("messages[{i}].role"),
                    format!("Unknown role {:?}.", m.role),
                ));
            }
            let role = if m.role == "developer" {
                "system".to_string()
            } else {
                m.role.clone()
            };
            Ok(ChatTurn {
                role,
                content: content_text(m.content.as_ref(), i)?,
            })
        })
        .collect()
}

fn content_text(content: Option<&Content>, i: usize) -> Result<String, ApiError> {
    match content {
        None => Ok(String::new()),
        Some(Content::Text(t)) => Ok(t.clone()),
        Some(Content::Parts(parts)) => parts
            .iter()
            .map(|p| match (p.kind.as_str(), &p.text) {
                ("text", Some(t)) => Ok(t.as_str()),
                (kind, _) => Err(ApiError::invalid(
                    &format!("messages[{i}].content"),
                    format!("Only text content parts are supported, got {kind:?}."),
                )),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|texts| texts.concat()),
    }
}

struct Meta {
    id: String,
    created: u64,
    model: String,
}

fn response(
    meta: Meta,
    done: Vec<Collected>,
    with_logprobs: bool,
    frontend: &dyn Frontend,
) -> ChatResponse {
    let usage = Usage::new(
        done.iter().map(|c| c.prompt_tokens).sum(),
        done.iter().map(|c| c.completion_tokens).sum(),
    );
    let choices = done
        .into_iter()
        .map(|c| ChatChoice {
            index: c.index,
            logprobs: with_logprobs.then(|| logprobs::chat(frontend, &c.logprobs)),
            message: ChatMessageOut {
                role: "assistant",
                content: c.text,
            },
            finish_reason: Some(c.finish.as_str()),
        })
        .collect();
    ChatResponse {
        id: meta.id,
        object: "chat.completion",
        created: meta.created,
        model: meta.model,
        system_fingerprint: FINGERPRINT,
        choices,
        usage,
    }
}

struct ChatFormat {
    meta: Meta,
    include_usage: bool,
}

impl ChatFormat {
    fn chunk(&self, choices: Vec<ChatChunkChoice>, usage: Option<Usage>) -> Value {
        let chunk = ChatChunk {
            id: self.meta.id.clone(),
            object: "chat.completion.chunk",
            created: self.meta.created,
            model: self.meta.model.clone(),
            system_fingerprint: FINGERPRINT,
            choices,
            usage: self.include_usage.then_some(usage),
        };
        serde_json::to_value(chunk).unwrap_or_else(|e| json!({"error": e.to_string()}))
    }

    fn choice(index: usize, delta: Delta, finish: Option<FinishReason>) -> ChatChunkChoice {
        ChatChunkChoice {
            index,
            delta,
            logprobs: None,
            finish_reason: finish.map(FinishReason::as_str),
        }
    }
}

impl ChunkFormat for ChatFormat {
    fn start(&self, index: usize) -> Option<Value> {
        let delta = Delta {
            role: Some("assistant"),
            content: Some(String::new()),
        };
        Some(self.chunk(vec![Self::choice(index, delta, None)], None))
    }

    fn token(
        &self,
        index: usize,
        text: String,
        logprob: Option<&TokenLogprob>,
        frontend: &dyn Frontend,
    ) -> Value {
        let mut choice = Self::choice(
            index,
            Delta {
                role: None,
                content: Some(text),
            },
            None,
        );
        choice.logprobs = logprob.map(|lp| logprobs::chat(frontend, std::slice::from_ref(lp)));
        self.chunk(vec![choice], None)
    }

    fn finish(&self, index: usize, reason: FinishReason) -> Value {
        self.chunk(
            vec![Self::choice(index, Delta::default(), Some(reason))],
            None,
        )
    }

    fn usage(&self, usage: Usage) -> Value {
        self.chunk(Vec::new(), Some(usage))
    }
}
