//! cria-server: the OpenAI-compatible HTTP API over a [`cria_engine::Engine`].
//!
//! Routes: `POST /v1/chat/completions`, `POST /v1/completions`, `POST /v1/embeddings`, `GET /v1/models`,
//! `GET /health`, `GET /metrics`; Anthropic's `POST /v1/messages` and `/v1/messages/count_tokens`
//! (`anthropic`); Ollama's `/api/*` (`ollama`); the chat page at `GET /` ([`webui`], unless
//! `ServerConfig::webui` is off). Every OpenAI error is OpenAI's `{"error": {...}}` body with the matching
//! status ([`ApiError`]); the other dialects write theirs in their own shape.

mod anthropic;
mod auth;
mod body_timeout;
mod conn;
mod error;
mod extract;
pub mod frontend;
mod generate;
mod handlers;
mod listen;
mod logprobs;
mod metrics;
mod models;
mod ollama;
mod single;
mod state;
mod stream;
pub mod tools;
pub mod types;
pub mod validate;
mod webui;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{get, post};

use body_timeout::BodyLimits;
use conn::ConnLimits;
use listen::Connections;

pub use error::ApiError;
#[cfg(feature = "model")]
pub use frontend::TokenizerFrontend;
pub use frontend::{ChatInput, ChatTurn, Frontend, RenderedChat};
pub use metrics::MetricNames;
pub use models::{Lease, LoadFn, LoadLimits, LoadedModel, ModelSource, ModelTable, Status};
pub use ollama::rfc3339;
pub use state::{AppState, Loaded, ModelInfo, ServerConfig, Shared};

/// Why the server stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("server: {0}")]
    Io(#[from] std::io::Error),
    #[error("loading the model failed: {0}")]
    Load(String),
    /// The engine failed for good (a supervisor should restart the process).
    #[error("the engine failed: {0}")]
    EngineFailed(String),
    /// The shutdown deadline passed with requests still running; they were ended with an error.
    #[error(
        "the shutdown deadline passed with {open} connections still busy; their requests were ended with an error"
    )]
    ShutdownDeadline { open: usize },
}

/// The application: routes, auth on `/v1/*` and `/metrics`, the body limit, request counting.
pub fn router(state: AppState) -> Router {
    let protected = Router::new()
        .route("/v1/chat/completions", post(handlers::chat_completions))
        .route("/v1/completions", post(handlers::completions))
        .route("/v1/embeddings", post(handlers::embeddings))
        .route("/v1/models", get(handlers::models))
        .route("/metrics", get(handlers::metrics))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_key,
        ));
    let mut app = Router::new()
        .merge(protected)
        .merge(anthropic::routes(state.clone()))
        .merge(ollama::routes(state.clone()))
        .route("/health", get(handlers::health));
    if state.config.webui {
        app = app.merge(webui::routes());
    }
    app.fallback(handlers::fallback)
        .method_not_allowed_fallback(handlers::method_not_allowed)
        .layer(DefaultBodyLimit::max(state.config.body_limit))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::count_requests,
        ))
        .with_state(state)
}

/// Runs the server until SIGINT/SIGTERM. It listens at once (`/health` answers 503) while the first of
/// `models` loads on a blocking thread (the others load on their first request); then running requests get
/// up to `shutdown_timeout` to finish.
pub fn serve(config: ServerConfig, models: Vec<ModelSource>) -> Result<(), ServerError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(serve_async(config, models, shutdown_signal()))
}

/// [`serve`] inside a runtime, stopping when `shutdown` completes.
pub async fn serve_async<S>(
    config: ServerConfig,
    models: Vec<ModelSource>,
    shutdown: S,
) -> Result<(), ServerError>
where
    S: Future<Output = ()> + Send + 'static,
{
    let addr = format!("{}:{}", config.host, config.port);
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|source| ServerError::Bind {
            addr: addr.clone(),
            source,
        })?;
    serve_on(listener, config, models, shutdown).await
}

/// [`serve_async`] on a listener already bound (`config.host` and `config.port` are not used).
///
/// It stops when `shutdown` completes (then `Ok`, or [`ServerError::ShutdownDeadline`] when requests were
/// still running after `shutdown_timeout`), when loading the first model fails, or when an engine fails for
/// good ([`ServerError::EngineFailed`]; `/health` answers 503 from then on).
pub async fn serve_on<S>(
    listener: tokio::net::TcpListener,
    config: ServerConfig,
    models: Vec<ModelSource>,
    shutdown: S,
) -> Result<(), ServerError>
where
    S: Future<Output = ()> + Send + 'static,
{
    tracing::info!("listening on http://{}", listener.local_addr()?);
    let timeout = config.shutdown_timeout;
    let limits = ConnLimits {
        header: config.header_timeout,
        keep_alive: config.keep_alive_timeout,
        body: BodyLimits {
            idle: config.body_timeout,
            total: config.body_total_timeout,
        },
    };
    let conns = Connections::new(config.max_connections);
    if models.is_empty() {
        return Err(ServerError::Load("no model to serve".into()));
    }
    let state = Shared::new(config, models);
    let loader = tokio::spawn({
        let table = Arc::clone(&state.models);
        async move {
            let first = table.acquire(0).await.map_err(|e| e.message)?;
            drop(first);
            table.mark_started();
            Ok::<(), String>(())
        }
    });
    let accepting = tokio::spawn(listen::accept(
        listener,
        router(state.clone()),
        state.clone(),
        conns.clone(),
        limits,
    ));
    let loading = async move {
        match loader.await {
            Ok(Ok(())) => std::future::pending().await,
            Ok(Err(e)) => ServerError::Load(e),
            Err(e) => ServerError::Load(e.to_string()),
        }
    };
    let why = tokio::select! {
        () = shutdown => Stop::Signal,
        reason = engine_failure(&state) => Stop::EngineFailed(reason),
        e = loading => {
            accepting.abort();
            return Err(e);
        }
    };
    accepting.abort();
    match &why {
        Stop::Signal => tracing::info!("shutting down: finishing running requests"),
        Stop::EngineFailed(reason) => tracing::error!("the engine failed, stopping: {reason}"),
    }
    state.models.close();
    conns.stop();
    let finished = tokio::time::timeout(timeout, conns.all_closed())
        .await
        .is_ok();
    let open = conns.open();
    if !finished {
        tracing::warn!(
            "shutdown timeout reached with {open} connections still open: their requests end now"
        );
        state.hit_deadline();
        // Time to write those requests' last words (a 503, or an error event and [DONE]).
        let _ = tokio::time::timeout(DEADLINE_GRACE, conns.all_closed()).await;
    }
    match why {
        Stop::EngineFailed(reason) => Err(ServerError::EngineFailed(reason)),
        Stop::Signal if !finished => Err(ServerError::ShutdownDeadline { open }),
        Stop::Signal => Ok(()),
    }
}

/// After the shutdown deadline, how long connections get to send their error answers before the server
/// stops anyway.
const DEADLINE_GRACE: Duration = Duration::from_secs(2);

enum Stop {
    Signal,
    EngineFailed(String),
}

/// Completes with the reason when a loaded model's engine has failed for good.
async fn engine_failure(state: &AppState) -> String {
    loop {
        let failed = state.models.loaded().into_iter().find_map(|m| {
            let id = &state.models.sources()[m.index].id;
            m.loaded.failure().map(|why| format!("{id}: {why}"))
        });
        if let Some(reason) = failed {
            return reason;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
