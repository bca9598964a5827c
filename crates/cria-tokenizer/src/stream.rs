//! Streaming detokenization: text comes out only as whole UTF-8 characters.

use crate::Tokenizer;
use crate::vocab::attr;

/// Turns ids into text one at a time, holding back bytes until they form whole characters, so a
/// character split across byte tokens (Korean, emoji) never comes out as U+FFFD halves.
#[derive(Debug)]
pub struct IncrementalDecoder<'t> {
    tok: &'t Tokenizer,
    pending: Vec<u8>,
    unparse_special: bool,
}

impl<'t> IncrementalDecoder<'t> {
    /// A decoder that renders control tokens as their text, like [`Tokenizer::decode`].
    pub fn new(tok: &'t Tokenizer) -> Self {
        IncrementalDecoder {
            tok,
            pending: Vec::new(),
            unparse_special: true,
        }
    }

    /// A decoder that drops control tokens (`<|im_end|>`, `<bos>`) instead of printing them.
    pub fn skipping_special(tok: &'t Tokenizer) -> Self {
        IncrementalDecoder {
            tok,
            pending: Vec::new(),
            unparse_special: false,
        }
    }

    /// Adds one token; returns the text it completes (possibly empty).
    pub fn push(&mut self, id: u32) -> String {
        if self.unparse_special || self.tok.vocab.attr(id) & (attr::CONTROL | attr::UNKNOWN) == 0 {
            self.pending.extend_from_slice(self.tok.token_bytes(id));
        }
        self.drain_complete()
    }

    /// Flushes what is left; bytes that never formed a character come out as U+FFFD.
    pub fn finish(&mut self) -> String {
        let out = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        out
    }

    /// Bytes held back, waiting for the rest of a character.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    fn drain_complete(&mut self) -> String {
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
}
