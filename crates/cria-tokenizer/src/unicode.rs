//! Codepoint classes as llama.cpp's pre-tokenizers see them, and GPT-2's byte <-> char map.

use unicode_properties::{GeneralCategoryGroup, UnicodeGeneralCategory};

/// The classes a pre-tokenizer asks about (llama.cpp's `unicode_cpt_flags`, reduced).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Flags {
    pub letter: bool,
    pub number: bool,
    pub whitespace: bool,
    /// A combining (accent) mark: general category M.
    pub mark: bool,
}

impl Flags {
    pub fn of(c: char) -> Flags {
        if c.is_ascii() {
            return Flags {
                letter: c.is_ascii_alphabetic(),
                number: c.is_ascii_digit(),
                whitespace: matches!(c, ' ' | '\t'..='\r'),
                mark: false,
            };
        }
        let group = c.general_category_group();
        Flags {
            letter: group == GeneralCategoryGroup::Letter,
            number: group == GeneralCategoryGroup::Number,
            // Unicode White_Space: the same set as llama.cpp's `unicode_set_whitespace`.
            whitespace: c.is_whitespace(),
            mark: group == GeneralCategoryGroup::Mark,
        }
    }
}

/// The general-category group of a codepoint, as llama.cpp's collapsed regexes tell them apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Category {
    Number,
    Letter,
    Punctuation,
    Mark,
    Symbol,
    /// Separators, controls, format and unassigned codepoints.
    Other,
}

impl Category {
    pub fn of(c: char) -> Category {
        match c.general_category_group() {
            GeneralCategoryGroup::Number => Category::Number,
            GeneralCategoryGroup::Letter => Category::Letter,
            GeneralCategoryGroup::Punctuation => Category::Punctuation,
            GeneralCategoryGroup::Mark => Category::Mark,
            GeneralCategoryGroup::Symbol => Category::Symbol,
            _ => Category::Other,
        }
    }
}

/// GPT-2's reversible map from bytes to printable characters (`bytes_to_unicode`).
pub(crate) fn byte_to_char_table() -> [char; 256] {
    let mut table = ['\0'; 256];
    let mut next_extra = 256u32;
    for b in 0..=255u8 {
        let printable = matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
        let cp = if printable {
            u32::from(b)
        } else {
            let cp = next_extra;
            next_extra += 1;
            cp
        };
        // Every value is below 0x144, so always a valid scalar value.
        table[usize::from(b)] = char::from_u32(cp).unwrap_or('\u{FFFD}');
    }
    table
}

/// The inverse of [`byte_to_char_table`], as a lookup by codepoint (all mapped codepoints are < 0x144).
pub(crate) fn char_to_byte_table() -> Vec<Option<u8>> {
    let mut inverse = vec![None; 0x144];
    for (b, c) in byte_to_char_table().iter().enumerate() {
        let byte = u8::try_from(b).unwrap_or(0);
        if let Some(slot) = inverse.get_mut(*c as usize) {
            *slot = Some(byte);
        }
    }
    inverse
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpt2_byte_map_matches_known_entries() {
        let t = byte_to_char_table();
        assert_eq!(t[usize::from(b' ')], 'Ġ');
        assert_eq!(t[usize::from(b'\n')], 'Ċ');
        assert_eq!(t[usize::from(b'a')], 'a');
        assert_eq!(t[0], 'Ā');
        assert_eq!(t[0xAD], 'Ń');
    }

    #[test]
    fn byte_map_round_trips() {
        let inv = char_to_byte_table();
        for (b, c) in byte_to_char_table().iter().enumerate() {
            assert_eq!(inv[*c as usize], Some(b as u8));
        }
    }

    #[test]
    fn flags_classify_scripts() {
        assert!(Flags::of('한').letter);
        assert!(Flags::of('٣').number);
        assert!(Flags::of('\u{3000}').whitespace);
        assert!(Flags::of('\u{85}').whitespace);
        let punct = Flags::of('。');
        assert!(!punct.letter && !punct.number && !punct.whitespace);
    }
}
