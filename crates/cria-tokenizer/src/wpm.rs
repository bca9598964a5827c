//! WordPiece (BERT) tokenization, as llama.cpp's `llm_tokenizer_wpm` does it.
//!
//! The text is split into words at whitespace, and every punctuation mark, ASCII symbol and CJK ideograph
//! becomes a word of its own; controls, NUL and U+FFFD are dropped; with the BERT normalizer's options the
//! text is lowercased and accents are stripped (llama.cpp's one-codepoint NFD: each codepoint becomes the
//! first codepoint of its decomposition, then combining marks are dropped). Each word, prefixed with `▁`, is
//! cut greedily into the longest vocabulary pieces from the left; a word with a piece that matches nothing
//! becomes one UNK.

use unicode_properties::{GeneralCategory, GeneralCategoryGroup, UnicodeGeneralCategory};

use crate::vocab::Vocab;

/// The BERT normalizer's options (`tokenizer.ggml.normalizer.*`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct NormalizerOpts {
    pub lowercase: bool,
    pub strip_accents: bool,
}

/// Appends the ids of `text` (no CLS/SEP: the caller adds those).
pub(crate) fn encode(vocab: &Vocab, text: &str, out: &mut Vec<u32>) {
    for word in preprocess(text, vocab.normalizer) {
        let start = out.len();
        if !encode_word(vocab, &format!("▁{word}"), out) {
            out.truncate(start);
            out.extend(vocab.unk);
        }
    }
}

/// Longest-match-first pieces of one `▁`-prefixed word; false if some position matches no piece.
fn encode_word(vocab: &Vocab, word: &str, out: &mut Vec<u32>) -> bool {
    let bytes = word.as_bytes();
    let n = bytes.len();
    let mut i = 0;
    while i < n {
        // byte offsets, as llama.cpp's substr: a cut inside a character matches no token
        let longest = (i + vocab.max_token_len + 1).min(n);
        let found = (i + 1..=longest).rev().find_map(|j| {
            let piece = std::str::from_utf8(&bytes[i..j]).ok()?;
            vocab.text_to_token(piece).map(|id| (id, j))
        });
        let Some((id, end)) = found else {
            return false;
        };
        out.push(id);
        i = end;
    }
    true
}

/// The words of `text` after normalisation (llama.cpp's `llm_tokenizer_wpm_session::preprocess`).
pub(crate) fn preprocess(text: &str, opts: NormalizerOpts) -> Vec<String> {
    let mut words = vec![String::new()];
    for c in text.chars() {
        let c = if opts.strip_accents { nfd_first(c) } else { c };
        if c.is_whitespace() {
            if !words.last().is_some_and(String::is_empty) {
                words.push(String::new());
            }
            continue;
        }
        let category = c.general_category();
        if c == '\0' || c == '\u{FFFD}' || is_control(category) {
            continue;
        }
        let group = c.general_category_group();
        if opts.strip_accents && group == GeneralCategoryGroup::Mark {
            continue;
        }
        let c = if opts.lowercase { lowercase(c) } else { c };
        let alone = group == GeneralCategoryGroup::Punctuation
            || (c.is_ascii() && group == GeneralCategoryGroup::Symbol)
            || is_chinese_char(c);
        let last = words.len() - 1;
        if alone {
            if !words[last].is_empty() {
                words.push(String::new());
            }
            let last = words.len() - 1;
            words[last].push(c);
            words.push(String::new());
        } else {
            words[last].push(c);
        }
    }
    words.retain(|w| !w.is_empty());
    words
}

/// llama.cpp's `\p{C}` flag: control, format, private use, surrogate (not unassigned).
fn is_control(category: GeneralCategory) -> bool {
    matches!(
        category,
        GeneralCategory::Control
            | GeneralCategory::Format
            | GeneralCategory::PrivateUse
            | GeneralCategory::Surrogate
    )
}

/// The first codepoint of `c`'s canonical decomposition (llama.cpp's `unicode_cpts_normalize_nfd`, which
/// maps each codepoint to exactly one).
fn nfd_first(c: char) -> char {
    let mut first = None;
    unicode_normalization::char::decompose_canonical(c, |d| {
        first.get_or_insert(d);
    });
    first.unwrap_or(c)
}

/// The simple lowercase mapping (one codepoint, as llama.cpp's `unicode_tolower`).
fn lowercase(c: char) -> char {
    c.to_lowercase().next().unwrap_or(c)
}

/// CJK ideographs, with llama.cpp's ranges (one of them as Hugging Face's Rust code has it).
fn is_chinese_char(c: char) -> bool {
    matches!(u32::from(c),
        0x4E00..=0x9FFF
        | 0x3400..=0x4DBF
        | 0x20000..=0x2A6DF
        | 0x2A700..=0x2B73F
        | 0x2B740..=0x2B81F
        | 0x2B920..=0x2CEAF
        | 0xF900..=0xFAFF
        | 0x2F800..=0x2FA1F)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BERT: NormalizerOpts = NormalizerOpts {
        lowercase: true,
        strip_accents: true,
    };

    #[test]
    fn preprocess_splits_punctuation_and_strips_accents() {
        let words = preprocess("Héllo,  WORLD!\tcafé\u{0}x $5 a-b 中文", BERT);
        assert_eq!(
            words,
            [
                "hello", ",", "world", "!", "cafex", "$", "5", "a", "-", "b", "中", "文"
            ]
        );
    }

    #[test]
    fn preprocess_keeps_case_and_accents_without_the_normalizer() {
        let words = preprocess("Héllo €5", NormalizerOpts::default());
        // € is a symbol outside ASCII: it stays inside its word
        assert_eq!(words, ["Héllo", "€5"]);
    }
}
