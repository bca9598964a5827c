//! `cria tokenize`: the token ids of text, exactly as llama.cpp's tokenizer gives them.

use std::io::{BufRead, BufWriter, Read, Write};

use anyhow::Context;
use cria_gguf::GgufFile;
use cria_tokenizer::Tokenizer;
use serde::{Deserialize, Serialize};

/// Arguments of `cria tokenize`.
#[derive(clap::Args)]
pub struct Args {
    /// A GGUF file, or a known model's name.
    #[arg(short, long)]
    pub model: String,
    /// Add BOS/EOS as the model's metadata asks.
    #[arg(long)]
    pub add_special: bool,
    /// Turn the text of special tokens (`<|im_start|>`) into those tokens.
    #[arg(long)]
    pub parse_special: bool,
    /// Read JSON lines `{"text", "add_special", "parse_special"}` from stdin and print `{"ids": [...]}`
    /// for each, in order; a line's missing flags default to the command line's.
    #[arg(long)]
    pub jsonl: bool,
}

#[derive(Deserialize)]
struct Request {
    text: String,
    add_special: Option<bool>,
    parse_special: Option<bool>,
}

#[derive(Serialize)]
struct Response<'a> {
    ids: &'a [u32],
}

/// Runs `cria tokenize`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let path = super::pull::resolve_model(&args.model)?;
    let file = GgufFile::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
    let tok = Tokenizer::from_gguf(&file)
        .with_context(|| format!("cannot load the tokenizer of {}", path.display()))?;
    let stdin = std::io::stdin().lock();
    let mut out = BufWriter::new(std::io::stdout().lock());
    if args.jsonl {
        run_jsonl(&tok, &args, stdin, &mut out)?;
    } else {
        let mut text = String::new();
        let mut stdin = stdin;
        stdin
            .read_to_string(&mut text)
            .context("stdin is not UTF-8 text")?;
        let ids = tok.encode(&text, args.add_special, args.parse_special);
        serde_json::to_writer(&mut out, &ids)?;
        writeln!(out)?;
    }
    out.flush()?;
    Ok(())
}

fn run_jsonl(
    tok: &Tokenizer,
    args: &Args,
    input: impl BufRead,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    for (n, line) in input.lines().enumerate() {
        let line = line.context("cannot read stdin")?;
        if line.trim().is_empty() {
            continue;
        }
        let req: Request = serde_json::from_str(&line)
            .with_context(|| format!("line {}: not a request", n + 1))?;
        let add_special = req.add_special.unwrap_or(args.add_special);
        let parse_special = req.parse_special.unwrap_or(args.parse_special);
        let ids = tok.encode(&req.text, add_special, parse_special);
        serde_json::to_writer(&mut *out, &Response { ids: &ids })?;
        writeln!(out)?;
        // one answer per line as it comes, so a caller can drive the command line by line
        out.flush()?;
    }
    Ok(())
}
