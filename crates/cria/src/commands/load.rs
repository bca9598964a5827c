//! What several commands share: the `-m` / `-t` arguments, loading a model, and small logit helpers.

use anyhow::Context;
use cria_model::{DeviceChoice, DeviceRunner, Model};

use super::settings;

/// The model a command runs and the threads it uses.
#[derive(clap::Args, Clone)]
pub struct ModelArgs {
    /// A GGUF file path, a known model name (pulled on first use) or hf:owner/repo/file.gguf.
    #[arg(short = 'm', long, default_value = "smollm2-135m-instruct")]
    pub model: String,
    /// Threads (default: all cores; more than the cores available are capped with a warning).
    #[arg(short = 't', long)]
    pub threads: Option<usize>,
    /// Where the model runs: auto (a hardware GPU when there is one, else the CPU), cpu, gpu (the first GPU,
    /// a software one too) or gpu:N (adapter N of `cria devices`). Without a usable GPU the CPU runs it, with
    /// one line saying why.
    #[arg(long, default_value = "auto", value_parser = parse_device)]
    pub device: DeviceChoice,
}

pub fn parse_device(s: &str) -> Result<DeviceChoice, String> {
    s.parse().map_err(|e: cria_gpu::GpuError| e.to_string())
}

impl ModelArgs {
    /// Checks the settings every model-running command shares (`CRIA_ISA`, `-t`, the shape of `-m`) before
    /// any work starts; returns the threads to run with.
    pub fn check(&self) -> anyhow::Result<usize> {
        settings::isa()?;
        let threads = settings::threads(self.threads)?;
        if settings::looks_like_path(&self.model) {
            settings::existing_file("-m", std::path::Path::new(&self.model))?;
        }
        Ok(threads)
    }
}

/// The runner `args.device` asks for (the CPU's with `threads` threads when no GPU can run the model; one
/// line on stderr says why where a GPU was asked for).
pub fn device_runner(args: &ModelArgs, model: &Model, threads: usize) -> DeviceRunner {
    let (runner, fallback) = DeviceRunner::open(model, threads, args.device);
    if let Some(why) = fallback {
        eprintln!("cria: --device: {why}");
    }
    runner
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
