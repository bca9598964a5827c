// What every format's int8 `load_group` shares: its result, and byte-wise tricks on packed words.
struct WGroup {
    q: array<u32, 8>,
    a0: f32,
    a1: f32,
    b: f32,
}

// Bits 0..4 of `b` as bit 4 of each byte (a fifth quant bit).
fn spread4(b: u32) -> u32 {
    return ((b & 1u) << 4u) | ((b & 2u) << 11u) | ((b & 4u) << 18u) | ((b & 8u) << 25u);
}

// Each byte q (with q + 128 - k < 256) as the i8 q - k: add 128 - k, then flip the sign bit.
fn minus(q: u32, k: u32) -> u32 {
    return (q + (128u - k) * 0x01010101u) ^ 0x80808080u;
}
