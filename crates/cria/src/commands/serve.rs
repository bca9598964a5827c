//! `cria serve`: the OpenAI-compatible HTTP server.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use cria_engine::{Engine, EngineConfig, FAULT_ENV, FaultPlan, ModelBackend};
use cria_model::Model;
use cria_server::{Loaded, ServerConfig, TokenizerFrontend};
use cria_tokenizer::{BuiltinTemplate, ChatTemplate, Tokenizer};

use super::generate::MIN_CTX;
use super::load::ModelArgs;
use super::settings;

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
    /// Seconds running requests get to finish after SIGINT/SIGTERM; those still running then end with an
    /// error (a 503, or an error event and [DONE] on a stream) and cria exits with code 4.
    #[arg(long, default_value_t = 30)]
    shutdown_timeout: u64,
    /// Seconds a client has to send a whole request head (from connecting, or from its first byte after
    /// an idle spell); then the connection is closed.
    #[arg(long, default_value_t = 10)]
    header_timeout: u64,
    /// Seconds a request body may pause between two pieces; then the request gets 408 and the connection
    /// is closed.
    #[arg(long, default_value_t = 10)]
    body_timeout: u64,
    /// Seconds a whole request body may take to arrive (a body that trickles in slowly gets 408).
    #[arg(long, default_value_t = 60)]
    body_total_timeout: u64,
    /// Seconds an idle kept-alive connection stays open.
    #[arg(long, default_value_t = 60)]
    keep_alive_timeout: u64,
    /// Connections open at once; one more gets 503 and is closed.
    #[arg(long, default_value_t = 512)]
    max_connections: usize,
    /// Do not serve the web chat page at / (the API stays as it is).
    #[arg(long)]
    no_webui: bool,
}

/// Runs `cria serve`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let threads = args.model.check()?;
    check_sizes(&args)?;
    let fault = FaultPlan::from_env().or_else(settings::refuse)?;
    if let Some(plan) = fault {
        eprintln!("cria serve: warning: test fault injection is on ({FAULT_ENV}={plan})");
    }
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
        header_timeout: Duration::from_secs(args.header_timeout),
        body_timeout: Duration::from_secs(args.body_timeout),
        body_total_timeout: Duration::from_secs(args.body_total_timeout),
        keep_alive_timeout: Duration::from_secs(args.keep_alive_timeout),
        max_connections: args.max_connections,
        webui: !args.no_webui,
    };
    eprintln!(
        "cria serve: {model_id} on http://{}:{} (loading {})",
        args.host,
        args.port,
        path.display()
    );
    if !args.no_webui {
        eprintln!(
            "cria serve: chat page at http://{}:{}/",
            args.host, args.port
        );
    }
    let load = move || load(&path, &args, threads, fault).map_err(|e| format!("{e:#}"));
    cria_server::serve(config, load)?;
    eprintln!("cria serve: stopped");
    Ok(())
}

/// The floors of serve's sizes and timeouts (the same refusal, exit code 2, as every other setting).
fn check_sizes(args: &Args) -> anyhow::Result<()> {
    settings::at_least("--parallel", args.parallel, 1)?;
    settings::at_least("--ctx", args.ctx, MIN_CTX)?;
    settings::at_least("--step-tokens", args.step_tokens, 1)?;
    settings::at_least("--body-limit", args.body_limit, 1)?;
    settings::at_least("--max-connections", args.max_connections, 1)?;
    for (flag, secs) in [
        ("--header-timeout", args.header_timeout),
        ("--body-timeout", args.body_timeout),
        ("--body-total-timeout", args.body_total_timeout),
        ("--keep-alive-timeout", args.keep_alive_timeout),
    ] {
        settings::at_least(flag, usize::try_from(secs).unwrap_or(usize::MAX), 1)?;
    }
    Ok(())
}

/// Loads the model, tokenizer and template, and starts the engine.
fn load(
    path: &std::path::Path,
    args: &Args,
    threads: usize,
    fault: Option<FaultPlan>,
) -> anyhow::Result<Loaded> {
    let model = Arc::new(Model::load(path).with_context(|| format!("loading {}", path.display()))?);
    let tokenizer = Arc::new(Tokenizer::from_gguf(model.gguf())?);
    let template = ChatTemplate::for_model(&tokenizer, &model.spec().arch, args.chat_template)?;
    let ctx = args.ctx.min(model.n_ctx_train().max(16));
    let engine_config = EngineConfig {
        parallel: args.parallel,
        ctx,
        max_queue: args.max_queue,
        step_tokens: args.step_tokens,
        fault,
        ..EngineConfig::default()
    };
    let parallel = args.parallel;
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
