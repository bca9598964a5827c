//! Issue 18: a panic on a pool thread (a worker, not the caller) reaches the caller of `run` as a panic, and
//! the pool neither deadlocks nor loses a worker: the engine catches that panic and goes on using the pool.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use cria_kernels::pool::ThreadPool;

fn on_worker() -> bool {
    std::thread::current()
        .name()
        .is_some_and(|n| n.starts_with("cria-pool-"))
}

#[test]
fn a_panic_on_a_worker_thread_reaches_the_caller_and_the_pool_goes_on() {
    let pool = ThreadPool::with_spin(3, Duration::from_micros(50));
    let start = Instant::now();
    let mut caught = 0;
    for round in 0..200 {
        let worker_ran = AtomicUsize::new(0);
        let result = catch_unwind(AssertUnwindSafe(|| {
            pool.run(64, &|_| {
                if on_worker() {
                    worker_ran.fetch_add(1, Relaxed);
                    panic!("a worker's task failed");
                }
                // Slow enough that the workers take some tasks.
                std::thread::sleep(Duration::from_micros(200));
            })
        }));
        if worker_ran.load(Relaxed) > 0 {
            assert!(
                result.is_err(),
                "round {round}: a worker panicked but run returned"
            );
            caught += 1;
        }
        // The pool still runs every task of the next job, on all its threads.
        let done = AtomicUsize::new(0);
        pool.run(100, &|_| {
            done.fetch_add(1, Relaxed);
        });
        assert_eq!(done.load(Relaxed), 100, "round {round}");
        if round == 100 {
            // Long enough for the workers to park: a panic after a wake-up must not deadlock either.
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    assert!(caught > 0, "no worker ever took a task");
    assert!(
        start.elapsed() < Duration::from_secs(60),
        "took {:?}",
        start.elapsed()
    );
}
