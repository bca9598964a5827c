//! The vocabulary's parser factory and the grammars compiled with it, most recently used kept.

use std::sync::Mutex;

use llguidance::api::TopLevelGrammar;
use llguidance::toktrie::TokEnv;
use llguidance::{Matcher, ParserFactory};

use crate::constraint::ConstraintError;

/// How many compiled grammars are kept.
const KEPT: usize = 32;

pub(crate) struct CompiledCache {
    factory: ParserFactory,
    /// Least recently used first.
    kept: Mutex<Vec<(String, Matcher)>>,
}

impl CompiledCache {
    pub fn new(env: &TokEnv) -> Result<CompiledCache, ConstraintError> {
        let mut factory =
            ParserFactory::new_simple(env).map_err(|e| ConstraintError::Invalid(e.to_string()))?;
        factory.quiet();
        Ok(CompiledCache {
            factory,
            kept: Mutex::new(Vec::new()),
        })
    }

    pub fn env(&self) -> &TokEnv {
        self.factory.tok_env()
    }

    /// A fresh matcher for the grammar `key` names: a copy of the kept one (sharing its lexer's automaton),
    /// or one compiled from `grammar()` and kept. A grammar that does not compile is not kept.
    pub fn get_or_compile(
        &self,
        key: &str,
        grammar: impl FnOnce() -> Result<TopLevelGrammar, ConstraintError>,
    ) -> Result<Matcher, ConstraintError> {
        if let Some(matcher) = self.take_copy(key) {
            return Ok(matcher);
        }
        let matcher = Matcher::new(self.factory.create_parser(grammar()?));
        if let Some(e) = matcher.get_error() {
            return Err(ConstraintError::Invalid(e));
        }
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        if !kept.iter().any(|(k, _)| k == key) {
            if kept.len() >= KEPT {
                kept.remove(0);
            }
            kept.push((key.to_string(), matcher.clone()));
        }
        Ok(matcher)
    }

    fn take_copy(&self, key: &str) -> Option<Matcher> {
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        let at = kept.iter().position(|(k, _)| k == key)?;
        let entry = kept.remove(at);
        let copy = entry.1.clone();
        kept.push(entry);
        Some(copy)
    }
}
