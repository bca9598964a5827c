//! The mixture-of-experts FFN (llama.cpp's `build_moe_ffn` with `mul_mat_id`): a router picks `k` of the
//! layer's experts per token, only those experts run, and the tokens of a step that chose the same expert go
//! through its matrices together (one matmul per expert per step, however many tokens chose it).

use cria_kernels::ops;
use cria_kernels::pool::ThreadPool;

use crate::fused::{FusedScratch, matmul_fused};
use crate::runner::gated_activation;
use crate::spec::{ExpertGating, FfnKind};
use crate::weights::{ExpertBiases, ExpertWeights, Matrix};

/// llama.cpp clamps the sum of the chosen weights from below before renormalizing by it.
const MIN_WEIGHT_SUM: f32 = 6.103_515_6e-5;

/// Buffers of the MoE FFN, reused between steps.
#[derive(Default)]
pub(crate) struct MoeScratch {
    router: Vec<f32>,
    /// Per token, its `k` choices: (expert, weight), best first.
    chosen: Vec<(usize, f32)>,
    /// One expert's tokens: their rows of the input, gate, up, activation and output.
    rows: Vec<usize>,
    x: Vec<f32>,
    gate: Vec<f32>,
    up: Vec<f32>,
    act: Vec<f32>,
    y: Vec<f32>,
    /// Each (token, choice)'s expert output, weighted: `n_tok * k` rows of `n_embd`.
    per_choice: Vec<f32>,
    fused: FusedScratch,
}

/// `out` (`n_tok` rows of `n_embd`) = the experts' FFN of the normed input `xn`, weighted by the router, plus
/// the shared expert where the layer has one.
pub(crate) fn moe_ffn(
    pool: &ThreadPool,
    data: &[u8],
    w: &ExpertWeights,
    xn: &[f32],
    n_tok: usize,
    out: &mut [f32],
    s: &mut MoeScratch,
) {
    let spec = &w.spec;
    let d = xn.len() / n_tok.max(1);
    route(pool, data, w, xn, n_tok, s);
    let k = spec.n_expert_used;
    resize(&mut s.per_choice, n_tok * k * d);
    for e in 0..spec.n_expert {
        s.rows.clear();
        s.rows.extend(
            (0..n_tok * k).filter(|&c| s.chosen[c].0 == e), // choice c = token c / k, rank c % k
        );
        if s.rows.is_empty() {
            continue;
        }
        let expert = Expert {
            mats: [&w.gate[e], &w.up[e], &w.down[e]],
            biases: w.biases.as_ref().map(|b| {
                let ff = w.gate[e].rows;
                [
                    ExpertBiases::row(&b.gate, e, ff),
                    ExpertBiases::row(&b.up, e, ff),
                    ExpertBiases::row(&b.down, e, d),
                ]
            }),
            act: spec.act,
        };
        run_expert(pool, data, &expert, xn, d, k, s);
    }
    // Σ over the choices in rank order, as llama.cpp adds its per-choice views.
    for (t, row) in out.chunks_exact_mut(d).enumerate() {
        row.fill(0.0);
        for c in t * k..(t + 1) * k {
            ops::add_inplace(row, &s.per_choice[c * d..(c + 1) * d]);
        }
    }
    if let Some(shared) = &w.shared {
        shared_expert(pool, data, shared, xn, n_tok, out, s);
    }
}

/// Router logits (plus the router's bias), then the chosen experts and their weights as the spec's gating says
/// (renormalized and scaled as it says).
fn route(
    pool: &ThreadPool,
    data: &[u8],
    w: &ExpertWeights,
    xn: &[f32],
    n_tok: usize,
    s: &mut MoeScratch,
) {
    let spec = &w.spec;
    let n_expert = spec.n_expert;
    resize(&mut s.router, n_tok * n_expert);
    let router = [w.router.view(data)];
    matmul_fused(
        pool,
        &router,
        xn,
        n_tok,
        &mut [&mut s.router[..]],
        &mut s.fused,
    );
    s.chosen.clear();
    let mut order: Vec<usize> = Vec::with_capacity(n_expert);
    let mut weights: Vec<f32> = Vec::with_capacity(spec.n_expert_used);
    for logits in s.router.chunks_exact_mut(n_expert) {
        if let Some(b) = &w.router_bias {
            ops::add_inplace(logits, b);
        }
        if spec.gating == ExpertGating::Softmax {
            ops::softmax_inplace(logits);
        }
        order.clear();
        order.extend(0..n_expert);
        // Best first; a tie goes to the lower expert index (a stable sort).
        order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]));
        let picked = &order[..spec.n_expert_used];
        weights.clear();
        weights.extend(picked.iter().map(|&e| logits[e]));
        if spec.gating == ExpertGating::SoftmaxOfChosen {
            ops::softmax_inplace(&mut weights);
        }
        let sum: f32 = weights.iter().sum();
        let norm = if spec.norm_weights {
            1.0 / sum.max(MIN_WEIGHT_SUM)
        } else {
            1.0
        };
        let scale = spec.weights_scale.unwrap_or(1.0);
        s.chosen.extend(
            picked
                .iter()
                .zip(&weights)
                .map(|(&e, &p)| (e, p * norm * scale)),
        );
    }
}

/// One expert's matrices (gate, up, down), their biases where the layer has them, and its activation.
struct Expert<'a> {
    mats: [&'a Matrix; 3],
    biases: Option<[&'a [f32]; 3]>,
    act: FfnKind,
}

/// One expert over the choices in `s.rows`: gathers their input rows, runs gate/up (plus biases), the
/// activation and down (plus bias) as one batch, and writes each weighted output row to its choice's slot of
/// `s.per_choice`.
fn run_expert(
    pool: &ThreadPool,
    data: &[u8],
    expert: &Expert<'_>,
    xn: &[f32],
    d: usize,
    k: usize,
    s: &mut MoeScratch,
) {
    let [gate, up, down] = expert.mats;
    let (n, ff) = (s.rows.len(), gate.rows);
    resize(&mut s.x, n * d);
    for (dst, &c) in s.x.chunks_exact_mut(d).zip(&s.rows) {
        let t = c / k;
        dst.copy_from_slice(&xn[t * d..(t + 1) * d]);
    }
    resize(&mut s.gate, n * ff);
    resize(&mut s.up, n * ff);
    let mats = [gate.view(data), up.view(data)];
    matmul_fused(
        pool,
        &mats,
        &s.x,
        n,
        &mut [&mut s.gate[..], &mut s.up[..]],
        &mut s.fused,
    );
    if let Some([bg, bu, _]) = expert.biases {
        s.gate
            .chunks_exact_mut(ff)
            .for_each(|r| ops::add_inplace(r, bg));
        s.up.chunks_exact_mut(ff)
            .for_each(|r| ops::add_inplace(r, bu));
    }
    resize(&mut s.act, n * ff);
    for ((a, g), u) in s
        .act
        .chunks_exact_mut(ff)
        .zip(s.gate.chunks_exact(ff))
        .zip(s.up.chunks_exact(ff))
    {
        gated_activation(expert.act, g, u, a);
    }
    resize(&mut s.y, n * d);
    let w_down = [down.view(data)];
    matmul_fused(pool, &w_down, &s.act, n, &mut [&mut s.y[..]], &mut s.fused);
    if let Some([_, _, bd]) = expert.biases {
        s.y.chunks_exact_mut(d)
            .for_each(|r| ops::add_inplace(r, bd));
    }
    for (y, &c) in s.y.chunks_exact(d).zip(&s.rows) {
        let weight = s.chosen[c].1;
        let dst = &mut s.per_choice[c * d..(c + 1) * d];
        dst.iter_mut().zip(y).for_each(|(o, v)| *o = v * weight);
    }
}

/// Qwen2-MoE's shared expert: a dense SwiGLU FFN every token takes, scaled by `sigmoid(w_gate · x)`.
fn shared_expert(
    pool: &ThreadPool,
    data: &[u8],
    shared: &crate::weights::SharedExpert,
    xn: &[f32],
    n_tok: usize,
    out: &mut [f32],
    s: &mut MoeScratch,
) {
    let d = xn.len() / n_tok.max(1);
    let ff = shared.gate.rows;
    resize(&mut s.gate, n_tok * ff);
    resize(&mut s.up, n_tok * ff);
    let mats = [shared.gate.view(data), shared.up.view(data)];
    matmul_fused(
        pool,
        &mats,
        xn,
        n_tok,
        &mut [&mut s.gate[..], &mut s.up[..]],
        &mut s.fused,
    );
    resize(&mut s.act, n_tok * ff);
    for ((a, g), u) in s
        .act
        .chunks_exact_mut(ff)
        .zip(s.gate.chunks_exact(ff))
        .zip(s.up.chunks_exact(ff))
    {
        ops::silu_mul(g, u, a);
    }
    resize(&mut s.y, n_tok * d);
    let w_down = [shared.down.view(data)];
    matmul_fused(
        pool,
        &w_down,
        &s.act,
        n_tok,
        &mut [&mut s.y[..]],
        &mut s.fused,
    );
    for ((row, y), x) in out
        .chunks_exact_mut(d)
        .zip(s.y.chunks_exact(d))
        .zip(xn.chunks_exact(d))
    {
        let logit: f32 = x.iter().zip(&shared.gate_inp).map(|(a, b)| a * b).sum();
        let g = 1.0 / (1.0 + (-logit).exp());
        row.iter_mut().zip(y).for_each(|(o, v)| *o += v * g);
    }
}

fn resize(v: &mut Vec<f32>, n: usize) {
    v.resize(n, 0.0);
}
