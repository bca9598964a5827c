//! Microbenchmark of the quantized products, one thread: matvec GB/s per format and path against the
//! machine's measured read bandwidth (the roofline of decode), and GEMM GFLOP/s per format and path.
//!
//! `cargo bench -p cria-kernels --bench quant` (env `QUANT_BENCH_TYPES=Q4_1,Q8_0` narrows the formats).

use cria_kernels::GgmlType;
use cria_kernels::dot::{matmul_rows_with, matvec_rows_with};
use cria_kernels::isa::Isa;
use cria_kernels::quant::{activation_type, quantize_activation_with, quantize_row};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// Bytes of weights per matvec: well past the last-level cache, so this measures memory, not cache.
const MATVEC_BYTES: usize = 256 << 20;
const COLS: usize = 2048;

fn data(n: usize, seed: u32) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(1664525).wrapping_add(1013904223);
            (s >> 8) as f32 / (1 << 24) as f32 * 2.0 - 1.0
        })
        .collect()
}

/// Nanoseconds this thread has run on a CPU (Linux), so that time spent preempted by other processes on a
/// shared machine does not count. `None` elsewhere: wall time is used then.
fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// Median seconds per call of `f` over at least `min` of total time: on-CPU time where the OS reports it.
/// Each sample repeats `f` for at least 50 ms, as the OS counts on-CPU time in scheduler ticks.
fn time(min: Duration, mut f: impl FnMut()) -> f64 {
    let (start, mut runs) = (Instant::now(), Vec::new());
    while runs.len() < 5 || start.elapsed() < min {
        let (t, c) = (Instant::now(), thread_cpu_ns());
        let mut reps = 0u32;
        while reps == 0 || t.elapsed() < Duration::from_millis(50) {
            f();
            reps += 1;
        }
        let wall = t.elapsed().as_secs_f64();
        let secs = match (c, thread_cpu_ns()) {
            (Some(c0), Some(c1)) if c1 > c0 => (c1 - c0) as f64 / 1e9,
            _ => wall,
        };
        runs.push(secs / reps as f64);
    }
    runs.sort_by(f64::total_cmp);
    runs[runs.len() / 2]
}

/// Single-thread read bandwidth in GB/s: sums a buffer much larger than the caches.
fn read_bandwidth() -> f64 {
    let buf: Vec<u64> = (0..(512usize << 20) / 8).map(|i| i as u64).collect();
    let secs = time(Duration::from_secs(2), || {
        let mut acc = [0u64; 8];
        for c in buf.chunks_exact(8) {
            for (a, v) in acc.iter_mut().zip(c) {
                *a = a.wrapping_add(*v);
            }
        }
        black_box(acc);
    });
    (buf.len() * 8) as f64 / secs / 1e9
}

/// A weight matrix of `rows` rows: 64 quantized random rows repeated.
fn matrix(ty: GgmlType, rows: usize) -> Vec<u8> {
    let rb = ty.row_bytes(COLS).unwrap_or(0);
    let mut base = vec![0u8; rb * 64];
    for (r, chunk) in base.chunks_exact_mut(rb).enumerate() {
        let ok = quantize_row(ty, &data(COLS, r as u32), chunk);
        assert!(ok.is_ok());
    }
    base.iter().copied().cycle().take(rb * rows).collect()
}

fn acts(ty: GgmlType, isa: Isa, n_tok: usize) -> Vec<u8> {
    let at = activation_type(ty);
    let rb = at.row_bytes(COLS).unwrap_or(0);
    let mut a = vec![0u8; rb * n_tok];
    for (t, chunk) in a.chunks_exact_mut(rb).enumerate() {
        quantize_activation_with(isa, at, &data(COLS, 1000 + t as u32), chunk);
    }
    a
}

fn types() -> Vec<GgmlType> {
    let all = [
        GgmlType::Q4_0,
        GgmlType::Q4_1,
        GgmlType::Q5_0,
        GgmlType::Q5_1,
        GgmlType::Q8_0,
        GgmlType::Q2_K,
        GgmlType::Q3_K,
        GgmlType::Q4_K,
        GgmlType::Q5_K,
        GgmlType::Q6_K,
        GgmlType::F16,
        GgmlType::BF16,
        GgmlType::F32,
    ];
    match std::env::var("QUANT_BENCH_TYPES") {
        Ok(list) => all
            .into_iter()
            .filter(|t| list.split(',').any(|n| n == t.name()))
            .collect(),
        Err(_) => all.to_vec(),
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let bw1 = read_bandwidth();
    let clock = if thread_cpu_ns().is_some() {
        "on-CPU time of the thread"
    } else {
        "wall time"
    };
    println!(
        "read bandwidth: {bw1:.1} GB/s (1 thread); times are {clock}, median of several runs\n"
    );
    println!(
        "| format | path | matvec GB/s (1 thread) | % of 1-thread read bw | GEMM GFLOP/s (64 tokens, 1 thread) |"
    );
    println!("|---|---|---:|---:|---:|");
    for ty in types() {
        let rb = ty.row_bytes(COLS).unwrap_or(1);
        let rows = MATVEC_BYTES / rb;
        let w = matrix(ty, rows);
        for isa in Isa::available() {
            let a = acts(ty, isa, 64);
            let mut out = vec![0f32; rows];
            let secs = time(Duration::from_millis(1500), || {
                matvec_rows_with(isa, ty, &w, COLS, &a, 0..rows, &mut out);
                black_box(&out);
            });
            let gbs = w.len() as f64 / secs / 1e9;
            // GEMM: 256 rows x 64 tokens (weights stay in L2, as in a tiled prefill)
            let (g_rows, n_tok) = (256, 64);
            let mut y = vec![0f32; g_rows * n_tok];
            let gsecs = time(Duration::from_millis(700), || {
                matmul_rows_with(isa, ty, &w, COLS, &a, n_tok, 0..g_rows, &mut y, g_rows);
                black_box(&y);
            });
            let gflops = 2.0 * (g_rows * n_tok * COLS) as f64 / gsecs / 1e9;
            let pct = 100.0 * gbs / bw1;
            println!(
                "| {} | {} | {gbs:.1} | {pct:.0}% | {gflops:.1} |",
                ty.name(),
                isa.name()
            );
        }
    }
}
