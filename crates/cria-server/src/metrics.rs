//! Prometheus metrics: requests by status, tokens, engine gauges, time-to-first-token and inter-token latency.
//!
//! The Kubernetes Gateway API Inference Extension's endpoint picker reads its model-server protocol from
//! queued and running requests, KV-cache use (0 to 1) and the cache configuration. Cria serves them under its
//! own names (`cria_queue_depth`, `cria_running_sequences`, `cria_kv_cache_usage_ratio`,
//! `cria_cache_config_info{block_size,num_gpu_blocks}`) and, by default ([`MetricNames::VllmAndCria`]), also
//! under vLLM's, the picker's default mapping: `vllm:num_requests_waiting`, `vllm:num_requests_running`,
//! `vllm:kv_cache_usage_perc`, `vllm:cache_config_info`, and the prefix cache's counters of tokens. vLLM's
//! colons are what `promtool check metrics` lints ("metric names should not contain ':'"); with
//! [`MetricNames::Cria`] they are left out and the whole exposition passes it.

use cria_engine::StatsSnapshot;
use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry, TextEncoder,
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
    kv_blocks_used: IntGauge,
    prefix_queries: IntCounter,
    prefix_hits: IntCounter,
    kv_usage: Gauge,
    cache_config: IntGaugeVec,
    /// The gateway set under vLLM's names, unless the server serves Cria's names only.
    vllm: Option<VllmMetrics>,
    models: ModelMetrics,
}

/// Which names `/metrics` serves the endpoint picker's gauges under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MetricNames {
    /// Cria's own names and, beside them, the gateway set under vLLM's `vllm:` names (the endpoint
    /// picker's default mapping; `promtool check metrics` lints their colons).
    #[default]
    VllmAndCria,
    /// Cria's own names only: `promtool check metrics` passes the whole exposition.
    Cria,
}

/// The model-server protocol's metrics under vLLM's names.
struct VllmMetrics {
    waiting: IntGauge,
    running: IntGauge,
    kv_usage: Gauge,
    cache_config: IntGaugeVec,
    prefix_queries: IntCounter,
    prefix_hits: IntCounter,
}

/// Per-model gauges, labelled `model`, for servers with several models. The request and token counters
/// and the latency histograms above carry no `model` label: requests are counted before their body (which
/// names the model) is read, and the per-model split of tokens is in each model's own gauges here.
struct ModelMetrics {
    loaded: IntGaugeVec,
    running: IntGaugeVec,
    waiting: IntGaugeVec,
    kv_tokens: IntGaugeVec,
    loads: IntCounter,
    unloads: IntCounter,
}

/// One served model as the metrics see it.
pub struct ModelGauges {
    pub id: String,
    /// Its engine's gauges, when it is loaded and generates.
    pub stats: Option<StatsSnapshot>,
    pub loaded: bool,
}

const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

impl Metrics {
    // The names and help texts are constants, so registration cannot fail at run time; a failure would be a
    // programming error caught by the tests.
    #[allow(clippy::expect_used)]
    pub fn new(names: MetricNames) -> Self {
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
        let gauge_vec = |name: &str, help: &str| {
            IntGaugeVec::new(Opts::new(name, help), &["model"]).expect("valid metric")
        };
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
            kv_blocks_used: gauge(
                "cria_kv_cache_blocks_used",
                "KV cache blocks held by running sequences",
            ),
            prefix_queries: counter(
                "cria_prefix_cache_queries_total",
                "Prompt tokens looked up in the prompt cache",
            ),
            prefix_hits: counter(
                "cria_prefix_cache_hits_total",
                "Prompt tokens found in the prompt cache (not computed)",
            ),
            kv_usage: Gauge::new(
                "cria_kv_cache_usage_ratio",
                "Share of KV cache blocks held by running sequences, 0 to 1",
            )
            .expect("valid metric"),
            cache_config: IntGaugeVec::new(
                Opts::new(
                    "cria_cache_config_info",
                    "KV cache configuration: tokens per block and blocks in the pool (value 1)",
                ),
                &["block_size", "num_gpu_blocks"],
            )
            .expect("valid metric"),
            vllm: (names == MetricNames::VllmAndCria).then(VllmMetrics::new),
            models: ModelMetrics {
                loaded: gauge_vec("cria_model_loaded", "1 while the model is loaded, else 0"),
                running: gauge_vec(
                    "cria_model_running_sequences",
                    "Sequences in the model's running batch",
                ),
                waiting: gauge_vec("cria_model_queue_depth", "Requests waiting for the model"),
                kv_tokens: gauge_vec(
                    "cria_model_kv_cache_tokens",
                    "Tokens in the model's KV cache",
                ),
                loads: counter("cria_model_loads_total", "Models loaded since start"),
                unloads: counter(
                    "cria_model_unloads_total",
                    "Models unloaded to make room since start",
                ),
            },
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
            &self.kv_blocks_used,
        ] {
            self.registry.register(Box::new(g.clone()))?;
        }
        for c in [&self.prefix_queries, &self.prefix_hits] {
            self.registry.register(Box::new(c.clone()))?;
        }
        self.registry.register(Box::new(self.kv_usage.clone()))?;
        self.registry
            .register(Box::new(self.cache_config.clone()))?;
        if let Some(v) = &self.vllm {
            v.register(&self.registry)?;
        }
        let m = &self.models;
        for g in [&m.loaded, &m.running, &m.waiting, &m.kv_tokens] {
            self.registry.register(Box::new(g.clone()))?;
        }
        self.registry.register(Box::new(m.loads.clone()))?;
        self.registry.register(Box::new(m.unloads.clone()))?;
        Ok(())
    }

    /// The gauges and counters that mirror the engine's.
    fn update(&self, stats: Option<StatsSnapshot>) {
        let s = stats.unwrap_or_default();
        let set = |g: &IntGauge, v: usize| g.set(i64::try_from(v).unwrap_or(i64::MAX));
        set(&self.queue, s.waiting);
        set(&self.running, s.running);
        set(&self.kv_tokens, s.kv_tokens);
        set(&self.kv_capacity, s.kv_capacity_tokens);
        set(&self.kv_bytes, s.kv_bytes);
        set(&self.kv_blocks_used, s.kv_blocks_used);
        self.kv_usage.set(s.kv_usage());
        // The engine's counters only grow; a counter here catches up with them.
        let catch_up = |c: &IntCounter, v: u64| c.inc_by(v.saturating_sub(c.get()));
        catch_up(&self.prefix_queries, s.prefix_cache_queries);
        catch_up(&self.prefix_hits, s.prefix_cache_hits);
        set_cache_config(&self.cache_config, stats);
        if let Some(v) = &self.vllm {
            set(&v.waiting, s.waiting);
            set(&v.running, s.running);
            v.kv_usage.set(s.kv_usage());
            catch_up(&v.prefix_queries, s.prefix_cache_queries);
            catch_up(&v.prefix_hits, s.prefix_cache_hits);
            set_cache_config(&v.cache_config, stats);
        }
    }

    fn update_models(&self, models: &[ModelGauges], loads: u64, unloads: u64) {
        let m = &self.models;
        let set = |g: &IntGaugeVec, id: &str, v: usize| {
            g.with_label_values(&[id])
                .set(i64::try_from(v).unwrap_or(i64::MAX));
        };
        for g in [&m.loaded, &m.running, &m.waiting, &m.kv_tokens] {
            g.reset();
        }
        for model in models {
            let s = model.stats.unwrap_or_default();
            set(&m.loaded, &model.id, usize::from(model.loaded));
            set(&m.running, &model.id, s.running);
            set(&m.waiting, &model.id, s.waiting);
            set(&m.kv_tokens, &model.id, s.kv_tokens);
        }
        m.loads.inc_by(loads.saturating_sub(m.loads.get()));
        m.unloads.inc_by(unloads.saturating_sub(m.unloads.get()));
    }

    /// The text exposition, with the engines' gauges as of now: the unlabelled engine gauges are the sums
    /// over the loaded models.
    pub fn render(&self, models: &[ModelGauges], loads: u64, unloads: u64) -> String {
        self.update(sum(models));
        self.update_models(models, loads, unloads);
        let mut buf = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut buf) {
            tracing::error!("metrics encoding failed: {e}");
        }
        String::from_utf8_lossy(&buf).into_owned()
    }
}

/// `cache_config_info{block_size,num_gpu_blocks} 1` while an engine is loaded, no series otherwise.
fn set_cache_config(info: &IntGaugeVec, stats: Option<StatsSnapshot>) {
    info.reset();
    if let Some(s) = stats {
        let labels = [s.block_size.to_string(), s.kv_blocks.to_string()];
        info.with_label_values(&[labels[0].as_str(), labels[1].as_str()])
            .set(1);
    }
}

impl VllmMetrics {
    #[allow(clippy::expect_used)] // constant names and help texts, as in `Metrics::new`
    fn new() -> Self {
        let gauge = |name: &str, help: &str| IntGauge::new(name, help).expect("valid metric");
        let counter = |name: &str, help: &str| IntCounter::new(name, help).expect("valid metric");
        VllmMetrics {
            waiting: gauge("vllm:num_requests_waiting", "Requests waiting to be run"),
            running: gauge("vllm:num_requests_running", "Requests running"),
            kv_usage: Gauge::new(
                "vllm:kv_cache_usage_perc",
                "Share of KV cache blocks in use, 0 to 1",
            )
            .expect("valid metric"),
            cache_config: IntGaugeVec::new(
                Opts::new("vllm:cache_config_info", "KV cache configuration"),
                &["block_size", "num_gpu_blocks"],
            )
            .expect("valid metric"),
            prefix_queries: counter(
                "vllm:prefix_cache_queries_total",
                "Prompt tokens looked up in the prefix cache",
            ),
            prefix_hits: counter(
                "vllm:prefix_cache_hits_total",
                "Prompt tokens found in the prefix cache",
            ),
        }
    }

    fn register(&self, registry: &Registry) -> prometheus::Result<()> {
        for g in [&self.waiting, &self.running] {
            registry.register(Box::new(g.clone()))?;
        }
        for c in [&self.prefix_queries, &self.prefix_hits] {
            registry.register(Box::new(c.clone()))?;
        }
        registry.register(Box::new(self.kv_usage.clone()))?;
        registry.register(Box::new(self.cache_config.clone()))
    }
}

/// The loaded engines' gauges added up (`None` when no engine is loaded).
fn sum(models: &[ModelGauges]) -> Option<StatsSnapshot> {
    models
        .iter()
        .filter_map(|m| m.stats)
        .reduce(|a, b| StatsSnapshot {
            waiting: a.waiting + b.waiting,
            running: a.running + b.running,
            kv_tokens: a.kv_tokens + b.kv_tokens,
            kv_capacity_tokens: a.kv_capacity_tokens + b.kv_capacity_tokens,
            kv_bytes: a.kv_bytes + b.kv_bytes,
            block_size: a.block_size,
            kv_blocks: a.kv_blocks + b.kv_blocks,
            kv_blocks_used: a.kv_blocks_used + b.kv_blocks_used,
            prefix_cache_queries: a.prefix_cache_queries + b.prefix_cache_queries,
            prefix_cache_hits: a.prefix_cache_hits + b.prefix_cache_hits,
        })
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new(MetricNames::default())
    }
}
