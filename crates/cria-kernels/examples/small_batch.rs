//! Decode-batch matmul cost on smollm2-135m's weight shapes: one thread, the whole matrix, `n` = 1..8 tokens
//! (a serving step of `n` decoding sequences), as on-CPU microseconds per call and as a multiple of the
//! one-token call (weights are read once per call, so a good small-batch path costs little more at 8 than
//! at 1). Each figure is the median of samples of repeated calls (a shared machine slows samples, never
//! speeds one up).
//!
//! `cargo run --release -p cria-kernels --example small_batch [-- SAMPLES]`.

use cria_kernels::GgmlType;
use cria_kernels::isa;
use cria_kernels::matmul::{WeightRef, matmul_rows};
use cria_kernels::packed::Layout;
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

/// Median seconds per call of `f`, over `samples` samples of about 20 ms each.
fn median_per_call(samples: usize, mut f: impl FnMut()) -> f64 {
    let mut v: Vec<f64> = (0..samples)
        .map(|_| {
            let (t, mut reps) = (Instant::now(), 0u32);
            while reps == 0 || t.elapsed() < Duration::from_millis(20) {
                f();
                reps += 1;
            }
            t.elapsed().as_secs_f64() / reps as f64
        })
        .collect();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let samples: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(9);
    println!("isa {:?}, 1 thread, {samples} samples", isa::active());
    println!("| matrix | format | rows x cols | n=1 µs | n=2 | n=4 | n=8 (x the n=1 call) |");
    println!("| --- | --- | --- | ---: | ---: | ---: | ---: |");
    use GgmlType::*;
    let shapes = [
        ("attn_q", Q4_1, 576, 576),
        ("ffn_up", Q4_1, 1536, 576),
        ("ffn_down", Q4_1, 576, 1536),
        ("output", Q8_0, 49152, 576),
    ];
    for (name, ty, rows, cols) in shapes {
        let w = matrix(ty, rows, cols);
        let wr = WeightRef {
            ty,
            rows,
            cols,
            data: &w,
            layout: Layout::Rows,
        };
        let at = activation_type(ty);
        let ab = at.row_bytes(cols).expect("whole blocks");
        let mut acts = vec![0u8; ab * 8];
        for (t, dst) in acts.chunks_exact_mut(ab).enumerate() {
            quantize_activation(at, &data(cols, 1000 + t as u32), dst);
        }
        let mut y = vec![0f32; rows * 8];
        let times: Vec<f64> = [1, 2, 4, 8]
            .iter()
            .map(|&n| {
                median_per_call(samples, || {
                    matmul_rows(&wr, black_box(&acts), n, 0..rows, &mut y, rows);
                    black_box(&y);
                })
            })
            .collect();
        let x = |i: usize| times[i] / times[0];
        println!(
            "| {name} | {ty:?} | {rows} x {cols} | {:.1} | {:.2}x | {:.2}x | {:.2}x |",
            times[0] * 1e6,
            x(1),
            x(2),
            x(3)
        );
    }
}
