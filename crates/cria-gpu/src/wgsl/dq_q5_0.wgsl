// Q5_0 (22 bytes): f16 d, u32 of fifth bits, 16 bytes of nibbles. x = d·(q - 16).
fn dq_group(row: u32, g: u32, cols: u32, o: ptr<function, array<f32, 32>>) {
    let off = row + g * 22u;
    let d = f16at(off);
    let qh = u32at(off + 2u);
    for (var j = 0u; j < 16u; j++) {
        let q = b8(off + 6u + j);
        let h0 = ((qh >> j) << 4u) & 0x10u;
        let h1 = (qh >> (j + 12u)) & 0x10u;
        (*o)[j] = d * f32(i32((q & 15u) | h0) - 16);
        (*o)[j + 16u] = d * f32(i32((q >> 4u) | h1) - 16);
    }
}
