//! Prometheus metrics: requests by status, tokens, engine gauges, time-to-first-token and inter-token latency.

use cria_engine::StatsSnapshot;
use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

/// The server's metrics and their registry.
pub struct Metrics {
    registry: Registry,
    pub requests: IntCounterVec,
    pub prompt_tokens: IntCounter,
    pub generated_tokens: IntCounter,
    pub ttft: Histogram,
    pub itl: Histogram,
    /// HTTP connections open now.
    pub open_connections: IntGauge,
    /// Connections the server closed on a client: `header_timeout`, `keep_alive_timeout`, `over_limit`.
    pub connections_closed: IntCounterVec,
    queue: IntGauge,
    running: IntGauge,
    kv_tokens: IntGauge,
    kv_capacity: IntGauge,
    kv_bytes: IntGauge,
}

const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

impl Metrics {
    // The names and help texts are constants, so registration cannot fail at run time; a failure would be a
    // programming error caught by the tests.
    #[allow(clippy::expect_used)]
    pub fn new() -> Self {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "cria_requests_total",
                "HTTP requests by endpoint and status",
            ),
            &["endpoint", "status"],
        )
        .expect("valid metric");
        let connections_closed = IntCounterVec::new(
            Opts::new(
                "cria_connections_closed_total",
                "Connections the server closed on a slow or excess client, by reason",
            ),
            &["reason"],
        )
        .expect("valid metric");
        for reason in ["header_timeout", "keep_alive_timeout", "over_limit"] {
            connections_closed.with_label_values(&[reason]);
        }
        let counter = |name: &str, help: &str| IntCounter::new(name, help).expect("valid metric");
        let gauge = |name: &str, help: &str| IntGauge::new(name, help).expect("valid metric");
        let histogram = |name: &str, help: &str| {
            Histogram::with_opts(HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec()))
                .expect("valid metric")
        };
        let m = Metrics {
            requests,
            prompt_tokens: counter("cria_prompt_tokens_total", "Prompt tokens processed"),
            generated_tokens: counter("cria_generated_tokens_total", "Tokens generated"),
            ttft: histogram(
                "cria_time_to_first_token_seconds",
                "Time from request to first generated token",
            ),
            itl: histogram(
                "cria_inter_token_latency_seconds",
                "Time between generated tokens of one sequence",
            ),
            open_connections: gauge("cria_open_connections", "HTTP connections open now"),
            connections_closed,
            queue: gauge("cria_queue_depth", "Requests waiting for a sequence slot"),
            running: gauge("cria_running_sequences", "Sequences in the running batch"),
            kv_tokens: gauge("cria_kv_cache_tokens", "Tokens held in KV caches"),
            kv_capacity: gauge(
                "cria_kv_cache_capacity_tokens",
                "Tokens the KV caches can hold",
            ),
            kv_bytes: gauge("cria_kv_cache_bytes", "Bytes of KV cache allocated"),
            registry,
        };
        m.register_all().expect("metrics register once");
        m
    }

    fn register_all(&self) -> prometheus::Result<()> {
        self.registry.register(Box::new(self.requests.clone()))?;
        self.registry
            .register(Box::new(self.prompt_tokens.clone()))?;
        self.registry
            .register(Box::new(self.generated_tokens.clone()))?;
        self.registry.register(Box::new(self.ttft.clone()))?;
        self.registry.register(Box::new(self.itl.clone()))?;
        self.registry
            .register(Box::new(self.connections_closed.clone()))?;
        for g in [
            &self.open_connections,
            &self.queue,
            &self.running,
            &self.kv_tokens,
            &self.kv_capacity,
            &self.kv_bytes,
        ] {
            self.registry.register(Box::new(g.clone()))?;
        }
        Ok(())
    }

    /// The text exposition, with the engine's gauges as of now.
    pub fn render(&self, stats: Option<StatsSnapshot>) -> String {
        let s = stats.unwrap_or_default();
        let set = |g: &IntGauge, v: usize| g.set(i64::try_from(v).unwrap_or(i64::MAX));
        set(&self.queue, s.waiting);
        set(&self.running, s.running);
        set(&self.kv_tokens, s.kv_tokens);
        set(&self.kv_capacity, s.kv_capacity_tokens);
        set(&self.kv_bytes, s.kv_bytes);
        let mut buf = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut buf) {
            tracing::error!("metrics encoding failed: {e}");
        }
        String::from_utf8_lossy(&buf).into_owned()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
