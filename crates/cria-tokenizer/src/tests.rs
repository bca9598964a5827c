//! Unit tests on small hand-made vocabularies (the real models are exercised in tests/).

use super::*;

fn bpe_spec() -> TokenizerSpec {
    let tokens = [
        "<|end|>", "a", "b", "c", "Ġ", "ab", "abc", "Ġa", "Ġab", "<|user|>", "Ã", "©",
    ];
    TokenizerSpec {
        model: "gpt2".into(),
        pre: Some("gpt2".into()),
        tokens: tokens.iter().map(|s| s.to_string()).collect(),
        token_types: Some(vec![3, 1, 1, 1, 1, 1, 1, 1, 1, 4, 1, 1]),
        merges: ["a b", "ab c", "Ġ a", "Ġa b"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        eos: Some(0),
        ..TokenizerSpec::default()
    }
}

fn spm_spec() -> TokenizerSpec {
    let mut tokens: Vec<String> = ["<unk>", "<s>", "</s>"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    tokens.extend((0..=255u8).map(|b| format!("<0x{b:02X}>")));
    tokens.extend(
        ["▁", "a", "b", "ab", "▁a", "▁ab", "<start>"]
            .iter()
            .map(|s| s.to_string()),
    );
    let mut types = vec![2, 3, 3];
    types.extend([6; 256]);
    types.extend([1, 1, 1, 1, 1, 1, 3]);
    let mut scores = vec![0.0; 259];
    scores.extend([-1.0, -2.0, -2.0, -3.0, -1.5, -0.5, 0.0]);
    TokenizerSpec {
        model: "llama".into(),
        tokens,
        token_types: Some(types),
        scores: Some(scores),
        ..TokenizerSpec::default()
    }
}

const SPM_SPACE: u32 = 259;

#[test]
fn bpe_applies_merges_by_rank() {
    let tok = Tokenizer::from_spec(&bpe_spec()).unwrap();
    assert_eq!(tok.encode("abc", false, false), [6]);
    // "Ġab": rank 0 ("a b") goes first, after which "Ġ a" no longer applies
    assert_eq!(tok.encode("ab ab", false, false), [5, 4, 5]);
    assert_eq!(tok.encode(" a", false, false), [7]);
    assert_eq!(tok.encode("cab", false, false), [3, 5]);
}

#[test]
fn bpe_unknown_bytes_fall_back_or_vanish_like_llama_cpp() {
    let tok = Tokenizer::from_spec(&bpe_spec()).unwrap();
    // "é" is bytes C3 A9 -> "Ã©": two single-character tokens, since no merge joins them
    assert_eq!(tok.encode("é", false, false), [10, 11]);
    // "d" has no token at all and is dropped, as llama.cpp does
    assert_eq!(tok.encode("ad", false, false), [1]);
}

#[test]
fn special_tokens_need_parse_special_unless_user_defined() {
    let tok = Tokenizer::from_spec(&bpe_spec()).unwrap();
    assert_eq!(tok.encode("a<|end|>", false, true), [1, 0]);
    assert_ne!(tok.encode("a<|end|>", false, false), [1, 0]);
    assert_eq!(tok.encode("<|user|>ab", false, false), [9, 5]);
}

#[test]
fn decode_inverts_byte_level_mapping() {
    let tok = Tokenizer::from_spec(&bpe_spec()).unwrap();
    assert_eq!(tok.decode(&[8, 10, 11]), " abé");
    assert_eq!(tok.decode(&[0]), "<|end|>");
    let opts = DecodeOptions {
        unparse_special: false,
        ..DecodeOptions::default()
    };
    assert_eq!(tok.decode_with(&[1, 0], opts), "a");
}

#[test]
fn eos_and_eog() {
    let tok = Tokenizer::from_spec(&bpe_spec()).unwrap();
    assert_eq!(tok.eos(), Some(0));
    assert!(tok.is_end_of_generation(0));
    assert!(!tok.is_end_of_generation(1));
}

#[test]
fn spm_adds_bos_and_space_prefix_and_merges_by_score() {
    let tok = Tokenizer::from_spec(&spm_spec()).unwrap();
    let a = SPM_SPACE + 1;
    let sp_ab = SPM_SPACE + 5;
    assert_eq!(tok.encode("ab", true, false), [1, sp_ab]);
    assert_eq!(tok.encode("ab a", false, false), [sp_ab, SPM_SPACE + 4]);
    assert_eq!(tok.encode("", true, false), [1]);
    assert_eq!(
        tok.decode_with(
            &[1, sp_ab],
            DecodeOptions {
                remove_special: true,
                unparse_special: true
            }
        ),
        " ab"
    );
    assert_eq!(tok.encode("a", false, false), [SPM_SPACE + 4]);
    let _ = a;
}

#[test]
fn spm_falls_back_to_byte_tokens() {
    let tok = Tokenizer::from_spec(&spm_spec()).unwrap();
    let ids = tok.encode("é", false, false);
    assert_eq!(ids, [SPM_SPACE, 3 + 0xC3, 3 + 0xA9]);
    // the space the tokenizer prefixed is taken off again, as llama.cpp's detokenize does
    assert_eq!(tok.decode(&ids), "é");
}

#[test]
fn spm_space_prefix_follows_special_tokens() {
    let tok = Tokenizer::from_spec(&spm_spec()).unwrap();
    let start = SPM_SPACE + 6;
    assert_eq!(tok.encode("<start>ab", false, true), [start, SPM_SPACE + 5]);
}

#[test]
fn incremental_decoder_holds_partial_characters() {
    let tok = Tokenizer::from_spec(&spm_spec()).unwrap();
    let mut dec = IncrementalDecoder::new(&tok);
    assert_eq!(dec.push(3 + 0xED), "");
    assert_eq!(dec.push(3 + 0x95), "");
    assert_eq!(dec.push(3 + 0x9C), "한");
    assert_eq!(dec.push(3 + 0xFF), "\u{FFFD}");
    assert_eq!(dec.push(3 + 0xF0), "");
    assert_eq!(dec.finish(), "\u{FFFD}");
    assert_eq!(dec.pending_len(), 0);
}

#[test]
fn unsupported_model_is_an_error() {
    let spec = TokenizerSpec {
        model: "t5".into(),
        tokens: vec!["a".into()],
        ..TokenizerSpec::default()
    };
    assert!(matches!(
        Tokenizer::from_spec(&spec),
        Err(TokenizerError::UnsupportedModel(_))
    ));
}

#[test]
fn mismatched_scores_are_an_error() {
    let mut spec = spm_spec();
    spec.scores = Some(vec![0.0; 3]);
    assert!(matches!(
        Tokenizer::from_spec(&spec),
        Err(TokenizerError::LengthMismatch { .. })
    ));
}

#[test]
fn tokenizer_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Tokenizer>();
    check::<ChatTemplate>();
}
