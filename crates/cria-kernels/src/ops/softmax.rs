//! Numerically stable softmax.

/// `x = exp(x - max) / sum`, in place. `-inf` entries become 0; an all-`-inf` row becomes all zeros
/// rather than NaN.
pub fn softmax_inplace(x: &mut [f32]) {
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if max == f32::NEG_INFINITY {
        x.fill(0.0);
        return;
    }
    let sum = super::simd::kernels().exp_sub_sum(x, max);
    let inv = 1.0 / sum;
    for v in x.iter_mut() {
        *v *= inv;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_sums_to_one_and_orders() {
        let mut x = [1.0f32, 2.0, 3.0, 1000.0, -1000.0];
        softmax_inplace(&mut x);
        let sum: f32 = x.iter().sum();
        assert!((sum - 1.0).abs() < 1e-6);
        assert!(x[3] > 0.99 && x[4] == 0.0);
        let mut y = [0.0f32, 1.0f32.ln()];
        softmax_inplace(&mut y);
        assert!((y[0] - 0.5).abs() < 1e-7);
    }

    #[test]
    fn softmax_masked_entries_are_zero() {
        let mut x = [f32::NEG_INFINITY, 0.0, f32::NEG_INFINITY, 0.0];
        softmax_inplace(&mut x);
        assert_eq!(x, [0.0, 0.5, 0.0, 0.5]);
        let mut all = [f32::NEG_INFINITY; 3];
        softmax_inplace(&mut all);
        assert_eq!(all, [0.0; 3]);
    }
}
