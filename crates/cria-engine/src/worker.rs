//! The engine thread's loop: admit, plan, forward, sample, send; and what happens when a step panics.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::TryRecvError;

use tokio::sync::mpsc::UnboundedSender;

use crate::blocks::BlockManager;
use crate::engine::{Commands, EngineConfig};
use crate::fault::panic_message;
use crate::scheduler::{self, Need, Slots};
use crate::sequence::Sequence;
use crate::stats::Stats;
use crate::window::{WindowPool, WindowTable, take_window};
use crate::{Backend, Event, FAULT_ENV, Request, Step, Vocab};

pub(crate) enum Command {
    Submit(Box<Request>, UnboundedSender<Event>),
    Shutdown,
}

pub(crate) struct Worker<B> {
    backend: B,
    vocab: Arc<dyn Vocab>,
    config: EngineConfig,
    stats: Arc<Stats>,
    slots: Slots,
    blocks: BlockManager,
    /// The sliding-window layers' pool, where the backend keeps them apart.
    windowed: Option<WindowPool>,
    waiting: VecDeque<(Request, UnboundedSender<Event>)>,
    running: Vec<Sequence>,
    shutting_down: bool,
    /// Forward passes started, for fault injection.
    steps: u64,
    /// The slots of the step in progress (empty between steps): whom a panic in the step concerns.
    in_step: Vec<usize>,
    /// Steps in a row that panicked.
    consecutive_faults: usize,
}

impl<B: Backend> Worker<B> {
    pub fn new(backend: B, vocab: Arc<dyn Vocab>, config: EngineConfig, stats: Arc<Stats>) -> Self {
        let slots = Slots::new(config.parallel.max(1));
        let blocks = BlockManager::new(config.kv_blocks(), config.block_size, config.prompt_cache);
        let window = backend.sliding_window();
        let windowed = config.window_blocks(window).zip(window).map(|(n, window)| {
            let blocks = BlockManager::new(n, config.block_size, config.prompt_cache);
            WindowPool { window, blocks }
        });
        Worker {
            backend,
            vocab,
            config,
            stats,
            slots,
            blocks,
            windowed,
            waiting: VecDeque::new(),
            running: Vec::new(),
            shutting_down: false,
            steps: 0,
            in_step: Vec::new(),
            consecutive_faults: 0,
        }
    }

    pub fn run(mut self, rx: Commands) {
        while self.receive(&rx) {
            let turn = catch_unwind(AssertUnwindSafe(|| self.turn()));
            if let Err(payload) = turn
                && let Err(reason) = self.recover(&panic_message(payload.as_ref()))
            {
                return self.give_up(reason);
            }
            self.publish_stats();
        }
        self.publish_stats();
    }

    /// One turn of the loop: drop the cancelled, admit the waiting, run a step.
    fn turn(&mut self) {
        self.drop_cancelled();
        self.admit();
        if !self.running.is_empty() {
            self.step();
            self.consecutive_faults = 0;
        }
    }

    /// After a panic: fails the requests of the step it hit and empties their slots, so the engine can go
    /// on. Err when it cannot (the panic was outside a step, freeing a slot panicked too, or too many steps
    /// in a row panicked).
    fn recover(&mut self, message: &str) -> Result<(), String> {
        let in_step = std::mem::take(&mut self.in_step);
        tracing::error!("the engine panicked: {message}");
        if in_step.is_empty() {
            return Err(format!("a panic outside a step: {message}"));
        }
        let (failed, kept): (Vec<_>, Vec<_>) = self
            .running
            .drain(..)
            .partition(|s| in_step.contains(&s.slot));
        self.running = kept;
        for seq in &failed {
            self.release_blocks(seq);
            seq.fail(format!(
                "internal error: the engine failed while generating this request ({message}); the request was stopped"
            ));
        }
        // Whatever the panic interrupted, the step's caches are emptied and every slot no running sequence
        // holds is free again.
        let reset = catch_unwind(AssertUnwindSafe(|| {
            for &slot in &in_step {
                self.backend.reset_slot(slot);
            }
        }));
        if let Err(payload) = reset {
            return Err(format!(
                "freeing the slots after a panic ({message}) panicked too: {}",
                panic_message(payload.as_ref())
            ));
        }
        let held: Vec<usize> = self.running.iter().map(|s| s.slot).collect();
        self.slots = Slots::all_but(self.config.parallel.max(1), &held);
        // Whatever the panic interrupted, no block it might have half written stays in the prompt cache.
        self.blocks.forget_unreferenced();
        if let Some(w) = &mut self.windowed {
            w.blocks.forget_unreferenced();
        }
        self.consecutive_faults += 1;
        if self.consecutive_faults >= self.config.max_consecutive_faults.max(1) {
            return Err(format!(
                "{} steps in a row panicked, the last with: {message}",
                self.consecutive_faults
            ));
        }
        Ok(())
    }

    /// Stops for good: records why (the server's health check turns 503), fails every request it holds.
    fn give_up(mut self, reason: String) {
        tracing::error!("the engine cannot go on: {reason}");
        self.stats.set_failure(reason.clone());
        let message = format!("the engine failed and stopped: {reason}");
        for seq in self.running.drain(..) {
            seq.fail(message.clone());
        }
        for (_, tx) in self.waiting.drain(..) {
            self.stats.waiting.fetch_sub(1, Ordering::SeqCst);
            let _ = tx.send(Event::Failed(message.clone()));
        }
        self.stats.running.store(0, Ordering::SeqCst);
        self.stats.kv_tokens.store(0, Ordering::SeqCst);
    }

    /// Takes new commands, blocking while idle. False when the loop should end.
    fn receive(&mut self, rx: &Commands) -> bool {
        if self.running.is_empty() && self.waiting.is_empty() {
            if self.shutting_down {
                return false;
            }
            match rx.recv() {
                Ok(cmd) => self.handle(cmd),
                Err(_) => return false,
            }
        }
        loop {
            match rx.try_recv() {
                Ok(cmd) => self.handle(cmd),
                Err(TryRecvError::Empty) => return true,
                Err(TryRecvError::Disconnected) => {
                    self.handle(Command::Shutdown);
                    return !(self.running.is_empty() && self.waiting.is_empty());
                }
            }
        }
    }

    fn handle(&mut self, cmd: Command) {
        match cmd {
            Command::Submit(req, tx) if self.shutting_down => {
                self.stats.waiting.fetch_sub(1, Ordering::SeqCst);
                let _ = tx.send(Event::Failed("the server is shutting down".into()));
                drop(req);
            }
            Command::Submit(req, tx) => self.waiting.push_back((*req, tx)),
            Command::Shutdown => {
                self.shutting_down = true;
                for (_, tx) in self.waiting.drain(..) {
                    self.stats.waiting.fetch_sub(1, Ordering::SeqCst);
                    let _ = tx.send(Event::Failed("the server is shutting down".into()));
                }
            }
        }
    }

    /// Frees the slots of requests whose client has gone.
    fn drop_cancelled(&mut self) {
        let before = self.waiting.len();
        self.waiting.retain(|(_, tx)| !tx.is_closed());
        self.stats
            .waiting
            .fetch_sub(before - self.waiting.len(), Ordering::SeqCst);
        let (gone, kept): (Vec<_>, Vec<_>) = self.running.drain(..).partition(|s| s.is_cancelled());
        self.running = kept;
        for seq in gone {
            tracing::debug!(slot = seq.slot, "request cancelled");
            self.release(&seq);
        }
    }

    fn admit(&mut self) {
        while self.slots.free() > 0 {
            let Some((mut req, tx)) = self.waiting.pop_front() else {
                break;
            };
            if req.ignore_eos {
                let never = self.vocab.end_of_generation_ids().into_iter();
                req.sampling
                    .logit_bias
                    .extend(never.map(|id| (id, f32::NEG_INFINITY)));
            }
            self.stats.waiting.fetch_sub(1, Ordering::SeqCst);
            let Some(slot) = self.slots.take() else { break };
            let mut seq = Sequence::new(req, slot, self.config.ctx, tx);
            self.start_from_cache(&mut seq);
            // Held before the reset, so a panic there still reaches the request.
            self.running.push(seq);
            self.backend.reset_slot(slot);
        }
        // At once, not after the step: `Engine::submit` sizes the queue by the free slots.
        self.stats
            .running
            .store(self.running.len(), Ordering::SeqCst);
    }

    /// Takes the longest cached prefix of the sequence's prompt, in whole blocks. At least the last prompt
    /// token is computed (its logits give the first generated token). The reused part may end anywhere: a
    /// token's KV and logits have the same bits however the tokens before it were cut into steps (every
    /// kernel is batch-invariant), so what is left gives a cold run's output.
    fn start_from_cache(&mut self, seq: &mut Sequence) {
        let bs = self.blocks.block_size();
        let prompt = seq.prompt();
        let limit = prompt.len().saturating_sub(1);
        let mut found = self.blocks.lookup(seq.root(), &prompt[..limit]);
        let mut keep = found.len();
        let mut window = WindowTable::default();
        if let Some(w) = &mut self.windowed {
            // The longest of those prefixes whose window is still cached.
            loop {
                let found = &found[..keep];
                if let Some((first, blocks)) =
                    take_window(&mut w.blocks, w.window, seq.root(), prompt, found)
                {
                    window = WindowTable::starting_from(first, &blocks);
                    break;
                }
                keep -= 1;
            }
        }
        let extra: Vec<u32> = found.drain(keep..).map(|f| f.0).collect();
        self.blocks.release(&extra);
        seq.start_from_cache(&found, window, bs);
        // Then the tail of a sequence that went on from the same blocks, for every token of the common prefix
        // (not where the sliding-window layers keep their own blocks: theirs would need the same tail).
        if extra.is_empty() && self.windowed.is_none() {
            let (parent, rest) = seq.after_full_blocks(bs);
            if let Some((id, n)) = self.blocks.take_tail(parent, rest) {
                seq.continue_in_tail(id, n);
            }
        }
        if self.config.prompt_cache {
            let queried = seq.prompt().len() as u64;
            self.stats
                .prefix_queries
                .fetch_add(queried, Ordering::Relaxed);
            let hits = seq.cached_prompt() as u64;
            self.stats.prefix_hits.fetch_add(hits, Ordering::Relaxed);
        }
    }

    /// Gives back the blocks `seq` holds, in both pools.
    fn release_blocks(&mut self, seq: &Sequence) {
        self.blocks.release(&seq.blocks);
        if let Some(w) = &mut self.windowed {
            w.blocks.release(&seq.window_blocks.held());
        }
    }

    /// Gives back a sequence that finished, failed or was cancelled (its fed positions are all computed):
    /// its part-filled last block stays cached as a tail where the block manager keeps tails.
    fn release(&mut self, seq: &Sequence) {
        let bs = self.blocks.block_size();
        match seq.tail(bs).filter(|_| self.windowed.is_none()) {
            Some((id, parent, tokens)) => {
                self.blocks.release_tail(id, parent, tokens);
                self.blocks.release(&seq.blocks[..seq.blocks.len() - 1]);
            }
            None => self.release_blocks(seq),
        }
        self.backend.reset_slot(seq.slot);
        self.slots.release(seq.slot);
    }

    /// One forward pass over the running batch.
    fn step(&mut self) {
        let needs: Vec<Need> = self.running.iter().map(Sequence::need).collect();
        let counts = scheduler::plan(&needs, self.config.step_tokens, self.config.prefill_chunk);
        if !self.reserve_blocks(&counts) {
            return;
        }
        let wants: Vec<bool> = self
            .running
            .iter()
            .zip(&counts)
            .map(|(s, &n)| n > 0 && s.completes_with(n))
            .collect();
        let steps: Vec<Step<'_>> = self
            .running
            .iter()
            .zip(&counts)
            .zip(&wants)
            .filter(|((_, n), _)| **n > 0)
            .map(|((s, &n), &want_logits)| Step {
                slot: s.slot,
                blocks: &s.blocks,
                window_blocks: self
                    .windowed
                    .as_ref()
                    .map(|_| s.window_blocks.blocks.as_slice()),
                start: s.fed(),
                tokens: s.pending(n),
                want_logits,
            })
            .collect();
        self.in_step = steps.iter().map(|s| s.slot).collect();
        self.steps += 1;
        let result = self.backend.forward(&steps);
        if let Some(fault) = self.config.fault
            && fault.fires(self.steps)
        {
            // After the forward pass, so the step's caches hold tokens that recovery must clear.
            panic!("injected fault at step {} ({FAULT_ENV})", self.steps);
        }
        match result {
            Ok(outputs) => self.consume(&counts, &wants, outputs),
            Err(e) => self.fail_batch(&counts, &e.to_string()),
        }
        self.in_step.clear();
    }

    fn consume(&mut self, counts: &[usize], wants: &[bool], outputs: Vec<Vec<f32>>) {
        let mut outputs = outputs.into_iter();
        let mut finished = Vec::new();
        for (i, seq) in self.running.iter_mut().enumerate() {
            if counts[i] == 0 {
                continue;
            }
            let logits = outputs.next().unwrap_or_default();
            seq.advance(counts[i]);
            let mut window = self.windowed.as_mut();
            seq.register_full_blocks(&mut self.blocks, window.as_mut().map(|w| &mut w.blocks));
            if let Some(w) = window {
                let next = seq.fed();
                seq.window_blocks
                    .give_back_behind(next, w.window, &mut w.blocks);
            }
            if wants[i] && seq.on_logits(&logits, self.vocab.as_ref()).is_some() {
                finished.push(i);
            }
        }
        self.remove(&finished);
    }

    fn fail_batch(&mut self, counts: &[usize], message: &str) {
        tracing::error!("forward pass failed: {message}");
        let failed: Vec<usize> = (0..self.running.len()).filter(|&i| counts[i] > 0).collect();
        for &i in &failed {
            self.running[i].fail(format!("the model failed: {message}"));
        }
        self.remove(&failed);
    }

    /// Removes the sequences at `indices` (ascending) and frees their slots.
    fn remove(&mut self, indices: &[usize]) {
        for &i in indices.iter().rev() {
            let seq = self.running.remove(i);
            self.release(&seq);
        }
    }

    /// Gives each sequence of the step the blocks its new positions need. The pool holds `parallel` full
    /// contexts, so this fails only on a bookkeeping bug; the sequences it fails for are failed, and the step
    /// is skipped (false).
    fn reserve_blocks(&mut self, counts: &[usize]) -> bool {
        let mut failed = Vec::new();
        for (i, seq) in self.running.iter_mut().enumerate() {
            let upto = seq.fed() + counts[i];
            let window = self.windowed.as_mut().map(|w| &mut w.blocks);
            if counts[i] > 0 && !seq.reserve(upto, &mut self.blocks, window) {
                seq.fail("internal error: the KV cache has no free block".into());
                failed.push(i);
            }
        }
        self.remove(&failed);
        failed.is_empty()
    }

    fn publish_stats(&self) {
        self.stats
            .running
            .store(self.running.len(), Ordering::Relaxed);
        let kv_tokens = self.running.iter().map(Sequence::cached).sum();
        self.stats.kv_tokens.store(kv_tokens, Ordering::Relaxed);
        self.stats
            .kv_blocks_used
            .store(self.blocks.used(), Ordering::Relaxed);
        self.stats
            .kv_bytes
            .store(self.backend.kv_bytes(), Ordering::Relaxed);
    }
}
