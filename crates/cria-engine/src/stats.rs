//! Gauges the engine keeps up to date for the server's `/metrics`.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Live counts, written by the engine thread, read by anyone.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub waiting: AtomicUsize,
    pub running: AtomicUsize,
    pub kv_tokens: AtomicUsize,
    pub kv_bytes: AtomicUsize,
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
    /// Tokens the KV caches can hold in all (`parallel * ctx`).
    pub kv_capacity_tokens: usize,
    /// Bytes of KV cache allocated.
    pub kv_bytes: usize,
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

    pub fn snapshot(&self, kv_capacity_tokens: usize) -> StatsSnapshot {
        StatsSnapshot {
            waiting: self.waiting.load(Ordering::Relaxed),
            running: self.running.load(Ordering::Relaxed),
            kv_tokens: self.kv_tokens.load(Ordering::Relaxed),
            kv_capacity_tokens,
            kv_bytes: self.kv_bytes.load(Ordering::Relaxed),
        }
    }
}
