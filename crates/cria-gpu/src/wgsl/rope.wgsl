// Rotary embedding in place, a thread per (token, head, pair), with the CPU's angles: `cs` holds each token's
// (cos θ_i, sin θ_i) for the n_rot/2 pairs. style 0: adjacent pairs (x[2i], x[2i+1]); 1: NeoX (x[i], x[i+n_rot/2]).
@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read> cs: array<f32>;

struct Params {
    n_tok: u32,
    n_heads: u32,
    head_dim: u32,
    n_rot: u32,
    style: u32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
}
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let half = p.n_rot / 2u;
    let idx = gid.x + gid.y * nwg.x * 64u;
    if (idx >= p.n_tok * p.n_heads * half) {
        return;
    }
    let t = idx / (p.n_heads * half);
    let rem = idx % (p.n_heads * half);
    let h = rem / half;
    let i = rem % half;
    let base = t * p.n_heads * p.head_dim + h * p.head_dim;
    var a = base + 2u * i;
    var b = a + 1u;
    if (p.style == 1u) {
        a = base + i;
        b = base + i + half;
    }
    let c = cs[(t * half + i) * 2u];
    let s = cs[(t * half + i) * 2u + 1u];
    let x0 = x[a];
    let x1 = x[b];
    x[a] = x0 * c - x1 * s;
    x[b] = x0 * s + x1 * c;
}
