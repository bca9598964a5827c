//! Streaming detokenization: text comes out only as whole UTF-8 characters.

use crate::Tokenizer;
use crate::vocab::attr;

/// Turns ids into text one at a time, holding back bytes until they form whole characters, so a
/// character split across byte tokens (Korean, emoji) never comes out as U+FFFD halves.
#[derive(Debug)]
pub struct IncrementalDecoder<'t> {
    tok: &'t Tokenizer,
    bytes: Utf8Stream,
    unparse_special: bool,
}

impl<'t> IncrementalDecoder<'t> {
    /// A decoder that renders control tokens as their text, like [`Tokenizer::decode`].
    pub fn new(tok: &'t Tokenizer) -> Self {
        IncrementalDecoder {
            tok,
            bytes: Utf8Stream::default(),
            unparse_special: true,
        }
    }

    /// A decoder that drops control tokens (`<|im_end|>`, `<bos>`) instead of printing them.
    pub fn skipping_special(tok: &'t Tokenizer) -> Self {
        IncrementalDecoder {
            tok,
            bytes: Utf8Stream::default(),
            unparse_special: false,
        }
    }

    /// Adds one token; returns the text it completes (possibly empty).
    pub fn push(&mut self, id: u32) -> String {
        if !self.unparse_special && self.tok.vocab.attr(id) & (attr::CONTROL | attr::UNKNOWN) != 0 {
            return String::new();
        }
        self.bytes.push_bytes(self.tok.token_bytes(id))
    }

    /// Flushes what is left; bytes that never formed a character come out as U+FFFD.
    pub fn finish(&mut self) -> String {
        self.bytes.finish()
    }

    /// Bytes held back, waiting for the rest of a character.
    pub fn pending_len(&self) -> usize {
        self.bytes.pending_len()
    }
}

/// The byte-level half of [`IncrementalDecoder`], owning no tokenizer: feed it
/// [`Tokenizer::token_bytes`] from wherever the tokenizer lives (an engine's `Arc<Tokenizer>`).
#[derive(Debug, Default, Clone)]
pub struct Utf8Stream {
    pending: Vec<u8>,
}

impl Utf8Stream {
    /// Adds bytes; returns every whole character now available.
    pub fn push_bytes(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let mut out = String::new();
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(s) => {
                    out.push_str(s);
                    self.pending.clear();
                    return out;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    out.push_str(&String::from_utf8_lossy(&self.pending[..valid]));
                    match e.error_len() {
                        // an incomplete character at the end: wait for more bytes
                        None => {
                            self.pending.drain(..valid);
                            return out;
                        }
                        // bytes that can never be valid: replace them and go on
                        Some(bad) => {
                            out.push('\u{FFFD}');
                            self.pending.drain(..valid + bad);
                        }
                    }
                }
            }
        }
    }

    /// Flushes what is left; an unfinished character comes out as U+FFFD.
    pub fn finish(&mut self) -> String {
        let out = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        out
    }

    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emoji_split_over_four_pushes_comes_out_whole() {
        let mut s = Utf8Stream::default();
        let bytes = "🎉".as_bytes();
        assert_eq!(s.push_bytes(&bytes[..1]), "");
        assert_eq!(s.push_bytes(&bytes[1..3]), "");
        assert_eq!(s.push_bytes(&bytes[3..]), "🎉");
        assert_eq!(s.pending_len(), 0);
    }

    #[test]
    fn invalid_bytes_become_one_replacement_each_and_do_not_stall() {
        let mut s = Utf8Stream::default();
        assert_eq!(s.push_bytes(b"a\xFFb"), "a\u{FFFD}b");
        assert_eq!(s.push_bytes(b"\xE2\x82"), "");
        assert_eq!(s.finish(), "\u{FFFD}");
    }
}
