// BF16: group `g` is elements 32g..32g+32 (zero past the row's `cols`).
fn dq_group(row: u32, g: u32, cols: u32, o: ptr<function, array<f32, 32>>) {
    for (var i = 0u; i < 32u; i++) {
        let c = g * 32u + i;
        (*o)[i] = select(0.0, bitcast<f32>(u16at(row + c * 2u) << 16u), c < cols);
    }
}
