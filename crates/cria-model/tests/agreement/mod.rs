//! The agreement of a forward pass with llama.cpp's logits on the two reference models
//! (`testdata/reference/*/logits.jsonl`, teacher-forced, each prompt in one batch), shared by the CPU parity
//! test and the GPU one.

#![allow(clippy::unwrap_used)] // tests fail loudly on bad fixtures
#![allow(dead_code)]

use cria_model::Model;

use crate::common::*;

pub struct Agreement {
    positions: usize,
    top1_equal: usize,
    confident: usize,
    confident_equal: usize,
    kl_sum: f64,
}

/// KL(reference || ours) over the reference's top-20, each side renormalised over those ids.
pub fn kl_top(reference: &[(usize, f64)], ref_lse: f64, ours: &[f32], our_lse: f64) -> f64 {
    let p: Vec<f64> = reference
        .iter()
        .map(|&(_, l)| (l - ref_lse).exp())
        .collect();
    let q: Vec<f64> = reference
        .iter()
        .map(|&(id, _)| (ours[id] as f64 - our_lse).exp())
        .collect();
    let (ps, qs): (f64, f64) = (p.iter().sum(), q.iter().sum());
    p.iter()
        .zip(&q)
        .map(|(p, q)| (p / ps) * ((p / ps) / (q / qs)).ln())
        .sum()
}

/// The agreement of `forward` (all logits rows of a prompt, run in one batch) with llama.cpp's reference
/// logits for `model`, named `name` in messages, over the prompts of at most `max_len` tokens.
pub fn compare(
    model: &Model,
    (name, folder): (&str, &str),
    max_len: usize,
    forward: &mut dyn FnMut(&Model, &[u32]) -> Vec<f32>,
) -> Agreement {
    let mut a = Agreement {
        positions: 0,
        top1_equal: 0,
        confident: 0,
        confident_equal: 0,
        kl_sum: 0.0,
    };
    for case in read_jsonl(&reference_file(folder, "logits.jsonl")) {
        let tokens = ids(&case["tokens"]);
        if tokens.len() > max_len {
            continue;
        }
        let logits = forward(model, &tokens);
        for (pos, row) in logits.chunks_exact(model.n_vocab()).enumerate() {
            let r = &case["positions"][pos];
            let top: Vec<(usize, f64)> = r["top"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| (p[0].as_u64().unwrap() as usize, p[1].as_f64().unwrap()))
                .collect();
            let ours = argmax(row);
            a.positions += 1;
            a.top1_equal += usize::from(ours == top[0].0);
            if ours != top[0].0 && std::env::var_os("CRIA_PARITY_VERBOSE").is_some() {
                eprintln!(
                    "pos {pos}: ref {:?} margin {:.3}, ours {ours} ({:.3} vs ref-top {:.3})",
                    top[0],
                    top[0].1 - top[1].1,
                    row[ours],
                    row[top[0].0]
                );
            }
            if top[0].1 - top[1].1 >= 0.5 {
                a.confident += 1;
                a.confident_equal += usize::from(ours == top[0].0);
            }
            a.kl_sum += kl_top(&top, r["lse"].as_f64().unwrap(), row, lse(row));
        }
    }
    let kl = a.kl_sum / a.positions as f64;
    eprintln!(
        "{name}: top-1 {}/{} ({:.1}%), confident {}/{}, mean KL {kl:.5}",
        a.top1_equal,
        a.positions,
        100.0 * a.top1_equal as f64 / a.positions as f64,
        a.confident_equal,
        a.confident
    );
    a
}

/// Asserts the reference README's bounds on [`compare`]'s result.
pub fn assert_parity(
    model: &Model,
    (name, folder): (&str, &str),
    max_len: usize,
    forward: &mut dyn FnMut(&Model, &[u32]) -> Vec<f32>,
) {
    let a = compare(model, (name, folder), max_len, forward);
    assert_eq!(
        a.confident_equal, a.confident,
        "top-1 must match wherever llama.cpp's margin is >= 0.5"
    );
    assert!(
        a.top1_equal as f64 >= 0.95 * a.positions as f64,
        "top-1 agreement below 95%"
    );
    assert!(a.kl_sum / a.positions as f64 <= 0.01, "mean KL above 0.01");
}
