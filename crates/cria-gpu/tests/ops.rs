//! Each GPU op against Cria's CPU kernels on random inputs, by normalised mean squared error (llama.cpp's
//! `test-backend-ops`: NMSE < 5e-4 for matmul, tight bounds for exact ops).
//!
//! They run on whatever adapter `--device gpu` would pick (lavapipe in CI). Without any adapter they skip with
//! a message, unless `CRIA_GPU_REQUIRED=1` (set by tests/gpu/run.sh after installing lavapipe) makes that a
//! failure.

use cria_gpu::{AttentionRow, DeviceChoice, GatedAct, Gpu, GpuAttention, GpuOptions, GpuRope};
use cria_kernels::GgmlType;
use cria_kernels::matmul::{WeightRef, matmul};
use cria_kernels::ops::{self, AttentionParams, RopeParams, RopeStyle, Yarn};
use cria_kernels::packed::Layout;
use cria_kernels::pool::ThreadPool;
use cria_kernels::quant::{can_quantize, quantize_row};
use half::f16;

fn gpu() -> Option<Gpu> {
    match Gpu::open(DeviceChoice::Gpu(None)) {
        Ok(g) => Some(g),
        Err(e) if std::env::var("CRIA_GPU_REQUIRED").as_deref() == Ok("1") => {
            panic!("CRIA_GPU_REQUIRED=1 but {e}")
        }
        Err(e) => {
            eprintln!("skipping GPU op test: {e}");
            None
        }
    }
}

/// Deterministic values in about [-scale, scale].
fn random(n: usize, seed: u64, scale: f32) -> Vec<f32> {
    let mut s = seed
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
        })
        .collect()
}

/// Σ(a-b)² / Σb²; NaN or Inf anywhere fails.
fn nmse(got: &[f32], want: &[f32]) -> f64 {
    assert_eq!(got.len(), want.len(), "lengths");
    assert!(
        got.iter().chain(want).all(|v| v.is_finite()),
        "non-finite value"
    );
    let err: f64 = got
        .iter()
        .zip(want)
        .map(|(a, b)| f64::from(a - b).powi(2))
        .sum();
    let norm: f64 = want.iter().map(|b| f64::from(*b).powi(2)).sum();
    err / norm.max(1e-30)
}

fn assert_close(what: &str, got: &[f32], want: &[f32], bound: f64) {
    let e = nmse(got, want);
    assert!(e < bound, "{what}: NMSE {e:e} >= {bound:e}");
}

const FORMATS: [GgmlType; 11] = [
    GgmlType::F32,
    GgmlType::F16,
    GgmlType::BF16,
    GgmlType::Q8_0,
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q4_K,
    GgmlType::Q5_K,
    GgmlType::Q6_K,
];

/// A `rows × cols` matrix of `ty` from random floats.
fn quantized(ty: GgmlType, rows: usize, cols: usize, seed: u64) -> Vec<u8> {
    let rb = ty.row_bytes(cols).expect("whole blocks");
    let src = random(rows * cols, seed, 1.0);
    let mut data = vec![0u8; rows * rb];
    for (row, dst) in src.chunks_exact(cols).zip(data.chunks_exact_mut(rb)) {
        quantize_row(ty, row, dst).expect("quantize");
    }
    data
}

#[test]
fn get_rows_dequantizes_every_format_as_the_cpu_does() {
    let Some(gpu) = gpu() else { return };
    let (rows, cols) = (7, 512);
    for ty in FORMATS.into_iter().filter(|&t| can_quantize(t)) {
        let data = quantized(ty, rows, cols, 3);
        let w = gpu.upload_matrix(ty, rows, cols, &data).expect("upload");
        let ids = [5u32, 0, 6, 5];
        let out = gpu.zeros(ids.len() * cols).expect("alloc");
        let mut step = gpu.step();
        step.get_rows(&w, &ids, &out);
        step.submit();
        let got = gpu.read_f32(&out, ids.len() * cols).expect("read");
        let mut want = vec![0.0; ids.len() * cols];
        ops::get_rows(ty, &data, cols, &ids, &mut want).expect("cpu get_rows");
        assert_close(&format!("get_rows {ty:?}"), &got, &want, 1e-10);
    }
}

#[test]
fn f32_rows_that_are_not_whole_groups_dequantize_and_multiply() {
    let Some(gpu) = gpu() else { return };
    let (rows, cols, n_tok) = (5, 70, 3);
    let w = random(rows * cols, 11, 1.0);
    let x = random(n_tok * cols, 12, 1.0);
    let wm = gpu
        .upload_matrix(GgmlType::F32, rows, cols, bytemuck::cast_slice(&w))
        .expect("upload");
    let (xb, yb) = (
        gpu.upload_f32(&x).expect("x"),
        gpu.zeros(n_tok * rows).expect("y"),
    );
    let mut step = gpu.step();
    step.matmul(&wm, &xb, n_tok, &yb);
    step.submit();
    let got = gpu.read_f32(&yb, n_tok * rows).expect("read");
    let want: Vec<f32> = (0..n_tok * rows)
        .map(|i| {
            let (t, r) = (i / rows, i % rows);
            (0..cols).map(|c| w[r * cols + c] * x[t * cols + c]).sum()
        })
        .collect();
    assert_close("f32 matmul, 70 columns", &got, &want, 1e-10);
}

#[test]
fn matmul_matches_the_cpu_matmul_for_every_format_decode_and_prefill() {
    let Some(gpu) = gpu() else { return };
    let pool = ThreadPool::new(1);
    let (rows, cols) = (37, 512);
    for ty in FORMATS.into_iter().filter(|&t| can_quantize(t)) {
        let data = quantized(ty, rows, cols, 5);
        let w = gpu.upload_matrix(ty, rows, cols, &data).expect("upload");
        // 1: decode; 3: a part tile; 9: a full tile and one more token.
        for n_tok in [1, 3, 9] {
            let x = random(n_tok * cols, 7 + n_tok as u64, 1.0);
            let (xb, yb) = (
                gpu.upload_f32(&x).expect("x"),
                gpu.zeros(n_tok * rows).expect("y"),
            );
            let mut step = gpu.step();
            step.matmul(&w, &xb, n_tok, &yb);
            step.submit();
            let got = gpu.read_f32(&yb, n_tok * rows).expect("read");
            let mut want = vec![0.0; n_tok * rows];
            let wr = WeightRef {
                ty,
                rows,
                cols,
                data: &data,
                layout: Layout::Rows,
            };
            matmul(&pool, &wr, &x, n_tok, &mut want, &mut Vec::new());
            assert_close(&format!("matmul {ty:?} n_tok {n_tok}"), &got, &want, 5e-4);
        }
    }
}

#[test]
fn matrices_split_into_parts_multiply_and_look_up_like_whole_ones() {
    let Some(gpu) = gpu() else { return };
    let pool = ThreadPool::new(1);
    let (ty, rows, cols, n_tok) = (GgmlType::Q8_0, 37, 64, 2);
    let data = quantized(ty, rows, cols, 9);
    // Parts of 5 rows: 7 full parts and one of 2, as a vocabulary past the binding limit is split.
    let w = gpu
        .upload_matrix_in_parts(ty, (rows, cols), &data, 5)
        .expect("upload");
    let x = random(n_tok * cols, 10, 1.0);
    let ids = [36u32, 0, 5, 4, 35];
    let (xb, yb, out) = (
        gpu.upload_f32(&x).expect("x"),
        gpu.zeros(n_tok * rows).expect("y"),
        gpu.zeros(ids.len() * cols).expect("out"),
    );
    let mut step = gpu.step();
    step.matmul(&w, &xb, n_tok, &yb);
    step.get_rows(&w, &ids, &out);
    step.submit();
    let mut want = vec![0.0; n_tok * rows];
    let wr = WeightRef {
        ty,
        rows,
        cols,
        data: &data,
        layout: Layout::Rows,
    };
    matmul(&pool, &wr, &x, n_tok, &mut want, &mut Vec::new());
    assert_close(
        "split matmul",
        &gpu.read_f32(&yb, want.len()).expect("read"),
        &want,
        5e-4,
    );
    let mut want = vec![0.0; ids.len() * cols];
    ops::get_rows(ty, &data, cols, &ids, &mut want).expect("cpu get_rows");
    assert_close(
        "split get_rows",
        &gpu.read_f32(&out, want.len()).expect("read"),
        &want,
        1e-10,
    );
}

#[test]
fn rms_norm_and_softmax_match_the_cpu_in_place_and_not() {
    let Some(gpu) = gpu() else { return };
    check_rows_ops(&gpu);
}

fn check_rows_ops(gpu: &Gpu) {
    let (cols, n_rows) = (200, 3);
    let x = random(cols * n_rows, 21, 3.0);
    let w = random(cols, 22, 1.0);
    let (xb, wb, out) = (
        gpu.upload_f32(&x).expect("x"),
        gpu.upload_f32(&w).expect("w"),
        gpu.zeros(cols * n_rows).expect("out"),
    );
    let mut step = gpu.step();
    step.rms_norm(&xb, Some(&wb), (cols, n_rows), 1e-6, &out);
    step.submit();
    let got = gpu.read_f32(&out, cols * n_rows).expect("read");
    let mut want = vec![0.0; cols * n_rows];
    for (src, dst) in x.chunks_exact(cols).zip(want.chunks_exact_mut(cols)) {
        ops::rms_norm(src, &w, 1e-6, dst);
    }
    assert_close("rms_norm", &got, &want, 1e-10);

    // Per-head norm in place (QK-norm): rows of 20 without a weight... then softmax of the result.
    let mut step = gpu.step();
    step.rms_norm(&xb, None, (20, cols * n_rows / 20), 1e-5, &xb);
    step.softmax(&xb, cols, n_rows);
    step.submit();
    let got = gpu.read_f32(&xb, cols * n_rows).expect("read");
    let mut want = x.clone();
    let ones = vec![1.0; 20];
    want.chunks_exact_mut(20)
        .for_each(|h| ops::rms_norm_inplace(h, &ones, 1e-5));
    want.chunks_exact_mut(cols).for_each(ops::softmax_inplace);
    assert_close("rms_norm in place, softmax", &got, &want, 1e-10);
}

fn rope_case(style: RopeStyle, yarn: bool) -> RopeParams {
    let mut p = RopeParams::new(style, 32, 10_000.0);
    if yarn {
        p.freq_scale = 0.25;
        p.yarn = Some(Yarn {
            ext_factor: 1.0,
            corr_dims: ops::yarn_corr_dims(32, 4096, 10_000.0, 32.0, 1.0),
        });
    }
    p
}

#[test]
fn rope_normal_and_neox_match_the_cpu_with_and_without_yarn() {
    let Some(gpu) = gpu() else { return };
    let (n_heads, head_dim) = (3, 48); // n_rot 32 < head_dim: the last 16 dims pass through.
    let positions = [0usize, 1, 17, 1000];
    for style in [RopeStyle::Normal, RopeStyle::Neox] {
        for yarn in [false, true] {
            let p = rope_case(style, yarn);
            let x = random(positions.len() * n_heads * head_dim, 31, 2.0);
            let xb = gpu.upload_f32(&x).expect("x");
            let mut step = gpu.step();
            let tokens: Vec<_> = positions.iter().map(|&pos| (pos, &p)).collect();
            step.rope(&xb, &tokens, &GpuRope { n_heads, head_dim });
            step.submit();
            let got = gpu.read_f32(&xb, x.len()).expect("read");
            let mut want = x.clone();
            for (row, &pos) in want.chunks_exact_mut(n_heads * head_dim).zip(&positions) {
                ops::rope_inplace(row, n_heads, head_dim, pos, &p);
            }
            assert_close(&format!("rope {style:?} yarn {yarn}"), &got, &want, 1e-10);
        }
    }
}

#[test]
fn elementwise_ops_match_the_cpu() {
    let Some(gpu) = gpu() else { return };
    let n = 300;
    let (a, b, bias) = (random(n, 41, 4.0), random(n, 42, 4.0), random(30, 43, 1.0));
    let (ab, bb, biasb) = (
        gpu.upload_f32(&a).expect("a"),
        gpu.upload_f32(&b).expect("b"),
        gpu.upload_f32(&bias).expect("bias"),
    );
    let outs: Vec<_> = (0..3).map(|_| gpu.zeros(n).expect("out")).collect();
    let mut step = gpu.step();
    step.silu_mul(&outs[0], &ab, &bb, n);
    step.gelu_mul(&outs[1], &ab, &bb, n);
    step.swiglu_oai_mul(&outs[2], &ab, &bb, n, 1.702, 7.0);
    step.submit();
    let mut want = vec![0.0; n];
    ops::silu_mul(&a, &b, &mut want);
    assert_close(
        "silu_mul",
        &gpu.read_f32(&outs[0], n).expect("read"),
        &want,
        1e-10,
    );
    ops::gelu_mul(&a, &b, &mut want);
    assert_close(
        "gelu_mul",
        &gpu.read_f32(&outs[1], n).expect("read"),
        &want,
        1e-6,
    );
    ops::swiglu_oai_mul(&a, &b, 1.702, 7.0, &mut want);
    assert_close(
        "swiglu_oai",
        &gpu.read_f32(&outs[2], n).expect("read"),
        &want,
        1e-10,
    );

    // Residual add, a bias on every row of 30, element-wise mul, scale and soft-cap, in order.
    let mut step = gpu.step();
    step.add(&ab, &bb, n, n);
    step.add(&ab, &biasb, n, 30);
    step.mul(&ab, &bb, n, n);
    step.scale(&ab, n, 0.5);
    step.softcap(&ab, n, 3.0);
    step.submit();
    let mut want = a.clone();
    ops::add_inplace(&mut want, &b);
    want.chunks_exact_mut(30)
        .for_each(|r| ops::add_inplace(r, &bias));
    ops::mul_inplace(&mut want, &b);
    ops::scale_inplace(&mut want, 0.5);
    want.iter_mut().for_each(|v| *v = 3.0 * (*v / 3.0).tanh());
    assert_close(
        "add, bias, mul, scale, softcap",
        &gpu.read_f32(&ab, n).expect("read"),
        &want,
        1e-10,
    );
}

struct AttnCase {
    n_head: usize,
    n_kv_head: usize,
    head_dim: usize,
    n_ctx: usize,
    window: Option<usize>,
    softcap: Option<f32>,
    sinks: bool,
}

/// `c` on the GPU (split along the keys when `force_split`, else as [`cria_gpu::Step::attention`] chooses)
/// against the CPU's attention.
fn check_attention(gpu: &Gpu, c: &AttnCase, force_split: bool) {
    let kvd = c.n_kv_head * c.head_dim;
    let k = random(c.n_ctx * kvd, 51, 1.0);
    let v = random(c.n_ctx * kvd, 52, 1.0);
    // Query rows: the first, a middle and the last position, as a prefill's causal rows would be.
    let positions = [0, c.n_ctx / 2, c.n_ctx - 1];
    let qd = c.n_head * c.head_dim;
    let q = random(positions.len() * qd, 53, 1.0);
    let sinks = random(c.n_head, 54, 2.0);
    let (kc, vc) = (
        gpu.zeros(c.n_ctx * kvd / 2).expect("k"),
        gpu.zeros(c.n_ctx * kvd / 2).expect("v"),
    );
    let (kb, vb, qb) = (
        gpu.upload_f32(&k).expect("k"),
        gpu.upload_f32(&v).expect("v"),
        gpu.upload_f32(&q).expect("q"),
    );
    let sinks_b = gpu.upload_f32(&sinks).expect("sinks");
    let out = gpu.zeros(positions.len() * qd).expect("out");
    let rows: Vec<_> = positions
        .iter()
        .map(|&pos| AttentionRow {
            kv_base: 0,
            window: ops::QueryRow::causal(0, pos, c.window).window,
        })
        .collect();
    let scale = 1.0 / (c.head_dim as f32).sqrt();
    let cache_rows: Vec<u32> = (0..c.n_ctx as u32).collect();
    let mut step = gpu.step();
    step.kv_store((&kb, 0), &kc, &cache_rows, kvd);
    step.kv_store((&vb, 0), &vc, &cache_rows, kvd);
    let p = GpuAttention {
        n_head: c.n_head,
        n_kv_head: c.n_kv_head,
        head_dim: c.head_dim,
        scale,
        softcap: c.softcap,
        sinks: c.sinks.then_some(&sinks_b),
    };
    if force_split {
        step.attention_split((&qb, 0), (&kc, &vc), &rows, &p, &out);
    } else {
        step.attention((&qb, 0), (&kc, &vc), &rows, &p, &out);
    }
    step.submit();
    let got = gpu.read_f32(&out, positions.len() * qd).expect("read");
    let (k16, v16): (Vec<f16>, Vec<f16>) = (
        k.iter().map(|&x| f16::from_f32(x)).collect(),
        v.iter().map(|&x| f16::from_f32(x)).collect(),
    );
    let cpu = AttentionParams {
        n_head: c.n_head,
        n_kv_head: c.n_kv_head,
        head_dim: c.head_dim,
        scale,
        softcap: c.softcap,
        sinks: c.sinks.then_some(&sinks[..]),
    };
    let mut want = vec![0.0; got.len()];
    for ((row, qr), dst) in rows
        .iter()
        .zip(q.chunks_exact(qd))
        .zip(want.chunks_exact_mut(qd))
    {
        ops::attention_ext(
            qr,
            &k16,
            &v16,
            row.window.clone(),
            &cpu,
            dst,
            &mut Vec::new(),
        );
    }
    let what = format!(
        "attention {}:{} heads, ctx {}, window {:?}, softcap {:?}, sinks {}",
        c.n_head, c.n_kv_head, c.n_ctx, c.window, c.softcap, c.sinks
    );
    assert_close(&what, &got, &want, 1e-7);
}

#[test]
fn attention_matches_the_cpu_causal_gqa_window_softcap_sinks() {
    let Some(gpu) = gpu() else { return };
    let cases = [
        AttnCase {
            n_head: 4,
            n_kv_head: 4,
            head_dim: 64,
            n_ctx: 1,
            window: None,
            softcap: None,
            sinks: false,
        },
        AttnCase {
            n_head: 8,
            n_kv_head: 2,
            head_dim: 64,
            n_ctx: 130,
            window: None,
            softcap: None,
            sinks: false,
        },
        AttnCase {
            n_head: 4,
            n_kv_head: 1,
            head_dim: 256,
            n_ctx: 70,
            window: Some(16),
            softcap: None,
            sinks: false,
        },
        AttnCase {
            n_head: 2,
            n_kv_head: 1,
            head_dim: 32,
            n_ctx: 90,
            window: None,
            softcap: Some(50.0),
            sinks: true,
        },
    ];
    for c in &cases {
        check_attention(&gpu, c, false);
        // The split kernel at short windows: one chunk, a one-key row, a window inside the chunk.
        check_attention(&gpu, c, true);
    }
}

#[test]
fn attention_split_along_the_keys_matches_the_cpu_at_thousands_of_positions() {
    let Some(gpu) = gpu() else { return };
    let cases = [
        AttnCase {
            n_head: 8,
            n_kv_head: 2,
            head_dim: 64,
            n_ctx: 3000,
            window: None,
            softcap: None,
            sinks: false,
        },
        AttnCase {
            n_head: 4,
            n_kv_head: 1,
            head_dim: 128,
            n_ctx: 2600,
            window: Some(1500),
            softcap: Some(30.0),
            sinks: false,
        },
        AttnCase {
            n_head: 4,
            n_kv_head: 2,
            head_dim: 32,
            n_ctx: 2100,
            window: None,
            softcap: None,
            sinks: true,
        },
    ];
    for c in &cases {
        let last_window = c.window.unwrap_or(c.n_ctx).min(c.n_ctx);
        assert!(
            last_window >= cria_gpu::ATTENTION_SPLIT_KEYS,
            "the last row splits"
        );
        check_attention(&gpu, c, false);
    }
}

/// The formats with an int8 matrix-vector product (activations quantized to 8 bits, `dot4I8Packed`).
const INT8_FORMATS: [GgmlType; 8] = [
    GgmlType::Q8_0,
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q4_K,
    GgmlType::Q5_K,
    GgmlType::Q6_K,
];

fn cpu_matmul(ty: GgmlType, (rows, cols): (usize, usize), data: &[u8], x: &[f32]) -> Vec<f32> {
    let n_tok = x.len() / cols;
    let mut want = vec![0.0; n_tok * rows];
    let wr = WeightRef {
        ty,
        rows,
        cols,
        data,
        layout: Layout::Rows,
    };
    matmul(
        &ThreadPool::new(1),
        &wr,
        x,
        n_tok,
        &mut want,
        &mut Vec::new(),
    );
    want
}

#[test]
fn int8_matvec_matches_the_cpu_quantized_matmul_closer_than_the_f32_path() {
    let Some(gpu) = gpu() else { return };
    // 768 columns: three K-quant super-blocks, so Q6_K's 630-byte rows and Q8_0's 34-byte blocks start at
    // offsets that are not whole words.
    let (rows, cols) = (37, 768);
    for ty in INT8_FORMATS {
        let data = quantized(ty, rows, cols, 61);
        let w = gpu.upload_matrix(ty, rows, cols, &data).expect("upload");
        for n_tok in [1, cria_gpu::INT8_MAX_TOKENS - 1] {
            let x = random(n_tok * cols, 62 + n_tok as u64, 2.0);
            let xb = gpu.upload_f32(&x).expect("x");
            let (y8, yf) = (
                gpu.zeros(n_tok * rows).expect("y"),
                gpu.zeros(n_tok * rows).expect("y"),
            );
            let mut step = gpu.step();
            step.matmul(&w, &xb, n_tok, &y8);
            step.matmul_dequantized(&w, &xb, n_tok, &yf);
            step.submit();
            let want = cpu_matmul(ty, (rows, cols), &data, &x);
            let int8 = nmse(&gpu.read_f32(&y8, want.len()).expect("read"), &want);
            let f32_path = nmse(&gpu.read_f32(&yf, want.len()).expect("read"), &want);
            let what = format!("{ty:?} n_tok {n_tok}: int8 NMSE {int8:e}, f32 path {f32_path:e}");
            // The CPU quantizes activations the same way: only the float sums' order differs.
            eprintln!("{what}");
            assert!(int8 < 1e-10, "{what}");
            assert!(int8 < f32_path / 100.0, "{what}");
        }
    }
}

#[test]
fn quantized_input_is_reused_across_matmuls_until_another_op_writes_it() {
    let Some(gpu) = gpu() else { return };
    let (rows, cols) = (9, 256);
    let (a, b) = (
        quantized(GgmlType::Q4_0, rows, cols, 71),
        quantized(GgmlType::Q4_K, rows, cols, 72),
    );
    let wa = gpu
        .upload_matrix(GgmlType::Q4_0, rows, cols, &a)
        .expect("a");
    let wb = gpu
        .upload_matrix(GgmlType::Q4_K, rows, cols, &b)
        .expect("b");
    let x = random(cols, 73, 1.0);
    let xb = gpu.upload_f32(&x).expect("x");
    let ys: Vec<_> = (0..4).map(|_| gpu.zeros(rows).expect("y")).collect();
    let mut step = gpu.step();
    // Q8_0-rounded input, then Q8_K-rounded (another rounding of the same input), then Q8_0's again; then x
    // scaled in place, which must be quantized anew.
    step.matmul(&wa, &xb, 1, &ys[0]);
    step.matmul(&wb, &xb, 1, &ys[1]);
    step.matmul(&wa, &xb, 1, &ys[2]);
    step.scale(&xb, cols, -3.0);
    step.matmul(&wa, &xb, 1, &ys[3]);
    step.submit();
    let scaled: Vec<f32> = x.iter().map(|v| v * -3.0).collect();
    let wants = [
        cpu_matmul(GgmlType::Q4_0, (rows, cols), &a, &x),
        cpu_matmul(GgmlType::Q4_K, (rows, cols), &b, &x),
        cpu_matmul(GgmlType::Q4_0, (rows, cols), &a, &x),
        cpu_matmul(GgmlType::Q4_0, (rows, cols), &a, &scaled),
    ];
    for (i, (y, want)) in ys.iter().zip(&wants).enumerate() {
        let got = gpu.read_f32(y, rows).expect("read");
        assert_close(&format!("matmul {i} of the step"), &got, want, 1e-10);
    }
}

#[test]
fn steps_reuse_pooled_buffers_and_zeros_are_zero_again() {
    let Some(gpu) = gpu() else { return };
    let (rows, cols) = (16, 256);
    let data = quantized(GgmlType::Q4_K, rows, cols, 81);
    let w = gpu
        .upload_matrix(GgmlType::Q4_K, rows, cols, &data)
        .expect("w");
    let x = random(cols, 82, 1.0);
    let run_step = || {
        let (xb, y) = (gpu.zeros(cols).expect("x"), gpu.zeros(rows).expect("y"));
        assert_eq!(gpu.read_f32(&y, rows).expect("read"), vec![0.0; rows]);
        gpu.write_f32(&xb, &x);
        let mut step = gpu.step();
        step.matmul(&w, &xb, 1, &y);
        step.rms_norm(&y, None, (rows, 1), 1e-6, &y);
        step.submit();
        gpu.read_f32(&y, rows).expect("read")
    };
    let first = run_step();
    let pooled = gpu.pooled_buffers();
    assert!(pooled > 0, "a finished step gives its buffers back");
    // The same step again takes the same buffers (zeroed again, results alike) and the pool does not grow.
    assert_eq!(run_step(), first);
    assert_eq!(gpu.pooled_buffers(), pooled);
}

#[test]
fn reductions_without_subgroups_and_kernels_without_shader_f16_match_the_cpu() {
    let Some(gpu) = gpu() else { return };
    // The default device takes subgroups where the adapter has them (lavapipe does).
    assert_eq!(gpu.uses_subgroups(), gpu.summary().subgroups);
    let fallback = Gpu::open_with(DeviceChoice::Gpu(None), GpuOptions { subgroups: false })
        .expect("the same adapter without subgroups");
    assert!(!fallback.uses_subgroups());
    // f16 travels packed in u32 words: no device is opened with shader-f16, so adapters without it run.
    assert!(!gpu.uses_shader_f16() && !fallback.uses_shader_f16());
    check_rows_ops(&fallback);
    let cases = [
        AttnCase {
            n_head: 8,
            n_kv_head: 2,
            head_dim: 64,
            n_ctx: 130,
            window: Some(40),
            softcap: Some(20.0),
            sinks: true,
        },
        AttnCase {
            n_head: 4,
            n_kv_head: 1,
            head_dim: 64,
            n_ctx: 1100,
            window: None,
            softcap: None,
            sinks: false,
        },
    ];
    for c in &cases {
        check_attention(&fallback, c, false);
        check_attention(&fallback, c, true);
    }
}

#[test]
fn fused_gate_up_activation_matches_the_cpu_and_falls_back_for_mixed_formats() {
    let Some(gpu) = gpu() else { return };
    let (rows, cols) = (37, 512);
    let cases = [
        (GgmlType::Q4_K, GgmlType::Q4_K, GatedAct::Silu),
        (GgmlType::Q4_0, GgmlType::Q4_0, GatedAct::Gelu),
        (GgmlType::Q6_K, GgmlType::Q6_K, GatedAct::Silu),
        // Mixed formats: two matmuls and the element-wise op.
        (GgmlType::Q4_K, GgmlType::Q6_K, GatedAct::Gelu),
    ];
    for (gate_ty, up_ty, act) in cases {
        let (g, u) = (
            quantized(gate_ty, rows, cols, 91),
            quantized(up_ty, rows, cols, 92),
        );
        let gw = gpu.upload_matrix(gate_ty, rows, cols, &g).expect("gate");
        let uw = gpu.upload_matrix(up_ty, rows, cols, &u).expect("up");
        for n_tok in [1, 5] {
            let x = random(n_tok * cols, 93, 1.0);
            let (xb, out) = (
                gpu.upload_f32(&x).expect("x"),
                gpu.zeros(n_tok * rows).expect("out"),
            );
            let mut step = gpu.step();
            step.matmul_gated((&gw, &uw), &xb, n_tok, act, &out);
            step.submit();
            let got = gpu.read_f32(&out, n_tok * rows).expect("read");
            let gate = cpu_matmul(gate_ty, (rows, cols), &g, &x);
            let up = cpu_matmul(up_ty, (rows, cols), &u, &x);
            let mut want = vec![0.0; n_tok * rows];
            match act {
                GatedAct::Silu => ops::silu_mul(&gate, &up, &mut want),
                GatedAct::Gelu => ops::gelu_mul(&gate, &up, &mut want),
            }
            let what = format!("gated {gate_ty:?}/{up_ty:?} {act:?} n_tok {n_tok}");
            assert_close(&what, &got, &want, 1e-6);
        }
    }
}
