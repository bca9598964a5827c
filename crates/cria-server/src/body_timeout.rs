//! Request bodies that must keep arriving: a pause between two pieces longer than the idle timeout, or a
//! whole body slower than the total timeout, ends the read with an error (the handler answers 408).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::Request;
use http_body::{Frame, SizeHint};
use tokio::time::{Instant, Sleep};

/// How long a request body may take.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyLimits {
    /// The longest pause between two pieces of the body.
    pub idle: Duration,
    /// The longest the whole body may take to arrive.
    pub total: Duration,
}

/// Set when a body read timed out; handlers find it in the request's extensions to answer 408.
#[derive(Debug, Clone, Default)]
pub struct BodyTimedOut(Arc<AtomicBool>);

impl BodyTimedOut {
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// The error a timed-out body read ends with.
#[derive(Debug, thiserror::Error)]
#[error("the request body stopped arriving (read timeout)")]
pub(crate) struct BodyTimeout;

/// `req` with its body under `limits` and a [`BodyTimedOut`] flag in its extensions.
pub(crate) fn limit<B>(req: Request<B>, limits: BodyLimits) -> Request<Body>
where
    B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<axum::BoxError>,
{
    let flag = BodyTimedOut::default();
    let (mut parts, inner) = req.into_parts();
    parts.extensions.insert(flag.clone());
    let body = TimedBody {
        inner,
        limits,
        idle: Box::pin(tokio::time::sleep(limits.idle)),
        total: None,
        idle_armed: false,
        flag,
    };
    Request::from_parts(parts, Body::new(body))
}

struct TimedBody<B> {
    inner: B,
    limits: BodyLimits,
    idle: Pin<Box<Sleep>>,
    /// Started at the first read.
    total: Option<Pin<Box<Sleep>>>,
    /// Whether `idle` counts from the last piece (re-armed when the read next waits).
    idle_armed: bool,
    flag: BodyTimedOut,
}

impl<B> TimedBody<B> {
    /// Polls both timers; true when one has expired.
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        if !self.idle_armed {
            self.idle.as_mut().reset(Instant::now() + self.limits.idle);
            self.idle_armed = true;
        }
        let total = self
            .total
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(self.limits.total)));
        self.idle.as_mut().poll(cx).is_ready() || total.as_mut().poll(cx).is_ready()
    }
}

impl<B> http_body::Body for TimedBody<B>
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: Into<axum::BoxError>,
{
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.idle_armed = false;
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending if this.expired(cx) => {
                this.flag.0.store(true, Ordering::Relaxed);
                Poll::Ready(Some(Err(BodyTimeout.into())))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body::Body as _;
    use std::future::poll_fn;

    /// A body that yields one piece per `gap`, `n` pieces in all.
    struct Drip {
        left: usize,
        gap: Duration,
        next: Pin<Box<Sleep>>,
    }

    impl http_body::Body for Drip {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            if self.left == 0 {
                return Poll::Ready(None);
            }
            if self.next.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.left -= 1;
            let gap = self.gap;
            self.next.as_mut().reset(Instant::now() + gap);
            Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"x")))))
        }
    }

    async fn read(n: usize, gap_ms: u64, limits: BodyLimits) -> (Result<usize, String>, bool) {
        let gap = Duration::from_millis(gap_ms);
        let drip = Drip {
            left: n,
            gap,
            next: Box::pin(tokio::time::sleep(gap)),
        };
        let req = limit(Request::new(drip), limits);
        let flag = req
            .extensions()
            .get::<BodyTimedOut>()
            .cloned()
            .unwrap_or_default();
        let mut body = req.into_body();
        let mut got = 0;
        loop {
            match poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
                None => return (Ok(got), flag.is_set()),
                Some(Ok(_)) => got += 1,
                Some(Err(e)) => return (Err(e.to_string()), flag.is_set()),
            }
        }
    }

    const LIMITS: BodyLimits = BodyLimits {
        idle: Duration::from_millis(100),
        total: Duration::from_millis(400),
    };

    #[tokio::test(start_paused = true)]
    async fn a_steady_body_is_read_whole() {
        assert_eq!(read(5, 50, LIMITS).await, (Ok(5), false));
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_longer_than_the_idle_timeout_ends_the_read() {
        let (result, flagged) = read(5, 150, LIMITS).await;
        assert!(result.unwrap_err().contains("read timeout"));
        assert!(flagged);
    }

    #[tokio::test(start_paused = true)]
    async fn a_drip_under_the_idle_timeout_still_meets_the_total_timeout() {
        let (result, flagged) = read(100, 90, LIMITS).await;
        assert!(result.is_err() && flagged, "{result:?}");
    }
}
