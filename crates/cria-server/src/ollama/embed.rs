//! `POST /api/embed` (a string or a list; unit-length vectors, as Ollama's) and the older
//! `POST /api/embeddings` (one `prompt`, one `embedding`), through the same embedding worker as
//! `/v1/embeddings`.

use std::time::Instant;

use axum::extract::State;
use serde_json::{Value, json};

use super::types::{EmbedRequest, LegacyEmbedRequest};
use super::{Json, OllamaError, model};
use crate::error::ApiError;
use crate::handlers::embeddings::{self, EmbeddingInput};
use crate::state::AppState;

pub async fn embed(
    State(state): State<AppState>,
    Json(req): Json<EmbedRequest>,
) -> Result<axum::Json<Value>, OllamaError> {
    let loaded = model(&state, req.model.as_deref()).await?;
    let started = Instant::now();
    let input = match req.input {
        Value::String(s) => EmbeddingInput::Text(s),
        Value::Array(items) => EmbeddingInput::Texts(
            items
                .into_iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s),
                    _ => Err(ApiError::invalid(
                        "input",
                        "input must be a string or a list of strings",
                    )),
                })
                .collect::<Result<_, _>>()?,
        ),
        _ => {
            return Err(
                ApiError::invalid("input", "input must be a string or a list of strings").into(),
            );
        }
    };
    let n_embd = loaded.embedder()?.n_embd();
    if let Some(d) = req
        .dimensions
        .filter(|&d| usize::try_from(d).ok() != Some(n_embd))
    {
        return Err(ApiError::invalid(
            "dimensions",
            format!(
                "this model's embeddings have {n_embd} dimensions and cannot be shortened; got {d}"
            ),
        )
        .into());
    }
    let inputs = embeddings::tokenize(&input, loaded.frontend.as_ref(), "input")?;
    let prompt_tokens: usize = inputs.iter().map(Vec::len).sum();
    let vectors = embeddings::embed(&state, &loaded, inputs).await?;
    let ns = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
    Ok(axum::Json(json!({
        "model": loaded.id(),
        "embeddings": vectors,
        "total_duration": ns,
        "load_duration": 0,
        "prompt_eval_count": prompt_tokens,
    })))
}

pub async fn legacy_embeddings(
    State(state): State<AppState>,
    Json(req): Json<LegacyEmbedRequest>,
) -> Result<axum::Json<Value>, OllamaError> {
    let loaded = model(&state, req.model.as_deref()).await?;
    let inputs = embeddings::tokenize(
        &EmbeddingInput::Text(req.prompt),
        loaded.frontend.as_ref(),
        "prompt",
    )?;
    let mut vectors = embeddings::embed(&state, &loaded, inputs).await?;
    Ok(axum::Json(
        json!({ "embedding": vectors.pop().unwrap_or_default() }),
    ))
}
