//! WordPiece (`tokenizer.ggml.model = "bert"`) against llama.cpp: a trained BERT vocabulary in a tiny GGUF,
//! and llama.cpp's ids for every case (testdata/bert/, made by scripts/bert-conformance/make.py; see
//! PROVENANCE.md there).

use std::path::{Path, PathBuf};

use cria_tokenizer::Tokenizer;
use serde::Deserialize;

#[derive(Deserialize)]
struct Case {
    text: String,
    add_special: bool,
    parse_special: bool,
    ids: Vec<u32>,
}

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/bert")
}

fn tokenizer() -> Tokenizer {
    let file = cria_gguf::GgufFile::open(data_dir().join("bert.gguf")).expect("bert.gguf");
    Tokenizer::from_gguf(&file).expect("tokenizer builds")
}

fn cases() -> Vec<Case> {
    let text =
        std::fs::read_to_string(data_dir().join("wpm-cases.jsonl")).expect("wpm-cases.jsonl");
    text.split('\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_str(l).expect("case parses"))
        .collect()
}

#[test]
fn wordpiece_ids_equal_llama_cpp() {
    let tok = tokenizer();
    let cases = cases();
    assert!(cases.len() > 300, "{} cases", cases.len());
    let mut failures = Vec::new();
    for c in &cases {
        let ids = tok.encode(&c.text, c.add_special, c.parse_special);
        if ids != c.ids {
            failures.push(format!(
                "{:?} (special {}/{}):\n  cria  {ids:?}\n  llama {:?}",
                c.text, c.add_special, c.parse_special, c.ids
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures
            .iter()
            .take(8)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn wordpiece_adds_cls_and_sep_with_add_special() {
    let tok = tokenizer();
    let ids = tok.encode("hello", true, false);
    assert_eq!(ids.first().copied(), tok.bos());
    assert_eq!(ids.last().copied(), tok.sep());
    assert_eq!(tok.token_text(ids[0]), "[CLS]");
    assert_eq!(tok.token_text(ids[ids.len() - 1]), "[SEP]");
}

#[test]
fn wordpiece_unknown_word_is_one_unk() {
    let tok = tokenizer();
    // a character the vocabulary lacks makes the whole word one [UNK]
    let ids = tok.encode("the qqq☃qqq the", false, false);
    let unk = tok.token_id("[UNK]").expect("[UNK] in vocab");
    assert_eq!(ids.iter().filter(|&&i| i == unk).count(), 1, "{ids:?}");
}
