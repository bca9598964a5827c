// Activation rows quantized to 8 bits once per matmul input, for the int8 matrix-vector product (matvec_q8.wgsl):
// each 32-wide block of a row becomes 10 words, [d, s, 8 words of 4 packed i8], with x ≈ d·q and s = d·Σq.
// The rounding follows the CPU's activation format for the weight's format (`quantize_activation`):
// mode 0: Q8_0 (d = amax/127 kept as f16, q = round-half-even(x·127/amax), s exact);
// mode 1: Q8_1 (as Q8_0, s = f16(d·Σq) as its block stores it);
// mode 2: Q8_K (one scale per 256: d = max/-127 with `max` the signed value of largest magnitude, q ≤ 127).
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> xq: array<u32>;

struct Params {
    n_tok: u32,
    cols: u32,
    groups: u32,
    mode: u32,
}
@group(0) @binding(2) var<uniform> p: Params;

fn f16_round(v: f32) -> f32 {
    return unpack2x16float(pack2x16float(vec2<f32>(v, 0.0))).x;
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    if (i >= p.n_tok * p.groups) {
        return;
    }
    let t = i / p.groups;
    let g = i % p.groups;
    let xb = t * p.cols + g * 32u;
    var d = 0.0;
    var id = 0.0;
    if (p.mode == 2u) {
        // Q8_K: the first element of largest magnitude in this block's 256-wide super-block.
        let sb = t * p.cols + (g / 8u) * 256u;
        var amax = 0.0;
        var mx = 0.0;
        for (var k = 0u; k < 256u; k++) {
            let v = x[sb + k];
            if (abs(v) > amax) {
                amax = abs(v);
                mx = v;
            }
        }
        if (amax != 0.0) {
            id = -127.0 / mx;
            d = 1.0 / id;
        }
    } else {
        var amax = 0.0;
        for (var k = 0u; k < 32u; k++) {
            amax = max(amax, abs(x[xb + k]));
        }
        d = amax / 127.0;
        id = select(0.0, 127.0 / amax, amax != 0.0);
    }
    let ob = i * 10u;
    var sum = 0i;
    for (var k = 0u; k < 8u; k++) {
        var q: vec4<i32>;
        for (var l = 0u; l < 4u; l++) {
            q[l] = min(i32(round(x[xb + 4u * k + l] * id)), 127);
        }
        sum += q.x + q.y + q.z + q.w;
        xq[ob + 2u + k] = pack4xI8(q);
    }
    var dq = d;
    if (p.mode != 2u) {
        dq = f16_round(d);
    }
    var s = dq * f32(sum);
    if (p.mode == 1u) {
        // As the CPU's Q8_1 block: the unrounded d times Σq, rounded to f16.
        s = f16_round(d * f32(sum));
    }
    xq[ob] = bitcast<u32>(dq);
    xq[ob + 1u] = bitcast<u32>(s);
}
