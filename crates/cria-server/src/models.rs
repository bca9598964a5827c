//! Several models behind one server. Each is loaded on its first request (the first one at start), on a
//! blocking thread so other models' requests go on; requests for a model that is loading wait for that one
//! load. When loading one more would pass `max_loaded` models or the `memory_budget` (each model costs its
//! file size plus its KV pool), the least recently used idle model is unloaded first; a model with requests
//! running (a [`Lease`] alive) is never unloaded, and a model that cannot fit gets a 503.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::error::ApiError;
use crate::state::{Loaded, ModelInfo};

/// Builds a model's engine, front end and embedding worker (called again after an unload).
pub type LoadFn = Arc<dyn Fn() -> Result<Loaded, String> + Send + Sync>;

/// A model the server can serve.
#[derive(Clone)]
pub struct ModelSource {
    /// The name clients use (`/v1/models`' `id`; Ollama's lists it with `:latest`).
    pub id: String,
    /// What is known from the file before loading (listed by `/api/tags` for every model).
    pub info: ModelInfo,
    /// Bytes it counts against the memory budget while loaded: the file and the KV pool.
    pub cost: u64,
    pub load: LoadFn,
}

impl ModelSource {
    pub fn new(id: impl Into<String>, load: LoadFn) -> Self {
        ModelSource {
            id: id.into(),
            info: ModelInfo::default(),
            cost: 0,
            load,
        }
    }
}

/// How many models may be loaded at once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadLimits {
    /// At most this many loaded (`--max-loaded`).
    pub max_loaded: Option<usize>,
    /// The loaded models' costs together stay within this many bytes (`--memory-budget`).
    pub memory_budget: Option<u64>,
}

/// Where a model stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Unloaded,
    Loading,
    Loaded,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Unloaded => "unloaded",
            Status::Loading => "loading",
            Status::Loaded => "loaded",
        }
    }
}

enum State {
    Unloaded,
    Loading,
    Loaded(Arc<Loaded>),
}

struct Slot {
    state: State,
    /// Leases alive (requests running on the model).
    active: usize,
    last_used: Instant,
    /// Loads started so far; a request that waited on load `k` gets its error if `k` failed.
    loads: u64,
    last_error: Option<String>,
}

/// A model that is loaded, as `/api/ps` shows it.
pub struct LoadedModel {
    pub index: usize,
    pub loaded: Arc<Loaded>,
    pub active: usize,
    pub idle_for: Duration,
}

/// The served models and which of them are loaded.
pub struct ModelTable {
    sources: Vec<ModelSource>,
    slots: Mutex<Vec<Slot>>,
    /// Bumped whenever a load ends (waiters wake and look again).
    changed: watch::Sender<u64>,
    limits: LoadLimits,
    /// Set once the start-up load of the first model is done (until then requests get 503 "loading").
    started: AtomicBool,
    closed: AtomicBool,
    /// Loads and unloads since start (metrics).
    pub loads: AtomicU64,
    pub unloads: AtomicU64,
}

/// A model held for one request: while any lease on it is alive it is not unloaded.
pub struct Lease {
    table: Arc<ModelTable>,
    index: usize,
    loaded: Arc<Loaded>,
}

impl std::ops::Deref for Lease {
    type Target = Loaded;
    fn deref(&self) -> &Loaded {
        &self.loaded
    }
}

impl Lease {
    /// The model's id.
    pub fn id(&self) -> &str {
        &self.table.sources[self.index].id
    }

    /// The loaded model behind the lease (shared, e.g. its front end).
    pub fn loaded(&self) -> &Arc<Loaded> {
        &self.loaded
    }
}

impl Clone for Lease {
    fn clone(&self) -> Self {
        self.table.lock()[self.index].active += 1;
        Lease {
            table: Arc::clone(&self.table),
            index: self.index,
            loaded: Arc::clone(&self.loaded),
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let mut slots = self.table.lock();
        let slot = &mut slots[self.index];
        slot.active = slot.active.saturating_sub(1);
        slot.last_used = Instant::now();
    }
}

impl ModelTable {
    pub fn new(sources: Vec<ModelSource>, limits: LoadLimits) -> Arc<Self> {
        let now = Instant::now();
        let slots = sources
            .iter()
            .map(|_| Slot {
                state: State::Unloaded,
                active: 0,
                last_used: now,
                loads: 0,
                last_error: None,
            })
            .collect();
        Arc::new(ModelTable {
            sources,
            slots: Mutex::new(slots),
            changed: watch::channel(0).0,
            limits,
            started: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            loads: AtomicU64::new(0),
            unloads: AtomicU64::new(0),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Slot>> {
        // A panic while the lock was held leaves plain counters behind: carry on with them.
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn sources(&self) -> &[ModelSource] {
        &self.sources
    }

    /// The index of the model `name` picks: absent or empty is the first model; otherwise its id, or its
    /// id with Ollama's `:latest` tag.
    pub fn find(&self, name: Option<&str>) -> Option<usize> {
        let name = match name {
            None | Some("") => return (!self.sources.is_empty()).then_some(0),
            Some(n) => n,
        };
        let bare = name.strip_suffix(":latest").unwrap_or(name);
        self.sources
            .iter()
            .position(|s| s.id == name || s.id == bare)
    }

    pub fn status(&self, index: usize) -> Status {
        match self.lock()[index].state {
            State::Unloaded => Status::Unloaded,
            State::Loading => Status::Loading,
            State::Loaded(_) => Status::Loaded,
        }
    }

    /// The models loaded now.
    pub fn loaded(&self) -> Vec<LoadedModel> {
        let now = Instant::now();
        self.lock()
            .iter()
            .enumerate()
            .filter_map(|(index, slot)| match &slot.state {
                State::Loaded(loaded) => Some(LoadedModel {
                    index,
                    loaded: Arc::clone(loaded),
                    active: slot.active,
                    idle_for: now.saturating_duration_since(slot.last_used),
                }),
                _ => None,
            })
            .collect()
    }

    /// Whether the start-up load is done.
    pub fn is_started(&self) -> bool {
        self.started.load(Ordering::SeqCst)
    }

    pub fn mark_started(&self) {
        self.started.store(true, Ordering::SeqCst);
    }

    /// Puts an already loaded model in place (tests, and servers that load before listening).
    pub fn insert_loaded(&self, index: usize, loaded: Loaded) {
        self.lock()[index].state = State::Loaded(Arc::new(loaded));
        self.mark_started();
    }

    /// Stops every loaded model taking requests, and refuses loads from now on.
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        for model in self.loaded() {
            model.loaded.shutdown();
        }
    }

    /// The model at `index`, loading it first when needed (waiting for a load already under way).
    pub async fn acquire(self: &Arc<Self>, index: usize) -> Result<Lease, ApiError> {
        let mut waited_on = None;
        loop {
            // Subscribed before looking, so a load ending in between still wakes this request.
            let mut changed = self.changed.subscribe();
            let victims = {
                let mut slots = self.lock();
                let slot = &mut slots[index];
                match &slot.state {
                    State::Loaded(loaded) => {
                        slot.active += 1;
                        slot.last_used = Instant::now();
                        return Ok(Lease {
                            table: Arc::clone(self),
                            index,
                            loaded: Arc::clone(loaded),
                        });
                    }
                    State::Loading => {
                        waited_on = Some(slot.loads);
                        None
                    }
                    State::Unloaded => {
                        if let (Some(k), Some(why)) = (waited_on, &slot.last_error)
                            && slot.loads == k
                        {
                            return Err(ApiError::load_failed(&self.sources[index].id, why));
                        }
                        if self.closed.load(Ordering::SeqCst) {
                            return Err(cria_engine::SubmitError::ShuttingDown.into());
                        }
                        let victims = self.make_room(&mut slots, index)?;
                        let slot = &mut slots[index];
                        slot.state = State::Loading;
                        slot.loads += 1;
                        slot.last_error = None;
                        waited_on = Some(slot.loads);
                        Some(victims)
                    }
                }
            };
            if let Some(victims) = victims {
                self.spawn_load(index, victims);
            }
            // The sender lives as long as the table, which this request holds.
            let _ = changed.changed().await;
        }
    }

    /// Unloads least recently used idle models until `index` fits; the models taken out, to be stopped.
    fn make_room(&self, slots: &mut [Slot], index: usize) -> Result<Vec<Arc<Loaded>>, ApiError> {
        let id = &self.sources[index].id;
        let cost = self.sources[index].cost;
        if let Some(budget) = self.limits.memory_budget
            && cost > budget
        {
            return Err(ApiError::no_room(format!(
                "The model `{id}` needs {cost} bytes (file and KV cache), over the server's memory budget of {budget} bytes."
            )));
        }
        let held: Vec<usize> = (0..slots.len())
            .filter(|&i| i != index && !matches!(slots[i].state, State::Unloaded))
            .collect();
        let (mut count, mut used) = (
            held.len(),
            held.iter().map(|&i| self.sources[i].cost).sum::<u64>(),
        );
        let fits = |count: usize, used: u64| {
            self.limits.max_loaded.is_none_or(|m| count < m)
                && self
                    .limits
                    .memory_budget
                    .is_none_or(|b| used.saturating_add(cost) <= b)
        };
        let mut idle: Vec<usize> = held
            .into_iter()
            .filter(|&i| matches!(slots[i].state, State::Loaded(_)) && slots[i].active == 0)
            .collect();
        idle.sort_by_key(|&i| slots[i].last_used);
        let mut idle = idle.into_iter();
        let mut chosen = Vec::new();
        while !fits(count, used) {
            // Planned before anything is taken out: a model that cannot fit unloads nothing.
            let Some(lru) = idle.next() else {
                return Err(ApiError::no_room(format!(
                    "The model `{id}` cannot be loaded now: the loaded models are busy and no more fit (--max-loaded / --memory-budget). Retry later."
                )));
            };
            count -= 1;
            used = used.saturating_sub(self.sources[lru].cost);
            chosen.push(lru);
        }
        let mut victims = Vec::new();
        for lru in chosen {
            if let State::Loaded(loaded) = std::mem::replace(&mut slots[lru].state, State::Unloaded)
            {
                tracing::info!("unloading {} (least recently used)", self.sources[lru].id);
                self.unloads.fetch_add(1, Ordering::Relaxed);
                victims.push(loaded);
            }
        }
        Ok(victims)
    }

    /// Stops the victims and loads `index` on a blocking thread, in a task of its own so that a request
    /// that gives up waiting does not leave the model half loaded.
    fn spawn_load(self: &Arc<Self>, index: usize, victims: Vec<Arc<Loaded>>) {
        let table = Arc::clone(self);
        let load = Arc::clone(&self.sources[index].load);
        let id = self.sources[index].id.clone();
        tokio::spawn(async move {
            tracing::info!("loading {id}");
            let result = tokio::task::spawn_blocking(move || {
                for victim in victims {
                    victim.stop(UNLOAD_WAIT);
                }
                load()
            })
            .await
            .map_err(|e| format!("the loading thread failed: {e}"))
            .and_then(|r| r);
            table.finish_load(index, result);
        });
    }

    fn finish_load(&self, index: usize, result: Result<Loaded, String>) {
        {
            let mut slots = self.lock();
            let slot = &mut slots[index];
            match result {
                Ok(loaded) => {
                    if self.closed.load(Ordering::SeqCst) {
                        loaded.shutdown();
                    }
                    self.loads.fetch_add(1, Ordering::Relaxed);
                    slot.state = State::Loaded(Arc::new(loaded));
                    slot.last_used = Instant::now();
                }
                Err(why) => {
                    tracing::error!("loading {} failed: {why}", self.sources[index].id);
                    slot.state = State::Unloaded;
                    slot.last_error = Some(why);
                }
            }
        }
        self.changed.send_modify(|n| *n += 1);
    }
}

/// How long an unloaded model's engine gets to stop before the next model loads anyway.
const UNLOAD_WAIT: Duration = Duration::from_secs(30);

#[cfg(test)]
mod tests;
