//! `Frontend`: text to tokens and back, for the handlers (a trait so handlers test without a model).

use cria_sampling::TokenConstraint;
use cria_sampling::grammar::Grammar;

/// One chat turn, after content parts are joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatTurn {
    pub role: String,
    pub content: String,
}

/// A chat request's template input: messages as JSON objects (`role`, `content`, `tool_calls`,
/// `tool_call_id`, `name`), the `tools` value, and extra template variables (`chat_template_kwargs`).
#[derive(Debug, Clone, Copy)]
pub struct ChatInput<'a> {
    pub messages: &'a [serde_json::Value],
    pub tools: Option<&'a serde_json::Value>,
    pub extra: &'a serde_json::Map<String, serde_json::Value>,
}

/// A rendered chat prompt: its tokens and its text (whose end says whether a `<think>` block is open).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedChat {
    pub tokens: Vec<u32>,
    pub text: String,
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
    /// Renders a chat with tools and template variables. By default the messages' roles and text contents go
    /// through [`Frontend::chat_prompt`] (for front ends without a template engine).
    fn chat_input(&self, input: &ChatInput<'_>) -> Result<RenderedChat, String> {
        let turns: Vec<ChatTurn> = input
            .messages
            .iter()
            .map(|m| ChatTurn {
                role: m["role"].as_str().unwrap_or_default().to_string(),
                content: m["content"].as_str().unwrap_or_default().to_string(),
            })
            .collect();
        Ok(RenderedChat {
            tokens: self.chat_prompt(&turns)?,
            text: String::new(),
        })
    }
    /// The chat template's source (its tool-call syntax and `<think>` use are read from it).
    fn template_source(&self) -> &str {
        ""
    }
    /// The id of a special (control) token written as `text`, such as `<|python_tag|>`.
    fn special_token(&self, _text: &str) -> Option<u32> {
        None
    }
}

#[cfg(feature = "model")]
mod tokenizer {
    use std::sync::{Arc, OnceLock};

    use cria_sampling::TokenConstraint;
    use cria_sampling::grammar::{Grammar, GrammarVocab, VocabToken};
    use cria_tokenizer::{ChatMessage, ChatTemplate, TemplateInput, Tokenizer};

    use super::{ChatInput, ChatTurn, Frontend, RenderedChat};

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

        fn chat_input(&self, input: &ChatInput<'_>) -> Result<RenderedChat, String> {
            let text = self
                .template
                .render_input(&TemplateInput {
                    messages: input.messages,
                    tools: input.tools,
                    extra: input.extra,
                    add_generation_prompt: true,
                })
                .map_err(|e| e.to_string())?;
            Ok(RenderedChat {
                tokens: self.encode(&text),
                text,
            })
        }

        fn template_source(&self) -> &str {
            self.template.source()
        }

        fn special_token(&self, text: &str) -> Option<u32> {
            self.tokenizer
                .token_id(text)
                .filter(|&id| self.tokenizer.is_control(id))
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
