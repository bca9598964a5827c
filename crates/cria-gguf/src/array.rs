//! Metadata arrays, stored by element type: a vocabulary of 262144 strings with its scores and token types
//! costs about its bytes in the file, not a 32-byte `Value` (and a heap allocation) per element. The arrays
//! live as long as the file's metadata, i.e. as long as the model.

use crate::error::GgufError;
use crate::value::{Value, ValueType};

/// A metadata array: its declared element type and its elements, all of that type.
#[derive(Clone, Debug, PartialEq)]
pub struct Array {
    elem_type: ValueType,
    items: Items,
}

#[derive(Clone, Debug, PartialEq)]
enum Items {
    /// Numbers and bools, as their little-endian bytes (the file's encoding), `elem_type`'s size each.
    Fixed(Vec<u8>),
    /// Strings, concatenated, with the end offset of each in `text`.
    Strings { text: String, ends: Vec<usize> },
    /// Nested arrays.
    Arrays(Vec<Array>),
}

impl Array {
    /// An array of `elem_type` holding `values`; [`GgufError::ArrayElementType`] names the first value of
    /// another type.
    pub fn new(elem_type: ValueType, values: Vec<Value>) -> Result<Array, GgufError> {
        let mut array = Array::empty(elem_type);
        for value in values {
            array.push(value)?;
        }
        Ok(array)
    }

    /// An empty array of `elem_type`.
    pub(crate) fn empty(elem_type: ValueType) -> Array {
        let items = match elem_type {
            ValueType::String => Items::Strings {
                text: String::new(),
                ends: Vec::new(),
            },
            ValueType::Array => Items::Arrays(Vec::new()),
            _ => Items::Fixed(Vec::new()),
        };
        Array { elem_type, items }
    }

    /// An array of a fixed-size type from its elements' little-endian bytes, which the caller checked
    /// (a whole number of elements, every bool 0 or 1).
    pub(crate) fn from_fixed_bytes(elem_type: ValueType, bytes: Vec<u8>) -> Array {
        Array {
            elem_type,
            items: Items::Fixed(bytes),
        }
    }

    /// Appends `value`, which must be of the array's element type.
    pub(crate) fn push(&mut self, value: Value) -> Result<(), GgufError> {
        let mismatch = GgufError::ArrayElementType {
            declared: self.elem_type,
            found: value.value_type(),
        };
        if value.value_type() != self.elem_type {
            return Err(mismatch);
        }
        match (&mut self.items, value) {
            (Items::Strings { text, ends }, Value::String(s)) => {
                text.push_str(&s);
                ends.push(text.len());
            }
            (Items::Arrays(arrays), Value::Array(a)) => arrays.push(a),
            (Items::Fixed(bytes), value) => value.put_fixed(bytes),
            _ => return Err(mismatch),
        }
        Ok(())
    }

    /// Appends one string to an array of strings (the parser's path: no `String` per element).
    pub(crate) fn push_str(&mut self, s: &str) {
        if let Items::Strings { text, ends } = &mut self.items {
            text.push_str(s);
            ends.push(text.len());
        }
    }

    /// The declared element type.
    pub fn elem_type(&self) -> ValueType {
        self.elem_type
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match &self.items {
            Items::Fixed(bytes) => bytes.len() / self.elem_type.min_encoded_size() as usize,
            Items::Strings { ends, .. } => ends.len(),
            Items::Arrays(arrays) => arrays.len(),
        }
    }

    /// True when the array holds no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Element `i` as a [`Value`] (a copy: strings and nested arrays are cloned).
    pub fn get(&self, i: usize) -> Option<Value> {
        match &self.items {
            Items::Fixed(bytes) => {
                let size = self.elem_type.min_encoded_size() as usize;
                let b = bytes.get(i * size..(i + 1) * size)?;
                Value::decode_fixed(self.elem_type, b)
            }
            Items::Strings { .. } => self.str(i).map(|s| Value::String(s.to_owned())),
            Items::Arrays(arrays) => arrays.get(i).cloned().map(Value::Array),
        }
    }

    /// Every element as a [`Value`] (copies; for display and writing, not for hot paths).
    pub fn iter(&self) -> impl Iterator<Item = Value> + '_ {
        (0..self.len()).filter_map(|i| self.get(i))
    }

    /// String `i` of an array of strings (`None` past the end or for another element type).
    pub fn str(&self, i: usize) -> Option<&str> {
        let Items::Strings { text, ends } = &self.items else {
            return None;
        };
        let end = *ends.get(i)?;
        let start = if i == 0 { 0 } else { ends[i - 1] };
        text.get(start..end)
    }

    /// The strings of an array of strings, borrowed (nothing for another element type).
    pub fn strs(&self) -> impl Iterator<Item = &str> + '_ {
        let n = match &self.items {
            Items::Strings { ends, .. } => ends.len(),
            _ => 0,
        };
        (0..n).filter_map(|i| self.str(i))
    }

    /// The nested arrays of an array of arrays (empty for another element type).
    pub fn arrays(&self) -> &[Array] {
        match &self.items {
            Items::Arrays(arrays) => arrays,
            _ => &[],
        }
    }

    /// The little-endian bytes of an array of a fixed-size type (`None` for strings and arrays).
    pub(crate) fn fixed_bytes(&self) -> Option<&[u8]> {
        match &self.items {
            Items::Fixed(bytes) => Some(bytes),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elements_come_back_as_they_went_in() {
        let values = vec![Value::I32(-3), Value::I32(7), Value::I32(i32::MAX)];
        let a = Array::new(ValueType::I32, values.clone()).unwrap();
        assert_eq!((a.len(), a.elem_type()), (3, ValueType::I32));
        assert_eq!(a.iter().collect::<Vec<_>>(), values);
        assert_eq!(a.get(3), None);

        let words = ["", "ab", "é", "c"];
        let values = words.iter().map(|w| Value::String(w.to_string())).collect();
        let a = Array::new(ValueType::String, values).unwrap();
        assert_eq!(a.strs().collect::<Vec<_>>(), words);
        assert_eq!(a.get(2), Some(Value::String("é".into())));

        let inner = Array::new(ValueType::Bool, vec![Value::Bool(true)]).unwrap();
        let a = Array::new(ValueType::Array, vec![Value::Array(inner.clone())]).unwrap();
        assert_eq!(a.arrays(), std::slice::from_ref(&inner));
        assert_eq!(a.strs().count(), 0);
    }

    #[test]
    fn a_value_of_another_type_is_refused() {
        let e = Array::new(ValueType::U8, vec![Value::U8(1), Value::U16(2)]).unwrap_err();
        assert!(matches!(
            e,
            GgufError::ArrayElementType {
                declared: ValueType::U8,
                found: ValueType::U16
            }
        ));
    }
}
