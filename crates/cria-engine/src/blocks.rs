//! The KV block manager: which pool blocks each sequence holds, and the prompt cache over them.
//!
//! The model's KV pool is cut into blocks of `block_size` positions. A running sequence holds a block table
//! (its blocks, in position order). A block that is full is keyed by a hash chain, vLLM's scheme: the hash of
//! its parent block's key, its own token ids, and (through the first block's parent) the request's
//! `cache_salt`. A key names the whole prefix up to the block's end, so a new request whose prompt starts with
//! the same tokens (and salt) finds those blocks and starts computing after them. Blocks are shared by
//! reference count; a block no sequence holds stays cached until it is needed again, and is then evicted,
//! least recently used first. Only full blocks are shared, and a sequence only writes past its shared prefix,
//! so a shared block is never written again (no copy-on-write).
//!
//! Sizing: the pool holds at least `ceil(ctx / block_size)` blocks per slot, so the blocks sequences hold can
//! never exceed it and allocation only ever evicts unreferenced blocks (no preemption).

use std::collections::{BTreeMap, HashMap};
use std::hash::{DefaultHasher, Hash, Hasher};

/// The key of a full block: the hash chain's link, and what it was made of (checked on a hit, so a 64-bit
/// collision can never serve another prompt's KV).
#[derive(Debug, Clone, PartialEq, Eq)]
struct BlockKey {
    hash: u64,
    parent: u64,
    tokens: Vec<u32>,
}

#[derive(Debug, Default, Clone)]
struct Block {
    refs: usize,
    key: Option<BlockKey>,
    /// When the last holder released it (the LRU order of unreferenced cached blocks).
    released_at: u64,
}

/// Pool blocks: free ones, cached ones, and who holds what.
#[derive(Debug)]
pub(crate) struct BlockManager {
    block_size: usize,
    blocks: Vec<Block>,
    /// Blocks with no key and no holder, highest first (so the lowest is taken first and memory stays compact).
    free: Vec<u32>,
    /// Full blocks by hash.
    cached: HashMap<u64, u32>,
    /// Unreferenced cached blocks by release time: the eviction order.
    lru: BTreeMap<u64, u32>,
    clock: u64,
    /// Whether full blocks are kept and looked up (`--no-prompt-cache` turns it off).
    caching: bool,
}

/// The hash chain's root for a salt: requests with different salts share no block.
pub(crate) fn root_hash(salt: Option<&str>) -> u64 {
    let mut h = DefaultHasher::new();
    "cria-kv-root".hash(&mut h);
    salt.hash(&mut h);
    h.finish()
}

/// The key of the block holding `tokens` after the block whose key hash is `parent`.
fn block_hash(parent: u64, tokens: &[u32]) -> u64 {
    let mut h = DefaultHasher::new();
    parent.hash(&mut h);
    tokens.hash(&mut h);
    h.finish()
}

impl BlockManager {
    pub fn new(n_blocks: usize, block_size: usize, caching: bool) -> Self {
        let n = u32::try_from(n_blocks).unwrap_or(u32::MAX);
        BlockManager {
            block_size: block_size.max(1),
            blocks: vec![Block::default(); n as usize],
            free: (0..n).rev().collect(),
            cached: HashMap::new(),
            lru: BTreeMap::new(),
            clock: 0,
            caching,
        }
    }

    pub fn block_size(&self) -> usize {
        self.block_size
    }

    /// Blocks some running sequence holds.
    pub fn used(&self) -> usize {
        self.blocks.iter().filter(|b| b.refs > 0).count()
    }

    /// The longest run of cached blocks that starts `tokens` (only its full blocks are looked at), each
    /// taken (reference count up) for the caller, with its key hash (the next block's parent).
    pub fn lookup(&mut self, root: u64, tokens: &[u32]) -> Vec<(u32, u64)> {
        let mut found = Vec::new();
        let mut parent = root;
        if !self.caching {
            return found;
        }
        for chunk in tokens.chunks_exact(self.block_size) {
            let hash = block_hash(parent, chunk);
            let Some(id) = self.take_cached(hash, parent, chunk) else {
                break;
            };
            found.push((id, hash));
            parent = hash;
        }
        found
    }

    /// The cached block keyed `hash` (holding `tokens` after the block keyed `parent`), taken for the caller.
    pub fn take_cached(&mut self, hash: u64, parent: u64, tokens: &[u32]) -> Option<u32> {
        let &id = self.cached.get(&hash)?;
        let matches = self.blocks[id as usize]
            .key
            .as_ref()
            .is_some_and(|k| k.parent == parent && k.tokens == tokens);
        if !matches {
            return None;
        }
        self.take(id);
        Some(id)
    }

    /// A block for new positions: a free one, else the least recently released cached one (evicted).
    pub fn allocate(&mut self) -> Option<u32> {
        let id = match self.free.pop() {
            Some(id) => id,
            None => {
                let (_, id) = self.lru.pop_first()?;
                if let Some(key) = self.blocks[id as usize].key.take() {
                    self.cached.remove(&key.hash);
                }
                id
            }
        };
        self.blocks[id as usize].refs = 1;
        Some(id)
    }

    /// Keys the full block `id`, which holds `tokens` after the block keyed `parent`; returns its hash, the
    /// next block's parent. When that prefix is cached already (two sequences computed it side by side), the
    /// first copy stays the cached one.
    pub fn register(&mut self, id: u32, parent: u64, tokens: &[u32]) -> u64 {
        let hash = block_hash(parent, tokens);
        if self.caching && !self.cached.contains_key(&hash) {
            self.cached.insert(hash, id);
            self.blocks[id as usize].key = Some(BlockKey {
                hash,
                parent,
                tokens: tokens.to_vec(),
            });
        }
        hash
    }

    /// Drops one reference to each of `ids` (a block table); a block nobody holds stays cached (if keyed) or
    /// is freed. Released last block first, so a prefix's tail is evicted before its head (a chain is useless
    /// from its first missing block on).
    pub fn release(&mut self, ids: &[u32]) {
        for &id in ids.iter().rev() {
            self.clock += 1;
            let block = &mut self.blocks[id as usize];
            debug_assert!(block.refs > 0, "block {id} released twice");
            block.refs = block.refs.saturating_sub(1);
            if block.refs > 0 {
                continue;
            }
            if block.key.is_some() {
                block.released_at = self.clock;
                self.lru.insert(self.clock, id);
            } else {
                self.free.push(id);
            }
        }
        self.free.sort_unstable_by(|a, b| b.cmp(a));
    }

    /// Drops every cached block no sequence holds (after a panic, whose blocks may be half written).
    pub fn forget_unreferenced(&mut self) {
        while let Some((_, id)) = self.lru.pop_first() {
            if let Some(key) = self.blocks[id as usize].key.take() {
                self.cached.remove(&key.hash);
            }
            self.free.push(id);
        }
        self.free.sort_unstable_by(|a, b| b.cmp(a));
    }

    fn take(&mut self, id: u32) {
        let block = &mut self.blocks[id as usize];
        if block.refs == 0 {
            self.lru.remove(&block.released_at);
        }
        block.refs += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(found: Vec<(u32, u64)>) -> Vec<u32> {
        found.into_iter().map(|f| f.0).collect()
    }

    /// A sequence's blocks for `tokens`: the cached prefix, then new blocks, each full one registered.
    fn fill(m: &mut BlockManager, root: u64, tokens: &[u32]) -> Vec<u32> {
        let found = m.lookup(root, tokens);
        let mut parent = found.last().map_or(root, |f| f.1);
        let mut table: Vec<u32> = found.iter().map(|f| f.0).collect();
        let bs = m.block_size();
        for (i, chunk) in tokens.chunks(bs).enumerate().skip(table.len()) {
            let id = m.allocate().expect("a block");
            table.push(id);
            if chunk.len() == bs {
                parent = m.register(table[i], parent, chunk);
            }
        }
        table
    }

    #[test]
    fn a_shared_prefix_is_found_and_shared() {
        let mut m = BlockManager::new(8, 4, true);
        let root = root_hash(None);
        let a = fill(&mut m, root, &[1, 2, 3, 4, 5, 6, 7, 8, 9]);
        assert_eq!(a, vec![0, 1, 2]);
        let hit = ids(m.lookup(root, &[1, 2, 3, 4, 5, 6, 7, 0, 9]));
        assert_eq!(hit, vec![0], "the second block differs");
        m.release(&hit);
        let b = fill(&mut m, root, &[1, 2, 3, 4, 5, 6, 7, 8, 10, 11]);
        assert_eq!(&b[..2], &[0, 1]);
        assert_eq!(m.used(), 4, "blocks 0 and 1 are shared");
    }

    #[test]
    fn a_different_salt_never_hits() {
        let mut m = BlockManager::new(8, 2, true);
        let tokens = [1, 2, 3, 4];
        let a = fill(&mut m, root_hash(Some("alice")), &tokens);
        m.release(&a);
        assert!(m.lookup(root_hash(Some("bob")), &tokens).is_empty());
        assert!(m.lookup(root_hash(None), &tokens).is_empty());
        assert_eq!(ids(m.lookup(root_hash(Some("alice")), &tokens)), a);
    }

    #[test]
    fn unreferenced_blocks_are_evicted_least_recently_released_first() {
        let mut m = BlockManager::new(4, 2, true);
        let root = root_hash(None);
        let a = fill(&mut m, root, &[1, 2, 3, 4]);
        let b = fill(&mut m, root, &[5, 6, 7, 8]);
        m.release(&b);
        m.release(&a);
        // Free blocks are gone: the next allocation evicts b's last block (released first), not a's.
        let c = fill(&mut m, root, &[9, 9]);
        assert_eq!(c, vec![b[1]]);
        assert_eq!(
            ids(m.lookup(root, &[5, 6, 7, 8])),
            vec![b[0]],
            "the head outlives the tail"
        );
        m.release(&[b[0]]);
        // b's head was used just now: a's tail goes next.
        assert_eq!(fill(&mut m, root, &[8, 8]), vec![a[1]]);
        assert_eq!(ids(m.lookup(root, &[1, 2, 3, 4])), vec![a[0]]);
        assert_eq!(ids(m.lookup(root, &[5, 6])), vec![b[0]]);
        assert_eq!(m.allocate(), None, "every block is held");
    }

    #[test]
    fn without_caching_nothing_is_found_and_blocks_are_freed() {
        let mut m = BlockManager::new(4, 2, false);
        let root = root_hash(None);
        let a = fill(&mut m, root, &[1, 2, 3, 4]);
        m.release(&a);
        assert!(m.lookup(root, &[1, 2, 3, 4]).is_empty());
        assert_eq!(m.used(), 0);
        assert_eq!(m.free.len(), 4);
    }

    #[test]
    fn forgetting_frees_every_unreferenced_cached_block() {
        let mut m = BlockManager::new(4, 2, true);
        let root = root_hash(None);
        let a = fill(&mut m, root, &[1, 2, 3, 4]);
        m.release(&a);
        m.forget_unreferenced();
        assert!(m.lookup(root, &[1, 2]).is_empty());
        assert_eq!(m.free.len(), 4);
    }
}
