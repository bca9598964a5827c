//! Deterministic inputs for the kernel tests: a linear congruential generator, so every run on every machine
//! multiplies the same numbers.

/// `n` values spread evenly over `[-scale, scale)`, drawn from `seed`.
pub(crate) fn uniform(n: usize, seed: u32, scale: f32) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(1664525).wrapping_add(1013904223);
            (s >> 8) as f32 / (1 << 24) as f32 * (2.0 * scale) - scale
        })
        .collect()
}

/// `uniform(n, seed, 1.0)` with every 97th channel from the 5th on scaled by `outlier`: the few large channels
/// of a real residual stream, which stretch a block's quantization scale. (Only x86's kernel tests take it.)
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) fn with_outliers(n: usize, seed: u32, outlier: f32) -> Vec<f32> {
    let mut x = uniform(n, seed, 1.0);
    for c in (5..n).step_by(97) {
        x[c] *= outlier;
    }
    x
}

/// The inputs of the ignored memory-streaming A/B timings: `mat_rows` rows of `ty` quantized from `n` columns
/// (each row `x` scaled a little more), copied until the buffer holds ~256 MiB so that a pass over its copies
/// reads from DRAM, not the caches; with the activation row (`x` quantized for `ty`) and the row size in bytes.
#[cfg(target_arch = "x86_64")]
pub(crate) fn dram_matrix(
    ty: crate::GgmlType,
    n: usize,
    mat_rows: usize,
) -> (Vec<u8>, Vec<u8>, usize) {
    use crate::isa::Isa;
    use crate::quant::{activation_type, quantize_activation_with, quantize_row};
    let x: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
    let rb = ty.row_bytes(n).unwrap();
    let at = activation_type(ty);
    let mut a = vec![0u8; at.row_bytes(n).unwrap()];
    quantize_activation_with(Isa::Scalar, at, &x, &mut a);
    let copies = (256 << 20) / (mat_rows * rb);
    let mut w = vec![0u8; rb * mat_rows * copies];
    for (r, row) in w.chunks_exact_mut(rb).enumerate().take(256) {
        let xr: Vec<f32> = x.iter().map(|v| v * (1.0 + r as f32 * 0.01)).collect();
        quantize_row(ty, &xr, row).unwrap();
    }
    for r in 256..mat_rows * copies {
        w.copy_within((r % 256) * rb..(r % 256 + 1) * rb, r * rb);
    }
    (w, a, rb)
}

/// Alternated passes of each variant in the multi-thread memory A/B timings, of which each reports its best:
/// on a shared machine the fastest matrix is one during which both threads ran, as on a quiet machine.
#[cfg(target_arch = "x86_64")]
pub(crate) const AB_ROUNDS: usize = 25;

/// `f(matrix, rows, out)` of [`decode_split_pass`].
#[cfg(target_arch = "x86_64")]
pub(crate) type RowsOfMatrix<'a> = dyn Fn(&[u8], std::ops::Range<usize>, &mut [f32]) + Sync + 'a;

/// The fastest matrix (seconds) of one pass over the matrices of `w` (back to back, `mat_bytes` and
/// `mat_rows` rows each), each split across `pool` as decode splits a matrix (`matmul::matvec`: guided tasks
/// of whole 16-row passes): `f(matrix, rows, out)` computes `rows` of one matrix into `out`. For the ignored
/// multi-thread memory A/B timings, where both threads stream at once as in a decode step; timed matrix by
/// matrix (a millisecond or so each) so that a loaded machine still leaves some undisturbed.
#[cfg(target_arch = "x86_64")]
pub(crate) fn decode_split_pass(
    pool: &crate::pool::ThreadPool,
    w: &[u8],
    mat_bytes: usize,
    mat_rows: usize,
    f: &RowsOfMatrix<'_>,
) -> f64 {
    let mut bounds = Vec::new();
    crate::pool::guided_bounds(
        mat_rows,
        pool.n_threads(),
        crate::matmul::MATVEC_ALIGN,
        &mut bounds,
    );
    let mut out = vec![0f32; mat_rows];
    let mut best = f64::MAX;
    for m in w.chunks_exact(mat_bytes) {
        let t = std::time::Instant::now();
        pool.for_each_split_mut(&mut out, &bounds, 1, &|rows, o| f(m, rows, o));
        best = best.min(t.elapsed().as_secs_f64());
    }
    best
}

/// Nanoseconds this thread has run on a CPU (Linux; as `benches/quant.rs`).
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// Seconds per call of `f`, repeated for 50 ms: on-CPU time where the OS reports it, else wall time. (For the
/// ignored A/B timing tests of the x86 GEMMs.)
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) fn per_call(mut f: impl FnMut()) -> f64 {
    use std::time::{Duration, Instant};
    let (t, c) = (Instant::now(), thread_cpu_ns());
    let mut reps = 0u32;
    while reps == 0 || t.elapsed() < Duration::from_millis(50) {
        f();
        reps += 1;
    }
    let secs = match (c, thread_cpu_ns()) {
        (Some(c0), Some(c1)) if c1 > c0 => (c1 - c0) as f64 / 1e9,
        _ => t.elapsed().as_secs_f64(),
    };
    secs / reps as f64
}
