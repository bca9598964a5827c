//! The mixture-of-experts FFN (llama.cpp's `build_moe_ffn` with `mul_mat_id`), on any [`Backend`]: a router
//! picks `k` of the layer's experts per token, only those experts run, and the tokens of a step that chose
//! the same expert go through its matrices together (their rows gathered, one matmul per expert per step,
//! however many tokens chose it), then each choice's output row is weighted and each token's choices summed.

use cria_kernels::backend::{Activation, Backend, Rows};
use cria_kernels::ops;

use crate::ModelError;
use crate::block::activation;
use crate::block_weights::{BlockExpert, BlockExperts, BlockShared};
use crate::spec::ExpertGating;

/// llama.cpp clamps the sum of the chosen weights from below before renormalizing by it.
const MIN_WEIGHT_SUM: f32 = 6.103_515_6e-5;

/// A step's buffers of the MoE FFN (`n` tokens), made once per step and shared by every MoE layer.
pub(crate) struct MoeBufs<B: Backend> {
    router: B::Buf,
    /// One expert's tokens: their input rows, gate, up, activation and output.
    x: B::Buf,
    gate: B::Buf,
    up: B::Buf,
    act: B::Buf,
    y: B::Buf,
    /// Each (token, choice)'s expert output, weighted: `n * k` rows of `n_embd`.
    per_choice: B::Buf,
}

impl<B: Backend> MoeBufs<B> {
    pub(crate) fn new(b: &mut B, w: &Experts<B>, n: usize) -> Result<Self, B::Error> {
        let (spec, d) = (&w.spec, w.d);
        let ff = w.ff.max(w.shared.as_ref().map_or(0, |s| s.ff));
        Ok(MoeBufs {
            router: b.buffer(n * spec.n_expert)?,
            x: b.buffer(n * d)?,
            gate: b.buffer(n * ff)?,
            up: b.buffer(n * ff)?,
            act: b.buffer(n * ff)?,
            y: b.buffer(n * d)?,
            per_choice: b.buffer(n * spec.n_expert_used * d)?,
        })
    }
}

type Experts<B> = BlockExperts<<B as Backend>::Matrix, <B as Backend>::Vector>;

/// `out` (`n` rows of `n_embd`) = the experts' FFN of the normed input `xn`, weighted by the router, plus the
/// shared expert where the layer has one.
pub(crate) fn moe_ffn<B>(
    b: &mut B,
    w: &Experts<B>,
    (xn, out): (&B::Buf, &B::Buf),
    n: usize,
    s: &MoeBufs<B>,
) -> Result<(), ModelError>
where
    B: Backend,
    ModelError: From<B::Error>,
{
    let spec = &w.spec;
    let k = spec.n_expert_used;
    let d = w.d;
    let chosen = route(b, w, xn, n, s)?;
    let act = activation(spec.act);
    for (e, expert) in w.experts.iter().enumerate() {
        // Choice c is token c / k's rank c % k.
        let choices: Vec<usize> = (0..n * k).filter(|&c| chosen[c].0 == e).collect();
        if choices.is_empty() {
            continue;
        }
        let gather: Vec<(usize, usize)> = choices
            .iter()
            .enumerate()
            .map(|(i, &c)| (c / k, i))
            .collect();
        b.copy_rows(xn, &gather, d, &s.x);
        run_expert(b, expert, act, (d, w.ff, choices.len()), s);
        let scatter: Vec<(usize, usize)> =
            choices.iter().enumerate().map(|(i, &c)| (i, c)).collect();
        b.copy_rows(&s.y, &scatter, d, &s.per_choice);
    }
    let weights: Vec<f32> = chosen.iter().map(|&(_, p)| p).collect();
    b.scale_rows(&s.per_choice, &weights, d);
    // Σ over the choices in rank order, as llama.cpp adds its per-choice views.
    b.sum_groups(&s.per_choice, k, Rows::new(d, n), out);
    if let Some(shared) = &w.shared {
        shared_expert(b, shared, (xn, out), (d, n), s);
    }
    Ok(())
}

/// Router logits (plus the router's bias), then per token its `k` choices (expert, weight), best first, as
/// the spec's gating says (renormalized and scaled as it says). The logits come back to the host for the pick.
fn route<B>(
    b: &mut B,
    w: &Experts<B>,
    xn: &B::Buf,
    n: usize,
    s: &MoeBufs<B>,
) -> Result<Vec<(usize, f32)>, ModelError>
where
    B: Backend,
    ModelError: From<B::Error>,
{
    let spec = &w.spec;
    let n_expert = spec.n_expert;
    b.matmul(&[&w.router], xn, n, &[&s.router]);
    if let Some(bias) = &w.router_bias {
        b.add_bias(&s.router, bias, Rows::new(n_expert, n));
    }
    let mut router = b.read(&s.router, n * n_expert)?;
    let mut chosen = Vec::with_capacity(n * spec.n_expert_used);
    let mut order: Vec<usize> = Vec::with_capacity(n_expert);
    let mut weights: Vec<f32> = Vec::with_capacity(spec.n_expert_used);
    for logits in router.chunks_exact_mut(n_expert) {
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
        chosen.extend(
            picked
                .iter()
                .zip(&weights)
                .map(|(&e, &p)| (e, p * norm * scale)),
        );
    }
    Ok(chosen)
}

/// One expert (hidden width `ff`) over its `m` gathered rows in `s.x`: gate/up (plus biases), the activation, down (plus bias)
/// into `s.y`.
fn run_expert<B: Backend>(
    b: &mut B,
    e: &BlockExpert<B::Matrix, B::Vector>,
    act: Activation,
    (d, ff, m): (usize, usize, usize),
    s: &MoeBufs<B>,
) {
    b.matmul(&[&e.gate, &e.up], &s.x, m, &[&s.gate, &s.up]);
    let rows = Rows::new(ff, m);
    if let Some([bg, bu, _]) = &e.biases {
        b.add_bias(&s.gate, bg, rows);
        b.add_bias(&s.up, bu, rows);
    }
    b.gated(act, (&s.gate, &s.up), rows, &s.act);
    b.matmul(&[&e.down], &s.act, m, &[&s.y]);
    if let Some([_, _, bd]) = &e.biases {
        b.add_bias(&s.y, bd, Rows::new(d, m));
    }
}

/// Qwen2-MoE's shared expert: a dense SwiGLU FFN every token takes, scaled by `sigmoid(w_gate · x)`.
fn shared_expert<B: Backend>(
    b: &mut B,
    sh: &BlockShared<B::Matrix, B::Vector>,
    (xn, out): (&B::Buf, &B::Buf),
    (d, n): (usize, usize),
    s: &MoeBufs<B>,
) {
    b.matmul(&[&sh.gate, &sh.up], xn, n, &[&s.gate, &s.up]);
    b.gated(
        Activation::SwiGlu,
        (&s.gate, &s.up),
        Rows::new(sh.ff, n),
        &s.act,
    );
    b.matmul(&[&sh.down], &s.act, n, &[&s.y]);
    b.sigmoid_gate_add(out, (&s.y, xn), &sh.gate_inp, Rows::new(d, n));
}
