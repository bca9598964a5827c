//! Pre-tokenizers of byte-level BPE: split text into words before merging, as `tokenizer.ggml.pre` names.
//!
//! Each pre-tokenizer is a list of steps applied in turn (llama.cpp's `unicode_regex_split`): every step
//! splits each chunk left by the previous step into its matches and the gaps between them. The names, their
//! patterns and flags are llama.cpp's (`table.rs`); patterns llama.cpp splits with hand-written code run
//! through the same code here (`custom.rs`), the others through an emulation of its std::regex path (`stl.rs`).

mod custom;
mod stl;
mod table;
#[cfg(test)]
mod tests;

use std::ops::Range;
use std::sync::Once;

use crate::TokenizerError;
use custom::Chars;
use stl::StlRegex;

/// One splitting step.
#[derive(Debug)]
enum Step {
    /// GPT-2's regex, hand-written as in llama.cpp (it needs a look-ahead).
    Gpt2,
    /// LLaMA 3's regex (`max_digits` 3), Qwen2's (1) or Qwen3.5's (1, accent marks join letters), hand-written.
    Llama3 { max_digits: usize, marks: bool },
    /// `[^\n]+|[\n]+`.
    Newlines,
    /// Any other regex, run as llama.cpp's std::regex fallback runs it.
    Stl(StlRegex),
}

/// A pre-tokenizer: the steps `tokenizer.ggml.pre` names.
#[derive(Debug)]
pub(crate) struct PreTokenizer {
    steps: Vec<Step>,
}

/// What a known `tokenizer.ggml.pre` value implies besides its steps.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PreFlags {
    /// A word that is itself a token is taken whole, without merges (LLaMA 3).
    pub ignore_merges: bool,
    /// Decoding tidies spaces before punctuation (llama.cpp's `clean_spaces`).
    pub clean_spaces: bool,
    /// BOS is added unless the file says otherwise (`tokenizer.ggml.add_bos_token`).
    pub add_bos: bool,
    /// The vocabulary has no BOS token by default (ChatGLM's).
    pub no_bos: bool,
}

impl PreFlags {
    /// llama.cpp's defaults for a BPE vocabulary.
    pub(crate) const BASE: PreFlags = PreFlags {
        ignore_merges: false,
        clean_spaces: true,
        add_bos: false,
        no_bos: false,
    };
    const fn no_clean(self) -> PreFlags {
        PreFlags {
            clean_spaces: false,
            ..self
        }
    }
    const fn ignore_merges(self) -> PreFlags {
        PreFlags {
            ignore_merges: true,
            ..self
        }
    }
    const fn add_bos(self) -> PreFlags {
        PreFlags {
            add_bos: true,
            ..self
        }
    }
    const fn no_bos(self) -> PreFlags {
        PreFlags {
            no_bos: true,
            ..self
        }
    }

    /// The flags a `tokenizer.ggml.pre` value implies (llama.cpp's defaults for an unknown one).
    pub(crate) fn for_name(name: &str) -> PreFlags {
        table::lookup(name).map_or(PreFlags::BASE, |(_, flags)| flags)
    }
}

static UNKNOWN_PRE_WARNING: Once = Once::new();

impl PreTokenizer {
    /// The pre-tokenizer for a `tokenizer.ggml.pre` value (a missing one is `default`); an unknown name warns
    /// once and falls back to GPT-2's (llama.cpp refuses the file).
    pub fn for_name(name: &str) -> Result<(PreTokenizer, PreFlags), TokenizerError> {
        let name = if name.is_empty() { "default" } else { name };
        let (patterns, flags) = table::lookup(name).unwrap_or_else(|| {
            UNKNOWN_PRE_WARNING.call_once(|| {
                tracing::warn!("unknown pre-tokenizer {name:?}, using GPT-2's");
            });
            (table::GPT2, PreFlags::BASE)
        });
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

impl Step {
    /// The hand-written splitter llama.cpp picks for this exact pattern text
    /// (`unicode_regex_split_custom`), else the regex.
    fn parse(pattern: &str) -> Result<Step, TokenizerError> {
        Ok(if pattern == table::GPT2[0] {
            Step::Gpt2
        } else if pattern == table::LLAMA3[0] {
            Step::Llama3 {
                max_digits: 3,
                marks: false,
            }
        } else if pattern == table::QWEN2[0] {
            Step::Llama3 {
                max_digits: 1,
                marks: false,
            }
        } else if pattern == table::QWEN35[0] {
            Step::Llama3 {
                max_digits: 1,
                marks: true,
            }
        } else if pattern == table::LAGUNA[0] {
            Step::Newlines
        } else {
            Step::Stl(StlRegex::new(pattern)?)
        })
    }

    fn split_chunk(&self, text: &str, chunk: Range<usize>, out: &mut Vec<Range<usize>>) {
        let slice = &text[chunk.clone()];
        let (chars, ends) = match self {
            Step::Stl(re) => return re.split_chunk(text, chunk, out),
            Step::Gpt2 => {
                let chars = Chars::new(slice, false);
                let ends = custom::split_gpt2(&chars);
                (chars, ends)
            }
            Step::Llama3 { max_digits, marks } => {
                let chars = Chars::new(slice, *marks);
                let ends = custom::split_llama3(&chars, *max_digits);
                (chars, ends)
            }
            Step::Newlines => {
                let chars = Chars::new(slice, false);
                let ends = custom::split_newlines(&chars);
                (chars, ends)
            }
        };
        let mut start = 0;
        for end in ends {
            let (a, b) = (chars.byte_at(start), chars.byte_at(end));
            out.push(chunk.start + a..chunk.start + b);
            start = end;
        }
    }
}
