// Reads of a weight buffer `w` (array<u32>) as whole words, for the int8 matrix-vector products.
// The 4 bytes at byte offset `off` (any alignment) as one word.
fn word_at(off: u32) -> u32 {
    let i = off >> 2u;
    let s = (off & 3u) * 8u;
    if (s == 0u) {
        return w[i];
    }
    return (w[i] >> s) | (w[i + 1u] << (32u - s));
}

// The f16 at an even byte offset.
fn half_at(off: u32) -> f32 {
    return unpack2x16float(w[off >> 2u] >> ((off & 2u) * 8u)).x;
}
