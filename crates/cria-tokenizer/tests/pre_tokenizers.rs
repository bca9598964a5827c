//! Every pre-tokenizer against llama.cpp: one trained byte-level BPE vocabulary (merges cross every word
//! boundary, so each split shows in the ids) tokenized by llama.cpp under each `tokenizer.ggml.pre` value
//! (testdata/tokenizer-parity/, made by scripts/tokenizer-parity/make.py; see PROVENANCE.md there).

use std::path::{Path, PathBuf};

use cria_tokenizer::{Tokenizer, TokenizerSpec};
use serde::Deserialize;

#[derive(Deserialize)]
struct Case {
    text: String,
    add_special: bool,
    parse_special: bool,
}

#[derive(Deserialize)]
struct Vocab {
    tokens: Vec<String>,
    token_types: Vec<i32>,
    merges: Vec<String>,
    bos: u32,
    eos: u32,
}

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/tokenizer-parity")
}

fn tokenizer_for(pre: &str) -> Tokenizer {
    let text = std::fs::read_to_string(data_dir().join("vocab.json")).expect("vocab.json");
    let vocab: Vocab = serde_json::from_str(&text).expect("vocab.json parses");
    let spec = TokenizerSpec {
        model: "gpt2".into(),
        pre: Some(pre.into()),
        tokens: vocab.tokens,
        token_types: Some(vocab.token_types),
        merges: vocab.merges,
        bos: Some(vocab.bos),
        eos: Some(vocab.eos),
        ..TokenizerSpec::default()
    };
    Tokenizer::from_spec(&spec).expect("tokenizer builds")
}

/// The pre-tokenizer names with reference data, from the files present.
fn pre_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(data_dir())
        .expect("testdata/tokenizer-parity")
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".ids").map(str::to_owned)
        })
        .collect();
    names.sort();
    names
}

fn cases() -> Vec<Case> {
    let text = std::fs::read_to_string(data_dir().join("cases.jsonl")).expect("cases.jsonl");
    text.lines()
        .map(|line| serde_json::from_str(line).expect("case parses"))
        .collect()
}

fn mismatches(pre: &str, cases: &[Case]) -> Vec<String> {
    let tok = tokenizer_for(pre);
    let ids = std::fs::read_to_string(data_dir().join(format!("{pre}.ids"))).expect("ids");
    let expected: Vec<Vec<u32>> = ids
        .lines()
        .map(|line| serde_json::from_str(line).expect("ids parse"))
        .collect();
    assert_eq!(expected.len(), cases.len(), "{pre}.ids has a line per case");
    cases
        .iter()
        .zip(expected)
        .filter_map(|(case, want)| {
            let got = tok.encode(&case.text, case.add_special, case.parse_special);
            (got != want).then(|| {
                format!(
                    "{pre}: {:?} (add_special {}, parse_special {}):\n  cria      {got:?}\n  llama.cpp {want:?}",
                    case.text, case.add_special, case.parse_special
                )
            })
        })
        .collect()
}

#[test]
fn every_pre_tokenizer_encodes_like_llama_cpp() {
    let names = pre_names();
    assert!(
        names.len() >= 30,
        "reference data for {} pre-tokenizers only",
        names.len()
    );
    let cases = cases();
    let failures: Vec<String> = names
        .iter()
        .flat_map(|pre| mismatches(pre, &cases))
        .collect();
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures
            .iter()
            .take(30)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}
