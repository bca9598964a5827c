// out[i] = W[ids[i]] dequantized, for the ids in this part of W (rows row_lo..row_hi): a thread per (id, group).
@group(0) @binding(0) var<storage, read> w: array<u32>;
@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

struct Params {
    cols: u32,
    row_bytes: u32,
    n_ids: u32,
    groups: u32,
    row_lo: u32,
    row_hi: u32,
    pad0: u32,
    pad1: u32,
}
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = gid.x + gid.y * nwg.x * 64u;
    if (idx >= p.n_ids * p.groups) {
        return;
    }
    let i = idx / p.groups;
    let g = idx % p.groups;
    let id = ids[i];
    if (id < p.row_lo || id >= p.row_hi) {
        return;
    }
    var v: array<f32, 32>;
    dq_group((id - p.row_lo) * p.row_bytes, g, p.cols, &v);
    let lim = min(32u, p.cols - g * 32u);
    for (var k = 0u; k < lim; k++) {
        out[i * p.cols + g * 32u + k] = v[k];
    }
}
