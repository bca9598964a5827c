//! Issue 18: every bad setting fails at start, the same way in every subcommand: one line on stderr, exit
//! code 2, no panic and no backtrace (even with RUST_BACKTRACE=1). And `cria serve`'s exit codes for an
//! engine that cannot go on (3) and for a shutdown deadline hit with requests running (4).

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The model-running subcommands and the arguments each needs besides the model.
const COMMANDS: &[&[&str]] = &[
    &["run", "hello"],
    &["chat"],
    &["serve", "--port", "1"],
    &["bench"],
    &["eval"],
    &["perplexity", "-f", "Cargo.toml"],
];

/// A kernel path this CPU cannot run.
#[cfg(target_arch = "x86_64")]
const MISSING_ISA: &str = "neon";
#[cfg(not(target_arch = "x86_64"))]
const MISSING_ISA: &str = "avx2";

fn cria(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cria"));
    cmd.args(args)
        .env("RUST_BACKTRACE", "1")
        .env_remove("CRIA_ISA")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// Asserts a clean refusal: exit code 2, one line on stderr that contains `needle`.
fn refused(out: &Output, needle: &str, case: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{case}: {stderr}");
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "{case}: not one line: {stderr}"
    );
    assert!(
        stderr.contains(needle),
        "{case}: {stderr:?} lacks {needle:?}"
    );
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "{case}: {stderr}"
    );
}

fn with<'a>(command: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = command.to_vec();
    args.extend_from_slice(extra);
    args
}

#[test]
fn an_unknown_or_missing_isa_is_refused_by_every_subcommand() {
    for command in COMMANDS {
        for (isa, needle) in [("bogus", "CRIA_ISA=bogus"), (MISSING_ISA, "lacks")] {
            let out = cria(command, &[("CRIA_ISA", isa)]);
            refused(&out, needle, &format!("CRIA_ISA={isa} {command:?}"));
        }
    }
}

#[test]
fn zero_threads_a_directory_or_a_missing_model_file_are_refused_by_every_subcommand() {
    // An empty folder: `serve` takes a folder of GGUF files (and refuses one that holds none); the other
    // commands refuse any folder. (The shared temp dir may hold GGUF files: serve then ran and never ended.)
    let empty = std::env::temp_dir().join(format!("cria-settings-empty-{}", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap();
    let dir = empty.to_str().unwrap();
    for command in COMMANDS {
        refused(&cria(&with(command, &["-t", "0"]), &[]), "-t 0", "-t 0");
        let needle = if command[0] == "serve" {
            "holds no .gguf file"
        } else {
            "is a directory"
        };
        refused(&cria(&with(command, &["-m", dir]), &[]), needle, "-m dir");
        let missing = with(command, &["-m", "/nonexistent/model.gguf"]);
        refused(&cria(&missing, &[]), "no such file", "-m missing");
    }
    refused(
        &cria(&["inspect", dir], &[]),
        "is a directory",
        "inspect dir",
    );
    refused(
        &cria(&["tokenize", "-m", dir], &[]),
        "is a directory",
        "tokenize dir",
    );
    let _ = std::fs::remove_dir(&empty);
}

#[test]
fn too_many_threads_are_capped_at_the_cores_with_a_warning() {
    let out = cria(
        &["run", "-t", "100000", "-m", "/nonexistent/model.gguf", "hi"],
        &[],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning: -t 100000 is more than the"),
        "{stderr}"
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "then the missing model: {stderr}"
    );
}

#[test]
fn sizes_below_their_floor_are_refused() {
    let cases: &[(&[&str], &str)] = &[
        (&["run", "--ctx", "0", "hi"], "--ctx 0"),
        (&["chat", "--ctx", "0"], "--ctx 0"),
        (&["serve", "--ctx", "0"], "--ctx 0"),
        (&["serve", "--parallel", "0"], "--parallel 0"),
        (&["serve", "--step-tokens", "0"], "--step-tokens 0"),
        (&["serve", "--max-connections", "0"], "--max-connections 0"),
        (&["serve", "--header-timeout", "0"], "--header-timeout 0"),
        (&["serve", "--body-timeout", "0"], "--body-timeout 0"),
        (
            &["serve", "--keep-alive-timeout", "0"],
            "--keep-alive-timeout 0",
        ),
        (&["perplexity", "-f", "Cargo.toml", "--ctx", "0"], "--ctx 0"),
        (&["perplexity", "-f", "/nonexistent.txt"], "no such file"),
        (&["run", "--temp=-1", "hi"], "--temp -1"),
    ];
    for (args, needle) in cases {
        refused(&cria(args, &[]), needle, &format!("{args:?}"));
    }
    let fault = cria(&["serve"], &[("CRIA_FAULT_STEP", "soon")]);
    refused(&fault, "CRIA_FAULT_STEP", "a malformed fault plan");
}

/// A `cria serve` on the smollm2 model, on a free port, once healthy.
struct Serve {
    child: Child,
    port: u16,
}

impl Serve {
    fn start(flags: &[&str], env: &[(&str, &str)]) -> Option<Serve> {
        let model = common::model_path("smollm2-135m-instruct")?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_cria"));
        cmd.args([
            "serve",
            "-m",
            model.to_str().unwrap(),
            "--port",
            &port.to_string(),
        ])
        .args(flags)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let serve = Serve {
            child: cmd.spawn().unwrap(),
            port,
        };
        let start = Instant::now();
        while serve.http("GET /health", "").0 != 200 {
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "serve never became healthy"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(serve)
    }

    fn http(&self, line: &str, body: &str) -> (u16, String) {
        http(self.port, line, body)
    }

    fn exit_code(mut self) -> (Option<i32>, String) {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let mut stderr = String::new();
                self.child
                    .stderr
                    .take()
                    .unwrap()
                    .read_to_string(&mut stderr)
                    .unwrap();
                return (status.code(), stderr);
            }
            if start.elapsed() > Duration::from_secs(60) {
                let _ = self.child.kill();
                panic!("serve did not exit");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// (status, body) of one request; status 0 when the server is unreachable.
fn http(port: u16, line: &str, body: &str) -> (u16, String) {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return (0, String::new());
    };
    let raw = format!(
        "{line} HTTP/1.1\r\nhost: t\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut out = String::new();
    if s.write_all(raw.as_bytes()).is_err() || s.read_to_string(&mut out).is_err() {
        return (0, out);
    }
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, out)
}

const SHORT: &str = r#"{"prompt": "Hello", "max_tokens": 4}"#;

#[test]
fn serve_exits_with_code_3_when_its_engine_cannot_go_on() {
    let Some(serve) = Serve::start(&[], &[("CRIA_FAULT_STEP", "1..")]) else {
        return;
    };
    // Every step panics: three requests fail with 500, then the engine gives up.
    for _ in 0..3 {
        let (status, body) = serve.http("POST /v1/completions", SHORT);
        assert!(
            status == 500 || status == 503 || status == 0,
            "{status}: {body}"
        );
    }
    let (code, stderr) = serve.exit_code();
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("the engine failed"), "{stderr}");
}

#[test]
fn serve_exits_with_code_4_when_its_shutdown_deadline_passes() {
    let Some(serve) = Serve::start(&["--shutdown-timeout", "1"], &[]) else {
        return;
    };
    let port = serve.port;
    let long = r#"{"prompt": "Count", "max_tokens": 100000, "ignore_eos": true}"#;
    let client = std::thread::spawn(move || http(port, "POST /v1/completions", long));
    std::thread::sleep(Duration::from_millis(1500));
    let pid = serve.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let (status, body) = client.join().unwrap();
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("shutting_down"), "{body}");
    let (code, stderr) = serve.exit_code();
    assert_eq!(code, Some(4), "{stderr}");
}
