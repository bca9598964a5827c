//! Pre-tokenizers of byte-level BPE: split text into words before merging, as `tokenizer.ggml.pre` names.
//!
//! Each pre-tokenizer is a list of steps applied in turn (llama.cpp's `unicode_regex_split`): every step
//! splits each chunk left by the previous step into its matches and the gaps between them.

use std::ops::Range;
use std::sync::Once;

use regex::Regex;

use crate::TokenizerError;
use crate::unicode::Flags;

/// llama.cpp's GPT-2 regex: `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)`.
const GPT2: &str = "gpt2";

/// One splitting step.
#[derive(Debug)]
enum Step {
    /// The GPT-2 regex, hand-written as in llama.cpp (it needs a look-ahead).
    Gpt2,
    /// The LLaMA 3 regex (`max_digits` 3) or Qwen2's (`max_digits` 1), hand-written as in llama.cpp.
    Llama3 { max_digits: usize },
    /// Any regex without look-around.
    Regex(Regex),
}

/// A pre-tokenizer: the steps `tokenizer.ggml.pre` names.
#[derive(Debug)]
pub(crate) struct PreTokenizer {
    steps: Vec<Step>,
}

/// What a known `tokenizer.ggml.pre` value implies besides its steps.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PreFlags {
    /// A word that is itself a token is taken whole, without merges (LLaMA 3).
    pub ignore_merges: bool,
    /// Decoding tidies spaces before punctuation (llama.cpp's `clean_spaces`).
    pub clean_spaces: bool,
}

static UNKNOWN_PRE_WARNING: Once = Once::new();

impl PreTokenizer {
    /// The pre-tokenizer for a `tokenizer.ggml.pre` value; an unknown name warns once and falls back to GPT-2's.
    pub fn for_name(name: &str) -> Result<(PreTokenizer, PreFlags), TokenizerError> {
        let (patterns, flags): (&[&str], PreFlags) = match name {
            "" | "default" => (DEFAULT, flags(false, true)),
            "gpt2" | "gpt-2" | "phi-2" | "mpt" | "olmo" | "jais" | "roberta-bpe" | "jina-v1-en"
            | "jina-v2-code" | "jina-es" | "jina-de" | "jina-v2-es" | "jina-v2-de" | "gigachat"
            | "a.x-4.0" | "mellum" | "exaone4" => (&[GPT2], flags(false, true)),
            "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "falcon-h1" | "pixtral"
            | "midm-2.0" | "lfm2" => (&["llama3"], flags(true, true)),
            "dbrx" | "smaug-bpe" => (&["llama3"], flags(false, true)),
            "qwen2" | "deepseek-r1-qwen" | "kormo" | "f2llmv2" => (&["qwen2"], flags(false, false)),
            "megrez" | "stablelm2" => (&["qwen2"], flags(false, true)),
            "smollm" | "command-r" => (STARCODER, flags(false, false)),
            "starcoder" | "refact" | "codeshell" | "exaone" | "minerva-7b" => {
                (STARCODER, flags(false, true))
            }
            "deepseek-llm" => (DEEPSEEK_LLM, flags(false, false)),
            "deepseek-coder" => (DEEPSEEK_CODER, flags(false, false)),
            "falcon" => (FALCON, flags(false, true)),
            other => {
                UNKNOWN_PRE_WARNING.call_once(|| {
                    tracing::warn!("unknown pre-tokenizer {other:?}, using GPT-2's");
                });
                (&[GPT2], flags(false, true))
            }
        };
        let steps = patterns
            .iter()
            .map(|p| Step::parse(p))
            .collect::<Result<_, _>>()?;
        Ok((PreTokenizer { steps }, flags))
    }

    /// Splits `text` into words, as byte ranges of `text`, in order, covering all of it.
    pub fn split(&self, text: &str) -> Vec<Range<usize>> {
        let mut chunks: Vec<Range<usize>> = std::iter::once(0..text.len()).collect();
        for step in &self.steps {
            let mut next = Vec::with_capacity(chunks.len() * 2);
            for chunk in chunks {
                step.split_chunk(text, chunk, &mut next);
            }
            chunks = next;
        }
        chunks.retain(|r| !r.is_empty());
        chunks
    }
}

fn flags(ignore_merges: bool, clean_spaces: bool) -> PreFlags {
    PreFlags {
        ignore_merges,
        clean_spaces,
    }
}

/// llama.cpp's default BPE pre-tokenizer (used for `default` and a missing `tokenizer.ggml.pre`).
const DEFAULT: &[&str] = &[r"[\p{P}\$\+<=>\^~\|]+", GPT2, r"\p{N}+", "[0-9][0-9][0-9]"];
const STARCODER: &[&str] = &[r"\p{N}", GPT2];
const FALCON: &[&str] = &[r"[\p{P}\$\+<=>\^~\|`]+", GPT2, "[0-9][0-9][0-9]"];
/// DeepSeek LLM's patterns, with escapes: several of these letters have canonically equivalent twins
/// that an editor's normalisation would silently swap in.
const DEEPSEEK_LLM: &[&str] = &[
    "[\r\n]",
    r"\s?[A-Za-z\x{00B5}\x{00C0}-\x{00D6}\x{00D8}-\x{00F6}\x{00F8}-\x{01BA}\x{01BC}-\x{01BF}\x{01C4}-\x{0293}\x{0295}-\x{02AF}\x{0370}-\x{0373}\x{0376}\x{0377}\x{037B}-\x{037D}\x{037F}\x{0386}\x{0388}-\x{038A}\x{038C}\x{038E}-\x{03A1}\x{03A3}-\x{03F5}\x{03F7}-\x{0481}\x{048A}-\x{052F}\x{0531}-\x{0556}\x{10A0}-\x{10C5}\x{13A0}-\x{13F5}\x{13F8}-\x{13FD}\x{1C90}-\x{1CBA}\x{1CBD}-\x{1CBF}\x{1D00}-\x{1D2B}\x{1D6B}-\x{1D77}\x{1D79}-\x{1D9A}\x{1E00}-\x{1F15}\x{1F18}-\x{1F1D}\x{1F20}-\x{1F45}\x{1F48}-\x{1F4D}\x{1F50}-\x{1F57}\x{1F59}\x{1F5B}\x{1F5D}\x{1F5F}-\x{1F7D}\x{1F80}-\x{1FB4}\x{1FB6}-\x{1FBC}\x{1FBE}\x{1FC2}-\x{1FC4}\x{1FC6}-\x{1FCC}\x{1FD0}-\x{1FD3}\x{1FD6}-\x{1FDB}\x{1FE0}-\x{1FEC}\x{1FF2}-\x{1FF4}\x{1FF6}-\x{1FFC}\x{2102}\x{2107}\x{210A}-\x{2113}\x{2115}\x{2119}-\x{211D}\x{2124}\x{2126}\x{2128}\x{212A}-\x{212D}\x{212F}-\x{2134}\x{2139}\x{213C}-\x{213F}\x{2145}-\x{2149}\x{214E}\x{2183}\x{2184}\x{2C00}-\x{2C7B}\x{2C7E}-\x{2CE4}\x{2CEB}-\x{2CEE}\x{2CF2}\x{2CF3}\x{A640}-\x{A66D}\x{A680}-\x{A69B}\x{A722}-\x{A76F}\x{A771}-\x{A787}\x{A78B}-\x{A78E}\x{AB70}-\x{ABBF}\x{FB00}-\x{FB06}\x{FB13}-\x{FB17}\x{FF21}-\x{FF3A}\x{FF41}-\x{FF5A}\x{10400}-\x{1044F}\x{104B0}-\x{104D3}\x{104D8}-\x{104FB}\x{10C80}-\x{10CB2}\x{10CC0}-\x{10CF2}\x{118A0}-\x{118DF}\x{1E900}-\x{1E943}]+",
    r"\s?[!-/:-~\x{FF01}-\x{FF0F}\x{FF1A}-\x{FF5E}\x{2018}-\x{201F}\x{3000}-\x{3002}]+",
    r"\s+$",
    r"[\x{4E00}-\x{9FA5}\x{0800}-\x{4E00}\x{AC00}-\x{D7FF}]+",
    r"\p{N}+",
];
const DEEPSEEK_CODER: &[&str] = &[
    "[\r\n]",
    r"\s?\p{L}+",
    r"\s?\p{P}+",
    r"[\x{4E00}-\x{9FA5}\x{0800}-\x{4E00}\x{AC00}-\x{D7FF}]+",
    r"\p{N}",
];

impl Step {
    fn parse(pattern: &str) -> Result<Step, TokenizerError> {
        Ok(match pattern {
            GPT2 => Step::Gpt2,
            "llama3" => Step::Llama3 { max_digits: 3 },
            "qwen2" => Step::Llama3 { max_digits: 1 },
            _ => {
                Step::Regex(Regex::new(pattern).map_err(|e| TokenizerError::Regex(e.to_string()))?)
            }
        })
    }

    fn split_chunk(&self, text: &str, chunk: Range<usize>, out: &mut Vec<Range<usize>>) {
        let base = chunk.start;
        let slice = &text[chunk];
        match self {
            Step::Regex(re) => {
                let mut last = 0;
                for m in re.find_iter(slice) {
                    if m.start() > last {
                        out.push(base + last..base + m.start());
                    }
                    out.push(base + m.start()..base + m.end());
                    last = m.end();
                }
                if last < slice.len() {
                    out.push(base + last..base + slice.len());
                }
            }
            Step::Gpt2 | Step::Llama3 { .. } => {
                let chars = Chars::new(slice);
                let ends = match self {
                    Step::Llama3 { max_digits } => split_llama3(&chars, *max_digits),
                    _ => split_gpt2(&chars),
                };
                let mut start = 0;
                for end in ends {
                    let (a, b) = (chars.byte_at(start), chars.byte_at(end));
                    out.push(base + a..base + b);
                    start = end;
                }
            }
        }
    }
}

/// A chunk as codepoints with their classes; positions past the end read as "nothing".
struct Chars {
    cps: Vec<char>,
    flags: Vec<Flags>,
    offsets: Vec<usize>,
}

impl Chars {
    fn new(s: &str) -> Chars {
        let mut cps = Vec::with_capacity(s.len());
        let mut offsets = Vec::with_capacity(s.len() + 1);
        for (i, c) in s.char_indices() {
            cps.push(c);
            offsets.push(i);
        }
        offsets.push(s.len());
        let flags = cps.iter().map(|&c| Flags::of(c)).collect();
        Chars {
            cps,
            flags,
            offsets,
        }
    }
    fn len(&self) -> usize {
        self.cps.len()
    }
    fn cp(&self, i: usize) -> Option<char> {
        self.cps.get(i).copied()
    }
    fn flags(&self, i: usize) -> Option<Flags> {
        self.flags.get(i).copied()
    }
    fn byte_at(&self, i: usize) -> usize {
        self.offsets[i.min(self.cps.len())]
    }
    fn is_letter(&self, i: usize) -> bool {
        self.flags(i).is_some_and(|f| f.letter)
    }
    fn is_number(&self, i: usize) -> bool {
        self.flags(i).is_some_and(|f| f.number)
    }
    fn is_space(&self, i: usize) -> bool {
        self.flags(i).is_some_and(|f| f.whitespace)
    }
    /// `[^\s\p{L}\p{N}]`: a codepoint inside the chunk that is none of the three.
    fn is_other(&self, i: usize) -> bool {
        self.flags(i)
            .is_some_and(|f| !(f.whitespace || f.letter || f.number))
    }
    fn whitespace_run(&self, pos: usize) -> usize {
        (pos..self.len()).take_while(|&i| self.is_space(i)).count()
    }
}

/// Collects word ends (in codepoints), skipping empty words.
struct Ends(Vec<usize>, usize);

impl Ends {
    fn add(&mut self, end: usize) -> usize {
        let len = end - self.1;
        if len > 0 {
            self.0.push(end);
        }
        self.1 = end;
        len
    }
}

/// `'s|'t|'re|'ve|'m|'ll|'d` (ASCII-case-insensitive when `fold`), returning the match length.
fn contraction(ch: &Chars, pos: usize, fold: bool) -> usize {
    let lower = |i: usize| {
        ch.cp(i)
            .map(|c| if fold { c.to_ascii_lowercase() } else { c })
    };
    if ch.cp(pos) != Some('\'') || pos + 1 >= ch.len() {
        return 0;
    }
    match lower(pos + 1) {
        Some('s' | 't' | 'm' | 'd') => 2,
        Some(c1) if pos + 2 < ch.len() => match (c1, lower(pos + 2)) {
            ('r', Some('e')) | ('v', Some('e')) | ('l', Some('l')) => 3,
            _ => 0,
        },
        _ => 0,
    }
}

fn split_gpt2(ch: &Chars) -> Vec<usize> {
    let n = ch.len();
    let mut ends = Ends(Vec::new(), 0);
    let mut pos = 0;
    while pos < n {
        let k = contraction(ch, pos, false);
        if k > 0 {
            pos += ends.add(pos + k);
            continue;
        }
        let space = ch.cp(pos) == Some(' ');
        let probe = if space { pos + 1 } else { pos };
        let class: Option<fn(&Chars, usize) -> bool> = if ch.is_letter(probe) {
            Some(Chars::is_letter)
        } else if ch.is_number(probe) {
            Some(Chars::is_number)
        } else if ch.is_other(probe) {
            Some(Chars::is_other)
        } else {
            None
        };
        if let Some(class) = class {
            pos = probe;
            while class(ch, pos) {
                pos += 1;
            }
            ends.add(pos);
            continue;
        }
        let spaces = ch.whitespace_run(pos);
        if spaces > 1 && pos + spaces < n {
            // \s+(?!\S): leave the last space to the word that follows
            pos += spaces - 1;
            ends.add(pos);
            continue;
        }
        if spaces > 0 {
            pos += spaces;
            ends.add(pos);
            continue;
        }
        pos += 1;
        ends.add(pos);
    }
    ends.0
}

fn split_llama3(ch: &Chars, max_digits: usize) -> Vec<usize> {
    let n = ch.len();
    let mut ends = Ends(Vec::new(), 0);
    let mut pos = 0;
    while pos < n {
        let k = contraction(ch, pos, true);
        if k > 0 {
            pos += ends.add(pos + k);
            continue;
        }
        let cp = ch.cp(pos);
        // [^\r\n\p{L}\p{N}]?\p{L}+
        if !(matches!(cp, Some('\r' | '\n')) || ch.is_number(pos))
            && (ch.is_letter(pos) || ch.is_letter(pos + 1))
        {
            pos += 1;
            while ch.is_letter(pos) {
                pos += 1;
            }
            ends.add(pos);
            continue;
        }
        // \p{N}{1,max_digits}
        if ch.is_number(pos) {
            let mut ini = pos;
            while ch.is_number(pos) {
                pos += 1;
                if pos - ini >= max_digits {
                    ends.add(pos);
                    ini = pos;
                }
            }
            ends.add(pos);
            continue;
        }
        // <space>?[^\s\p{L}\p{N}]+[\r\n]*
        let probe = if cp == Some(' ') { pos + 1 } else { pos };
        if ch.is_other(probe) {
            pos = probe;
            while ch.is_other(pos) {
                pos += 1;
            }
            while matches!(ch.cp(pos), Some('\r' | '\n')) {
                pos += 1;
            }
            ends.add(pos);
            continue;
        }
        let spaces = ch.whitespace_run(pos);
        let last_newline_end = (pos..pos + spaces)
            .filter(|&i| matches!(ch.cp(i), Some('\r' | '\n')))
            .map(|i| i + 1)
            .next_back();
        if let Some(end) = last_newline_end {
            // \s*[\r\n]+
            pos = end;
            ends.add(pos);
            continue;
        }
        if spaces > 1 && pos + spaces < n {
            pos += spaces - 1;
            ends.add(pos);
            continue;
        }
        if spaces > 0 {
            pos += spaces;
            ends.add(pos);
            continue;
        }
        pos += 1;
        ends.add(pos);
    }
    ends.0
}

#[cfg(test)]
mod tests {
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
            words("gpt2", "Hello world's  end"),
            ["Hello", " world", "'s", " ", " end"]
        );
        assert_eq!(words("gpt2", "a  "), ["a", "  "]);
        assert_eq!(words("gpt2", "x=1;"), ["x", "=", "1", ";"]);
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
            "gpt2",
            "llama-bpe",
            "smollm",
            "qwen2",
            "deepseek-llm",
        ] {
            assert_eq!(words(pre, text).concat(), text, "{pre}");
        }
    }
}
