//! The model table on models whose loading is counted (no engine: a load here is only bookkeeping).

#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::*;
use crate::frontend::Frontend;

/// A front end that is never asked anything: these tests never generate.
struct NoFrontend;

impl Frontend for NoFrontend {
    fn chat_prompt(&self, _: &[crate::ChatTurn]) -> Result<Vec<u32>, String> {
        Err("no model".into())
    }
    fn text_prompt(&self, _: &str) -> Vec<u32> {
        Vec::new()
    }
    fn token_bytes(&self, _: u32) -> Vec<u8> {
        Vec::new()
    }
    fn vocab_size(&self) -> usize {
        0
    }
    fn constrain(
        &self,
        _: &cria_sampling::grammar::Grammar,
    ) -> Result<Box<dyn cria_sampling::TokenConstraint>, String> {
        Err("no model".into())
    }
}

fn empty_model() -> Loaded {
    Loaded {
        engine: None,
        frontend: Arc::new(NoFrontend),
        embedder: Err("none".into()),
        info: ModelInfo::default(),
    }
}

/// A source costing `cost` bytes whose loads are counted in `loads` and take `delay`.
fn source(id: &str, cost: u64, loads: &Arc<AtomicUsize>, delay: Duration) -> ModelSource {
    let loads = Arc::clone(loads);
    ModelSource {
        cost,
        ..ModelSource::new(
            id,
            Arc::new(move || {
                std::thread::sleep(delay);
                loads.fetch_add(1, Ordering::SeqCst);
                Ok(empty_model())
            }),
        )
    }
}

fn table(costs: &[u64], limits: LoadLimits) -> (Arc<ModelTable>, Vec<Arc<AtomicUsize>>) {
    let counters: Vec<_> = costs
        .iter()
        .map(|_| Arc::new(AtomicUsize::new(0)))
        .collect();
    let sources = costs
        .iter()
        .zip(&counters)
        .enumerate()
        .map(|(i, (&cost, n))| source(&format!("m{i}"), cost, n, Duration::ZERO))
        .collect();
    (ModelTable::new(sources, limits), counters)
}

fn statuses(t: &ModelTable) -> Vec<Status> {
    (0..t.sources().len()).map(|i| t.status(i)).collect()
}

#[test]
fn names_pick_models_and_no_name_picks_the_first() {
    let (t, _) = table(&[1, 1], LoadLimits::default());
    assert_eq!(t.find(None), Some(0));
    assert_eq!(t.find(Some("")), Some(0));
    assert_eq!(t.find(Some("m1")), Some(1));
    assert_eq!(t.find(Some("m1:latest")), Some(1));
    assert_eq!(t.find(Some("m2")), None);
}

#[tokio::test]
async fn the_least_recently_used_idle_model_is_unloaded_past_max_loaded() {
    let limits = LoadLimits {
        max_loaded: Some(2),
        memory_budget: None,
    };
    let (t, loads) = table(&[1, 1, 1], limits);
    drop(t.acquire(0).await.unwrap());
    drop(t.acquire(1).await.unwrap());
    drop(t.acquire(0).await.unwrap()); // m0 is now the more recently used
    drop(t.acquire(2).await.unwrap());
    use Status::{Loaded, Unloaded};
    assert_eq!(statuses(&t), [Loaded, Unloaded, Loaded]);
    drop(t.acquire(1).await.unwrap());
    assert_eq!(statuses(&t), [Unloaded, Loaded, Loaded]);
    let counts: Vec<usize> = loads.iter().map(|n| n.load(Ordering::SeqCst)).collect();
    assert_eq!(counts, [1, 2, 1]);
    assert_eq!(t.unloads.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_model_with_a_request_running_is_never_unloaded() {
    let limits = LoadLimits {
        max_loaded: Some(1),
        memory_budget: None,
    };
    let (t, _) = table(&[1, 1], limits);
    let busy = t.acquire(0).await.unwrap();
    let refused = t.acquire(1).await.err().unwrap();
    assert_eq!(refused.status, axum::http::StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(refused.code, Some("model_does_not_fit"));
    assert_eq!(statuses(&t), [Status::Loaded, Status::Unloaded]);
    // A clone (another choice of the same request) holds it too.
    let second = busy.clone();
    drop(busy);
    assert!(t.acquire(1).await.is_err());
    drop(second);
    drop(t.acquire(1).await.unwrap());
    assert_eq!(statuses(&t), [Status::Unloaded, Status::Loaded]);
}

#[tokio::test]
async fn the_memory_budget_counts_each_models_cost() {
    let limits = LoadLimits {
        max_loaded: None,
        memory_budget: Some(100),
    };
    let (t, _) = table(&[40, 50, 70, 101], limits);
    drop(t.acquire(0).await.unwrap());
    drop(t.acquire(1).await.unwrap());
    assert_eq!(t.loaded().len(), 2);
    // 70 more needs both out (40 + 50 + 70 > 100, 50 + 70 > 100).
    drop(t.acquire(2).await.unwrap());
    use Status::{Loaded, Unloaded};
    assert_eq!(statuses(&t), [Unloaded, Unloaded, Loaded, Unloaded]);
    let alone = t.acquire(3).await.err().unwrap();
    assert!(
        alone.message.contains("over the server's memory budget"),
        "{alone:?}"
    );
    // Refusing it unloaded nothing.
    assert_eq!(statuses(&t), [Unloaded, Unloaded, Loaded, Unloaded]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_for_a_loading_model_share_one_load() {
    let n = Arc::new(AtomicUsize::new(0));
    let slow = source("slow", 1, &n, Duration::from_millis(200));
    let t = ModelTable::new(vec![slow], LoadLimits::default());
    let waiters: Vec<_> = (0..8)
        .map(|_| {
            let t = Arc::clone(&t);
            tokio::spawn(async move { t.acquire(0).await.map(drop) })
        })
        .collect();
    for w in waiters {
        w.await.unwrap().unwrap();
    }
    assert_eq!(n.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_failed_load_answers_its_waiters_and_is_retried_by_the_next_request() {
    let tries = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&tries);
    let flaky = ModelSource::new(
        "flaky",
        Arc::new(move || match counted.fetch_add(1, Ordering::SeqCst) {
            0 => Err("disk on fire".to_string()),
            _ => Ok(empty_model()),
        }),
    );
    let t = ModelTable::new(vec![flaky], LoadLimits::default());
    let failed = t.acquire(0).await.err().unwrap();
    assert_eq!(failed.code, Some("model_load_failed"));
    assert!(failed.message.contains("disk on fire"), "{failed:?}");
    drop(t.acquire(0).await.unwrap());
    assert_eq!(tries.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loaded_model_answers_while_another_loads() {
    let n = Arc::new(AtomicUsize::new(0));
    let fast = source("fast", 1, &n, Duration::ZERO);
    // The slow model's load waits until the test lets it finish.
    let gate = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let held = Arc::clone(&gate);
    let slow = ModelSource::new(
        "slow",
        Arc::new(move || {
            while !held.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(5));
            }
            Ok(empty_model())
        }),
    );
    let t = ModelTable::new(vec![fast, slow], LoadLimits::default());
    drop(t.acquire(0).await.unwrap());
    let loading = tokio::spawn({
        let t = Arc::clone(&t);
        async move { t.acquire(1).await.map(drop) }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while t.status(1) != Status::Loading {
        assert!(Instant::now() < deadline, "the slow load never started");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let lease = tokio::time::timeout(Duration::from_secs(60), t.acquire(0)).await;
    assert!(lease.unwrap().is_ok());
    assert_eq!(t.status(1), Status::Loading);
    gate.store(true, Ordering::SeqCst);
    loading.await.unwrap().unwrap();
    assert_eq!(t.status(1), Status::Loaded);
}
