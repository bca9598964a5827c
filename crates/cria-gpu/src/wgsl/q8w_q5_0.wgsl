// Q5_0 (22 bytes): f16 d, u32 of fifth bits (bit e for element e), 16 bytes of nibbles; q - 16.
fn load_group(row: u32, g: u32) -> WGroup {
    let off = row + g * 22u;
    let qh = word_at(off + 2u);
    var r: WGroup;
    for (var i = 0u; i < 4u; i++) {
        let v = word_at(off + 6u + 4u * i);
        r.q[i] = minus((v & 0x0f0f0f0fu) | spread4((qh >> (4u * i)) & 15u), 16u);
        r.q[i + 4u] = minus(((v >> 4u) & 0x0f0f0f0fu) | spread4((qh >> (16u + 4u * i)) & 15u), 16u);
    }
    r.a0 = half_at(off);
    r.a1 = r.a0;
    r.b = 0.0;
    return r;
}
