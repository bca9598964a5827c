//! The OpenAI request and response bodies.

mod request;
mod response;

pub use request::{
    ChatRequest, CommonFields, CompletionRequest, Content, ContentPart, JsonSchemaFormat, Message,
    Prompt, ResponseFormat, Stop, StreamOptions,
};
pub use response::{
    ChatChoice, ChatChunk, ChatChunkChoice, ChatLogprobs, ChatMessageOut, ChatResponse,
    CompletionChoice, CompletionLogprobs, CompletionResponse, Delta, ModelCard, ModelList,
    ModelStatus, TokenLogprobOut, TopLogprob, Usage,
};
