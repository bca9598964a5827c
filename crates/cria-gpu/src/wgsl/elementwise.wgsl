// Element-wise ops, a thread per element of `a` (n elements):
// 0 a += b (b broadcast: b[i % nb]), 1 a *= b (broadcast), 2 a *= s, 3 a = silu(b) · c, 4 a = gelu(b) · c
// (ggml's f16-rounded GELU), 5 a = gpt-oss's clamped SwiGLU of (b, c), 6 a = s · tanh(a / s) (soft-cap).
@group(0) @binding(0) var<storage, read_write> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read> c: array<f32>;

struct Params {
    n: u32,
    nb: u32,
    op: u32,
    s: f32,
    alpha: f32,
    limit: f32,
    pad0: u32,
    pad1: u32,
}
@group(0) @binding(3) var<uniform> p: Params;

fn f16_round(v: f32) -> f32 {
    return unpack2x16float(pack2x16float(vec2<f32>(v, 0.0))).x;
}

fn gelu_ggml(v: f32) -> f32 {
    if (v <= -10.0) {
        return 0.0;
    }
    if (v >= 10.0) {
        return v;
    }
    let h = f16_round(v);
    let g = 0.5 * h * (1.0 + tanh(0.7978846 * h * (1.0 + 0.044715 * h * h)));
    return f16_round(g);
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    if (i >= p.n) {
        return;
    }
    switch p.op {
        case 0u: { a[i] = a[i] + b[i % p.nb]; }
        case 1u: { a[i] = a[i] * b[i % p.nb]; }
        case 2u: { a[i] = a[i] * p.s; }
        case 3u: { let g = b[i]; a[i] = g / (1.0 + exp(-g)) * c[i]; }
        case 4u: { a[i] = gelu_ggml(b[i]) * c[i]; }
        case 5u: {
            let g = min(b[i], p.limit);
            let u = clamp(c[i], -p.limit, p.limit);
            a[i] = g / (1.0 + exp(p.alpha * -g)) * (u + 1.0);
        }
        default: { a[i] = p.s * tanh(a[i] / p.s); }
    }
}
