//! What every handler shares: configuration, the engine once loaded, metrics.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cria_engine::Engine;
use tokio::sync::watch;

use crate::error::ApiError;
use crate::frontend::Frontend;
use crate::metrics::Metrics;

/// How the server runs.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub host: String,
    pub port: u16,
    /// The name `/v1/models` lists and requests must use (or omit).
    pub model_id: String,
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
    /// Serve the chat page at `/` (off with `--no-webui`).
    pub webui: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            host: "127.0.0.1".into(),
            port: 8080,
            model_id: "model".into(),
            api_key: None,
            body_limit: 4 << 20,
            shutdown_timeout: Duration::from_secs(30),
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            body_total_timeout: Duration::from_secs(60),
            keep_alive_timeout: Duration::from_secs(60),
            max_connections: 512,
            webui: true,
        }
    }
}

/// The model-dependent half, set once loading is done.
pub struct Loaded {
    pub engine: Arc<Engine>,
    pub frontend: Arc<dyn Frontend>,
}

/// Shared state behind an `Arc`.
pub struct Shared {
    pub config: ServerConfig,
    pub loaded: OnceLock<Loaded>,
    pub metrics: Metrics,
    /// Unix time the server started (the model's `created`).
    pub started: u64,
    /// Turns true when the shutdown deadline passes: requests still running end at once (a 503, or an
    /// error event and `[DONE]` on a stream).
    deadline: watch::Sender<bool>,
}

pub type AppState = Arc<Shared>;

impl Shared {
    pub fn new(config: ServerConfig) -> AppState {
        Arc::new(Shared {
            config,
            loaded: OnceLock::new(),
            metrics: Metrics::new(),
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

    /// The engine and frontend, or 503 while loading.
    pub fn ready(&self) -> Result<&Loaded, ApiError> {
        self.loaded.get().ok_or_else(ApiError::loading)
    }

    /// 404 unless `model` is absent or the served one.
    pub fn check_model(&self, model: Option<&str>) -> Result<(), ApiError> {
        match model {
            Some(m) if m != self.config.model_id => Err(ApiError::unknown_model(m)),
            _ => Ok(()),
        }
    }
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
