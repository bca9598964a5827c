//! The tokenizer's errors.

/// Why a tokenizer or chat template could not be built or used.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    #[error("tokenizer metadata: {0}")]
    Gguf(#[from] cria_gguf::GgufError),
    #[error("unsupported tokenizer model '{0}' (supported: gpt2, llama, bert)")]
    UnsupportedModel(String),
    #[error("tokenizer.ggml.tokens is empty")]
    EmptyVocab,
    #[error("vocabulary of {0} tokens is too large")]
    VocabTooLarge(usize),
    #[error("{key} has {found} entries but the vocabulary has {expected}")]
    LengthMismatch {
        key: &'static str,
        found: usize,
        expected: usize,
    },
    #[error("pre-tokenizer pattern: {0}")]
    Regex(String),
    #[error("unknown built-in chat template '{0}' (known: chatml, llama2, alpaca, vicuna, gemma)")]
    UnknownTemplate(String),
    #[error("chat template: {0}")]
    Template(String),
    #[error("chat template output exceeds {limit} bytes")]
    TemplateOutputTooLarge { limit: usize },
}
