//! Layer normalisation with weight and bias (BERT-style encoders), as ggml's `norm` then `mul` and `add`.

/// `out = (x - mean(x)) / sqrt(var(x) + eps) * weight + bias`, over one row. Mean and variance are summed in
/// f64 (as ggml sums them in `ggml_float`); the variance is the population one (divided by the length).
///
/// # Panics
/// If `weight`, `bias` or `out` is not as long as `x`.
pub fn layer_norm(x: &[f32], weight: &[f32], bias: &[f32], eps: f32, out: &mut [f32]) {
    assert_eq!(x.len(), weight.len(), "layer_norm: weight length");
    assert_eq!(x.len(), bias.len(), "layer_norm: bias length");
    assert_eq!(x.len(), out.len(), "layer_norm: out length");
    let (mean, scale) = mean_and_scale(x, eps);
    for (((o, &v), &w), &b) in out.iter_mut().zip(x).zip(weight).zip(bias) {
        *o = (v - mean) * scale * w + b;
    }
}

/// [`layer_norm`] in place.
///
/// # Panics
/// If `weight` or `bias` is not as long as `x`.
pub fn layer_norm_inplace(x: &mut [f32], weight: &[f32], bias: &[f32], eps: f32) {
    assert_eq!(x.len(), weight.len(), "layer_norm: weight length");
    assert_eq!(x.len(), bias.len(), "layer_norm: bias length");
    let (mean, scale) = mean_and_scale(x, eps);
    for ((v, &w), &b) in x.iter_mut().zip(weight).zip(bias) {
        *v = (*v - mean) * scale * w + b;
    }
}

/// The row's mean and `1 / sqrt(variance + eps)`; an empty row gives `(0, 1/sqrt(eps))`.
fn mean_and_scale(x: &[f32], eps: f32) -> (f32, f32) {
    let n = x.len().max(1) as f64;
    let mean = (x.iter().map(|&v| f64::from(v)).sum::<f64>() / n) as f32;
    let sum_sq: f64 = x
        .iter()
        .map(|&v| {
            let d = f64::from(v - mean);
            d * d
        })
        .sum();
    let variance = (sum_sq / n) as f32;
    (mean, 1.0 / (variance + eps).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_norm_unit_weight_gives_zero_mean_unit_variance() {
        let x: Vec<f32> = (0..67)
            .map(|i| (i as f32 * 0.37).sin() * 5.0 + 3.0)
            .collect();
        let (w, b) = (vec![1.0; x.len()], vec![0.0; x.len()]);
        let mut out = vec![0.0; x.len()];
        layer_norm(&x, &w, &b, 0.0, &mut out);
        let n = out.len() as f32;
        let mean: f32 = out.iter().sum::<f32>() / n;
        let var: f32 = out.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
        assert!(mean.abs() < 1e-5, "mean {mean}");
        assert!((var - 1.0).abs() < 1e-4, "variance {var}");
    }

    #[test]
    fn layer_norm_matches_the_formula_and_inplace() {
        let x = [1.0f32, -2.0, 3.0, 4.0];
        let w = [0.5f32, 1.0, 2.0, -1.0];
        let b = [0.1f32, 0.0, -0.2, 0.3];
        let eps = 1e-5;
        let mut out = [0.0; 4];
        layer_norm(&x, &w, &b, eps, &mut out);
        let mean = 6.0 / 4.0;
        let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / 4.0;
        for i in 0..4 {
            let want = (x[i] - mean) / (var + eps).sqrt() * w[i] + b[i];
            assert!((out[i] - want).abs() < 1e-6, "{i}: {} vs {want}", out[i]);
        }
        let mut y = x;
        layer_norm_inplace(&mut y, &w, &b, eps);
        assert_eq!(y, out);
    }
}
