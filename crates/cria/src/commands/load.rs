//! What several commands share: the `-m` / `-t` arguments, loading a model, and small logit helpers.

use anyhow::Context;
use cria_model::Model;

/// The model a command runs and the threads it uses.
#[derive(clap::Args, Clone)]
pub struct ModelArgs {
    /// A GGUF file path, a known model name (pulled on first use) or hf:owner/repo/file.gguf.
    #[arg(short = 'm', long, default_value = "smollm2-135m-instruct")]
    pub model: String,
    /// Threads (default: all cores).
    #[arg(short = 't', long)]
    pub threads: Option<usize>,
}

impl ModelArgs {
    /// Threads to run with.
    pub fn threads(&self) -> usize {
        self.threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
            .max(1)
    }
}

/// Resolves and loads the model `args` names.
pub fn load_model(args: &ModelArgs) -> anyhow::Result<Model> {
    let path = super::pull::resolve_model(&args.model)?;
    Model::load(&path).with_context(|| format!("loading {}", path.display()))
}

/// log(sum(exp(row))), computed stably in f64.
pub fn log_sum_exp(row: &[f32]) -> f64 {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    max + row
        .iter()
        .map(|&l| (l as f64 - max).exp())
        .sum::<f64>()
        .ln()
}

/// The `k` largest logits, best first, ties broken by the lower id.
pub fn top_k(row: &[f32], k: usize) -> Vec<(u32, f32)> {
    let mut ids: Vec<u32> = (0..row.len() as u32).collect();
    let k = k.min(ids.len());
    let by_logit = |a: &u32, b: &u32| row[*b as usize].total_cmp(&row[*a as usize]).then(a.cmp(b));
    if k < ids.len() {
        ids.select_nth_unstable_by(k, by_logit);
        ids.truncate(k);
    }
    ids.sort_by(by_logit);
    ids.into_iter().map(|id| (id, row[id as usize])).collect()
}
