use super::*;

fn words(pre: &str, text: &str) -> Vec<String> {
    let (p, _) = PreTokenizer::for_name(pre).unwrap();
    p.split(text)
        .into_iter()
        .map(|r| text[r].to_string())
        .collect()
}

#[test]
fn gpt2_splits_words_contractions_and_space_runs() {
    assert_eq!(
        words("gpt-2", "Hello world's  end"),
        ["Hello", " world", "'s", " ", " end"]
    );
    assert_eq!(words("gpt-2", "a  "), ["a", "  "]);
    assert_eq!(words("gpt-2", "x=1;"), ["x", "=", "1", ";"]);
}

#[test]
fn smollm_splits_every_digit() {
    assert_eq!(
        words("smollm", "abc 1234"),
        ["abc", " ", "1", "2", "3", "4"]
    );
}

#[test]
fn llama3_groups_three_digits_and_newlines() {
    assert_eq!(
        words("llama-bpe", "12345 ok\n\n"),
        ["123", "45", " ok", "\n\n"]
    );
    assert_eq!(words("llama-bpe", "I'M here"), ["I", "'M", " here"]);
    assert_eq!(words("qwen2", "42"), ["4", "2"]);
}

#[test]
fn deepseek_llm_patterns_compile_and_split() {
    assert_eq!(
        words("deepseek-llm", "Hi 你好\n"),
        ["Hi", " ", "你好", "\n"]
    );
}

#[test]
fn unknown_name_falls_back_to_gpt2() {
    assert_eq!(words("no-such-pre", "a b"), ["a", " b"]);
}

#[test]
fn split_covers_the_whole_text() {
    let text = "한국어 텍스트 🎉🎉 x\t\ty  \n z";
    for pre in [
        "default",
        "gpt-2",
        "llama-bpe",
        "smollm",
        "qwen2",
        "deepseek-llm",
    ] {
        assert_eq!(words(pre, text).concat(), text, "{pre}");
    }
}

#[test]
fn gpt4o_words_split_on_case_changes() {
    assert_eq!(
        words("gpt-4o", "HTTPServer camelCase it's"),
        ["HTTPServer", " camel", "Case", " it's"]
    );
}

#[test]
fn qwen35_accent_marks_join_their_letters() {
    assert_eq!(
        words("qwen35", "e\u{301}x 12"),
        ["e\u{301}x", " ", "1", "2"]
    );
    assert_eq!(words("qwen2", "e\u{301}x"), ["e", "\u{301}x"]);
}

#[test]
fn every_known_name_builds() {
    for name in table::NAMES {
        assert!(PreTokenizer::for_name(name).is_ok(), "{name}");
    }
}
