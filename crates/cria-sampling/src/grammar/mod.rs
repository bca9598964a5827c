//! Grammar-constrained generation through llguidance (the library llama.cpp and mistral.rs use): JSON objects,
//! JSON schemas, Lark grammars, llama.cpp's GBNF (converted to Lark) and regular expressions.
//!
//! `GrammarVocab` is built once per model from its vocabulary; `compile` turns a request's grammar into a
//! `GrammarConstraint` (or an error before anything is generated: fail closed), one per sequence.

mod gbnf;

use std::sync::Arc;

use llguidance::api::TopLevelGrammar;
use llguidance::toktrie::{TokEnv, TokRxInfo, TokTrie, TokenizerEnv};
use llguidance::{Matcher, ParserFactory};

use crate::constraint::{ConstraintError, TokenConstraint, TokenMask};

pub use gbnf::gbnf_to_lark;

/// What a request constrains its output to.
#[derive(Debug, Clone, PartialEq)]
pub enum Grammar {
    /// Any JSON object (`response_format: {"type": "json_object"}`).
    JsonObject,
    /// JSON valid against this schema.
    JsonSchema(serde_json::Value),
    /// A grammar in llguidance's Lark dialect.
    Lark(String),
    /// A grammar in llama.cpp's GBNF.
    Gbnf(String),
    /// Text matching this regular expression (Rust `regex` syntax), whole.
    Regex(String),
}

/// Turns text into token ids (the model's tokenizer, without special tokens).
pub type Tokenize = Arc<dyn Fn(&[u8]) -> Vec<u32> + Send + Sync>;

/// A model's vocabulary as the grammar engine needs it; built once, shared by every request.
pub struct GrammarVocab {
    factory: ParserFactory,
}

/// One token of the vocabulary: its bytes, and whether it is special (a control token that grammar text never
/// matches, such as `<|im_end|>`).
#[derive(Debug, Clone)]
pub struct VocabToken {
    pub bytes: Vec<u8>,
    pub special: bool,
}

struct Env {
    trie: TokTrie,
    tokenize: Tokenize,
}

impl TokenizerEnv for Env {
    fn tok_trie(&self) -> &TokTrie {
        &self.trie
    }
    fn tokenize_bytes(&self, s: &[u8]) -> Vec<u32> {
        (self.tokenize)(s)
    }
}

impl GrammarVocab {
    /// `tokens` in id order; `end_of_generation`: the ids that end a sequence (allowed only where the grammar
    /// may end). Fails on an empty vocabulary or no end-of-generation token.
    pub fn new(
        tokens: &[VocabToken],
        end_of_generation: &[u32],
        tokenize: Tokenize,
    ) -> Result<GrammarVocab, ConstraintError> {
        let (&eos, n) = match (end_of_generation.first(), u32::try_from(tokens.len())) {
            (Some(eos), Ok(n)) if n > 0 => (eos, n),
            _ => {
                return Err(ConstraintError::Invalid(
                    "the vocabulary has no end-of-generation token".into(),
                ));
            }
        };
        let words: Vec<Vec<u8>> = tokens.iter().map(trie_word).collect();
        let trie =
            TokTrie::from(&TokRxInfo::new(n, eos), &words).with_eos_tokens(end_of_generation);
        let env: TokEnv = Arc::new(Env { trie, tokenize });
        let mut factory =
            ParserFactory::new_simple(&env).map_err(|e| ConstraintError::Invalid(e.to_string()))?;
        factory.quiet();
        Ok(GrammarVocab { factory })
    }

    /// A constraint for one sequence, or why `grammar` is not usable.
    pub fn compile(&self, grammar: &Grammar) -> Result<GrammarConstraint, ConstraintError> {
        let top = match grammar {
            Grammar::JsonObject => TopLevelGrammar::from_json_schema(bounded_whitespace(
                serde_json::json!({"type": "object"}),
            )),
            Grammar::JsonSchema(schema) => {
                TopLevelGrammar::from_json_schema(bounded_whitespace(schema.clone()))
            }
            Grammar::Lark(text) => TopLevelGrammar::from_lark(text.clone()),
            Grammar::Gbnf(text) => TopLevelGrammar::from_lark(gbnf_to_lark(text)?),
            Grammar::Regex(pattern) => TopLevelGrammar::from_regex(pattern),
        };
        let matcher = Matcher::new(self.factory.create_parser(top));
        match matcher.get_error() {
            Some(e) => Err(ConstraintError::Invalid(e)),
            None => Ok(GrammarConstraint { matcher }),
        }
    }
}

/// Most whitespace characters in a row between two JSON tokens (llama.cpp's JSON grammars allow a newline and
/// up to 20 more).
pub const JSON_MAX_WHITESPACE: usize = 20;

/// llguidance lets whitespace run on without end between JSON tokens (a model that favours spaces never
/// finishes its object); this bounds each run to [`JSON_MAX_WHITESPACE`], unless the schema sets its own
/// `x-guidance` options (llguidance's per-schema settings, read only from the schema's top level).
fn bounded_whitespace(mut schema: serde_json::Value) -> serde_json::Value {
    if let serde_json::Value::Object(map) = &mut schema
        && !map.contains_key("x-guidance")
    {
        map.insert(
            "x-guidance".into(),
            serde_json::json!({
                "whitespace_pattern": format!("[\\x20\\x0A\\x0D\\x09]{{1,{JSON_MAX_WHITESPACE}}}")
            }),
        );
    }
    schema
}

/// Special tokens are marked so that grammar text never produces them (llguidance's convention).
fn trie_word(token: &VocabToken) -> Vec<u8> {
    if token.special {
        let mut word = vec![TokTrie::SPECIAL_TOKEN_MARKER];
        word.extend_from_slice(&token.bytes);
        word
    } else {
        token.bytes.clone()
    }
}

/// A compiled grammar following one sequence.
pub struct GrammarConstraint {
    matcher: Matcher,
}

impl GrammarConstraint {
    /// True once the grammar has ended: only end of generation may follow.
    pub fn is_finished(&self) -> bool {
        self.matcher.is_stopped()
    }

    fn failed(&self, e: impl ToString) -> ConstraintError {
        ConstraintError::Failed(self.matcher.get_error().unwrap_or_else(|| e.to_string()))
    }
}

impl TokenConstraint for GrammarConstraint {
    fn allows(&mut self, token: u32) -> Result<bool, ConstraintError> {
        if self.matcher.is_stopped() {
            return Ok(self
                .matcher
                .tok_env()
                .is_ok_and(|env| env.tok_trie().eos_tokens().contains(&token)));
        }
        match self.matcher.validate_tokens(&[token]) {
            Ok(n) => Ok(n == 1),
            Err(e) => Err(self.failed(e)),
        }
    }

    fn mask(&mut self) -> Result<TokenMask, ConstraintError> {
        match self.matcher.compute_mask_or_eos() {
            Ok(mask) => Ok(TokenMask::from_words(mask.as_slice().to_vec())),
            Err(e) => Err(self.failed(e)),
        }
    }

    fn accept(&mut self, token: u32) -> Result<(), ConstraintError> {
        if self.matcher.is_stopped() {
            return Ok(());
        }
        self.matcher
            .consume_token(token)
            .map_err(|e| self.failed(e))
    }

    fn box_clone(&self) -> Box<dyn TokenConstraint> {
        Box::new(GrammarConstraint {
            matcher: self.matcher.deep_clone(),
        })
    }
}

#[cfg(test)]
mod tests;
