//! From per-token hidden states to one embedding per input, as llama.cpp pools them
//! (`llm_graph_context::build_pooling`) and `llama-embedding` normalises them (`common_embd_normalize`).

use cria_gguf::{GgufError, GgufFile};

use crate::ModelError;

/// How an input's token states become its embedding (`{arch}.pooling_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pooling {
    /// Every token's state (0).
    None,
    /// The average over the tokens (1).
    Mean,
    /// The first token's state, `[CLS]` (2).
    Cls,
    /// The last token's state (3).
    Last,
}

impl Pooling {
    /// The pooling a file asks for; `None` when the key is absent (llama.cpp's default). Rank pooling
    /// (4, rerankers) needs a classifier head Cria does not run.
    pub fn from_gguf(file: &GgufFile, key: &str) -> Result<Pooling, ModelError> {
        let value = match file.u32(key) {
            Ok(v) => v,
            Err(GgufError::MissingKey { .. }) => return Ok(Pooling::None),
            Err(e) => return Err(e.into()),
        };
        Pooling::from_id(value).ok_or_else(|| ModelError::BadHyperparameter {
            key: key.to_string(),
            why: format!("pooling type {value} is not none (0), mean (1), cls (2) or last (3)"),
        })
    }

    pub fn from_id(id: u32) -> Option<Pooling> {
        Some(match id {
            0 => Pooling::None,
            1 => Pooling::Mean,
            2 => Pooling::Cls,
            3 => Pooling::Last,
            _ => return None,
        })
    }

    /// Pools `states` (`n_tok` rows of `d`): one row of `d`, or every row for [`Pooling::None`].
    pub fn apply(self, states: &[f32], d: usize) -> Vec<f32> {
        let n_tok = states.len() / d.max(1);
        match self {
            Pooling::None => states.to_vec(),
            Pooling::Cls => states[..d.min(states.len())].to_vec(),
            Pooling::Last => states[(n_tok.saturating_sub(1)) * d..].to_vec(),
            Pooling::Mean => mean_rows(states, d, n_tok),
        }
    }
}

/// ggml's mean pooling: each row scaled by `1/n` and summed (a matmul with a column of `1/n`).
fn mean_rows(states: &[f32], d: usize, n_tok: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; d];
    let w = 1.0 / n_tok.max(1) as f32;
    for row in states.chunks_exact(d.max(1)) {
        for (o, &v) in out.iter_mut().zip(row) {
            *o += v * w;
        }
    }
    out
}

/// Scales `v` to unit Euclidean length (a zero vector stays zero), as `llama-embedding` does by default.
pub fn l2_normalize(v: &mut [f32]) {
    let norm = v
        .iter()
        .map(|&x| f64::from(x) * f64::from(x))
        .sum::<f64>()
        .sqrt();
    let scale = if norm > 0.0 { (1.0 / norm) as f32 } else { 0.0 };
    v.iter_mut().for_each(|x| *x *= scale);
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATES: [f32; 6] = [1.0, 2.0, 3.0, 4.0, 5.0, 9.0];

    #[test]
    fn pooling_picks_rows_and_averages() {
        assert_eq!(Pooling::Cls.apply(&STATES, 2), [1.0, 2.0]);
        assert_eq!(Pooling::Last.apply(&STATES, 2), [5.0, 9.0]);
        let mean = Pooling::Mean.apply(&STATES, 2);
        assert!(
            (mean[0] - 3.0).abs() < 1e-6 && (mean[1] - 5.0).abs() < 1e-6,
            "{mean:?}"
        );
        assert_eq!(Pooling::None.apply(&STATES, 2), STATES);
    }

    #[test]
    fn l2_normalize_gives_unit_length_and_keeps_zero() {
        let mut v = [3.0f32, 4.0];
        l2_normalize(&mut v);
        assert!((v[0] - 0.6).abs() < 1e-7 && (v[1] - 0.8).abs() < 1e-7);
        let mut z = [0.0f32; 3];
        l2_normalize(&mut z);
        assert_eq!(z, [0.0; 3]);
    }

    #[test]
    fn pooling_ids_follow_llama_cpp() {
        assert_eq!(Pooling::from_id(0), Some(Pooling::None));
        assert_eq!(Pooling::from_id(2), Some(Pooling::Cls));
        assert_eq!(Pooling::from_id(4), None);
    }
}
