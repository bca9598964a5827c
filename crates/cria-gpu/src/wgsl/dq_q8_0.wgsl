// Q8_0 (34 bytes): f16 d, 32 × i8. x = d·q.
fn dq_group(row: u32, g: u32, cols: u32, o: ptr<function, array<f32, 32>>) {
    let off = row + g * 34u;
    let d = f16at(off);
    for (var i = 0u; i < 32u; i++) {
        (*o)[i] = d * f32(i8at(off + 2u + i));
    }
}
