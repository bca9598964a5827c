//! Gauges the engine keeps up to date for the server's `/metrics`.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Live counts, written by the engine thread, read by anyone.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub waiting: AtomicUsize,
    pub running: AtomicUsize,
    pub kv_tokens: AtomicUsize,
    pub kv_bytes: AtomicUsize,
    pub kv_blocks_used: AtomicUsize,
    pub prefix_queries: AtomicU64,
    pub prefix_hits: AtomicU64,
    /// Why the engine stopped for good, once it has.
    failure: Mutex<Option<String>>,
}

/// A copy of the engine's gauges at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StatsSnapshot {
    /// Requests queued, not yet admitted.
    pub waiting: usize,
    /// Sequences in the running batch.
    pub running: usize,
    /// Tokens held in KV caches across running sequences.
    pub kv_tokens: usize,
    /// Tokens the KV pool can hold in all (blocks × block size).
    pub kv_capacity_tokens: usize,
    /// Bytes of KV cache allocated.
    pub kv_bytes: usize,
    /// Positions per KV block.
    pub block_size: usize,
    /// Blocks in the KV pool.
    pub kv_blocks: usize,
    /// Blocks running sequences hold (the rest are free or hold cached prefixes).
    pub kv_blocks_used: usize,
    /// Prompt tokens looked up in the prompt cache, since start.
    pub prefix_cache_queries: u64,
    /// Prompt tokens found there (not computed), since start.
    pub prefix_cache_hits: u64,
}

impl StatsSnapshot {
    /// The share of KV blocks running sequences hold, 0 to 1 (vLLM's `kv_cache_usage_perc`).
    pub fn kv_usage(&self) -> f64 {
        if self.kv_blocks == 0 {
            0.0
        } else {
            self.kv_blocks_used as f64 / self.kv_blocks as f64
        }
    }
}

impl Stats {
    /// Records that the engine cannot go on (the first reason wins).
    pub fn set_failure(&self, reason: String) {
        let mut failure = self.failure.lock().unwrap_or_else(|e| e.into_inner());
        failure.get_or_insert(reason);
    }

    /// Why the engine stopped for good, if it has.
    pub fn failure(&self) -> Option<String> {
        self.failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn snapshot(&self, kv_blocks: usize, block_size: usize) -> StatsSnapshot {
        StatsSnapshot {
            waiting: self.waiting.load(Ordering::Relaxed),
            running: self.running.load(Ordering::Relaxed),
            kv_tokens: self.kv_tokens.load(Ordering::Relaxed),
            kv_capacity_tokens: kv_blocks * block_size,
            kv_bytes: self.kv_bytes.load(Ordering::Relaxed),
            block_size,
            kv_blocks,
            kv_blocks_used: self.kv_blocks_used.load(Ordering::Relaxed),
            prefix_cache_queries: self.prefix_queries.load(Ordering::Relaxed),
            prefix_cache_hits: self.prefix_hits.load(Ordering::Relaxed),
        }
    }
}
