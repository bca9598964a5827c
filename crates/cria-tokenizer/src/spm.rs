//! SentencePiece-style BPE (`tokenizer.ggml.model = llama`): adjacent pieces whose concatenation is a
//! token merge, highest score first; characters left without a token fall back to `<0xNN>` byte tokens
//! (llama.cpp's `llm_tokenizer_spm_session`).

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use crate::vocab::Vocab;

#[derive(Clone, Copy)]
struct Symbol {
    start: usize,
    len: usize,
    prev: Option<usize>,
    next: Option<usize>,
}

struct Bigram {
    score: f32,
    left: usize,
    right: usize,
    size: usize,
}

impl Ord for Bigram {
    /// Higher score first; among equal scores, the leftmost.
    fn cmp(&self, other: &Self) -> Ordering {
        self.score
            .total_cmp(&other.score)
            .then_with(|| other.left.cmp(&self.left))
    }
}
impl PartialOrd for Bigram {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl PartialEq for Bigram {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Bigram {}

/// Tokenizes `text`, whose spaces are already escaped as `▁`.
pub(crate) fn encode(vocab: &Vocab, text: &str, out: &mut Vec<u32>) {
    let starts: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
    let n = starts.len();
    let mut symbols: Vec<Symbol> = (0..n)
        .map(|i| Symbol {
            start: starts[i],
            len: starts.get(i + 1).copied().unwrap_or(text.len()) - starts[i],
            prev: i.checked_sub(1),
            next: (i + 1 < n).then_some(i + 1),
        })
        .collect();
    let mut queue = BinaryHeap::new();
    for i in 1..n {
        push_bigram(vocab, text, &symbols, Some(i - 1), Some(i), &mut queue);
    }
    while let Some(b) = queue.pop() {
        let (l, r) = (symbols[b.left], symbols[b.right]);
        if l.len == 0 || r.len == 0 || l.len + r.len != b.size {
            continue;
        }
        symbols[b.left].len += r.len;
        symbols[b.left].next = r.next;
        symbols[b.right].len = 0;
        if let Some(nx) = r.next {
            symbols[nx].prev = Some(b.left);
        }
        push_bigram(vocab, text, &symbols, l.prev, Some(b.left), &mut queue);
        push_bigram(vocab, text, &symbols, Some(b.left), r.next, &mut queue);
    }
    let mut cur = (n > 0).then_some(0);
    while let Some(i) = cur {
        let s = symbols[i];
        let piece = &text[s.start..s.start + s.len];
        match vocab.text_to_token(piece) {
            Some(t) => out.push(t),
            None => out.extend(piece.bytes().filter_map(|b| byte_to_token(vocab, b))),
        }
        cur = s.next;
    }
}

fn push_bigram(
    vocab: &Vocab,
    text: &str,
    symbols: &[Symbol],
    left: Option<usize>,
    right: Option<usize>,
    queue: &mut BinaryHeap<Bigram>,
) {
    let (Some(left), Some(right)) = (left, right) else {
        return;
    };
    let (l, r) = (symbols[left], symbols[right]);
    let size = l.len + r.len;
    let Some(token) = text
        .get(l.start..l.start + size)
        .and_then(|s| vocab.text_to_token(s))
    else {
        return;
    };
    let score = vocab.scores.get(token as usize).copied().unwrap_or(0.0);
    queue.push(Bigram {
        score,
        left,
        right,
        size,
    });
}

/// The token for one raw byte: `<0xNN>`, else the byte as a one-character token, else `<unk>`.
pub(crate) fn byte_to_token(vocab: &Vocab, b: u8) -> Option<u32> {
    vocab
        .text_to_token(&format!("<0x{b:02X}>"))
        .or_else(|| {
            b.is_ascii()
                .then(|| vocab.text_to_token(&char::from(b).to_string()))
                .flatten()
        })
        .or(vocab.unk)
}
