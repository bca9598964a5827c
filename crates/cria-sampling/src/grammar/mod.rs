//! Grammar-constrained generation through llguidance (the library llama.cpp and mistral.rs use): JSON objects,
//! JSON schemas, Lark grammars, llama.cpp's GBNF (converted to Lark) and regular expressions.
//!
//! `GrammarVocab` is built once per model from its vocabulary; `compile` turns a request's grammar into a
//! `GrammarConstraint` (or an error before anything is generated: fail closed), one per sequence.
//! Compiled grammars are kept (a few dozen, least recently used out) and handed out as copies that share
//! the lexer's automaton: a grammar sent again (a schema, an agent's tools) is neither compiled again nor
//! made to rebuild the automaton states its earlier requests built.

mod cache;
mod gbnf;
mod lazy;

use std::sync::Arc;

use llguidance::Matcher;
use llguidance::api::TopLevelGrammar;
use llguidance::toktrie::{TokEnv, TokRxInfo, TokTrie, TokenizerEnv};

use crate::constraint::{ConstraintError, TokenConstraint, TokenMask};
use cache::CompiledCache;
use lazy::{Fired, Waiting};

pub use gbnf::gbnf_to_lark;
pub use lazy::Trigger;

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
    /// Free text until one of `triggers`, then `grammar` from the trigger on (a lazy grammar; `grammar`
    /// must not be lazy itself).
    Lazy {
        triggers: Vec<Trigger>,
        grammar: Box<Grammar>,
    },
}

impl Grammar {
    /// llguidance's form of a (not lazy) grammar.
    fn top_level(&self) -> Result<TopLevelGrammar, ConstraintError> {
        Ok(match self {
            Grammar::JsonObject => TopLevelGrammar::from_json_schema(bounded_whitespace(
                serde_json::json!({"type": "object"}),
            )),
            Grammar::JsonSchema(schema) => {
                TopLevelGrammar::from_json_schema(bounded_whitespace(schema.clone()))
            }
            Grammar::Lark(text) => TopLevelGrammar::from_lark(text.clone()),
            Grammar::Gbnf(text) => TopLevelGrammar::from_lark(gbnf_to_lark(text)?),
            Grammar::Regex(pattern) => TopLevelGrammar::from_regex(pattern),
            Grammar::Lazy { .. } => {
                return Err(ConstraintError::Invalid(
                    "a lazy grammar cannot hold another lazy grammar".into(),
                ));
            }
        })
    }

    /// A text that tells grammars apart, for the cache of compiled grammars.
    fn cache_key(&self) -> String {
        match self {
            Grammar::JsonObject => "json_object".into(),
            Grammar::JsonSchema(schema) => format!("json_schema {schema}"),
            Grammar::Lark(text) => format!("lark {text}"),
            Grammar::Gbnf(text) => format!("gbnf {text}"),
            Grammar::Regex(pattern) => format!("regex {pattern}"),
            Grammar::Lazy { triggers, grammar } => {
                format!("lazy {triggers:?} {}", grammar.cache_key())
            }
        }
    }
}

/// Turns text into token ids (the model's tokenizer, without special tokens).
pub type Tokenize = Arc<dyn Fn(&[u8]) -> Vec<u32> + Send + Sync>;

/// A model's vocabulary as the grammar engine needs it; built once, shared by every request.
pub struct GrammarVocab {
    compiled: CompiledCache,
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
        Ok(GrammarVocab {
            compiled: CompiledCache::new(&env)?,
        })
    }

    /// A constraint for one sequence, or why `grammar` is not usable.
    pub fn compile(&self, grammar: &Grammar) -> Result<GrammarConstraint, ConstraintError> {
        let (inner, phase) = match grammar {
            Grammar::Lazy { triggers, grammar } => (
                grammar.as_ref(),
                Phase::Waiting(Waiting::new(triggers.clone().into())),
            ),
            _ => (grammar, Phase::Active),
        };
        let matcher = self
            .compiled
            .get_or_compile(&inner.cache_key(), || inner.top_level())?;
        Ok(GrammarConstraint {
            matcher,
            phase,
            env: self.compiled.env().clone(),
        })
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
    phase: Phase,
    env: TokEnv,
}

/// Where a sequence is in its grammar.
#[derive(Debug, Clone)]
enum Phase {
    /// The grammar holds the output.
    Active,
    /// A lazy grammar before its trigger: the output is free.
    Waiting(Waiting),
    /// A lazy grammar whose trigger came in a form the grammar does not continue (the token that
    /// completed it went on off the grammar): the output stays free rather than failing.
    Free,
}

impl GrammarConstraint {
    /// True once the grammar has ended: only end of generation may follow.
    pub fn is_finished(&self) -> bool {
        matches!(self.phase, Phase::Active) && self.matcher.is_stopped()
    }

    /// True while a lazy grammar waits for its trigger (or gave up on it): nothing is masked.
    pub fn is_free(&self) -> bool {
        !matches!(self.phase, Phase::Active)
    }

    fn failed(&self, e: impl ToString) -> ConstraintError {
        ConstraintError::Failed(self.matcher.get_error().unwrap_or_else(|| e.to_string()))
    }

    fn trie(&self) -> &TokTrie {
        self.env.tok_trie()
    }

    /// Feeds the grammar what its trigger fired with; if the grammar does not take all of it, the output
    /// stays free.
    fn start(&mut self, fired: Fired) -> Result<(), ConstraintError> {
        let tokens = match fired {
            Fired::Token(t) => vec![t],
            Fired::Text(bytes) => self.trie().greedy_tokenize(&bytes),
        };
        let taken = self
            .matcher
            .validate_tokens(&tokens)
            .map_err(|e| self.failed(e))?;
        if taken < tokens.len() {
            self.phase = Phase::Free;
            return Ok(());
        }
        self.phase = Phase::Active;
        self.matcher
            .consume_tokens(&tokens)
            .map_err(|e| self.failed(e))
    }

    /// The text of `token`, `None` for a special token.
    fn token_text(&self, token: u32) -> Option<Vec<u8>> {
        let bytes = self.trie().token(token);
        (bytes.first() != Some(&TokTrie::SPECIAL_TOKEN_MARKER)).then(|| bytes.to_vec())
    }
}

impl TokenConstraint for GrammarConstraint {
    fn allows(&mut self, token: u32) -> Result<bool, ConstraintError> {
        if self.is_free() {
            return Ok(true);
        }
        if self.matcher.is_stopped() {
            return Ok(self.trie().eos_tokens().contains(&token));
        }
        match self.matcher.validate_tokens(&[token]) {
            Ok(n) => Ok(n == 1),
            Err(e) => Err(self.failed(e)),
        }
    }

    fn mask(&mut self) -> Result<TokenMask, ConstraintError> {
        if self.is_free() {
            return Ok(TokenMask::all(self.trie().vocab_size()));
        }
        match self.matcher.compute_mask_or_eos() {
            Ok(mask) => Ok(TokenMask::from_words(mask.as_slice().to_vec())),
            Err(e) => Err(self.failed(e)),
        }
    }

    fn accept(&mut self, token: u32) -> Result<(), ConstraintError> {
        match &self.phase {
            Phase::Active => {}
            Phase::Free => return Ok(()),
            Phase::Waiting(_) => {
                let text = self.token_text(token);
                let Phase::Waiting(waiting) = &mut self.phase else {
                    return Ok(());
                };
                return match waiting.push(token, text.as_deref()) {
                    Some(fired) => self.start(fired),
                    None => Ok(()),
                };
            }
        }
        if self.matcher.is_stopped() {
            return Ok(());
        }
        self.matcher
            .consume_token(token)
            .map_err(|e| self.failed(e))
    }

    fn box_clone(&self) -> Box<dyn TokenConstraint> {
        // A shallow copy: its own parser state, the lexer's automaton shared (llguidance guards it).
        Box::new(GrammarConstraint {
            matcher: self.matcher.clone(),
            phase: self.phase.clone(),
            env: self.env.clone(),
        })
    }
}

#[cfg(test)]
mod tests;
