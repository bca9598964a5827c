// Q4_0 (18 bytes): f16 d, 16 bytes of nibbles (low: elements 0..16, high: 16..32). x = d·(q - 8).
fn dq_group(row: u32, g: u32, cols: u32, o: ptr<function, array<f32, 32>>) {
    let off = row + g * 18u;
    let d = f16at(off);
    for (var j = 0u; j < 16u; j++) {
        let q = b8(off + 2u + j);
        (*o)[j] = d * (f32(q & 15u) - 8.0);
        (*o)[j + 16u] = d * (f32(q >> 4u) - 8.0);
    }
}
