// Q8_0 (34 bytes): f16 d, 32 × i8.
fn load_group(row: u32, g: u32) -> WGroup {
    let off = row + g * 34u;
    var r: WGroup;
    for (var i = 0u; i < 8u; i++) {
        r.q[i] = word_at(off + 2u + 4u * i);
    }
    r.a0 = half_at(off);
    r.a1 = r.a0;
    r.b = 0.0;
    return r;
}
