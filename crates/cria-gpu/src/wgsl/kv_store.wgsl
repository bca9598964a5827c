// Stores rows src_row0 + t of K or V (f32, `kvd` wide) into an f16 cache at the rows `dst[t]`, a thread per pair of values
// (the cache is array<u32> of packed f16 pairs; `kvd` is even).
@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> cache: array<u32>;
@group(0) @binding(2) var<storage, read> dst: array<u32>;

struct Params {
    kvd: u32,
    n_tok: u32,
    src_row0: u32,
    pad1: u32,
}
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let pairs = p.kvd / 2u;
    let idx = gid.x + gid.y * nwg.x * 64u;
    if (idx >= p.n_tok * pairs) {
        return;
    }
    let t = idx / pairs;
    let j = idx % pairs;
    let s = (p.src_row0 + t) * p.kvd + 2u * j;
    cache[(dst[t] * p.kvd) / 2u + j] = pack2x16float(vec2<f32>(src[s], src[s + 1u]));
}
