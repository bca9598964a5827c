//! `Frontend`: text to tokens and back, for the handlers (a trait so handlers test without a model).

use cria_sampling::TokenConstraint;
use cria_sampling::grammar::Grammar;

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
    /// Tokenizes an embedding input as llama.cpp's `llama-embedding` does (special tokens added and parsed,
    /// nothing removed).
    fn embedding_prompt(&self, text: &str) -> Vec<u32> {
        self.text_prompt(text)
    }
    /// The raw bytes of a token (for logprobs).
    fn token_bytes(&self, id: u32) -> Vec<u8>;
    fn vocab_size(&self) -> usize;
    /// Compiles `grammar` against the vocabulary for one request (copies serve its other choices); an error
    /// says why the grammar is unusable, before anything is generated.
    fn constrain(&self, grammar: &Grammar) -> Result<Box<dyn TokenConstraint>, String>;
}

#[cfg(feature = "model")]
mod tokenizer {
    use std::sync::{Arc, OnceLock};

    use cria_sampling::TokenConstraint;
    use cria_sampling::grammar::{Grammar, GrammarVocab, VocabToken};
    use cria_tokenizer::{ChatMessage, ChatTemplate, Tokenizer};

    use super::{ChatTurn, Frontend};

    /// The model's tokenizer and chat template.
    pub struct TokenizerFrontend {
        tokenizer: Arc<Tokenizer>,
        template: ChatTemplate,
        /// Built on the first constrained request (a trie over the vocabulary: not worth it at start-up).
        grammar_vocab: OnceLock<Result<GrammarVocab, String>>,
    }

    impl TokenizerFrontend {
        pub fn new(tokenizer: std::sync::Arc<Tokenizer>, template: ChatTemplate) -> Self {
            TokenizerFrontend {
                tokenizer,
                template,
                grammar_vocab: OnceLock::new(),
            }
        }

        fn grammar_vocab(&self) -> Result<&GrammarVocab, String> {
            let built = self.grammar_vocab.get_or_init(|| {
                let tok = &self.tokenizer;
                let tokens: Vec<VocabToken> = (0..tok.vocab_size() as u32)
                    .map(|id| VocabToken {
                        bytes: tok.token_bytes(id).to_vec(),
                        special: tok.is_control(id),
                    })
                    .collect();
                let for_text = Arc::clone(tok);
                let tokenize = Arc::new(move |bytes: &[u8]| {
                    for_text.encode(&String::from_utf8_lossy(bytes), false, false)
                });
                GrammarVocab::new(&tokens, tok.end_of_generation_ids(), tokenize)
                    .map_err(|e| e.to_string())
            });
            built.as_ref().map_err(Clone::clone)
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

        fn embedding_prompt(&self, text: &str) -> Vec<u32> {
            self.tokenizer.encode(text, true, true)
        }

        fn token_bytes(&self, id: u32) -> Vec<u8> {
            self.tokenizer.token_bytes(id).to_vec()
        }

        fn vocab_size(&self) -> usize {
            self.tokenizer.vocab_size()
        }

        fn constrain(&self, grammar: &Grammar) -> Result<Box<dyn TokenConstraint>, String> {
            let constraint = self
                .grammar_vocab()?
                .compile(grammar)
                .map_err(|e| e.to_string())?;
            Ok(Box::new(constraint))
        }
    }
}

#[cfg(feature = "model")]
pub use tokenizer::TokenizerFrontend;
