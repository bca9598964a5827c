// y[t][row0 + r] = Σ_g W[r]·x[t] over 32-wide groups g with activations quantized to 8 bits (quantize_q8.wgsl):
// the decode matrix-vector product (and small batches), 4 int8 pairs per `dot4I8Packed`. Each format's
// `load_group` reads a group of weights as u32 words into 8 words of packed i8 plus its scales (`WGroup`); a
// group's value is dx·(a0·Σ words 0..4 + a1·Σ words 4..8) + b·s (b: the format's min, times Σx = s).
// Layout as matmul.wgsl: a workgroup per (RPW rows, TILE tokens), LANES threads a row.
@group(0) @binding(0) var<storage, read> w: array<u32>;
@group(0) @binding(1) var<storage, read> xq: array<u32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

struct Params {
    rows: u32,
    row_bytes: u32,
    n_tok: u32,
    groups: u32,
    row0: u32,
    y_stride: u32,
    pad0: u32,
    pad1: u32,
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
    let row = r * p.row_bytes;
    let live = r < p.rows;
    for (var g = lane; live && g < p.groups; g += LANES) {
        let wg = load_group(row, g);
        for (var j = 0u; j < nt; j++) {
            let xb = ((t0 + j) * p.groups + g) * 10u;
            let lo = dot4I8Packed(wg.q[0], xq[xb + 2u]) + dot4I8Packed(wg.q[1], xq[xb + 3u])
                + dot4I8Packed(wg.q[2], xq[xb + 4u]) + dot4I8Packed(wg.q[3], xq[xb + 5u]);
            let hi = dot4I8Packed(wg.q[4], xq[xb + 6u]) + dot4I8Packed(wg.q[5], xq[xb + 7u])
                + dot4I8Packed(wg.q[6], xq[xb + 8u]) + dot4I8Packed(wg.q[7], xq[xb + 9u]);
            let dx = bitcast<f32>(xq[xb]);
            let sx = bitcast<f32>(xq[xb + 1u]);
            acc[j] += dx * (wg.a0 * f32(lo) + wg.a1 * f32(hi)) + wg.b * sx;
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
