// Q5_K (176 bytes per 256): f16 d, f16 dmin, 12 scale bytes, 32 bytes of fifth bits, 128 bytes of nibbles.
fn dq_group(row: u32, g: u32, cols: u32, o: ptr<function, array<f32, 32>>) {
    let off = row + (g / 8u) * 176u;
    let s = g % 8u;
    let d = f16at(off);
    let dmin = f16at(off + 2u);
    let sm = scale_min_k4(off + 4u, s);
    let d1 = d * sm.x;
    let m1 = dmin * sm.y;
    let qh = off + 16u;
    let q = off + 48u + 32u * (s / 2u);
    let shift = (s % 2u) * 4u;
    for (var l = 0u; l < 32u; l++) {
        let hi = ((b8(qh + l) >> s) & 1u) << 4u;
        (*o)[l] = d1 * f32(((b8(q + l) >> shift) & 15u) + hi) - m1;
    }
}
