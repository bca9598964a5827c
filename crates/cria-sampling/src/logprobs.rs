//! Log-probabilities of a logits row, for the API's `logprobs` / `top_logprobs`.

/// `log(sum(exp(logits)))`, computed stably; a token's log-probability is `logits[id] - logsumexp(logits)`.
pub fn logsumexp(logits: &[f32]) -> f32 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if !max.is_finite() {
        return max;
    }
    let sum: f64 = logits.iter().map(|&l| f64::from(l - max).exp()).sum();
    max + sum.ln() as f32
}

/// Returns `logsumexp(logits)` and the `k` most likely tokens with their log-probabilities, most likely first.
pub fn log_softmax_top(logits: &[f32], k: usize) -> (f32, Vec<(u32, f32)>) {
    let lse = logsumexp(logits);
    let mut ids: Vec<u32> = (0..logits.len() as u32).collect();
    let k = k.min(ids.len());
    if k == 0 {
        return (lse, Vec::new());
    }
    let by_logit_desc = |a: &u32, b: &u32| {
        logits[*b as usize]
            .total_cmp(&logits[*a as usize])
            .then(a.cmp(b))
    };
    if k < ids.len() {
        ids.select_nth_unstable_by(k - 1, by_logit_desc);
        ids.truncate(k);
    }
    ids.sort_unstable_by(by_logit_desc);
    let top = ids
        .into_iter()
        .map(|id| (id, logits[id as usize] - lse))
        .collect();
    (lse, top)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_logprobs_are_sorted_and_normalised() {
        let logits = [1.0f32, 3.0, 2.0, 0.0];
        let (lse, top) = log_softmax_top(&logits, 2);
        assert_eq!(top.iter().map(|t| t.0).collect::<Vec<_>>(), vec![1, 2]);
        let total: f32 = logits.iter().map(|l| (l - lse).exp()).sum();
        assert!((total - 1.0).abs() < 1e-5);
        assert!((top[0].1 - (3.0 - lse)).abs() < 1e-6);
    }

    #[test]
    fn k_larger_than_vocab_returns_all() {
        let (_, top) = log_softmax_top(&[0.0, 0.0], 5);
        assert_eq!(top.len(), 2);
    }

    #[test]
    fn large_logits_do_not_overflow() {
        let lse = logsumexp(&[1000.0, 1000.0]);
        assert!((lse - (1000.0 + 2f32.ln())).abs() < 1e-3);
    }
}
