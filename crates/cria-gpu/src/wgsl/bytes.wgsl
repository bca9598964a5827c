// Byte access into a weight buffer `w` (array<u32>, little-endian): ggml's blocks are not 4-byte aligned.
fn b8(off: u32) -> u32 {
    return (w[off >> 2u] >> ((off & 3u) * 8u)) & 0xffu;
}

fn i8at(off: u32) -> i32 {
    return (i32(b8(off)) << 24u) >> 24u;
}

fn u16at(off: u32) -> u32 {
    return b8(off) | (b8(off + 1u) << 8u);
}

fn f16at(off: u32) -> f32 {
    return unpack2x16float(u16at(off)).x;
}

fn u32at(off: u32) -> u32 {
    return u16at(off) | (u16at(off + 2u) << 16u);
}
