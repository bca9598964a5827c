//! Prefill GEMM speed on gemma-3-270m's weight shapes, per format, in GFLOP/s:
//! - `task`: one thread, one `dot::matmul_rows` call of 256 rows x 64 tokens (a prefill task of
//!   `matmul.rs`), on-CPU time;
//! - `vs ymm`: `task`'s speed over the 256-bit kernel's (the AVX2 path) on the same task, the median of the
//!   ratios of samples taken back to back: this VM's clock moves by a third from minute to minute, which the
//!   ratio cancels where the GFLOP/s do not;
//! - `matmul`: the whole multi-threaded `matmul` at 512 tokens (quantizing the activations included), wall
//!   time (on-CPU time with one thread, where the pool runs every task on the caller).
//!
//! Each figure is the median and the best of samples of repeated calls: a shared machine slows some samples
//! down, never speeds one up. For A/B: build this example at two commits and alternate the binaries.
//!
//! `cargo run --release -p cria-kernels --example gemm_shapes [-- THREADS [SAMPLES]]`.

use cria_kernels::GgmlType;
use cria_kernels::dot::matmul_rows_with;
use cria_kernels::isa::{self, Isa};
use cria_kernels::matmul::{WeightRef, matmul};
use cria_kernels::packed::Layout;
use cria_kernels::pool::ThreadPool;
use cria_kernels::quant::{activation_type, quantize_activation, quantize_row};
use std::hint::black_box;
use std::time::{Duration, Instant};

fn data(n: usize, seed: u32) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(1664525).wrapping_add(1013904223);
            (s >> 8) as f32 / (1 << 24) as f32 * 2.0 - 1.0
        })
        .collect()
}

fn matrix(ty: GgmlType, rows: usize, cols: usize) -> Vec<u8> {
    let rb = ty.row_bytes(cols).expect("whole blocks");
    let mut w = vec![0u8; rows * rb];
    for (r, dst) in w.chunks_exact_mut(rb).enumerate() {
        let x: Vec<f32> = data(cols, r as u32 + 1).iter().map(|v| v * 0.05).collect();
        quantize_row(ty, &x, dst).expect("quantize");
    }
    w
}

#[repr(C)]
struct Timespec {
    sec: i64,
    nsec: i64,
}

unsafe extern "C" {
    fn clock_gettime(clock: i32, ts: *mut Timespec) -> i32;
}

/// Nanoseconds this thread has run on a CPU (Linux `CLOCK_THREAD_CPUTIME_ID`, exact where
/// `/proc/thread-self/schedstat` only moves at scheduler ticks), else None.
fn thread_cpu_ns() -> Option<u64> {
    if !cfg!(all(target_os = "linux", target_arch = "x86_64")) {
        return None;
    }
    let mut ts = Timespec { sec: 0, nsec: 0 };
    // SAFETY: clock_gettime writes one timespec (two longs on x86-64 Linux) to a valid pointer; clock 3 is
    // CLOCK_THREAD_CPUTIME_ID.
    let rc = unsafe { clock_gettime(3, &mut ts) };
    (rc == 0).then(|| ts.sec as u64 * 1_000_000_000 + ts.nsec as u64)
}

/// Seconds per call of `f` over about `ms` milliseconds: on-CPU time if `cpu` and the OS reports it, else
/// wall time.
fn per_call(ms: u64, cpu: bool, mut f: impl FnMut()) -> f64 {
    let (t, c) = (Instant::now(), thread_cpu_ns());
    let mut reps = 0u32;
    while reps == 0 || t.elapsed() < Duration::from_millis(ms) {
        f();
        reps += 1;
    }
    let secs = match (cpu, c, thread_cpu_ns()) {
        (true, Some(c0), Some(c1)) if c1 > c0 => (c1 - c0) as f64 / 1e9,
        _ => t.elapsed().as_secs_f64(),
    };
    secs / reps as f64
}

/// "median / best" of the samples' seconds per call, as GFLOP/s for `flop` per call.
fn rates(mut v: Vec<f64>, flop: f64) -> String {
    v.sort_by(f64::total_cmp);
    format!(
        "{:.1} / {:.1}",
        flop / v[v.len() / 2] / 1e9,
        flop / v[0] / 1e9
    )
}

fn main() {
    let mut args = std::env::args().skip(1);
    let threads = args.next().and_then(|s| s.parse().ok()).unwrap_or(2);
    let samples: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(15);
    let pool = ThreadPool::new(threads);
    println!(
        "isa {:?}, {threads} threads, {samples} samples",
        isa::active()
    );
    println!(
        "| matrix | format | rows x cols | task GFLOP/s (median / best) | vs ymm | matmul GFLOP/s (median / best) |"
    );
    println!("| --- | --- | --- | ---: | ---: | ---: |");
    use GgmlType::*;
    let shapes = [
        ("attn_q", Q5_0, 1024, 640),
        ("attn_k", Q5_0, 256, 640),
        ("ffn_up", Q5_0, 2048, 640),
        ("attn_v", Q8_0, 256, 640),
        ("attn_output", Q4_K, 640, 1024),
        ("ffn_down", Q4_K, 640, 2048),
        ("ffn_down", Q6_K, 640, 2048),
    ];
    let n_tok = 512;
    for (name, ty, rows, cols) in shapes {
        let w = matrix(ty, rows, cols);
        let wr = WeightRef {
            ty,
            rows,
            cols,
            data: &w,
            layout: Layout::Rows,
        };
        let x: Vec<f32> = (0..n_tok)
            .flat_map(|t| data(cols, 1000 + t as u32))
            .collect();
        let at = activation_type(ty);
        let ab = at.row_bytes(cols).expect("whole blocks");
        let mut acts = vec![0u8; ab * n_tok];
        for (t, dst) in acts.chunks_exact_mut(ab).enumerate() {
            quantize_activation(at, &x[t * cols..(t + 1) * cols], dst);
        }
        let (task_rows, task_tok) = (rows.min(256), 64);
        let mut out = vec![0f32; task_rows * task_tok];
        let mut y = vec![0f32; rows * n_tok];
        let mut scratch = Vec::new();
        let (mut task, mut full, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..samples {
            let mut run = |isa: Isa| {
                per_call(30, true, || {
                    matmul_rows_with(
                        isa,
                        ty,
                        black_box(&w),
                        cols,
                        &acts[..task_tok * ab],
                        task_tok,
                        0..task_rows,
                        &mut out,
                        task_rows,
                    )
                })
            };
            let (ymm, new) = (run(Isa::Avx2), run(isa::active()));
            task.push(new);
            ratio.push(ymm / new);
            full.push(per_call(30, threads == 1, || {
                matmul(&pool, &wr, black_box(&x), n_tok, &mut y, &mut scratch)
            }));
        }
        let flop = |r: usize, t: usize| 2.0 * (r * t * cols) as f64;
        println!(
            "| {name} | {ty:?} | {rows} x {cols} | {} | {:.2} | {} |",
            rates(task, flop(task_rows, task_tok)),
            {
                ratio.sort_by(f64::total_cmp);
                ratio[ratio.len() / 2]
            },
            rates(full, flop(rows, n_tok))
        );
    }
}
