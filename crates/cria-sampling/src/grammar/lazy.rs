//! Lazy grammars (llama.cpp's name): the output is free until a trigger appears in it, and the grammar holds
//! it from the trigger on. Tool calls under `tool_choice: "auto"` use them: text is never masked (no mask
//! is computed for it, so free text costs nothing), and a call is held to its schema from its opener on.

use std::sync::Arc;

/// What starts a lazy grammar.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Trigger {
    /// This text anywhere in the output; the grammar takes the output from the text's first byte.
    Text(String),
    /// This token (a special token, which grammar text never produces); the grammar takes it first.
    Token(u32),
    /// The output opening with this text after any leading whitespace (Llama 3's bare JSON calls); the
    /// grammar takes the output from the text's first byte.
    Start(String),
}

/// What the grammar is fed when a trigger fires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fired {
    Token(u32),
    /// The output from the trigger's first byte to the end of the token that completed it.
    Text(Vec<u8>),
}

/// The output of a lazy grammar that has not started yet.
#[derive(Debug, Clone)]
pub(crate) struct Waiting {
    triggers: Arc<[Trigger]>,
    text: Vec<u8>,
}

impl Waiting {
    pub fn new(triggers: Arc<[Trigger]>) -> Waiting {
        Waiting {
            triggers,
            text: Vec::new(),
        }
    }

    /// Records a generated token: `bytes` is its text, `None` for a special token (which no text trigger
    /// sees). Returns what the grammar starts with when a trigger fired.
    pub fn push(&mut self, token: u32, bytes: Option<&[u8]>) -> Option<Fired> {
        if self.triggers.contains(&Trigger::Token(token)) {
            return Some(Fired::Token(token));
        }
        let before = self.text.len();
        self.text.extend_from_slice(bytes?);
        let start = self
            .triggers
            .iter()
            .filter_map(|t| self.fired_at(t, before))
            .min()?;
        Some(Fired::Text(self.text[start..].to_vec()))
    }

    /// Where `trigger` starts in the output, if the bytes from `before` on completed it.
    fn fired_at(&self, trigger: &Trigger, before: usize) -> Option<usize> {
        match trigger {
            Trigger::Token(_) => None,
            Trigger::Text(t) if t.is_empty() => None,
            Trigger::Text(t) => {
                // Only an occurrence that ends in the new bytes is new.
                let from = before.saturating_sub(t.len() - 1);
                find(&self.text[from..], t.as_bytes()).map(|i| from + i)
            }
            Trigger::Start(t) => {
                let lead = self.text.len() - self.text.trim_ascii_start().len();
                let opened = self.text[lead..].starts_with(t.as_bytes());
                // Fires once, on the token that completes the opening.
                (opened && lead + t.len() > before).then_some(lead)
            }
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiting(triggers: &[Trigger]) -> Waiting {
        Waiting::new(triggers.to_vec().into())
    }

    #[test]
    fn text_trigger_fires_across_token_boundaries() {
        let mut w = waiting(&[Trigger::Text("<tool_call>".into())]);
        assert_eq!(w.push(1, Some(b"Sure. <tool")), None);
        assert_eq!(
            w.push(2, Some(b"_call>\n{")),
            Some(Fired::Text(b"<tool_call>\n{".to_vec()))
        );
    }

    #[test]
    fn token_trigger_fires_on_its_token_only() {
        let mut w = waiting(&[Trigger::Token(7)]);
        assert_eq!(w.push(3, None), None);
        assert_eq!(w.push(4, Some(b"[TOOL_CALLS]")), None);
        assert_eq!(w.push(7, None), Some(Fired::Token(7)));
    }

    #[test]
    fn start_trigger_fires_only_at_the_start() {
        let mut w = waiting(&[Trigger::Start("{\"".into())]);
        assert_eq!(w.push(1, Some(b" \n")), None);
        assert_eq!(w.push(2, Some(b"{")), None);
        assert_eq!(
            w.push(3, Some(b"\"name")),
            Some(Fired::Text(b"{\"name".to_vec()))
        );
        let mut late = waiting(&[Trigger::Start("{\"".into())]);
        assert_eq!(late.push(1, Some(b"Here: ")), None);
        assert_eq!(late.push(2, Some(b"{\"a\": 1}")), None);
    }

    #[test]
    fn the_earliest_trigger_wins() {
        let mut w = waiting(&[Trigger::Text("B".into()), Trigger::Text("A".into())]);
        assert_eq!(w.push(1, Some(b"xAyB")), Some(Fired::Text(b"AyB".to_vec())));
    }
}
