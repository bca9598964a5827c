//! The sliding-window layers' block table of one sequence, where the backend keeps those layers in a pool of
//! their own: blocks no query will see again (behind the window) are given back as the sequence grows, so a
//! slot holds about a window of them whatever its length (llama.cpp sizes its SWA cache so).
//!
//! The table is indexed like the full layers' one (block `i` holds positions `i * block_size..`); a given-back
//! entry is [`GIVEN_BACK`]. Full blocks are keyed in the window pool's own [`BlockManager`] under the same hash
//! chain as the full layers' blocks, so the prompt cache finds both halves of a prefix by the same keys. A
//! cached prefix is usable only while the window before its end is still cached (vLLM's sliding-window rule:
//! the blocks behind it are not needed); otherwise a shorter prefix is tried.

use crate::blocks::BlockManager;

/// The sliding-window layers' own pool: their window and the manager of its blocks.
#[derive(Debug)]
pub(crate) struct WindowPool {
    pub window: usize,
    pub blocks: BlockManager,
}

/// A table entry whose block was given back.
pub(crate) const GIVEN_BACK: u32 = u32::MAX;

/// One sequence's sliding-window block table.
#[derive(Debug, Default)]
pub(crate) struct WindowTable {
    pub blocks: Vec<u32>,
}

impl WindowTable {
    /// A table that starts from cached blocks: those before `first` given back, `found` holding the rest.
    pub fn starting_from(first: usize, found: &[u32]) -> Self {
        let mut blocks = vec![GIVEN_BACK; first];
        blocks.extend_from_slice(found);
        WindowTable { blocks }
    }

    /// Allocates blocks until positions `..upto` have one; false when the pool has none left.
    pub fn reserve(&mut self, upto: usize, manager: &mut BlockManager) -> bool {
        while self.blocks.len() * manager.block_size() < upto {
            match manager.allocate() {
                Some(id) => self.blocks.push(id),
                None => return false,
            }
        }
        true
    }

    /// Gives back the blocks that no query at position `next` or later sees through a `window`.
    pub fn give_back_behind(&mut self, next: usize, window: usize, manager: &mut BlockManager) {
        let first_seen = (next + 1).saturating_sub(window) / manager.block_size();
        for entry in self.blocks.iter_mut().take(first_seen) {
            if *entry != GIVEN_BACK {
                manager.release(&[std::mem::replace(entry, GIVEN_BACK)]);
            }
        }
    }

    /// The blocks still held, in position order.
    pub fn held(&self) -> Vec<u32> {
        self.blocks
            .iter()
            .copied()
            .filter(|&b| b != GIVEN_BACK)
            .collect()
    }

    /// The block of block index `i`, unless given back.
    pub fn get(&self, i: usize) -> Option<u32> {
        self.blocks.get(i).copied().filter(|&b| b != GIVEN_BACK)
    }
}

/// The window blocks a sequence that starts from the cached prefix `found` (full-layer blocks with their key
/// hashes, chained from `root`, holding `prompt`'s first positions) needs: those of the `window` positions
/// before the prefix's end, taken from `manager` with the same keys. Returns the index of the first and the
/// blocks, or `None` (nothing taken) when one of them is no longer cached.
pub(crate) fn take_window(
    manager: &mut BlockManager,
    window: usize,
    root: u64,
    prompt: &[u32],
    found: &[(u32, u64)],
) -> Option<(usize, Vec<u32>)> {
    let bs = manager.block_size();
    let end = found.len() * bs;
    if end == 0 {
        return Some((0, Vec::new()));
    }
    let first = (end + 1).saturating_sub(window) / bs;
    let mut taken = Vec::new();
    for i in first..found.len() {
        let parent = if i == 0 { root } else { found[i - 1].1 };
        let tokens = &prompt[i * bs..(i + 1) * bs];
        match manager.take_cached(found[i].1, parent, tokens) {
            Some(id) => taken.push(id),
            None => {
                manager.release(&taken);
                return None;
            }
        }
    }
    Some((first, taken))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blocks::root_hash;

    #[test]
    fn blocks_behind_the_window_are_given_back_and_reused() {
        let mut m = BlockManager::new(4, 4, true);
        let mut t = WindowTable::default();
        assert!(t.reserve(12, &mut m));
        // A query at position 10 with a window of 6 sees positions 5..=10: block 0 (0..4) is behind it.
        t.give_back_behind(10, 6, &mut m);
        assert_eq!(t.blocks, vec![GIVEN_BACK, 1, 2]);
        assert!(t.reserve(16, &mut m), "block 0 came back to the pool");
        assert!(t.reserve(20, &mut m));
        assert_eq!(t.held(), vec![1, 2, 0, 3]);
    }

    #[test]
    fn a_prefix_whose_window_is_no_longer_cached_is_not_taken() {
        let root = root_hash(None);
        let prompt: Vec<u32> = (0..12).collect();
        let mut full = BlockManager::new(8, 4, true);
        let mut win = BlockManager::new(8, 4, true);
        // One sequence computed three blocks in both pools, keyed alike, then gave back the first window block.
        let (mut parent, mut found) = (root, Vec::new());
        let mut table = WindowTable::default();
        assert!(table.reserve(12, &mut win));
        for (i, chunk) in prompt.chunks(4).enumerate() {
            let id = full.allocate().unwrap();
            win.register(table.blocks[i], parent, chunk);
            parent = full.register(id, parent, chunk);
            found.push((id, parent));
        }
        // Positions 12 on see 8..: blocks 0 and 1 are given back (still cached), then the sequence ends.
        table.give_back_behind(12, 5, &mut win);
        win.release(&table.held());
        // A window of 9 before position 12 needs blocks 1 and 2 (positions 4..=12): given back, still cached.
        let taken = take_window(&mut win, 9, root, &prompt, &found);
        assert_eq!(taken, Some((1, vec![1, 2])));
        win.release(&[1, 2]);
        // New positions take the five free blocks, then evict the least recently given back: block 0.
        for _ in 0..6 {
            assert!(win.allocate().is_some());
        }
        assert_eq!(
            take_window(&mut win, 5, root, &prompt, &found),
            Some((2, vec![2]))
        );
        assert_eq!(take_window(&mut win, 12, root, &prompt, &found), None);
    }
}
