//! A persistent thread pool made for decode's many tiny parallel loops.
//!
//! Decode runs a few hundred parallel loops per token, each only microseconds long (a 576×576 Q4 matvec is
//! ~190 KB of weights: ~10 µs on one core). What matters is the cost of a fork/join, so the design keeps it to
//! a handful of atomic operations:
//!
//! - workers live as long as the pool; the caller thread works too (`n_threads - 1` workers);
//! - a job is published through one atomic word (`epoch | OPEN | entered`); workers claim task indices with
//!   `fetch_add`, so uneven tasks balance themselves;
//! - idle workers spin on that word for a while (`CRIA_POOL_SPIN_US`, default 200 µs) before parking on a
//!   condvar, so back-to-back loops never pay a futex wake, and an idle process does not burn CPU; past 20 µs
//!   they yield the core now and then while spinning, so on an oversubscribed machine a spinning worker does
//!   not keep the caller that has the next job from running;
//! - the caller does not wait for late (parked) workers to show up: once all tasks are claimed it closes the
//!   job and waits only for the workers that entered it.
//!
//! The job (a closure borrowed from the caller's stack) is handed to workers as a raw pointer; the
//! `entered` count is what makes that sound: the caller returns only once no worker is inside.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release, SeqCst};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const OPEN: u64 = 1 << 31;
/// How long an idle worker spins without yielding: longer than the caller's serial work between two loops of
/// a decode token (a norm, RoPE, a KV store: a few µs).
const YIELD_AFTER: Duration = Duration::from_micros(20);
const ENTERED: u64 = OPEN - 1;

/// One parallel loop: `f(i)` for `i` in `0..n_tasks`, indices claimed one at a time.
struct Job<'a> {
    f: &'a (dyn Fn(usize) + Sync),
    n_tasks: usize,
    next: AtomicUsize,
    panicked: AtomicBool,
}

thread_local! {
    /// Set while this thread runs pool tasks: a nested `run` then executes inline instead of deadlocking.
    static IN_TASK: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Marks the current thread as inside a task until dropped (also on unwind).
struct InTask(bool);

impl InTask {
    fn enter() -> Self {
        Self(IN_TASK.replace(true))
    }
}

impl Drop for InTask {
    fn drop(&mut self) {
        IN_TASK.set(self.0);
    }
}

impl Job<'_> {
    fn work(&self) {
        let _in_task = InTask::enter();
        loop {
            let i = self.next.fetch_add(1, Relaxed);
            if i >= self.n_tasks {
                return;
            }
            (self.f)(i);
        }
    }
}

struct Shared {
    /// `epoch << 32 | OPEN | entered`: which job, whether workers may still enter it, how many are inside.
    state: AtomicU64,
    /// The open job; only dereferenced by a worker counted in `entered`.
    job: AtomicPtr<Job<'static>>,
    sleepers: AtomicUsize,
    lock: Mutex<()>,
    wake: Condvar,
    shutdown: AtomicBool,
    spin: Duration,
}

/// A fixed set of worker threads; [`ThreadPool::run`] forks a loop over them and joins it.
pub struct ThreadPool {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
    /// One job at a time (callers from several threads queue here).
    run_lock: Mutex<()>,
    /// Jobs handed to the workers so far (loops run inline not counted): what a decode step's syncs cost.
    forks: AtomicU64,
}

impl ThreadPool {
    /// A pool of `n_threads` threads in all: the caller of [`run`](Self::run) plus `n_threads - 1` workers
    /// (0 is taken as 1). If the OS refuses a thread, the pool runs with the ones it got.
    pub fn new(n_threads: usize) -> Self {
        Self::with_spin(n_threads, spin_from_env())
    }

    /// [`new`](Self::new) with an explicit spin time: how long an idle worker polls for the next job before
    /// it parks (the default is `CRIA_POOL_SPIN_US` µs, else 200 µs).
    pub fn with_spin(n_threads: usize, spin: Duration) -> Self {
        let shared = Arc::new(Shared {
            state: AtomicU64::new(0),
            job: AtomicPtr::new(std::ptr::null_mut()),
            sleepers: AtomicUsize::new(0),
            lock: Mutex::new(()),
            wake: Condvar::new(),
            shutdown: AtomicBool::new(false),
            spin,
        });
        let workers = (1..n_threads.max(1))
            .map_while(|i| {
                let s = Arc::clone(&shared);
                std::thread::Builder::new()
                    .name(format!("cria-pool-{i}"))
                    .spawn(move || worker_loop(&s))
                    .ok()
            })
            .collect();
        Self {
            shared,
            workers,
            run_lock: Mutex::new(()),
            forks: AtomicU64::new(0),
        }
    }

    /// A pool with one thread per available core.
    pub fn with_available_parallelism() -> Self {
        Self::new(std::thread::available_parallelism().map_or(1, |n| n.get()))
    }

    /// Threads that work on each [`run`](Self::run), the caller included.
    pub fn n_threads(&self) -> usize {
        self.workers.len() + 1
    }

    /// How many loops this pool has forked to its workers (each one a publish and a join), since it was made.
    pub fn forks(&self) -> u64 {
        self.forks.load(Relaxed)
    }

    /// Runs `f(task)` for every `task` in `0..n_tasks` across the pool (the caller thread works too) and
    /// returns when all are done. Tasks run in no fixed order or thread.
    ///
    /// Nested calls (a task calling `run` on any pool) run their tasks inline on the calling thread.
    ///
    /// # Panics
    /// If a task panics (after every other claimed task has finished).
    pub fn run(&self, n_tasks: usize, f: &(dyn Fn(usize) + Sync)) {
        if n_tasks <= 1 || self.workers.is_empty() || IN_TASK.get() {
            (0..n_tasks).for_each(f);
            return;
        }
        let _one_at_a_time = lock(&self.run_lock);
        self.forks.fetch_add(1, Relaxed);
        let job = Job {
            f,
            n_tasks,
            next: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
        };
        self.open(&job);
        let close = CloseOnDrop(&self.shared);
        job.work();
        drop(close);
        if job.panicked.load(Relaxed) {
            panic!("a thread-pool task panicked");
        }
    }

    /// Splits `0..n_items` into ranges of `chunk` items (the last shorter) and runs `f` on each across the pool.
    pub fn for_each_range(
        &self,
        n_items: usize,
        chunk: usize,
        f: &(dyn Fn(std::ops::Range<usize>) + Sync),
    ) {
        let chunk = chunk.max(1);
        self.run(n_items.div_ceil(chunk), &|t| {
            f(t * chunk..((t + 1) * chunk).min(n_items))
        });
    }

    /// Splits `data` into chunks of `chunk` elements (the last shorter) and runs `f(chunk_index, chunk)` on
    /// each across the pool: parallel writes to disjoint parts of one buffer, without `unsafe` at the call site.
    pub fn for_each_chunk_mut<T: Send>(
        &self,
        data: &mut [T],
        chunk: usize,
        f: &(dyn Fn(usize, &mut [T]) + Sync),
    ) {
        let chunk = chunk.max(1);
        let n = data.len();
        let out = SharedMut::new(data);
        self.run(n.div_ceil(chunk), &|t| {
            let r = t * chunk..((t + 1) * chunk).min(n);
            // SAFETY: task `t` runs once and its range is disjoint from every other task's.
            f(t, unsafe { out.range(r) })
        });
    }

    /// Runs `f(items, part)` for each task `t`: `items` is `bounds[t]..bounds[t + 1]` and `part` the
    /// elements `items × per_item` of `data` (task-major). With [`guided_bounds`] this balances uneven threads
    /// to within one small task.
    ///
    /// # Panics
    /// If `bounds` does not rise or its last item's elements run past `data`.
    pub fn for_each_split_mut<T: Send>(
        &self,
        data: &mut [T],
        bounds: &[usize],
        per_item: usize,
        f: &(dyn Fn(std::ops::Range<usize>, &mut [T]) + Sync),
    ) {
        assert!(
            bounds.windows(2).all(|w| w[0] <= w[1]),
            "for_each_split_mut: bounds must rise"
        );
        let out = SharedMut::new(data);
        self.run(bounds.len().saturating_sub(1), &|t| {
            let items = bounds[t]..bounds[t + 1];
            // SAFETY: task `t` runs once and the ranges of rising bounds are disjoint.
            let part = unsafe { out.range(items.start * per_item..items.end * per_item) };
            f(items, part)
        });
    }

    fn open(&self, job: &Job<'_>) {
        let s = &self.shared;
        // Lifetime erased: workers only touch the job while counted in `entered`, and the caller does not
        // return (nor unwind past `job`) before `entered` is back to 0 (see `CloseOnDrop`).
        let ptr: *mut Job<'static> = (job as *const Job<'_>).cast_mut().cast();
        s.job.store(ptr, Relaxed);
        let epoch = ((s.state.load(Relaxed) >> 32) + 1) & 0xffff_ffff;
        s.state.store(epoch << 32 | OPEN, SeqCst);
        if s.sleepers.load(SeqCst) > 0 {
            let _g = lock(&s.lock);
            s.wake.notify_all();
        }
    }
}

/// Task boundaries for `n` items on `threads` threads, shrinking as they go ("guided" scheduling): each task
/// takes `1 / (2 · threads)` of what is left, rounded up to a multiple of `align` (at least `align`). The
/// first tasks are large (few claims of the shared counter), the last small, so threads that run at
/// different speeds still finish within one small task of each other. Writes `0, …, n` into `bounds`.
pub fn guided_bounds(n: usize, threads: usize, align: usize, bounds: &mut Vec<usize>) {
    let align = align.max(1);
    bounds.clear();
    bounds.push(0);
    let mut start = 0;
    while start < n {
        let left = n - start;
        let size = if threads <= 1 {
            left
        } else {
            left.div_ceil(2 * threads).next_multiple_of(align).min(left)
        };
        start += size;
        bounds.push(start);
    }
}

/// A mutable slice that parallel tasks write through, each to its own disjoint range.
pub(crate) struct SharedMut<'a, T> {
    ptr: *mut T,
    len: usize,
    _borrow: std::marker::PhantomData<&'a mut [T]>,
}

// SAFETY: it only hands out `&mut` to disjoint ranges (the caller of `range` promises it), like `chunks_mut`
// spread across threads; `T: Send` lets elements be written from another thread.
unsafe impl<T: Send> Sync for SharedMut<'_, T> {}

impl<'a, T> SharedMut<'a, T> {
    pub(crate) fn new(s: &'a mut [T]) -> Self {
        Self {
            ptr: s.as_mut_ptr(),
            len: s.len(),
            _borrow: std::marker::PhantomData,
        }
    }

    /// The elements in `r`.
    ///
    /// # Safety
    /// No two live results may overlap (each range is handed to one task only).
    ///
    /// # Panics
    /// If `r` is out of bounds.
    #[allow(clippy::mut_from_ref)] // Disjointness is the caller's documented obligation.
    pub(crate) unsafe fn range(&self, r: std::ops::Range<usize>) -> &mut [T] {
        assert!(
            r.start <= r.end && r.end <= self.len,
            "SharedMut: {r:?} out of 0..{}",
            self.len
        );
        // SAFETY: in bounds (checked), the borrow `'a` is held exclusively by `self`, and the caller
        // guarantees no other live `&mut` covers these elements.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(r.start), r.len()) }
    }
}

/// Closes the open job and waits for the workers inside it, also when the caller's own task unwinds.
struct CloseOnDrop<'a>(&'a Shared);

impl Drop for CloseOnDrop<'_> {
    fn drop(&mut self) {
        let state = &self.0.state;
        state.fetch_and(!OPEN, AcqRel);
        let mut spins = 0u32;
        while state.load(Acquire) & ENTERED != 0 {
            backoff(&mut spins);
        }
        self.0.job.store(std::ptr::null_mut(), Relaxed);
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, SeqCst);
        {
            let _g = lock(&self.shared.lock);
            self.shared.wake.notify_all();
        }
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

impl std::fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreadPool")
            .field("n_threads", &self.n_threads())
            .finish()
    }
}

fn worker_loop(s: &Shared) {
    let mut seen = 0u64;
    while let Some(st) = wait_for_job(s, seen) {
        if s.state
            .compare_exchange_weak(st, st + 1, Acquire, Relaxed)
            .is_err()
        {
            continue;
        }
        seen = st >> 32;
        // SAFETY: we are counted in `entered` of the open job, so its owner (`ThreadPool::run`) keeps it alive
        // until we decrement the count below.
        let job = unsafe { &*s.job.load(Relaxed) };
        if catch_unwind(AssertUnwindSafe(|| job.work())).is_err() {
            job.panicked.store(true, Relaxed);
            job.next.store(job.n_tasks, Relaxed);
        }
        s.state.fetch_sub(1, Release);
    }
}

/// Waits until a job other than epoch `seen` is open (its state word), or `None` at shutdown.
fn wait_for_job(s: &Shared, seen: u64) -> Option<u64> {
    let ready = |st: u64| st & OPEN != 0 && st >> 32 != seen;
    let start = Instant::now();
    let mut spins = 0u32;
    loop {
        let st = s.state.load(Acquire);
        if ready(st) {
            return Some(st);
        }
        if s.shutdown.load(Relaxed) {
            return None;
        }
        spins = spins.wrapping_add(1);
        if spins.is_multiple_of(64) {
            let idle = start.elapsed();
            if idle >= s.spin {
                break;
            }
            // Past the gaps between the loops of a token, give the core away now and then: on a machine with
            // more runnable threads than cores the thread that will publish the next job may be waiting for it.
            if idle >= YIELD_AFTER {
                std::thread::yield_now();
            }
        }
        std::hint::spin_loop();
    }
    let mut g = lock(&s.lock);
    s.sleepers.fetch_add(1, SeqCst);
    let found = loop {
        let st = s.state.load(SeqCst);
        if ready(st) {
            break Some(st);
        }
        if s.shutdown.load(SeqCst) {
            break None;
        }
        g = s.wake.wait(g).unwrap_or_else(|e| e.into_inner());
    };
    s.sleepers.fetch_sub(1, SeqCst);
    found
}

fn backoff(spins: &mut u32) {
    *spins += 1;
    if *spins < 1 << 12 {
        std::hint::spin_loop();
    } else {
        std::thread::yield_now();
    }
}

fn lock(m: &Mutex<()>) -> MutexGuard<'_, ()> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn spin_from_env() -> Duration {
    let us = std::env::var("CRIA_POOL_SPIN_US")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    Duration::from_micros(us)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    #[test]
    fn guided_bounds_shrink_cover_and_align() {
        let mut b = Vec::new();
        guided_bounds(576, 2, 16, &mut b);
        assert_eq!(b.first(), Some(&0));
        assert_eq!(b.last(), Some(&576));
        assert!(b.windows(2).all(|w| w[1] > w[0]));
        // every task but the last is whole 16-row units, and sizes never grow
        let sizes: Vec<usize> = b.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(sizes[..sizes.len() - 1].iter().all(|s| s % 16 == 0));
        assert!(sizes.windows(2).all(|w| w[1] <= w[0]), "{sizes:?}");
        assert_eq!(sizes[0], 144);
        guided_bounds(10, 4, 16, &mut b);
        assert_eq!(b, [0, 10]);
        guided_bounds(0, 2, 16, &mut b);
        assert_eq!(b, [0]);
        guided_bounds(100, 1, 16, &mut b);
        assert_eq!(b, [0, 100]);
    }

    #[test]
    fn split_tasks_get_their_own_items() {
        let pool = ThreadPool::new(3);
        let mut bounds = Vec::new();
        guided_bounds(1000, 3, 16, &mut bounds);
        let mut data = vec![0usize; 2000];
        pool.for_each_split_mut(&mut data, &bounds, 2, &|items, part| {
            assert_eq!(part.len(), 2 * items.len());
            for (k, v) in part.iter_mut().enumerate() {
                *v = items.start * 2 + k;
            }
        });
        assert!(data.iter().enumerate().all(|(i, &v)| v == i));
    }

    #[test]
    fn every_task_runs_exactly_once() {
        for threads in [1, 2, 3, 8] {
            let pool = ThreadPool::new(threads);
            assert_eq!(pool.n_threads(), threads);
            for n in [0, 1, 2, 7, 100, 1000] {
                let hits: Vec<AtomicU32> = (0..n).map(|_| AtomicU32::new(0)).collect();
                pool.run(n, &|i| {
                    hits[i].fetch_add(1, Relaxed);
                });
                assert!(
                    hits.iter().all(|h| h.load(Relaxed) == 1),
                    "threads {threads} n {n}"
                );
            }
        }
    }

    #[test]
    fn many_tiny_jobs_back_to_back_and_after_parking() {
        let pool = ThreadPool::new(4);
        let sum = AtomicUsize::new(0);
        for round in 0..20_000 {
            pool.run(5, &|i| {
                sum.fetch_add(i, Relaxed);
            });
            if round == 10_000 {
                // Long enough for the workers to park; the next jobs must wake them (or run without them).
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        assert_eq!(sum.load(Relaxed), 20_000 * 10);
    }

    #[test]
    fn forks_counts_the_loops_handed_to_workers() {
        let pool = ThreadPool::new(2);
        pool.run(1, &|_| {});
        pool.run(0, &|_| {});
        assert_eq!(pool.forks(), 0, "one task or none runs inline");
        for _ in 0..3 {
            pool.run(4, &|_| {});
        }
        assert_eq!(pool.forks(), 3);
        assert_eq!(ThreadPool::new(1).forks(), 0);
    }

    #[test]
    fn results_written_by_workers_are_visible_after_run() {
        let pool = ThreadPool::new(3);
        let out: Vec<AtomicUsize> = (0..64).map(|_| AtomicUsize::new(0)).collect();
        pool.for_each_range(64, 5, &|r| {
            for i in r {
                out[i].store(i * i, Relaxed);
            }
        });
        assert!(
            out.iter()
                .enumerate()
                .all(|(i, v)| v.load(Relaxed) == i * i)
        );
    }

    #[test]
    fn a_task_may_use_the_pool_again() {
        let pool = ThreadPool::new(3);
        let n = AtomicUsize::new(0);
        pool.run(8, &|_| {
            pool.run(4, &|_| {
                n.fetch_add(1, Relaxed);
            });
        });
        assert_eq!(n.load(Relaxed), 32);
    }

    #[test]
    fn chunks_mut_cover_the_slice_once() {
        let pool = ThreadPool::new(3);
        let mut v = vec![0usize; 103];
        pool.for_each_chunk_mut(&mut v, 10, &|t, c| {
            for (j, x) in c.iter_mut().enumerate() {
                *x += t * 10 + j + 1;
            }
        });
        assert!(v.iter().enumerate().all(|(i, &x)| x == i + 1));
    }

    #[test]
    fn a_panicking_task_propagates_and_the_pool_survives() {
        let pool = ThreadPool::new(3);
        let r = catch_unwind(AssertUnwindSafe(|| {
            pool.run(50, &|i| {
                if i == 17 {
                    panic!("task 17");
                }
            })
        }));
        assert!(r.is_err());
        let n = AtomicUsize::new(0);
        pool.run(50, &|_| {
            n.fetch_add(1, Relaxed);
        });
        assert_eq!(n.load(Relaxed), 50);
    }

    #[test]
    fn callers_on_several_threads_share_one_pool() {
        let pool = ThreadPool::new(2);
        let total = AtomicUsize::new(0);
        std::thread::scope(|sc| {
            for _ in 0..3 {
                sc.spawn(|| {
                    for _ in 0..500 {
                        pool.run(4, &|_| {
                            total.fetch_add(1, Relaxed);
                        });
                    }
                });
            }
        });
        assert_eq!(total.load(Relaxed), 3 * 500 * 4);
    }
}
