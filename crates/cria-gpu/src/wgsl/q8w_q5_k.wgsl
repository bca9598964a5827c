// Q5_K (176 bytes per 256): as Q4_K plus bit s of each of 32 bytes of fifth bits (dq_q5_k.wgsl).
fn load_group(row: u32, g: u32) -> WGroup {
    let off = row + (g / 8u) * 176u;
    let s = g % 8u;
    let sm = scale_min_k4(off + 4u, s);
    let qh = off + 16u;
    let q = off + 48u + 32u * (s / 2u);
    let shift = (s % 2u) * 4u;
    var r: WGroup;
    for (var i = 0u; i < 8u; i++) {
        let hi = ((word_at(qh + 4u * i) >> s) & 0x01010101u) << 4u;
        r.q[i] = ((word_at(q + 4u * i) >> shift) & 0x0f0f0f0fu) | hi;
    }
    r.a0 = half_at(off) * sm.x;
    r.a1 = r.a0;
    r.b = -half_at(off + 2u) * sm.y;
    return r;
}
