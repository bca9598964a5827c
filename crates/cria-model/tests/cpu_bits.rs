//! The CPU backend keeps the CPU runner's results bit for bit: digests of the logits (and hidden states) of a
//! fixed scenario on both reference models and every conformance case, compared with the digests the CPU
//! runner gave before the decoder block moved behind `cria_kernels::backend` (recorded from commit f1677f8
//! with `CRIA_BITS_PRINT=1`, per instruction-set path, in `testdata/cpu_bits/digests.json`). gemma-3-270m's
//! digests were recorded again when the repacked Q4_K one-token kernel took the four-token summation order
//! (batch invariance for the prompt cache), which changes its bits on purpose; every other entry is still
//! f1677f8's.
//!
//! The kernels' bits differ between instruction-set paths (each sums in its own order), so a digest holds
//! only on the path it was recorded on: on a path without a record the test prints its digests and passes.
//! The scalar path (`CRIA_ISA=scalar`) is the same on every CPU.

#![allow(clippy::unwrap_used)] // tests fail loudly on bad fixtures

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use common::*;
use cria_model::{Logits, Model, Runner, SeqBatch};

fn fnv(h: &mut u64, v: &[f32]) {
    for x in v {
        for b in x.to_bits().to_le_bytes() {
            *h ^= u64::from(b);
            *h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

fn ids(model: &Model, seed: usize, n: usize) -> Vec<u32> {
    (0..n)
        .map(|i| ((seed + i * 7919) % model.n_vocab()) as u32)
        .collect()
}

/// Two sequences prefilled in one step (every logit of one), a 70-token prompt (past the fused matmul's
/// 64 tokens) beside them, three batched decode steps, then a fresh sequence's hidden states.
fn scenario(model: &Model) -> String {
    let mut runner = Runner::new(model, 2);
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    let (a, b, c) = (ids(model, 11, 12), ids(model, 5, 5), ids(model, 23, 70));
    let (mut ca, mut cb, mut cc) = (
        model.new_cache(96),
        model.new_cache(96),
        model.new_cache(96),
    );
    let out = runner
        .forward(
            model,
            &mut [
                SeqBatch {
                    cache: &mut ca,
                    tokens: &a,
                    logits: Logits::All,
                },
                SeqBatch {
                    cache: &mut cb,
                    tokens: &b,
                    logits: Logits::Last,
                },
                SeqBatch {
                    cache: &mut cc,
                    tokens: &c,
                    logits: Logits::Last,
                },
            ],
        )
        .unwrap();
    out.iter().for_each(|o| fnv(&mut h, o));
    for step in 0..3 {
        let (ta, tb) = ([a[step]], [b[step]]);
        let out = runner
            .forward(
                model,
                &mut [
                    SeqBatch {
                        cache: &mut ca,
                        tokens: &ta,
                        logits: Logits::Last,
                    },
                    SeqBatch {
                        cache: &mut cb,
                        tokens: &tb,
                        logits: Logits::Last,
                    },
                ],
            )
            .unwrap();
        out.iter().for_each(|o| fnv(&mut h, o));
    }
    let mut cd = model.new_cache(8);
    let hidden = runner
        .hidden_states(
            model,
            &mut [SeqBatch {
                cache: &mut cd,
                tokens: &ids(model, 3, 6),
                logits: Logits::None,
            }],
        )
        .unwrap();
    hidden.iter().for_each(|o| fnv(&mut h, o));
    format!("{h:016x}")
}

/// The active path and the dot-product extensions that change its bits.
fn path_key() -> String {
    let isa = cria_kernels::isa::active().name();
    #[cfg(target_arch = "x86_64")]
    {
        let vnni = if isa == "avx512" {
            std::arch::is_x86_feature_detected!("avx512vnni")
        } else {
            std::arch::is_x86_feature_detected!("avxvnni") && !cria_kernels::isa::avxvnni_refused()
        };
        if isa != "scalar" && vnni {
            return format!("{isa}+vnni");
        }
    }
    isa.to_string()
}

fn conformance_cases() -> Vec<(String, PathBuf)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/conformance");
    let mut cases: Vec<(String, PathBuf)> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            let path = e.ok()?.path().join("model.gguf");
            let name = path.parent()?.file_name()?.to_str()?.to_string();
            path.exists()
                .then_some((format!("conformance/{name}"), path))
        })
        .collect();
    cases.sort();
    cases
}

#[test]
fn cpu_backend_logits_equal_the_cpu_runner_before_the_seam_bit_for_bit() {
    let mut got = BTreeMap::new();
    for (name, _) in MODELS {
        let Some(model) = load(name) else { return };
        got.insert(name.to_string(), scenario(&model));
    }
    for (name, path) in conformance_cases() {
        got.insert(name, scenario(&Model::load(&path).unwrap()));
    }
    let key = path_key();
    if std::env::var_os("CRIA_BITS_PRINT").is_some() {
        println!("{}", serde_json::json!({ key.clone(): got }));
    }
    let file =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/cpu_bits/digests.json");
    let all: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    let Some(want) = all.get(&key) else {
        eprintln!("no digests recorded for the {key} path: {got:?}");
        return;
    };
    for (name, digest) in &got {
        let recorded = want.get(name).and_then(|v| v.as_str());
        assert_eq!(recorded, Some(digest.as_str()), "{name} on {key}");
    }
}

/// A one-token decode step of one sequence forks the pool at most five times a layer (Q/K/V; attention; O;
/// gate/up with their activation; down) and once for the output matrix: every per-row op of a decode token
/// (norms, RoPE, KV store, residual adds, the activation) runs inside those dispatches or inline. On the
/// reference models (quantized layers; f32 / f16 matrices take one matmul each instead of the fused loops).
#[test]
fn one_token_decode_forks_the_pool_at_most_five_times_a_layer() {
    for (name, _) in MODELS {
        let Some(model) = load(name) else { return };
        let mut runner = Runner::new(&model, 2);
        let mut cache = model.new_cache(8);
        let prompt = ids(&model, 1, 3);
        let mut step = |tokens: &[u32]| {
            let before = runner.pool().forks();
            let batch = SeqBatch {
                cache: &mut cache,
                tokens,
                logits: Logits::Last,
            };
            runner.forward(&model, &mut [batch]).unwrap();
            runner.pool().forks() - before
        };
        step(&prompt);
        let forks = step(&prompt[..1]);
        let bound = 5 * model.spec().n_layer as u64 + 1;
        assert!(forks <= bound, "{name}: {forks} forks, bound {bound}");
        eprintln!("{name}: {forks} pool forks for one decode token");
    }
}
