// Q4_1 (20 bytes): f16 d, f16 m, 16 bytes of nibbles. x = d·q + m.
fn dq_group(row: u32, g: u32, cols: u32, o: ptr<function, array<f32, 32>>) {
    let off = row + g * 20u;
    let d = f16at(off);
    let m = f16at(off + 2u);
    for (var j = 0u; j < 16u; j++) {
        let q = b8(off + 4u + j);
        (*o)[j] = d * f32(q & 15u) + m;
        (*o)[j + 16u] = d * f32(q >> 4u) + m;
    }
}
