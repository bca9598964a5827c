//! `cria embed`: embeddings of text lines with an encoder model (`bert`, `nomic-bert`), as llama.cpp's
//! `llama-embedding` computes them (each line tokenized with special tokens added and parsed, the model's
//! pooling, L2 normalisation).

use std::io::{BufRead, BufWriter, Write};

use anyhow::{Context, bail};
use cria_gguf::GgufFile;
use cria_model::{Encoder, Pooling};
use cria_tokenizer::Tokenizer;

/// Arguments of `cria embed`.
#[derive(clap::Args)]
pub struct Args {
    /// A GGUF encoder file (bert, nomic-bert), or a known model's name.
    #[arg(short, long)]
    pub model: String,
    /// Threads (default: all cores).
    #[arg(short = 't', long)]
    pub threads: Option<usize>,
    /// Pooling instead of the model's: none (every token), mean, cls or last.
    #[arg(long, value_parser = parse_pooling)]
    pub pooling: Option<Pooling>,
    /// Print the vectors as pooled, without scaling them to unit length.
    #[arg(long)]
    pub no_normalize: bool,
}

pub(crate) fn parse_pooling(s: &str) -> Result<Pooling, String> {
    match s {
        "none" => Ok(Pooling::None),
        "mean" => Ok(Pooling::Mean),
        "cls" => Ok(Pooling::Cls),
        "last" => Ok(Pooling::Last),
        other => Err(format!("'{other}' is not none, mean, cls or last")),
    }
}

/// Runs `cria embed`: one JSON line `{"index", "embedding"}` per stdin line (with `--pooling none`,
/// `embedding` is a list of per-token vectors).
pub fn run(args: Args) -> anyhow::Result<()> {
    let path = super::pull::resolve_model(&args.model)?;
    let file = GgufFile::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
    let tok = Tokenizer::from_gguf(&file)
        .with_context(|| format!("cannot load the tokenizer of {}", path.display()))?;
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let enc =
        Encoder::from_gguf(file, threads).with_context(|| format!("loading {}", path.display()))?;
    let pooling = args.pooling.unwrap_or(enc.spec().pooling);
    let mut out = BufWriter::new(std::io::stdout().lock());
    for (index, line) in std::io::stdin().lock().lines().enumerate() {
        let line = line.context("cannot read stdin as UTF-8 lines")?;
        let ids = tok.encode(&line, true, true);
        if ids.is_empty() {
            bail!("line {}: no tokens", index + 1);
        }
        let mut v = enc
            .embed_with(&ids, pooling)
            .with_context(|| format!("line {}", index + 1))?;
        if !args.no_normalize {
            v.chunks_mut(enc.n_embd())
                .for_each(cria_model::encoder::l2_normalize);
        }
        write_line(&mut out, index, &v, pooling, enc.n_embd())?;
    }
    out.flush()?;
    Ok(())
}

fn write_line(
    out: &mut impl Write,
    index: usize,
    v: &[f32],
    pooling: Pooling,
    d: usize,
) -> anyhow::Result<()> {
    let embedding = if pooling == Pooling::None {
        serde_json::to_value(v.chunks(d).collect::<Vec<_>>())?
    } else {
        serde_json::to_value(v)?
    };
    serde_json::to_writer(
        &mut *out,
        &serde_json::json!({ "index": index, "embedding": embedding }),
    )?;
    writeln!(out)?;
    Ok(())
}
