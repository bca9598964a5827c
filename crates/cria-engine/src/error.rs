//! The engine's errors.

/// Why a request was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    /// The prompt has no tokens.
    #[error("the prompt is empty")]
    EmptyPrompt,
    /// The prompt leaves no room to generate within a sequence's context.
    #[error("the prompt has {prompt} tokens; this server's context is {ctx} tokens per sequence")]
    PromptTooLong { prompt: usize, ctx: usize },
    /// Every sequence slot is taken and the queue of `limit` waiting requests (`--max-queue`) is full.
    #[error(
        "the server is busy: every sequence slot is taken and its queue of {limit} waiting requests is full"
    )]
    QueueFull { limit: usize },
    /// The engine is shutting down or has stopped.
    #[error("the engine is shutting down")]
    ShuttingDown,
    /// The engine failed and cannot serve (the process is about to exit).
    #[error("the engine failed and cannot serve requests: {0}")]
    EngineFailed(String),
}

/// A failure inside the engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[cfg(feature = "model")]
    #[error("model: {0}")]
    Model(#[from] cria_model::ModelError),
    #[error("backend: {0}")]
    Backend(String),
    #[error("cannot start the engine thread: {0}")]
    Spawn(#[from] std::io::Error),
}
