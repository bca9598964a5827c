//! Truncation filters over a candidate list of `(token, logit)`, and the final weighted draw.
//!
//! Every filter leaves the candidates sorted by logit, most likely first, and never empty.

use rand::Rng;

pub(crate) type Candidate = (u32, f32);

/// How many candidates top-p first tries to settle within before falling back to a full sort.
const TOP_P_PARTIAL: usize = 1024;

fn by_logit_desc(a: &Candidate, b: &Candidate) -> std::cmp::Ordering {
    b.1.total_cmp(&a.1).then(a.0.cmp(&b.0))
}

/// Sorts the candidates, most likely first.
pub(crate) fn sort_desc(cands: &mut [Candidate]) {
    cands.sort_unstable_by(by_logit_desc);
}

/// Keeps the `k` most likely candidates, sorted. `k == 0` keeps all (sorted).
pub(crate) fn top_k(cands: &mut Vec<Candidate>, k: usize) {
    if k > 0 && k < cands.len() {
        cands.select_nth_unstable_by(k - 1, by_logit_desc);
        cands.truncate(k);
    }
    sort_desc(cands);
}

/// Keeps the candidates whose sorted probabilities first add up to at least `p`. Expects sorted candidates
/// when it is given few; a long unsorted list is first narrowed to its head when that head already holds `p`.
pub(crate) fn top_p(cands: &mut Vec<Candidate>, p: f32, sorted: bool) {
    if p >= 1.0 || cands.len() <= 1 {
        return;
    }
    let lse = logsumexp(cands);
    if !sorted {
        narrow_then_sort(cands, p, lse);
    }
    let mut cum = 0.0f64;
    let mut keep = cands.len();
    for (i, c) in cands.iter().enumerate() {
        cum += f64::from(c.1 - lse).exp();
        if cum >= f64::from(p) {
            keep = i + 1;
            break;
        }
    }
    cands.truncate(keep.max(1));
}

fn narrow_then_sort(cands: &mut Vec<Candidate>, p: f32, lse: f32) {
    if cands.len() > TOP_P_PARTIAL {
        cands.select_nth_unstable_by(TOP_P_PARTIAL - 1, by_logit_desc);
        let head_mass: f64 = cands[..TOP_P_PARTIAL]
            .iter()
            .map(|c| f64::from(c.1 - lse).exp())
            .sum();
        if head_mass >= f64::from(p) {
            cands.truncate(TOP_P_PARTIAL);
        }
    }
    sort_desc(cands);
}

/// Drops candidates less likely than `min_p` times the most likely one. Expects sorted candidates.
pub(crate) fn min_p(cands: &mut Vec<Candidate>, min_p: f32) {
    if min_p <= 0.0 || cands.is_empty() {
        return;
    }
    let threshold = cands[0].1 + min_p.ln();
    let keep = cands.iter().take_while(|c| c.1 >= threshold).count();
    cands.truncate(keep.max(1));
}

/// Draws one candidate with probability `softmax(logit / temperature)`.
pub(crate) fn draw<R: Rng>(cands: &[Candidate], temperature: f32, rng: &mut R) -> u32 {
    let max = cands.iter().map(|c| c.1).fold(f32::NEG_INFINITY, f32::max);
    let weights: Vec<f64> = cands
        .iter()
        .map(|c| f64::from((c.1 - max) / temperature).exp())
        .collect();
    let total: f64 = weights.iter().sum();
    let mut r = rng.random::<f64>() * total;
    for (c, w) in cands.iter().zip(&weights) {
        if r < *w {
            return c.0;
        }
        r -= w;
    }
    cands.last().map_or(0, |c| c.0)
}

fn logsumexp(cands: &[Candidate]) -> f32 {
    let max = cands.iter().map(|c| c.1).fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = cands.iter().map(|c| f64::from(c.1 - max).exp()).sum();
    max + sum.ln() as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cands(logits: &[f32]) -> Vec<Candidate> {
        logits
            .iter()
            .enumerate()
            .map(|(i, &l)| (i as u32, l))
            .collect()
    }

    fn ids(c: &[Candidate]) -> Vec<u32> {
        c.iter().map(|c| c.0).collect()
    }

    #[test]
    fn top_k_keeps_the_k_largest_sorted() {
        let mut c = cands(&[0.1, 0.5, 0.3, 0.9]);
        top_k(&mut c, 2);
        assert_eq!(ids(&c), vec![3, 1]);
    }

    #[test]
    fn top_p_keeps_smallest_prefix_reaching_p() {
        // probabilities 0.5, 0.25, 0.125, 0.125
        let l = [2f32.ln() * 2.0, 2f32.ln(), 0.0, 0.0];
        let mut c = cands(&l);
        sort_desc(&mut c);
        top_p(&mut c, 0.7, true);
        assert_eq!(ids(&c), vec![0, 1]);
        let mut c = cands(&l);
        top_p(&mut c, 0.45, false);
        assert_eq!(ids(&c), vec![0]);
    }

    #[test]
    fn top_p_on_a_large_vocab_narrows_to_the_head() {
        let mut l = vec![-20.0f32; 5000];
        l[4321] = 10.0;
        l[7] = 9.0;
        let mut c = cands(&l);
        top_p(&mut c, 0.7, false);
        assert_eq!(ids(&c), vec![4321]);
    }

    #[test]
    fn top_p_falls_back_to_full_sort_on_a_flat_distribution() {
        let mut c = cands(&vec![0.0f32; 3000]);
        top_p(&mut c, 0.9, false);
        assert!((2700..=2701).contains(&c.len()), "{}", c.len());
    }

    #[test]
    fn min_p_drops_unlikely_tokens() {
        // probabilities relative to the max: 1, 0.5, 0.01
        let mut c = cands(&[0.0, 0.5f32.ln(), 0.01f32.ln()]);
        min_p(&mut c, 0.1);
        assert_eq!(ids(&c), vec![0, 1]);
    }

    #[test]
    fn draw_follows_the_distribution() {
        use rand::SeedableRng;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let c = cands(&[0.0, 3f32.ln()]); // 1:3
        let n = 20_000;
        let ones = (0..n).filter(|_| draw(&c, 1.0, &mut rng) == 1).count();
        let frac = ones as f64 / n as f64;
        assert!((frac - 0.75).abs() < 0.02, "{frac}");
    }
}
