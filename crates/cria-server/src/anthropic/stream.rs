//! A streamed message as Anthropic's server-sent events, in their order: `message_start`,
//! `content_block_start`, `ping`, `content_block_delta` (`text_delta`)..., `content_block_stop`,
//! `message_delta` (stop reason and output tokens), `message_stop`. A failure midway ends the stream with an
//! `error` event.

use std::convert::Infallible;

use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::stream::{self, Stream, StreamExt};
use serde_json::{Value, json};

use super::error::AnthropicError;
use super::stop_reason;
use super::types::MessageOut;
use crate::generate::ChoiceRx;
use crate::single::{self, Piece};
use crate::state::AppState;

fn event(name: &'static str, data: Value) -> Result<SseEvent, Infallible> {
    Ok(SseEvent::default().event(name).data(data.to_string()))
}

/// The SSE response: `head` (the message without content) opens it.
pub fn sse(
    state: &AppState,
    head: MessageOut,
    stops: Vec<String>,
    choice: ChoiceRx,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>> + use<>> {
    let opening = vec![
        event(
            "message_start",
            json!({"type": "message_start", "message": head}),
        ),
        event(
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ),
        event("ping", json!({"type": "ping"})),
    ];
    let body =
        single::pieces(state, choice).flat_map(move |piece| stream::iter(events(piece, &stops)));
    Sse::new(stream::iter(opening).chain(body)).keep_alive(KeepAlive::default())
}

fn events(piece: Piece, stops: &[String]) -> Vec<Result<SseEvent, Infallible>> {
    match piece {
        Piece::Text(text) => vec![event(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}}),
        )],
        Piece::Done {
            reason,
            completion_tokens,
            ..
        } => {
            let (stop_reason, stop_sequence) = stop_reason(reason, stops);
            vec![
                event(
                    "content_block_stop",
                    json!({"type": "content_block_stop", "index": 0}),
                ),
                event(
                    "message_delta",
                    json!({
                        "type": "message_delta",
                        "delta": {"stop_reason": stop_reason, "stop_sequence": stop_sequence},
                        "usage": {"output_tokens": completion_tokens},
                    }),
                ),
                event("message_stop", json!({"type": "message_stop"})),
            ]
        }
        Piece::Failed(e) => vec![event("error", AnthropicError(e).body())],
    }
}
