//! Anthropic Messages API bodies (the fields Cria reads; others are ignored).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `POST /v1/messages` (and `/v1/messages/count_tokens`, which needs no `max_tokens`).
#[derive(Debug, Clone, Deserialize)]
pub struct MessagesRequest {
    pub model: Option<String>,
    pub max_tokens: Option<i64>,
    pub messages: Vec<InMessage>,
    pub system: Option<Content>,
    pub stop_sequences: Option<Vec<String>>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub top_k: Option<i64>,
    pub stream: Option<bool>,
    /// Refused until tool calling lands in the engine's chat path (then: rendered by the template, calls
    /// parsed into `tool_use` blocks).
    pub tools: Option<Vec<Value>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct InMessage {
    pub role: String,
    pub content: Content,
}

/// A string, or a list of content blocks.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Blocks(Vec<Block>),
}

/// A content block: `text` is read; `tool_use` / `tool_result` / `image` are refused for now.
#[derive(Debug, Clone, Deserialize)]
pub struct Block {
    #[serde(rename = "type")]
    pub kind: String,
    pub text: Option<String>,
}

/// An output content block.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutBlock {
    Text { text: String },
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Usage {
    pub input_tokens: usize,
    pub output_tokens: usize,
}

/// A whole message (the non-streamed answer, and `message_start`'s with no content yet).
#[derive(Debug, Clone, Serialize)]
pub struct MessageOut {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub role: &'static str,
    pub content: Vec<OutBlock>,
    pub model: String,
    pub stop_reason: Option<&'static str>,
    pub stop_sequence: Option<String>,
    pub usage: Usage,
}
