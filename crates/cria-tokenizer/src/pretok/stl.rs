//! llama.cpp's general path for a pre-tokenizer regex (`unicode_regex_split` falling back to `std::regex`),
//! emulated so that splits agree codepoint for codepoint.
//!
//! A pattern that names Unicode classes (`\p{L}`, `\p{N}`, ...) runs on a "collapsed" text in which every
//! non-ASCII codepoint is replaced by one stand-in character for its class, and each `\p{..}` in the pattern
//! becomes that stand-in plus the ASCII members of the class. So `[^a-z]` matches every non-ASCII letter,
//! lower case or not, exactly as in llama.cpp. A pattern without classes runs on the text itself, with
//! non-ASCII whitespace turned into U+000B (std::regex's `\s` is ASCII only). `fancy-regex` supplies the
//! look-arounds std::regex has and the `regex` crate does not.

use std::ops::Range;

use fancy_regex::Regex;

use crate::TokenizerError;
use crate::unicode::{Category, Flags};

/// A pre-tokenizer pattern run the way llama.cpp's `unicode_regex_split_stl` runs it.
#[derive(Debug)]
pub(super) struct StlRegex {
    re: Regex,
    collapse: bool,
}

/// The class names llama.cpp collapses (`k_ucat_enum`): every letter sub-class counts as a letter.
const CLASS_NAMES: [(&str, Category); 10] = [
    (r"\p{N}", Category::Number),
    (r"\p{L}", Category::Letter),
    (r"\p{P}", Category::Punctuation),
    (r"\p{M}", Category::Mark),
    (r"\p{S}", Category::Symbol),
    (r"\p{Lu}", Category::Letter),
    (r"\p{Ll}", Category::Letter),
    (r"\p{Lt}", Category::Letter),
    (r"\p{Lm}", Category::Letter),
    (r"\p{Lo}", Category::Letter),
];

/// Stands in for non-ASCII whitespace, as llama.cpp's 0x0B.
const WHITESPACE_STAND_IN: char = '\u{0B}';

impl StlRegex {
    pub(super) fn new(pattern: &str) -> Result<StlRegex, TokenizerError> {
        let collapse = CLASS_NAMES.iter().any(|(name, _)| pattern.contains(name));
        let source = if collapse {
            collapse_pattern(pattern)
        } else {
            pattern.to_owned()
        };
        let re = Regex::new(&source).map_err(|e| TokenizerError::Regex(e.to_string()))?;
        Ok(StlRegex { re, collapse })
    }

    /// Splits `text[chunk]` into its matches and the gaps between them, as byte ranges of `text`.
    pub(super) fn split_chunk(&self, text: &str, chunk: Range<usize>, out: &mut Vec<Range<usize>>) {
        let base = chunk.start;
        let (haystack, original) = self.haystack(&text[chunk.clone()]);
        let mut last = 0;
        for found in self.re.find_iter(&haystack) {
            let Ok(m) = found else {
                // A backtracking limit: what is left stays one word rather than failing the encode.
                tracing::warn!("pre-tokenizer regex gave up on a long input; the rest is one word");
                break;
            };
            if m.start() > last {
                out.push(base + original[last]..base + original[m.start()]);
            }
            out.push(base + original[m.start()]..base + original[m.end()]);
            last = m.end();
        }
        if original[last] < chunk.len() {
            out.push(base + original[last]..chunk.end);
        }
    }

    /// The text the regex runs on, and for each of its byte offsets (at character boundaries) the offset in
    /// the original text.
    fn haystack(&self, text: &str) -> (String, Vec<usize>) {
        let mut mapped = String::with_capacity(text.len());
        let mut original = Vec::with_capacity(text.len() + 1);
        for (at, c) in text.char_indices() {
            let stand_in = self.stand_in(c);
            original.extend(std::iter::repeat_n(at, stand_in.len_utf8()));
            mapped.push(stand_in);
        }
        original.push(text.len());
        (mapped, original)
    }

    fn stand_in(&self, c: char) -> char {
        if c.is_ascii() {
            c
        } else if Flags::of(c).whitespace {
            WHITESPACE_STAND_IN
        } else if self.collapse {
            Category::of(c).stand_in()
        } else {
            c
        }
    }
}

/// llama.cpp's rewrite of a pattern for the collapsed text: `\p{X}` becomes `[<stand-in><ASCII members>]`, or
/// just the members inside a bracket expression. Brackets are tracked as llama.cpp tracks them (a `[` or `]`
/// after a backslash is literal).
fn collapse_pattern(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() * 2);
    let mut inside = false;
    let mut prev = None;
    let mut rest = pattern;
    while let Some(c) = rest.chars().next() {
        let escaped = prev == Some('\\');
        if let Some((name, class)) = CLASS_NAMES.iter().find(|(name, _)| rest.starts_with(name)) {
            if !inside {
                out.push('[');
            }
            out.push(class.stand_in());
            out.push_str(class.ascii_members());
            if !inside {
                out.push(']');
            }
            rest = &rest[name.len()..];
            prev = Some('}');
            continue;
        }
        if c == '[' && !escaped {
            inside = true;
        } else if c == ']' && inside && !escaped {
            inside = false;
        }
        out.push(c);
        prev = Some(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

impl Category {
    /// The private-use character that stands for this class in collapsed text (llama.cpp's 0xD0..0xD5 bytes).
    fn stand_in(self) -> char {
        match self {
            Category::Other => '\u{F0D0}',
            Category::Number => '\u{F0D1}',
            Category::Letter => '\u{F0D2}',
            Category::Punctuation => '\u{F0D3}',
            Category::Mark => '\u{F0D4}',
            Category::Symbol => '\u{F0D5}',
        }
    }

    /// The ASCII members of the class as a bracket-expression body (llama.cpp's `k_ucat_map`).
    fn ascii_members(self) -> &'static str {
        match self {
            Category::Number => "0-9",
            Category::Letter => "A-Za-z",
            Category::Punctuation => r"!-#%-*,-/:-;?-@\[-\]_\{\}",
            Category::Symbol => r"\$\+<->\^`\|\~",
            Category::Mark | Category::Other => "",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(pattern: &str, text: &str) -> Vec<String> {
        let re = StlRegex::new(pattern).unwrap();
        let mut out = Vec::new();
        re.split_chunk(text, 0..text.len(), &mut out);
        out.into_iter().map(|r| text[r].to_string()).collect()
    }

    #[test]
    fn collapsed_pattern_matches_llama_cpp_rewrite() {
        assert_eq!(collapse_pattern(r"\p{N}+"), "[\u{F0D1}0-9]+");
        assert_eq!(
            collapse_pattern(r"[^\r\n\p{L}\p{N}]?"),
            "[^\\r\\n\u{F0D2}A-Za-z\u{F0D1}0-9]?"
        );
    }

    #[test]
    fn non_ascii_letters_are_both_cases_in_collapsed_text() {
        // GPT-4o's `[^a-z]*[^A-Z]+` word: a non-ASCII letter is upper and lower case at once (llama.cpp's quirk).
        let pattern = r"((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+|\s+";
        assert_eq!(
            words(pattern, "ÉtéHello wORLD"),
            ["Été", "Hello", " ", "w", "ORLD"]
        );
        // With real Unicode classes "éÀ" would be two words (lower, then upper); collapsed it is one.
        assert_eq!(words(pattern, "éÀ"), ["éÀ"]);
    }

    #[test]
    fn gaps_between_matches_are_kept() {
        assert_eq!(words(r"\p{N}{1,3}", "ab12345c"), ["ab", "123", "45", "c"]);
    }

    #[test]
    fn non_ascii_whitespace_is_ascii_whitespace_to_the_regex() {
        assert_eq!(words(r"\s+", "a\u{3000}b"), ["a", "\u{3000}", "b"]);
    }
}
