//! Server-sent events: the choices' engine events as OpenAI chunks, then the usage chunk if asked, then
//! `data: [DONE]`. Dropping the stream (client gone) drops the choices, which cancels them in the engine.
//! A failed choice, or the shutdown deadline passing, ends the stream with an error event and `[DONE]`.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;

use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use cria_engine::{Event, FinishReason, TokenLogprob};
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use futures_util::stream::{self, BoxStream, SelectAll, Stream, StreamExt};
use serde_json::Value;

use crate::error::ApiError;
use crate::frontend::Frontend;
use crate::generate::ChoiceRx;
use crate::state::AppState;
use crate::types::Usage;

/// How one endpoint writes its chunks.
pub trait ChunkFormat: Send + 'static {
    /// The chunk opening choice `index`, if the format has one (chat sends the role).
    fn start(&self, index: usize) -> Option<Value>;
    /// The chunks for a token's text (none while text is held back, several when it completes pieces).
    fn token(
        &mut self,
        index: usize,
        text: String,
        logprob: Option<&TokenLogprob>,
        frontend: &dyn Frontend,
    ) -> Vec<Value>;
    /// The chunks closing choice `index` (what was held back, then the finish reason).
    fn finish(&mut self, index: usize, reason: FinishReason) -> Vec<Value>;
    fn usage(&self, usage: Usage) -> Value;
}

type Tagged = (usize, bool, Option<Event>);

/// Turns each choice into a stream of `(index, counts_prompt, event)`, ending with a `None` event.
fn tagged(choice: ChoiceRx) -> BoxStream<'static, Tagged> {
    let index = choice.index;
    let counts = choice.counts_prompt();
    stream::unfold(Some(choice), move |state| async move {
        let mut choice = state?;
        match choice.next().await {
            Some(ev) => Some(((index, counts, Some(ev)), Some(choice))),
            None => Some(((index, counts, None), None)),
        }
    })
    .boxed()
}

struct StreamState<F> {
    format: F,
    deadline: BoxFuture<'static, ()>,
    frontend: Arc<dyn Frontend>,
    merged: SelectAll<BoxStream<'static, Tagged>>,
    pending: VecDeque<SseEvent>,
    usage: Option<Usage>,
    finished: bool,
}

impl<F: ChunkFormat> StreamState<F> {
    fn push(&mut self, value: Value) {
        self.pending
            .push_back(SseEvent::default().data(value.to_string()));
    }

    fn on_event(&mut self, index: usize, counts_prompt: bool, event: Option<Event>) {
        match event {
            Some(Event::Token { text, logprob }) if !text.is_empty() || logprob.is_some() => {
                let chunks =
                    self.format
                        .token(index, text, logprob.as_ref(), self.frontend.as_ref());
                for chunk in chunks {
                    self.push(chunk);
                }
            }
            Some(Event::Token { .. }) => {}
            Some(Event::Done {
                reason,
                prompt_tokens,
                completion_tokens,
                cached_tokens,
            }) => {
                if let Some(u) = &mut self.usage {
                    let (prompt, cached) = if counts_prompt {
                        (prompt_tokens, cached_tokens)
                    } else {
                        (0, 0)
                    };
                    *u = Usage::new(
                        u.prompt_tokens + prompt,
                        u.completion_tokens + completion_tokens,
                    )
                    .with_cached(u.prompt_tokens_details.cached_tokens + cached);
                }
                for chunk in self.format.finish(index, reason) {
                    self.push(chunk);
                }
            }
            Some(Event::Failed(message)) => self.fail(ApiError::internal(message)),
            None => {}
        }
    }

    /// Ends the stream with `error` as its last event before `[DONE]`; dropping the choices cancels them.
    fn fail(&mut self, error: ApiError) {
        self.push(error.body());
        self.pending.push_back(SseEvent::default().data("[DONE]"));
        self.finished = true;
        self.merged = stream::select_all(Vec::new());
    }

    fn on_end(&mut self) {
        if let Some(usage) = self.usage {
            let chunk = self.format.usage(usage);
            self.push(chunk);
        }
        self.pending.push_back(SseEvent::default().data("[DONE]"));
        self.finished = true;
    }

    async fn next_event(mut self) -> Option<(Result<SseEvent, Infallible>, Self)> {
        loop {
            if let Some(ev) = self.pending.pop_front() {
                return Some((Ok(ev), self));
            }
            if self.finished {
                return None;
            }
            let next = tokio::select! {
                biased;
                () = &mut self.deadline => {
                    self.fail(ApiError::shutdown_deadline());
                    continue;
                }
                next = self.merged.next() => next,
            };
            match next {
                Some((index, counts, event)) => self.on_event(index, counts, event),
                None => self.on_end(),
            }
        }
    }
}

/// The SSE response for `choices`.
pub fn sse<F: ChunkFormat>(
    state: &AppState,
    format: F,
    frontend: Arc<dyn Frontend>,
    choices: Vec<ChoiceRx>,
    include_usage: bool,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>> + use<F>> {
    let mut state = StreamState {
        pending: VecDeque::new(),
        merged: stream::select_all(Vec::new()),
        usage: include_usage.then(Usage::default),
        finished: false,
        deadline: state.deadline_passed().boxed(),
        frontend,
        format,
    };
    for choice in choices {
        if let Some(chunk) = state.format.start(choice.index) {
            state.push(chunk);
        }
        state.merged.push(tagged(choice));
    }
    Sse::new(stream::unfold(state, StreamState::next_event)).keep_alive(KeepAlive::default())
}
