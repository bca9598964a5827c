//! The machine's read bandwidth, measured in-process: the roofline of decode.
//!
//! Decode reads every weight once per token, so its ceiling is `bandwidth / weight bytes per token`.
//! [`read_bandwidth`] sums a buffer much larger than the caches across the pool's threads (each thread its own
//! contiguous share, eight independent accumulators so the adds never limit) and keeps the best of several
//! passes: on a shared machine noise only ever slows a pass down.

use std::hint::black_box;
use std::time::Instant;

use crate::pool::ThreadPool;

/// Default buffer size: 1 GiB, well past any last-level cache.
pub const DEFAULT_BYTES: usize = 1 << 30;

/// One measurement: how many bytes each pass read and the fastest pass.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bandwidth {
    pub bytes: usize,
    pub best_seconds: f64,
    pub threads: usize,
}

impl Bandwidth {
    /// Gigabytes (10⁹ bytes) per second of the fastest pass.
    pub fn gb_per_s(&self) -> f64 {
        if self.best_seconds > 0.0 {
            self.bytes as f64 / self.best_seconds / 1e9
        } else {
            0.0
        }
    }
}

/// Reads a buffer of about `bytes` bytes (rounded down to whole 64-byte lines, at least one) `passes` times
/// (at least once) across `pool`, after one untimed pass that faults the pages in, and returns the fastest.
pub fn read_bandwidth(pool: &ThreadPool, bytes: usize, passes: usize) -> Bandwidth {
    let words = (bytes / 64).max(1) * 8;
    let buf = filled(pool, words);
    let threads = pool.n_threads();
    // A few tasks per thread, whole cache lines each, so a late thread still gets work.
    let chunk = words.div_ceil(threads * 4).next_multiple_of(8);
    let pass = || {
        pool.for_each_range(words, chunk, &|r| {
            black_box(sum_words(&buf[r]));
        })
    };
    pass();
    let best_seconds = (0..passes.max(1))
        .map(|_| {
            let t = Instant::now();
            pass();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min);
    Bandwidth {
        bytes: words * 8,
        best_seconds,
        threads,
    }
}

/// A buffer of `words` distinct values, written in parallel (first touch from the threads that read it).
fn filled(pool: &ThreadPool, words: usize) -> Vec<u64> {
    let mut buf = vec![0u64; words];
    let chunk = words.div_ceil(pool.n_threads() * 4).max(1);
    pool.for_each_chunk_mut(&mut buf, chunk, &|t, part| {
        let base = (t * chunk) as u64;
        for (i, w) in part.iter_mut().enumerate() {
            *w = base + i as u64;
        }
    });
    buf
}

/// Wrapping sum of `words` with eight independent lanes (vectorizes; no loop-carried dependency chain).
fn sum_words(words: &[u64]) -> u64 {
    let mut acc = [0u64; 8];
    let mut lines = words.chunks_exact(8);
    for line in &mut lines {
        for (a, &w) in acc.iter_mut().zip(line) {
            *a = a.wrapping_add(w);
        }
    }
    let tail = lines
        .remainder()
        .iter()
        .fold(0u64, |s, &w| s.wrapping_add(w));
    acc.iter().fold(tail, |s, &a| s.wrapping_add(a))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sum_words_matches_a_plain_sum_with_a_tail() {
        let v: Vec<u64> = (0..1003).map(|i| i * 7 + 3).collect();
        let plain = v.iter().fold(0u64, |s, &w| s.wrapping_add(w));
        assert_eq!(sum_words(&v), plain);
        assert_eq!(sum_words(&[]), 0);
        assert_eq!(sum_words(&[u64::MAX, 2]), 1);
    }

    #[test]
    fn filled_buffer_holds_its_index_everywhere() {
        let pool = ThreadPool::new(3);
        let buf = filled(&pool, 1000);
        assert!(buf.iter().enumerate().all(|(i, &w)| w == i as u64));
    }

    #[test]
    fn measurement_reports_whole_lines_and_a_positive_rate() {
        let pool = ThreadPool::new(2);
        let bw = read_bandwidth(&pool, 4 << 20 | 5, 2);
        assert_eq!(bw.bytes, 4 << 20);
        assert_eq!(bw.threads, 2);
        assert!(bw.best_seconds > 0.0 && bw.best_seconds.is_finite());
        // Any machine reads memory faster than 10 MB/s and slower than 10 TB/s.
        assert!(
            (0.01..10_000.0).contains(&bw.gb_per_s()),
            "{}",
            bw.gb_per_s()
        );
    }

    #[test]
    fn tiny_requests_still_read_one_line() {
        let pool = ThreadPool::new(1);
        let bw = read_bandwidth(&pool, 0, 0);
        assert_eq!(bw.bytes, 64);
        assert!(bw.best_seconds.is_finite());
    }

    #[test]
    fn zero_time_gives_zero_rate_not_infinity() {
        let bw = Bandwidth {
            bytes: 10,
            best_seconds: 0.0,
            threads: 1,
        };
        assert_eq!(bw.gb_per_s(), 0.0);
    }
}
