//! Reading a [`TokenizerSpec`] from GGUF metadata.

use cria_gguf::GgufFile;

use crate::{TokenizerError, TokenizerSpec};

const PREFIX: &str = "tokenizer.ggml.";

impl TokenizerSpec {
    /// The `tokenizer.*` metadata of a GGUF file.
    pub fn from_gguf(file: &GgufFile) -> Result<TokenizerSpec, TokenizerError> {
        let key = |k: &str| format!("{PREFIX}{k}");
        let opt_u32 = |k: &str| -> Result<Option<u32>, TokenizerError> {
            let k = key(k);
            Ok(if file.get(&k).is_some() {
                Some(file.u32(&k)?)
            } else {
                None
            })
        };
        let opt_bool = |k: &str| -> Result<Option<bool>, TokenizerError> {
            let k = key(k);
            Ok(if file.get(&k).is_some() {
                Some(file.bool(&k)?)
            } else {
                None
            })
        };
        let has = |k: &str| file.get(&key(k)).is_some();
        let owned = |v: Vec<&str>| v.into_iter().map(str::to_owned).collect::<Vec<_>>();
        Ok(TokenizerSpec {
            model: file.str(&key("model"))?.to_owned(),
            pre: if has("pre") {
                Some(file.str(&key("pre"))?.to_owned())
            } else {
                None
            },
            tokens: owned(file.str_array(&key("tokens"))?),
            token_types: if has("token_type") {
                Some(file.i32_array(&key("token_type"))?)
            } else {
                None
            },
            scores: if has("scores") {
                Some(file.f32_array(&key("scores"))?)
            } else {
                None
            },
            merges: if has("merges") {
                owned(file.str_array(&key("merges"))?)
            } else {
                Vec::new()
            },
            bos: opt_u32("bos_token_id")?,
            eos: opt_u32("eos_token_id")?,
            eot: opt_u32("eot_token_id")?,
            eom: opt_u32("eom_token_id")?,
            unk: opt_u32("unknown_token_id")?,
            pad: opt_u32("padding_token_id")?,
            sep: opt_u32("seperator_token_id")?,
            normalizer_lowercase: opt_bool("normalizer.lowercase")?,
            normalizer_strip_accents: opt_bool("normalizer.strip_accents")?,
            add_bos: opt_bool("add_bos_token")?,
            add_eos: opt_bool("add_eos_token")?,
            add_space_prefix: opt_bool("add_space_prefix")?,
            chat_template: match file.get("tokenizer.chat_template") {
                Some(_) => Some(file.str("tokenizer.chat_template")?.to_owned()),
                None => None,
            },
        })
    }
}
