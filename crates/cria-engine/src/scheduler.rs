//! Step planning as plain data: which sequences feed how many tokens this step, and which slots are free.

/// What one running sequence still has to feed before it decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Prompt tokens `done..done + left` are not yet in the cache.
    Prefill { done: usize, left: usize },
    /// Decoding: feeds its last sampled token.
    Decode,
}

/// The next prefill chunk of a prompt with `done` tokens fed and `left` to go: up to the next multiple of
/// `chunk`. Boundaries at fixed prompt positions make a prompt's chunks a function of the prompt (and where
/// the prompt cache let it start), never of what else runs. (Its logits would be the same bits in any chunks.)
pub fn next_chunk(done: usize, left: usize, chunk: usize) -> usize {
    let chunk = chunk.max(1);
    (chunk - done % chunk).min(left)
}

/// Token counts per sequence (same order as `needs`) for one step.
///
/// Every decoding sequence feeds its one token, so decoding never waits on a long prompt. Prefilling
/// sequences, oldest first, feed their next whole chunk ([`next_chunk`]) while the chunks fit in what is left
/// of `budget`; the first prefilling sequence always gets its chunk, so a prompt is never starved by many
/// decoders. A chunk that does not fit is not cut: the sequence waits for the next step.
pub fn plan(needs: &[Need], budget: usize, chunk: usize) -> Vec<usize> {
    let decoding = needs.iter().filter(|n| matches!(n, Need::Decode)).count();
    let mut left = budget.saturating_sub(decoding);
    let mut granted_one = false;
    needs
        .iter()
        .map(|need| match *need {
            Need::Decode => 1,
            Need::Prefill {
                done,
                left: pending,
            } => {
                let take = next_chunk(done, pending, chunk);
                if take <= left || !granted_one {
                    granted_one = true;
                    left = left.saturating_sub(take);
                    take
                } else {
                    0
                }
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

    /// `n` slots, all free but those in `held`.
    pub fn all_but(n: usize, held: &[usize]) -> Self {
        Slots {
            free: (0..n).rev().filter(|s| !held.contains(s)).collect(),
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

    fn prefill(done: usize, left: usize) -> Need {
        Need::Prefill { done, left }
    }

    #[test]
    fn decoders_feed_one_token_and_prefill_takes_whole_chunks() {
        let plan = plan(&[Need::Decode, prefill(0, 100), Need::Decode], 32, 16);
        assert_eq!(plan, vec![1, 16, 1]);
    }

    #[test]
    fn prefill_is_chunked_oldest_first() {
        assert_eq!(
            plan(&[prefill(0, 20), prefill(0, 20)], 32, 16),
            vec![16, 16]
        );
        assert_eq!(plan(&[prefill(0, 50), prefill(0, 20)], 32, 32), vec![32, 0]);
        assert_eq!(plan(&[prefill(0, 50), prefill(0, 8)], 40, 32), vec![32, 8]);
    }

    #[test]
    fn prefill_is_never_starved_by_many_decoders() {
        let needs = [Need::Decode, Need::Decode, Need::Decode, prefill(0, 40)];
        assert_eq!(plan(&needs, 2, 8), vec![1, 1, 1, 8]);
    }

    #[test]
    fn short_prompt_is_fed_whole() {
        assert_eq!(plan(&[prefill(0, 3)], 512, 16), vec![3]);
    }

    #[test]
    fn chunks_end_at_multiples_of_the_chunk_size() {
        assert_eq!(next_chunk(0, 100, 32), 32);
        assert_eq!(next_chunk(32, 68, 32), 32);
        assert_eq!(next_chunk(96, 4, 32), 4);
        assert_eq!(next_chunk(10, 100, 32), 22, "a misaligned start realigns");
        assert_eq!(next_chunk(5, 5, 0), 1, "a zero chunk size means one token");
    }

    /// Whatever runs beside it, a prompt is cut at the same positions.
    #[test]
    fn a_prompts_chunk_boundaries_do_not_depend_on_the_batch() {
        let prompt = 150;
        let alone = boundaries(prompt, &[], 64, 32);
        assert_eq!(alone, vec![32, 64, 96, 128, 150]);
        for others in [vec![Need::Decode; 7], vec![prefill(0, 90), Need::Decode]] {
            for budget in [8, 40, 64, 128] {
                assert_eq!(boundaries(prompt, &others, budget, 32), alone);
            }
        }
    }

    /// Prompt positions where a prompt of `prompt` tokens ends each of its chunks, queued after `others` on
    /// every other step (a batch that changes from step to step).
    fn boundaries(prompt: usize, others: &[Need], budget: usize, chunk: usize) -> Vec<usize> {
        let (mut done, mut step, mut ends) = (0, 0, Vec::new());
        while done < prompt {
            let mut needs = if step % 2 == 0 {
                others.to_vec()
            } else {
                Vec::new()
            };
            needs.push(prefill(done, prompt - done));
            let n = plan(&needs, budget, chunk).last().copied().unwrap_or(0);
            if n > 0 {
                done += n;
                ends.push(done);
            }
            step += 1;
        }
        ends
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

    #[test]
    fn slots_rebuilt_around_the_held_ones_are_free_lowest_first() {
        let mut s = Slots::all_but(4, &[0, 2]);
        assert_eq!(s.free(), 2);
        assert_eq!((s.take(), s.take(), s.take()), (Some(1), Some(3), None));
    }
}
