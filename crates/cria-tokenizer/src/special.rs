//! Splitting text at special tokens before tokenizing the rest (llama.cpp's `tokenizer_st_partition`).
//!
//! Special tokens are tried longest first; each splits every text fragment left so far at all its
//! occurrences. User-defined tokens always split; control and unknown tokens only with `parse_special`.

use aho_corasick::AhoCorasick;
use memchr::memmem;

use crate::vocab::{Vocab, attr};

/// A piece of the input: text still to tokenize, or a special token already recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fragment<'a> {
    Text(&'a str),
    Token(u32),
}

#[derive(Debug)]
pub(crate) struct SpecialTokens {
    /// Ids of control, user-defined and unknown tokens, longest text first.
    order: Vec<u32>,
    /// Finds which special texts occur at all, so absent ones cost nothing.
    matcher: Option<AhoCorasick>,
}

impl SpecialTokens {
    pub fn new(vocab: &Vocab) -> SpecialTokens {
        let mut order: Vec<u32> = (0..vocab.len())
            .filter(|&i| vocab.attrs[i] & (attr::CONTROL | attr::USER_DEFINED | attr::UNKNOWN) != 0)
            .map(crate::vocab::id)
            .collect();
        order.sort_by_key(|&i| std::cmp::Reverse(vocab.text(i).len()));
        let matcher = AhoCorasick::new(order.iter().map(|&i| vocab.text(i).as_bytes())).ok();
        SpecialTokens { order, matcher }
    }

    /// Splits `text` into fragments.
    pub fn partition<'a>(
        &self,
        vocab: &Vocab,
        text: &'a str,
        parse_special: bool,
    ) -> Vec<Fragment<'a>> {
        if text.is_empty() {
            return Vec::new();
        }
        let present = self.present(text);
        let mut fragments = vec![Fragment::Text(text)];
        for (k, &token) in self.order.iter().enumerate() {
            if !present[k] {
                continue;
            }
            if !parse_special && vocab.attr(token) & (attr::CONTROL | attr::UNKNOWN) != 0 {
                continue;
            }
            let needle = vocab.text(token).as_bytes();
            let finder = memmem::Finder::new(needle);
            let mut next = Vec::with_capacity(fragments.len() + 2);
            for f in fragments {
                match f {
                    Fragment::Text(t) => split_at_token(t, &finder, needle.len(), token, &mut next),
                    Fragment::Token(_) => next.push(f),
                }
            }
            fragments = next;
        }
        fragments
    }

    /// For each entry of `order`, whether its text occurs anywhere in `text`.
    fn present(&self, text: &str) -> Vec<bool> {
        let mut present = vec![false; self.order.len()];
        if let Some(m) = &self.matcher {
            for hit in m.find_overlapping_iter(text) {
                present[hit.pattern().as_usize()] = true;
            }
        }
        present
    }
}

fn split_at_token<'a>(
    text: &'a str,
    finder: &memmem::Finder,
    n: usize,
    token: u32,
    out: &mut Vec<Fragment<'a>>,
) {
    let mut rest = text;
    while let Some(pos) = finder.find(rest.as_bytes()) {
        if pos > 0 {
            out.push(Fragment::Text(&rest[..pos]));
        }
        out.push(Fragment::Token(token));
        rest = &rest[pos + n..];
    }
    if !rest.is_empty() {
        out.push(Fragment::Text(rest));
    }
}
