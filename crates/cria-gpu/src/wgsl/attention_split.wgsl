// Attention split along the keys (flash-decoding), first pass: a workgroup per (query row, head, chunk of
// CHUNK keys of that row's window). It keeps the chunk's max score m, Σ exp(s - m) and the unnormalised
// Σ exp(s - m)·v in `parts` (head_dim + 2 floats per (row, head, chunk)); attention_combine.wgsl merges them.
// Scores as attention.wgsl: scale · q·k, soft-capped when `softcap` > 0; grouped-query heads.
@group(0) @binding(0) var<storage, read> q: array<f32>;
@group(0) @binding(1) var<storage, read> kc: array<u32>;
@group(0) @binding(2) var<storage, read> vc: array<u32>;
@group(0) @binding(3) var<storage, read_write> parts: array<f32>;
@group(0) @binding(4) var<storage, read> info: array<u32>;

struct Params {
    n_head: u32,
    n_kv_head: u32,
    head_dim: u32,
    n_rows: u32,
    scale: f32,
    softcap: f32,
    n_chunks: u32,
    q_row0: u32,
}
@group(0) @binding(5) var<uniform> p: Params;

const WG: u32 = 64u;
const CHUNK: u32 = 256u;
var<workgroup> sc: array<f32, 256>;


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
    if (flat >= p.n_rows * p.n_head * p.n_chunks) {
        return;
    }
    let c = flat % p.n_chunks;
    let rh = flat / p.n_chunks;
    let t = rh / p.n_head;
    let h = rh % p.n_head;
    let hd = p.head_dim;
    let kvh = h / (p.n_head / p.n_kv_head);
    let kvd = p.n_kv_head * hd;
    let qoff = (p.q_row0 + t) * p.n_head * hd + h * hd;
    let n_win = info[3u * t + 2u] - info[3u * t + 1u];
    let lo = min(c * CHUNK, n_win);
    let n = min(n_win - lo, CHUNK);
    let first = info[3u * t] + info[3u * t + 1u] + lo;

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
        sc[j] = s;
        m = max(m, s);
    }
    m = reduce_max(lid, m);
    var sum = 0.0;
    for (var j = lid; j < n; j += WG) {
        let e = exp(sc[j] - m);
        sc[j] = e;
        sum += e;
    }
    let total = reduce_sum(lid, sum);
    let out = flat * (hd + 2u);
    if (lid == 0u) {
        parts[out] = m;
        parts[out + 1u] = total;
    }
    for (var d = lid; d < hd; d += WG) {
        var acc = 0.0;
        for (var j = 0u; j < n; j++) {
            acc += sc[j] * half_at(false, (first + j) * kvd + kvh * hd + d);
        }
        parts[out + 2u + d] = acc;
    }
}
