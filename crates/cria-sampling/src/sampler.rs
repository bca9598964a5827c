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
    scratch: Vec<f32>,
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
        self.scratch.clear();
        self.scratch.extend_from_slice(logits);
        apply_logit_bias(&mut self.scratch, &self.params.logit_bias);
        apply_penalties(&mut self.scratch, history, &self.params);
        let Some(constraint) = self.constraint.as_mut() else {
            return Ok(draw(&self.params, &self.scratch, &mut self.rng));
        };
        let mut id = draw(&self.params, &self.scratch, &mut self.rng);
        if !constraint.allows(id)? {
            let mask = constraint.mask()?;
            // Only the allowed tokens become candidates (a mask allows few of a large vocabulary).
            let cands: Vec<Candidate> = mask
                .allowed()
                .filter_map(|t| Some((t, *self.scratch.get(t as usize)?)))
                .filter(|(_, l)| is_finite_logit(*l))
                .collect();
            id = draw_from(&self.params, cands, &mut self.rng).ok_or_else(|| {
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

/// The unconstrained chain over an already biased and penalised row: greedy, or truncate then draw.
fn draw(params: &SamplingParams, scratch: &[f32], rng: &mut ChaCha8Rng) -> u32 {
    if params.is_greedy() {
        return argmax(scratch);
    }
    let cands: Vec<Candidate> = scratch
        .iter()
        .enumerate()
        .filter(|(_, l)| is_finite_logit(**l))
        .map(|(i, &l)| (i as u32, l))
        .collect();
    draw_from(params, cands, rng).unwrap_or_else(|| argmax(scratch))
}

/// The chain over candidates in id order: the first largest when greedy, else truncate then draw. `None`
/// when there are none.
fn draw_from(
    params: &SamplingParams,
    mut cands: Vec<Candidate>,
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
    truncate(params, &mut cands);
    Some(filters::draw(&cands, params.temperature, rng))
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

/// Index of the largest value (the first one on ties); 0 for an empty row.
pub fn argmax(values: &[f32]) -> u32 {
    let mut best = 0usize;
    for (i, &v) in values.iter().enumerate() {
        if v > values[best] {
            best = i;
        }
    }
    best as u32
}

#[cfg(test)]
mod tests {
    use super::*;
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
