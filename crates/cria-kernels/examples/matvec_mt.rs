//! Decode matvec through the multi-threaded driver (`matmul` with one token) on the shapes of the two
//! reference models, against the pool's read bandwidth measured in the same process: how close each
//! format's matvec gets to the roofline with every thread streaming. Each figure is the fastest of many
//! calls, so a noisy machine shows the kernel's speed rather than its neighbours'.
//!
//! Two figures per shape: `hot`, the same matrix called again and again (it stays in the caches when it is
//! small: the kernel's compute speed), and `dram`, each call on the next of as many distinct copies as fill
//! [`COLD_BYTES`] (more than the L3), so every call reads its weights from memory, as in real decode, where
//! the 178 MB output matrix evicts the layers' matrices between tokens. `dram` gives the fastest call and
//! the median call of the last cycles through the copies.
//!
//! `cargo run --release -p cria-kernels --example matvec_mt [-- THREADS [FILTER]]` (env `CRIA_ISA` forces a
//! path; FILTER keeps the shapes whose name contains it).

use cria_kernels::GgmlType;
use cria_kernels::bandwidth::read_bandwidth;
use cria_kernels::matmul::{WeightRef, matmul};
use cria_kernels::packed::{Layout, pack};
use cria_kernels::pool::ThreadPool;
use cria_kernels::quant::quantize_row;
use std::hint::black_box;
use std::time::Instant;

/// Bytes of distinct weights a `dram` measurement cycles through.
const COLD_BYTES: usize = 512 << 20;

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
    let mut args = std::env::args().skip(1);
    let threads = args.next().and_then(|s| s.parse().ok()).unwrap_or(2);
    let filter = args.next().unwrap_or_default();
    let pool = ThreadPool::new(threads);
    let bw = read_bandwidth(&pool, 1 << 30, 5).gb_per_s();
    println!(
        "isa {:?}, {threads} threads, read bandwidth {bw:.1} GB/s",
        cria_kernels::isa::active()
    );
    println!(
        "| matrix | format | MB | hot µs | hot GB/s | dram µs (best) | dram GB/s (best / median) | % of read bw (dram best) |"
    );
    println!("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    use GgmlType::*;
    let shapes = [
        ("gemma output", Q8_0, 262_144, 640),
        ("gemma attn_q", Q5_0, 1024, 640),
        ("gemma attn_k", Q5_0, 256, 640),
        ("gemma attn_v", Q8_0, 256, 640),
        ("gemma attn_output", Q4_K, 640, 1024),
        ("gemma ffn_gate/up", Q5_0, 2048, 640),
        ("gemma ffn_down", Q4_K, 640, 2048),
        ("gemma ffn_down", Q6_K, 640, 2048),
        ("gemma ffn_up x18", Q5_0, 18 * 2048, 640),
        ("gemma ffn_down x18", Q4_K, 18 * 640, 2048),
        ("gemma ffn_down x18", Q6_K, 18 * 640, 2048),
        ("smollm2 output", Q8_0, 49_152, 576),
        ("smollm2 ffn up", Q4_1, 1536, 576),
        ("smollm2 ffn down", Q4_1, 576, 1536),
        ("smollm2 layer x30", Q4_1, 30 * 1536, 576),
        // Llama-3.2-1B's shape (hidden 2048, FFN 8192, 8 KV heads of 64, vocabulary 128256)
        ("1b ffn_up", Q4_0, 8192, 2048),
        ("1b ffn_down", Q4_0, 2048, 8192),
        ("1b attn_k", Q4_0, 512, 2048),
        ("1b ffn_up x16", Q4_0, 16 * 8192, 2048),
        ("1b ffn_up", Q8_0, 8192, 2048),
        ("1b ffn_up x16", Q8_0, 16 * 8192, 2048),
        ("1b ffn_up", Q4_K, 8192, 2048),
        ("1b ffn_up x16", Q4_K, 16 * 8192, 2048),
        // the layout the model gives Q4_K layer matrices on x86-64 (`packed::packs`)
        ("1b ffn_up repacked", Q4_K, 8192, 2048),
        ("1b ffn_down repacked", Q4_K, 2048, 8192),
        ("1b ffn_up x16 repacked", Q4_K, 16 * 8192, 2048),
        ("1b ffn_down", Q6_K, 2048, 8192),
        ("1b output", Q6_K, 128_256, 2048),
    ];
    for (name, ty, rows, cols) in shapes {
        if !name.contains(filter.as_str()) {
            continue;
        }
        let mut w = matrix(ty, rows, cols);
        let layout = if name.ends_with("repacked") {
            w = pack(ty, rows, cols, &w).expect("a packable shape");
            Layout::Groups8
        } else {
            Layout::Rows
        };
        let wr = |data| WeightRef {
            ty,
            rows,
            cols,
            data,
            layout,
        };
        let x = data(cols, 7);
        let mut y = vec![0f32; rows];
        let mut scratch = Vec::new();
        // The fastest single call of many: a shared machine preempts some calls, never speeds one up.
        let reps = (4_000_000_000 / w.len()).clamp(20, 20_000);
        matmul(&pool, &wr(&w), &x, 1, &mut y, &mut scratch);
        let mut hot = f64::INFINITY;
        for _ in 0..reps {
            let t = Instant::now();
            matmul(&pool, &wr(&w), black_box(&x), 1, &mut y, &mut scratch);
            hot = hot.min(t.elapsed().as_secs_f64());
        }
        // From memory: distinct copies (each a whole number of pages apart), called in turn.
        let (dram, median) = if w.len() * 2 > COLD_BYTES {
            (hot, hot)
        } else {
            let stride = w.len().next_multiple_of(4096);
            let copies = COLD_BYTES / stride;
            let mut cold = vec![0u8; copies * stride];
            for c in cold.chunks_exact_mut(stride) {
                c[..w.len()].copy_from_slice(&w);
            }
            let cycles = (2_000_000_000 / COLD_BYTES).max(3);
            let mut times = Vec::with_capacity(cycles * copies);
            for cycle in 0..=cycles {
                for c in cold.chunks_exact(stride) {
                    let t = Instant::now();
                    matmul(
                        &pool,
                        &wr(&c[..w.len()]),
                        black_box(&x),
                        1,
                        &mut y,
                        &mut scratch,
                    );
                    // the first cycle only warms the TLB and the pool
                    if cycle > 0 {
                        times.push(t.elapsed().as_secs_f64());
                    }
                }
            }
            times.sort_by(f64::total_cmp);
            (times[0], times[times.len() / 2])
        };
        let gb = |s: f64| w.len() as f64 / s / 1e9;
        println!(
            "| {name} | {ty:?} | {:.2} | {:.1} | {:.1} | {:.1} | {:.1} / {:.1} | {:.0}% |",
            w.len() as f64 / 1e6,
            hot * 1e6,
            gb(hot),
            dram * 1e6,
            gb(dram),
            gb(median),
            100.0 * gb(dram) / bw
        );
    }
}
