//! `POST /v1/embeddings`, and the embedding step the Ollama routes share.

use axum::Json;
use axum::extract::State;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::frontend::Frontend;
use crate::state::{AppState, Loaded};

/// `input`: a string, a list of strings, token ids, or a list of token-id lists.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum EmbeddingInput {
    Text(String),
    Texts(Vec<String>),
    Tokens(Vec<u32>),
    TokenLists(Vec<Vec<u32>>),
}

#[derive(Debug, Clone, Deserialize)]
pub struct EmbeddingRequest {
    pub input: EmbeddingInput,
    pub model: Option<String>,
    /// `float` (default) or `base64` (little-endian f32 bytes, what the OpenAI Python client asks for).
    pub encoding_format: Option<String>,
    pub dimensions: Option<i64>,
}

#[derive(Debug, Serialize)]
struct EmbeddingData {
    object: &'static str,
    index: usize,
    embedding: Value,
}

#[derive(Debug, Serialize)]
struct EmbeddingUsage {
    prompt_tokens: usize,
    total_tokens: usize,
}

#[derive(Debug, Serialize)]
pub struct EmbeddingResponse {
    object: &'static str,
    data: Vec<EmbeddingData>,
    model: String,
    usage: EmbeddingUsage,
}

pub async fn embeddings(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<EmbeddingRequest>,
) -> Result<Json<EmbeddingResponse>, ApiError> {
    let loaded = state.model(req.model.as_deref()).await?;
    let base64 = match req.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            return Err(ApiError::invalid(
                "encoding_format",
                format!("encoding_format must be float or base64, got {other:?}."),
            ));
        }
    };
    check_dimensions(&loaded, req.dimensions)?;
    let inputs = tokenize(&req.input, loaded.frontend.as_ref(), "input")?;
    let prompt_tokens = inputs.iter().map(Vec::len).sum();
    let vectors = embed(&state, &loaded, inputs).await?;
    let data = vectors
        .into_iter()
        .enumerate()
        .map(|(index, v)| EmbeddingData {
            object: "embedding",
            index,
            embedding: if base64 {
                Value::String(to_base64(&v))
            } else {
                Value::from(v)
            },
        })
        .collect();
    Ok(Json(EmbeddingResponse {
        object: "list",
        data,
        model: loaded.id().to_string(),
        usage: EmbeddingUsage {
            prompt_tokens,
            total_tokens: prompt_tokens,
        },
    }))
}

/// 400 unless `dimensions` is absent or the model's own size (vectors are never truncated: a model not
/// trained for it, Matryoshka-style, would give meaningless shorter vectors).
fn check_dimensions(loaded: &Loaded, dimensions: Option<i64>) -> Result<(), ApiError> {
    let n_embd = loaded.embedder()?.n_embd();
    match dimensions {
        Some(d) if usize::try_from(d).ok() != Some(n_embd) => Err(ApiError::invalid(
            "dimensions",
            format!(
                "This model's embeddings have {n_embd} dimensions and cannot be shortened; got dimensions {d}."
            ),
        )),
        _ => Ok(()),
    }
}

/// Each input as token ids: texts tokenized as `llama-embedding` does, ids checked against the vocabulary.
/// `param` names the field in errors.
pub fn tokenize(
    input: &EmbeddingInput,
    frontend: &dyn Frontend,
    param: &str,
) -> Result<Vec<Vec<u32>>, ApiError> {
    let vocab = frontend.vocab_size();
    let check_ids = |ids: &Vec<u32>| {
        if ids.iter().any(|&id| id as usize >= vocab) {
            Err(ApiError::invalid(
                param,
                format!("Token ids in {param} must be below {vocab}."),
            ))
        } else {
            Ok(ids.clone())
        }
    };
    let inputs = match input {
        EmbeddingInput::Text(t) => vec![frontend.embedding_prompt(t)],
        EmbeddingInput::Texts(ts) => ts.iter().map(|t| frontend.embedding_prompt(t)).collect(),
        EmbeddingInput::Tokens(ids) => vec![check_ids(ids)?],
        EmbeddingInput::TokenLists(lists) => {
            lists.iter().map(check_ids).collect::<Result<_, _>>()?
        }
    };
    if inputs.is_empty() {
        return Err(ApiError::invalid(
            param,
            format!("{param} must not be empty."),
        ));
    }
    if let Some(i) = inputs.iter().position(Vec::is_empty) {
        return Err(ApiError::invalid(
            param,
            format!("{param}[{i}] has no tokens: an embedding needs at least one."),
        ));
    }
    Ok(inputs)
}

/// The vectors of `inputs` from the embedding worker (unit length, pooled as the server was started);
/// a 503 if the shutdown deadline passes first.
pub async fn embed(
    state: &AppState,
    loaded: &Loaded,
    inputs: Vec<Vec<u32>>,
) -> Result<Vec<Vec<f32>>, ApiError> {
    let embedder = loaded.embedder()?;
    let n_inputs = inputs.len();
    let rx = embedder.submit(inputs).map_err(|e| {
        let e = ApiError::from(e);
        match e.param.as_deref() {
            Some("messages" | "prompt") => ApiError {
                param: Some("input".into()),
                ..e
            },
            _ => e,
        }
    })?;
    let vectors = tokio::select! {
        got = rx => got.map_err(|_| ApiError::internal("the embedding worker stopped"))?,
        () = state.deadline_passed() => return Err(ApiError::shutdown_deadline()),
    }
    .map_err(ApiError::internal)?;
    if vectors.len() != n_inputs {
        return Err(ApiError::internal("the embedding worker lost an input"));
    }
    Ok(vectors)
}

/// A vector as OpenAI's base64: the little-endian f32 bytes.
fn to_base64(v: &[f32]) -> String {
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_holds_little_endian_f32() {
        // 1.0f32 = 00 00 80 3f, -2.0f32 = 00 00 00 c0.
        assert_eq!(to_base64(&[1.0, -2.0]), "AACAPwAAAMA=");
    }
}
