//! One generated choice as plain pieces, for the APIs without `n` (Ollama's and Anthropic's): text, then the
//! end or an error. The shutdown deadline passing ends it with an error; dropping the stream cancels the
//! choice in the engine.

use cria_engine::{Event, FinishReason};
use futures_util::FutureExt;
use futures_util::stream::{self, BoxStream, StreamExt};

use crate::error::ApiError;
use crate::generate::ChoiceRx;
use crate::state::AppState;

/// What a single-choice stream yields.
#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    /// Text released by one token (never empty).
    Text(String),
    /// The last piece of a finished choice.
    Done {
        reason: FinishReason,
        prompt_tokens: usize,
        completion_tokens: usize,
        /// The generated tokens' ids, when the choice was submitted with logprobs (else empty).
        token_ids: Vec<u32>,
    },
    /// The last piece of a choice that failed (or was still running at the shutdown deadline).
    Failed(ApiError),
}

/// The pieces of `choice`, ending with [`Piece::Done`] or [`Piece::Failed`].
pub fn pieces(state: &AppState, choice: ChoiceRx) -> BoxStream<'static, Piece> {
    let deadline = state.deadline_passed().boxed();
    stream::unfold(Some((choice, deadline, Vec::new())), |held| async move {
        let (mut choice, mut deadline, mut ids) = held?;
        loop {
            let event = tokio::select! {
                biased;
                () = &mut deadline => return Some((Piece::Failed(ApiError::shutdown_deadline()), None)),
                event = choice.next() => event,
            };
            if let Some(Event::Token {
                logprob: Some(lp), ..
            }) = &event
            {
                ids.push(lp.id);
            }
            let piece = match event {
                Some(Event::Token { text, .. }) if text.is_empty() => continue,
                Some(Event::Token { text, .. }) => Piece::Text(text),
                Some(Event::Done {
                    reason,
                    prompt_tokens,
                    completion_tokens,
                    ..
                }) => {
                    let done = Piece::Done {
                        reason,
                        prompt_tokens,
                        completion_tokens,
                        token_ids: std::mem::take(&mut ids),
                    };
                    return Some((done, None));
                }
                Some(Event::Failed(message)) => {
                    return Some((Piece::Failed(ApiError::internal(message)), None));
                }
                None => {
                    let gone = ApiError::internal("the engine stopped before the request finished");
                    return Some((Piece::Failed(gone), None));
                }
            };
            return Some((piece, Some((choice, deadline, ids))));
        }
    })
    .boxed()
}
