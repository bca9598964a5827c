//! Issue 18, over real sockets: slow clients (headers or bodies a piece every few hundred ms, or a body
//! that stops) are closed while normal requests are served; idle keep-alive connections are closed; a
//! connection over the cap gets 503; at the shutdown deadline running requests end with an error.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{ByteVocab, MODEL, start_engine};
use cria_engine::{Engine, EngineConfig};
use cria_server::{ChatTurn, Frontend, Loaded, ModelSource, ServerConfig, ServerError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

struct Server {
    addr: SocketAddr,
    engine: Arc<Engine>,
    stop: Option<oneshot::Sender<()>>,
    done: JoinHandle<Result<(), ServerError>>,
}

fn limits() -> ServerConfig {
    ServerConfig {
        header_timeout: Duration::from_secs(1),
        body_timeout: Duration::from_secs(1),
        body_total_timeout: Duration::from_secs(3),
        keep_alive_timeout: Duration::from_secs(1),
        ..ServerConfig::default()
    }
}

async fn start(config: ServerConfig, step_delay: Duration) -> Server {
    start_with(config, step_delay, Arc::new(ByteVocab::new())).await
}

async fn start_with(
    config: ServerConfig,
    step_delay: Duration,
    frontend: Arc<dyn Frontend>,
) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let engine_config = EngineConfig {
        ctx: 100_000,
        ..EngineConfig::default()
    };
    let engine = start_engine(engine_config, step_delay);
    let loaded = Loaded::generator(Arc::clone(&engine), frontend);
    let (stop, stopped) = oneshot::channel::<()>();
    let done = tokio::spawn(cria_server::serve_on(
        listener,
        config,
        vec![ModelSource::new(
            MODEL,
            Arc::new(move || Ok(loaded.clone())),
        )],
        async {
            let _ = stopped.await;
        },
    ));
    let server = Server {
        addr,
        engine,
        stop: Some(stop),
        done,
    };
    for _ in 0..500 {
        if status(&exchange(addr, &request("GET", "/health", "")).await) == 200 {
            return server;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the server never became healthy");
}

fn request(method: &str, path: &str, body: &str) -> String {
    format!(
        "{method} {path} HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn completion(max_tokens: usize, stream: bool) -> String {
    format!(r#"{{"prompt": "hello", "max_tokens": {max_tokens}, "stream": {stream}}}"#)
}

/// Sends `raw` and reads the answer until the server closes the connection.
async fn exchange(addr: SocketAddr, raw: &str) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(raw.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut out)).await;
    assert!(read.is_ok(), "no answer within 20 s to {raw:?}");
    String::from_utf8_lossy(&out).into_owned()
}

fn status(answer: &str) -> u16 {
    answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// A client that sends `first`, then `drip` every `gap` until the server answers or closes; returns how
/// long the connection lived and what the server sent.
async fn slow_client(
    addr: SocketAddr,
    first: &[u8],
    drip: &[u8],
    gap: Duration,
) -> (Duration, String) {
    let start = Instant::now();
    let mut s = TcpStream::connect(addr).await.unwrap();
    let _ = s.write_all(first).await;
    let (mut got, mut buf) = (Vec::new(), vec![0u8; 4096]);
    loop {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "a slow client was never closed"
        );
        match tokio::time::timeout(gap, s.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => break,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) if got.is_empty() && !drip.is_empty() => {
                if s.write_all(drip).await.is_err() {
                    break;
                }
            }
            Err(_) => {}
        }
    }
    (start.elapsed(), String::from_utf8_lossy(&got).into_owned())
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} not in the metrics"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_closed_while_normal_requests_are_served() {
    let server = start(limits(), Duration::ZERO).await;
    let addr = server.addr;
    let gap = Duration::from_millis(300);
    let head = b"POST /v1/completions HTTP/1.1\r\nhost: t\r\n".as_slice();
    let body_head =
        b"POST /v1/completions HTTP/1.1\r\nhost: t\r\ncontent-length: 10000\r\n\r\n{".as_slice();
    let mut slow = Vec::new();
    for _ in 0..50 {
        slow.push((
            "header drip",
            tokio::spawn(slow_client(addr, head, b"x-a: b\r\n", gap)),
        ));
    }
    for _ in 0..20 {
        slow.push((
            "body drip",
            tokio::spawn(slow_client(addr, body_head, b" ", gap)),
        ));
        slow.push((
            "body stall",
            tokio::spawn(slow_client(addr, body_head, b"", gap)),
        ));
    }
    for i in 0..10 {
        let started = Instant::now();
        let answer = exchange(
            addr,
            &request("POST", "/v1/completions", &completion(3, false)),
        )
        .await;
        assert_eq!(
            status(&answer),
            200,
            "normal request {i} among slow clients: {answer}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "normal request {i} took {:?}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for (kind, client) in slow {
        let (lived, answer) = client.await.unwrap();
        assert!(
            lived < Duration::from_secs(10),
            "{kind}: open for {lived:?}"
        );
        match kind {
            "header drip" => assert!(answer.is_empty(), "{kind}: {answer}"),
            _ => assert_eq!(status(&answer), 408, "{kind}: {answer}"),
        }
    }
    let metrics = exchange(addr, &request("GET", "/metrics", "")).await;
    assert!(
        metric(
            &metrics,
            "cria_connections_closed_total{reason=\"header_timeout\"}"
        ) >= 50.0
    );
    assert_eq!(
        metric(&metrics, "cria_open_connections"),
        1.0,
        "only the metrics request is open"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_is_closed_after_its_timeout() {
    let server = start(limits(), Duration::ZERO).await;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    let keep_alive = request("GET", "/health", "").replace("connection: close\r\n", "");
    s.write_all(keep_alive.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = s.read(&mut buf).await.unwrap();
    assert_eq!(status(&String::from_utf8_lossy(&buf[..n])), 200);
    let idle = Instant::now();
    let closed = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf)).await;
    assert!(
        matches!(closed, Ok(Ok(0))),
        "the idle connection was not closed: {closed:?}"
    );
    assert!(
        idle.elapsed() >= Duration::from_millis(900),
        "closed too early: {:?}",
        idle.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_over_the_cap_gets_503_and_the_slot_frees_up() {
    let server = start(
        ServerConfig {
            max_connections: 3,
            ..limits()
        },
        Duration::ZERO,
    )
    .await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(server.addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let refused = exchange(server.addr, &request("GET", "/health", "")).await;
    assert_eq!(status(&refused), 503, "{refused}");
    assert!(refused.contains("too_many_connections"), "{refused}");
    // The held connections send nothing: the header timeout closes them and frees their places.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let served = exchange(server.addr, &request("GET", "/health", "")).await;
    assert_eq!(status(&served), 200, "{served}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_shutdown_deadline_running_requests_end_with_an_error() {
    let mut server = start(
        ServerConfig {
            shutdown_timeout: Duration::from_millis(300),
            ..limits()
        },
        Duration::from_millis(5),
    )
    .await;
    let addr = server.addr;
    let stream = tokio::spawn(async move {
        exchange(
            addr,
            &request("POST", "/v1/completions", &completion(100_000, true)),
        )
        .await
    });
    let plain = tokio::spawn(async move {
        exchange(
            addr,
            &request("POST", "/v1/completions", &completion(100_000, false)),
        )
        .await
    });
    while server.engine.stats().running < 2 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.stop.take().unwrap().send(()).unwrap();
    let streamed = stream.await.unwrap();
    let events: Vec<&str> = streamed
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .collect();
    assert_eq!(events.last(), Some(&"[DONE]"), "{streamed}");
    assert!(
        events[events.len() - 2].contains("\"code\":\"shutting_down\""),
        "{streamed}"
    );
    let plain = plain.await.unwrap();
    assert_eq!(status(&plain), 503, "{plain}");
    assert!(plain.contains("\"code\":\"shutting_down\""), "{plain}");
    match server.done.await.unwrap() {
        Err(ServerError::ShutdownDeadline { open }) => assert_eq!(open, 2),
        other => panic!("expected ShutdownDeadline, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_within_the_deadline_finishes_running_requests() {
    let mut server = start(limits(), Duration::from_millis(5)).await;
    let addr = server.addr;
    let plain = tokio::spawn(async move {
        exchange(
            addr,
            &request("POST", "/v1/completions", &completion(40, false)),
        )
        .await
    });
    while server.engine.stats().running < 1 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.stop.take().unwrap().send(()).unwrap();
    let plain = plain.await.unwrap();
    assert_eq!(status(&plain), 200, "{plain}");
    assert!(server.done.await.unwrap().is_ok());
}

/// A frontend whose tokenizer panics on the prompt "panic".
struct PanicsOnPrompt(ByteVocab);

impl Frontend for PanicsOnPrompt {
    fn chat_prompt(&self, turns: &[ChatTurn]) -> Result<Vec<u32>, String> {
        self.0.chat_prompt(turns)
    }
    fn text_prompt(&self, text: &str) -> Vec<u32> {
        assert_ne!(text, "panic", "the tokenizer panicked");
        self.0.text_prompt(text)
    }
    fn token_bytes(&self, id: u32) -> Vec<u8> {
        Frontend::token_bytes(&self.0, id)
    }
    fn vocab_size(&self) -> usize {
        self.0.vocab_size()
    }
    fn constrain(
        &self,
        grammar: &cria_sampling::grammar::Grammar,
    ) -> Result<Box<dyn cria_sampling::TokenConstraint>, String> {
        self.0.constrain(grammar)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_handler_answers_500_and_the_server_goes_on() {
    let frontend = Arc::new(PanicsOnPrompt(ByteVocab::new()));
    let server = start_with(limits(), Duration::ZERO, frontend).await;
    let body = r#"{"prompt": "panic", "max_tokens": 2}"#;
    let answer = exchange(server.addr, &request("POST", "/v1/completions", body)).await;
    assert_eq!(status(&answer), 500, "{answer}");
    assert!(answer.contains("\"type\":\"server_error\""), "{answer}");
    let served = exchange(
        server.addr,
        &request("POST", "/v1/completions", &completion(2, false)),
    )
    .await;
    assert_eq!(status(&served), 200, "{served}");
}
