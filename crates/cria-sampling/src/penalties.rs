//! Logit bias and the history penalties, applied in place to a copy of the logits.

use std::collections::HashMap;

use crate::SamplingParams;

/// Adds each `(token, bias)` to its logit; tokens outside the vocabulary are ignored.
pub(crate) fn apply_logit_bias(logits: &mut [f32], bias: &[(u32, f32)]) {
    for &(id, b) in bias {
        if let Some(l) = logits.get_mut(id as usize) {
            *l += b;
        }
    }
}

/// Applies repetition, presence and frequency penalties over the last `penalty_last_n` tokens of `history`,
/// with llama.cpp's formulas.
pub(crate) fn apply_penalties(logits: &mut [f32], history: &[u32], p: &SamplingParams) {
    let active =
        p.repetition_penalty != 1.0 || p.presence_penalty != 0.0 || p.frequency_penalty != 0.0;
    if !active || p.penalty_last_n == 0 || history.is_empty() {
        return;
    }
    let window = &history[history.len().saturating_sub(p.penalty_last_n)..];
    for (id, count) in count_tokens(window) {
        let Some(l) = logits.get_mut(id as usize) else {
            continue;
        };
        if *l <= 0.0 {
            *l *= p.repetition_penalty;
        } else {
            *l /= p.repetition_penalty;
        }
        *l -= count as f32 * p.frequency_penalty + p.presence_penalty;
    }
}

fn count_tokens(window: &[u32]) -> HashMap<u32, u32> {
    let mut counts = HashMap::with_capacity(window.len());
    for &id in window {
        *counts.entry(id).or_insert(0) += 1;
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(rep: f32, presence: f32, freq: f32) -> SamplingParams {
        SamplingParams {
            repetition_penalty: rep,
            presence_penalty: presence,
            frequency_penalty: freq,
            ..SamplingParams::default()
        }
    }

    #[test]
    fn repetition_penalty_divides_positive_and_multiplies_negative() {
        let mut l = vec![2.0, -2.0, 1.0];
        apply_penalties(&mut l, &[0, 1], &params(2.0, 0.0, 0.0));
        assert_eq!(l, vec![1.0, -4.0, 1.0]);
    }

    #[test]
    fn frequency_counts_and_presence_once() {
        let mut l = vec![0.0, 0.0, 0.0];
        apply_penalties(&mut l, &[0, 0, 0, 1], &params(1.0, 0.5, 1.0));
        assert_eq!(l, vec![-3.5, -1.5, 0.0]);
    }

    #[test]
    fn only_the_last_n_tokens_count() {
        let mut l = vec![0.0, 0.0];
        let p = SamplingParams {
            penalty_last_n: 1,
            ..params(1.0, 1.0, 0.0)
        };
        apply_penalties(&mut l, &[0, 1], &p);
        assert_eq!(l, vec![0.0, -1.0]);
    }

    #[test]
    fn bias_ignores_out_of_vocab_ids() {
        let mut l = vec![0.0, 0.0];
        apply_logit_bias(&mut l, &[(1, 5.0), (99, 1.0)]);
        assert_eq!(l, vec![0.0, 5.0]);
    }
}
