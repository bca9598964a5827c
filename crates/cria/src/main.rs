//! `cria`: run, serve and inspect LLaMA-family models from GGUF files.

mod commands;

use std::process::ExitCode;

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
    /// Answer one prompt, streaming the text (the model's chat template applies unless --raw).
    Run(commands::run::Args),
    /// Serve a model over an OpenAI-compatible HTTP API.
    Serve(commands::serve::Args),
    /// Chat with a model in the terminal.
    Chat(commands::chat::Args),
    /// Teacher-forced logits of token-id lines from stdin, as JSON lines.
    Eval(commands::eval::Args),
    /// Perplexity of a text file (llama-perplexity's method).
    Perplexity(commands::perplexity::Args),
    /// Show a GGUF file's architecture, metadata and tensors.
    Inspect(commands::inspect::Args),
    /// Fetch a known model (or list them).
    Pull(commands::pull::Args),
    /// List the models in cria's store ($CRIA_HOME/models): name, size, format, modified.
    List(commands::store::ListArgs),
    /// Remove a model from cria's store (never a file outside it).
    Rm(commands::store::RmArgs),
    /// Show the models a running `cria serve` has loaded (its /api/ps).
    Ps(commands::ps::Args),
    /// Print the token ids of text read from stdin.
    Tokenize(commands::tokenize::Args),
    /// Embeddings of stdin's lines with an encoder model (bert, nomic-bert), as JSON lines.
    Embed(commands::embed::Args),
    /// Prompt and generation speed (llama-bench's method) and decode's share of the read bandwidth.
    Bench(commands::bench::Args),
    /// List the GPU adapters `--device gpu:N` can name (type, driver, f16 and subgroup support).
    Devices(commands::devices::Args),
}

/// Exit codes: 0 done, 1 failed, 2 a bad setting (or bad arguments), 3 `serve`'s engine failed for good,
/// 4 `serve` stopped at its shutdown deadline with requests still running (they were ended with an error).
fn main() -> ExitCode {
    match run(Cli::parse().command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, never a backtrace: the chain of causes joined by ": ".
            eprintln!("cria: error: {e:#}");
            ExitCode::from(exit_code(&e))
        }
    }
}

fn exit_code(e: &anyhow::Error) -> u8 {
    if e.is::<commands::settings::SettingsError>() {
        return 2;
    }
    match e.downcast_ref::<cria_server::ServerError>() {
        Some(cria_server::ServerError::EngineFailed(_)) => 3,
        Some(cria_server::ServerError::ShutdownDeadline { .. }) => 4,
        _ => 1,
    }
}

fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Run(args) => commands::run::run(args),
        Command::Serve(args) => commands::serve::run(args),
        Command::Chat(args) => commands::chat::run(args),
        Command::Eval(args) => commands::eval::run(args),
        Command::Perplexity(args) => commands::perplexity::run(args),
        Command::Inspect(args) => commands::inspect::run(args),
        Command::Pull(args) => commands::pull::run(args),
        Command::List(args) => commands::store::list(args),
        Command::Rm(args) => commands::store::rm(args),
        Command::Ps(args) => commands::ps::run(args),
        Command::Tokenize(args) => commands::tokenize::run(args),
        Command::Embed(args) => commands::embed::run(args),
        Command::Bench(args) => commands::bench::run(args),
        Command::Devices(args) => commands::devices::run(args),
    }
}
