// Q4_1 (20 bytes): f16 d, f16 m, 16 bytes of nibbles. x = d·q + m.
fn load_group(row: u32, g: u32) -> WGroup {
    let off = row + g * 20u;
    var r: WGroup;
    for (var i = 0u; i < 4u; i++) {
        let v = word_at(off + 4u + 4u * i);
        r.q[i] = v & 0x0f0f0f0fu;
        r.q[i + 4u] = (v >> 4u) & 0x0f0f0f0fu;
    }
    r.a0 = half_at(off);
    r.a1 = r.a0;
    r.b = half_at(off + 2u);
    return r;
}
