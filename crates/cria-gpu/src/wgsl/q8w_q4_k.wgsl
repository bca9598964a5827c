// Q4_K (144 bytes per 256): sub-block s = g % 8 of a super-block, x = d·sc·q - dmin·m (dq_q4_k.wgsl).
fn load_group(row: u32, g: u32) -> WGroup {
    let off = row + (g / 8u) * 144u;
    let s = g % 8u;
    let sm = scale_min_k4(off + 4u, s);
    let q = off + 16u + 32u * (s / 2u);
    let shift = (s % 2u) * 4u;
    var r: WGroup;
    for (var i = 0u; i < 8u; i++) {
        r.q[i] = (word_at(q + 4u * i) >> shift) & 0x0f0f0f0fu;
    }
    r.a0 = half_at(off) * sm.x;
    r.a1 = r.a0;
    r.b = -half_at(off + 2u) * sm.y;
    return r;
}
