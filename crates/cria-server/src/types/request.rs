//! Request bodies. Numbers are read wide (i64 / f64) so that out-of-range values reach validation and get a
//! precise message; unknown fields are ignored.

use std::collections::HashMap;

use serde::Deserialize;

use crate::tools::{Tool, ToolChoiceField};

/// Fields shared by chat and text completions.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CommonFields {
    pub model: Option<String>,
    pub max_tokens: Option<i64>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub n: Option<i64>,
    pub stop: Option<Stop>,
    pub stream: Option<bool>,
    pub stream_options: Option<StreamOptions>,
    pub seed: Option<i64>,
    pub presence_penalty: Option<f64>,
    pub frequency_penalty: Option<f64>,
    pub logit_bias: Option<HashMap<String, f64>>,
    pub user: Option<String>,
    pub top_k: Option<i64>,
    pub min_p: Option<f64>,
    pub repetition_penalty: Option<f64>,
    /// llama.cpp's extension: never stop at an end-of-generation token.
    pub ignore_eos: Option<bool>,
    /// `{"type": "text" | "json_object" | "json_schema", ...}`.
    pub response_format: Option<ResponseFormat>,
    /// Extension: a grammar, in Lark (llguidance's dialect) or llama.cpp's GBNF (told apart by `::=`).
    pub grammar: Option<String>,
    /// Extension: the whole output matches this regular expression.
    pub regex: Option<String>,
    /// llama.cpp's extension: a JSON schema for the output.
    pub json_schema: Option<serde_json::Value>,
    /// vLLM's extension: only requests with the same salt share prompt-cache entries.
    pub cache_salt: Option<String>,
}

/// `response_format`. llama.cpp's `{"type": "json_object", "schema": {...}}` is read too.
#[derive(Debug, Clone, Deserialize)]
pub struct ResponseFormat {
    #[serde(rename = "type")]
    pub kind: String,
    pub json_schema: Option<JsonSchemaFormat>,
    pub schema: Option<serde_json::Value>,
}

/// `response_format.json_schema`: `{"name", "schema", "strict"}`.
#[derive(Debug, Clone, Deserialize)]
pub struct JsonSchemaFormat {
    pub name: Option<String>,
    pub schema: Option<serde_json::Value>,
    pub strict: Option<bool>,
}

/// `stop`: one string or a list.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Stop {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct StreamOptions {
    #[serde(default)]
    pub include_usage: bool,
}

/// `POST /v1/chat/completions`.
#[derive(Debug, Clone, Deserialize)]
pub struct ChatRequest {
    pub messages: Vec<Message>,
    pub max_completion_tokens: Option<i64>,
    pub logprobs: Option<bool>,
    pub top_logprobs: Option<i64>,
    pub tools: Option<Vec<Tool>>,
    pub tool_choice: Option<ToolChoiceField>,
    pub parallel_tool_calls: Option<bool>,
    /// Extra variables for the chat template (e.g. `enable_thinking`).
    pub chat_template_kwargs: Option<serde_json::Map<String, serde_json::Value>>,
    /// llama.cpp's extension: `none` keeps `<think>` blocks in `content`; `auto` / `deepseek` split them out.
    pub reasoning_format: Option<String>,
    #[serde(flatten)]
    pub common: CommonFields,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Message {
    pub role: String,
    #[serde(default)]
    pub content: Option<Content>,
    /// An assistant turn's calls, sent back with the tools' results.
    pub tool_calls: Option<Vec<serde_json::Value>>,
    /// A `tool` message: the call it answers.
    pub tool_call_id: Option<String>,
    pub name: Option<String>,
    /// An assistant turn's reasoning, sent back (templates that show it may use it).
    pub reasoning_content: Option<String>,
}

/// A message's content: a string, or an array of parts (text parts only are supported).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Parts(Vec<ContentPart>),
}

#[derive(Debug, Clone, Deserialize)]
pub struct ContentPart {
    #[serde(rename = "type")]
    pub kind: String,
    pub text: Option<String>,
}

/// `POST /v1/completions`.
#[derive(Debug, Clone, Deserialize)]
pub struct CompletionRequest {
    pub prompt: Prompt,
    pub logprobs: Option<i64>,
    pub echo: Option<bool>,
    #[serde(flatten)]
    pub common: CommonFields,
}

/// `prompt`: a string, a list of strings, a list of token ids, or a list of such lists.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Prompt {
    Text(String),
    Texts(Vec<String>),
    Tokens(Vec<u32>),
    TokenLists(Vec<Vec<u32>>),
}
