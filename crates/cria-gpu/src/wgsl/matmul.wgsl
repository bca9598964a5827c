// y[t][r] = Σ_c W[r][c] · x[t][c]: a workgroup per (row, tile of TILE tokens); each thread dequantizes 32-wide
// groups of the row once (`dq_group`, per weight format) and dots them with every token of the tile, then the
// workgroup sums its partial dots. One token is the decode matrix-vector product; a prompt is the prefill matmul.
@group(0) @binding(0) var<storage, read> w: array<u32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

struct Params {
    rows: u32,
    cols: u32,
    row_bytes: u32,
    n_tok: u32,
    groups: u32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
}
@group(0) @binding(3) var<uniform> p: Params;

const WG: u32 = 64u;
const TILE: u32 = 8u;
var<workgroup> part: array<f32, 512>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let n_tiles = (p.n_tok + TILE - 1u) / TILE;
    let flat = wid.x + wid.y * nwg.x;
    if (flat >= p.rows * n_tiles) {
        return;
    }
    let r = flat % p.rows;
    let t0 = (flat / p.rows) * TILE;
    let nt = min(TILE, p.n_tok - t0);
    var acc: array<f32, 8>;
    var v: array<f32, 32>;
    let row = r * p.row_bytes;
    for (var g = lid; g < p.groups; g += WG) {
        dq_group(row, g, p.cols, &v);
        let lim = min(32u, p.cols - g * 32u);
        for (var j = 0u; j < nt; j++) {
            let xb = (t0 + j) * p.cols + g * 32u;
            var s = 0.0;
            for (var i = 0u; i < lim; i++) {
                s += v[i] * x[xb + i];
            }
            acc[j] += s;
        }
    }
    for (var j = 0u; j < TILE; j++) {
        part[j * WG + lid] = acc[j];
    }
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
        if (lid < stride) {
            for (var j = 0u; j < TILE; j++) {
                part[j * WG + lid] += part[j * WG + lid + stride];
            }
        }
        workgroupBarrier();
    }
    if (lid < nt) {
        y[(t0 + lid) * p.rows + r] = part[lid * WG];
    }
}
