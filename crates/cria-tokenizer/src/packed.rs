//! Compact storage for a vocabulary's many short strings, and a hash index over them.
//!
//! A 262144-token vocabulary (Gemma 3's) kept as `Vec<String>` costs a 24-byte header and a heap allocation
//! per token (~15 MB), and a `HashMap<Box<str>, u32>` a second copy of every text plus the table (~21 MB);
//! this keeps the bytes once with an end offset each, and indexes them by id.

use std::hash::BuildHasher;

use hashbrown::HashTable;
use rustc_hash::FxBuildHasher;

/// Byte strings stored back to back, with the end offset of each.
#[derive(Debug, Default)]
pub(crate) struct Packed {
    buf: Vec<u8>,
    ends: Vec<usize>,
}

impl Packed {
    pub fn push(&mut self, item: &[u8]) {
        self.buf.extend_from_slice(item);
        self.ends.push(self.buf.len());
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Item `i` (`None` past the end).
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        let end = *self.ends.get(i)?;
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        self.buf.get(start..end)
    }

    /// Item `i` as text: empty past the end, or where the item is not UTF-8 (never for items pushed from `&str`).
    pub fn str(&self, i: usize) -> &str {
        self.get(i)
            .and_then(|b| std::str::from_utf8(b).ok())
            .unwrap_or_default()
    }

    /// Every item, in order.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        (0..self.len()).filter_map(|i| self.get(i))
    }
}

impl<'a> FromIterator<&'a [u8]> for Packed {
    fn from_iter<I: IntoIterator<Item = &'a [u8]>>(items: I) -> Packed {
        let mut packed = Packed::default();
        for item in items {
            packed.push(item);
        }
        packed
    }
}

/// Item -> index of a [`Packed`], holding only the indices; where an item repeats, the last index wins (as
/// inserting into a map in order does).
#[derive(Debug, Default)]
pub(crate) struct Index {
    table: HashTable<u32>,
}

fn hash_of(item: &[u8]) -> u64 {
    FxBuildHasher.hash_one(item)
}

impl Index {
    pub fn build(items: &Packed) -> Index {
        let mut index = Index::default();
        for (i, item) in items.iter().enumerate() {
            let hash = hash_of(item);
            let id = i as u32;
            let eq = |&j: &u32| items.get(j as usize) == Some(item);
            let rehash = |&j: &u32| hash_of(items.get(j as usize).unwrap_or_default());
            match index.table.entry(hash, eq, rehash) {
                hashbrown::hash_table::Entry::Occupied(mut e) => *e.get_mut() = id,
                hashbrown::hash_table::Entry::Vacant(e) => {
                    e.insert(id);
                }
            }
        }
        index
    }

    /// The index of `item` in `items` (the [`Packed`] this index was built over).
    pub fn get(&self, items: &Packed, item: &[u8]) -> Option<u32> {
        let eq = |&j: &u32| items.get(j as usize) == Some(item);
        self.table.find(hash_of(item), eq).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_and_their_index_agree() {
        let words: [&[u8]; 5] = [b"a", b"", b"\xff\x80", b"bc", b"a"];
        let packed: Packed = words.iter().copied().collect();
        assert_eq!(packed.len(), 5);
        assert_eq!(packed.iter().collect::<Vec<_>>(), words);
        assert_eq!(
            (packed.get(5), packed.str(2), packed.str(3)),
            (None, "", "bc")
        );
        let index = Index::build(&packed);
        assert_eq!(
            index.get(&packed, b"a"),
            Some(4),
            "the last of a repeated item"
        );
        assert_eq!(index.get(&packed, b""), Some(1));
        assert_eq!(index.get(&packed, b"\xff\x80"), Some(2));
        assert_eq!(index.get(&packed, b"b"), None);
    }
}
