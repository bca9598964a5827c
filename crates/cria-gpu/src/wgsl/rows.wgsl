// Row-wise ops, a workgroup per row of `cols`: op 0 RMS norm (out = x / sqrt(mean(x²) + eps) · w), op 1 softmax
// (out = exp(x - max) / Σ). `x` and `out` may be the same buffer (in place).
@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read> wt: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

struct Params {
    cols: u32,
    n_rows: u32,
    has_weight: u32,
    eps: f32,
    op: u32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
}
@group(0) @binding(3) var<uniform> p: Params;

const WG: u32 = 64u;



@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32/*SUBGROUP_ARGS*/) {
    /*SUBGROUP_INIT*/
    let row = wid.x + wid.y * nwg.x;
    if (row >= p.n_rows) {
        return;
    }
    let base = row * p.cols;
    if (p.op == 0u) {
        var ss = 0.0;
        for (var i = lid; i < p.cols; i += WG) {
            let v = x[base + i];
            ss += v * v;
        }
        let mean = reduce_sum(lid, ss) / f32(max(p.cols, 1u));
        let scale = 1.0 / sqrt(mean + p.eps);
        for (var i = lid; i < p.cols; i += WG) {
            let wv = select(1.0, wt[i], p.has_weight != 0u);
            out[base + i] = x[base + i] * scale * wv;
        }
    } else {
        var m = -3.0e38;
        for (var i = lid; i < p.cols; i += WG) {
            m = max(m, x[base + i]);
        }
        m = reduce_max(lid, m);
        var s = 0.0;
        for (var i = lid; i < p.cols; i += WG) {
            let e = exp(x[base + i] - m);
            out[base + i] = e;
            s += e;
        }
        let inv = 1.0 / reduce_sum(lid, s);
        for (var i = lid; i < p.cols; i += WG) {
            out[base + i] = out[base + i] * inv;
        }
    }
}
