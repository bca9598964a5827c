//! The sampler: a chain of processors over one logits row, with its own seeded RNG.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::SamplingParams;
use crate::constraint::{ConstraintError, TokenConstraint};
use crate::filters::{self, Candidate};
use crate::penalties::{apply_logit_bias, apply_penalties};

/// Picks tokens from logits. One per sequence: it owns the RNG, so a seed reproduces the whole run.
#[derive(Debug, Clone)]
pub struct Sampler {
    params: SamplingParams,
    rng: ChaCha8Rng,
    /// The biased / penalised copy of a row, made only when bias or penalties change it.
    scratch: Vec<f32>,
    /// The candidates of a non-greedy draw, reused between steps.
    cands: Vec<Candidate>,
    constraint: Option<Box<dyn TokenConstraint>>,
}

impl Sampler {
    /// A sampler for `params`; with no seed, the RNG is seeded from the OS.
    pub fn new(params: SamplingParams) -> Sampler {
        let seed = params.seed.unwrap_or_else(|| rand::rng().random());
        Sampler {
            params,
            rng: ChaCha8Rng::seed_from_u64(seed),
            scratch: Vec::new(),
            cands: Vec::new(),
            constraint: None,
        }
    }

    /// This sampler, drawing only tokens `constraint` allows (and telling it each token drawn).
    pub fn with_constraint(mut self, constraint: Box<dyn TokenConstraint>) -> Sampler {
        self.constraint = Some(constraint);
        self
    }

    /// The parameters this sampler was built with.
    pub fn params(&self) -> &SamplingParams {
        &self.params
    }

    /// Picks the next token given the row of `logits` and the tokens so far (`history`, for the penalties).
    /// An empty row yields token 0. With a constraint, the token drawn is checked first; only if the
    /// constraint refuses it are the logits masked and the draw repeated; the token is then accepted.
    pub fn sample(&mut self, logits: &[f32], history: &[u32]) -> Result<u32, ConstraintError> {
        // The row is read in place unless bias or penalties change it (a copy of 49k-262k logits a token).
        let row: &[f32] = if self.params.logit_bias.is_empty() && !penalties_active(&self.params) {
            logits
        } else {
            self.scratch.clear();
            self.scratch.extend_from_slice(logits);
            apply_logit_bias(&mut self.scratch, &self.params.logit_bias);
            apply_penalties(&mut self.scratch, history, &self.params);
            &self.scratch
        };
        let (params, rng, cands) = (&self.params, &mut self.rng, &mut self.cands);
        let Some(constraint) = self.constraint.as_mut() else {
            return Ok(draw(params, row, rng, cands));
        };
        let mut id = draw(params, row, rng, cands);
        if !constraint.allows(id)? {
            let mask = constraint.mask()?;
            // Only the allowed tokens become candidates (a mask allows few of a large vocabulary).
            cands.clear();
            cands.extend(
                mask.allowed()
                    .filter_map(|t| Some((t, *row.get(t as usize)?)))
                    .filter(|(_, l)| is_finite_logit(*l)),
            );
            id = draw_from(params, cands, rng).ok_or_else(|| {
                ConstraintError::Failed("no allowed token has a finite logit".into())
            })?;
        }
        constraint.accept(id)?;
        Ok(id)
    }
}

fn is_finite_logit(l: f32) -> bool {
    !l.is_nan() && l > f32::NEG_INFINITY
}

/// The unconstrained chain over an already biased and penalised row: greedy (no candidate list), or
/// truncate then draw, the candidates gathered into `cands`.
fn draw(
    params: &SamplingParams,
    row: &[f32],
    rng: &mut ChaCha8Rng,
    cands: &mut Vec<Candidate>,
) -> u32 {
    if params.is_greedy() {
        return argmax(row);
    }
    cands.clear();
    cands.extend(
        row.iter()
            .enumerate()
            .filter(|(_, l)| is_finite_logit(**l))
            .map(|(i, &l)| (i as u32, l)),
    );
    draw_from(params, cands, rng).unwrap_or_else(|| argmax(row))
}

/// The chain over candidates in id order: the first largest when greedy, else truncate then draw. `None`
/// when there are none.
fn draw_from(
    params: &SamplingParams,
    cands: &mut Vec<Candidate>,
    rng: &mut ChaCha8Rng,
) -> Option<u32> {
    if cands.is_empty() {
        return None;
    }
    if params.is_greedy() {
        let best = cands
            .iter()
            .fold(cands[0], |b, &c| if c.1 > b.1 { c } else { b });
        return Some(best.0);
    }
    truncate(params, cands);
    Some(filters::draw(cands, params.temperature, rng))
}

fn truncate(p: &SamplingParams, cands: &mut Vec<Candidate>) {
    let sorted = p.top_k > 0;
    if sorted {
        filters::top_k(cands, p.top_k);
    }
    filters::top_p(cands, p.top_p, sorted);
    if p.min_p > 0.0 {
        if !sorted && p.top_p >= 1.0 {
            filters::sort_desc(cands);
        }
        filters::min_p(cands, p.min_p);
    }
}

/// Index of the largest value (the first one on ties); 0 for an empty row or one starting with NaN (NaNs
/// are never larger), as a plain `v > best` scan gives.
pub fn argmax(values: &[f32]) -> u32 {
    let Some(&first) = values.first() else {
        return 0;
    };
    if first.is_nan() {
        return 0;
    }
    // Two passes the compiler vectorizes: the largest value (lane-wise `>`, so NaNs are skipped), then the
    // first index holding it (-0.0 == 0.0, as the scan would keep the first of them too).
    const LANES: usize = 16;
    let mut best = [first; LANES];
    let chunks = values.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for (b, &v) in best.iter_mut().zip(c) {
            *b = if v > *b { v } else { *b };
        }
    }
    let max = best
        .iter()
        .chain(tail)
        .fold(first, |m, &v| if v > m { v } else { m });
    values.iter().position(|&v| v == max).unwrap_or(0) as u32
}

/// Whether the history penalties change any logit.
fn penalties_active(p: &SamplingParams) -> bool {
    let active =
        p.repetition_penalty != 1.0 || p.presence_penalty != 0.0 || p.frequency_penalty != 0.0;
    active && p.penalty_last_n > 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::constraint::{ConstraintError, TokenConstraint};
    use proptest::prelude::{any, prop_assert, proptest};
    use rand::Rng;

    fn logits(n: usize, seed: u64) -> Vec<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..n).map(|_| rng.random::<f32>() * 10.0 - 5.0).collect()
    }

    fn run(params: SamplingParams, steps: usize) -> Vec<u32> {
        let mut s = Sampler::new(params);
        let mut hist = Vec::new();
        for i in 0..steps {
            let t = s.sample(&logits(500, i as u64), &hist).unwrap();
            hist.push(t);
        }
        hist
    }

    /// The scan `argmax` must agree with: the first index whose value is larger than all before it.
    fn argmax_scan(values: &[f32]) -> u32 {
        let mut best = 0usize;
        for (i, &v) in values.iter().enumerate() {
            if v > values[best] {
                best = i;
            }
        }
        best as u32
    }

    #[test]
    fn argmax_equals_the_first_largest_scan_with_ties_nans_and_zeros() {
        let mut rows: Vec<Vec<f32>> = vec![
            vec![],
            vec![f32::NAN, 1.0, 2.0],
            vec![1.0, f32::NAN, 3.0, 3.0],
            vec![-0.0, 0.0, -1.0],
            vec![f32::NEG_INFINITY; 40],
            vec![f32::INFINITY, 1.0, f32::INFINITY],
        ];
        for (n, seed) in [(17, 1), (49_152, 2), (262_144, 3), (33, 4)] {
            let mut row = logits(n, seed);
            row[n / 3] = f32::NAN;
            rows.push(row.clone());
            // A tie of the maximum in the vectorised part and the tail.
            let max = row.iter().copied().fold(f32::MIN, f32::max);
            row[n - 1] = max;
            rows.push(row);
        }
        let mut tie = vec![0.5f32; 50];
        tie[20] = 2.0;
        tie[35] = 2.0;
        rows.push(tie);
        for row in &rows {
            assert_eq!(argmax(row), argmax_scan(row), "len {}", row.len());
        }
    }

    #[test]
    fn greedy_picks_the_argmax() {
        let mut s = Sampler::new(SamplingParams::greedy());
        assert_eq!(s.sample(&[0.1, 2.0, 1.0], &[]).unwrap(), 1);
    }

    #[test]
    fn greedy_respects_logit_bias_and_penalties() {
        let p = SamplingParams {
            logit_bias: vec![(0, 5.0)],
            ..SamplingParams::greedy()
        };
        assert_eq!(Sampler::new(p).sample(&[0.1, 2.0, 1.0], &[]).unwrap(), 0);
        let p = SamplingParams {
            presence_penalty: 2.0,
            ..SamplingParams::greedy()
        };
        assert_eq!(Sampler::new(p).sample(&[0.1, 2.0, 1.0], &[1]).unwrap(), 2);
    }

    #[test]
    fn same_seed_same_tokens() {
        let p = SamplingParams {
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.0,
            seed: Some(42),
            ..Default::default()
        };
        assert_eq!(run(p.clone(), 50), run(p.clone(), 50));
        let other = SamplingParams {
            seed: Some(43),
            ..p.clone()
        };
        assert_ne!(run(p, 50), run(other, 50));
    }

    #[test]
    fn top_k_one_is_greedy() {
        let p = SamplingParams {
            temperature: 1.0,
            top_k: 1,
            seed: Some(1),
            ..Default::default()
        };
        let l = logits(100, 9);
        assert_eq!(Sampler::new(p).sample(&l, &[]).unwrap(), argmax(&l));
    }

    #[test]
    fn banned_token_is_never_drawn() {
        let p = SamplingParams {
            temperature: 2.0,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.0,
            seed: Some(3),
            logit_bias: vec![(0, f32::NEG_INFINITY)],
            ..Default::default()
        };
        let mut s = Sampler::new(p);
        for _ in 0..200 {
            assert_ne!(s.sample(&[5.0, 0.0, 0.0], &[]).unwrap(), 0);
        }
    }

    /// A constraint allowing a fixed set of tokens of a vocabulary of at most 32.
    #[derive(Clone)]
    struct Allowed(Vec<u32>);

    impl TokenConstraint for Allowed {
        fn allows(&mut self, token: u32) -> Result<bool, ConstraintError> {
            Ok(self.0.contains(&token))
        }
        fn mask(&mut self) -> Result<crate::constraint::TokenMask, ConstraintError> {
            let word = self.0.iter().fold(0u32, |w, &t| w | (1 << t));
            Ok(crate::constraint::TokenMask::from_words(vec![word]))
        }
        fn accept(&mut self, _: u32) -> Result<(), ConstraintError> {
            Ok(())
        }
        fn box_clone(&self) -> Box<dyn TokenConstraint> {
            Box::new(self.clone())
        }
    }

    /// llama.cpp's default chain (common/sampling.cpp: top-k, top-p, min-p, temperature, dist) as the
    /// probability of each candidate, written from its source: top-p and min-p read the untempered logits
    /// of what top-k kept.
    fn llama_cpp_chain(cands: &[(u32, f32)], p: &SamplingParams) -> Vec<(u32, f64)> {
        let mut c = cands.to_vec();
        c.sort_by(|a, b| b.1.total_cmp(&a.1));
        c.truncate(p.top_k);
        let max = f64::from(c[0].1);
        let z: f64 = c.iter().map(|x| (f64::from(x.1) - max).exp()).sum();
        let mut cum = 0.0;
        let mut keep = c.len();
        for (i, x) in c.iter().enumerate() {
            cum += (f64::from(x.1) - max).exp() / z;
            if cum >= f64::from(p.top_p) {
                keep = i + 1;
                break;
            }
        }
        c.truncate(keep);
        c.retain(|x| f64::from(x.1) >= max + f64::from(p.min_p).ln());
        let w = |l: f32| ((f64::from(l) - max) / f64::from(p.temperature)).exp();
        let zt: f64 = c.iter().map(|x| w(x.1)).sum();
        c.iter().map(|x| (x.0, w(x.1) / zt)).collect()
    }

    fn prob(dist: &[(u32, f64)], t: u32) -> f64 {
        dist.iter().find(|d| d.0 == t).map_or(0.0, |d| d.1)
    }

    #[test]
    fn constrained_draws_follow_llama_cpp_rejection_sampling() {
        // llama.cpp draws from the chain; a token the grammar refuses sends it back to the original logits,
        // masked, through the chain again. So a token's probability is its chance in the free draw (if
        // allowed) plus the refused mass times its chance in the masked draw; masking first differs
        // wherever truncation kept a refused token over an allowed one (here top-k keeps 1 and 2 freely,
        // 0 only once masked).
        let logits = [4.0f32, 5.0, 5.2, 4.3, 1.0, 3.9, 0.5, 4.6];
        let allowed = vec![0u32, 2, 5, 6];
        let params = SamplingParams {
            top_k: 4,
            seed: Some(7),
            ..SamplingParams::default()
        };
        let cands: Vec<(u32, f32)> = (0u32..).zip(logits).collect();
        let free = llama_cpp_chain(&cands, &params);
        let masked_cands: Vec<(u32, f32)> = cands
            .iter()
            .copied()
            .filter(|c| allowed.contains(&c.0))
            .collect();
        let masked = llama_cpp_chain(&masked_cands, &params);
        let refused: f64 = free
            .iter()
            .filter(|d| !allowed.contains(&d.0))
            .map(|d| d.1)
            .sum();
        let want = |t: u32| {
            let free_part = if allowed.contains(&t) {
                prob(&free, t)
            } else {
                0.0
            };
            free_part + refused * prob(&masked, t)
        };
        let mut sampler = Sampler::new(params).with_constraint(Box::new(Allowed(allowed.clone())));
        let n = 40_000;
        let mut counts = [0usize; 8];
        for _ in 0..n {
            counts[sampler.sample(&logits, &[]).unwrap() as usize] += 1;
        }
        let mut mask_first_gap = 0.0f64;
        for t in 0..8u32 {
            let got = counts[t as usize] as f64 / n as f64;
            assert!(
                (got - want(t)).abs() < 0.01,
                "token {t}: {got} vs {}",
                want(t)
            );
            mask_first_gap = mask_first_gap.max((prob(&masked, t) - want(t)).abs());
        }
        assert!(
            mask_first_gap > 0.05,
            "the case does not tell the orders apart"
        );
    }

    proptest! {
        #[test]
        fn sampled_token_is_in_vocab_and_within_top_k(
            l in proptest::collection::vec(-30.0f32..30.0, 1..300),
            k in 1usize..20, p in 0.05f32..1.0, m in 0.0f32..0.5, t in 0.1f32..3.0, seed in any::<u64>())
        {
            let params = SamplingParams { temperature: t, top_k: k, top_p: p, min_p: m, seed: Some(seed), ..Default::default() };
            let id = Sampler::new(params).sample(&l, &[]).unwrap() as usize;
            prop_assert!(id < l.len());
            let better = l.iter().filter(|&&x| x > l[id]).count();
            prop_assert!(better < k);
        }
    }
}
