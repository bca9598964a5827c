//! A fake model and tokenizer for handler tests: one token per byte, 256 is the end of generation.

#![allow(dead_code, clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use cria_engine::{Backend, Engine, EngineConfig, EngineError, Step, Vocab};
use cria_sampling::TokenConstraint;
use cria_sampling::grammar::{Grammar, GrammarVocab, VocabToken};
use cria_server::{ChatTurn, Frontend, LoadFn, Loaded, ModelSource, ServerConfig, Shared};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

pub const EOG: u32 = 256;
pub const MODEL: &str = "fake-model";

pub struct ByteVocab(Vec<Vec<u8>>);

impl ByteVocab {
    pub fn new() -> Self {
        let mut v: Vec<Vec<u8>> = (0..=255u8).map(|b| vec![b]).collect();
        v.push(Vec::new());
        ByteVocab(v)
    }
}

impl Vocab for ByteVocab {
    fn token_bytes(&self, id: u32) -> &[u8] {
        self.0.get(id as usize).map_or(&[], Vec::as_slice)
    }

    fn is_eog(&self, id: u32) -> bool {
        id == EOG
    }

    fn end_of_generation_ids(&self) -> Vec<u32> {
        vec![EOG]
    }
}

impl Frontend for ByteVocab {
    fn chat_prompt(&self, turns: &[ChatTurn]) -> Result<Vec<u32>, String> {
        let text: String = turns
            .iter()
            .map(|t| format!("{}: {}\n", t.role, t.content))
            .collect();
        Ok(self.text_prompt(&text))
    }

    fn text_prompt(&self, text: &str) -> Vec<u32> {
        text.bytes().map(u32::from).collect()
    }

    fn token_bytes(&self, id: u32) -> Vec<u8> {
        Vocab::token_bytes(self, id).to_vec()
    }

    fn vocab_size(&self) -> usize {
        257
    }

    fn constrain(&self, grammar: &Grammar) -> Result<Box<dyn TokenConstraint>, String> {
        let tokens: Vec<VocabToken> = (0..257u32)
            .map(|id| VocabToken {
                bytes: Vocab::token_bytes(self, id).to_vec(),
                special: id == EOG,
            })
            .collect();
        let tokenize = Arc::new(|bytes: &[u8]| bytes.iter().map(|&b| u32::from(b)).collect());
        let vocab = GrammarVocab::new(&tokens, &[EOG], tokenize).map_err(|e| e.to_string())?;
        Ok(Box::new(vocab.compile(grammar).map_err(|e| e.to_string())?))
    }
}

/// Lowercase letters and spaces, chosen by a hash of the sequence's own history, which is kept as a paged KV
/// pool of token ids: each step stores its tokens through the block table and reads the history back through
/// it, as a model does, so a prefix the engine's prompt cache reuses (positions before `start`) is seen.
pub struct FakeBackend {
    pool: HashMap<(u32, usize), u32>,
    block_size: usize,
    delay: Duration,
}

impl Backend for FakeBackend {
    fn reset_slot(&mut self, _slot: usize) {}

    fn forward(&mut self, steps: &[Step<'_>]) -> Result<Vec<Vec<f32>>, EngineError> {
        std::thread::sleep(self.delay);
        Ok(steps.iter().map(|s| self.feed(s)).collect())
    }

    fn kv_bytes(&self) -> usize {
        0
    }
}

impl FakeBackend {
    fn feed(&mut self, step: &Step<'_>) -> Vec<f32> {
        let bs = self.block_size;
        let at = |pos: usize| (step.blocks[pos / bs], pos % bs);
        for (i, &t) in step.tokens.iter().enumerate() {
            self.pool.insert(at(step.start + i), t);
        }
        if !step.want_logits {
            return Vec::new();
        }
        let h = (0..step.start + step.tokens.len())
            .map(|pos| self.pool[&at(pos)])
            .fold(7u64, |h, t| h.wrapping_mul(31).wrapping_add(u64::from(t)));
        (0..257u64)
            .map(|i| match i {
                32 | 97..=122 => ((h ^ (i * 2654435761)) % 1000) as f32 / 100.0,
                _ => -100.0,
            })
            .collect()
    }
}

pub struct Setup {
    pub config: ServerConfig,
    pub engine: EngineConfig,
    pub delay: Duration,
    pub loaded: bool,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            config: ServerConfig::default(),
            engine: EngineConfig {
                ctx: 512,
                ..EngineConfig::default()
            },
            delay: Duration::ZERO,
            loaded: true,
        }
    }
}

/// An engine on the fake model.
pub fn start_engine(config: EngineConfig, delay: Duration) -> Arc<Engine> {
    let block_size = config.block_size;
    let engine = Engine::start(config, Arc::new(ByteVocab::new()), move || {
        Ok(FakeBackend {
            pool: HashMap::new(),
            block_size,
            delay,
        })
    })
    .unwrap();
    Arc::new(engine)
}

pub fn app(setup: Setup) -> (Router, Option<Arc<Engine>>) {
    if !setup.loaded {
        let never: LoadFn = Arc::new(|| Err("not in this test".into()));
        let state = Shared::new(setup.config, vec![ModelSource::new(MODEL, never)]);
        return (cria_server::router(state), None);
    }
    let e = start_engine(setup.engine, setup.delay);
    let loaded = Loaded::generator(e.clone(), Arc::new(ByteVocab::new()));
    let state = Shared::with_loaded(setup.config, MODEL, loaded);
    (cria_server::router(state), Some(e))
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub text: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    /// The `data:` payloads of an SSE body.
    pub fn events(&self) -> Vec<String> {
        self.text
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .map(str::to_string)
            .collect()
    }

    /// Asserts the OpenAI error shape and returns the error object.
    pub fn error(&self, status: StatusCode) -> Value {
        assert_eq!(self.status, status, "{}", self.text);
        let body = self.json();
        let err = body["error"].clone();
        assert!(
            err["message"].is_string() && err["type"].is_string(),
            "{body}"
        );
        assert!(
            err.get("param").is_some() && err.get("code").is_some(),
            "{body}"
        );
        err
    }
}

pub async fn send(app: &Router, req: Request<Body>) -> Answer {
    let response = app.clone().oneshot(req).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        headers,
        text: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

pub async fn post(app: &Router, path: &str, body: &str) -> Answer {
    let req = Request::post(path)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    send(app, req).await
}

pub async fn get(app: &Router, path: &str) -> Answer {
    send(app, Request::get(path).body(Body::empty()).unwrap()).await
}
