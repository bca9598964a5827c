//! Token ids back to bytes (llama.cpp's `token_to_piece` and `detokenize`).

use crate::packed::Packed;
use crate::unicode::char_to_byte_table;
use crate::vocab::{TokenizerKind, Vocab, attr};

/// The bytes each token stands for, rendering special tokens as their text (llama.cpp's piece cache).
pub(crate) fn build_pieces(vocab: &Vocab) -> Packed {
    let inverse = char_to_byte_table();
    let mut pieces = Packed::default();
    for i in 0..vocab.len() {
        pieces.push(&piece(vocab, i, &inverse));
    }
    pieces
}

fn piece(vocab: &Vocab, i: usize, inverse: &[Option<u8>]) -> Vec<u8> {
    let text = vocab.texts.str(i);
    let a = vocab.attrs[i];
    if a & (attr::CONTROL | attr::UNKNOWN | attr::USER_DEFINED) != 0 {
        return text.as_bytes().to_vec();
    }
    match vocab.kind {
        TokenizerKind::Spm | TokenizerKind::Wpm if a & attr::NORMAL != 0 => {
            text.replace('▁', " ").into_bytes()
        }
        TokenizerKind::Spm if a & attr::BYTE != 0 => {
            parse_byte_token(text).map(|b| vec![b]).unwrap_or_default()
        }
        TokenizerKind::Bpe if a & attr::NORMAL != 0 => unmap_bytes(text, inverse),
        _ => Vec::new(),
    }
}

/// `<0xNN>` -> the byte NN.
fn parse_byte_token(text: &str) -> Option<u8> {
    let hex = text.strip_prefix("<0x")?.strip_suffix('>')?;
    u8::from_str_radix(hex, 16).ok()
}

/// GPT-2 printable characters back to bytes; a character outside the map is written as llama.cpp does.
fn unmap_bytes(text: &str, inverse: &[Option<u8>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    for c in text.chars() {
        match inverse.get(c as usize).copied().flatten() {
            Some(b) => out.push(b),
            None => {
                let mut buf = [0u8; 4];
                let hex: String = c
                    .encode_utf8(&mut buf)
                    .bytes()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                out.extend_from_slice(format!("[UNK_BYTE_0x{hex}{text}]").as_bytes());
            }
        }
    }
    out
}

/// How [`crate::Tokenizer::decode_with`] renders ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeOptions {
    /// Drop a leading BOS and a trailing EOS where the model adds them itself.
    pub remove_special: bool,
    /// Render control tokens (`<|im_start|>`) as their text; otherwise they vanish.
    pub unparse_special: bool,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions {
            remove_special: false,
            unparse_special: true,
        }
    }
}

/// llama.cpp's `detokenize`: pieces joined, then its space clean-up where the vocabulary asks for it.
pub(crate) fn detokenize(
    vocab: &Vocab,
    pieces: &Packed,
    mut ids: &[u32],
    opts: DecodeOptions,
    clean_spaces: bool,
) -> Vec<u8> {
    let mut remove_space = vocab.add_space_prefix;
    if opts.remove_special && vocab.add_bos && ids.first().is_some_and(|&t| Some(t) == vocab.bos) {
        remove_space = false;
        ids = &ids[1..];
    }
    if opts.remove_special && vocab.add_eos && ids.last().is_some_and(|&t| Some(t) == vocab.eos) {
        ids = &ids[..ids.len() - 1];
    }
    let mut out = Vec::new();
    for &t in ids {
        if !opts.unparse_special && vocab.attr(t) & (attr::CONTROL | attr::UNKNOWN) != 0 {
            continue;
        }
        let mut p = pieces.get(t as usize).unwrap_or_default();
        if remove_space && p.first() == Some(&b' ') {
            p = &p[1..];
        }
        remove_space = false;
        out.extend_from_slice(p);
    }
    if clean_spaces {
        clean_up_spaces(&mut out);
    }
    out
}

/// llama.cpp's three passes: no space before `?!.,`, none around a lone `'`, none before `'s 'm 're 've`.
fn clean_up_spaces(text: &mut Vec<u8>) {
    let mut out: Vec<u8> = Vec::with_capacity(text.len());
    for (i, &x) in text.iter().enumerate() {
        if i > 0 && text[i - 1] == b' ' && matches!(x, b'?' | b'!' | b'.' | b',') {
            out.pop();
        }
        out.push(x);
    }
    let t = std::mem::take(&mut out);
    let mut i = 0;
    while i < t.len() {
        let x = t[i];
        if i > 0 && x == b'\'' && i + 1 < t.len() && t[i - 1] == b' ' && t[i + 1] == b' ' {
            out.pop();
            out.push(x);
            i += 2;
            continue;
        }
        out.push(x);
        i += 1;
    }
    let t = std::mem::take(&mut out);
    for (i, &x) in t.iter().enumerate() {
        if i > 0 && t[i - 1] == b' ' && x == b'\'' && i + 1 < t.len() {
            let x1 = t[i + 1];
            let x2 = t.get(i + 2).copied();
            let drop = matches!(x1, b's' | b'm')
                || matches!((x1, x2), (b'r', Some(b'e')) | (b'v', Some(b'e')));
            if drop {
                out.pop();
            }
        }
        out.push(x);
    }
    *text = out;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_tokens_parse() {
        assert_eq!(parse_byte_token("<0x0A>"), Some(b'\n'));
        assert_eq!(parse_byte_token("<0xFF>"), Some(0xFF));
        assert_eq!(parse_byte_token("0x0A"), None);
    }

    #[test]
    fn clean_up_spaces_follows_llama_cpp() {
        let mut t = b"Hello , world ! it 's ok ' x".to_vec();
        clean_up_spaces(&mut t);
        assert_eq!(String::from_utf8(t).unwrap(), "Hello, world! it's ok'x");
    }
}
