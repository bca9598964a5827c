//! Step planning as plain data: which sequences feed how many tokens this step, and which slots are free.

/// What one running sequence still has to feed before it decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// This many prompt tokens are not yet in the cache.
    Prefill(usize),
    /// Decoding: feeds its last sampled token.
    Decode,
}

/// Token counts per sequence (same order as `needs`) for one step.
///
/// Every decoding sequence feeds its one token, so decoding never waits on a long prompt; the rest of
/// `budget` goes to prefilling sequences in order (oldest first), and prefill gets at least `min_prefill`
/// tokens per step even when decoding sequences fill the budget, so a prompt is never starved.
pub fn plan(needs: &[Need], budget: usize, min_prefill: usize) -> Vec<usize> {
    let decoding = needs.iter().filter(|n| matches!(n, Need::Decode)).count();
    let mut left = budget.saturating_sub(decoding).max(min_prefill.max(1));
    needs
        .iter()
        .map(|need| match *need {
            Need::Decode => 1,
            Need::Prefill(pending) => {
                let take = pending.min(left);
                left -= take;
                take
            }
        })
        .collect()
}

/// Sequence slots: which are free, lowest first.
#[derive(Debug, Clone)]
pub struct Slots {
    free: Vec<usize>,
}

impl Slots {
    /// `n` free slots.
    pub fn new(n: usize) -> Self {
        Slots {
            free: (0..n).rev().collect(),
        }
    }

    /// Takes the lowest free slot.
    pub fn take(&mut self) -> Option<usize> {
        self.free.pop()
    }

    /// Gives a slot back.
    pub fn release(&mut self, slot: usize) {
        debug_assert!(!self.free.contains(&slot), "slot {slot} released twice");
        self.free.push(slot);
        self.free.sort_unstable_by(|a, b| b.cmp(a));
    }

    /// How many slots are free.
    pub fn free(&self) -> usize {
        self.free.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoders_feed_one_token_and_prefill_takes_the_rest() {
        let plan = plan(&[Need::Decode, Need::Prefill(100), Need::Decode], 32, 8);
        assert_eq!(plan, vec![1, 30, 1]);
    }

    #[test]
    fn prefill_is_chunked_oldest_first() {
        assert_eq!(
            plan(&[Need::Prefill(20), Need::Prefill(20)], 32, 8),
            vec![20, 12]
        );
        assert_eq!(
            plan(&[Need::Prefill(50), Need::Prefill(20)], 32, 8),
            vec![32, 0]
        );
    }

    #[test]
    fn prefill_is_never_starved_by_many_decoders() {
        let needs = [Need::Decode, Need::Decode, Need::Decode, Need::Prefill(40)];
        assert_eq!(plan(&needs, 2, 8), vec![1, 1, 1, 8]);
    }

    #[test]
    fn short_prompt_is_fed_whole() {
        assert_eq!(plan(&[Need::Prefill(3)], 512, 16), vec![3]);
    }

    #[test]
    fn slots_are_reused_lowest_first() {
        let mut s = Slots::new(3);
        assert_eq!((s.take(), s.take()), (Some(0), Some(1)));
        s.release(0);
        assert_eq!(s.take(), Some(0));
        assert_eq!(s.take(), Some(2));
        assert_eq!(s.take(), None);
        assert_eq!(s.free(), 0);
    }
}
