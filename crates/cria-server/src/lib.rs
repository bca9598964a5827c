//! cria-server: the OpenAI-compatible HTTP API over a [`cria_engine::Engine`].
//!
//! Routes: `POST /v1/chat/completions`, `POST /v1/completions`, `GET /v1/models`, `GET /health`, `GET /metrics`.
//! Every error is OpenAI's `{"error": {...}}` body with the matching status ([`ApiError`]).

mod auth;
mod error;
mod extract;
pub mod frontend;
mod generate;
mod handlers;
mod logprobs;
mod metrics;
mod state;
mod stream;
pub mod types;
pub mod validate;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{get, post};

pub use error::ApiError;
#[cfg(feature = "model")]
pub use frontend::TokenizerFrontend;
pub use frontend::{ChatTurn, Frontend};
pub use state::{AppState, Loaded, ServerConfig, Shared};

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
}

/// The application: routes, auth on `/v1/*` and `/metrics`, the body limit, request counting.
pub fn router(state: AppState) -> Router {
    let protected = Router::new()
        .route("/v1/chat/completions", post(handlers::chat_completions))
        .route("/v1/completions", post(handlers::completions))
        .route("/v1/models", get(handlers::models))
        .route("/metrics", get(handlers::metrics))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_key,
        ));
    Router::new()
        .merge(protected)
        .route("/health", get(handlers::health))
        .fallback(handlers::fallback)
        .method_not_allowed_fallback(handlers::method_not_allowed)
        .layer(DefaultBodyLimit::max(state.config.body_limit))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::count_requests,
        ))
        .with_state(state)
}

/// Runs the server until SIGINT/SIGTERM. It listens at once (`/health` answers 503) while `load` runs on a
/// blocking thread; then running requests get up to `shutdown_timeout` to finish.
pub fn serve<L>(config: ServerConfig, load: L) -> Result<(), ServerError>
where
    L: FnOnce() -> Result<Loaded, String> + Send + 'static,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(serve_async(config, load, shutdown_signal()))
}

/// [`serve`] inside a runtime, stopping when `shutdown` completes.
pub async fn serve_async<L, S>(
    config: ServerConfig,
    load: L,
    shutdown: S,
) -> Result<(), ServerError>
where
    L: FnOnce() -> Result<Loaded, String> + Send + 'static,
    S: Future<Output = ()> + Send + 'static,
{
    let addr = format!("{}:{}", config.host, config.port);
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|source| ServerError::Bind {
            addr: addr.clone(),
            source,
        })?;
    tracing::info!("listening on http://{}", listener.local_addr()?);
    let timeout = config.shutdown_timeout;
    let state = Shared::new(config);
    let loader = tokio::task::spawn_blocking({
        let state = Arc::clone(&state);
        move || load().map(|loaded| drop(state.loaded.set(loaded)))
    });
    let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
    let on_signal = {
        let state = Arc::clone(&state);
        async move {
            shutdown.await;
            tracing::info!("shutting down: finishing running requests");
            if let Some(loaded) = state.loaded.get() {
                loaded.engine.shutdown();
            }
            let _ = stopping_tx.send(());
        }
    };
    let server = axum::serve(listener, router(state)).with_graceful_shutdown(on_signal);
    let deadline = async move {
        let _ = stopping_rx.await;
        tokio::time::sleep(timeout).await;
    };
    let loading = async move {
        match loader.await {
            Ok(Ok(())) => std::future::pending().await,
            Ok(Err(e)) => ServerError::Load(e),
            Err(e) => ServerError::Load(e.to_string()),
        }
    };
    tokio::select! {
        result = server => result.map_err(ServerError::Io),
        () = deadline => {
            tracing::warn!("shutdown timeout reached; exiting with requests still running");
            Ok(())
        }
        e = loading => Err(e),
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
