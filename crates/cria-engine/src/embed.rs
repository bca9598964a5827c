//! Embeddings: a worker thread of its own beside the generation engine, so an embedding request never runs on
//! the server's async runtime nor waits for a generation slot. It owns an [`EmbedBackend`] (a decoder model
//! with its own runner and KV cache, or an encoder) and answers one job, a list of token sequences, at a time.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use crate::fault::panic_message;
use crate::{EngineError, SubmitError};

/// A model that turns token ids into one embedding each.
pub trait EmbedBackend {
    /// Values per embedding.
    fn n_embd(&self) -> usize;
    /// The embedding of `ids` (not empty): the model's last hidden states pooled, scaled to unit length.
    fn embed(&mut self, ids: &[u32]) -> Result<Vec<f32>, EngineError>;
}

/// What a job's receiver gets: one vector per input, in order, or why it failed.
pub type EmbedResult = Result<Vec<Vec<f32>>, String>;

struct Job {
    inputs: Vec<Vec<u32>>,
    reply: oneshot::Sender<EmbedResult>,
}

/// How the embedding worker is sized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmbedderConfig {
    /// Most tokens in one input (the context the backend was made for).
    pub max_tokens: usize,
    /// Jobs that may wait before new ones are refused with [`SubmitError::QueueFull`].
    pub max_queue: usize,
}

/// A running embedding worker. Dropping the receiver of a job cancels what is left of it.
pub struct Embedder {
    tx: Mutex<Sender<Job>>,
    config: EmbedderConfig,
    n_embd: usize,
    queued: Arc<AtomicUsize>,
    accepting: AtomicBool,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Embedder {
    /// Starts the worker thread; `make_backend` runs on it.
    pub fn start<B, F>(config: EmbedderConfig, make_backend: F) -> Result<Embedder, EngineError>
    where
        B: EmbedBackend + 'static,
        F: FnOnce() -> Result<B, EngineError> + Send + 'static,
    {
        let (tx, rx) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = mpsc::channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let worker_queued = Arc::clone(&queued);
        let thread = std::thread::Builder::new()
            .name("cria-embed".into())
            .spawn(move || match make_backend() {
                Ok(backend) => {
                    let _ = ready_tx.send(Ok(backend.n_embd()));
                    work(backend, &rx, &worker_queued);
                }
                Err(e) => drop(ready_tx.send(Err(e))),
            })?;
        let n_embd = match ready_rx.recv() {
            Ok(result) => result?,
            Err(_) => {
                return Err(EngineError::Backend(
                    "the embedding thread died while starting".into(),
                ));
            }
        };
        Ok(Embedder {
            tx: Mutex::new(tx),
            config,
            n_embd,
            queued,
            accepting: AtomicBool::new(true),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Values per embedding.
    pub fn n_embd(&self) -> usize {
        self.n_embd
    }

    pub fn config(&self) -> &EmbedderConfig {
        &self.config
    }

    /// What [`submit`](Self::submit) would refuse about the inputs themselves: an empty input, or one over
    /// `max_tokens`.
    pub fn check(&self, inputs: &[Vec<u32>]) -> Result<(), SubmitError> {
        if let Some(reason) = self.failure() {
            return Err(SubmitError::EngineFailed(reason));
        }
        if !self.accepting.load(Ordering::SeqCst) {
            return Err(SubmitError::ShuttingDown);
        }
        if inputs.is_empty() || inputs.iter().any(Vec::is_empty) {
            return Err(SubmitError::EmptyPrompt);
        }
        let ctx = self.config.max_tokens;
        match inputs.iter().map(Vec::len).max() {
            Some(prompt) if prompt > ctx => Err(SubmitError::PromptTooLong { prompt, ctx }),
            _ => Ok(()),
        }
    }

    /// Queues the embedding of each input; the vectors arrive on the returned receiver.
    pub fn submit(
        &self,
        inputs: Vec<Vec<u32>>,
    ) -> Result<oneshot::Receiver<EmbedResult>, SubmitError> {
        self.check(&inputs)?;
        if self.queued.fetch_add(1, Ordering::SeqCst) >= self.config.max_queue.max(1) {
            self.queued.fetch_sub(1, Ordering::SeqCst);
            return Err(SubmitError::QueueFull {
                limit: self.config.max_queue,
            });
        }
        let (reply, rx) = oneshot::channel();
        let sent = self
            .tx
            .lock()
            .map_err(|_| SubmitError::ShuttingDown)?
            .send(Job { inputs, reply });
        if sent.is_err() {
            self.queued.fetch_sub(1, Ordering::SeqCst);
            return Err(SubmitError::ShuttingDown);
        }
        Ok(rx)
    }

    /// Why the worker can no longer serve: its thread ended while it was still accepting.
    pub fn failure(&self) -> Option<String> {
        let ended = self
            .thread
            .lock()
            .map_or(true, |t| t.as_ref().is_none_or(JoinHandle::is_finished));
        (ended && self.accepting.load(Ordering::SeqCst))
            .then(|| "the embedding thread stopped unexpectedly".to_string())
    }

    /// Stops accepting jobs; the worker finishes the queued ones and exits.
    pub fn shutdown(&self) {
        self.accepting.store(false, Ordering::SeqCst);
        if let Ok(mut tx) = self.tx.lock() {
            // Replacing the sender with a dead one closes the channel: the worker drains it and ends.
            *tx = mpsc::channel().0;
        }
    }
}

impl Drop for Embedder {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The worker's loop: one job at a time until the channel closes. A panic fails only its own job.
fn work<B: EmbedBackend>(mut backend: B, rx: &Receiver<Job>, queued: &AtomicUsize) {
    while let Ok(job) = rx.recv() {
        queued.fetch_sub(1, Ordering::SeqCst);
        if job.reply.is_closed() {
            continue;
        }
        let result = catch_unwind(AssertUnwindSafe(|| run_job(&mut backend, &job))).unwrap_or_else(
            |payload| {
                Err(format!(
                    "internal error: the embedding failed ({})",
                    panic_message(payload.as_ref())
                ))
            },
        );
        let _ = job.reply.send(result);
    }
}

fn run_job<B: EmbedBackend>(backend: &mut B, job: &Job) -> EmbedResult {
    let mut out = Vec::with_capacity(job.inputs.len());
    for ids in &job.inputs {
        if job.reply.is_closed() {
            return Err("cancelled".into());
        }
        out.push(backend.embed(ids).map_err(|e| e.to_string())?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc::SyncSender;
    use std::time::Duration;

    use super::*;

    /// Each input's vector is `[len, first id]`; id 99 panics; id 98 blocks until told to go on.
    struct Fake {
        gate: Option<Receiver<()>>,
        started: Option<SyncSender<()>>,
    }

    impl EmbedBackend for Fake {
        fn n_embd(&self) -> usize {
            2
        }

        fn embed(&mut self, ids: &[u32]) -> Result<Vec<f32>, EngineError> {
            match ids[0] {
                99 => panic!("boom"),
                98 => {
                    if let Some(s) = &self.started {
                        let _ = s.send(());
                    }
                    if let Some(g) = &self.gate {
                        let _ = g.recv();
                    }
                }
                _ => {}
            }
            Ok(vec![ids.len() as f32, ids[0] as f32])
        }
    }

    fn start(max_queue: usize) -> (Embedder, mpsc::Sender<()>, Receiver<()>) {
        let (go, gate) = mpsc::channel();
        let (started_tx, started) = mpsc::sync_channel(8);
        let config = EmbedderConfig {
            max_tokens: 4,
            max_queue,
        };
        let embedder = Embedder::start(config, move || {
            Ok(Fake {
                gate: Some(gate),
                started: Some(started_tx),
            })
        });
        (embedder.expect("starts"), go, started)
    }

    #[test]
    fn vectors_come_back_in_input_order() {
        let (e, _go, _started) = start(4);
        assert_eq!(e.n_embd(), 2);
        let rx = e.submit(vec![vec![5, 1], vec![7], vec![1, 2, 3, 4]]);
        let got = rx.expect("queued").blocking_recv().expect("answered");
        assert_eq!(
            got,
            Ok(vec![vec![2.0, 5.0], vec![1.0, 7.0], vec![4.0, 1.0]])
        );
    }

    #[test]
    fn empty_and_too_long_inputs_are_refused_before_queueing() {
        let (e, _go, _started) = start(4);
        assert_eq!(e.submit(vec![]).err(), Some(SubmitError::EmptyPrompt));
        assert_eq!(
            e.submit(vec![vec![1], vec![]]).err(),
            Some(SubmitError::EmptyPrompt)
        );
        assert_eq!(
            e.submit(vec![vec![1; 5]]).err(),
            Some(SubmitError::PromptTooLong { prompt: 5, ctx: 4 })
        );
    }

    #[test]
    fn a_panicking_job_fails_alone_and_the_worker_goes_on() {
        let (e, _go, _started) = start(4);
        let failed = e.submit(vec![vec![99]]).expect("queued").blocking_recv();
        assert!(matches!(failed, Ok(Err(m)) if m.contains("boom")));
        let next = e.submit(vec![vec![3]]).expect("queued").blocking_recv();
        assert_eq!(next, Ok(Ok(vec![vec![1.0, 3.0]])));
        assert_eq!(e.failure(), None);
    }

    #[test]
    fn a_full_queue_refuses_and_a_dropped_job_is_skipped() {
        let (e, go, started) = start(1);
        let busy = e.submit(vec![vec![98]]).expect("queued");
        started
            .recv_timeout(Duration::from_secs(10))
            .expect("the worker took the job");
        let waiting = e.submit(vec![vec![1]]).expect("one may wait");
        assert_eq!(
            e.submit(vec![vec![2]]).err(),
            Some(SubmitError::QueueFull { limit: 1 })
        );
        drop(waiting);
        go.send(()).expect("worker alive");
        assert_eq!(busy.blocking_recv(), Ok(Ok(vec![vec![1.0, 98.0]])));
        // The worker skips the dropped job a moment after it answers `busy`: until then the queue is still full.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let after = loop {
            match e.submit(vec![vec![4]]) {
                Ok(rx) => break rx,
                Err(SubmitError::QueueFull { .. }) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(other) => panic!("not queued: {other:?}"),
            }
        };
        assert_eq!(after.blocking_recv(), Ok(Ok(vec![vec![1.0, 4.0]])));
    }

    #[test]
    fn shutdown_refuses_new_jobs_without_reporting_a_failure() {
        let (e, _go, _started) = start(4);
        e.shutdown();
        assert_eq!(
            e.submit(vec![vec![1]]).err(),
            Some(SubmitError::ShuttingDown)
        );
        assert_eq!(e.failure(), None);
    }
}
