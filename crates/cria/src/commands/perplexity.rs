//! `cria perplexity`: llama-perplexity's method over a text file.

use anyhow::Context;
use cria_model::{DeviceRunner, Logits, Model};
use cria_tokenizer::Tokenizer;

use super::load::{ModelArgs, device_runner, load_model, log_sum_exp};
use super::settings;

/// Arguments of `cria perplexity`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: ModelArgs,
    /// The text to score.
    #[arg(short = 'f', long)]
    file: std::path::PathBuf,
    /// Tokens per chunk.
    #[arg(long, default_value_t = 512)]
    ctx: usize,
    /// Print one JSON object instead of the per-chunk lines.
    #[arg(long)]
    json: bool,
}

/// The text tokenized whole, cut into chunks of `ctx` tokens (a trailing partial chunk dropped); in each chunk
/// every position from ctx/2 to ctx-2 predicts the next token (BOS replaces a chunk's first token when the model
/// adds BOS); PPL = exp(mean negative log-likelihood).
pub fn run(args: Args) -> anyhow::Result<()> {
    let threads = args.model.check()?;
    settings::at_least("--ctx", args.ctx, 4)?;
    settings::existing_file("-f", &args.file)?;
    let model = load_model(&args.model)?;
    let tokenizer = Tokenizer::from_gguf(model.gguf())?;
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("reading {}", args.file.display()))?;
    let tokens = tokenizer.encode(&text, true, false);
    let n_chunks = tokens.len() / args.ctx;
    anyhow::ensure!(
        n_chunks > 0,
        "the text has {} tokens, fewer than one chunk of {}",
        tokens.len(),
        args.ctx
    );
    let bos = tokenizer.bos().filter(|b| tokens.first() == Some(b));
    let mut runner = device_runner(&args.model, &model, threads);
    let (mut nll, mut count) = (0.0f64, 0usize);
    for c in 0..n_chunks {
        let mut chunk = tokens[c * args.ctx..(c + 1) * args.ctx].to_vec();
        if let Some(b) = bos {
            chunk[0] = b;
        }
        let (sum, n) = score_chunk(&model, &mut runner, &chunk)?;
        nll += sum;
        count += n;
        if !args.json {
            println!("[{}] {:.4}", c + 1, (nll / count as f64).exp());
        }
    }
    let ppl = (nll / count as f64).exp();
    if args.json {
        let json = serde_json::json!({
            "ppl": ppl, "n_ctx": args.ctx, "chunks": n_chunks, "tokens": tokens.len(), "predictions": count
        });
        println!("{json}");
    } else {
        println!("PPL = {ppl:.4}");
    }
    Ok(())
}

/// Negative log-likelihood summed over the second half of a chunk, and how many predictions it holds.
fn score_chunk(
    model: &Model,
    runner: &mut DeviceRunner,
    chunk: &[u32],
) -> anyhow::Result<(f64, usize)> {
    let first = chunk.len() / 2;
    let mut cache = runner.new_cache(model, chunk.len())?;
    let (head, tail) = chunk.split_at(first);
    runner.forward(model, &mut cache, head, Logits::None)?;
    let logits = runner.forward(model, &mut cache, tail, Logits::All)?;
    let mut nll = 0.0;
    let rows = logits.chunks_exact(model.n_vocab());
    // Row i (position first + i) predicts chunk[first + i + 1]; the last row predicts nothing.
    for (row, &next) in rows.zip(&tail[1..]) {
        nll += log_sum_exp(row) - row[next as usize] as f64;
    }
    Ok((nll, tail.len() - 1))
}
