//! `POST /v1/chat/completions`.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use cria_engine::FinishReason;
use serde_json::{Map, Value, json};

use super::FINGERPRINT;
use super::chat_stream::{ChatFormat, Meta};
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::frontend::Frontend;
use crate::generate::{self, Collected};
use crate::state::{AppState, unix_now};
use crate::stream;
use crate::tools::{self, OutputSyntax, ReasoningFormat, ToolCall};
use crate::types::{
    ChatChoice, ChatMessageOut, ChatRequest, ChatResponse, Content, Message, Usage,
};
use crate::{logprobs, validate};

const ROLES: &[&str] = &["system", "developer", "user", "assistant", "tool"];

pub async fn chat_completions(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<ChatRequest>,
) -> Result<Response, ApiError> {
    let loaded = state.model(req.common.model.as_deref()).await?;
    loaded.engine()?;
    let max_tokens = req.max_completion_tokens.or(req.common.max_tokens);
    let mut params = validate::common(&req.common, max_tokens, loaded.frontend.vocab_size())?;
    let logprobs = validate::chat_logprobs(req.logprobs, req.top_logprobs)?;
    let tool_request = tools::check(
        req.tools.as_deref(),
        req.tool_choice.as_ref(),
        req.parallel_tool_calls,
    )?;
    if tool_request.is_some()
        && let Some((_, field)) = &params.grammar
    {
        return Err(ApiError::invalid(
            field,
            "A request with tools cannot constrain its output otherwise.",
        ));
    }
    let reasoning = match req.reasoning_format.as_deref() {
        None => state.config.reasoning_format,
        Some(name) => ReasoningFormat::parse(name).ok_or_else(|| {
            ApiError::invalid(
                "reasoning_format",
                format!("Unknown reasoning_format {name:?}: use none, auto or deepseek."),
            )
        })?,
    };
    let setup = tools::prepare(
        loaded.frontend.as_ref(),
        messages(&req.messages)?,
        tool_request.as_ref(),
        req.chat_template_kwargs.as_ref().unwrap_or(&Map::new()),
        reasoning,
    )?;
    if let Some(grammar) = setup.grammar {
        params.grammar = Some((grammar, "tools"));
    }
    let choices = generate::submit(
        &state,
        &loaded,
        vec![setup.prompt],
        &params,
        logprobs,
        usize::MAX,
    )?;
    let meta = Meta {
        id: generate::response_id("chatcmpl"),
        created: unix_now(),
        model: loaded.id().to_string(),
    };
    if params.stream {
        let format = ChatFormat::new(meta, params.include_usage, setup.syntax);
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
        setup.syntax,
    ))
    .into_response())
}

/// The messages as the template reads them: content parts joined into `content` (always a string),
/// `developer` read as `system`, calls' `arguments` as JSON objects (templates write them with `tojson`).
fn messages(messages: &[Message]) -> Result<Vec<Value>, ApiError> {
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
                "system"
            } else {
                m.role.as_str()
            };
            let mut out = json!({"role": role, "content": content_text(m.content.as_ref(), i)?});
            if let Some(calls) = &m.tool_calls {
                out["tool_calls"] = Value::Array(calls.iter().map(call_for_template).collect());
            }
            for (key, value) in [
                ("tool_call_id", &m.tool_call_id),
                ("name", &m.name),
                ("reasoning_content", &m.reasoning_content),
            ] {
                if let Some(v) = value {
                    out[key] = Value::String(v.clone());
                }
            }
            Ok(out)
        })
        .collect()
}

/// A call sent back in an assistant message, with `arguments` parsed when it is a JSON text.
fn call_for_template(call: &Value) -> Value {
    let mut call = call.clone();
    if let Some(text) = call["function"]["arguments"].as_str()
        && let Ok(parsed) = serde_json::from_str::<Value>(text)
    {
        call["function"]["arguments"] = parsed;
    }
    call
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

/// `finish_reason`: `tool_calls` when the model ended its turn after calling tools.
pub fn finish_reason(reason: FinishReason, calls: usize) -> &'static str {
    if calls > 0 && reason == FinishReason::Stop {
        "tool_calls"
    } else {
        reason.as_str()
    }
}

fn message(text: String, syntax: Option<OutputSyntax>) -> (ChatMessageOut, usize) {
    let Some(syntax) = syntax else {
        return (
            ChatMessageOut {
                role: "assistant",
                content: Some(text),
                reasoning_content: None,
                reasoning: None,
                tool_calls: None,
            },
            0,
        );
    };
    let parsed = tools::parse_output(syntax, &text);
    let calls: Vec<ToolCall> = parsed
        .calls
        .into_iter()
        .map(|function| ToolCall {
            id: tools::call_id(),
            kind: "function",
            function,
        })
        .collect();
    let n = calls.len();
    let reasoning = (!parsed.reasoning.is_empty()).then_some(parsed.reasoning);
    let message = ChatMessageOut {
        role: "assistant",
        content: (n == 0 || !parsed.content.is_empty()).then_some(parsed.content),
        reasoning_content: reasoning.clone(),
        reasoning,
        tool_calls: (n > 0).then_some(calls),
    };
    (message, n)
}

fn response(
    meta: Meta,
    done: Vec<Collected>,
    with_logprobs: bool,
    frontend: &dyn Frontend,
    syntax: Option<OutputSyntax>,
) -> ChatResponse {
    let usage = Usage::new(
        done.iter().map(|c| c.prompt_tokens).sum(),
        done.iter().map(|c| c.completion_tokens).sum(),
    )
    .with_cached(done.iter().map(|c| c.cached_tokens).sum());
    let choices = done
        .into_iter()
        .map(|c| {
            let (message, calls) = message(c.text, syntax);
            ChatChoice {
                index: c.index,
                logprobs: with_logprobs.then(|| logprobs::chat(frontend, &c.logprobs)),
                message,
                finish_reason: Some(finish_reason(c.finish, calls)),
            }
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
