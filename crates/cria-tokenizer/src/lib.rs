//! Tokenizers read from GGUF metadata, with llama.cpp's exact behaviour: byte-level BPE (GPT-2 style,
//! with the pre-tokenizer `tokenizer.ggml.pre` names) and SentencePiece-style BPE (LLaMA 1/2, Mistral,
//! Gemma); special tokens; decoding and a streaming detokenizer; chat templates.
#![cfg_attr(test, allow(clippy::unwrap_used))] // tests may unwrap

mod bpe;
mod chat;
mod decode;
mod error;
mod gguf;
mod packed;
mod pretok;
mod special;
mod spm;
mod stream;
mod unicode;
mod vocab;
mod wpm;

use rustc_hash::FxHashMap;

pub use chat::{BuiltinTemplate, ChatMessage, ChatTemplate, TemplateInput};
pub use decode::DecodeOptions;
pub use error::TokenizerError;
pub use stream::{IncrementalDecoder, Utf8Stream};
pub use vocab::{TokenizerKind, TokenizerSpec};

use bpe::BpeModel;
use pretok::{PreFlags, PreTokenizer};
use special::{Fragment, SpecialTokens};
use vocab::{Vocab, attr};

/// A model's tokenizer. Immutable once built; `Send + Sync`, so one can serve many threads.
pub struct Tokenizer {
    vocab: Vocab,
    algo: Algorithm,
    specials: SpecialTokens,
    pieces: packed::Packed,
    clean_spaces: bool,
    chat_template: Option<String>,
}

#[derive(Debug)]
enum Algorithm {
    Bpe {
        model: Box<BpeModel>,
        pre: PreTokenizer,
        flags: PreFlags,
    },
    Spm,
    Wpm,
}

impl Tokenizer {
    /// The tokenizer described by a GGUF file's `tokenizer.*` metadata.
    pub fn from_gguf(file: &cria_gguf::GgufFile) -> Result<Tokenizer, TokenizerError> {
        let mut spec = TokenizerSpec::from_gguf(file)?;
        let tokens = std::mem::take(&mut spec.tokens);
        Tokenizer::build(&spec, tokens)
    }

    /// The tokenizer described by plain data (what [`Tokenizer::from_gguf`] reads).
    pub fn from_spec(spec: &TokenizerSpec) -> Result<Tokenizer, TokenizerError> {
        Tokenizer::build(spec, spec.tokens.clone())
    }

    /// The tokenizer of `spec` with token texts `tokens` (in place of `spec.tokens`).
    fn build(spec: &TokenizerSpec, tokens: Vec<String>) -> Result<Tokenizer, TokenizerError> {
        if u32::try_from(tokens.len()).is_err() {
            return Err(TokenizerError::VocabTooLarge(tokens.len()));
        }
        let vocab = Vocab::new(spec, tokens)?;
        let algo = match vocab.kind {
            vocab::TokenizerKind::Bpe => {
                let (pre, flags) = PreTokenizer::for_name(spec.pre.as_deref().unwrap_or(""))?;
                Algorithm::Bpe {
                    model: Box::new(BpeModel::new(&vocab, &spec.merges)),
                    pre,
                    flags,
                }
            }
            vocab::TokenizerKind::Spm => Algorithm::Spm,
            vocab::TokenizerKind::Wpm => Algorithm::Wpm,
        };
        let clean_spaces = match &algo {
            Algorithm::Bpe { flags, .. } => flags.clean_spaces,
            Algorithm::Spm => false,
            Algorithm::Wpm => true,
        };
        Ok(Tokenizer {
            specials: SpecialTokens::new(&vocab),
            pieces: decode::build_pieces(&vocab),
            vocab,
            algo,
            clean_spaces,
            chat_template: spec.chat_template.clone(),
        })
    }

    /// Token ids of `text`. `add_special` adds BOS/EOS as the model's metadata asks; `parse_special`
    /// turns the text of control tokens (`<|im_start|>`) into those tokens instead of plain text.
    pub fn encode(&self, text: &str, add_special: bool, parse_special: bool) -> Vec<u32> {
        let fragments = self.specials.partition(&self.vocab, text, parse_special);
        if matches!(self.algo, Algorithm::Wpm) {
            return self.encode_wpm(&fragments, add_special);
        }
        let mut out = Vec::with_capacity(text.len() / 3 + 2);
        let add_bos = add_special && self.vocab.add_bos;
        if let Some(bos) = self.vocab.bos.filter(|_| add_bos) {
            out.push(bos);
        }
        match &self.algo {
            Algorithm::Bpe { model, pre, flags } => {
                let mut cache: FxHashMap<&str, Vec<u32>> = FxHashMap::default();
                for f in fragments {
                    match f {
                        Fragment::Token(t) => out.push(t),
                        Fragment::Text(t) => self.encode_bpe(
                            model,
                            pre,
                            flags.ignore_merges,
                            t,
                            &mut cache,
                            &mut out,
                        ),
                    }
                }
            }
            Algorithm::Spm => self.encode_spm(&fragments, &mut out),
            Algorithm::Wpm => {}
        }
        if let Some(eos) = self.vocab.eos.filter(|_| add_special && self.vocab.add_eos) {
            out.push(eos);
        }
        out
    }

    fn encode_bpe<'a>(
        &self,
        model: &BpeModel,
        pre: &PreTokenizer,
        ignore_merges: bool,
        text: &'a str,
        cache: &mut FxHashMap<&'a str, Vec<u32>>,
        out: &mut Vec<u32>,
    ) {
        for range in pre.split(text) {
            let word = &text[range];
            if let Some(ids) = cache.get(word) {
                out.extend_from_slice(ids);
                continue;
            }
            let start = out.len();
            model.encode_word(&self.vocab, word.as_bytes(), ignore_merges, out);
            cache.insert(word, out[start..].to_vec());
        }
    }

    /// WordPiece: `add_special` puts CLS first and SEP last whatever `add_bos_token` says (as llama.cpp).
    fn encode_wpm(&self, fragments: &[Fragment<'_>], add_special: bool) -> Vec<u32> {
        let mut out = Vec::new();
        out.extend(self.vocab.bos.filter(|_| add_special));
        for f in fragments {
            match *f {
                Fragment::Token(t) => out.push(t),
                Fragment::Text(t) => wpm::encode(&self.vocab, t, &mut out),
            }
        }
        out.extend(self.vocab.sep.filter(|_| add_special));
        out
    }

    fn encode_spm(&self, fragments: &[Fragment<'_>], out: &mut Vec<u32>) {
        // a space goes before the first text and before text that follows a special token
        let mut prev_special = true;
        for f in fragments {
            match *f {
                Fragment::Token(t) => {
                    out.push(t);
                    prev_special = true;
                }
                Fragment::Text(t) => {
                    let prefix = if self.vocab.add_space_prefix && prev_special {
                        " "
                    } else {
                        ""
                    };
                    let escaped = format!("{prefix}{t}").replace(' ', "▁");
                    spm::encode(&self.vocab, &escaped, out);
                    prev_special = false;
                }
            }
        }
    }

    /// Text of `ids`, rendering control tokens as their text; lossy only where bytes are not UTF-8.
    pub fn decode(&self, ids: &[u32]) -> String {
        self.decode_with(ids, DecodeOptions::default())
    }

    /// Text of `ids` with llama.cpp's `detokenize` options.
    pub fn decode_with(&self, ids: &[u32], opts: DecodeOptions) -> String {
        let bytes = decode::detokenize(&self.vocab, &self.pieces, ids, opts, self.clean_spaces);
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// The raw bytes a token stands for (special tokens as their text; empty for an unknown id).
    pub fn token_bytes(&self, id: u32) -> &[u8] {
        self.pieces.get(id as usize).unwrap_or_default()
    }

    /// The token's text as stored in the vocabulary (`▁the`, `Ġthe`, `<0x0A>`); empty for an unknown id.
    pub fn token_text(&self, id: u32) -> &str {
        self.vocab.text(id)
    }

    /// The id of a token given its vocabulary text.
    pub fn token_id(&self, text: &str) -> Option<u32> {
        self.vocab.text_to_token(text)
    }

    pub fn vocab_size(&self) -> usize {
        self.vocab.len()
    }

    pub fn kind(&self) -> TokenizerKind {
        self.vocab.kind
    }

    pub fn bos(&self) -> Option<u32> {
        self.vocab.bos
    }

    pub fn eos(&self) -> Option<u32> {
        self.vocab.eos
    }

    /// Whether `encode(.., add_special = true, ..)` puts BOS first.
    pub fn adds_bos(&self) -> bool {
        self.vocab.add_bos && self.vocab.bos.is_some()
    }

    /// Whether `encode(.., add_special = true, ..)` puts EOS last.
    pub fn adds_eos(&self) -> bool {
        self.vocab.add_eos && self.vocab.eos.is_some()
    }

    /// BERT's separator (`[SEP]`), which WordPiece puts last with `add_special`.
    pub fn sep(&self) -> Option<u32> {
        self.vocab.sep
    }

    /// Whether generating `id` ends the turn: EOS, EOT, `<|im_end|>`, `<end_of_turn>`... (llama.cpp's EOG set).
    pub fn is_end_of_generation(&self, id: u32) -> bool {
        self.vocab.eog.binary_search(&id).is_ok()
    }

    /// All end-of-generation ids, ascending.
    pub fn end_of_generation_ids(&self) -> &[u32] {
        &self.vocab.eog
    }

    /// Whether `id` is a control token (rendered only when special tokens are).
    pub fn is_control(&self, id: u32) -> bool {
        self.vocab.attr(id) & attr::CONTROL != 0
    }

    /// `tokenizer.chat_template`, if the model has one.
    pub fn chat_template(&self) -> Option<&str> {
        self.chat_template.as_deref()
    }
}

/// A summary: the vocabulary itself is far too large to print.
impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("kind", &self.vocab.kind)
            .field("vocab_size", &self.vocab.len())
            .field("bos", &self.vocab.bos)
            .field("eos", &self.vocab.eos)
            .field("add_bos", &self.vocab.add_bos)
            .field("eog", &self.vocab.eog)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
