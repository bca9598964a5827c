//! Attention against a plain f64 reference on random shapes (GQA groups, head sizes that are not a
//! multiple of any vector width, sliding windows, soft-cap, attention sinks), and the batched entry point
//! against the one-token one.

use cria_kernels::ops::{AttentionParams, CausalBatch, attention_batch, attention_ext};
use cria_kernels::pool::ThreadPool;
use half::f16;
use proptest::prelude::*;

/// softmax(softcap(scale q·k)) · v in f64, per head; a head's sink joins the softmax's denominator only.
fn reference(
    q: &[f32],
    k: &[f16],
    v: &[f16],
    win: std::ops::Range<usize>,
    p: &AttentionParams,
) -> Vec<f32> {
    let (hd, kvd, group) = (p.head_dim, p.n_kv_head * p.head_dim, p.n_head / p.n_kv_head);
    let mut out = vec![0.0f32; p.n_head * hd];
    for h in 0..p.n_head {
        let off = (h / group) * hd;
        let s: Vec<f64> = win
            .clone()
            .map(|t| {
                let d: f64 = (0..hd)
                    .map(|j| f64::from(q[h * hd + j]) * f64::from(k[t * kvd + off + j].to_f32()))
                    .sum();
                let d = d * f64::from(p.scale);
                p.softcap
                    .map_or(d, |c| f64::from(c) * (d / f64::from(c)).tanh())
            })
            .collect();
        let sink = p.sinks.map(|s| f64::from(s[h]));
        let m = s
            .iter()
            .copied()
            .chain(sink)
            .fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = s.iter().map(|x| (x - m).exp()).collect();
        let z: f64 = e.iter().sum::<f64>() + sink.map_or(0.0, |s| (s - m).exp());
        for j in 0..hd {
            let acc: f64 = win
                .clone()
                .zip(&e)
                .map(|(t, w)| w * f64::from(v[t * kvd + off + j].to_f32()))
                .sum();
            out[h * hd + j] = (acc / z) as f32;
        }
    }
    out
}

fn f16s(v: &[f32]) -> Vec<f16> {
    v.iter().map(|&x| f16::from_f32(x)).collect()
}

#[derive(Debug, Clone)]
struct Case {
    p: AttentionParams<'static>,
    /// One sink logit per query head, or none.
    sinks: Option<Vec<f32>>,
    n_kv: usize,
    q: Vec<f32>,
    k: Vec<f16>,
    v: Vec<f16>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        1usize..4,
        1usize..4,
        1usize..80,
        1usize..40,
        any::<bool>(),
        0.05f32..0.5,
    )
        .prop_flat_map(|(n_kv_head, group, head_dim, n_kv, cap, scale)| {
            let n_head = n_kv_head * group;
            let p = AttentionParams {
                n_head,
                n_kv_head,
                head_dim,
                scale,
                softcap: cap.then_some(5.0),
                sinks: None,
            };
            let kv_len = n_kv * n_kv_head * head_dim;
            (
                Just(p),
                prop::option::of(prop::collection::vec(-4.0f32..4.0, n_head)),
                Just(n_kv),
                prop::collection::vec(-3.0f32..3.0, n_head * head_dim),
                prop::collection::vec(-3.0f32..3.0, kv_len),
                prop::collection::vec(-3.0f32..3.0, kv_len),
            )
        })
        .prop_map(|(p, sinks, n_kv, q, k, v)| Case {
            p,
            sinks,
            n_kv,
            q,
            k: f16s(&k),
            v: f16s(&v),
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(150))]

    #[test]
    fn attention_matches_f64_reference(c in case(), start_frac in 0.0f64..1.0) {
        let start = (start_frac * c.n_kv as f64) as usize;
        let p = AttentionParams { sinks: c.sinks.as_deref(), ..c.p };
        let mut out = vec![0.0; c.q.len()];
        attention_ext(&c.q, &c.k, &c.v, start..c.n_kv, &p, &mut out, &mut Vec::new());
        let want = reference(&c.q, &c.k, &c.v, start..c.n_kv, &p);
        for (i, (g, w)) in out.iter().zip(&want).enumerate() {
            prop_assert!((g - w).abs() <= 1e-4 * (1.0 + w.abs()), "[{i}] {g} vs {w}");
        }
    }

    #[test]
    fn attention_batch_equals_one_token_at_a_time(c in case(), threads in 1usize..4, win in prop::option::of(1usize..10)) {
        // The last n_tok cache rows are the batch's own tokens.
        let n_tok = c.n_kv.min(5);
        let b = CausalBatch { first_pos: c.n_kv - n_tok, n_tokens: n_tok, sliding_window: win };
        let p = AttentionParams { sinks: c.sinks.as_deref(), ..c.p };
        let q: Vec<f32> = (0..n_tok).flat_map(|i| c.q.iter().map(move |x| x * (i as f32 + 1.0))).collect();
        let mut out = vec![f32::NAN; q.len()];
        attention_batch(&ThreadPool::new(threads), &q, &c.k, &c.v, &b, &p, &mut out);
        let qd = c.q.len();
        for i in 0..n_tok {
            let mut one = vec![0.0; qd];
            attention_ext(&q[i * qd..(i + 1) * qd], &c.k, &c.v, b.window(i), &p, &mut one, &mut Vec::new());
            prop_assert_eq!(&out[i * qd..(i + 1) * qd], &one[..], "token {}", i);
        }
    }
}

#[test]
fn attention_contract_signature_is_attention_ext_without_softcap() {
    let q = [0.5f32, -1.0, 0.25, 2.0];
    let k = f16s(&[1.0, 2.0, -1.0, 0.5, 0.0, 1.0, 3.0, -2.0]);
    let v = f16s(&[1.0, 0.0, 0.0, 1.0, 2.0, 2.0, -1.0, 4.0]);
    let mut a = vec![0.0; 4];
    cria_kernels::ops::attention(&q, &k, &v, 2, 0, 2, 2, 2, 0.7, &mut a, &mut Vec::new());
    let p = AttentionParams {
        n_head: 2,
        n_kv_head: 2,
        head_dim: 2,
        scale: 0.7,
        softcap: None,
        sinks: None,
    };
    let want = reference(&q, &k, &v, 0..2, &p);
    for (g, w) in a.iter().zip(&want) {
        assert!((g - w).abs() < 1e-5, "{a:?} vs {want:?}");
    }
}
