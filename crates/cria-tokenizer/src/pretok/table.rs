//! The pre-tokenizers llama.cpp knows, as its `llama-vocab.cpp` lists them: which `tokenizer.ggml.pre`
//! names map to which regex list, and what else each name switches (merges, space cleaning, BOS).
//!
//! Generated from the llama.cpp tree in llama-cpp-python 0.3.36 (`llm_tokenizer_bpe` and `load_pre`); the
//! patterns are llama.cpp's own strings, with non-ASCII characters written as `\x{..}` escapes.
//! A pattern that llama.cpp runs through a hand-written splitter (GPT-2's, LLaMA 3's, Qwen2's, Qwen3.5's,
//! the newline split) is recognised by its exact text in `super::Step::parse`, as llama.cpp does.
//! Left out: `kimi-k2`, `afmoe`, `tiny_aya` and `cohere2moe` (llama.cpp splits them with hand-written code not
//! ported yet); `gemma4` and `sarvam-moe` (they escape spaces as SentencePiece does, which this BPE does not do);
//! `jina-v1-en`, `jina-v2-code` and `roberta-bpe` split as GPT-2 but also add a SEP token, which is not done here.

use super::PreFlags;

/// The regex list and flags for a `tokenizer.ggml.pre` name, `None` when llama.cpp does not know it.
pub(super) fn lookup(name: &str) -> Option<(&'static [&'static str], PreFlags)> {
    Some(match name {
        "default" => (DEFAULT, PreFlags::BASE),
        "minicpm5" => (MINICPM5, PreFlags::BASE.ignore_merges()),
        "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "falcon-h1" | "pixtral" | "midm-2.0"
        | "lfm2" | "jina-v5-nano" => (LLAMA3, PreFlags::BASE.ignore_merges().add_bos()),
        "deepseek-llm" => (DEEPSEEK_LLM, PreFlags::BASE.no_clean()),
        "deepseek-coder" => (DEEPSEEK_CODER, PreFlags::BASE.no_clean()),
        "deepseek-v3" => (DEEPSEEK3_LLM, PreFlags::BASE.no_clean()),
        "spark2_5" => (SPARK2_5, PreFlags::BASE.no_clean()),
        "youtu" => (YOUTU, PreFlags::BASE.no_clean().ignore_merges()),
        "falcon" => (FALCON, PreFlags::BASE),
        "mpt" => (GPT2, PreFlags::BASE),
        "starcoder" => (STARCODER, PreFlags::BASE),
        "gpt-2" | "phi-2" | "jina-es" | "jina-de" | "gigachat" | "jina-v2-es" | "jina-v2-de"
        | "a.x-4.0" | "mellum" | "modern-bert" | "exaone4" => (GPT2, PreFlags::BASE),
        "jais-2" => (JAIS2, PreFlags::BASE),
        "jina-v1-en" | "jina-v2-code" | "roberta-bpe" => (GPT2, PreFlags::BASE),
        "whitespace" => (WHITESPACE, PreFlags::BASE),
        "refact" => (STARCODER, PreFlags::BASE),
        "command-r" => (STARCODER, PreFlags::BASE.no_clean()),
        "qwen2" | "deepseek-r1-qwen" | "kormo" | "f2llmv2" => (QWEN2, PreFlags::BASE.no_clean()),
        "qwen35" => (QWEN35, PreFlags::BASE.no_clean()),
        "stablelm2" => (QWEN2, PreFlags::BASE),
        "olmo" => (GPT2, PreFlags::BASE),
        "dbrx" => (DBRX, PreFlags::BASE),
        "smaug-bpe" => (DBRX, PreFlags::BASE),
        "poro-chat" => (PORO, PreFlags::BASE.no_clean()),
        "chatglm-bpe" => (CHATGLM4, PreFlags::BASE.no_bos()),
        "glm4" | "glm5" => (CHATGLM4, PreFlags::BASE.ignore_merges().no_bos()),
        "viking" => (VIKING, PreFlags::BASE.no_clean()),
        "jais" => (GPT2, PreFlags::BASE),
        "tekken" => (TEKKEN, PreFlags::BASE.no_clean().ignore_merges().add_bos()),
        "smollm" => (STARCODER, PreFlags::BASE.no_clean()),
        "codeshell" => (STARCODER, PreFlags::BASE),
        "bloom" => (PORO, PreFlags::BASE),
        "gpt3-finnish" => (PORO, PreFlags::BASE),
        "exaone" => (STARCODER, PreFlags::BASE),
        "exaone-moe" => (EXAONE_MOE, PreFlags::BASE),
        "chameleon" => (CHAMELEON, PreFlags::BASE.no_clean().add_bos()),
        "minerva-7b" => (STARCODER, PreFlags::BASE),
        "megrez" => (QWEN2, PreFlags::BASE),
        "gpt-4o" | "llama4" | "kanana2" | "talkie" => (GPT4O, PreFlags::BASE.no_clean()),
        "granite-embed-multi-97m" => (GRANITE_EMB_MULTI, PreFlags::BASE.no_clean().ignore_merges()),
        "superbpe" => (SUPERBPE, PreFlags::BASE.no_clean()),
        "trillion" => (GPT2, PreFlags::BASE.no_clean()),
        "granite-docling" => (GPT2, PreFlags::BASE.no_clean()),
        "bailingmoe" | "bailingmoe2" | "llada-moe" => (BAILINGMOE, PreFlags::BASE.no_clean()),
        "seed-coder" => (SEED_CODER, PreFlags::BASE.no_clean()),
        "hunyuan" => (QWEN2, PreFlags::BASE.no_clean()),
        "hunyuan-dense" => (DEEPSEEK3_LLM, PreFlags::BASE.no_clean()),
        "hy_v4" => (DEEPSEEK3_LLM, PreFlags::BASE.no_clean()),
        "joyai-llm" => (DEEPSEEK3_LLM, PreFlags::BASE.no_clean()),
        "ufakzeka" => (UFAKZEKA, PreFlags::BASE.no_clean()),
        "grok-2" => (GROK_2, PreFlags::BASE.no_clean()),
        "laguna" => (LAGUNA, PreFlags::BASE.no_clean()),
        "minimax-m2" => (GPT4O, PreFlags::BASE.no_clean()),
        "solar-open" => (QWEN2, PreFlags::BASE.no_clean()),
        "mellum2" => (STARCODER, PreFlags::BASE),
        _ => return None,
    })
}

/// Every name `lookup` knows.
#[cfg(test)]
pub(super) const NAMES: &[&str] = &[
    "default",
    "minicpm5",
    "llama3",
    "llama-v3",
    "llama-bpe",
    "falcon3",
    "falcon-h1",
    "pixtral",
    "midm-2.0",
    "lfm2",
    "jina-v5-nano",
    "deepseek-llm",
    "deepseek-coder",
    "deepseek-v3",
    "spark2_5",
    "youtu",
    "falcon",
    "mpt",
    "starcoder",
    "gpt-2",
    "phi-2",
    "jina-es",
    "jina-de",
    "gigachat",
    "jina-v2-es",
    "jina-v2-de",
    "a.x-4.0",
    "mellum",
    "modern-bert",
    "exaone4",
    "jais-2",
    "jina-v1-en",
    "jina-v2-code",
    "roberta-bpe",
    "whitespace",
    "refact",
    "command-r",
    "qwen2",
    "deepseek-r1-qwen",
    "kormo",
    "f2llmv2",
    "qwen35",
    "stablelm2",
    "olmo",
    "dbrx",
    "smaug-bpe",
    "poro-chat",
    "chatglm-bpe",
    "glm4",
    "glm5",
    "viking",
    "jais",
    "tekken",
    "smollm",
    "codeshell",
    "bloom",
    "gpt3-finnish",
    "exaone",
    "exaone-moe",
    "chameleon",
    "minerva-7b",
    "megrez",
    "gpt-4o",
    "llama4",
    "kanana2",
    "talkie",
    "granite-embed-multi-97m",
    "superbpe",
    "trillion",
    "granite-docling",
    "bailingmoe",
    "bailingmoe2",
    "llada-moe",
    "seed-coder",
    "hunyuan",
    "hunyuan-dense",
    "hy_v4",
    "joyai-llm",
    "ufakzeka",
    "grok-2",
    "laguna",
    "minimax-m2",
    "solar-open",
    "mellum2",
];

/// llama.cpp's LLAMA_VOCAB_PRE_TYPE_LLAMA3
pub(super) const LLAMA3: &[&str] = &[
    r##"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"##,
];
/// llama.cpp's LLAMA_VOCAB_PRE_TYPE_JAIS2
pub(super) const JAIS2: &[&str] = &[
    r##"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s{512}(?!\S)|\s{256}(?!\S)|\s{128}(?!\S)|\s{64}(?!\S)|\s{32}(?!\S)|\s{16}(?!\S)|\s{8}(?!\S)|\s{4}(?!\S)|\s{1,2}(?!\S)|\s{1}"##,
];
/// llama.cpp's LLAMA_VOCAB_PRE_TYPE_DBRX, SMAUG
pub(super) const DBRX: &[&str] = &[
    r##"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"##,
];
/// llama.cpp's LLAMA_VOCAB_PRE_TYPE_DEEPSEEK_LLM
pub(super) const DEEPSEEK_LLM: &[&str] = &[
    r##"[\x{D}\x{A}]"##,
    r##"\s?[A-Za-z\x{B5}\x{C0}-\x{D6}\x{D8}-\x{F6}\x{F8}-\x{1BA}\x{1BC}-\x{1BF}\x{1C4}-\x{293}\x{295}-\x{2AF}\x{370}-\x{373}\x{376}\x{377}\x{37B}-\x{37D}\x{37F}\x{386}\x{388}-\x{38A}\x{38C}\x{38E}-\x{3A1}\x{3A3}-\x{3F5}\x{3F7}-\x{481}\x{48A}-\x{52F}\x{531}-\x{556}\x{10A0}-\x{10C5}\x{13A0}-\x{13F5}\x{13F8}-\x{13FD}\x{1C90}-\x{1CBA}\x{1CBD}-\x{1CBF}\x{1D00}-\x{1D2B}\x{1D6B}-\x{1D77}\x{1D79}-\x{1D9A}\x{1E00}-\x{1F15}\x{1F18}-\x{1F1D}\x{1F20}-\x{1F45}\x{1F48}-\x{1F4D}\x{1F50}-\x{1F57}\x{1F59}\x{1F5B}\x{1F5D}\x{1F5F}-\x{1F7D}\x{1F80}-\x{1FB4}\x{1FB6}-\x{1FBC}\x{1FBE}\x{1FC2}-\x{1FC4}\x{1FC6}-\x{1FCC}\x{1FD0}-\x{1FD3}\x{1FD6}-\x{1FDB}\x{1FE0}-\x{1FEC}\x{1FF2}-\x{1FF4}\x{1FF6}-\x{1FFC}\x{2102}\x{2107}\x{210A}-\x{2113}\x{2115}\x{2119}-\x{211D}\x{2124}\x{2126}\x{2128}\x{212A}-\x{212D}\x{212F}-\x{2134}\x{2139}\x{213C}-\x{213F}\x{2145}-\x{2149}\x{214E}\x{2183}\x{2184}\x{2C00}-\x{2C7B}\x{2C7E}-\x{2CE4}\x{2CEB}-\x{2CEE}\x{2CF2}\x{2CF3}\x{A640}-\x{A66D}\x{A680}-\x{A69B}\x{A722}-\x{A76F}\x{A771}-\x{A787}\x{A78B}-\x{A78E}\x{AB70}-\x{ABBF}\x{FB00}-\x{FB06}\x{FB13}-\x{FB17}\x{FF21}-\x{FF3A}\x{FF41}-\x{FF5A}\x{10400}-\x{1044F}\x{104B0}-\x{104D3}\x{104D8}-\x{104FB}\x{10C80}-\x{10CB2}\x{10CC0}-\x{10CF2}\x{118A0}-\x{118DF}\x{1E900}-\x{1E943}]+"##,
    r##"\s?[!-/:-~\x{FF01}-\x{FF0F}\x{FF1A}-\x{FF5E}\x{2018}-\x{201F}\x{3000}-\x{3002}]+"##,
    r##"\s+$"##,
    r##"[\x{4E00}-\x{9FA5}\x{800}-\x{4E00}\x{AC00}-\x{D7FF}]+"##,
    r##"\p{N}+"##,
];
/// llama.cpp's LLAMA_VOCAB_PRE_TYPE_DEEPSEEK3_LLM, HUNYUAN_DENSE, JOYAI_LLM, HY_V4
pub(super) const DEEPSEEK3_LLM: &[&str] = &[
    r##"\p{N}{1,3}"##,
    r##"[\x{4E00}-\x{9FA5}\x{3040}-\x{309F}\x{30A0}-\x{30FF}]+"##,
    r##"[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\x{D}\x{A}\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\x{D}\x{A}]*|\s*[\x{D}\x{A}]+|\s+(?!\S)|\s+"##,
];
/// llama.cpp's LLAMA_VOCAB_PRE_TYPE_SPARK2_5
pub(super) const SPARK2_5: &[&str] = &[
    r##"\p{N}{1,3}"##,
    r##"[\x{4E00}-\x{9FA5}\x{3040}-\x{309F}\x{30A0}-\x{30FF}]+"##,
    r##"[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\x{D}\x{A}\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+|[\x{D}\x{A}]|\s+(?!\S)|\s+"##,
    r##"\p{N}"##,
];
/// llama.cpp's LLAMA_VOCAB_PRE_TYPE_YOUTU
pub(super) const YOUTU: &[&str] = &[
    r##"[\x{AC00}-\x{D7A3}\x{3131}-\x{318E}]+|[\x{FF01}\x{2026}\x{201C}\x{201D}\x{2018}\x{2019}\x{2014}\x{FF1A}\x{FF1B}\x{FF0C}\x{3001}-\x{303F}\x{FE30}-\x{FE4F}]+|[\x{3105}-\x{312F}]+|[\x{4E00}-\x{9FA5}\x{3040}-\x{309F}\x{30A0}-\x{30FF}]+"##,
    r##"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"##,
];
/// llama.cpp's LLAMA_VOCAB_PRE_TYPE_DEEPSEEK_CODER
pub(super) const DEEPSEEK_CODER: &[&str] = &[
    r##"[\x{D}\x{A}]"##,
    r##"\s?\p{L}+"##,
    r##"\s?\p{P}+"##,
    r##"[\x{4E00}-\x{9FA5}\x{800}-\x{4E00}\x{AC00}-\x{D7FF}]+"##,
    r##"\p{N}"##,
];
/// llama.cpp's LLAMA_VOCAB_PRE_TYPE_FALCON
pub(super) const FALCON: &[&str] = &[
    r##"[\p{P}\$\+<=>\^~\|`]+"##,
    r##"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"##,
    r##"[0-9][0-9][0-9]"##,
];
/// llama.cpp's LLAMA_VOCAB_PRE_TYPE_STARCODER, REFACT, COMMAND_R, SMOLLM, CODESHELL, EXAONE, MINERVA, MELLUM2
pub(super) const STARCODER: &[&str] = &[
    r##"\p{N}"##,
    r##"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"##,
];
/// llama.cpp's LLAMA_VOCAB_PRE_TYPE_GPT2, MPT, OLMO, JAIS, TRILLION, GRANITE_DOCLING
pub(super) const GPT2: &[&str] =
    &[r##"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"##];
/// llama.cpp's LLAMA_VOCAB_PRE_TYPE_STABLELM2, QWEN2, HUNYUAN, SOLAR_OPEN
pub(super) const QWEN2: &[&str] = &[
    r##"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"##,
];
/// llama.cpp's LLAMA_VOCAB_PRE_TYPE_QWEN35
pub(super) const QWEN35: &[&str] = &[
    r##"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"##,
];
/// llama.cpp's LLAMA_VOCAB_PRE_TYPE_PORO, BLOOM, GPT3_FINNISH
pub(super) const PORO: &[&str] =
    &[r##" ?[^(\s|.,!?\x{2026}\x{3002}\x{FF0C}\x{3001}\x{964}\x{6D4}\x{60C})]+"##];
/// llama.cpp's LLAMA_VOCAB_PRE_TYPE_CHATGLM4
pub(super) const CHATGLM4: &[&str] = &[
    r##"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"##,
];
/// llama.cpp's LLAMA_VOCAB_PRE_TYPE_VIKING
pub(super) const VIKING: &[&str] = &[
    r##" ?[^(\s|.,!?\x{2026}\x{3002}\x{FF0C}\x{3001}\x{964}\x{6D4}\x{60C})]+"##,
    r##"\p{N}"##,
];
/// llama.cpp's LLAMA_VOCAB_PRE_TYPE_TEKKEN
pub(super) const TEKKEN: &[&str] = &[
    r##"[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"##,
];
/// llama.cpp's LLAMA_VOCAB_PRE_TYPE_CHAMELEON
pub(super) const CHAMELEON: &[&str] = &[
    r##"<sentinel:[0-9]+>"##,
    r##"(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z"##,
    r##"([\t\n]|    |  )"##,
    r##"\p{N}"##,
    r##"[\p{P}!-/:-@\[-`{-~]"##,
    r##"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"##,
];
/// llama.cpp's LLAMA_VOCAB_PRE_TYPE_GPT4O, MINIMAX_M2
pub(super) const GPT4O: &[&str] = &[
    r##"[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"##,
];
/// llama.cpp's LLAMA_VOCAB_PRE_TYPE_GRANITE_EMB_MULTI
pub(super) const GRANITE_EMB_MULTI: &[&str] = &[
    r##"[^\r\n\p{L}\p{N}]?((?=[\p{L}\p{M}])([^a-z]))*((?=[\p{L}\p{M}])([^A-Z]))+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\r\n\p{L}\p{N}]?((?=[\p{L}\p{M}])([^a-z]))+((?=[\p{L}\p{M}])([^A-Z]))*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"##,
];
/// llama.cpp's LLAMA_VOCAB_PRE_TYPE_SUPERBPE
pub(super) const SUPERBPE: &[&str] = &[r##"\p{N}+"##, r##"(?=(\d{3})+(?!\d))"##];
/// llama.cpp's LLAMA_VOCAB_PRE_TYPE_BAILINGMOE
pub(super) const BAILINGMOE: &[&str] = &[
    r##"'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+"##,
];
/// llama.cpp's LLAMA_VOCAB_PRE_TYPE_SEED_CODER
pub(super) const SEED_CODER: &[&str] = &[
    r##"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1}| ?[^\s\p{L}\p{N}\r\n]+|\s*[\r\n]+|\s+(?!\S)|\s+"##,
];
/// llama.cpp's LLAMA_VOCAB_PRE_TYPE_UFAKZEKA
pub(super) const UFAKZEKA: &[&str] =
    &[r##"[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"##];
/// llama.cpp's LLAMA_VOCAB_PRE_TYPE_GROK_2
pub(super) const GROK_2: &[&str] = &[
    r##"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"##,
];
/// llama.cpp's LLAMA_VOCAB_PRE_TYPE_LAGUNA
pub(super) const LAGUNA: &[&str] = &[
    r##"[^\n]+|[\n]+"##,
    r##"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"##,
];
/// llama.cpp's LLAMA_VOCAB_PRE_TYPE_EXAONE_MOE
pub(super) const EXAONE_MOE: &[&str] = &[
    r##"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?(?:\p{L}\p{M}*(?: \p{L}\p{M}*)*)+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]?|\s*[\r\n]|\s+(?!\S)|\s+"##,
];
/// llama.cpp's LLAMA_VOCAB_PRE_TYPE_MINICPM5
pub(super) const MINICPM5: &[&str] = &[
    r##"\p{N}{1,3}"##,
    r##"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}+| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"##,
];
/// llama.cpp's LLAMA_VOCAB_PRE_TYPE_WHITESPACE
pub(super) const WHITESPACE: &[&str] = &[r##"\S+"##];
/// llama.cpp's LLAMA_VOCAB_PRE_TYPE_DEFAULT
pub(super) const DEFAULT: &[&str] = &[
    r##"[\p{P}\$\+<=>\^~\|]+"##,
    r##"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"##,
    r##"\p{N}+"##,
    r##"[0-9][0-9][0-9]"##,
];
