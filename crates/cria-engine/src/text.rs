//! Turns token bytes into text deltas that never split a UTF-8 character and never leak part of a stop string.
//! Whole characters come from the tokenizer's [`Utf8Stream`] (the one UTF-8 assembler); this adds the stop
//! strings.

use cria_tokenizer::Utf8Stream;

/// The outcome of pushing one token's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Push {
    /// Text safe to send now (may be empty).
    Emit(String),
    /// A stop string was found: send this text, then stop.
    Stop(String),
}

/// Incremental text assembly with stop strings.
#[derive(Debug, Default, Clone)]
pub struct TextStream {
    stops: Vec<String>,
    /// Bytes of an incomplete UTF-8 character.
    partial: Utf8Stream,
    /// Decoded text held back because it could be the start of a stop string.
    held: String,
    /// Which stop string ended the text (its index among the non-empty ones, in the order given).
    matched: Option<usize>,
}

impl TextStream {
    /// A stream that stops at the first of `stops` (empty strings are ignored).
    pub fn new(stops: Vec<String>) -> Self {
        let stops = stops.into_iter().filter(|s| !s.is_empty()).collect();
        TextStream {
            stops,
            ..Default::default()
        }
    }

    /// Adds one token's bytes.
    pub fn push(&mut self, bytes: &[u8]) -> Push {
        let decoded = self.partial.push_bytes(bytes);
        self.held.push_str(&decoded);
        if let Some((pos, which)) = self.first_stop() {
            self.matched = Some(which);
            self.held.truncate(pos);
            return Push::Stop(std::mem::take(&mut self.held));
        }
        let keep = self.stop_prefix_len();
        let tail = self.held.split_off(self.held.len() - keep);
        Push::Emit(std::mem::replace(&mut self.held, tail))
    }

    /// Everything still held back, at the end of generation (invalid trailing bytes become U+FFFD).
    pub fn finish(&mut self) -> String {
        let mut out = std::mem::take(&mut self.held);
        out.push_str(&self.partial.finish());
        out
    }

    /// The stop string that ended the text, once [`push`](Self::push) returned [`Push::Stop`]: its index
    /// among the non-empty stop strings given.
    pub fn matched_stop(&self) -> Option<usize> {
        self.matched
    }

    /// The earliest stop string in `held` (the first listed on a tie): its position and index.
    fn first_stop(&self) -> Option<(usize, usize)> {
        self.stops
            .iter()
            .enumerate()
            .filter_map(|(i, s)| self.held.find(s.as_str()).map(|pos| (pos, i)))
            .min()
    }

    /// Length of the longest suffix of `held` that is a proper prefix of some stop string.
    fn stop_prefix_len(&self) -> usize {
        let h = &self.held;
        (1..=h.len())
            .rev()
            .filter(|&n| h.is_char_boundary(h.len() - n))
            .find(|&n| {
                self.stops
                    .iter()
                    .any(|s| s.len() > n && s.starts_with(&h[h.len() - n..]))
            })
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn emit(s: &str) -> Push {
        Push::Emit(s.to_string())
    }

    #[test]
    fn multibyte_character_split_across_tokens_is_sent_whole() {
        let mut t = TextStream::new(vec![]);
        let bytes = "é".as_bytes();
        assert_eq!(t.push(&bytes[..1]), emit(""));
        assert_eq!(t.push(&bytes[1..]), emit("é"));
    }

    #[test]
    fn stop_string_across_tokens_is_never_leaked() {
        let mut t = TextStream::new(vec!["END".into()]);
        assert_eq!(t.push(b"abc E"), emit("abc "));
        assert_eq!(t.push(b"N"), emit(""));
        assert_eq!(t.push(b"Dxyz"), Push::Stop("".into()));
    }

    #[test]
    fn false_start_of_stop_string_is_released() {
        let mut t = TextStream::new(vec!["END".into()]);
        assert_eq!(t.push(b"E"), emit(""));
        assert_eq!(t.push(b"Nx"), emit("ENx"));
    }

    #[test]
    fn text_before_stop_in_same_token_is_sent() {
        let mut t = TextStream::new(vec!["\n\n".into(), "stop".into()]);
        assert_eq!(t.push(b"hi\n\nthere"), Push::Stop("hi".into()));
        assert_eq!(t.matched_stop(), Some(0));
    }

    #[test]
    fn the_stop_string_found_earliest_is_the_one_matched() {
        let mut t = TextStream::new(vec!["zz".into(), String::new(), "b".into(), "ab".into()]);
        assert_eq!(t.push(b"xabzz"), Push::Stop("x".into()));
        // "ab" starts before "b"; empty strings are not counted.
        assert_eq!(t.matched_stop(), Some(2));
    }

    #[test]
    fn finish_flushes_held_text_and_broken_bytes() {
        let mut t = TextStream::new(vec!["END".into()]);
        assert_eq!(t.push(b"ok EN"), emit("ok "));
        assert_eq!(t.push(&[0xE2, 0x82]), emit(""));
        assert_eq!(t.finish(), "EN\u{FFFD}");
    }

    #[test]
    fn invalid_bytes_become_replacement_characters() {
        let mut t = TextStream::new(vec![]);
        assert_eq!(t.push(&[b'a', 0xFF, b'b']), emit("a\u{FFFD}b"));
    }

    #[test]
    fn stop_prefix_respects_char_boundaries() {
        let mut t = TextStream::new(vec!["éx".into()]);
        assert_eq!(t.push("aé".as_bytes()), emit("a"));
        assert_eq!(t.push(b"y"), emit("éy"));
    }
}
