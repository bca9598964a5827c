//! What every handler shares: configuration, the engine once loaded, metrics.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cria_engine::{Embedder, Engine};
use tokio::sync::watch;

use crate::error::ApiError;
use crate::frontend::Frontend;
use crate::metrics::{MetricNames, Metrics};
use crate::models::{Lease, LoadFn, LoadLimits, ModelSource, ModelTable};

/// How the server runs.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub host: String,
    pub port: u16,
    /// How many models may be loaded at once (when several are served).
    pub limits: LoadLimits,
    /// When set, `/v1/*` and `/metrics` need `Authorization: Bearer <key>`.
    pub api_key: Option<String>,
    /// Largest request body accepted, in bytes.
    pub body_limit: usize,
    /// After SIGINT/SIGTERM, how long running requests may take to finish.
    pub shutdown_timeout: Duration,
    /// A request head must be complete within this long of the connection opening (or of its first byte
    /// after an idle spell).
    pub header_timeout: Duration,
    /// The longest pause between two pieces of a request body.
    pub body_timeout: Duration,
    /// The longest a whole request body may take to arrive.
    pub body_total_timeout: Duration,
    /// An idle kept-alive connection is closed after this long.
    pub keep_alive_timeout: Duration,
    /// Connections open at once; one more gets a 503 and is closed.
    pub max_connections: usize,
    /// How `<think>` blocks are returned when a request does not say (`reasoning_format`).
    pub reasoning_format: crate::tools::ReasoningFormat,
    /// Serve the chat page at `/` (off with `--no-webui`).
    pub webui: bool,
    /// Whether `/metrics` also carries the endpoint picker's gauges under vLLM's `vllm:` names.
    pub metric_names: MetricNames,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            host: "127.0.0.1".into(),
            port: 8080,
            limits: LoadLimits::default(),
            api_key: None,
            body_limit: 4 << 20,
            shutdown_timeout: Duration::from_secs(30),
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            body_total_timeout: Duration::from_secs(60),
            keep_alive_timeout: Duration::from_secs(60),
            max_connections: 512,
            reasoning_format: crate::tools::ReasoningFormat::Split,
            webui: true,
            metric_names: MetricNames::default(),
        }
    }
}

/// The model-dependent half, set once loading is done.
#[derive(Clone)]
pub struct Loaded {
    /// The generation engine; `None` for a model that cannot generate (an encoder).
    pub engine: Option<Arc<Engine>>,
    pub frontend: Arc<dyn Frontend>,
    /// The embedding worker, or why this model serves no embeddings (a 400 on the embedding routes).
    pub embedder: Result<Arc<Embedder>, String>,
    /// What the model is (for Ollama's `/api/tags`, `/api/show`, `/api/ps`).
    pub info: ModelInfo,
}

/// Facts about the served model file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelInfo {
    /// `general.architecture`.
    pub arch: String,
    /// Weights in the file.
    pub parameters: u64,
    /// The tensor type holding the most weights (`Q4_1`, `F16`...).
    pub quantization: String,
    /// File size, bytes.
    pub file_size: u64,
    /// The file's modification time, Unix seconds.
    pub modified: u64,
    /// The context each sequence gets.
    pub context_length: usize,
    /// Width of the hidden state (an embedding's length).
    pub embedding_length: usize,
    /// What it can do, as Ollama's `/api/show` names it (`completion`, `embedding`).
    pub capabilities: Vec<String>,
}

impl Loaded {
    /// A generating model without embeddings.
    pub fn generator(engine: Arc<Engine>, frontend: Arc<dyn Frontend>) -> Self {
        Loaded {
            engine: Some(engine),
            frontend,
            embedder: Err("this server was started without embeddings".into()),
            info: ModelInfo::default(),
        }
    }

    /// The generation engine, or a 400 for an embedding-only model.
    pub fn engine(&self) -> Result<&Arc<Engine>, ApiError> {
        self.engine.as_ref().ok_or_else(ApiError::cannot_generate)
    }

    /// The embedding worker, or a 400 saying why there is none.
    pub fn embedder(&self) -> Result<&Arc<Embedder>, ApiError> {
        self.embedder
            .as_ref()
            .map_err(|why| ApiError::invalid("model", why.clone()))
    }

    /// Why the loaded model can no longer serve, if it cannot.
    pub fn failure(&self) -> Option<String> {
        match &self.engine {
            Some(engine) => engine.failure(),
            None => self.embedder.as_ref().ok().and_then(|e| e.failure()),
        }
    }

    /// False once shutdown has begun.
    pub fn is_accepting(&self) -> bool {
        self.engine.as_ref().is_none_or(|e| e.is_accepting())
    }

    /// Stops both workers and waits up to `wait` for the engine's thread to end (an unloaded model's
    /// memory is freed before the next one loads).
    pub fn stop(&self, wait: Duration) {
        self.shutdown();
        if let Some(engine) = &self.engine
            && !engine.join(wait)
        {
            tracing::warn!("an unloaded model's engine did not stop within {wait:?}");
        }
    }

    /// Stops both workers taking requests (running generations finish).
    pub fn shutdown(&self) {
        if let Some(engine) = &self.engine {
            engine.shutdown();
        }
        if let Ok(embedder) = &self.embedder {
            embedder.shutdown();
        }
    }
}

/// Shared state behind an `Arc`.
pub struct Shared {
    pub config: ServerConfig,
    /// The served models, loaded or not.
    pub models: Arc<ModelTable>,
    pub metrics: Metrics,
    /// Unix time the server started (the model's `created`).
    pub started: u64,
    /// Turns true when the shutdown deadline passes: requests still running end at once (a 503, or an
    /// error event and `[DONE]` on a stream).
    deadline: watch::Sender<bool>,
}

pub type AppState = Arc<Shared>;

impl Shared {
    /// A server for `models` (the first is the default and is loaded at start).
    pub fn new(config: ServerConfig, models: Vec<ModelSource>) -> AppState {
        Arc::new(Shared {
            models: ModelTable::new(models, config.limits),
            metrics: Metrics::new(config.metric_names),
            config,
            started: unix_now(),
            deadline: watch::channel(false).0,
        })
    }

    /// Tells every running request that the shutdown deadline has passed.
    pub fn hit_deadline(&self) {
        self.deadline.send_replace(true);
    }

    /// Completes once the shutdown deadline has passed.
    pub fn deadline_passed(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.deadline.subscribe();
        async move {
            if rx.wait_for(|&passed| passed).await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// A server for one model `id`, already loaded (it cannot be loaded again once unloaded).
    pub fn with_loaded(config: ServerConfig, id: &str, loaded: Loaded) -> AppState {
        let refuse: LoadFn = Arc::new(|| Err("this model cannot be loaded again".to_string()));
        let state = Shared::new(config, vec![ModelSource::new(id, refuse)]);
        state.models.insert_loaded(0, loaded);
        state
    }

    /// The model a request names (absent: the first), loaded if needed; 503 while the server is still
    /// loading its first model, 404 for a model it does not serve.
    pub async fn model(&self, name: Option<&str>) -> Result<Lease, ApiError> {
        if !self.models.is_started() {
            return Err(ApiError::loading());
        }
        let index = self.find_model(name)?;
        self.models.acquire(index).await
    }

    /// The index of the model a request names; 404 for one this server does not serve.
    pub fn find_model(&self, name: Option<&str>) -> Result<usize, ApiError> {
        self.models
            .find(name)
            .ok_or_else(|| ApiError::unknown_model(name.unwrap_or_default()))
    }
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
