//! Where one sequence's keys and values sit in a layer's cache: one contiguous run of rows, or fixed-size
//! blocks of rows anywhere in a shared pool (a paged cache), found through the sequence's block table.

use std::ops::Range;

use half::f16;

/// One sequence's K and V rows in a layer (`n_kv_head * head_dim` f16 a row, the same layout for K and V).
/// The sequence's position `t` is row `t % block_rows` of block `blocks[t / block_rows]`, that is row
/// `blocks[t / block_rows] * block_rows + t % block_rows` of `k` and `v`. Rows inside a block are
/// contiguous, so attention reads a block's rows with one strided kernel call, as it would a flat cache.
#[derive(Clone, Copy, Debug)]
pub struct KvView<'c> {
    pub k: &'c [f16],
    pub v: &'c [f16],
    pub blocks: &'c [u32],
    pub block_rows: usize,
}

impl<'c> KvView<'c> {
    /// A flat cache: position `t` is row `t`.
    pub fn contiguous(k: &'c [f16], v: &'c [f16]) -> Self {
        KvView {
            k,
            v,
            blocks: &[0],
            block_rows: usize::MAX,
        }
    }

    /// A paged cache: `k` and `v` are the whole pool, `blocks` the sequence's block table.
    pub fn paged(k: &'c [f16], v: &'c [f16], blocks: &'c [u32], block_rows: usize) -> Self {
        KvView {
            k,
            v,
            blocks,
            block_rows: block_rows.max(1),
        }
    }

    /// True when the positions are one run of rows starting at row 0 (a flat cache).
    pub fn is_contiguous(&self) -> bool {
        self.blocks.len() == 1 && self.blocks[0] == 0
    }

    /// The positions of `window` in runs that are contiguous in `k`/`v`: each run's positions and the row
    /// of its first one. Blocks that follow each other in the pool make one run (a sequence's blocks often
    /// do: free blocks are handed out lowest first), so a kernel call covers as many rows as it can.
    pub fn runs(&self, window: Range<usize>) -> impl Iterator<Item = (Range<usize>, usize)> + '_ {
        let bs = self.block_rows;
        let mut t = window.start;
        std::iter::from_fn(move || {
            if t >= window.end {
                return None;
            }
            let (mut b, off) = (t / bs, t % bs);
            let row = self.blocks[b] as usize * bs + off;
            let mut end = ((b + 1).saturating_mul(bs)).min(window.end);
            while end < window.end && self.blocks[b].checked_add(1) == Some(self.blocks[b + 1]) {
                b += 1;
                end = ((b + 1).saturating_mul(bs)).min(window.end);
            }
            let run = t..end;
            t = end;
            Some((run, row))
        })
    }

    /// Panics unless the positions of `window` (those attention reads) all have rows of `row_len` in both
    /// `k` and `v`. Positions before it need not: a sliding-window layer's table may have given their
    /// blocks back.
    pub(super) fn check(&self, window: Range<usize>, row_len: usize) {
        let needed_blocks = if self.is_contiguous() {
            1
        } else {
            window.end.div_ceil(self.block_rows)
        };
        assert!(
            needed_blocks <= self.blocks.len(),
            "attention: block table shorter than {} positions",
            window.end
        );
        let len = self.k.len().min(self.v.len());
        for (run, row) in self.runs(window.clone()) {
            assert!(
                row.saturating_add(run.len()).saturating_mul(row_len) <= len,
                "attention: cache shorter than {} tokens",
                window.end
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_split_at_block_ends_and_follow_the_table() {
        let pool = vec![f16::ZERO; 64];
        let view = KvView::paged(&pool, &pool, &[3, 0, 2], 4);
        let runs: Vec<_> = view.runs(2..11).collect();
        assert_eq!(runs, vec![(2..4, 14), (4..8, 0), (8..11, 8)]);
        let adjacent = KvView::paged(&pool, &pool, &[5, 1, 2, 3, 7], 4);
        let runs: Vec<_> = adjacent.runs(1..19).collect();
        assert_eq!(
            runs,
            vec![(1..4, 21), (4..16, 4), (16..19, 28)],
            "blocks 1, 2, 3 are one run"
        );
        let flat = KvView::contiguous(&pool, &pool);
        assert_eq!(flat.runs(5..40).collect::<Vec<_>>(), vec![(5..40, 5)]);
        assert!(flat.is_contiguous() && !view.is_contiguous());
    }

    #[test]
    #[should_panic(expected = "block table shorter")]
    fn a_short_block_table_is_refused() {
        let pool = vec![f16::ZERO; 64];
        KvView::paged(&pool, &pool, &[1], 4).check(0..5, 2);
    }

    #[test]
    fn given_back_blocks_before_the_window_are_not_checked() {
        let pool = vec![f16::ZERO; 64];
        KvView::paged(&pool, &pool, &[u32::MAX, 2], 4).check(4..7, 2);
    }

    #[test]
    #[should_panic(expected = "cache shorter")]
    fn a_given_back_block_inside_the_window_is_refused() {
        let pool = vec![f16::ZERO; 64];
        KvView::paged(&pool, &pool, &[u32::MAX, 2], 4).check(3..7, 2);
    }
}
