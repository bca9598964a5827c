//! `Frontend`: text to tokens and back, for the handlers (a trait so handlers test without a model).

/// One chat turn, after content parts are joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatTurn {
    pub role: String,
    pub content: String,
}

/// Prompt building and token text.
pub trait Frontend: Send + Sync {
    /// Renders the chat template (with the assistant's generation prompt) and tokenizes it.
    fn chat_prompt(&self, turns: &[ChatTurn]) -> Result<Vec<u32>, String>;
    /// Tokenizes a completions prompt.
    fn text_prompt(&self, text: &str) -> Vec<u32>;
    /// The raw bytes of a token (for logprobs).
    fn token_bytes(&self, id: u32) -> Vec<u8>;
    fn vocab_size(&self) -> usize;
}

#[cfg(feature = "model")]
mod tokenizer {
    use cria_tokenizer::{ChatMessage, ChatTemplate, Tokenizer};

    use super::{ChatTurn, Frontend};

    /// The model's tokenizer and chat template.
    pub struct TokenizerFrontend {
        tokenizer: std::sync::Arc<Tokenizer>,
        template: ChatTemplate,
    }

    impl TokenizerFrontend {
        pub fn new(tokenizer: std::sync::Arc<Tokenizer>, template: ChatTemplate) -> Self {
            TokenizerFrontend {
                tokenizer,
                template,
            }
        }

        /// Tokenizes text that may already start with BOS (templates often write it) without doubling it.
        fn encode(&self, text: &str) -> Vec<u32> {
            let mut ids = self.tokenizer.encode(text, true, true);
            if let Some(bos) = self.tokenizer.bos()
                && ids.len() >= 2
                && ids[0] == bos
                && ids[1] == bos
            {
                ids.remove(0);
            }
            ids
        }
    }

    impl Frontend for TokenizerFrontend {
        fn chat_prompt(&self, turns: &[ChatTurn]) -> Result<Vec<u32>, String> {
            let messages: Vec<ChatMessage> = turns
                .iter()
                .map(|t| ChatMessage {
                    role: t.role.clone(),
                    content: t.content.clone(),
                })
                .collect();
            let text = self
                .template
                .render(&messages, true)
                .map_err(|e| e.to_string())?;
            Ok(self.encode(&text))
        }

        fn text_prompt(&self, text: &str) -> Vec<u32> {
            self.encode(text)
        }

        fn token_bytes(&self, id: u32) -> Vec<u8> {
            self.tokenizer.token_bytes(id).to_vec()
        }

        fn vocab_size(&self) -> usize {
            self.tokenizer.vocab_size()
        }
    }
}

#[cfg(feature = "model")]
pub use tokenizer::TokenizerFrontend;
