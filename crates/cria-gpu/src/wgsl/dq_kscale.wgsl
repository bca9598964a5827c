// The 6-bit scale and min of sub-block `j` (0..8) of a Q4_K / Q5_K super-block, from its 12 scale bytes at `s`
// (ggml's get_scale_min_k4).
fn scale_min_k4(s: u32, j: u32) -> vec2<f32> {
    if (j < 4u) {
        return vec2<f32>(f32(b8(s + j) & 63u), f32(b8(s + j + 4u) & 63u));
    }
    let sc = (b8(s + j + 4u) & 15u) | ((b8(s + j - 4u) >> 6u) << 4u);
    let m = (b8(s + j + 4u) >> 4u) | ((b8(s + j) >> 6u) << 4u);
    return vec2<f32>(f32(sc), f32(m));
}
