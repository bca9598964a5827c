//! `cria serve`: the OpenAI-compatible HTTP server, over one model or several.

mod sources;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use cria_engine::{
    DecoderEmbedder, DeviceBackend, Embedder, EmbedderConfig, EncoderEmbedder, Engine,
    EngineConfig, FAULT_ENV, FaultPlan,
};
use cria_gguf::GgufFile;
use cria_model::encoder::ENCODER_ARCHS;
use cria_model::{DeviceChoice, Encoder, Model, Pooling};
use cria_server::tools::ReasoningFormat;
use cria_server::{LoadLimits, Loaded, MetricNames, ModelInfo, ServerConfig, TokenizerFrontend};
use cria_tokenizer::Tokenizer;

use super::generate::MIN_CTX;
use super::settings;
use super::template::{TemplateArg, chat_template};

/// Arguments of `cria serve`.
#[derive(clap::Args)]
pub struct Args {
    /// A GGUF file, a known model name (pulled on first use), hf:owner/repo/file.gguf, or a folder of GGUF
    /// files. Repeat to serve several: a request's `model` picks one (none: the first, which loads at
    /// start; the others load on their first request).
    #[arg(short = 'm', long = "model", default_value = "smollm2-135m-instruct")]
    models: Vec<String>,
    /// Threads (default: all cores; more than the cores available are capped with a warning).
    #[arg(short = 't', long)]
    threads: Option<usize>,
    /// With several models: at most this many loaded at once; the least recently used idle one is unloaded
    /// to make room (a model with requests running never is).
    #[arg(long)]
    max_loaded: Option<usize>,
    /// With several models: the loaded models' files and KV caches together stay within this size (bytes,
    /// or with a unit: 512MiB, 8GiB, 8GB); the least recently used idle model is unloaded to make room.
    #[arg(long, value_parser = sources::parse_bytes)]
    memory_budget: Option<u64>,
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
    /// Require the key (`Authorization: Bearer KEY` or `x-api-key: KEY`) on /v1/*, /api/* and /metrics (or
    /// set CRIA_API_KEY).
    #[arg(long)]
    api_key: Option<String>,
    /// Requests that may wait for a free sequence before new ones get 429.
    #[arg(long, default_value_t = 64)]
    max_queue: usize,
    /// Tokens fed per engine step across the batch (bounds the stall a long prompt causes to decoding).
    #[arg(long, default_value_t = 128)]
    step_tokens: usize,
    /// The name clients use for the first model (default: each GGUF file's name without .gguf).
    #[arg(long)]
    alias: Option<String>,
    /// A built-in chat template (chatml, llama2, alpaca, vicuna, gemma) or a Jinja file, instead of the
    /// model's (every served model's).
    #[arg(long)]
    chat_template: Option<TemplateArg>,
    /// How `<think>` blocks come back when a request does not say: auto (or deepseek) puts them in
    /// `reasoning_content`, none leaves them in `content`.
    #[arg(long, default_value = "auto", value_parser = ["auto", "deepseek", "none"])]
    reasoning_format: String,
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
    /// Positions per KV cache block (the unit of the prompt cache: only whole blocks are shared).
    #[arg(long, default_value_t = 16)]
    kv_block_size: usize,
    /// Positions the KV cache holds in all, running sequences and cached prompt prefixes together (default
    /// and minimum: --parallel x --ctx). Memory is taken as blocks are first written.
    #[arg(long)]
    kv_cache_tokens: Option<usize>,
    /// Compute every prompt from scratch rather than reuse the KV of an earlier request's identical prefix.
    #[arg(long)]
    no_prompt_cache: bool,
    /// How /v1/embeddings pools a model's last hidden states: mean, cls or last (default: the GGUF's
    /// pooling_type; a model without one, most decoders, serves embeddings only with this flag).
    #[arg(long, value_parser = super::embed::parse_pooling)]
    pooling: Option<Pooling>,
    /// Do not serve the web chat page at / (the API stays as it is).
    #[arg(long)]
    no_webui: bool,
    /// Where the models run: auto (a hardware GPU when there is one, else the CPU), cpu, gpu (the first GPU,
    /// a software one too) or gpu:N (adapter N of `cria devices`). Without a usable GPU the CPU runs them,
    /// with one line saying why.
    #[arg(long, default_value = "auto", value_parser = super::load::parse_device)]
    device: DeviceChoice,
    /// The names /metrics gives the gauges a Gateway API endpoint picker reads: vllm-and-cria serves them
    /// under Cria's names and under vLLM's (vllm:num_requests_waiting, vllm:kv_cache_usage_perc, ...), which a
    /// picker reads by default but whose colons `promtool check metrics` flags; cria serves Cria's names only,
    /// promtool-clean (the picker then needs deploy/kubernetes/epp/endpoint-picker-config.yaml).
    #[arg(long, value_enum, default_value_t = MetricNamesArg::VllmAndCria)]
    metrics_names: MetricNamesArg,
}

/// `--metrics-names`.
#[derive(Clone, Copy, clap::ValueEnum)]
enum MetricNamesArg {
    VllmAndCria,
    Cria,
}

impl From<MetricNamesArg> for MetricNames {
    fn from(arg: MetricNamesArg) -> Self {
        match arg {
            MetricNamesArg::VllmAndCria => MetricNames::VllmAndCria,
            MetricNamesArg::Cria => MetricNames::Cria,
        }
    }
}

/// Runs `cria serve`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let threads = sources::check(&args)?;
    check_sizes(&args)?;
    let fault = FaultPlan::from_env().or_else(settings::refuse)?;
    if let Some(plan) = fault {
        eprintln!("cria serve: warning: test fault injection is on ({FAULT_ENV}={plan})");
    }
    let files = sources::resolve(&args)?;
    let config = ServerConfig {
        host: args.host.clone(),
        port: args.port,
        limits: LoadLimits {
            max_loaded: args.max_loaded,
            memory_budget: args.memory_budget,
        },
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
        reasoning_format: ReasoningFormat::parse(&args.reasoning_format)
            .unwrap_or(ReasoningFormat::Split),
        webui: !args.no_webui,
        metric_names: args.metrics_names.into(),
    };
    for (i, (id, path)) in files.iter().enumerate() {
        let when = if i == 0 {
            "loading"
        } else {
            "loads on first use"
        };
        eprintln!(
            "cria serve: {id} on http://{}:{} ({when}: {})",
            args.host,
            args.port,
            path.display()
        );
    }
    if !args.no_webui {
        eprintln!(
            "cria serve: chat page at http://{}:{}/",
            args.host, args.port
        );
    }
    let args = Arc::new(args);
    let models = files
        .into_iter()
        .map(|(id, path)| sources::source(id, path, &args, threads, fault))
        .collect::<anyhow::Result<Vec<_>>>()?;
    cria_server::serve(config, models)?;
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
    settings::at_least("--kv-block-size", args.kv_block_size, 1)?;
    if let Some(n) = args.max_loaded {
        settings::at_least("--max-loaded", n, 1)?;
    }
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

/// Loads the model, tokenizer and template, and starts the engine and the embedding worker (an encoder
/// gets only the latter).
fn load(
    id: &str,
    path: &std::path::Path,
    args: &Args,
    threads: usize,
    fault: Option<FaultPlan>,
) -> anyhow::Result<Loaded> {
    let file = GgufFile::open(path).with_context(|| format!("opening {}", path.display()))?;
    if ENCODER_ARCHS.contains(&file.architecture()?) {
        return load_encoder(id, file, path, args, threads);
    }
    let model =
        Arc::new(Model::from_gguf(file).with_context(|| format!("loading {}", path.display()))?);
    let tokenizer = Arc::new(Tokenizer::from_gguf(model.gguf())?);
    let template = chat_template(&tokenizer, &model.spec().arch, args.chat_template.as_ref())?;
    let ctx = args.ctx.min(model.n_ctx_train().max(16));
    let engine_config = EngineConfig {
        parallel: args.parallel,
        ctx,
        max_queue: args.max_queue,
        step_tokens: args.step_tokens,
        fault,
        block_size: args.kv_block_size,
        kv_tokens: args.kv_cache_tokens.unwrap_or(0),
        prompt_cache: !args.no_prompt_cache,
        ..EngineConfig::default()
    };
    let device = args.device;
    let (backend, why) =
        DeviceBackend::for_config(Arc::clone(&model), &engine_config, threads, device);
    if let Some(why) = why {
        eprintln!("cria serve: --device: {why}");
    }
    let on_gpu = matches!(backend, DeviceBackend::Gpu(_));
    if let DeviceBackend::Gpu(g) = &backend {
        eprintln!("cria serve: running on {}", g.device_name());
    }
    // The GPU keeps each slot's KV contiguous on the device: no block sharing, so no prompt cache.
    let mut engine_config = engine_config;
    engine_config.prompt_cache &= !on_gpu;
    let kv_tokens = engine_config.kv_blocks() * args.kv_block_size;
    let prompt_cache = engine_config.prompt_cache;
    let engine = Engine::start(engine_config, tokenizer.clone(), move || Ok(backend))?;
    let cache = if !prompt_cache {
        "prompt cache off"
    } else {
        "prompt cache on"
    };
    let embedder = decoder_embedder(id, &model, args, ctx, threads)?;
    eprintln!(
        "cria serve: ready ({} x {ctx} tokens, KV cache {kv_tokens} tokens in blocks of {}, {cache}, {threads} threads; embeddings: {})",
        args.parallel,
        args.kv_block_size,
        embedder.as_ref().map_or("off", |_| "on")
    );
    Ok(Loaded {
        engine: Some(Arc::new(engine)),
        frontend: Arc::new(TokenizerFrontend::new(tokenizer, template)),
        embedder,
        info: model_info(path, model.gguf(), ctx, model.spec().n_embd),
    })
}

/// The embedding worker over the decoder, or why there is none (no pooling given or in the file).
fn decoder_embedder(
    id: &str,
    model: &Arc<Model>,
    args: &Args,
    ctx: usize,
    threads: usize,
) -> anyhow::Result<Result<Arc<Embedder>, String>> {
    let key = format!("{}.pooling_type", model.spec().arch);
    let pooling = match args.pooling {
        Some(p) => p,
        None => Pooling::from_gguf(model.gguf(), &key)?,
    };
    if pooling == Pooling::None {
        return Ok(Err(no_pooling_reason(id)));
    }
    let config = EmbedderConfig {
        max_tokens: ctx,
        max_queue: args.max_queue,
    };
    let model = Arc::clone(model);
    let embedder = Embedder::start(config, move || {
        DecoderEmbedder::new(model, pooling, ctx, threads)
    })?;
    Ok(Ok(Arc::new(embedder)))
}

fn no_pooling_reason(id: &str) -> String {
    format!(
        "The model {id} has no pooling type (its vectors would be one per token): start cria serve with \
         --pooling mean, cls or last to serve embeddings."
    )
}

/// An encoder (`bert`, `nomic-bert`): embeddings only; generation requests get a 400.
fn load_encoder(
    id: &str,
    file: GgufFile,
    path: &std::path::Path,
    args: &Args,
    threads: usize,
) -> anyhow::Result<Loaded> {
    let tokenizer = Arc::new(Tokenizer::from_gguf(&file)?);
    let arch = file.architecture()?.to_string();

    let template = chat_template(&tokenizer, &arch, args.chat_template.as_ref())?;
    let encoder =
        Encoder::from_gguf(file, threads).with_context(|| format!("loading {}", path.display()))?;
    let pooling = args.pooling.unwrap_or(encoder.spec().pooling);
    let max_tokens = encoder.spec().n_ctx_train.min(args.ctx);
    let info = model_info(path, encoder.gguf(), max_tokens, encoder.n_embd());
    let embedder = if pooling == Pooling::None {
        Err(no_pooling_reason(id))
    } else {
        let config = EmbedderConfig {
            max_tokens,
            max_queue: args.max_queue,
        };
        let embedder = Embedder::start(config, move || EncoderEmbedder::new(encoder, pooling))?;
        Ok(Arc::new(embedder))
    };
    eprintln!(
        "cria serve: ready (encoder {arch}: embeddings only, {max_tokens} tokens, {threads} threads)"
    );
    Ok(Loaded {
        engine: None,
        frontend: Arc::new(TokenizerFrontend::new(tokenizer, template)),
        embedder,
        info,
    })
}

/// The tensor type holding the most weights (`Q4_1`, `F16`...; matrices only).
pub fn weight_type(file: &GgufFile) -> &'static str {
    let mut by_type: Vec<(&'static str, u64)> = Vec::new();
    for t in file.tensors().iter().filter(|t| t.shape.len() >= 2) {
        match by_type.iter_mut().find(|(name, _)| *name == t.ty.name()) {
            Some((_, n)) => *n += t.n_elements(),
            None => by_type.push((t.ty.name(), t.n_elements())),
        }
    }
    by_type
        .iter()
        .max_by_key(|(_, n)| *n)
        .map_or("unknown", |(name, _)| name)
}

/// What Ollama's `/api/tags`, `/api/show` and `/api/ps` say about the model.
fn model_info(path: &std::path::Path, file: &GgufFile, ctx: usize, n_embd: usize) -> ModelInfo {
    let quantization = weight_type(file);
    let meta = std::fs::metadata(path).ok();
    let modified = meta
        .as_ref()
        .and_then(|m| m.modified().ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    ModelInfo {
        arch: file.architecture().unwrap_or("unknown").to_string(),
        parameters: file.tensors().iter().map(|t| t.n_elements()).sum(),
        quantization: quantization.to_string(),
        file_size: meta.map_or(0, |m| m.len()),
        modified,
        context_length: ctx,
        embedding_length: n_embd,
        capabilities: Vec::new(),
    }
}
