//! `POST /v1/completions`.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use cria_engine::{FinishReason, TokenLogprob};
use serde_json::{Value, json};

use super::FINGERPRINT;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::frontend::Frontend;
use crate::generate::{self, Collected};
use crate::state::{AppState, unix_now};
use crate::stream::{self, ChunkFormat};
use crate::types::{CompletionChoice, CompletionRequest, CompletionResponse, Prompt, Usage};
use crate::{logprobs, validate};

/// OpenAI's default `max_tokens` for text completions.
const DEFAULT_MAX_TOKENS: usize = 16;

pub async fn completions(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<CompletionRequest>,
) -> Result<Response, ApiError> {
    let loaded = state.model(req.common.model.as_deref()).await?;
    loaded.engine()?;
    let params = validate::common(
        &req.common,
        req.common.max_tokens,
        loaded.frontend.vocab_size(),
    )?;
    let logprobs = validate::completion_logprobs(req.logprobs)?;
    let prompts = prompts(&req.prompt, loaded.frontend.as_ref())?;
    let choices = generate::submit(
        &state,
        &loaded,
        prompts,
        &params,
        logprobs,
        DEFAULT_MAX_TOKENS,
    )?;
    let meta = Meta {
        id: generate::response_id("cmpl"),
        created: unix_now(),
        model: loaded.id().to_string(),
    };
    if params.stream {
        let format = CompletionFormat {
            meta,
            frontend: loaded.frontend.clone(),
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

fn prompts(prompt: &Prompt, frontend: &dyn Frontend) -> Result<Vec<Vec<u32>>, ApiError> {
    let vocab = frontend.vocab_size();
    let check_ids = |ids: &Vec<u32>| {
        if ids.iter().any(|&id| id as usize >= vocab) {
            Err(ApiError::invalid(
                "prompt",
                format!("Token ids in the prompt must be below {vocab}."),
            ))
        } else {
            Ok(ids.clone())
        }
    };
    let prompts = match prompt {
        Prompt::Text(t) => vec![frontend.text_prompt(t)],
        Prompt::Texts(ts) => ts.iter().map(|t| frontend.text_prompt(t)).collect(),
        Prompt::Tokens(ids) => vec![check_ids(ids)?],
        Prompt::TokenLists(lists) => lists.iter().map(check_ids).collect::<Result<_, _>>()?,
    };
    if prompts.is_empty() {
        return Err(ApiError::invalid(
            "prompt",
            "prompt must not be an empty list.",
        ));
    }
    Ok(prompts)
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
) -> CompletionResponse {
    let usage = Usage::new(
        done.iter().map(|c| c.prompt_tokens).sum(),
        done.iter().map(|c| c.completion_tokens).sum(),
    )
    .with_cached(done.iter().map(|c| c.cached_tokens).sum());
    let choices = done
        .into_iter()
        .map(|c| CompletionChoice {
            index: c.index,
            logprobs: with_logprobs.then(|| logprobs::completion(frontend, &c.logprobs, 0)),
            text: c.text,
            finish_reason: Some(c.finish.as_str()),
        })
        .collect();
    CompletionResponse {
        id: meta.id,
        object: "text_completion",
        created: meta.created,
        model: meta.model,
        system_fingerprint: FINGERPRINT,
        choices,
        usage: Some(usage),
    }
}

struct CompletionFormat {
    meta: Meta,
    frontend: std::sync::Arc<dyn Frontend>,
}

impl CompletionFormat {
    fn chunk(&self, choices: Vec<CompletionChoice>, usage: Option<Usage>) -> Value {
        let chunk = CompletionResponse {
            id: self.meta.id.clone(),
            object: "text_completion",
            created: self.meta.created,
            model: self.meta.model.clone(),
            system_fingerprint: FINGERPRINT,
            choices,
            usage,
        };
        serde_json::to_value(chunk).unwrap_or_else(|e| json!({"error": e.to_string()}))
    }
}

impl ChunkFormat for CompletionFormat {
    fn start(&self, _index: usize) -> Option<Value> {
        None
    }

    fn token(
        &mut self,
        index: usize,
        text: String,
        logprob: Option<&TokenLogprob>,
        _frontend: &dyn Frontend,
    ) -> Vec<Value> {
        let logprobs = logprob
            .map(|lp| logprobs::completion(self.frontend.as_ref(), std::slice::from_ref(lp), 0));
        vec![self.chunk(
            vec![CompletionChoice {
                index,
                text,
                logprobs,
                finish_reason: None,
            }],
            None,
        )]
    }

    fn finish(&mut self, index: usize, reason: FinishReason) -> Vec<Value> {
        let choice = CompletionChoice {
            index,
            text: String::new(),
            logprobs: None,
            finish_reason: Some(reason.as_str()),
        };
        vec![self.chunk(vec![choice], None)]
    }

    fn usage(&self, usage: Usage) -> Value {
        self.chunk(Vec::new(), Some(usage))
    }
}
