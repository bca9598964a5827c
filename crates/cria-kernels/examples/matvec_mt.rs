//! Decode matvec through the multi-threaded driver (`matmul` with one token) on the shapes of the two
//! reference models, against the pool's read bandwidth measured in the same process: how close each
//! format's matvec gets to the roofline with every thread streaming. Each figure is the fastest of many
//! calls, so a noisy machine shows the kernel's speed rather than its neighbours'.
//!
//! `cargo run --release -p cria-kernels --example matvec_mt [-- THREADS]` (env `CRIA_ISA` forces a path).

use cria_kernels::GgmlType;
use cria_kernels::bandwidth::read_bandwidth;
use cria_kernels::matmul::{WeightRef, matmul};
use cria_kernels::pool::ThreadPool;
use cria_kernels::quant::quantize_row;
use std::hint::black_box;
use std::time::Instant;

fn data(n: usize, seed: u32) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(1664525).wrapping_add(1013904223);
            (s >> 8) as f32 / (1 << 24) as f32 * 2.0 - 1.0
        })
        .collect()
}

/// A `rows × cols` matrix of `ty`, built from one quantized random row block repeated (building 178 MB of
/// distinct rows would take longer than the measurement; the kernel reads every byte either way).
fn matrix(ty: GgmlType, rows: usize, cols: usize) -> Vec<u8> {
    let rb = ty.row_bytes(cols).expect("whole blocks");
    let distinct = rows.min(256);
    let mut block = vec![0u8; distinct * rb];
    for (r, dst) in block.chunks_exact_mut(rb).enumerate() {
        quantize_row(ty, &data(cols, r as u32 + 1), dst).expect("quantize");
    }
    let mut w = Vec::with_capacity(rows * rb);
    while w.len() < rows * rb {
        let n = (rows * rb - w.len()).min(block.len());
        w.extend_from_slice(&block[..n]);
    }
    w
}

fn main() {
    let threads = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    let pool = ThreadPool::new(threads);
    let bw = read_bandwidth(&pool, 1 << 30, 5).gb_per_s();
    println!(
        "isa {:?}, {threads} threads, read bandwidth {bw:.1} GB/s",
        cria_kernels::isa::active()
    );
    println!("| matrix | format | MB | µs per matvec | GB/s | % of read bw |");
    println!("| --- | --- | ---: | ---: | ---: | ---: |");
    use GgmlType::*;
    let shapes = [
        ("gemma output", Q8_0, 262_144, 640),
        ("smollm2 output", Q8_0, 49_152, 576),
        ("smollm2 ffn up", Q4_1, 1536, 576),
        ("smollm2 ffn down", Q4_1, 576, 1536),
        ("smollm2 layer x30", Q4_1, 30 * 1536, 576),
        ("gemma ffn up", Q5_0, 2048, 640),
        ("gemma ffn up x18", Q5_0, 18 * 2048, 640),
        ("gemma ffn down x18", Q4_K, 18 * 640, 2048),
        ("gemma ffn Q6_K x18", Q6_K, 18 * 640, 2048),
    ];
    for (name, ty, rows, cols) in shapes {
        let w = matrix(ty, rows, cols);
        let wr = WeightRef {
            ty,
            rows,
            cols,
            data: &w,
        };
        let x = data(cols, 7);
        let mut y = vec![0f32; rows];
        let mut scratch = Vec::new();
        // The fastest single call of many: a shared machine preempts some calls, never speeds one up.
        let reps = (4_000_000_000 / w.len()).clamp(20, 20_000);
        matmul(&pool, &wr, &x, 1, &mut y, &mut scratch);
        let mut best = f64::INFINITY;
        for _ in 0..reps {
            let t = Instant::now();
            matmul(&pool, &wr, black_box(&x), 1, &mut y, &mut scratch);
            best = best.min(t.elapsed().as_secs_f64());
        }
        let gbs = w.len() as f64 / best / 1e9;
        println!(
            "| {name} | {ty:?} | {:.1} | {:.1} | {gbs:.1} | {:.0}% |",
            w.len() as f64 / 1e6,
            best * 1e6,
            100.0 * gbs / bw
        );
    }
}
