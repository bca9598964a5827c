// Q4_0 (18 bytes): f16 d, 16 bytes of nibbles (low: elements 0..16, high: 16..32); q - 8.
fn load_group(row: u32, g: u32) -> WGroup {
    let off = row + g * 18u;
    var r: WGroup;
    for (var i = 0u; i < 4u; i++) {
        let v = word_at(off + 2u + 4u * i);
        r.q[i] = minus(v & 0x0f0f0f0fu, 8u);
        r.q[i + 4u] = minus((v >> 4u) & 0x0f0f0f0fu, 8u);
    }
    r.a0 = half_at(off);
    r.a1 = r.a0;
    r.b = 0.0;
    return r;
}
