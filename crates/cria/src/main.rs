//! `cria`: run, serve and inspect LLaMA-family models from GGUF files.

use clap::{Parser, Subcommand};

/// Cria: a memory-safe engine for the open LLaMA family of models.
#[derive(Parser)]
#[command(name = "cria", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {}
}
