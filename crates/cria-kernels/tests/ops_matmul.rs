//! The matmul driver against a dequantize-then-f32 reference: every weight format on synthetic matrices,
//! and the real tensors of the two test models. Thread counts and shapes are picked to cross every
//! split boundary (row chunks, prefill tiles, ragged ends).

use cria_gguf::GgufFile;
use cria_kernels::GgmlType;
use cria_kernels::matmul::{WeightRef, matmul};
use cria_kernels::packed::Layout;
use cria_kernels::pool::ThreadPool;
use cria_kernels::quant::{activation_type, can_quantize, dequantize_row, quantize_row};

/// Deterministic values in [-1, 1).
fn noise(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// `y = x · Wᵀ` in f64 over the dequantized weights.
fn reference(w: &WeightRef, x: &[f32], n_tok: usize) -> Vec<f32> {
    let rb = w.ty.row_bytes(w.cols).unwrap();
    let mut wf = vec![0.0f32; w.rows * w.cols];
    for (r, dst) in wf.chunks_exact_mut(w.cols).enumerate() {
        dequantize_row(w.ty, &w.data[r * rb..(r + 1) * rb], dst).unwrap();
    }
    let mut y = vec![0.0f32; n_tok * w.rows];
    for t in 0..n_tok {
        let xt = &x[t * w.cols..(t + 1) * w.cols];
        for (r, wr) in wf.chunks_exact(w.cols).enumerate() {
            y[t * w.rows + r] = wr
                .iter()
                .zip(xt)
                .map(|(&a, &b)| f64::from(a) * f64::from(b))
                .sum::<f64>() as f32;
        }
    }
    y
}

/// Relative RMS error of `got` against `want`.
fn rel_rms(got: &[f32], want: &[f32]) -> f64 {
    let num: f64 = got
        .iter()
        .zip(want)
        .map(|(&g, &w)| (f64::from(g) - f64::from(w)).powi(2))
        .sum();
    let den: f64 = want.iter().map(|&w| f64::from(w).powi(2)).sum();
    (num / den.max(1e-30)).sqrt()
}

/// Error budget: f32 activations only round; 8-bit activations (ggml's Q8 formats) cost ~1% RMS.
fn budget(ty: GgmlType) -> f64 {
    if activation_type(ty) == GgmlType::F32 {
        1e-5
    } else {
        0.02
    }
}

fn check(pool: &ThreadPool, w: &WeightRef, n_tok: usize, seed: u64) {
    let x = noise(n_tok * w.cols, seed);
    let mut y = vec![f32::NAN; n_tok * w.rows];
    let mut scratch = Vec::new();
    matmul(pool, w, &x, n_tok, &mut y, &mut scratch);
    let want = reference(w, &x, n_tok);
    let err = rel_rms(&y, &want);
    assert!(
        err <= budget(w.ty),
        "{:?} {}x{} n_tok {n_tok} threads {}: relative RMS error {err:.2e}",
        w.ty,
        w.rows,
        w.cols,
        pool.n_threads()
    );
}

#[test]
fn matmul_every_format_every_split() {
    let (rows, cols) = (130, 512);
    let pools: Vec<ThreadPool> = [1, 2, 3].into_iter().map(ThreadPool::new).collect();
    // the read-only IQ, ternary and MXFP4 formats: tests/iq_kernels.rs
    for ty in GgmlType::ALL.into_iter().filter(|&t| can_quantize(t)) {
        let wf = noise(rows * cols, ty.id() as u64);
        let rb = ty.row_bytes(cols).unwrap();
        let mut data = vec![0u8; rows * rb];
        for (src, dst) in wf.chunks_exact(cols).zip(data.chunks_exact_mut(rb)) {
            quantize_row(ty, src, dst).unwrap();
        }
        let w = WeightRef {
            ty,
            rows,
            cols,
            data: &data,
            layout: Layout::Rows,
        };
        for pool in &pools {
            for n_tok in [1, 2, 67] {
                check(pool, &w, n_tok, 7 + n_tok as u64);
            }
        }
    }
}

#[test]
fn matmul_threads_agree_with_one_thread() {
    let (rows, cols) = (200, 256);
    let ty = GgmlType::Q4_K;
    let wf = noise(rows * cols, 3);
    let mut data = vec![0u8; rows * ty.row_bytes(cols).unwrap()];
    for (src, dst) in wf
        .chunks_exact(cols)
        .zip(data.chunks_exact_mut(ty.row_bytes(cols).unwrap()))
    {
        quantize_row(ty, src, dst).unwrap();
    }
    let w = WeightRef {
        ty,
        rows,
        cols,
        data: &data,
        layout: Layout::Rows,
    };
    for n_tok in [1, 70] {
        let x = noise(n_tok * cols, 11);
        let run = |threads| {
            let mut y = vec![0.0; n_tok * rows];
            matmul(
                &ThreadPool::new(threads),
                &w,
                &x,
                n_tok,
                &mut y,
                &mut Vec::new(),
            );
            y
        };
        let one = run(1);
        for threads in [2, 4] {
            let many = run(threads);
            assert!(
                rel_rms(&many, &one) < 1e-6,
                "{threads} threads vs 1, n_tok {n_tok}"
            );
        }
    }
}

#[test]
fn matmul_empty_batch_is_a_no_op() {
    let data = vec![0u8; 4 * GgmlType::Q8_0.row_bytes(32).unwrap()];
    let w = WeightRef {
        ty: GgmlType::Q8_0,
        rows: 4,
        cols: 32,
        data: &data,
        layout: Layout::Rows,
    };
    let mut y: Vec<f32> = Vec::new();
    matmul(&ThreadPool::new(2), &w, &[], 0, &mut y, &mut Vec::new());
    assert!(y.is_empty());
}

#[test]
#[should_panic(expected = "matmul: x is not")]
fn matmul_rejects_a_wrong_x() {
    let data = vec![0u8; 4 * GgmlType::Q8_0.row_bytes(32).unwrap()];
    let w = WeightRef {
        ty: GgmlType::Q8_0,
        rows: 4,
        cols: 32,
        data: &data,
        layout: Layout::Rows,
    };
    let mut y = vec![0.0; 4];
    matmul(
        &ThreadPool::new(1),
        &w,
        &[0.0; 31],
        1,
        &mut y,
        &mut Vec::new(),
    );
}

/// The test model `name`, or `None` when CRIA_SKIP_MODEL_TESTS=1; a missing file fails the test.
fn model(name: &str) -> Option<GgufFile> {
    if std::env::var("CRIA_SKIP_MODEL_TESTS").is_ok_and(|v| v == "1") {
        return None;
    }
    let home = std::env::var("CRIA_HOME")
        .unwrap_or_else(|_| format!("{}/.cache/cria", std::env::var("HOME").unwrap_or_default()));
    let path = format!("{home}/models/{name}.gguf");
    assert!(
        std::path::Path::new(&path).exists(),
        "{path} is missing: run `cargo run --release -- pull {name}` (or set CRIA_SKIP_MODEL_TESTS=1)"
    );
    Some(GgufFile::open(&path).unwrap())
}

/// One 2-D tensor of each weight type in the model, its first `max_rows` rows, through the driver.
fn model_tensors_match_reference(name: &str) {
    let Some(file) = model(name) else { return };
    let pool = ThreadPool::new(2);
    let mut seen = Vec::new();
    for info in file.tensors() {
        if info.shape.len() != 2 || seen.contains(&info.ty) {
            continue;
        }
        seen.push(info.ty);
        let (cols, rows) = (info.shape[0] as usize, (info.shape[1] as usize).min(300));
        let data = file.tensor_data(info);
        let w = WeightRef {
            ty: info.ty,
            rows,
            cols,
            data: &data[..rows * info.ty.row_bytes(cols).unwrap()],
            layout: Layout::Rows,
        };
        for n_tok in [1, 5] {
            check(&pool, &w, n_tok, 42);
        }
    }
    assert!(!seen.is_empty(), "{name}: no 2-D tensor found");
}

#[test]
fn matmul_smollm2_tensors_match_reference() {
    model_tensors_match_reference("smollm2-135m-instruct");
}

#[test]
fn matmul_gemma3_tensors_match_reference() {
    model_tensors_match_reference("gemma-3-270m");
}
