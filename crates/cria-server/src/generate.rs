//! Submitting a request's choices to the engine and following their events (with latency metrics).

use std::time::Instant;

use cria_engine::{Event, FinishReason, Request, TokenLogprob};
use tokio::sync::mpsc::UnboundedReceiver;

use crate::error::ApiError;
use crate::models::Lease;
use crate::state::AppState;
use crate::validate::GenParams;

/// One choice being generated. Dropping it cancels the sequence in the engine.
pub struct ChoiceRx {
    pub index: usize,
    /// Whether this choice's prompt tokens count in the usage (once per prompt, not per choice).
    counts_prompt: bool,
    rx: UnboundedReceiver<Event>,
    state: AppState,
    started: Instant,
    last: Option<Instant>,
    /// Keeps the model loaded until the choice is done.
    _model: Lease,
}

impl ChoiceRx {
    /// The next event, recording time-to-first-token, inter-token latency and token counts.
    pub async fn next(&mut self) -> Option<Event> {
        let event = self.rx.recv().await?;
        let m = &self.state.metrics;
        match &event {
            Event::Token { .. } => {
                let now = Instant::now();
                match self.last {
                    None => m.ttft.observe((now - self.started).as_secs_f64()),
                    Some(last) => m.itl.observe((now - last).as_secs_f64()),
                }
                self.last = Some(now);
            }
            Event::Done {
                prompt_tokens,
                completion_tokens,
                ..
            } => {
                if self.counts_prompt {
                    m.prompt_tokens.inc_by(*prompt_tokens as u64);
                }
                m.generated_tokens.inc_by(*completion_tokens as u64);
            }
            Event::Failed(_) => {}
        }
        Some(event)
    }

    pub fn counts_prompt(&self) -> bool {
        self.counts_prompt
    }
}

/// Submits `params.n` choices for each prompt; choice `i` of prompt `p` has index `p * n + i`. With a seed,
/// choice `i` uses `seed + i`, so choices differ yet reproduce.
pub fn submit(
    state: &AppState,
    loaded: &Lease,
    prompts: Vec<Vec<u32>>,
    params: &GenParams,
    logprobs: Option<usize>,
    default_max_tokens: usize,
) -> Result<Vec<ChoiceRx>, ApiError> {
    let started = Instant::now();
    let engine = loaded.engine()?;
    // Compiled once, before anything is generated (an unusable grammar is a 400); each choice gets a copy.
    let constraint = match &params.grammar {
        Some((grammar, field)) => Some(
            loaded
                .frontend
                .constrain(grammar)
                .map_err(|e| ApiError::invalid(field, e))?,
        ),
        None => None,
    };
    let make = |prompt: &Vec<u32>, i: usize| {
        let mut sampling = params.sampling.clone();
        sampling.seed = sampling.seed.map(|s| s.wrapping_add(i as u64));
        Request {
            prompt: prompt.clone(),
            sampling,
            max_tokens: params.max_tokens.unwrap_or(default_max_tokens),
            stop: params.stop.clone(),
            logprobs,
            ignore_eos: params.ignore_eos,
            constraint: constraint.as_ref().map(|c| c.box_clone()),
            cache_salt: params.cache_salt.clone(),
        }
    };
    for prompt in &prompts {
        engine.check(&make(prompt, 0))?;
    }
    let mut choices = Vec::with_capacity(prompts.len() * params.n);
    for (p, prompt) in prompts.iter().enumerate() {
        for i in 0..params.n {
            // On error the choices already submitted are dropped here, which cancels them.
            let rx = engine.submit(make(prompt, i))?;
            let index = p * params.n + i;
            choices.push(ChoiceRx {
                index,
                counts_prompt: i == 0,
                rx,
                state: state.clone(),
                started,
                last: None,
                _model: loaded.clone(),
            });
        }
    }
    Ok(choices)
}

/// A finished choice.
#[derive(Debug, Clone)]
pub struct Collected {
    pub index: usize,
    pub text: String,
    pub finish: FinishReason,
    pub logprobs: Vec<TokenLogprob>,
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
    /// Of `prompt_tokens`, those taken from the prompt cache.
    pub cached_tokens: usize,
}

/// Follows one choice to its end.
pub async fn collect(mut choice: ChoiceRx) -> Result<Collected, ApiError> {
    let mut text = String::new();
    let mut logprobs = Vec::new();
    while let Some(event) = choice.next().await {
        match event {
            Event::Token { text: t, logprob } => {
                text.push_str(&t);
                logprobs.extend(logprob);
            }
            Event::Done {
                reason,
                prompt_tokens,
                completion_tokens,
                cached_tokens,
            } => {
                let (prompt_tokens, cached_tokens) = if choice.counts_prompt {
                    (prompt_tokens, cached_tokens)
                } else {
                    (0, 0)
                };
                return Ok(Collected {
                    index: choice.index,
                    text,
                    finish: reason,
                    logprobs,
                    prompt_tokens,
                    completion_tokens,
                    cached_tokens,
                });
            }
            Event::Failed(message) => return Err(ApiError::internal(message)),
        }
    }
    Err(ApiError::internal(
        "the engine stopped before the request finished",
    ))
}

/// Follows all choices at once, in index order; a 503 if the shutdown deadline passes first.
pub async fn collect_all(
    state: &AppState,
    choices: Vec<ChoiceRx>,
) -> Result<Vec<Collected>, ApiError> {
    tokio::select! {
        collected = futures_util::future::try_join_all(choices.into_iter().map(collect)) => collected,
        () = state.deadline_passed() => Err(ApiError::shutdown_deadline()),
    }
}

/// A fresh response id such as `chatcmpl-1f2e...`.
pub fn response_id(prefix: &str) -> String {
    format!(
        "{prefix}-{:016x}{:08x}",
        rand::random::<u64>(),
        rand::random::<u32>()
    )
}
