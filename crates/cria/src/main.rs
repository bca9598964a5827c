//! `cria`: run, serve and inspect LLaMA-family models from GGUF files.

mod commands;

use clap::{Parser, Subcommand};

/// Cria: a memory-safe engine for the open LLaMA family of models.
#[derive(Parser)]
#[command(name = "cria", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show a GGUF file's architecture, metadata and tensors.
    Inspect(commands::inspect::Args),
    /// Fetch a known model (or list them).
    Pull(commands::pull::Args),
    /// Print the token ids of text read from stdin.
    Tokenize(commands::tokenize::Args),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Inspect(args) => commands::inspect::run(args),
        Command::Pull(args) => commands::pull::run(args),
        Command::Tokenize(args) => commands::tokenize::run(args),
    }
}
