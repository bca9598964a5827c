//! Byte-level BPE (GPT-2 style): each word's bytes become printable characters, then the merge of lowest
//! rank is applied until none is left (llama.cpp's `llm_tokenizer_bpe_session`).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use rustc_hash::FxHashMap;

use crate::unicode::byte_to_char_table;
use crate::vocab::{Vocab, id};

/// Merge ranks over interned pieces: strings that are tokens keep their token id, other strings that
/// appear in merges get ids from the vocabulary size up.
#[derive(Debug)]
pub(crate) struct BpeModel {
    n_vocab: u32,
    /// (left piece, right piece) -> (rank, merged piece)
    merges: FxHashMap<(u32, u32), (u32, u32)>,
    /// The piece of each byte's printable character, if any merge or token has it.
    byte_piece: [Option<u32>; 256],
    byte_char: [char; 256],
    /// The token of each byte's character taken alone as a one-byte string (the last-resort fallback).
    byte_token: [Option<u32>; 256],
}

#[derive(Clone, Copy)]
struct Symbol {
    start: usize,
    len: usize,
    piece: Option<u32>,
    prev: Option<usize>,
    next: Option<usize>,
}

impl BpeModel {
    pub fn new(vocab: &Vocab, merges: &[String]) -> BpeModel {
        let n_vocab = id(vocab.len());
        let mut interned: FxHashMap<String, u32> = FxHashMap::default();
        let mut intern = |s: &str| -> u32 {
            if let Some(t) = vocab.text_to_token(s) {
                return t;
            }
            let next = n_vocab + id(interned.len());
            *interned.entry(s.to_string()).or_insert(next)
        };
        let mut table = FxHashMap::default();
        for (rank, merge) in merges.iter().enumerate() {
            // llama.cpp splits at the first space after the first byte
            let bytes = merge.as_bytes();
            let Some(pos) = bytes.iter().skip(1).position(|&b| b == b' ').map(|p| p + 1) else {
                continue;
            };
            let (left, right) = (&merge[..pos], &merge[pos + 1..]);
            let merged = format!("{left}{right}");
            let key = (intern(left), intern(right));
            let value = (id(rank), intern(&merged));
            table.entry(key).or_insert(value);
        }
        let byte_char = byte_to_char_table();
        let mut byte_piece = [None; 256];
        let mut byte_token = [None; 256];
        let mut buf = [0u8; 4];
        for b in 0..256 {
            let s = byte_char[b].encode_utf8(&mut buf);
            byte_piece[b] = vocab
                .text_to_token(s)
                .or_else(|| interned.get(&*s).copied());
            if byte_char[b].is_ascii() {
                byte_token[b] = vocab.text_to_token(s);
            }
        }
        BpeModel {
            n_vocab,
            merges: table,
            byte_piece,
            byte_char,
            byte_token,
        }
    }

    /// Tokenizes one pre-tokenized word (raw bytes, not yet mapped to printable characters).
    pub fn encode_word(&self, vocab: &Vocab, word: &[u8], ignore_merges: bool, out: &mut Vec<u32>) {
        if ignore_merges {
            let mapped: String = word
                .iter()
                .map(|&b| self.byte_char[usize::from(b)])
                .collect();
            if let Some(t) = vocab.text_to_token(&mapped) {
                out.push(t);
                return;
            }
        }
        let mut symbols: Vec<Symbol> = (0..word.len())
            .map(|i| Symbol {
                start: i,
                len: 1,
                piece: self.byte_piece[usize::from(word[i])],
                prev: i.checked_sub(1),
                next: (i + 1 < word.len()).then_some(i + 1),
            })
            .collect();
        self.merge_all(&mut symbols);
        let mut cur = (!symbols.is_empty()).then_some(0);
        while let Some(i) = cur {
            let s = symbols[i];
            match s.piece.filter(|&p| p < self.n_vocab) {
                Some(t) => out.push(t),
                None => out.extend(
                    word[s.start..s.start + s.len]
                        .iter()
                        .filter_map(|&b| self.byte_token[usize::from(b)]),
                ),
            }
            cur = s.next;
        }
    }

    fn merge_all(&self, symbols: &mut [Symbol]) {
        // min-heap on (rank, left index); `size` detects bigrams made stale by an earlier merge
        let mut queue: BinaryHeap<Reverse<(u32, usize, usize, usize)>> = BinaryHeap::new();
        for i in 1..symbols.len() {
            self.push_bigram(symbols, Some(i - 1), Some(i), &mut queue);
        }
        while let Some(Reverse((_, left, right, size))) = queue.pop() {
            let (l, r) = (symbols[left], symbols[right]);
            if l.len == 0 || r.len == 0 || l.len + r.len != size || l.next != Some(right) {
                continue;
            }
            let merged = l
                .piece
                .zip(r.piece)
                .and_then(|k| self.merges.get(&k))
                .map(|&(_, p)| p);
            symbols[left].len += r.len;
            symbols[left].piece = merged;
            symbols[left].next = r.next;
            symbols[right].len = 0;
            if let Some(n) = r.next {
                symbols[n].prev = Some(left);
            }
            self.push_bigram(symbols, l.prev, Some(left), &mut queue);
            self.push_bigram(symbols, Some(left), r.next, &mut queue);
        }
    }

    fn push_bigram(
        &self,
        symbols: &[Symbol],
        left: Option<usize>,
        right: Option<usize>,
        queue: &mut BinaryHeap<Reverse<(u32, usize, usize, usize)>>,
    ) {
        let (Some(left), Some(right)) = (left, right) else {
            return;
        };
        let (l, r) = (symbols[left], symbols[right]);
        let Some(key) = l.piece.zip(r.piece) else {
            return;
        };
        if let Some(&(rank, _)) = self.merges.get(&key) {
            queue.push(Reverse((rank, left, right, l.len + r.len)));
        }
    }
}
