// Q6_K (210 bytes per 256): sub-block s = g % 8, a low nibble and a 2-bit pair per element, q - 32, an i8
// scale per 16 elements (dq_q6_k.wgsl).
fn load_group(row: u32, g: u32) -> WGroup {
    let off = row + (g / 8u) * 210u;
    let s = g % 8u;
    let n = s / 4u;
    let part = s % 4u;
    let ql = off + 64u * n + (part & 1u) * 32u;
    let lshift = (part >> 1u) * 4u;
    let qh = off + 128u + 32u * n;
    let hshift = 2u * part;
    let sc = off + 192u + 8u * n + 2u * part;
    var r: WGroup;
    for (var i = 0u; i < 8u; i++) {
        let lo = (word_at(ql + 4u * i) >> lshift) & 0x0f0f0f0fu;
        let hi = ((word_at(qh + 4u * i) >> hshift) & 0x03030303u) << 4u;
        r.q[i] = minus(lo | hi, 32u);
    }
    let d = half_at(off + 208u);
    r.a0 = d * f32(i8at(sc));
    r.a1 = d * f32(i8at(sc + 1u));
    r.b = 0.0;
    return r;
}
