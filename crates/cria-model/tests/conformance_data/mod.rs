//! The conformance cases' data (`testdata/conformance*/<case>/`: model, tokens, llama.cpp's teacher-forced
//! logits) and the comparison with its bounds, shared by the CPU (`conformance.rs`) and GPU
//! (`conformance_gpu.rs`) runs.
//!
//! Over llama.cpp's top-20 ids of every position, after log-softmax: mean |Δ| ≤ 0.04, max |Δ| ≤ 0.5, and the
//! top-1 equal wherever llama.cpp's margin between its first two is at least 0.1.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use crate::common::{self, lse};

pub const MEAN_MAX: f64 = 0.04;
pub const MAX_MAX: f64 = 0.5;
pub const CONFIDENT_MARGIN: f64 = 0.1;
/// llama-ref-dump's context: RoPE variants that depend on it (LongRoPE's long factors) see the same.
pub const REF_CTX: usize = 4096;

pub fn suite_dir(suite: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata")
        .join(suite)
}

/// One position of llama.cpp's dump: log-sum-exp of the whole row and the top ids with their logits.
pub struct RefRow {
    pub lse: f64,
    pub top: Vec<(usize, f64)>,
}

pub fn read_reference(dir: &Path) -> Vec<RefRow> {
    let text = std::fs::read_to_string(dir.join("reference.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json.as_array()
        .unwrap()
        .iter()
        .map(|r| RefRow {
            lse: r["lse"].as_f64().unwrap(),
            top: r["top"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| (p[0].as_u64().unwrap() as usize, p[1].as_f64().unwrap()))
                .collect(),
        })
        .collect()
}

pub fn read_tokens(dir: &Path) -> Vec<u32> {
    std::fs::read_to_string(dir.join("tokens.txt"))
        .unwrap()
        .split_whitespace()
        .map(|t| t.parse().unwrap())
        .collect()
}

/// How one case's logits compare with llama.cpp's.
#[derive(Debug)]
pub struct Agreement {
    pub mean_abs: f64,
    pub max_abs: f64,
    /// Positions where llama.cpp is confident and Cria's top-1 differs.
    pub confident_misses: Vec<usize>,
}

pub fn agreement(reference: &[RefRow], logits: &[f32], n_vocab: usize) -> Agreement {
    let (mut sum, mut n, mut max_abs) = (0.0, 0usize, 0.0f64);
    let mut confident_misses = Vec::new();
    for (pos, (r, row)) in reference
        .iter()
        .zip(logits.chunks_exact(n_vocab))
        .enumerate()
    {
        let ours_lse = lse(row);
        for &(id, logit) in &r.top {
            let d = ((row[id] as f64 - ours_lse) - (logit - r.lse)).abs();
            sum += d;
            n += 1;
            max_abs = max_abs.max(d);
        }
        let margin = r.top[0].1 - r.top[1].1;
        if margin >= CONFIDENT_MARGIN && common::argmax(row) != r.top[0].0 {
            confident_misses.push(pos);
        }
    }
    Agreement {
        mean_abs: sum / n.max(1) as f64,
        max_abs,
        confident_misses,
    }
}

impl Agreement {
    /// Within the bounds.
    pub fn holds(&self) -> bool {
        self.mean_abs <= MEAN_MAX && self.max_abs <= MAX_MAX && self.confident_misses.is_empty()
    }
}

pub fn case_dirs(suite: &str) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(suite_dir(suite))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("model.gguf").exists())
        .collect();
    dirs.sort();
    dirs
}
