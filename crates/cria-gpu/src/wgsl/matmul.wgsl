// y[t][row0 + r] = Σ_c W[r][c] · x[t][c] (y rows `y_stride` wide): a workgroup per (RPW rows, tile of TILE
// tokens), LANES threads a row; each thread dequantizes 32-wide groups of its row once (`dq_group`, per weight
// format) and dots them with every token of the tile, then each row's lanes sum their partial dots. One token is
// the decode matrix-vector product; a prompt is the prefill matmul.
@group(0) @binding(0) var<storage, read> w: array<u32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

struct Params {
    rows: u32,
    cols: u32,
    row_bytes: u32,
    n_tok: u32,
    groups: u32,
    row0: u32,
    y_stride: u32,
    pad0: u32,
}
@group(0) @binding(3) var<uniform> p: Params;

const WG: u32 = 64u;
const LANES: u32 = 16u;
const RPW: u32 = 4u;
const TILE: u32 = 8u;
var<workgroup> part: array<f32, 512>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let n_tiles = (p.n_tok + TILE - 1u) / TILE;
    let row_blocks = (p.rows + RPW - 1u) / RPW;
    let flat = wid.x + wid.y * nwg.x;
    if (flat >= row_blocks * n_tiles) {
        return;
    }
    let lane = lid % LANES;
    let r = (flat % row_blocks) * RPW + lid / LANES;
    let t0 = (flat / row_blocks) * TILE;
    let nt = min(TILE, p.n_tok - t0);
    var acc: array<f32, 8>;
    var v: array<f32, 32>;
    let row = r * p.row_bytes;
    let live = r < p.rows;
    for (var g = lane; live && g < p.groups; g += LANES) {
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
    for (var stride = LANES / 2u; stride > 0u; stride = stride / 2u) {
        if (lane < stride) {
            for (var j = 0u; j < TILE; j++) {
                part[j * WG + lid] += part[j * WG + lid + stride];
            }
        }
        workgroupBarrier();
    }
    if (live && lane < nt) {
        y[(t0 + lane) * p.y_stride + p.row0 + r] = part[lane * WG + lid - lane];
    }
}
