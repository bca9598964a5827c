// Q5_1 (24 bytes): f16 d, f16 m, u32 of fifth bits, 16 bytes of nibbles. x = d·q + m.
fn load_group(row: u32, g: u32) -> WGroup {
    let off = row + g * 24u;
    let qh = word_at(off + 4u);
    var r: WGroup;
    for (var i = 0u; i < 4u; i++) {
        let v = word_at(off + 8u + 4u * i);
        r.q[i] = (v & 0x0f0f0f0fu) | spread4((qh >> (4u * i)) & 15u);
        r.q[i + 4u] = ((v >> 4u) & 0x0f0f0f0fu) | spread4((qh >> (16u + 4u * i)) & 15u);
    }
    r.a0 = half_at(off);
    r.a1 = r.a0;
    r.b = half_at(off + 2u);
    return r;
}
