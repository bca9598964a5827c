//! cria-sampling: turns a row of logits into the next token.
//!
//! The chain follows llama.cpp's order: logit bias, penalties (repetition, presence, frequency), then
//! either greedy (temperature 0) or top-k, top-p, min-p, temperature and a draw from a seeded RNG.

mod constraint;
mod filters;
pub mod grammar;
mod logprobs;
mod penalties;
mod sampler;

pub use constraint::{ConstraintError, TokenConstraint, TokenMask};
pub use logprobs::{log_softmax_top, logsumexp};
pub use sampler::Sampler;

/// How to pick the next token. `Default` is llama.cpp's defaults; `temperature <= 0` means greedy.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplingParams {
    /// Divides the logits; 0 (or less) picks the most likely token.
    pub temperature: f32,
    /// Keep only the `top_k` most likely tokens; 0 disables.
    pub top_k: usize,
    /// Keep the smallest set of tokens whose probabilities add up to `top_p`; 1 disables.
    pub top_p: f32,
    /// Drop tokens less likely than `min_p` times the most likely one; 0 disables.
    pub min_p: f32,
    /// llama.cpp's repeat penalty: divides positive logits of seen tokens (multiplies negative ones); 1 disables.
    pub repetition_penalty: f32,
    /// Subtracted once from the logit of every token seen in the last `penalty_last_n` tokens.
    pub presence_penalty: f32,
    /// Subtracted from a token's logit once per time it was seen in the last `penalty_last_n` tokens.
    pub frequency_penalty: f32,
    /// How many of the latest history tokens the penalties look at; 0 disables them.
    pub penalty_last_n: usize,
    /// Added to the logit of each listed token before anything else.
    pub logit_bias: Vec<(u32, f32)>,
    /// Seeds the RNG: the same seed and inputs draw the same tokens. `None` draws a fresh seed.
    pub seed: Option<u64>,
}

impl Default for SamplingParams {
    fn default() -> Self {
        SamplingParams {
            temperature: 0.8,
            top_k: 40,
            top_p: 0.95,
            min_p: 0.05,
            repetition_penalty: 1.0,
            presence_penalty: 0.0,
            frequency_penalty: 0.0,
            penalty_last_n: 64,
            logit_bias: Vec::new(),
            seed: None,
        }
    }
}

impl SamplingParams {
    /// Parameters that always pick the most likely token.
    pub fn greedy() -> Self {
        SamplingParams {
            temperature: 0.0,
            ..SamplingParams::default()
        }
    }

    /// True when sampling reduces to an argmax.
    pub fn is_greedy(&self) -> bool {
        self.temperature <= 0.0 || self.top_k == 1
    }
}
