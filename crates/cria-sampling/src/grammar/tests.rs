use super::*;
use crate::{Sampler, SamplingParams};

/// Id of the special token `<|open|>` in [`vocab`].
const OPEN: u32 = 264;

/// A byte-level vocabulary: the 256 bytes, a few multi-byte pieces, an end-of-text token and `<|open|>`
/// (special).
fn vocab() -> (GrammarVocab, Vec<Vec<u8>>, u32) {
    let mut tokens: Vec<Vec<u8>> = (0..=255u8).map(|b| vec![b]).collect();
    for piece in ["{\"", "\":", "true", "false", "\"a\"", "12", " \""] {
        tokens.push(piece.as_bytes().to_vec());
    }
    let eos = tokens.len() as u32;
    tokens.push(b"<|end|>".to_vec());
    tokens.push(b"<|open|>".to_vec());
    let entries: Vec<VocabToken> = tokens
        .iter()
        .enumerate()
        .map(|(i, b)| VocabToken {
            bytes: b.clone(),
            special: i as u32 >= eos,
        })
        .collect();
    let tokenize: Tokenize = Arc::new(|s: &[u8]| s.iter().map(|&b| u32::from(b)).collect());
    (
        GrammarVocab::new(&entries, &[eos], tokenize).unwrap(),
        tokens,
        eos,
    )
}

/// Samples under `grammar` with seeded random logits until end of generation; returns the text.
fn generate(grammar: &Grammar, seed: u64) -> String {
    let (vocab, tokens, eos) = vocab();
    let constraint = vocab.compile(grammar).unwrap();
    let params = SamplingParams {
        temperature: 1.0,
        top_k: 0,
        top_p: 1.0,
        min_p: 0.0,
        seed: Some(seed),
        ..SamplingParams::default()
    };
    let mut sampler = Sampler::new(params).with_constraint(Box::new(constraint));
    let mut out = Vec::new();
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    for _ in 0..2000 {
        let logits: Vec<f32> = (0..tokens.len())
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (state >> 40) as f32 / (1u64 << 24) as f32 * 6.0
            })
            .collect();
        let id = sampler.sample(&logits, &[]).unwrap();
        if id == eos {
            return String::from_utf8(out).unwrap();
        }
        out.extend_from_slice(&tokens[id as usize]);
    }
    panic!(
        "no end of generation in 2000 tokens: {:?}",
        String::from_utf8_lossy(&out)
    );
}

#[test]
fn schema_output_always_validates() {
    let schema = serde_json::json!({
        "type": "object",
        "properties": {"a": {"type": "boolean"}, "n": {"type": "integer"}},
        "required": ["a", "n"],
        "additionalProperties": false
    });
    for seed in 0..20 {
        let text = generate(&Grammar::JsonSchema(schema.clone()), seed);
        let value: serde_json::Value = serde_json::from_str(&text).expect(&text);
        assert!(value["a"].is_boolean() && value["n"].is_i64(), "{text}");
    }
}

#[test]
fn regex_output_matches_whole() {
    for seed in 0..10 {
        let text = generate(&Grammar::Regex("[0-9]{3}-(yes|no)".into()), seed);
        let re = regex_lite(&text);
        assert!(re, "{text:?}");
    }
}

fn regex_lite(text: &str) -> bool {
    let (digits, rest) = text.split_at(3.min(text.len()));
    digits.bytes().all(|b| b.is_ascii_digit()) && (rest == "-yes" || rest == "-no")
}

#[test]
fn end_of_generation_only_where_the_grammar_may_end() {
    let (vocab, _, eos) = vocab();
    let mut c = vocab.compile(&Grammar::Regex("[0-9]{2}".into())).unwrap();
    assert!(!c.allows(eos).unwrap());
    c.accept(u32::from(b'4')).unwrap();
    assert!(!c.allows(eos).unwrap());
    assert!(!c.allows(u32::from(b'x')).unwrap());
    c.accept(u32::from(b'2')).unwrap();
    assert!(c.allows(eos).unwrap());
    assert!(!c.allows(u32::from(b'7')).unwrap());
    assert!(c.mask().unwrap().allows(eos));
}

#[test]
fn copies_follow_their_own_sequence() {
    let (vocab, _, eos) = vocab();
    let mut a = vocab.compile(&Grammar::Regex("[0-9]".into())).unwrap();
    let mut b = a.box_clone();
    a.accept(u32::from(b'1')).unwrap();
    assert!(a.allows(eos).unwrap());
    assert!(!b.allows(eos).unwrap());
    assert!(b.allows(u32::from(b'5')).unwrap());
}

#[test]
fn invalid_grammars_fail_before_generation() {
    let (vocab, _, _) = vocab();
    let bad = [
        Grammar::JsonSchema(serde_json::json!({"type": "no-such-type"})),
        Grammar::Lark("start: undefined_rule".into()),
        Grammar::Regex("(unclosed".into()),
        Grammar::Gbnf("root ::= \"a".into()),
    ];
    for g in bad {
        assert!(
            matches!(vocab.compile(&g), Err(ConstraintError::Invalid(_))),
            "{g:?}"
        );
    }
}

#[test]
fn refused_token_is_replaced_by_an_allowed_one() {
    let (vocab, tokens, _) = vocab();
    let c = vocab.compile(&Grammar::Regex("b".into())).unwrap();
    let mut logits = vec![0.0; tokens.len()];
    logits[usize::from(b'a')] = 10.0;
    logits[usize::from(b'b')] = 1.0;
    let mut s = Sampler::new(SamplingParams::greedy()).with_constraint(Box::new(c));
    assert_eq!(s.sample(&logits, &[]).unwrap(), u32::from(b'b'));
}

#[test]
fn gbnf_grammar_constrains_like_its_lark_twin() {
    let gbnf = "root ::= \"ab\" [0-9]+ ws\nws ::= \" \"?";
    for seed in 0..5 {
        let text = generate(&Grammar::Gbnf(gbnf.into()), seed);
        assert!(
            text.starts_with("ab") && text[2..].trim_end().bytes().all(|b| b.is_ascii_digit()),
            "{text:?}"
        );
    }
}

/// How many spaces in a row a JSON grammar takes after `prefix`.
fn spaces_allowed_after(grammar: &Grammar, prefix: &str) -> usize {
    let (vocab, _, _) = vocab();
    let mut c = vocab.compile(grammar).unwrap();
    for b in prefix.bytes() {
        assert!(c.allows(u32::from(b)).unwrap(), "{prefix:?}");
        c.accept(u32::from(b)).unwrap();
    }
    let mut n = 0;
    while n < 200 && c.allows(u32::from(b' ')).unwrap() {
        c.accept(u32::from(b' ')).unwrap();
        n += 1;
    }
    n
}

#[test]
fn json_whitespace_is_bounded() {
    let schema = serde_json::json!({"type": "object", "properties": {"a": {"type": "integer"}}});
    for g in [Grammar::JsonObject, Grammar::JsonSchema(schema)] {
        for prefix in ["", "{", "{\"a\"", "{\"a\":", "{\"a\": 1", "{\"a\": 1}"] {
            let n = spaces_allowed_after(&g, prefix);
            assert!(
                n <= JSON_MAX_WHITESPACE,
                "{g:?} after {prefix:?}: {n} spaces"
            );
        }
    }
    // Indented output is still allowed.
    let (vocab, _, eos) = vocab();
    let mut c = vocab.compile(&Grammar::JsonObject).unwrap();
    for b in "{\n  \"a\": [\n    1,\n    2\n  ]\n}".bytes() {
        assert!(c.allows(u32::from(b)).unwrap(), "{:?}", b as char);
        c.accept(u32::from(b)).unwrap();
    }
    assert!(c.allows(eos).unwrap());
}

#[test]
fn json_schema_keeps_its_own_guidance_options() {
    let schema =
        serde_json::json!({"type": "object", "x-guidance": {"whitespace_flexible": false}});
    assert_eq!(spaces_allowed_after(&Grammar::JsonSchema(schema), "{"), 0);
}

/// Feeds `text` a byte a token; false as soon as a byte is refused.
fn feed(c: &mut GrammarConstraint, text: &str) -> bool {
    for b in text.bytes() {
        if !c.allows(u32::from(b)).unwrap() {
            return false;
        }
        c.accept(u32::from(b)).unwrap();
    }
    true
}

fn lazy(trigger: Trigger, inner: Grammar) -> Grammar {
    Grammar::Lazy {
        triggers: vec![trigger],
        grammar: Box::new(inner),
    }
}

#[test]
fn lazy_grammar_holds_the_output_only_from_its_trigger() {
    let (vocab, _, eos) = vocab();
    let g = lazy(
        Trigger::Text("<<".into()),
        Grammar::Regex("<<[0-9]+".into()),
    );
    let mut c = vocab.compile(&g).unwrap();
    assert!(feed(&mut c, "any text, even < alone ") && c.is_free());
    assert!(c.allows(eos).unwrap(), "free text may end");
    assert_eq!(c.mask().unwrap().allowed().count(), 256 + 7 + 2);
    assert!(feed(&mut c, "<<") && !c.is_free());
    assert!(!c.allows(u32::from(b'x')).unwrap() && !c.allows(eos).unwrap());
    assert!(feed(&mut c, "42") && c.allows(eos).unwrap());
    let mask = c.mask().unwrap();
    assert!(mask.allows(eos) && mask.allows(u32::from(b'7')) && !mask.allows(u32::from(b'a')));
}

#[test]
fn lazy_start_trigger_only_at_the_start() {
    let (vocab, tokens, eos) = vocab();
    let schema = serde_json::json!({"type": "object", "properties": {"a": {"type": "boolean"}},
        "required": ["a"], "additionalProperties": false});
    let g = lazy(Trigger::Start("{\"".into()), Grammar::JsonSchema(schema));
    let mut late = vocab.compile(&g).unwrap();
    assert!(feed(&mut late, "Here: {\"b\": 1}") && late.is_free());
    let mut c = vocab.compile(&g).unwrap();
    assert!(feed(&mut c, "\n "));
    // `{"` as one token completes the trigger.
    let open = tokens.iter().position(|t| t == b"{\"").unwrap() as u32;
    c.accept(open).unwrap();
    assert!(!c.is_free());
    assert!(!c.allows(u32::from(b'b')).unwrap());
    assert!(feed(&mut c, "a\": true}") && c.allows(eos).unwrap());
}

#[test]
fn lazy_trigger_the_grammar_cannot_continue_leaves_the_output_free() {
    let (vocab, tokens, eos) = vocab();
    let g = lazy(Trigger::Text("{".into()), Grammar::Regex("\\{x".into()));
    let mut c = vocab.compile(&g).unwrap();
    let open = tokens.iter().position(|t| t == b"{\"").unwrap() as u32;
    c.accept(open).unwrap();
    assert!(c.is_free() && c.allows(eos).unwrap() && c.allows(u32::from(b'q')).unwrap());
}

#[test]
fn lazy_token_trigger_and_copies() {
    let (vocab, _, eos) = vocab();
    let g = lazy(
        Trigger::Token(OPEN),
        Grammar::Lark(format!("start: <[{OPEN}]> \"ok\"")),
    );
    let mut a = vocab.compile(&g).unwrap();
    assert!(feed(&mut a, "text <|open|> as text is no trigger") && a.is_free());
    let mut b = a.box_clone();
    a.accept(OPEN).unwrap();
    assert!(!a.allows(eos).unwrap());
    assert!(!a.allows(u32::from(b'x')).unwrap() && a.allows(u32::from(b'o')).unwrap());
    assert!(b.allows(u32::from(b'x')).unwrap(), "the copy still waits");
}

#[test]
fn nested_lazy_grammar_is_invalid() {
    let (vocab, _, _) = vocab();
    let inner = lazy(Trigger::Text("a".into()), Grammar::Regex("a".into()));
    let g = lazy(Trigger::Text("b".into()), inner);
    assert!(matches!(
        vocab.compile(&g),
        Err(ConstraintError::Invalid(_))
    ));
}

#[test]
fn compiled_grammars_are_reused_yet_independent() {
    let (vocab, _, eos) = vocab();
    let g = Grammar::Regex("[0-9]{2}".into());
    let mut first = vocab.compile(&g).unwrap();
    assert!(feed(&mut first, "12") && first.allows(eos).unwrap());
    // A second compile of the same grammar starts from the beginning, not where the first one is.
    let mut second = vocab.compile(&g).unwrap();
    assert!(!second.allows(eos).unwrap());
    assert!(feed(&mut second, "34") && second.allows(eos).unwrap());
}
