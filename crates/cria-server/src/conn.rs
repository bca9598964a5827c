//! One client connection: HTTP/1.1 over hyper, with a watchdog that closes it when the client is too slow.
//!
//! A connection is always in one of three phases: reading a request head (from the connection's opening,
//! or from the first byte after an idle spell), busy (a request is being answered, including its body
//! read, which [`crate::body_timeout`] bounds, and a long stream), or idle (kept alive between requests).
//! The head must be complete within the header timeout, and an idle connection is closed after the
//! keep-alive timeout. A busy connection is never cut by the watchdog.

use std::io;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::Request;
use axum::response::IntoResponse;
use futures_util::FutureExt;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;
use tower::ServiceExt;

use crate::body_timeout::{self, BodyLimits};
use crate::error::ApiError;
use crate::state::AppState;

/// The per-connection limits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnLimits {
    pub header: Duration,
    pub keep_alive: Duration,
    pub body: BodyLimits,
}

#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Waiting for (the rest of) a request head since then.
    Head(Instant),
    /// Answering this many requests.
    Busy(usize),
    /// Kept alive, nothing asked since then.
    Idle(Instant),
}

/// The connection's phase, shared by its socket, its requests and its watchdog.
struct Activity {
    phase: Mutex<Phase>,
    changed: Notify,
}

impl Activity {
    fn new() -> Arc<Self> {
        Arc::new(Activity {
            phase: Mutex::new(Phase::Head(Instant::now())),
            changed: Notify::new(),
        })
    }

    fn update(&self, f: impl FnOnce(Phase) -> Phase) {
        let mut phase = self.phase.lock().unwrap_or_else(|e| e.into_inner());
        *phase = f(*phase);
        // One waiter (the watchdog); a stored permit means no change is missed.
        self.changed.notify_one();
    }

    fn now(&self) -> Phase {
        *self.phase.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Bytes arrived: an idle connection starts reading a head.
    fn on_bytes(&self) {
        if matches!(self.now(), Phase::Idle(_)) {
            self.update(|p| match p {
                Phase::Idle(_) => Phase::Head(Instant::now()),
                other => other,
            });
        }
    }

    fn begin(self: &Arc<Self>) -> Busy {
        self.update(|p| match p {
            Phase::Busy(n) => Phase::Busy(n + 1),
            _ => Phase::Busy(1),
        });
        Busy(Arc::clone(self))
    }

    /// Completes when the connection has been too slow, with the reason (a metrics label).
    async fn expired(&self, limits: &ConnLimits) -> &'static str {
        loop {
            let deadline = match self.now() {
                Phase::Head(since) => Some((since + limits.header, "header_timeout")),
                Phase::Idle(since) => Some((since + limits.keep_alive, "keep_alive_timeout")),
                Phase::Busy(_) => None,
            };
            match deadline {
                Some((at, why)) if Instant::now() >= at => return why,
                Some((at, _)) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(at) => {}
                        () = self.changed.notified() => {}
                    }
                }
                None => self.changed.notified().await,
            }
        }
    }
}

/// Marks one request as being answered until dropped (its response body finished or was abandoned).
struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.update(|p| match p {
            Phase::Busy(n) if n > 1 => Phase::Busy(n - 1),
            _ => Phase::Idle(Instant::now()),
        });
    }
}

/// A response body that keeps its request counted as busy until it is done.
struct Tracked {
    inner: Body,
    _busy: Busy,
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The socket, telling the watchdog when bytes arrive.
struct Watched {
    stream: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.on_bytes();
        }
        result
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Serves one connection until the client closes it, the watchdog closes it, or (after `stop` turns true)
/// its request in progress is answered.
pub(crate) async fn serve(
    stream: TcpStream,
    app: Router,
    state: AppState,
    limits: ConnLimits,
    mut stop: watch::Receiver<bool>,
) {
    let activity = Activity::new();
    let io = TokioIo::new(Watched {
        stream,
        activity: Arc::clone(&activity),
    });
    let requests = Arc::clone(&activity);
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let busy = requests.begin();
        let app = app.clone();
        async move {
            let req = body_timeout::limit(req, limits.body);
            // A panicking handler answers 500 rather than dropping the connection without a word.
            let response = match AssertUnwindSafe(app.oneshot(req)).catch_unwind().await {
                Ok(response) => response?,
                Err(_) => ApiError::internal("internal error: the request handler panicked")
                    .into_response(),
            };
            Ok::<_, std::convert::Infallible>(
                response.map(|inner| Body::new(Tracked { inner, _busy: busy })),
            )
        }
    });
    let conn = hyper::server::conn::http1::Builder::new().serve_connection(io, service);
    tokio::pin!(conn);
    let mut stopping = *stop.borrow();
    if stopping {
        conn.as_mut().graceful_shutdown();
    }
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!("connection ended: {e}");
                }
                return;
            }
            why = activity.expired(&limits) => {
                tracing::debug!("closing a slow connection ({why})");
                state.metrics.connections_closed.with_label_values(&[why]).inc();
                return;
            }
            changed = stop.changed(), if !stopping => {
                stopping = true;
                if changed.is_ok() {
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}
