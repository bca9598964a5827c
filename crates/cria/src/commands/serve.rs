//! `cria serve`: the OpenAI-compatible HTTP server.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use cria_engine::{Engine, EngineConfig, ModelBackend};
use cria_model::Model;
use cria_server::{Loaded, ServerConfig, TokenizerFrontend};
use cria_tokenizer::{BuiltinTemplate, ChatTemplate, Tokenizer};

use super::load::ModelArgs;

/// Arguments of `cria serve`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: ModelArgs,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port to listen on.
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Sequences decoded together (continuous batching).
    #[arg(long, default_value_t = 8)]
    parallel: usize,
    /// Context per sequence, in tokens (prompt and generation); capped at the model's training context.
    #[arg(long, default_value_t = 4096)]
    ctx: usize,
    /// Require `Authorization: Bearer KEY` on /v1/* and /metrics (or set CRIA_API_KEY).
    #[arg(long)]
    api_key: Option<String>,
    /// Requests that may wait for a free sequence before new ones get 429.
    #[arg(long, default_value_t = 64)]
    max_queue: usize,
    /// Tokens fed per engine step across the batch (bounds the stall a long prompt causes to decoding).
    #[arg(long, default_value_t = 128)]
    step_tokens: usize,
    /// The model name clients use (default: the GGUF file's name without .gguf).
    #[arg(long)]
    alias: Option<String>,
    /// Use a built-in chat template instead of the model's: chatml, llama2, alpaca, vicuna, gemma.
    #[arg(long)]
    chat_template: Option<BuiltinTemplate>,
    /// Largest request body, in bytes.
    #[arg(long, default_value_t = 4 << 20)]
    body_limit: usize,
    /// Seconds running requests get to finish after SIGINT/SIGTERM.
    #[arg(long, default_value_t = 30)]
    shutdown_timeout: u64,
}

/// Runs `cria serve`.
pub fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(args.parallel >= 1, "--parallel must be at least 1");
    anyhow::ensure!(args.ctx >= 16, "--ctx must be at least 16");
    let path = super::pull::resolve_model(&args.model.model)?;
    let model_id = args.alias.clone().unwrap_or_else(|| {
        path.file_stem().map_or_else(
            || args.model.model.clone(),
            |s| s.to_string_lossy().into_owned(),
        )
    });
    let config = ServerConfig {
        host: args.host.clone(),
        port: args.port,
        model_id: model_id.clone(),
        api_key: args
            .api_key
            .clone()
            .or_else(|| std::env::var("CRIA_API_KEY").ok())
            .filter(|k| !k.is_empty()),
        body_limit: args.body_limit,
        shutdown_timeout: Duration::from_secs(args.shutdown_timeout),
    };
    eprintln!(
        "cria serve: {model_id} on http://{}:{} (loading {})",
        args.host,
        args.port,
        path.display()
    );
    let load = move || load(&path, &args).map_err(|e| format!("{e:#}"));
    cria_server::serve(config, load)?;
    eprintln!("cria serve: stopped");
    Ok(())
}

/// Loads the model, tokenizer and template, and starts the engine.
fn load(path: &std::path::Path, args: &Args) -> anyhow::Result<Loaded> {
    let model = Arc::new(Model::load(path).with_context(|| format!("loading {}", path.display()))?);
    let tokenizer = Arc::new(Tokenizer::from_gguf(model.gguf())?);
    let template = ChatTemplate::for_model(&tokenizer, &model.spec().arch, args.chat_template)?;
    let ctx = args.ctx.min(model.n_ctx_train().max(16));
    let engine_config = EngineConfig {
        parallel: args.parallel,
        ctx,
        max_queue: args.max_queue,
        step_tokens: args.step_tokens.max(1),
        ..EngineConfig::default()
    };
    let (parallel, threads) = (args.parallel, args.model.threads());
    let backend_model = Arc::clone(&model);
    let engine = Engine::start(engine_config, tokenizer.clone(), move || {
        Ok(ModelBackend::new(backend_model, parallel, ctx, threads))
    })?;
    eprintln!(
        "cria serve: ready ({} x {ctx} tokens, {threads} threads)",
        args.parallel
    );
    Ok(Loaded {
        engine: Arc::new(engine),
        frontend: Arc::new(TokenizerFrontend::new(tokenizer, template)),
    })
}
