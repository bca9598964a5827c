//! RMS normalisation (LLaMA, Gemma).

/// `out = x / sqrt(mean(x²) + eps) * weight`, over one row.
///
/// # Panics
/// If `weight` or `out` is not as long as `x`.
pub fn rms_norm(x: &[f32], weight: &[f32], eps: f32, out: &mut [f32]) {
    assert_eq!(x.len(), weight.len(), "rms_norm: weight length");
    assert_eq!(x.len(), out.len(), "rms_norm: out length");
    let scale = rms_scale(x, eps);
    for ((o, &v), &w) in out.iter_mut().zip(x).zip(weight) {
        *o = v * scale * w;
    }
}

/// [`rms_norm`] in place.
///
/// # Panics
/// If `weight` is not as long as `x`.
pub fn rms_norm_inplace(x: &mut [f32], weight: &[f32], eps: f32) {
    assert_eq!(x.len(), weight.len(), "rms_norm: weight length");
    let scale = rms_scale(x, eps);
    for (v, &w) in x.iter_mut().zip(weight) {
        *v = *v * scale * w;
    }
}

/// `1 / sqrt(mean(x²) + eps)`; 0-length rows give `1/sqrt(eps)`. In ggml's order
/// (`ggml_compute_forward_rms_norm_f32`): each square in f32, summed one after the other in f64, the mean
/// rounded to f32. A vector f32 sum is off by an ulp in a sixth of the outputs, which flips 8-bit roundings
/// of the next matmul's activations; with this order gemma-3's first layer norm is llama.cpp's to the bit.
fn rms_scale(x: &[f32], eps: f32) -> f32 {
    let n = x.len().max(1) as f64;
    let sum: f64 = x.iter().map(|&v| f64::from(v * v)).sum();
    let mean = (sum / n) as f32;
    1.0 / (mean + eps).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression (issue 13, gemma-3-270m's confident top-1 on AVX-512): the sum of squares is ggml's,
    /// sequential in f64, not an f32 sum (which here loses the small terms next to the large one).
    #[test]
    fn rms_norm_sums_squares_sequentially_in_f64_as_ggml() {
        let mut x = vec![4096.0f32];
        x.extend((0..639).map(|i| 0.01 + i as f32 * 1e-4));
        let w = vec![1.0; x.len()];
        let mut out = vec![0.0; x.len()];
        rms_norm(&x, &w, 1e-6, &mut out);
        let mut sum = 0.0f64;
        for &v in &x {
            sum += f64::from(v * v);
        }
        let scale = 1.0 / ((sum / x.len() as f64) as f32 + 1e-6).sqrt();
        let f32_sum: f32 = x.iter().map(|v| v * v).sum();
        assert_ne!(f32_sum as f64, sum, "the case must tell the two sums apart");
        for (o, v) in out.iter().zip(&x) {
            assert_eq!(o.to_bits(), (v * scale).to_bits());
        }
    }

    #[test]
    fn rms_norm_unit_weight_gives_unit_rms() {
        let x: Vec<f32> = (0..67).map(|i| (i as f32 * 0.37).sin() * 5.0).collect();
        let w = vec![1.0; x.len()];
        let mut out = vec![0.0; x.len()];
        rms_norm(&x, &w, 0.0, &mut out);
        let ms: f32 = out.iter().map(|v| v * v).sum::<f32>() / out.len() as f32;
        assert!((ms - 1.0).abs() < 1e-5, "mean square {ms}");
    }

    #[test]
    fn rms_norm_matches_inplace_and_applies_weight() {
        let x = [1.0f32, -2.0, 3.0, 4.0];
        let w = [0.5f32, 1.0, 2.0, -1.0];
        let mut out = [0.0; 4];
        rms_norm(&x, &w, 1e-6, &mut out);
        let rms = ((1.0 + 4.0 + 9.0 + 16.0) / 4.0f32 + 1e-6).sqrt();
        for i in 0..4 {
            assert!((out[i] - x[i] / rms * w[i]).abs() < 1e-6);
        }
        let mut y = x;
        rms_norm_inplace(&mut y, &w, 1e-6);
        assert_eq!(y, out);
    }
}
