//! Chat chunks: the role first, then content, reasoning and tool-call deltas as a choice's output parser
//! completes them, then the finish reason.

use std::collections::HashMap;

use cria_engine::{FinishReason, TokenLogprob};
use serde_json::{Value, json};

use super::FINGERPRINT;
use super::chat::finish_reason;
use crate::frontend::Frontend;
use crate::logprobs;
use crate::stream::ChunkFormat;
use crate::tools::{FunctionDelta, OutputParser, OutputSyntax, Piece, ToolCallDelta, call_id};
use crate::types::{ChatChunk, ChatChunkChoice, Delta, Usage};

pub struct Meta {
    pub id: String,
    pub created: u64,
    pub model: String,
}

pub struct ChatFormat {
    meta: Meta,
    include_usage: bool,
    syntax: Option<OutputSyntax>,
    /// Each choice's parser (when the output is split into reasoning and calls).
    parsers: HashMap<usize, OutputParser>,
}

impl ChatFormat {
    pub fn new(meta: Meta, include_usage: bool, syntax: Option<OutputSyntax>) -> Self {
        ChatFormat {
            meta,
            include_usage,
            syntax,
            parsers: HashMap::new(),
        }
    }

    fn chunk(&self, choices: Vec<ChatChunkChoice>, usage: Option<Usage>) -> Value {
        let chunk = ChatChunk {
            id: self.meta.id.clone(),
            object: "chat.completion.chunk",
            created: self.meta.created,
            model: self.meta.model.clone(),
            system_fingerprint: FINGERPRINT,
            choices,
            usage: self.include_usage.then_some(usage),
        };
        serde_json::to_value(chunk).unwrap_or_else(|e| json!({"error": e.to_string()}))
    }

    fn choice(index: usize, delta: Delta, finish: Option<&'static str>) -> ChatChunkChoice {
        ChatChunkChoice {
            index,
            delta,
            logprobs: None,
            finish_reason: finish,
        }
    }

    /// The deltas for parsed pieces; `calls` is the number of calls the choice had before them.
    fn deltas(pieces: Vec<Piece>, mut calls: usize) -> Vec<Delta> {
        pieces
            .into_iter()
            .map(|piece| match piece {
                Piece::Content(text) => Delta {
                    content: Some(text),
                    ..Delta::default()
                },
                Piece::Reasoning(text) => Delta {
                    reasoning_content: Some(text.clone()),
                    reasoning: Some(text),
                    ..Delta::default()
                },
                Piece::CallStart(name) => {
                    calls += 1;
                    call_delta(calls - 1, Some(name), String::new())
                }
                Piece::Arguments(text) => call_delta(calls.saturating_sub(1), None, text),
            })
            .collect()
    }

    fn parsed_chunks(&mut self, index: usize, text: &str, end: bool) -> (Vec<Delta>, usize) {
        let Some(syntax) = self.syntax else {
            let delta = Delta {
                content: Some(text.to_string()),
                ..Delta::default()
            };
            return (if end { Vec::new() } else { vec![delta] }, 0);
        };
        let parser = self
            .parsers
            .entry(index)
            .or_insert_with(|| OutputParser::new(syntax));
        let before = parser.calls();
        let pieces = if end {
            parser.finish()
        } else {
            parser.push(text)
        };
        (Self::deltas(pieces, before), parser.calls())
    }
}

fn call_delta(index: usize, name: Option<String>, arguments: String) -> Delta {
    let first = name.is_some();
    Delta {
        tool_calls: Some(vec![ToolCallDelta {
            index,
            id: first.then(call_id),
            kind: first.then_some("function"),
            function: FunctionDelta { name, arguments },
        }]),
        ..Delta::default()
    }
}

impl ChunkFormat for ChatFormat {
    fn start(&self, index: usize) -> Option<Value> {
        let delta = Delta {
            role: Some("assistant"),
            content: Some(String::new()),
            ..Delta::default()
        };
        Some(self.chunk(vec![Self::choice(index, delta, None)], None))
    }

    fn token(
        &mut self,
        index: usize,
        text: String,
        logprob: Option<&TokenLogprob>,
        frontend: &dyn Frontend,
    ) -> Vec<Value> {
        let (mut deltas, _) = self.parsed_chunks(index, &text, false);
        if deltas.is_empty() && logprob.is_some() {
            // Held-back text still reports its token's logprob.
            deltas.push(Delta::default());
        }
        let mut logprob = logprob.map(|lp| logprobs::chat(frontend, std::slice::from_ref(lp)));
        deltas
            .into_iter()
            .map(|delta| {
                let mut choice = Self::choice(index, delta, None);
                choice.logprobs = logprob.take();
                self.chunk(vec![choice], None)
            })
            .collect()
    }

    fn finish(&mut self, index: usize, reason: FinishReason) -> Vec<Value> {
        let (deltas, calls) = self.parsed_chunks(index, "", true);
        let mut chunks: Vec<Value> = deltas
            .into_iter()
            .map(|delta| self.chunk(vec![Self::choice(index, delta, None)], None))
            .collect();
        let last = Self::choice(index, Delta::default(), Some(finish_reason(reason, calls)));
        chunks.push(self.chunk(vec![last], None));
        chunks
    }

    fn usage(&self, usage: Usage) -> Value {
        self.chunk(Vec::new(), Some(usage))
    }
}
