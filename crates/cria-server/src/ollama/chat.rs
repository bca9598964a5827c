//! `POST /api/chat` and `POST /api/generate`: one choice, streamed as NDJSON lines (the default) or
//! answered whole; the last line (or the whole answer) carries `done_reason` and Ollama's counts and
//! durations (nanoseconds).

use std::convert::Infallible;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use cria_engine::FinishReason;
use futures_util::StreamExt;
use serde_json::{Value, json};

use super::calls::Calls;
use super::types::{ChatRequest, GenerateRequest};
use super::{Json, OllamaError, model, params, refuse_if};
use crate::error::ApiError;
use crate::frontend::ChatTurn;
use crate::generate::{self, ChoiceRx};
use crate::models::Lease;
use crate::single::{self, Piece};
use crate::state::AppState;
use crate::tools::{self, OutputSyntax, ReasoningFormat};
use crate::validate::GenParams;

const ROLES: &[&str] = &["system", "user", "assistant", "tool"];

/// Which endpoint a line is for: chat puts text in `message.content`, generate in `response`.
#[derive(Clone, Copy)]
enum Kind {
    Chat,
    Generate,
}

pub async fn chat(
    State(state): State<AppState>,
    Json(req): Json<ChatRequest>,
) -> Result<Response, OllamaError> {
    let loaded = model(&state, req.model.as_deref()).await?;
    loaded.engine()?;
    let stream = req.stream.unwrap_or(true);
    let mut params = params(
        &req.options,
        req.format.as_ref(),
        stream,
        loaded.frontend.vocab_size(),
    )?;
    let tool_request = tools::check(req.tools.as_deref(), None, None)?;
    refuse_if(
        tool_request.is_some() && params.grammar.is_some(),
        "format",
        "a request with tools cannot also constrain its output with format",
    )?;
    let setup = tools::prepare(
        loaded.frontend.as_ref(),
        messages(&req)?,
        tool_request.as_ref(),
        &serde_json::Map::new(),
        ReasoningFormat::Inline,
    )?;
    if let Some(grammar) = setup.grammar {
        params.grammar = Some((grammar, "tools"));
    }
    let kind = Kind::Chat;
    run(&state, &loaded, kind, setup.prompt, &params, setup.syntax).await
}

pub async fn generate(
    State(state): State<AppState>,
    Json(req): Json<GenerateRequest>,
) -> Result<Response, OllamaError> {
    let loaded = model(&state, req.model.as_deref()).await?;
    loaded.engine()?;
    refuse_if(
        req.suffix.as_ref().is_some_and(|s| !s.is_empty()),
        "suffix",
        "this model does not support insert (suffix)",
    )?;
    refuse_if(
        req.template.as_ref().is_some_and(|s| !s.is_empty()),
        "template",
        "template overrides are not supported; start cria serve with --chat-template",
    )?;
    refuse_if(
        req.images.as_ref().is_some_and(|i| !i.is_empty()),
        "images",
        "this model does not support images",
    )?;
    let model = loaded.id().to_string();
    if req.prompt.is_empty() && req.system.is_none() {
        // Ollama's way to load a model: an empty prompt answers at once.
        return Ok(axum::Json(json!({
            "model": model, "created_at": now(), "response": "", "done": true, "done_reason": "load",
        }))
        .into_response());
    }
    let stream = req.stream.unwrap_or(true);
    let params = params(
        &req.options,
        req.format.as_ref(),
        stream,
        loaded.frontend.vocab_size(),
    )?;
    let prompt = if req.raw {
        loaded.frontend.text_prompt(&req.prompt)
    } else {
        let mut turns = Vec::new();
        if let Some(system) = &req.system {
            turns.push(turn("system", system));
        }
        turns.push(turn("user", &req.prompt));
        loaded
            .frontend
            .chat_prompt(&turns)
            .map_err(|e| ApiError::invalid("prompt", e))?
    };
    let prompt = continued(req.context.as_deref(), prompt, loaded.frontend.vocab_size())?;
    run(&state, &loaded, Kind::Generate, prompt, &params, None).await
}

/// An earlier answer's `context` (token ids), then the new prompt's tokens, as Ollama continues a
/// conversation on `/api/generate`.
fn continued(
    context: Option<&[u32]>,
    prompt: Vec<u32>,
    vocab: usize,
) -> Result<Vec<u32>, ApiError> {
    let Some(context) = context.filter(|c| !c.is_empty()) else {
        return Ok(prompt);
    };
    if let Some(bad) = context.iter().find(|&&id| id as usize >= vocab) {
        return Err(ApiError::invalid(
            "context",
            format!("token id {bad} is not in the vocabulary of {vocab} tokens"),
        ));
    }
    Ok([context, &prompt].concat())
}

fn turn(role: &str, content: &str) -> ChatTurn {
    ChatTurn {
        role: role.into(),
        content: content.into(),
    }
}

/// The messages as the chat template reads them: an assistant's `tool_calls` with their arguments as
/// objects, a `tool` message's `tool_name` as its `name`.
fn messages(req: &ChatRequest) -> Result<Vec<Value>, ApiError> {
    if req.messages.is_empty() {
        return Err(ApiError::invalid("messages", "messages must not be empty"));
    }
    req.messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            if !ROLES.contains(&m.role.as_str()) {
                return Err(ApiError::invalid(
                    &format!("messages[{i}].role"),
                    format!("unknown role {:?}", m.role),
                ));
            }
            refuse_if(
                m.images.as_ref().is_some_and(|i| !i.is_empty()),
                &format!("messages[{i}].images"),
                "this model does not support images",
            )?;
            let mut out = json!({"role": m.role, "content": m.content});
            if let Some(calls) = m.tool_calls.as_ref().filter(|c| !c.is_empty()) {
                let calls = calls
                    .iter()
                    .map(|c| json!({"type": "function", "function": {"name": c.function.name, "arguments": c.function.arguments}}))
                    .collect();
                out["tool_calls"] = Value::Array(calls);
            }
            if let Some(name) = &m.tool_name {
                out["name"] = json!(name);
            }
            Ok(out)
        })
        .collect()
}

/// Submits the prompt and answers as NDJSON or whole.
async fn run(
    state: &AppState,
    loaded: &Lease,
    kind: Kind,
    prompt: Vec<u32>,
    params: &GenParams,
    syntax: Option<OutputSyntax>,
) -> Result<Response, OllamaError> {
    let started = Instant::now();
    // Generate answers with `context`: the tokens' ids come with their logprobs.
    let ids = matches!(kind, Kind::Generate).then_some(0);
    let mut choices =
        generate::submit(state, loaded, vec![prompt.clone()], params, ids, usize::MAX)
            .map_err(format_param)?;
    let choice = choices
        .pop()
        .ok_or_else(|| ApiError::internal("no choice was submitted"))?;
    let line = Line {
        kind,
        model: loaded.id().to_string(),
        prompt,
    };
    let mut calls = Calls::new(syntax);
    if params.stream {
        return Ok(ndjson(state, line, started, choice, calls));
    }
    let done = generate::collect_all(state, vec![choice]).await?;
    let done = done
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::internal("no choice was collected"))?;
    let timing = Timing {
        started,
        first: None,
    };
    let mut text = calls.push(&done.text);
    text.push_str(&calls.finish());
    let mut body = line.finished(
        &text,
        done.finish,
        done.prompt_tokens,
        done.completion_tokens,
        &timing,
    );
    if let Some(tool_calls) = calls.tool_calls() {
        body["message"]["tool_calls"] = tool_calls;
    }
    let generated: Vec<u32> = done.logprobs.iter().map(|lp| lp.id).collect();
    line.add_context(&mut body, &generated);
    Ok(axum::Json(body).into_response())
}

/// A schema the grammar engine refused names Ollama's `format`.
fn format_param(e: ApiError) -> ApiError {
    match e.param.as_deref() {
        Some("json_schema" | "response_format") => ApiError {
            param: Some("format".into()),
            ..e
        },
        _ => e,
    }
}

/// The streamed answer: one JSON object a line.
///
/// With tools, text goes through the call parser as it comes; the calls go out whole in a line of their
/// own just before the last one, as Ollama sends them.
fn ndjson(
    state: &AppState,
    line: Line,
    started: Instant,
    choice: ChoiceRx,
    mut calls: Calls,
) -> Response {
    let mut timing = Timing {
        started,
        first: None,
    };
    let lines = single::pieces(state, choice).map(move |piece| {
        let values = match piece {
            Piece::Text(text) => {
                timing.first.get_or_insert_with(Instant::now);
                let text = calls.push(&text);
                if text.is_empty() {
                    Vec::new()
                } else {
                    vec![line.text(&text, false)]
                }
            }
            Piece::Done {
                reason,
                prompt_tokens,
                completion_tokens,
                token_ids,
            } => {
                let rest = calls.finish();
                let mut values = Vec::new();
                if !rest.is_empty() {
                    values.push(line.text(&rest, false));
                }
                if let Some(tool_calls) = calls.tool_calls() {
                    let mut call_line = line.text("", false);
                    call_line["message"]["tool_calls"] = tool_calls;
                    values.push(call_line);
                }
                let mut last = line.finished("", reason, prompt_tokens, completion_tokens, &timing);
                line.add_context(&mut last, &token_ids);
                values.push(last);
                values
            }
            Piece::Failed(e) => vec![OllamaError(e).body()],
        };
        let text: String = values.iter().map(|v| format!("{v}\n")).collect();
        Ok::<_, Infallible>(Bytes::from(text))
    });
    (
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(lines),
    )
        .into_response()
}

/// When the request started and its first token came.
struct Timing {
    started: Instant,
    first: Option<Instant>,
}

struct Line {
    kind: Kind,
    model: String,
    /// The prompt's tokens (the start of a generate answer's `context`).
    prompt: Vec<u32>,
}

impl Line {
    /// A generate answer's `context`: the prompt's token ids and then the generated ones.
    fn add_context(&self, last: &mut Value, generated: &[u32]) {
        if matches!(self.kind, Kind::Generate) {
            last["context"] = json!([self.prompt.as_slice(), generated].concat());
        }
    }

    /// A line (or whole answer) carrying `text`.
    fn text(&self, text: &str, done: bool) -> Value {
        let mut v = json!({"model": self.model, "created_at": now(), "done": done});
        let (key, value) = match self.kind {
            Kind::Chat => ("message", json!({"role": "assistant", "content": text})),
            Kind::Generate => ("response", json!(text)),
        };
        v[key] = value;
        v
    }

    /// The last line (or the whole answer): `text` with the `done_reason`, counts and durations (ns).
    fn finished(
        &self,
        text: &str,
        reason: FinishReason,
        prompt_tokens: usize,
        completion_tokens: usize,
        t: &Timing,
    ) -> Value {
        let mut v = self.text(text, true);
        if let Value::Object(o) = &mut v {
            o.extend(self.stats(reason, prompt_tokens, completion_tokens, t));
        }
        v
    }

    fn stats(
        &self,
        reason: FinishReason,
        prompt_tokens: usize,
        completion_tokens: usize,
        t: &Timing,
    ) -> serde_json::Map<String, Value> {
        let end = Instant::now();
        let first = t.first.unwrap_or(end);
        let ns = |d: std::time::Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let done_reason = match reason {
            FinishReason::Length => "length",
            FinishReason::Stop | FinishReason::StopSequence(_) => "stop",
        };
        let v = json!({
            "done_reason": done_reason,
            "total_duration": ns(end - t.started),
            "load_duration": 0,
            "prompt_eval_count": prompt_tokens,
            "prompt_eval_duration": ns(first - t.started),
            "eval_count": completion_tokens,
            "eval_duration": ns(end - first),
        });
        match v {
            Value::Object(map) => map,
            _ => serde_json::Map::new(),
        }
    }
}

/// Now as RFC 3339 (`created_at`).
fn now() -> String {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    super::info::rfc3339(since.as_secs(), since.subsec_nanos())
}
