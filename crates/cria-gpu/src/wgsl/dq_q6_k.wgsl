// Q6_K (210 bytes per 256): 128 bytes of low nibbles, 64 bytes of high 2-bit pairs, 16 i8 scales, f16 d.
// Sub-block s: half n = s/4 of the super-block, part = s%4 (which nibble and which 2-bit pair).
fn dq_group(row: u32, g: u32, cols: u32, o: ptr<function, array<f32, 32>>) {
    let off = row + (g / 8u) * 210u;
    let s = g % 8u;
    let n = s / 4u;
    let part = s % 4u;
    let d = f16at(off + 208u);
    let ql = off + 64u * n + (part & 1u) * 32u;
    let lshift = (part >> 1u) * 4u;
    let qh = off + 128u + 32u * n;
    let hshift = 2u * part;
    let sc = off + 192u + 8u * n + 2u * part;
    for (var l = 0u; l < 32u; l++) {
        let lo = (b8(ql + l) >> lshift) & 15u;
        let hi = (b8(qh + l) >> hshift) & 3u;
        let q = i32(lo | (hi << 4u)) - 32;
        (*o)[l] = d * f32(i8at(sc + l / 16u)) * f32(q);
    }
}
