//! `cria eval`: teacher-forced logits of token sequences, in the format of llama.cpp's reference dumps.

use std::io::{BufRead, Write};

use anyhow::Context;
use cria_model::Logits;
use serde_json::json;

use super::load::{ModelArgs, device_runner, load_model};

/// Arguments of `cria eval`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: ModelArgs,
    /// Logits reported per position, best first.
    #[arg(long, default_value_t = 20)]
    top_k: usize,
}

/// Reads lines of space-separated token ids from stdin; for each, feeds all tokens in one batch and prints one
/// JSON array with, per position, `{"lse": log-sum-exp of all logits, "top": [[id, logit], ...]}`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let threads = args.model.check()?;
    let model = load_model(&args.model)?;
    let mut runner = device_runner(&args.model, &model, threads);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for (n, line) in std::io::stdin().lock().lines().enumerate() {
        let line = line.context("reading stdin")?;
        let tokens = parse_ids(&line).with_context(|| format!("line {}", n + 1))?;
        if tokens.is_empty() {
            writeln!(out, "[]")?;
            continue;
        }
        let mut cache = runner.new_cache(&model, tokens.len())?;
        let logits = runner.forward(&model, &mut cache, &tokens, Logits::All)?;
        let positions: Vec<_> = logits
            .chunks_exact(model.n_vocab())
            .map(|row| position_json(row, args.top_k))
            .collect();
        writeln!(out, "{}", serde_json::Value::Array(positions))?;
    }
    Ok(())
}

fn parse_ids(line: &str) -> anyhow::Result<Vec<u32>> {
    line.split_whitespace()
        .map(|t| {
            t.parse::<u32>()
                .with_context(|| format!("'{t}' is not a token id"))
        })
        .collect()
}

fn position_json(row: &[f32], k: usize) -> serde_json::Value {
    let top: Vec<_> = crate::commands::load::top_k(row, k)
        .into_iter()
        .map(|(id, logit)| json!([id, logit]))
        .collect();
    json!({ "lse": crate::commands::load::log_sum_exp(row), "top": top })
}
