//! `cria ps`: what a running `cria serve` holds, from its `/api/ps`.

use std::io::{self, Write};

use anyhow::Context;
use indicatif::HumanBytes;
use serde_json::Value;

/// Arguments of `cria ps`.
#[derive(clap::Args)]
pub struct Args {
    /// The server's address.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// The server's API key, if it needs one (or set CRIA_API_KEY).
    #[arg(long)]
    api_key: Option<String>,
}

/// Runs `cria ps`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let url = format!("{}/api/ps", args.url.trim_end_matches('/'));
    let key = args
        .api_key
        .or_else(|| std::env::var("CRIA_API_KEY").ok())
        .filter(|k| !k.is_empty());
    let mut request = ureq::get(&url);
    if let Some(key) = &key {
        request = request.header("Authorization", &format!("Bearer {key}"));
    }
    let mut response = request.call().with_context(|| format!("asking {url}"))?;
    let text = response
        .body_mut()
        .read_to_string()
        .with_context(|| format!("reading {url}'s answer"))?;
    let body: Value =
        serde_json::from_str(&text).with_context(|| format!("{url} did not answer JSON"))?;
    write(&mut io::stdout().lock(), &body)?;
    Ok(())
}

/// One line per loaded model: name, size (file and KV cache), requests running, idle time, context.
fn write(out: &mut impl Write, body: &Value) -> io::Result<()> {
    let models = body["models"].as_array().cloned().unwrap_or_default();
    let mut rows = vec![["NAME", "SIZE", "RUNNING", "IDLE", "CONTEXT"].map(String::from)];
    rows.extend(models.iter().map(|m| {
        let number = |key: &str| m[key].as_u64().unwrap_or(0);
        [
            m["name"].as_str().unwrap_or("?").to_string(),
            HumanBytes(number("size")).to_string(),
            number("running").to_string(),
            format!("{}s", number("idle_seconds")),
            number("context_length").to_string(),
        ]
    }));
    let width = |col: usize| rows.iter().map(|r| r[col].len()).max().unwrap_or(0);
    let (w0, w1, w2, w3) = (width(0), width(1), width(2), width(3));
    for [name, size, running, idle, ctx] in &rows {
        writeln!(
            out,
            "{name:<w0$}  {size:>w1$}  {running:>w2$}  {idle:>w3$}  {ctx}"
        )?;
    }
    if models.is_empty() {
        writeln!(out, "(no model loaded)")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn prints_one_line_per_loaded_model() {
        let body = serde_json::json!({"models": [
            {"name": "a:latest", "size": 3_145_728, "running": 2, "idle_seconds": 0, "context_length": 2048},
        ]});
        let mut out = Vec::new();
        write(&mut out, &body).unwrap();
        let text = String::from_utf8(out).unwrap();
        let line = text.lines().nth(1).unwrap();
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(
            fields,
            ["a:latest", "3.00", "MiB", "2", "0s", "2048"],
            "{text}"
        );
    }
}
