// Causal attention over an f16 KV cache, a workgroup per (query row, head). Query row q_row0 + t reads the cache rows
// base+start .. base+end (`info[3t..3t+3]`: its sequence's first cache row and its window). Query head h reads KV
// head h / (n_head / n_kv_head) (grouped-query). Scores: scale · q·k, soft-capped when `softcap` > 0, kept in
// `scores` (a row of `score_stride` per (row, head)); softmax with an optional sink logit per head; then Σ p·v.
@group(0) @binding(0) var<storage, read> q: array<f32>;
@group(0) @binding(1) var<storage, read> kc: array<u32>;
@group(0) @binding(2) var<storage, read> vc: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read> info: array<u32>;
@group(0) @binding(5) var<storage, read_write> scores: array<f32>;
@group(0) @binding(6) var<storage, read> sinks: array<f32>;

struct Params {
    n_head: u32,
    n_kv_head: u32,
    head_dim: u32,
    n_rows: u32,
    scale: f32,
    softcap: f32,
    has_sinks: u32,
    score_stride: u32,
    q_row0: u32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
}
@group(0) @binding(7) var<uniform> p: Params;

const WG: u32 = 64u;


fn half_at(buf_is_k: bool, e: u32) -> f32 {
    var word: u32;
    if (buf_is_k) {
        word = kc[e / 2u];
    } else {
        word = vc[e / 2u];
    }
    let pair = unpack2x16float(word);
    return select(pair.x, pair.y, (e & 1u) == 1u);
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32/*SUBGROUP_ARGS*/) {
    /*SUBGROUP_INIT*/
    let flat = wid.x + wid.y * nwg.x;
    if (flat >= p.n_rows * p.n_head) {
        return;
    }
    let t = flat / p.n_head;
    let h = flat % p.n_head;
    let hd = p.head_dim;
    let kvh = h / (p.n_head / p.n_kv_head);
    let kvd = p.n_kv_head * hd;
    let qoff = (p.q_row0 + t) * p.n_head * hd + h * hd;
    let sbase = flat * p.score_stride;
    let first = info[3u * t] + info[3u * t + 1u];
    let n = info[3u * t + 2u] - info[3u * t + 1u];

    var m = -3.0e38;
    for (var j = lid; j < n; j += WG) {
        let koff = (first + j) * kvd + kvh * hd;
        var s = 0.0;
        for (var d = 0u; d < hd; d++) {
            s += q[qoff + d] * half_at(true, koff + d);
        }
        s = s * p.scale;
        if (p.softcap > 0.0) {
            s = p.softcap * tanh(s / p.softcap);
        }
        scores[sbase + j] = s;
        m = max(m, s);
    }
    m = reduce_max(lid, m);
    if (p.has_sinks != 0u) {
        m = max(m, sinks[h]);
    }
    var sum = 0.0;
    for (var j = lid; j < n; j += WG) {
        let e = exp(scores[sbase + j] - m);
        scores[sbase + j] = e;
        sum += e;
    }
    var total = reduce_sum(lid, sum);
    if (p.has_sinks != 0u) {
        total += exp(sinks[h] - m);
    }
    storageBarrier();
    let inv = 1.0 / total;
    for (var d = lid; d < hd; d += WG) {
        var acc = 0.0;
        for (var j = 0u; j < n; j++) {
            acc += scores[sbase + j] * inv * half_at(false, (first + j) * kvd + kvh * hd + d);
        }
        out[qoff + d] = select(acc, 0.0, n == 0u);
    }
}
