//! What every handler shares: configuration, the engine once loaded, metrics.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cria_engine::Engine;

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
}

pub type AppState = Arc<Shared>;

impl Shared {
    pub fn new(config: ServerConfig) -> AppState {
        Arc::new(Shared {
            config,
            loaded: OnceLock::new(),
            metrics: Metrics::new(),
            started: unix_now(),
        })
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
