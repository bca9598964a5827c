//! The sampler chain's hook for constrained generation: a constraint says which tokens may come next (a mask,
//! computed only when the sampled token is refused) and hears about each token generated (the accept step).

use std::fmt;

/// Why a constraint cannot go on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConstraintError {
    /// The grammar, schema or pattern does not compile; nothing was generated.
    #[error("invalid constraint: {0}")]
    Invalid(String),
    /// The constraint failed while generating (an internal limit, or no token it allows).
    #[error("constraint failed during generation: {0}")]
    Failed(String),
}

/// Which tokens are allowed next: one bit per vocabulary entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenMask {
    words: Vec<u32>,
}

impl TokenMask {
    /// A mask from 32-bit words, bit `i % 32` of word `i / 32` for token `i`.
    pub fn from_words(words: Vec<u32>) -> TokenMask {
        TokenMask { words }
    }

    /// Every token of a vocabulary of `n`.
    pub fn all(n: usize) -> TokenMask {
        let mut words = vec![u32::MAX; n.div_ceil(32)];
        if let Some(last) = words.last_mut()
            && !n.is_multiple_of(32)
        {
            *last = (1u32 << (n % 32)) - 1;
        }
        TokenMask { words }
    }

    pub fn allows(&self, token: u32) -> bool {
        let (word, bit) = (token as usize / 32, token % 32);
        self.words.get(word).is_some_and(|w| w & (1 << bit) != 0)
    }

    /// The allowed tokens, in id order. Reads the mask a word at a time, so a mask that allows a few tokens
    /// of a large vocabulary costs a pass over its words, not over the vocabulary.
    pub fn allowed(&self) -> impl Iterator<Item = u32> + '_ {
        self.words.iter().enumerate().flat_map(|(i, &word)| {
            let base = i as u32 * 32;
            SetBits(word).map(move |bit| base + bit)
        })
    }
}

/// The set bits of a word, lowest first.
struct SetBits(u32);

impl Iterator for SetBits {
    type Item = u32;
    fn next(&mut self) -> Option<u32> {
        if self.0 == 0 {
            return None;
        }
        let bit = self.0.trailing_zeros();
        self.0 &= self.0 - 1;
        Some(bit)
    }
}

/// Constrains what a sequence may generate (a grammar, a JSON schema, a pattern).
///
/// The sampler samples as usual and asks `allows` about the token it picked; only when that token is refused
/// does it call `mask` and sample again from the allowed tokens (the fast path llama.cpp and mistral.rs take).
/// End of generation counts as a token: a constraint allows it only where its language may end.
pub trait TokenConstraint: Send {
    /// Whether `token` may come next.
    fn allows(&mut self, token: u32) -> Result<bool, ConstraintError>;
    /// Every token that may come next.
    fn mask(&mut self) -> Result<TokenMask, ConstraintError>;
    /// Records that `token` was generated.
    fn accept(&mut self, token: u32) -> Result<(), ConstraintError>;
    /// An independent copy in the same state (each of n sequences gets its own).
    fn box_clone(&self) -> Box<dyn TokenConstraint>;
}

impl fmt::Debug for dyn TokenConstraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenConstraint")
    }
}

impl Clone for Box<dyn TokenConstraint> {
    fn clone(&self) -> Self {
        self.box_clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_bits_map_to_tokens() {
        let mask = TokenMask::from_words(vec![0b101, 1 | 1 << 31]);
        assert!(mask.allows(0) && !mask.allows(1) && mask.allows(2) && mask.allows(32));
        assert!(!mask.allows(33) && !mask.allows(1000));
        assert_eq!(mask.allowed().collect::<Vec<_>>(), [0, 2, 32, 63]);
        assert_eq!(TokenMask::from_words(vec![0, 0]).allowed().count(), 0);
    }

    #[test]
    fn all_allows_exactly_the_vocabulary() {
        for n in [1, 31, 32, 33, 100] {
            let ids: Vec<u32> = TokenMask::all(n).allowed().collect();
            assert_eq!(ids, (0..n as u32).collect::<Vec<_>>());
        }
    }
}
