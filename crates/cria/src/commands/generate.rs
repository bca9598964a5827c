//! How `cria run` and `cria chat` generate: through the same engine `cria serve` runs (in-process, one
//! sequence), so sampling, stop rules and the prompt cache behave alike everywhere. A chat's next turn starts
//! from the KV its earlier turns left in the engine's prompt cache.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use cria_engine::{DeviceBackend, Engine, EngineConfig, Event, FinishReason, Request};
use cria_model::{DeviceChoice, Model};
use cria_sampling::SamplingParams;
use cria_tokenizer::Tokenizer;

use super::settings;

/// The smallest `--ctx` any command accepts (a chat template alone takes a dozen tokens).
pub const MIN_CTX: usize = 16;

/// Sampling options of `run` and `chat`.
#[derive(clap::Args, Clone)]
pub struct SamplingArgs {
    /// Maximum tokens to generate.
    #[arg(short = 'n', long = "max-tokens", default_value_t = 512)]
    pub max_tokens: usize,
    /// Temperature; 0 picks the most likely token.
    #[arg(long = "temp", default_value_t = 0.8)]
    pub temperature: f32,
    /// Keep only the K most likely tokens (0: off).
    #[arg(long, default_value_t = 40)]
    pub top_k: usize,
    /// Nucleus sampling threshold (1: off).
    #[arg(long, default_value_t = 0.95)]
    pub top_p: f32,
    /// Drop tokens less likely than this fraction of the best (0: off).
    #[arg(long, default_value_t = 0.05)]
    pub min_p: f32,
    /// Repetition penalty (1: off).
    #[arg(long, default_value_t = 1.0)]
    pub repeat_penalty: f32,
    /// Random seed: the same seed gives the same text.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Context length in tokens (default: the model's training context, at most 4096).
    #[arg(long)]
    pub ctx: Option<usize>,
}

impl SamplingArgs {
    /// The sampling these options describe; checks every option first (including `--ctx`, at least
    /// [`MIN_CTX`]), so it runs before the model loads.
    pub fn params(&self) -> anyhow::Result<SamplingParams> {
        if !(self.temperature.is_finite() && self.temperature >= 0.0) {
            return settings::refuse(format!(
                "--temp {}: must be a finite number >= 0",
                self.temperature
            ));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return settings::refuse(format!("--top-p {}: must be in (0, 1]", self.top_p));
        }
        if !(0.0..=1.0).contains(&self.min_p) {
            return settings::refuse(format!("--min-p {}: must be in [0, 1]", self.min_p));
        }
        if let Some(ctx) = self.ctx {
            settings::at_least("--ctx", ctx, MIN_CTX)?;
        }
        Ok(SamplingParams {
            temperature: self.temperature,
            top_k: self.top_k,
            top_p: self.top_p,
            min_p: self.min_p,
            repetition_penalty: self.repeat_penalty,
            seed: self.seed,
            ..SamplingParams::default()
        })
    }

    /// The context to allocate for `model` (`--ctx` was checked by [`params`](Self::params)).
    pub fn ctx(&self, model: &Model) -> usize {
        self.ctx
            .unwrap_or(model.n_ctx_train().min(4096))
            .max(MIN_CTX)
    }
}

/// How a generation went.
#[derive(Debug, Default)]
pub struct Stats {
    /// Prompt tokens computed (those the prompt cache held are not).
    pub prompt_tokens: usize,
    pub prompt_time: Duration,
    pub generated_tokens: usize,
    pub generation_time: Duration,
    pub stop: StopReason,
}

/// Why generation stopped.
#[derive(Debug, Default, PartialEq, Eq)]
pub enum StopReason {
    #[default]
    EndOfGeneration,
    MaxTokens,
    ContextFull,
    Interrupted,
}

impl Stats {
    /// Prints the timings line to stderr, as llama.cpp's tools do. The prompt's time runs to the first token;
    /// the generation rate counts the tokens after it over the time after it (0 for one token).
    pub fn report(&self) {
        let rate = |n: usize, t: Duration| n as f64 / t.as_secs_f64().max(1e-9);
        eprintln!(
            "\nprompt: {} tokens, {:.1} t/s | generation: {} tokens, {:.1} t/s | stop: {:?}",
            self.prompt_tokens,
            rate(self.prompt_tokens, self.prompt_time),
            self.generated_tokens,
            rate(
                self.generated_tokens.saturating_sub(1),
                self.generation_time
            ),
            self.stop
        );
    }
}

/// Prompt positions fed per engine step. (A chat turn reuses the cached KV of earlier turns in whole blocks,
/// wherever the chunks end.) Smaller chunks prefill slower: on SmolLM2 (2-core Zen 4, loaded) a 1,596-token
/// prompt took ~25% longer in chunks of 64 than in one batch, ~10% longer in chunks of 256.
const PREFILL_CHUNK: usize = 256;

/// Positions per KV block (the server's default).
const KV_BLOCK_SIZE: usize = 16;

/// A model, its tokenizer and an engine with one sequence: a conversation that can grow.
pub struct Session {
    pub tokenizer: Arc<Tokenizer>,
    engine: Engine,
}

impl Session {
    /// Starts the engine for `model` (whose tokenizer is `tokenizer`) with a context of `ctx` tokens on
    /// `device` (the CPU's `threads` threads where no GPU can run it: one line on stderr says why).
    pub fn new(
        model: Model,
        tokenizer: Arc<Tokenizer>,
        threads: usize,
        ctx: usize,
        device: DeviceChoice,
    ) -> anyhow::Result<Session> {
        let mut config = EngineConfig {
            parallel: 1,
            ctx,
            max_queue: 1,
            step_tokens: PREFILL_CHUNK,
            prefill_chunk: PREFILL_CHUNK,
            block_size: KV_BLOCK_SIZE,
            kv_tokens: 0,
            prompt_cache: true,
            ..EngineConfig::default()
        };
        let (backend, why) = DeviceBackend::for_config(Arc::new(model), &config, threads, device);
        if let Some(why) = why {
            eprintln!("cria: --device: {why}");
        }
        // The GPU keeps the sequence's KV contiguous on the device: no blocks to share, so no prompt cache.
        config.prompt_cache &= !matches!(backend, DeviceBackend::Gpu(_));
        let engine = Engine::start(config, tokenizer.clone(), move || Ok(backend))?;
        Ok(Session { tokenizer, engine })
    }

    /// Generates after `prompt` (the whole conversation so far: a prefix the engine still caches is reused),
    /// handing each piece of text to `emit`, until end of generation, `max_tokens`, a full context, or `stop`
    /// (checked after each token).
    pub fn generate(
        &self,
        prompt: Vec<u32>,
        max_tokens: usize,
        sampling: &SamplingParams,
        stop: &AtomicBool,
        mut emit: impl FnMut(&str),
    ) -> anyhow::Result<Stats> {
        let ctx = self.engine.config().ctx;
        anyhow::ensure!(!prompt.is_empty(), "the prompt is empty");
        anyhow::ensure!(
            prompt.len() < ctx,
            "the prompt has {} tokens; the context holds {ctx} (raise --ctx)",
            prompt.len()
        );
        let prompt_len = prompt.len();
        let request = Request {
            prompt,
            sampling: sampling.clone(),
            max_tokens,
            stop: Vec::new(),
            logprobs: None,
            ignore_eos: false,
            constraint: None,
            cache_salt: None,
        };
        let hits_before = self.engine.stats().prefix_cache_hits;
        let start = Instant::now();
        let mut events = self.engine.submit(request)?;
        let mut first_event = None;
        let mut stats = Stats::default();
        let reason = loop {
            let Some(event) = events.blocking_recv() else {
                anyhow::bail!("the engine stopped before the reply ended");
            };
            first_event.get_or_insert_with(Instant::now);
            match event {
                Event::Token { text, .. } => {
                    stats.generated_tokens += 1;
                    emit(&text);
                    if stop.load(Ordering::Relaxed) {
                        // Dropping the receiver (below) cancels the request at the engine's next step.
                        break StopReason::Interrupted;
                    }
                }
                Event::Done {
                    reason,
                    completion_tokens,
                    ..
                } => {
                    let stop = stop_reason(reason, completion_tokens, max_tokens);
                    // The engine counts the end-of-generation token; the CLI counts the tokens it printed.
                    let eog = usize::from(stop == StopReason::EndOfGeneration);
                    stats.generated_tokens = completion_tokens.saturating_sub(eog);
                    break stop;
                }
                Event::Failed(message) => anyhow::bail!("{message}"),
            }
        };
        drop(events);
        let since = first_event.unwrap_or(start);
        stats.prompt_time = since - start;
        stats.generation_time = since.elapsed();
        // One request at a time: the engine's prompt-cache hits since submitting are this prompt's.
        let cached = self.engine.stats().prefix_cache_hits - hits_before;
        stats.prompt_tokens =
            prompt_len.saturating_sub(usize::try_from(cached).unwrap_or(prompt_len));
        stats.stop = reason;
        Ok(stats)
    }
}

/// The CLI's name for why the engine ended a request of `max_tokens`.
fn stop_reason(reason: FinishReason, generated: usize, max_tokens: usize) -> StopReason {
    match reason {
        FinishReason::Stop | FinishReason::StopSequence(_) => StopReason::EndOfGeneration,
        // The engine clips `max_tokens` to what the context leaves.
        FinishReason::Length if generated < max_tokens => StopReason::ContextFull,
        FinishReason::Length => StopReason::MaxTokens,
    }
}
