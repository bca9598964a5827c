//! The generation loop `cria run` and `cria chat` share: prefill a prompt in one batch, then sample one
//! token per step, streaming whole UTF-8 characters as they form.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use cria_model::{KvCache, Logits, Model, Runner, SeqBatch};
use cria_sampling::{Sampler, SamplingParams};
use cria_tokenizer::{IncrementalDecoder, Tokenizer};

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
    /// The sampler these options describe; checks every option first (including `--ctx`, at least
    /// [`MIN_CTX`]), so it runs before the model loads.
    pub fn sampler(&self) -> anyhow::Result<Sampler> {
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
        Ok(Sampler::new(SamplingParams {
            temperature: self.temperature,
            top_k: self.top_k,
            top_p: self.top_p,
            min_p: self.min_p,
            repetition_penalty: self.repeat_penalty,
            seed: self.seed,
            ..SamplingParams::default()
        }))
    }

    /// The context to allocate for `model` (`--ctx` was checked by [`sampler`](Self::sampler)).
    pub fn ctx(&self, model: &Model) -> usize {
        self.ctx
            .unwrap_or(model.n_ctx_train().min(4096))
            .max(MIN_CTX)
    }
}

/// How a generation went.
#[derive(Debug, Default)]
pub struct Stats {
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
    /// Prints the timings line to stderr, as llama.cpp's tools do.
    pub fn report(&self) {
        let rate = |n: usize, t: Duration| n as f64 / t.as_secs_f64().max(1e-9);
        eprintln!(
            "\nprompt: {} tokens, {:.1} t/s | generation: {} tokens, {:.1} t/s | stop: {:?}",
            self.prompt_tokens,
            rate(self.prompt_tokens, self.prompt_time),
            self.generated_tokens,
            rate(self.generated_tokens, self.generation_time),
            self.stop
        );
    }
}

/// A model, its tokenizer and one sequence's cache: a conversation that can grow.
pub struct Session<'m> {
    pub tokenizer: Tokenizer,
    seq: Sequence<'m>,
}

/// One sequence run through the model.
struct Sequence<'m> {
    model: &'m Model,
    runner: Runner,
    cache: KvCache,
    /// The tokens in `cache`, in order.
    history: Vec<u32>,
}

impl Sequence<'_> {
    /// Appends `tokens` to the sequence and returns the last one's logits.
    fn step(&mut self, tokens: &[u32]) -> anyhow::Result<Vec<f32>> {
        let mut batch = [SeqBatch {
            cache: &mut self.cache,
            tokens,
            logits: Logits::Last,
        }];
        let logits = self.runner.forward(self.model, &mut batch)?.remove(0);
        self.history.extend_from_slice(tokens);
        Ok(logits)
    }
}

impl<'m> Session<'m> {
    pub fn new(model: &'m Model, threads: usize, ctx: usize) -> anyhow::Result<Session<'m>> {
        Ok(Session {
            tokenizer: Tokenizer::from_gguf(model.gguf())?,
            seq: Sequence {
                model,
                runner: Runner::new(model, threads),
                cache: model.new_cache(ctx),
                history: Vec::new(),
            },
        })
    }

    /// Forgets the conversation.
    pub fn reset(&mut self) {
        self.seq.cache.clear();
        self.seq.history.clear();
    }

    /// Generates after `prompt` (the whole conversation so far: a prefix already in the cache is reused),
    /// handing each piece of text to `emit`, until end of generation, `max_tokens`, a full context, or `stop`.
    pub fn generate(
        &mut self,
        prompt: &[u32],
        max_tokens: usize,
        sampler: &mut Sampler,
        stop: &AtomicBool,
        mut emit: impl FnMut(&str),
    ) -> anyhow::Result<Stats> {
        let seq = &mut self.seq;
        let capacity = seq.cache.capacity();
        anyhow::ensure!(!prompt.is_empty(), "the prompt is empty");
        anyhow::ensure!(
            prompt.len() < capacity,
            "the prompt has {} tokens; the context holds {capacity} (raise --ctx)",
            prompt.len()
        );
        let reused = common_prefix(&seq.history, prompt).min(prompt.len() - 1);
        seq.cache.truncate(reused);
        seq.history.truncate(reused);
        let mut stats = Stats {
            prompt_tokens: prompt.len() - reused,
            ..Stats::default()
        };
        let start = Instant::now();
        let mut logits = seq.step(&prompt[reused..])?;
        stats.prompt_time = start.elapsed();
        let start = Instant::now();
        let mut decoder = IncrementalDecoder::new(&self.tokenizer);
        stats.stop = loop {
            if stop.load(Ordering::Relaxed) {
                break StopReason::Interrupted;
            }
            if stats.generated_tokens == max_tokens {
                break StopReason::MaxTokens;
            }
            let token = sampler.sample(&logits, &seq.history)?;
            if self.tokenizer.is_end_of_generation(token) {
                break StopReason::EndOfGeneration;
            }
            stats.generated_tokens += 1;
            emit(&decoder.push(token));
            if seq.history.len() == capacity {
                break StopReason::ContextFull;
            }
            logits = seq.step(&[token])?;
        };
        emit(&decoder.finish());
        stats.generation_time = start.elapsed();
        Ok(stats)
    }
}

fn common_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}
