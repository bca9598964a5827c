//! The machine's read bandwidth, measured in-process: the roofline of decode.
//!
//! Decode reads every weight once per token, so its ceiling is `bandwidth / weight bytes per token`.
//! [`read_bandwidth`] sums a buffer much larger than the caches across the pool's threads (each thread its own
//! contiguous share, independent accumulators so the adds never limit) in three ways — plain loads, loads
//! with a software prefetch ahead, and non-temporal streaming loads — and keeps the best pass of any of them:
//! on a shared machine noise only ever slows a pass down, and a kernel that prefetches cleverly must not be
//! able to pass "100% of the roofline" because the plain loop happened to be the slow one.

use std::hint::black_box;
use std::time::Instant;

use crate::pool::ThreadPool;

/// Default buffer size: 1 GiB, well past any last-level cache.
pub const DEFAULT_BYTES: usize = 1 << 30;

/// How a pass reads the buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadMethod {
    /// Plain loads; the hardware prefetchers alone.
    Plain,
    /// Plain loads plus a software prefetch [`PREFETCH_AHEAD`] bytes ahead (x86-64 with AVX2; plain elsewhere).
    Prefetch,
    /// Non-temporal prefetch and streaming loads (`prefetchnta` + `vmovntdqa`; plain where unavailable).
    Streaming,
}

impl ReadMethod {
    /// Every method, in the order the passes interleave them.
    pub const ALL: [ReadMethod; 3] = [
        ReadMethod::Plain,
        ReadMethod::Prefetch,
        ReadMethod::Streaming,
    ];

    /// A short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            ReadMethod::Plain => "plain",
            ReadMethod::Prefetch => "prefetch",
            ReadMethod::Streaming => "streaming",
        }
    }
}

/// How far ahead of the current line the software prefetches reach.
pub const PREFETCH_AHEAD: usize = 1024;

/// One measurement: how many bytes each pass read, the fastest pass and how it read.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bandwidth {
    pub bytes: usize,
    pub best_seconds: f64,
    pub threads: usize,
    /// The method of the fastest pass.
    pub method: ReadMethod,
    /// The fastest pass of each method, in [`ReadMethod::ALL`]'s order.
    pub seconds_by_method: [f64; 3],
}

impl Bandwidth {
    /// Gigabytes (10⁹ bytes) per second of the fastest pass.
    pub fn gb_per_s(&self) -> f64 {
        rate(self.bytes, self.best_seconds)
    }

    /// Gigabytes per second of the fastest pass of one method.
    pub fn gb_per_s_of(&self, method: ReadMethod) -> f64 {
        let i = ReadMethod::ALL.iter().position(|&m| m == method);
        i.map_or(0.0, |i| rate(self.bytes, self.seconds_by_method[i]))
    }
}

fn rate(bytes: usize, seconds: f64) -> f64 {
    if seconds > 0.0 && seconds.is_finite() {
        bytes as f64 / seconds / 1e9
    } else {
        0.0
    }
}

/// Reads a buffer of about `bytes` bytes (rounded down to whole 64-byte lines, at least one) `passes` times
/// (at least once) with each [`ReadMethod`] across `pool`, methods interleaved, after one untimed pass that
/// faults the pages in, and returns the fastest pass.
pub fn read_bandwidth(pool: &ThreadPool, bytes: usize, passes: usize) -> Bandwidth {
    let words = (bytes / 64).max(1) * 8;
    let buf = filled(pool, words);
    let threads = pool.n_threads();
    // A few tasks per thread, whole cache lines each, so a late thread still gets work.
    let chunk = words.div_ceil(threads * 4).next_multiple_of(8);
    let pass = |method: ReadMethod| {
        pool.for_each_range(words, chunk, &|r| {
            black_box(read_words(&buf[r], method));
        })
    };
    pass(ReadMethod::Plain);
    let mut seconds_by_method = [f64::INFINITY; 3];
    for _ in 0..passes.max(1) {
        for (best, &method) in seconds_by_method.iter_mut().zip(&ReadMethod::ALL) {
            let t = Instant::now();
            pass(method);
            *best = best.min(t.elapsed().as_secs_f64());
        }
    }
    let (i, best_seconds) = seconds_by_method
        .iter()
        .copied()
        .enumerate()
        .fold((0, f64::INFINITY), |b, m| if m.1 < b.1 { m } else { b });
    Bandwidth {
        bytes: words * 8,
        best_seconds,
        threads,
        method: ReadMethod::ALL[i],
        seconds_by_method,
    }
}

/// A buffer of `words` distinct values, written in parallel, on 2 MiB pages where the system grants them, as
/// the weights are (`crate::pages`): read through 4 KiB pages the ceiling would sit below what decode reaches.
fn filled(pool: &ThreadPool, words: usize) -> Vec<u64> {
    let mut buf = Vec::with_capacity(words);
    crate::pages::advise_huge_pages(&mut buf);
    buf.resize(words, 0u64);
    let chunk = words.div_ceil(pool.n_threads() * 4).max(1);
    pool.for_each_chunk_mut(&mut buf, chunk, &|t, part| {
        let base = (t * chunk) as u64;
        for (i, w) in part.iter_mut().enumerate() {
            *w = base + i as u64;
        }
    });
    buf
}

/// Wrapping sum of `words`, read with `method` where this CPU has it (plain loads otherwise).
fn read_words(words: &[u64], method: ReadMethod) -> u64 {
    #[cfg(target_arch = "x86_64")]
    if method != ReadMethod::Plain && x86::usable() {
        return x86::sum(words, method == ReadMethod::Streaming);
    }
    let _ = method;
    sum_words(words)
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

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{PREFETCH_AHEAD, sum_words};

    pub fn usable() -> bool {
        is_x86_feature_detected!("avx2")
    }

    /// Wrapping sum of `words` (as [`sum_words`]), two 256-bit loads per 64-byte line into four accumulators,
    /// with a prefetch [`PREFETCH_AHEAD`] bytes ahead: `prefetcht0` + plain loads, or `prefetchnta` +
    /// `vmovntdqa` when `streaming`. The caller checked [`usable`].
    pub fn sum(words: &[u64], streaming: bool) -> u64 {
        let (head, lines, tail) = split_aligned(words);
        // SAFETY: AVX2 was checked by the caller (`usable`); `lines` holds whole, 64-byte-aligned lines.
        let body = unsafe { sum_lines(lines, streaming) };
        sum_words(head)
            .wrapping_add(body)
            .wrapping_add(sum_words(tail))
    }

    /// `words` as (unaligned head, whole 64-byte-aligned lines, tail).
    fn split_aligned(words: &[u64]) -> (&[u64], &[u64], &[u64]) {
        let skip = words.as_ptr().align_offset(64).min(words.len());
        let (head, rest) = words.split_at(skip);
        let whole = rest.len() / 8 * 8;
        let (lines, tail) = rest.split_at(whole);
        (head, lines, tail)
    }

    #[target_feature(enable = "avx2")]
    unsafe fn sum_lines(lines: &[u64], streaming: bool) -> u64 {
        let mut acc = [_mm256_setzero_si256(); 4];
        let n = lines.len() / 8;
        let base = lines.as_ptr();
        for i in (0..n).step_by(2) {
            // SAFETY: i < n, so line i lies inside `lines`; a prefetch past the end never faults.
            let p = unsafe { base.add(i * 8) } as *const __m256i;
            let ahead = (p as *const i8).wrapping_add(PREFETCH_AHEAD);
            let rows = if i + 1 < n { 4 } else { 2 };
            if streaming {
                _mm_prefetch::<_MM_HINT_NTA>(ahead);
            } else {
                _mm_prefetch::<_MM_HINT_T0>(ahead);
                _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(64));
            }
            for (k, a) in acc.iter_mut().enumerate().take(rows) {
                // SAFETY: k < rows, so the 32 bytes at p + k lie in line i or i + 1 (both inside `lines`),
                // 32-byte aligned because every line is 64-byte aligned.
                let v = unsafe {
                    if streaming {
                        _mm256_stream_load_si256(p.add(k))
                    } else {
                        _mm256_load_si256(p.add(k))
                    }
                };
                *a = _mm256_add_epi64(*a, v);
            }
        }
        let s = _mm256_add_epi64(
            _mm256_add_epi64(acc[0], acc[1]),
            _mm256_add_epi64(acc[2], acc[3]),
        );
        let mut out = [0u64; 4];
        // SAFETY: `out` holds exactly 32 bytes.
        unsafe { _mm256_storeu_si256(out.as_mut_ptr() as *mut __m256i, s) };
        out.iter().fold(0u64, |t, &w| t.wrapping_add(w))
    }
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
            method: ReadMethod::Plain,
            seconds_by_method: [0.0, f64::INFINITY, 1.0],
        };
        assert_eq!(bw.gb_per_s(), 0.0);
        assert_eq!(bw.gb_per_s_of(ReadMethod::Prefetch), 0.0);
        assert_eq!(bw.gb_per_s_of(ReadMethod::Streaming), 10.0 / 1e9);
    }

    #[test]
    fn every_method_sums_like_the_plain_loop_at_any_alignment_and_length() {
        let v: Vec<u64> = (0..4099).map(|i| i * 0x9E37_79B9 + 11).collect();
        for start in 0..9 {
            for len in [0, 1, 7, 8, 15, 16, 17, 24, 64, 1000, 4090 - start] {
                let part = &v[start..start + len];
                let plain = part.iter().fold(0u64, |s, &w| s.wrapping_add(w));
                for m in ReadMethod::ALL {
                    assert_eq!(read_words(part, m), plain, "{m:?} start {start} len {len}");
                }
            }
        }
    }

    #[test]
    fn the_best_pass_is_the_fastest_of_every_method() {
        let pool = ThreadPool::new(2);
        let bw = read_bandwidth(&pool, 2 << 20, 2);
        let best = ReadMethod::ALL.map(|m| bw.gb_per_s_of(m));
        assert!(best.iter().all(|&g| g > 0.0 && g <= bw.gb_per_s()));
        assert_eq!(bw.gb_per_s_of(bw.method), bw.gb_per_s());
    }
}
