// Attention split along the keys, second pass: a workgroup per (query row, head) merges its chunks' (max, sum,
// partial output) from attention_split.wgsl, with the head's sink logit when there is one.
@group(0) @binding(0) var<storage, read> parts: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> sinks: array<f32>;
@group(0) @binding(3) var<storage, read> info: array<u32>;

struct Params {
    n_head: u32,
    head_dim: u32,
    n_rows: u32,
    n_chunks: u32,
    has_sinks: u32,
    q_row0: u32,
    pad0: u32,
    pad1: u32,
}
@group(0) @binding(4) var<uniform> p: Params;

const WG: u32 = 64u;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let rh = wid.x + wid.y * nwg.x;
    if (rh >= p.n_rows * p.n_head) {
        return;
    }
    let t = rh / p.n_head;
    let h = rh % p.n_head;
    let hd = p.head_dim;
    let stride = hd + 2u;
    let base = rh * p.n_chunks * stride;
    let n_win = info[3u * t + 2u] - info[3u * t + 1u];
    var m = -3.0e38;
    for (var c = 0u; c < p.n_chunks; c++) {
        m = max(m, parts[base + c * stride]);
    }
    if (p.has_sinks != 0u) {
        m = max(m, sinks[h]);
    }
    var total = 0.0;
    for (var c = 0u; c < p.n_chunks; c++) {
        total += parts[base + c * stride + 1u] * exp(parts[base + c * stride] - m);
    }
    if (p.has_sinks != 0u) {
        total += exp(sinks[h] - m);
    }
    let inv = 1.0 / total;
    let qoff = (p.q_row0 + t) * p.n_head * hd + h * hd;
    for (var d = lid; d < hd; d += WG) {
        var acc = 0.0;
        for (var c = 0u; c < p.n_chunks; c++) {
            acc += parts[base + c * stride + 2u + d] * exp(parts[base + c * stride] - m);
        }
        out[qoff + d] = select(acc * inv, 0.0, n_win == 0u);
    }
}
