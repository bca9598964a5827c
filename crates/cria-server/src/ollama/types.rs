//! Ollama's request bodies (the fields Cria reads; others are ignored).

use serde::Deserialize;
use serde_json::Value;

/// `options`: Ollama's sampling and length settings (`num_ctx`, `mirostat`... are accepted and ignored).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Options {
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub top_k: Option<i64>,
    pub min_p: Option<f64>,
    pub seed: Option<i64>,
    /// Tokens to generate; -1 (unbounded) and -2 (fill the context) run to the context's end.
    pub num_predict: Option<i64>,
    pub stop: Option<Vec<String>>,
    pub repeat_penalty: Option<f64>,
    pub presence_penalty: Option<f64>,
    pub frequency_penalty: Option<f64>,
}

/// `POST /api/chat`.
#[derive(Debug, Clone, Deserialize)]
pub struct ChatRequest {
    pub model: Option<String>,
    #[serde(default)]
    pub messages: Vec<Message>,
    /// `"json"`, or a JSON schema.
    pub format: Option<Value>,
    #[serde(default)]
    pub options: Options,
    pub stream: Option<bool>,
    /// Function tools, as OpenAI writes them (`{"type": "function", "function": {...}}`).
    pub tools: Option<Vec<crate::tools::Tool>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Message {
    pub role: String,
    #[serde(default)]
    pub content: String,
    pub images: Option<Vec<Value>>,
    /// An assistant's calls: `[{"function": {"name", "arguments": {...}}}]`.
    pub tool_calls: Option<Vec<ToolCallIn>>,
    /// A `tool` message's function.
    pub tool_name: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ToolCallIn {
    pub function: FunctionIn,
}

#[derive(Debug, Clone, Deserialize)]
pub struct FunctionIn {
    pub name: String,
    #[serde(default)]
    pub arguments: Value,
}

/// `POST /api/generate`.
#[derive(Debug, Clone, Deserialize)]
pub struct GenerateRequest {
    pub model: Option<String>,
    #[serde(default)]
    pub prompt: String,
    pub system: Option<String>,
    /// True: the prompt goes to the model as it is, without the chat template.
    #[serde(default)]
    pub raw: bool,
    pub suffix: Option<String>,
    pub template: Option<String>,
    pub images: Option<Vec<Value>>,
    pub format: Option<Value>,
    #[serde(default)]
    pub options: Options,
    pub stream: Option<bool>,
    /// The `context` an earlier answer returned (its prompt's and answer's token ids): continued from.
    pub context: Option<Vec<u32>>,
}

/// `POST /api/embed`: `input` is a string or a list of strings.
#[derive(Debug, Clone, Deserialize)]
pub struct EmbedRequest {
    pub model: Option<String>,
    pub input: Value,
    pub dimensions: Option<i64>,
}

/// `POST /api/embeddings` (the older route): one `prompt`.
#[derive(Debug, Clone, Deserialize)]
pub struct LegacyEmbedRequest {
    pub model: Option<String>,
    pub prompt: String,
}

/// `POST /api/show`: the model by `model` (or the older `name`).
#[derive(Debug, Clone, Deserialize)]
pub struct ShowRequest {
    pub model: Option<String>,
    pub name: Option<String>,
}
