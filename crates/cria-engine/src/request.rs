//! A request and the events it receives.

use cria_sampling::{SamplingParams, TokenConstraint};

/// One completion to generate.
#[derive(Debug, Clone)]
pub struct Request {
    /// Prompt token ids (already templated and tokenized).
    pub prompt: Vec<u32>,
    pub sampling: SamplingParams,
    /// Most tokens to generate; clipped to what the context leaves.
    pub max_tokens: usize,
    /// Generation stops before the first occurrence of any of these strings.
    pub stop: Vec<String>,
    /// When set, each token event carries its log-probability and this many alternatives.
    pub logprobs: Option<usize>,
    /// Never sample an end-of-generation token (llama.cpp's `ignore_eos`): generate exactly `max_tokens`.
    pub ignore_eos: bool,
    /// Only tokens this allows are generated (a compiled grammar or schema); each request needs its own.
    pub constraint: Option<Box<dyn TokenConstraint>>,
    /// Keys this request's prompt-cache blocks apart: only requests with the same salt share cached KV
    /// (vLLM's `cache_salt`, against timing attacks between tenants).
    pub cache_salt: Option<String>,
}

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    /// An end-of-generation token.
    Stop,
    /// The stop string at this index of [`Request::stop`] (the non-empty ones, in order).
    StopSequence(usize),
    /// `max_tokens` or the context was reached.
    Length,
}

impl FinishReason {
    /// The OpenAI name.
    pub fn as_str(self) -> &'static str {
        match self {
            FinishReason::Stop | FinishReason::StopSequence(_) => "stop",
            FinishReason::Length => "length",
        }
    }
}

/// A generated token's log-probability and the most likely alternatives (ids with log-probabilities).
#[derive(Debug, Clone, PartialEq)]
pub struct TokenLogprob {
    pub id: u32,
    pub logprob: f32,
    pub top: Vec<(u32, f32)>,
}

/// What the engine tells a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// One generated token and the text it released: whole UTF-8 characters, nothing of a possible stop
    /// string (so `text` may be empty, and held-back text arrives later).
    Token {
        text: String,
        logprob: Option<TokenLogprob>,
    },
    /// The last event of a completed request.
    Done {
        reason: FinishReason,
        prompt_tokens: usize,
        completion_tokens: usize,
        /// Prompt tokens whose KV came from the prompt cache (OpenAI's `prompt_tokens_details.cached_tokens`).
        cached_tokens: usize,
    },
    /// The request failed inside the engine.
    Failed(String),
}
