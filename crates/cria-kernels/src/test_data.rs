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
