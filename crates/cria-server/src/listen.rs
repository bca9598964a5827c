//! Accepting connections: a cap on how many are open at once, each served by [`crate::conn`], and a
//! graceful stop that waits for them.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

use crate::conn::{self, ConnLimits};
use crate::error::ApiError;
use crate::state::AppState;

/// The open connections: their count, the cap, and the signal that asks them to finish.
#[derive(Clone)]
pub(crate) struct Connections {
    permits: Arc<Semaphore>,
    /// Connections over the cap being answered 503 at once.
    refusals: Arc<Semaphore>,
    max: usize,
    open: Arc<watch::Sender<usize>>,
    stop: Arc<watch::Sender<bool>>,
}

/// Connections over the cap answered at once (each for up to a second); more are closed without an answer.
const MAX_REFUSING: usize = 64;

/// Counts one open connection until dropped.
struct Open {
    open: Arc<watch::Sender<usize>>,
    state: AppState,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Open {
    fn drop(&mut self) {
        self.open.send_modify(|n| *n -= 1);
        self.state.metrics.open_connections.dec();
    }
}

impl Connections {
    pub fn new(max: usize) -> Self {
        Connections {
            permits: Arc::new(Semaphore::new(max.max(1))),
            refusals: Arc::new(Semaphore::new(MAX_REFUSING)),
            max: max.max(1),
            open: Arc::new(watch::channel(0).0),
            stop: Arc::new(watch::channel(false).0),
        }
    }

    /// Asks every connection to close once its request in progress is answered (idle ones close now).
    pub fn stop(&self) {
        self.stop.send_replace(true);
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        *self.open.borrow()
    }

    /// Completes when no connection is open.
    pub async fn all_closed(&self) {
        let mut rx = self.open.subscribe();
        let _ = rx.wait_for(|&n| n == 0).await;
    }
}

/// Accepts connections until the task is dropped; over the cap, a connection gets a 503 and is closed.
pub(crate) async fn accept(
    listener: TcpListener,
    app: Router,
    state: AppState,
    conns: Connections,
    limits: ConnLimits,
) {
    let conns_max = conns.max;
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors and the like: wait a moment rather than spin.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&conns.permits).try_acquire_owned() else {
            state
                .metrics
                .connections_closed
                .with_label_values(&["over_limit"])
                .inc();
            // A flood past the cap is answered only as far as a few refusals at a time; the rest are closed
            // at once, so open sockets stay bounded.
            if let Ok(refusing) = Arc::clone(&conns.refusals).try_acquire_owned() {
                tokio::spawn(async move {
                    refuse(stream, conns_max).await;
                    drop(refusing);
                });
            }
            continue;
        };
        let _ = stream.set_nodelay(true);
        conns.open.send_modify(|n| *n += 1);
        state.metrics.open_connections.inc();
        let open = Open {
            open: Arc::clone(&conns.open),
            state: state.clone(),
            _permit: permit,
        };
        let (app, state, stop) = (app.clone(), state.clone(), conns.stop.subscribe());
        tokio::spawn(async move {
            conn::serve(stream, app, state, limits, stop).await;
            drop(open);
        });
    }
}

/// Answers a connection over the cap with a 503 in the OpenAI shape and closes it, within a second.
async fn refuse(mut stream: TcpStream, max: usize) {
    let body = ApiError::too_many_connections(max).body().to_string();
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        stream.write_all(response.as_bytes()).await?;
        stream.shutdown().await?;
        // Read what the client sent until it closes, so the close is not a reset that loses the answer.
        let mut sink = [0u8; 1024];
        while stream.read(&mut sink).await? > 0 {}
        Ok::<_, std::io::Error>(())
    })
    .await;
}
