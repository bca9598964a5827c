#![allow(clippy::unwrap_used)] // tests may unwrap
//! `cria perplexity` and `cria eval` on the real models against llama.cpp's figures
//! (testdata/reference/perplexity.json and */logits.jsonl).

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::{cria_output, model_path, reference_path};

fn cria(args: &[&str], stdin: &str) -> String {
    String::from_utf8(cria_output(args, stdin).stdout).unwrap()
}

/// Perplexity at n_ctx 512 within 1% of llama-perplexity's.
fn perplexity_matches(name: &str, reference_name: &str) {
    let Some(model) = model_path(name) else {
        return;
    };
    let reference: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(reference_path(&["perplexity.json"])).unwrap(),
    )
    .unwrap();
    let case = reference["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["model"] == reference_name)
        .unwrap();
    let want = case["ppl"].as_f64().unwrap();
    let text = reference_path(&["texts", "apache-2.0.txt"]);
    let args = [
        "perplexity",
        "-m",
        model.to_str().unwrap(),
        "-f",
        text.to_str().unwrap(),
        "--ctx",
        "512",
        "--json",
    ];
    let report: serde_json::Value = serde_json::from_str(cria(&args, "").trim()).unwrap();
    let got = report["ppl"].as_f64().unwrap();
    eprintln!(
        "{name}: PPL {got:.4} against llama.cpp's {want:.4} ({:+.2}%)",
        100.0 * (got / want - 1.0)
    );
    assert!(
        (got / want - 1.0).abs() < 0.01,
        "{name}: PPL {got} not within 1% of {want}"
    );
    if let Some(tokens) = case["tokens"].as_u64() {
        assert_eq!(
            report["tokens"].as_u64(),
            Some(tokens),
            "the text tokenizes as llama.cpp's did"
        );
    }
}

#[test]
fn smollm2_perplexity_within_one_percent_of_llama_cpp() {
    perplexity_matches("smollm2-135m-instruct", "smollm2-135m-instruct-q4_1");
}

#[test]
fn gemma3_perplexity_within_one_percent_of_llama_cpp() {
    perplexity_matches("gemma-3-270m", "gemma-3-270m-q4_k_m");
}

#[test]
fn eval_prints_reference_shaped_lines_with_matching_top1() {
    let Some(model) = model_path("smollm2-135m-instruct") else {
        return;
    };
    let logits = std::fs::read_to_string(reference_path(&[
        "smollm2-135m-instruct-q4_1",
        "logits.jsonl",
    ]))
    .unwrap();
    let case: serde_json::Value = serde_json::from_str(logits.lines().nth(4).unwrap()).unwrap();
    let ids: Vec<String> = case["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.to_string())
        .collect();
    let out = cria(
        &["eval", "-m", model.to_str().unwrap(), "--top-k", "5"],
        &format!("{}\n", ids.join(" ")),
    );
    let ours: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    let ours = ours.as_array().unwrap();
    assert_eq!(ours.len(), ids.len(), "one entry per position");
    for (pos, (mine, theirs)) in ours
        .iter()
        .zip(case["positions"].as_array().unwrap())
        .enumerate()
    {
        assert_eq!(mine["top"].as_array().unwrap().len(), 5);
        let (lse, ref_lse) = (
            mine["lse"].as_f64().unwrap(),
            theirs["lse"].as_f64().unwrap(),
        );
        assert!(
            (lse - ref_lse).abs() < 0.5,
            "position {pos}: lse {lse} vs {ref_lse}"
        );
        let margin = theirs["top"][0][1].as_f64().unwrap() - theirs["top"][1][1].as_f64().unwrap();
        if margin >= 0.5 {
            assert_eq!(mine["top"][0][0], theirs["top"][0][0], "position {pos}");
        }
    }
}

#[test]
fn eval_rejects_a_line_that_is_not_token_ids() {
    let Some(model) = model_path("smollm2-135m-instruct") else {
        return;
    };
    let out = Command::new(env!("CARGO_BIN_EXE_cria"))
        .args(["eval", "-m", model.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().unwrap().write_all(b"1 2 banana\n")?;
            c.wait_with_output()
        })
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("banana"));
}
