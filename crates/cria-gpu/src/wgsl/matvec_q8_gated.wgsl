// The feed-forward's gate and up projections and their gated activation in one pass, for up to TILE tokens:
// out[t][r] = act(gate_r · x[t]) · (up_r · x[t]) with act SiLU (0) or ggml's f16-rounded GELU (1). Both
// matrices share one format and shape; each lane reads a group of row r of both (`load_group` from `w`,
// `load_group_up` from `u`) and dots them with the same int8 activations (matvec_q8.wgsl's layout), so the
// gate and up outputs never go through memory.
@group(0) @binding(0) var<storage, read> w: array<u32>;
@group(0) @binding(1) var<storage, read> u: array<u32>;
@group(0) @binding(2) var<storage, read> xq: array<u32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

struct Params {
    rows: u32,
    row_bytes: u32,
    n_tok: u32,
    groups: u32,
    act: u32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
}
@group(0) @binding(4) var<uniform> p: Params;

const WG: u32 = 64u;
const LANES: u32 = 16u;
const RPW: u32 = 4u;
const TILE: u32 = 8u;
var<workgroup> part_g: array<f32, 512>;
var<workgroup> part_u: array<f32, 512>;

fn f16_round(v: f32) -> f32 {
    return unpack2x16float(pack2x16float(vec2<f32>(v, 0.0))).x;
}

// As elementwise.wgsl's gelu_ggml.
fn gelu_ggml(v: f32) -> f32 {
    if (v <= -10.0) {
        return 0.0;
    }
    if (v >= 10.0) {
        return v;
    }
    let h = f16_round(v);
    return f16_round(0.5 * h * (1.0 + tanh(0.7978846 * h * (1.0 + 0.044715 * h * h))));
}

fn group_dot(wg: WGroup, xb: u32) -> f32 {
    let lo = dot4I8Packed(wg.q[0], xq[xb + 2u]) + dot4I8Packed(wg.q[1], xq[xb + 3u])
        + dot4I8Packed(wg.q[2], xq[xb + 4u]) + dot4I8Packed(wg.q[3], xq[xb + 5u]);
    let hi = dot4I8Packed(wg.q[4], xq[xb + 6u]) + dot4I8Packed(wg.q[5], xq[xb + 7u])
        + dot4I8Packed(wg.q[6], xq[xb + 8u]) + dot4I8Packed(wg.q[7], xq[xb + 9u]);
    return bitcast<f32>(xq[xb]) * (wg.a0 * f32(lo) + wg.a1 * f32(hi)) + wg.b * bitcast<f32>(xq[xb + 1u]);
}

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
    var acc_g: array<f32, 8>;
    var acc_u: array<f32, 8>;
    let row = r * p.row_bytes;
    let live = r < p.rows;
    for (var g = lane; live && g < p.groups; g += LANES) {
        let gate = load_group(row, g);
        let up = load_group_up(row, g);
        for (var j = 0u; j < nt; j++) {
            let xb = ((t0 + j) * p.groups + g) * 10u;
            acc_g[j] += group_dot(gate, xb);
            acc_u[j] += group_dot(up, xb);
        }
    }
    for (var j = 0u; j < TILE; j++) {
        part_g[j * WG + lid] = acc_g[j];
        part_u[j * WG + lid] = acc_u[j];
    }
    workgroupBarrier();
    for (var stride = LANES / 2u; stride > 0u; stride = stride / 2u) {
        if (lane < stride) {
            for (var j = 0u; j < TILE; j++) {
                part_g[j * WG + lid] += part_g[j * WG + lid + stride];
                part_u[j * WG + lid] += part_u[j * WG + lid + stride];
            }
        }
        workgroupBarrier();
    }
    if (live && lane < nt) {
        let gv = part_g[lane * WG + lid - lane];
        let uv = part_u[lane * WG + lid - lane];
        var a = gv / (1.0 + exp(-gv));
        if (p.act == 1u) {
            a = gelu_ggml(gv);
        }
        y[(t0 + lane) * p.rows + r] = a * uv;
    }
}
