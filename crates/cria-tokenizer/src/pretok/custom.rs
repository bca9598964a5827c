//! llama.cpp's hand-written splitters (`unicode_regex_split_custom_*`): the regexes that need a look-ahead or
//! that are on every hot path (GPT-2's, LLaMA 3's, Qwen2's, Qwen3.5's, and the newline split).

use crate::unicode::Flags;

/// A chunk as codepoints with their classes; positions past the end read as "nothing".
pub(super) struct Chars {
    cps: Vec<char>,
    flags: Vec<Flags>,
    offsets: Vec<usize>,
}

impl Chars {
    /// `marks_are_letters`: Qwen3.5's `[\p{L}\p{M}]+` words (accent marks join the letters beside them).
    pub(super) fn new(s: &str, marks_are_letters: bool) -> Chars {
        let mut cps = Vec::with_capacity(s.len());
        let mut offsets = Vec::with_capacity(s.len() + 1);
        for (i, c) in s.char_indices() {
            cps.push(c);
            offsets.push(i);
        }
        offsets.push(s.len());
        let flags = cps
            .iter()
            .map(|&c| {
                let mut f = Flags::of(c);
                f.letter |= marks_are_letters && f.mark;
                f
            })
            .collect();
        Chars {
            cps,
            flags,
            offsets,
        }
    }
    fn len(&self) -> usize {
        self.cps.len()
    }
    fn cp(&self, i: usize) -> Option<char> {
        self.cps.get(i).copied()
    }
    fn flags(&self, i: usize) -> Option<Flags> {
        self.flags.get(i).copied()
    }
    pub(super) fn byte_at(&self, i: usize) -> usize {
        self.offsets[i.min(self.cps.len())]
    }
    fn is_letter(&self, i: usize) -> bool {
        self.flags(i).is_some_and(|f| f.letter)
    }
    fn is_number(&self, i: usize) -> bool {
        self.flags(i).is_some_and(|f| f.number)
    }
    fn is_space(&self, i: usize) -> bool {
        self.flags(i).is_some_and(|f| f.whitespace)
    }
    /// `[^\s\p{L}\p{N}]`: a codepoint inside the chunk that is none of the three.
    fn is_other(&self, i: usize) -> bool {
        self.flags(i)
            .is_some_and(|f| !(f.whitespace || f.letter || f.number))
    }
    fn whitespace_run(&self, pos: usize) -> usize {
        (pos..self.len()).take_while(|&i| self.is_space(i)).count()
    }
}

/// Collects word ends (in codepoints), skipping empty words.
struct Ends(Vec<usize>, usize);

impl Ends {
    fn add(&mut self, end: usize) -> usize {
        let len = end - self.1;
        if len > 0 {
            self.0.push(end);
        }
        self.1 = end;
        len
    }
}

/// `'s|'t|'re|'ve|'m|'ll|'d` (ASCII-case-insensitive when `fold`), returning the match length.
fn contraction(ch: &Chars, pos: usize, fold: bool) -> usize {
    let lower = |i: usize| {
        ch.cp(i)
            .map(|c| if fold { c.to_ascii_lowercase() } else { c })
    };
    if ch.cp(pos) != Some('\'') || pos + 1 >= ch.len() {
        return 0;
    }
    match lower(pos + 1) {
        Some('s' | 't' | 'm' | 'd') => 2,
        Some(c1) if pos + 2 < ch.len() => match (c1, lower(pos + 2)) {
            ('r', Some('e')) | ('v', Some('e')) | ('l', Some('l')) => 3,
            _ => 0,
        },
        _ => 0,
    }
}

pub(super) fn split_gpt2(ch: &Chars) -> Vec<usize> {
    let n = ch.len();
    let mut ends = Ends(Vec::new(), 0);
    let mut pos = 0;
    while pos < n {
        let k = contraction(ch, pos, false);
        if k > 0 {
            pos += ends.add(pos + k);
            continue;
        }
        let space = ch.cp(pos) == Some(' ');
        let probe = if space { pos + 1 } else { pos };
        let class: Option<fn(&Chars, usize) -> bool> = if ch.is_letter(probe) {
            Some(Chars::is_letter)
        } else if ch.is_number(probe) {
            Some(Chars::is_number)
        } else if ch.is_other(probe) {
            Some(Chars::is_other)
        } else {
            None
        };
        if let Some(class) = class {
            pos = probe;
            while class(ch, pos) {
                pos += 1;
            }
            ends.add(pos);
            continue;
        }
        let spaces = ch.whitespace_run(pos);
        if spaces > 1 && pos + spaces < n {
            // \s+(?!\S): leave the last space to the word that follows
            pos += spaces - 1;
            ends.add(pos);
            continue;
        }
        if spaces > 0 {
            pos += spaces;
            ends.add(pos);
            continue;
        }
        pos += 1;
        ends.add(pos);
    }
    ends.0
}

pub(super) fn split_llama3(ch: &Chars, max_digits: usize) -> Vec<usize> {
    let n = ch.len();
    let mut ends = Ends(Vec::new(), 0);
    let mut pos = 0;
    while pos < n {
        let k = contraction(ch, pos, true);
        if k > 0 {
            pos += ends.add(pos + k);
            continue;
        }
        let cp = ch.cp(pos);
        // [^\r\n\p{L}\p{N}]?\p{L}+
        if !(matches!(cp, Some('\r' | '\n')) || ch.is_number(pos))
            && (ch.is_letter(pos) || ch.is_letter(pos + 1))
        {
            pos += 1;
            while ch.is_letter(pos) {
                pos += 1;
            }
            ends.add(pos);
            continue;
        }
        // \p{N}{1,max_digits}
        if ch.is_number(pos) {
            let mut ini = pos;
            while ch.is_number(pos) {
                pos += 1;
                if pos - ini >= max_digits {
                    ends.add(pos);
                    ini = pos;
                }
            }
            ends.add(pos);
            continue;
        }
        // <space>?[^\s\p{L}\p{N}]+[\r\n]*
        let probe = if cp == Some(' ') { pos + 1 } else { pos };
        if ch.is_other(probe) {
            pos = probe;
            while ch.is_other(pos) {
                pos += 1;
            }
            while matches!(ch.cp(pos), Some('\r' | '\n')) {
                pos += 1;
            }
            ends.add(pos);
            continue;
        }
        let spaces = ch.whitespace_run(pos);
        let last_newline_end = (pos..pos + spaces)
            .filter(|&i| matches!(ch.cp(i), Some('\r' | '\n')))
            .map(|i| i + 1)
            .next_back();
        if let Some(end) = last_newline_end {
            // \s*[\r\n]+
            pos = end;
            ends.add(pos);
            continue;
        }
        if spaces > 1 && pos + spaces < n {
            pos += spaces - 1;
            ends.add(pos);
            continue;
        }
        if spaces > 0 {
            pos += spaces;
            ends.add(pos);
            continue;
        }
        pos += 1;
        ends.add(pos);
    }
    ends.0
}

/// `[^\n]+|[\n]+`: lines and runs of newlines (llama.cpp's `unicode_regex_split_custom_newlines`).
pub(super) fn split_newlines(ch: &Chars) -> Vec<usize> {
    let mut ends = Ends(Vec::new(), 0);
    let mut pos = 0;
    while pos < ch.len() {
        let newline = ch.cp(pos) == Some('\n');
        while pos < ch.len() && (ch.cp(pos) == Some('\n')) == newline {
            pos += 1;
        }
        ends.add(pos);
    }
    ends.0
}
