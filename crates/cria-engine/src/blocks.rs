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
//! A finished sequence's part-filled last block (a tail) is kept too, keyed by its parent's hash and the
//! tokens it holds, as llama.cpp keeps a slot's whole prefix: a prompt that goes on from the same full blocks
//! and starts with some of those tokens takes the tail for itself (it is never shared, so the new sequence
//! writes over the rest of it), and reuses every token of the common prefix rather than whole blocks only.
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

/// What a cached tail holds: `tokens` (fewer than a block) after the block keyed `parent`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TailKey {
    parent: u64,
    tokens: Vec<u32>,
}

#[derive(Debug, Default, Clone)]
struct Block {
    refs: usize,
    key: Option<BlockKey>,
    tail: Option<TailKey>,
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
    /// Unreferenced tails by their parent's hash.
    tails: HashMap<u64, Vec<u32>>,
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
            tails: HashMap::new(),
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
                self.forget(id);
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
            if block.key.is_some() || block.tail.is_some() {
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
            self.forget(id);
            self.free.push(id);
        }
        self.free.sort_unstable_by(|a, b| b.cmp(a));
    }

    /// Drops the holder's reference to its part-filled last block `id`, which holds `tokens` (fewer than a
    /// block, all computed) after the block keyed `parent`: once unreferenced it stays cached as a tail that a
    /// prompt continuing the same tokens can take ([`take_tail`](Self::take_tail)).
    pub fn release_tail(&mut self, id: u32, parent: u64, tokens: &[u32]) {
        let block = &mut self.blocks[id as usize];
        if self.caching && !tokens.is_empty() && block.refs == 1 && block.key.is_none() {
            block.tail = Some(TailKey {
                parent,
                tokens: tokens.to_vec(),
            });
            self.tails.entry(parent).or_default().push(id);
        }
        self.release(&[id]);
    }

    /// The cached tail after the block keyed `parent` that shares the longest start with `tokens`, taken for
    /// the caller alone (no longer cached: the caller writes past the shared start), with that start's length.
    pub fn take_tail(&mut self, parent: u64, tokens: &[u32]) -> Option<(u32, usize)> {
        let common = |id: &u32| {
            let tail = self.blocks[*id as usize].tail.as_ref();
            tail.map_or(0, |t| {
                t.tokens
                    .iter()
                    .zip(tokens)
                    .take_while(|(a, b)| a == b)
                    .count()
            })
        };
        let (id, n) = self
            .tails
            .get(&parent)?
            .iter()
            .map(|id| (*id, common(id)))
            .max_by_key(|c| c.1)?;
        if n == 0 {
            return None;
        }
        self.take(id);
        self.forget(id);
        Some((id, n))
    }

    /// Removes block `id`'s keys (full block or tail), so no lookup finds it.
    fn forget(&mut self, id: u32) {
        let block = &mut self.blocks[id as usize];
        if let Some(key) = block.key.take() {
            self.cached.remove(&key.hash);
        }
        if let Some(tail) = block.tail.take()
            && let Some(ids) = self.tails.get_mut(&tail.parent)
        {
            ids.retain(|&b| b != id);
            if ids.is_empty() {
                self.tails.remove(&tail.parent);
            }
        }
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
    fn a_tail_is_taken_by_one_prompt_that_continues_its_tokens() {
        let mut m = BlockManager::new(4, 4, true);
        let root = root_hash(None);
        let a = fill(&mut m, root, &[1, 2, 3, 4, 5, 6, 7]);
        let parent = block_hash(root, &[1, 2, 3, 4]);
        m.release_tail(a[1], parent, &[5, 6, 7]);
        m.release(&a[..1]);
        assert_eq!(m.take_tail(parent, &[9, 9]), None, "no common start");
        assert_eq!(m.take_tail(root, &[5, 6]), None, "another parent");
        assert_eq!(m.take_tail(parent, &[5, 6, 8, 9]), Some((a[1], 2)));
        assert_eq!(m.take_tail(parent, &[5, 6, 7]), None, "taken once");
        assert_eq!(m.used(), 1);
    }

    #[test]
    fn a_tail_is_evicted_like_a_cached_block() {
        let mut m = BlockManager::new(2, 4, true);
        let root = root_hash(None);
        let a = fill(&mut m, root, &[1, 2]);
        m.release_tail(a[0], root, &[1, 2]);
        assert_eq!(m.allocate(), Some(1), "free blocks first");
        assert_eq!(m.allocate(), Some(a[0]), "then the tail, evicted");
        assert_eq!(m.take_tail(root, &[1, 2]), None);
        let mut off = BlockManager::new(2, 4, false);
        let b = fill(&mut off, root, &[1, 2]);
        off.release_tail(b[0], root, &[1, 2]);
        assert_eq!(off.take_tail(root, &[1, 2]), None, "no caching, no tails");
    }

    #[test]
    fn forgetting_frees_every_unreferenced_cached_block() {
        let mut m = BlockManager::new(4, 2, true);
        let root = root_hash(None);
        let a = fill(&mut m, root, &[1, 2, 3, 4, 5]);
        m.release_tail(a[2], block_hash(block_hash(root, &[1, 2]), &[3, 4]), &[5]);
        m.release(&a[..2]);
        m.forget_unreferenced();
        assert!(m.lookup(root, &[1, 2]).is_empty());
        assert!(m.tails.is_empty());
        assert_eq!(m.free.len(), 4);
    }
}
