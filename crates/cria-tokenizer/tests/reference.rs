#![allow(clippy::unwrap_used)] // tests may unwrap
//! The tokenizers of the two reference models against llama.cpp's own output
//! (testdata/reference/*/tokenize.jsonl).

mod common;

use common::{GEMMA, Model, SMOLLM, TokenizeCase, read_jsonl, tokenizer};
use cria_tokenizer::{DecodeOptions, IncrementalDecoder, Tokenizer};

fn assert_matches_llama_cpp(model: &Model) {
    let Some(tok) = tokenizer(model) else { return };
    let cases: Vec<TokenizeCase> = read_jsonl(model, "tokenize.jsonl");
    assert!(cases.len() > 250, "expected the full reference set");
    let mismatches: Vec<String> = cases
        .iter()
        .filter_map(|c| {
            let got = tok.encode(&c.text, c.add_special, c.parse_special);
            (got != c.ids).then(|| {
                format!(
                    "{:?} (add_special={}, parse_special={}):\n  want {:?}\n  got  {:?}",
                    c.text, c.add_special, c.parse_special, c.ids, got
                )
            })
        })
        .collect();
    assert!(
        mismatches.is_empty(),
        "{} of {} cases differ:\n{}",
        mismatches.len(),
        cases.len(),
        mismatches.join("\n")
    );
}

#[test]
fn smollm2_encodes_exactly_like_llama_cpp() {
    assert_matches_llama_cpp(&SMOLLM);
}

#[test]
fn gemma3_encodes_exactly_like_llama_cpp() {
    assert_matches_llama_cpp(&GEMMA);
}

/// Texts whose decoding legitimately differs from the input: none is expected for these two models
/// (neither adds a space prefix nor cleans up spaces); a case listed here must say why.
fn round_trip_failures(tok: &Tokenizer, cases: &[TokenizeCase]) -> Vec<String> {
    cases
        .iter()
        .filter_map(|c| {
            let ids = tok.encode(&c.text, c.add_special, c.parse_special);
            let opts = DecodeOptions {
                remove_special: c.add_special,
                unparse_special: true,
            };
            let back = tok.decode_with(&ids, opts);
            (back != c.text).then(|| format!("{:?} -> {:?}", c.text, back))
        })
        .collect()
}

#[test]
fn decode_inverts_encode_on_every_reference_text() {
    for model in [&SMOLLM, &GEMMA] {
        let Some(tok) = tokenizer(model) else {
            continue;
        };
        let cases: Vec<TokenizeCase> = read_jsonl(model, "tokenize.jsonl");
        let failures = round_trip_failures(tok, &cases);
        assert!(
            failures.is_empty(),
            "{}: {}",
            model.name,
            failures.join("\n")
        );
    }
}

fn is_korean_or_emoji(c: char) -> bool {
    matches!(c as u32, 0xAC00..=0xD7A3 | 0x1100..=0x11FF | 0x3130..=0x318F | 0x1F000..=0x1FAFF | 0x2600..=0x27BF)
}

#[test]
fn streaming_korean_and_emoji_never_emits_replacement_characters() {
    let mut split_chars = 0;
    for model in [&SMOLLM, &GEMMA] {
        let Some(tok) = tokenizer(model) else {
            continue;
        };
        let cases: Vec<TokenizeCase> = read_jsonl(model, "tokenize.jsonl");
        let streamed: Vec<&TokenizeCase> = cases
            .iter()
            .filter(|c| c.text.chars().any(is_korean_or_emoji))
            .collect();
        assert!(
            streamed.len() >= 10,
            "{}: only {} Korean/emoji cases",
            model.name,
            streamed.len()
        );
        for c in streamed {
            let mut dec = IncrementalDecoder::new(tok);
            let mut pieces = Vec::new();
            for &id in &c.ids {
                let piece = dec.push(id);
                assert!(
                    !piece.contains('\u{FFFD}'),
                    "{}: U+FFFD streaming {:?}",
                    model.name,
                    c.text
                );
                split_chars += usize::from(piece.is_empty() && !tok.token_bytes(id).is_empty());
                pieces.push(piece);
            }
            pieces.push(dec.finish());
            assert_eq!(
                pieces.concat(),
                tok.decode(&c.ids),
                "{}: {:?}",
                model.name,
                c.text
            );
        }
    }
    // the test means something only if some tokens really ended mid-character (SmolLM2's byte-level
    // tokens do; Gemma's vocabulary has whole syllables and emoji)
    if tokenizer(&SMOLLM).is_some() {
        assert!(split_chars > 0, "no token ended inside a character");
    }
}

#[test]
fn end_of_generation_sets_match_llama_cpp() {
    if let Some(tok) = tokenizer(&SMOLLM) {
        // <|endoftext|>, <|im_end|> (also EOS), and <reponame>, which llama.cpp takes for a FIM repo token
        assert_eq!(tok.end_of_generation_ids(), [0, 2, 4]);
        assert_eq!((tok.bos(), tok.eos()), (Some(1), Some(2)));
    }
    if let Some(tok) = tokenizer(&GEMMA) {
        // <eos>, <end_of_turn>, </s>
        assert_eq!(tok.end_of_generation_ids(), [1, 106, 212]);
        assert_eq!((tok.bos(), tok.eos()), (Some(2), Some(1)));
        assert_eq!(tok.vocab_size(), 262_144);
    }
}
