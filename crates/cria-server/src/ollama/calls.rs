//! Tool calls in Ollama's shape: the output goes through the shared tool-call parser; text comes out as it
//! is parsed, each call whole as `{"function": {"name", "arguments": {...}}}` (Ollama sends calls whole,
//! never in pieces).

use serde_json::{Value, json};

use crate::tools::{OutputParser, OutputSyntax, Piece};

/// One choice's output split into text and calls.
pub struct Calls {
    parser: Option<OutputParser>,
    /// Each call's name and arguments (JSON text) so far.
    calls: Vec<(String, String)>,
}

impl Calls {
    /// `syntax` `None`: all output is text.
    pub fn new(syntax: Option<OutputSyntax>) -> Self {
        Calls {
            parser: syntax.map(OutputParser::new),
            calls: Vec::new(),
        }
    }

    /// The text `text` releases (calls are kept until [`Calls::tool_calls`]).
    pub fn push(&mut self, text: &str) -> String {
        match &mut self.parser {
            None => text.to_string(),
            Some(parser) => {
                let pieces = parser.push(text);
                self.take(pieces)
            }
        }
    }

    /// The text held back until the end.
    pub fn finish(&mut self) -> String {
        match &mut self.parser {
            None => String::new(),
            Some(parser) => {
                let pieces = parser.finish();
                self.take(pieces)
            }
        }
    }

    fn take(&mut self, pieces: Vec<Piece>) -> String {
        let mut text = String::new();
        for piece in pieces {
            match piece {
                Piece::Content(t) | Piece::Reasoning(t) => text.push_str(&t),
                Piece::CallStart(name) => self.calls.push((name, String::new())),
                Piece::Arguments(t) => {
                    if let Some((_, arguments)) = self.calls.last_mut() {
                        arguments.push_str(&t);
                    }
                }
            }
        }
        text
    }

    /// The calls parsed, as `message.tool_calls` (`None` when there are none); arguments that are not a JSON
    /// object (a call cut short) are `{}`.
    pub fn tool_calls(&self) -> Option<Value> {
        if self.calls.is_empty() {
            return None;
        }
        let calls = self
            .calls
            .iter()
            .enumerate()
            .map(|(index, (name, arguments))| {
                let arguments = match serde_json::from_str::<Value>(arguments) {
                    Ok(v @ Value::Object(_)) => v,
                    _ => json!({}),
                };
                json!({"function": {"index": index, "name": name, "arguments": arguments}})
            })
            .collect();
        Some(Value::Array(calls))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::Family;

    fn hermes() -> Option<OutputSyntax> {
        Some(OutputSyntax {
            calls: Some(Family::Hermes),
            reasoning: false,
            starts_in_think: false,
        })
    }

    #[test]
    fn calls_come_whole_with_object_arguments_however_the_text_is_cut() {
        let output = "Let me look.<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"get_time\", \"arguments\": {}}\n</tool_call>";
        for step in [1, 3, output.len()] {
            let mut calls = Calls::new(hermes());
            let mut text = String::new();
            let chars: Vec<char> = output.chars().collect();
            for piece in chars.chunks(step) {
                text.push_str(&calls.push(&piece.iter().collect::<String>()));
            }
            text.push_str(&calls.finish());
            assert_eq!(text, "Let me look.");
            assert_eq!(
                calls.tool_calls(),
                Some(json!([
                    {"function": {"index": 0, "name": "get_weather", "arguments": {"city": "Oslo"}}},
                    {"function": {"index": 1, "name": "get_time", "arguments": {}}},
                ]))
            );
        }
    }

    #[test]
    fn without_tools_everything_is_text() {
        let mut calls = Calls::new(None);
        assert_eq!(calls.push("<tool_call>"), "<tool_call>");
        assert_eq!(calls.finish(), "");
        assert_eq!(calls.tool_calls(), None);
    }
}
