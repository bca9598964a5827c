//! A streamed message as Anthropic's server-sent events, in their order: `message_start`, then each content
//! block as `content_block_start`, its deltas (`text_delta`, or a `tool_use` block's `input_json_delta`)
//! and `content_block_stop`, then `message_delta` (stop reason and output tokens) and `message_stop`; a
//! `ping` after the first. A failure midway ends the stream with an `error` event.
//!
//! Without tools the text block opens at once; with tools the output goes through the tool-call parser and
//! blocks open as it completes them (text, then one `tool_use` block a call).

use std::convert::Infallible;

use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::stream::{self, Stream, StreamExt};
use serde_json::{Value, json};

use super::error::AnthropicError;
use super::stop_reason;
use super::tools::tool_use_id;
use super::types::MessageOut;
use crate::generate::ChoiceRx;
use crate::single::{self, Piece};
use crate::state::AppState;
use crate::tools::{self, OutputParser, OutputSyntax};

type Sent = Result<SseEvent, Infallible>;

fn event(name: &'static str, data: Value) -> Sent {
    Ok(SseEvent::default().event(name).data(data.to_string()))
}

/// The SSE response: `head` (the message without content) opens it.
pub fn sse(
    state: &AppState,
    head: MessageOut,
    stops: Vec<String>,
    choice: ChoiceRx,
    syntax: Option<OutputSyntax>,
) -> Sse<impl Stream<Item = Sent> + use<>> {
    let mut blocks = Blocks {
        parser: syntax.map(OutputParser::new),
        open: None,
        next: 0,
        calls: 0,
    };
    let mut opening = vec![event(
        "message_start",
        json!({"type": "message_start", "message": head}),
    )];
    if blocks.parser.is_none() {
        opening.extend(blocks.start(json!({"type": "text", "text": ""}), Open::Text));
    }
    opening.push(event("ping", json!({"type": "ping"})));
    let body = single::pieces(state, choice)
        .flat_map(move |piece| stream::iter(blocks.events(piece, &stops)));
    Sse::new(stream::iter(opening).chain(body)).keep_alive(KeepAlive::default())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Open {
    Text,
    ToolUse,
}

/// The content blocks so far: which one is open and the next one's index.
struct Blocks {
    parser: Option<OutputParser>,
    open: Option<Open>,
    next: usize,
    calls: usize,
}

impl Blocks {
    fn events(&mut self, piece: Piece, stops: &[String]) -> Vec<Sent> {
        match piece {
            Piece::Text(text) => match &mut self.parser {
                None => self.text(text),
                Some(parser) => {
                    let pieces = parser.push(&text);
                    self.parsed(pieces)
                }
            },
            Piece::Done {
                reason,
                completion_tokens,
                ..
            } => {
                let mut out = match &mut self.parser {
                    Some(parser) => {
                        let pieces = parser.finish();
                        self.parsed(pieces)
                    }
                    None => Vec::new(),
                };
                if self.next == 0 && self.open.is_none() {
                    out.extend(self.start(json!({"type": "text", "text": ""}), Open::Text));
                }
                out.extend(self.close());
                let (stop_reason, stop_sequence) = stop_reason(reason, stops, self.calls);
                out.push(event(
                    "message_delta",
                    json!({
                        "type": "message_delta",
                        "delta": {"stop_reason": stop_reason, "stop_sequence": stop_sequence},
                        "usage": {"output_tokens": completion_tokens},
                    }),
                ));
                out.push(event("message_stop", json!({"type": "message_stop"})));
                out
            }
            Piece::Failed(e) => vec![event("error", AnthropicError(e).body())],
        }
    }

    fn parsed(&mut self, pieces: Vec<tools::Piece>) -> Vec<Sent> {
        let mut out = Vec::new();
        for piece in pieces {
            match piece {
                tools::Piece::Content(t) | tools::Piece::Reasoning(t) => out.extend(self.text(t)),
                tools::Piece::CallStart(name) => {
                    self.calls += 1;
                    out.extend(self.close());
                    let block =
                        json!({"type": "tool_use", "id": tool_use_id(), "name": name, "input": {}});
                    out.extend(self.start(block, Open::ToolUse));
                }
                tools::Piece::Arguments(t) => {
                    out.push(self.delta(json!({"type": "input_json_delta", "partial_json": t})))
                }
            }
        }
        out
    }

    /// A text delta, opening a text block first when another kind (or none) is open.
    fn text(&mut self, text: String) -> Vec<Sent> {
        let mut out = Vec::new();
        if self.open != Some(Open::Text) {
            out.extend(self.close());
            out.extend(self.start(json!({"type": "text", "text": ""}), Open::Text));
        }
        out.push(self.delta(json!({"type": "text_delta", "text": text})));
        out
    }

    fn start(&mut self, block: Value, kind: Open) -> Vec<Sent> {
        self.open = Some(kind);
        vec![event(
            "content_block_start",
            json!({"type": "content_block_start", "index": self.next, "content_block": block}),
        )]
    }

    fn delta(&self, delta: Value) -> Sent {
        event(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": self.next, "delta": delta}),
        )
    }

    fn close(&mut self) -> Vec<Sent> {
        if self.open.take().is_none() {
            return Vec::new();
        }
        let index = self.next;
        self.next += 1;
        vec![event(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": index}),
        )]
    }
}
