//! The vocabulary: token texts, types, scores and special ids, as `tokenizer.ggml.*` metadata gives them.

use crate::TokenizerError;
use crate::packed::{Index, Packed};

/// Token attributes (llama.cpp's `llama_token_attr` bits).
pub(crate) mod attr {
    pub const UNKNOWN: u16 = 1 << 0;
    pub const UNUSED: u16 = 1 << 1;
    pub const NORMAL: u16 = 1 << 2;
    pub const CONTROL: u16 = 1 << 3;
    pub const USER_DEFINED: u16 = 1 << 4;
    pub const BYTE: u16 = 1 << 5;
}

/// Which algorithm turns text into tokens (`tokenizer.ggml.model`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenizerKind {
    /// `gpt2`: byte-level BPE with merges and a pre-tokenizer.
    Bpe,
    /// `llama`: SentencePiece-style BPE over scores, with `<0xNN>` byte fallback.
    Spm,
    /// `bert`: WordPiece, longest pieces first, with `[CLS]` ... `[SEP]` around the text.
    Wpm,
}

/// Everything the tokenizer reads from metadata, as plain data (so tests can build one by hand).
#[derive(Debug, Clone, Default)]
pub struct TokenizerSpec {
    /// `tokenizer.ggml.model`: "gpt2" or "llama".
    pub model: String,
    /// `tokenizer.ggml.pre` (byte-level BPE only).
    pub pre: Option<String>,
    pub tokens: Vec<String>,
    /// `tokenizer.ggml.token_type`: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte.
    pub token_types: Option<Vec<i32>>,
    pub scores: Option<Vec<f32>>,
    /// `tokenizer.ggml.merges`: "left right" pairs, highest priority first.
    pub merges: Vec<String>,
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    pub eot: Option<u32>,
    pub eom: Option<u32>,
    pub unk: Option<u32>,
    pub pad: Option<u32>,
    /// `tokenizer.ggml.seperator_token_id` (sic): BERT's `[SEP]`.
    pub sep: Option<u32>,
    /// `tokenizer.ggml.normalizer.lowercase` (WordPiece; default false).
    pub normalizer_lowercase: Option<bool>,
    /// `tokenizer.ggml.normalizer.strip_accents` (WordPiece; defaults to the lowercase option).
    pub normalizer_strip_accents: Option<bool>,
    pub add_bos: Option<bool>,
    pub add_eos: Option<bool>,
    pub add_space_prefix: Option<bool>,
    pub chat_template: Option<String>,
}

/// The loaded vocabulary with llama.cpp's defaults and fix-ups applied.
#[derive(Debug)]
pub(crate) struct Vocab {
    pub kind: TokenizerKind,
    /// Token texts by id.
    pub texts: Packed,
    pub attrs: Vec<u16>,
    pub scores: Vec<f32>,
    /// Token text -> id.
    pub to_id: Index,
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    pub unk: Option<u32>,
    pub sep: Option<u32>,
    pub add_bos: bool,
    pub add_eos: bool,
    pub add_space_prefix: bool,
    pub eog: Vec<u32>,
    /// The longest token text in bytes (how far WordPiece looks ahead).
    pub max_token_len: usize,
    pub normalizer: crate::wpm::NormalizerOpts,
}

impl Vocab {
    /// The vocabulary `spec` describes; `tokens` are its token texts (taken, not copied: `spec.tokens` is
    /// not read).
    pub fn new(spec: &TokenizerSpec, tokens: Vec<String>) -> Result<Vocab, TokenizerError> {
        let kind = match spec.model.as_str() {
            "gpt2" => TokenizerKind::Bpe,
            "llama" => TokenizerKind::Spm,
            "bert" => TokenizerKind::Wpm,
            other => return Err(TokenizerError::UnsupportedModel(other.to_string())),
        };
        let n = tokens.len();
        if n == 0 {
            return Err(TokenizerError::EmptyVocab);
        }
        check_len(
            "tokenizer.ggml.token_type",
            spec.token_types.as_ref().map(Vec::len),
            n,
        )?;
        check_len(
            "tokenizer.ggml.scores",
            spec.scores.as_ref().map(Vec::len),
            n,
        )?;
        let max_token_len = tokens.iter().map(String::len).max().unwrap_or(0);
        let mut texts = Packed::default();
        for (i, t) in tokens.into_iter().enumerate() {
            if t.is_empty() {
                texts.push(format!("[EMPTY_{i}]").as_bytes());
            } else {
                texts.push(t.as_bytes());
            }
        }
        let to_id = Index::build(&texts);
        let attrs = match &spec.token_types {
            Some(types) => types.iter().map(|&t| attr_of_type(t)).collect(),
            None => vec![attr::NORMAL; n],
        };
        let scores = spec.scores.clone().unwrap_or_else(|| vec![0.0; n]);
        let defaults = Defaults::for_kind(kind, spec.pre.as_deref());
        let valid = |x: Option<u32>| x.filter(|&v| (v as usize) < n);
        let mut vocab = Vocab {
            kind,
            texts,
            attrs,
            scores,
            to_id,
            bos: valid(spec.bos.or(defaults.bos)),
            eos: valid(spec.eos.or(defaults.eos)),
            unk: valid(spec.unk.or(defaults.unk)),
            sep: valid(spec.sep.or(defaults.sep)),
            add_bos: spec.add_bos.unwrap_or(defaults.add_bos),
            add_eos: spec.add_eos.unwrap_or(defaults.add_eos),
            add_space_prefix: spec.add_space_prefix.unwrap_or(defaults.add_space_prefix),
            eog: Vec::new(),
            max_token_len,
            normalizer: normalizer_opts(spec),
        };
        vocab.find_end_of_generation(valid(spec.eot), valid(spec.eom));
        Ok(vocab)
    }

    pub fn len(&self) -> usize {
        self.texts.len()
    }

    /// Token `id`'s text (empty for an unknown id).
    pub fn text(&self, id: u32) -> &str {
        self.texts.str(id as usize)
    }

    pub fn attr(&self, id: u32) -> u16 {
        self.attrs.get(id as usize).copied().unwrap_or(0)
    }

    pub fn text_to_token(&self, text: &str) -> Option<u32> {
        self.to_id.get(&self.texts, text.as_bytes())
    }

    /// llama.cpp's end-of-generation set, found by token text; those tokens become control tokens.
    fn find_end_of_generation(&mut self, eot: Option<u32>, eom: Option<u32>) {
        // the lowest id among those texts (llama.cpp takes whichever its hash map yields first)
        let first = |names: &[&str]| -> Option<u32> {
            names.iter().filter_map(|n| self.text_to_token(n)).min()
        };
        let eot = eot.or_else(|| first(EOT_NAMES));
        let eom = eom.or_else(|| first(&["<|eom_id|>"]));
        let fim = [
            first(FIM_PAD_NAMES),
            first(FIM_REP_NAMES),
            first(&["<|file_sep|>"]),
        ];
        let fim_other = [
            first(FIM_PRE_NAMES),
            first(FIM_SUF_NAMES),
            first(FIM_MID_NAMES),
        ];
        for &i in fim
            .iter()
            .chain(fim_other.iter())
            .flatten()
            .chain(eot.iter())
            .chain(eom.iter())
        {
            self.attrs[i as usize] |= attr::CONTROL;
        }
        let mut eog: Vec<u32> = fim.into_iter().flatten().collect();
        for name in EOG_NAMES {
            if let Some(i) = self.text_to_token(name) {
                eog.push(i);
                self.attrs[i as usize] |= attr::CONTROL;
            }
        }
        // gpt-oss: these are always rendered
        for name in ["<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"] {
            if let Some(i) = self.text_to_token(name) {
                self.attrs[i as usize] = attr::USER_DEFINED;
            }
        }
        eog.extend(self.eos.iter().chain(eot.iter()).chain(eom.iter()));
        eog.sort_unstable();
        eog.dedup();
        self.eog = eog;
        self.drop_false_end_of_generation();
    }

    /// llama.cpp's two exceptions: `<|end|>` is no EOG beside `<|return|>`+`<|call|>` (or `<|calls|>`+
    /// `<|flush|>`), and `</s>` is none beside `<|tool_response>`.
    fn drop_false_end_of_generation(&mut self) {
        let find = |vocab: &Vocab, names: &[&str]| {
            vocab
                .eog
                .iter()
                .copied()
                .find(|&i| names.contains(&vocab.text(i)))
        };
        let (ret, call, flush) = (
            find(self, &["<|return|>"]),
            find(self, &["<|call|>", "<|calls|>"]),
            find(self, &["<|flush|>"]),
        );
        if let Some(end) = find(self, &["<|end|>"])
            && call.is_some()
            && (ret.is_some() || flush.is_some())
        {
            self.eog.retain(|&i| i != end);
            self.attrs[end as usize] = attr::USER_DEFINED;
        }
        if let Some(s) = find(self, &["</s>"])
            && find(self, &["<|tool_response>"]).is_some()
        {
            self.eog.retain(|&i| i != s);
            self.attrs[s as usize] = attr::NORMAL;
        }
    }
}

const EOT_NAMES: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|end_of_text|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "<｜end▁of▁sentence｜>",
    "<end_of_utterance>",
];
const FIM_PRE_NAMES: &[&str] = &[
    "<|fim_prefix|>",
    "<fim-prefix>",
    "<fim_prefix>",
    "<｜fim▁begin｜>",
    "<PRE>",
    "▁<PRE>",
    "<|code_prefix|>",
    "<|prefix|>",
];
const FIM_SUF_NAMES: &[&str] = &[
    "<|fim_suffix|>",
    "<fim-suffix>",
    "<fim_suffix>",
    "<｜fim▁hole｜>",
    "<SUF>",
    "▁<SUF>",
    "<|code_suffix|>",
    "<|suffix|>",
];
const FIM_MID_NAMES: &[&str] = &[
    "<|fim_middle|>",
    "<fim-middle>",
    "<fim_middle>",
    "<｜fim▁end｜>",
    "<MID>",
    "▁<MID>",
    "<|code_middle|>",
    "<|middle|>",
];
const FIM_PAD_NAMES: &[&str] = &["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"];
const FIM_REP_NAMES: &[&str] = &[
    "<|fim_repo|>",
    "<|repo_name|>",
    "<fim-repo>",
    "<REPO>",
    "<reponame>",
];
const EOG_NAMES: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<|return|>",
    "<|call|>",
    "<|flush|>",
    "<|calls|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "</s>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "[EOS]",
    "<|end_of_text|>",
    "<end_of_utterance>",
    "<eos>",
    "<turn|>",
    "<|tool_response>",
    "<｜end▁of▁sentence｜>",
    "[e~[",
];

/// llama.cpp: lowercase off unless asked; accents stripped as lowercase says unless asked otherwise.
fn normalizer_opts(spec: &TokenizerSpec) -> crate::wpm::NormalizerOpts {
    let lowercase = spec.normalizer_lowercase.unwrap_or(false);
    crate::wpm::NormalizerOpts {
        lowercase,
        strip_accents: spec.normalizer_strip_accents.unwrap_or(lowercase),
    }
}

struct Defaults {
    bos: Option<u32>,
    eos: Option<u32>,
    unk: Option<u32>,
    sep: Option<u32>,
    add_bos: bool,
    add_eos: bool,
    add_space_prefix: bool,
}

impl Defaults {
    fn for_kind(kind: TokenizerKind, pre: Option<&str>) -> Defaults {
        match kind {
            TokenizerKind::Spm => Defaults {
                bos: Some(1),
                eos: Some(2),
                unk: Some(0),
                sep: None,
                add_bos: true,
                add_eos: false,
                add_space_prefix: true,
            },
            TokenizerKind::Bpe => {
                let flags = crate::pretok::PreFlags::for_name(pre.unwrap_or("default"));
                Defaults {
                    bos: if flags.no_bos { None } else { Some(11) },
                    eos: Some(11),
                    unk: None,
                    sep: None,
                    add_bos: flags.add_bos,
                    add_eos: false,
                    add_space_prefix: false,
                }
            }
            // BERT's [CLS] = 101, [SEP] = 102, [UNK] = 100
            TokenizerKind::Wpm => Defaults {
                bos: Some(101),
                eos: None,
                unk: Some(100),
                sep: Some(102),
                add_bos: true,
                add_eos: false,
                add_space_prefix: false,
            },
        }
    }
}

fn attr_of_type(t: i32) -> u16 {
    match t {
        1 => attr::NORMAL,
        2 => attr::UNKNOWN,
        3 => attr::CONTROL,
        4 => attr::USER_DEFINED,
        5 => attr::UNUSED,
        6 => attr::BYTE,
        _ => 0,
    }
}

fn check_len(
    key: &'static str,
    found: Option<usize>,
    expected: usize,
) -> Result<(), TokenizerError> {
    match found {
        Some(found) if found != expected => Err(TokenizerError::LengthMismatch {
            key,
            found,
            expected,
        }),
        _ => Ok(()),
    }
}

/// A token index as an id; vocabularies are far below `u32::MAX` (checked at load).
pub(crate) fn id(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}
