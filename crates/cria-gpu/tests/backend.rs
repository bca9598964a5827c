//! `GpuBackend`'s composed ops (the per-expert matmul's row gathers, weighted rows and per-token sums) against
//! the CPU backend's on random rows, and its `supports` answers. On whatever adapter `--device gpu` would
//! pick (lavapipe in CI); without one they skip, unless `CRIA_GPU_REQUIRED=1`.

#![allow(clippy::unwrap_used)] // tests fail loudly

use cria_gguf::GgmlType;
use cria_gpu::{DeviceChoice, Gpu, GpuBackend};
use cria_kernels::backend::cpu::{CpuBackend, CpuScratch};
use cria_kernels::backend::{Backend, KvCaches, Op, Rows};
use cria_kernels::ops::KvView;
use cria_kernels::pool::ThreadPool;

fn gpu() -> Option<Gpu> {
    match Gpu::open(DeviceChoice::Gpu(None)) {
        Ok(g) => Some(g),
        Err(e) if std::env::var("CRIA_GPU_REQUIRED").as_deref() == Ok("1") => {
            panic!("CRIA_GPU_REQUIRED=1 but {e}")
        }
        Err(e) => {
            eprintln!("skipping GPU backend test: {e}");
            None
        }
    }
}

/// A step without KV caches (the ops under test never touch them).
struct NoCaches;

impl KvCaches for NoCaches {
    fn store(&mut self, _: usize, _: usize, _: usize, _: &[f32], _: &[f32]) {}
    fn view(&self, _: usize, _: usize) -> KvView<'_> {
        KvView::contiguous(&[], &[])
    }
}

/// `n` rows of `src` (`d` wide) through the MoE FFN's data movement on backend `b`: each token's `k` choices
/// gathered (choice `c` of token `t` reads row `(t + c) % n`), scattered to their slots, weighted, and summed.
fn moe_rows<B: Backend>(b: &mut B, src: &[f32], (n, k, d): (usize, usize, usize)) -> Vec<f32>
where
    B::Error: std::fmt::Debug,
{
    let input = b.buffer(n * d).unwrap();
    let (per_choice, out) = (b.buffer(n * k * d).unwrap(), b.buffer(n * d).unwrap());
    let staged = b.buffer(n * d).unwrap();
    b.write(&input, src);
    // Choice c of token t reads token (t + c) % n: every row moves somewhere else.
    for c in 0..k {
        let moves: Vec<(usize, usize)> = (0..n).map(|t| ((t + c) % n, t)).collect();
        b.copy_rows(&input, &moves, d, &staged);
        let scatter: Vec<(usize, usize)> = (0..n).map(|t| (t, t * k + c)).collect();
        b.copy_rows(&staged, &scatter, d, &per_choice);
    }
    let weights: Vec<f32> = (0..n * k).map(|i| 0.25 + (i as f32 * 0.37).sin()).collect();
    b.scale_rows(&per_choice, &weights, d);
    b.sum_groups(&per_choice, k, Rows::new(d, n), &out);
    b.read(&out, n * d).unwrap()
}

#[test]
fn moe_row_ops_equal_the_cpu_backend() {
    let Some(gpu) = gpu() else { return };
    let (n, k, d) = (5, 3, 64);
    let src: Vec<f32> = (0..n * d).map(|i| (i as f32 * 0.61).cos() * 3.0).collect();
    let pool = ThreadPool::new(2);
    let (mut kv, mut scratch) = (NoCaches, CpuScratch::default());
    let mut cpu = CpuBackend::new(&pool, &[], &mut kv, &mut scratch);
    let want = moe_rows(&mut cpu, &src, (n, k, d));
    let mut on_gpu = GpuBackend::new(&gpu, Vec::new());
    let got = moe_rows(&mut on_gpu, &src, (n, k, d));
    assert_eq!(got, want);
}

#[test]
fn supports_names_the_weight_formats_with_kernels() {
    let Some(gpu) = gpu() else { return };
    let b = GpuBackend::new(&gpu, Vec::new());
    assert!(b.supports(Op::MatMul, GgmlType::Q4_K));
    assert!(b.supports(Op::MatMulId, GgmlType::Q8_0));
    assert!(!b.supports(Op::MatMul, GgmlType::MXFP4));
    assert!(!b.supports(Op::SigmoidGate, GgmlType::F32));
    assert!(b.supports(Op::Attention, GgmlType::F32));
}
