//! Times one decode feed-forward step on the GPU three ways, each as one submitted step read back: the f32
//! path (gate and up through the dequantizing matmul, then SiLU·up), the int8 path (the same with activations
//! quantized to 8 bits), and the fused kernel (`Step::matmul_gated`). Prints milliseconds per step and the
//! ratios. Shape: `n_embd` × `n_ff` Q4_K matrices (default 1024 × 4096).
//!
//! `cargo run --release -p cria-gpu --example ffn_step [-- n_embd n_ff reps]`

use std::time::Instant;

use cria_gpu::{DeviceChoice, GatedAct, Gpu, GpuBuffer, GpuMatrix, Step};
use cria_kernels::GgmlType;
use cria_kernels::quant::quantize_row;

fn matrix(gpu: &Gpu, rows: usize, cols: usize, seed: u32) -> GpuMatrix {
    let ty = GgmlType::Q4_K;
    let rb = ty.row_bytes(cols).expect("whole super-blocks");
    let mut data = vec![0u8; rows * rb];
    let mut row = vec![0.0f32; cols];
    for (r, dst) in data.chunks_exact_mut(rb).enumerate() {
        for (c, v) in row.iter_mut().enumerate() {
            *v = (((r * 31 + c * 17) as u32 ^ seed) % 97) as f32 / 48.0 - 1.0;
        }
        quantize_row(ty, &row, dst).expect("quantize");
    }
    gpu.upload_matrix(ty, rows, cols, &data).expect("upload")
}

/// Milliseconds per step of `record`, over `reps` steps after one warm-up, each submitted and read back.
fn time(gpu: &Gpu, reps: usize, out: &GpuBuffer, mut record: impl FnMut(&mut Step<'_>)) -> f64 {
    let mut once = || {
        let mut step = gpu.step();
        record(&mut step);
        step.submit();
        gpu.read_f32(out, 1).expect("read");
    };
    once();
    let t = Instant::now();
    for _ in 0..reps {
        once();
    }
    t.elapsed().as_secs_f64() * 1e3 / reps as f64
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let (n_embd, n_ff, reps) = (
        args.first().copied().unwrap_or(1024),
        args.get(1).copied().unwrap_or(4096),
        args.get(2).copied().unwrap_or(10),
    );
    let gpu = match Gpu::open(DeviceChoice::Gpu(None)) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("no GPU: {e}");
            return;
        }
    };
    println!("{}", gpu.summary());
    let (gate, up) = (matrix(&gpu, n_ff, n_embd, 1), matrix(&gpu, n_ff, n_embd, 2));
    let x: Vec<f32> = (0..n_embd).map(|i| (i % 13) as f32 / 6.0 - 1.0).collect();
    let xb = gpu.upload_f32(&x).expect("x");
    let (g, u, out) = (
        gpu.zeros(n_ff).expect("g"),
        gpu.zeros(n_ff).expect("u"),
        gpu.zeros(n_ff).expect("out"),
    );
    let f32_path = time(&gpu, reps, &out, |s| {
        s.matmul_dequantized(&gate, &xb, 1, &g);
        s.matmul_dequantized(&up, &xb, 1, &u);
        s.silu_mul(&out, &g, &u, n_ff);
    });
    let int8 = time(&gpu, reps, &out, |s| {
        s.matmul(&gate, &xb, 1, &g);
        s.matmul(&up, &xb, 1, &u);
        s.silu_mul(&out, &g, &u, n_ff);
    });
    let fused = time(&gpu, reps, &out, |s| {
        s.matmul_gated((&gate, &up), &xb, 1, GatedAct::Silu, &out);
    });
    println!(
        "ffn {n_embd}x{n_ff} Q4_K, 1 token, {reps} steps: f32 path {f32_path:.2} ms, int8 {int8:.2} ms, \
         int8 fused {fused:.2} ms; f32/int8 {:.2}x, unfused/fused {:.2}x",
        f32_path / int8,
        int8 / fused
    );
}
