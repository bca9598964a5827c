//! The engine handle (submit, stats, shutdown) and the thread that owns the model.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

use crate::stats::Stats;
use crate::worker::{Command, Worker};
use crate::{Backend, EngineError, Event, FaultPlan, Request, StatsSnapshot, SubmitError, Vocab};

/// How the engine batches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// Sequences decoded together (`--parallel`).
    pub parallel: usize,
    /// Tokens per sequence, prompt and generation (`--ctx`).
    pub ctx: usize,
    /// Requests that may wait for a slot (beyond those bound for a free slot) before new ones are refused
    /// (`--max-queue`).
    pub max_queue: usize,
    /// Tokens fed per step across the batch; bounds how long one step (and so decoding) can stall on prefill.
    pub step_tokens: usize,
    /// Prompts are fed in chunks that end at multiples of this many tokens (the last one shorter), at least
    /// one chunk per step even when decoding fills `step_tokens`. (Results do not depend on the chunks: every
    /// kernel gives a token the same bits however its prompt is cut.)
    pub prefill_chunk: usize,
    /// Steps in a row that may panic before the engine gives up (each fails only its own requests); a
    /// panic outside a step, or while freeing a slot, stops the engine at once.
    pub max_consecutive_faults: usize,
    /// Test-only: panic at these steps ([`FaultPlan`]).
    pub fault: Option<FaultPlan>,
    /// Positions per KV block (`--kv-block-size`).
    pub block_size: usize,
    /// Positions the KV pool holds in all (`--kv-cache-tokens`), rounded up to whole blocks; at least (and by
    /// default) `parallel` contexts' worth, so running sequences always fit. What sequences do not hold keeps
    /// cached prefixes.
    pub kv_tokens: usize,
    /// Whether a request starts from the cached KV of an earlier one with the same prompt prefix
    /// (`--no-prompt-cache` turns it off).
    pub prompt_cache: bool,
}

impl EngineConfig {
    /// Blocks in the KV pool: `kv_tokens` worth, and never fewer than `parallel` full contexts need.
    pub fn kv_blocks(&self) -> usize {
        let bs = self.block_size.max(1);
        let per_seq = self.ctx.div_ceil(bs);
        (self.parallel.max(1) * per_seq).max(self.kv_tokens.div_ceil(bs))
    }
}

impl EngineConfig {
    /// Blocks of the sliding-window layers' own pool for a model whose window is `window` (llama.cpp sizes
    /// its SWA cache so): each slot holds at most the window, a prefill chunk and two part-filled blocks at
    /// once, and as much again stays for the prompt cache (a cached prefix is only usable while the window
    /// before its end is still there). `None` where a window saves nothing against full contexts.
    pub fn window_blocks(&self, window: Option<usize>) -> Option<usize> {
        let bs = self.block_size.max(1);
        let per_seq = (window? + self.prefill_chunk.max(1)).div_ceil(bs) + 2;
        if per_seq >= self.ctx.div_ceil(bs) {
            return None;
        }
        Some((2 * self.parallel.max(1) * per_seq).min(self.kv_blocks()))
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            parallel: 8,
            ctx: 4096,
            max_queue: 64,
            step_tokens: 128,
            prefill_chunk: 64,
            max_consecutive_faults: 3,
            fault: None,
            block_size: 16,
            kv_tokens: 0,
            prompt_cache: true,
        }
    }
}

/// A running engine. Cheap to share behind an `Arc`; dropping the last handle lets the thread finish.
pub struct Engine {
    tx: Mutex<Sender<Command>>,
    stats: Arc<Stats>,
    config: EngineConfig,
    accepting: AtomicBool,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Engine {
    /// Starts the engine thread; `make_backend` runs on it (the backend need not be `Send`).
    pub fn start<B, F>(
        config: EngineConfig,
        vocab: Arc<dyn Vocab>,
        make_backend: F,
    ) -> Result<Engine, EngineError>
    where
        B: Backend + 'static,
        F: FnOnce() -> Result<B, EngineError> + Send + 'static,
    {
        let (tx, rx) = mpsc::channel();
        let (ready_tx, ready_rx) = mpsc::channel();
        let stats = Arc::new(Stats::default());
        let worker_stats = Arc::clone(&stats);
        let worker_config = config.clone();
        let thread = std::thread::Builder::new()
            .name("cria-engine".into())
            .spawn(move || {
                let backend = match make_backend() {
                    Ok(b) => b,
                    Err(e) => return drop(ready_tx.send(Err(e))),
                };
                let _ = ready_tx.send(Ok(()));
                Worker::new(backend, vocab, worker_config, worker_stats).run(rx);
            })?;
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => {
                return Err(EngineError::Backend(
                    "the engine thread died while starting".into(),
                ));
            }
        }
        Ok(Engine {
            tx: Mutex::new(tx),
            stats,
            config,
            accepting: AtomicBool::new(true),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// The configuration the engine runs with.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Queues a request; its events arrive on the returned receiver. Dropping the receiver cancels it.
    pub fn submit(&self, req: Request) -> Result<UnboundedReceiver<Event>, SubmitError> {
        self.check(&req)?;
        let waiting = self.stats.waiting.fetch_add(1, Ordering::SeqCst);
        if waiting >= self.queue_capacity() {
            self.stats.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(SubmitError::QueueFull {
                limit: self.config.max_queue,
            });
        }
        let (tx, rx) = unbounded_channel();
        let sent = self
            .tx
            .lock()
            .map_err(|_| SubmitError::ShuttingDown)?
            .send(Command::Submit(Box::new(req), tx));
        if sent.is_err() {
            self.stats.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(self
                .failure()
                .map_or(SubmitError::ShuttingDown, SubmitError::EngineFailed));
        }
        Ok(rx)
    }

    /// How many requests may wait at once: `max_queue` plus one per slot free now. Requests are admitted
    /// between steps, so a request bound for a free slot waits until the current step ends; it must not count
    /// against the queue, or a burst of `parallel` requests would be refused by an idle-slotted engine.
    fn queue_capacity(&self) -> usize {
        let running = self.stats.running.load(Ordering::SeqCst);
        self.config.max_queue + self.config.parallel.saturating_sub(running)
    }

    /// Checks what `submit` would refuse about the request itself (not the queue).
    pub fn check(&self, req: &Request) -> Result<(), SubmitError> {
        if let Some(reason) = self.failure() {
            return Err(SubmitError::EngineFailed(reason));
        }
        if !self.accepting.load(Ordering::SeqCst) {
            return Err(SubmitError::ShuttingDown);
        }
        if req.prompt.is_empty() {
            return Err(SubmitError::EmptyPrompt);
        }
        if req.prompt.len() >= self.config.ctx {
            return Err(SubmitError::PromptTooLong {
                prompt: req.prompt.len(),
                ctx: self.config.ctx,
            });
        }
        Ok(())
    }

    /// The engine's gauges now.
    pub fn stats(&self) -> StatsSnapshot {
        self.stats
            .snapshot(self.config.kv_blocks(), self.config.block_size.max(1))
    }

    /// Why the engine can no longer serve, if it cannot: it gave up after panics, or its thread ended
    /// without a shutdown. A server reports this on its health check and exits.
    pub fn failure(&self) -> Option<String> {
        if let Some(reason) = self.stats.failure() {
            return Some(reason);
        }
        let ended = self
            .thread
            .lock()
            .map_or(true, |t| t.as_ref().is_none_or(JoinHandle::is_finished));
        (ended && self.is_accepting()).then(|| "the engine thread stopped unexpectedly".to_string())
    }

    /// False once [`shutdown`](Self::shutdown) was called.
    pub fn is_accepting(&self) -> bool {
        self.accepting.load(Ordering::SeqCst)
    }

    /// Stops accepting requests: queued ones fail, running ones finish, then the thread exits.
    pub fn shutdown(&self) {
        self.accepting.store(false, Ordering::SeqCst);
        if let Ok(tx) = self.tx.lock() {
            let _ = tx.send(Command::Shutdown);
        }
    }

    /// Waits up to `timeout` for the engine thread to exit; true if it did.
    pub fn join(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let Ok(mut guard) = self.thread.lock() else {
            return false;
        };
        let Some(handle) = guard.take() else {
            return true;
        };
        while !handle.is_finished() {
            if Instant::now() >= deadline {
                *guard = Some(handle);
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = handle.join();
        true
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The receiving end the worker reads commands from.
pub(crate) type Commands = Receiver<Command>;
