//! Kernel microbenchmarks on the process's ISA (`CRIA_ISA` forces one), all threads:
//! - the machine's read bandwidth (the roofline of decode);
//! - matvec GB/s per weight format on ~96 MB matrices (model-sized), as % of that roofline, and for Q4_0 /
//!   Q4_K in the 8-row repacked layout the loader gives them on x86-64 too;
//! - GEMM GFLOP/s per format (1024 x 4096 weights, 64 tokens);
//! - the small ops at the test models' shapes.
//!
//! `CRIA_ISA=avx2 cargo bench -p cria-kernels --bench ops_kernels` prints markdown tables
//! (`-- --formats Q4_0,IQ4_XS` for some formats only).

use std::hint::black_box;
use std::time::Instant;

use cria_kernels::GgmlType;
use cria_kernels::matmul::{WeightRef, matmul};
use cria_kernels::ops::{self, AttentionParams, CausalBatch, RopeParams, RopeStyle};
use cria_kernels::packed::{self, Layout};
use cria_kernels::pool::ThreadPool;
use cria_kernels::quant::iq_blocks::random_blocks;
use cria_kernels::quant::{is_read_only, quantize_row};
use half::f16;

/// Best-of-`reps` seconds for one call of `f`.
fn best_s(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

/// Best-of-7-batches µs per call (the minimum: this machine is shared, noise only adds).
fn median_us(iters: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut v: Vec<f64> = (0..7)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..iters {
                f();
            }
            t.elapsed().as_secs_f64() * 1e6 / iters as f64
        })
        .collect();
    v.sort_by(f64::total_cmp);
    v[0]
}

/// Read bandwidth in GB/s: every thread sums its share of a 1 GiB buffer.
fn read_bandwidth(pool: &ThreadPool) -> f64 {
    let buf: Vec<u64> = (0..(1usize << 27)).map(|i| i as u64).collect();
    let chunk = buf.len().div_ceil(pool.n_threads() * 8);
    let s = best_s(5, || {
        pool.for_each_range(buf.len(), chunk, &|r| {
            let mut acc = [0u64; 8];
            for c in buf[r].chunks_exact(8) {
                for k in 0..8 {
                    acc[k] = acc[k].wrapping_add(c[k]);
                }
            }
            black_box(acc);
        })
    });
    (buf.len() * 8) as f64 / s / 1e9
}

/// `rows x cols` of `ty`: 64 distinct quantized rows, repeated (random blocks with sane scales for the formats
/// Cria does not quantize to).
fn matrix(ty: GgmlType, rows: usize, cols: usize) -> Vec<u8> {
    let rb = ty.row_bytes(cols).expect("whole blocks");
    let tile = if is_read_only(ty) {
        random_blocks(ty, 64 * cols / ty.block_size(), 7)
    } else {
        let mut tile = vec![0u8; 64 * rb];
        for (r, dst) in tile.chunks_exact_mut(rb).enumerate() {
            let src: Vec<f32> = (0..cols)
                .map(|i| (((i * 7919 + r * 104_729) % 2001) as f32 / 1000.0) - 1.0)
                .collect();
            quantize_row(ty, &src, dst).expect("quantize");
        }
        tile
    };
    let mut data = Vec::with_capacity(rows * rb);
    while data.len() < rows * rb {
        data.extend_from_slice(&tile[..(rows * rb - data.len()).min(tile.len())]);
    }
    data
}

/// `--formats Q4_0,IQ4_XS,...` picks formats (all when absent).
fn chosen_formats() -> Vec<GgmlType> {
    let args: Vec<String> = std::env::args().collect();
    let Some(i) = args.iter().position(|a| a == "--formats") else {
        return GgmlType::ALL.to_vec();
    };
    let names: Vec<&str> = args.get(i + 1).map_or(vec![], |s| s.split(',').collect());
    GgmlType::ALL
        .into_iter()
        .filter(|t| names.contains(&t.name()))
        .collect()
}

fn formats(pool: &ThreadPool, roof: f64) {
    println!("| format | matvec GB/s | % of roofline | GEMM GFLOP/s |");
    println!("|---|---:|---:|---:|");
    for ty in chosen_formats() {
        format_row(pool, roof, ty, Layout::Rows);
        // Q4_0 / Q4_K as the model loader repacks them on x86-64 (8-row groups)
        if packed::packs(ty, 1024, 4096) {
            format_row(pool, roof, ty, Layout::Groups8);
        }
    }
}

/// One row of [`formats`]: `ty`'s matvec and GEMM in `layout`.
fn format_row(pool: &ThreadPool, roof: f64, ty: GgmlType, layout: Layout) {
    let cols = 4096;
    let rb = ty.row_bytes(cols).expect("blocks");
    let rows = (96 << 20) / rb / packed::GROUP * packed::GROUP;
    let mut data = matrix(ty, rows, cols);
    if layout == Layout::Groups8 {
        data = packed::pack(ty, rows, cols, &data).expect("pack");
    }
    let w = WeightRef {
        ty,
        rows,
        cols,
        data: &data,
        layout,
    };
    let x: Vec<f32> = (0..cols).map(|i| (i as f32 * 0.37).sin()).collect();
    let mut y = vec![0.0f32; rows];
    let mut scratch = Vec::new();
    let s = best_s(10, || matmul(pool, &w, &x, 1, &mut y, &mut scratch));
    let gbs = (rows * rb) as f64 / s / 1e9;
    let (g_rows, n_tok) = (1024, 64);
    let g_bytes = match layout {
        Layout::Rows => g_rows * rb,
        Layout::Groups8 => packed::packed_len(ty, g_rows, cols).expect("packed"),
    };
    let wg = WeightRef {
        ty,
        rows: g_rows,
        cols,
        data: &data[..g_bytes],
        layout,
    };
    let xs: Vec<f32> = (0..n_tok * cols).map(|i| (i as f32 * 0.11).cos()).collect();
    let mut ys = vec![0.0f32; n_tok * g_rows];
    let sg = best_s(3, || matmul(pool, &wg, &xs, n_tok, &mut ys, &mut scratch));
    let gflops = 2.0 * (g_rows * cols * n_tok) as f64 / sg / 1e9;
    let name = match layout {
        Layout::Rows => ty.name().to_string(),
        Layout::Groups8 => format!("{} (repacked)", ty.name()),
    };
    println!(
        "| {name} | {gbs:.1} | {:.0}% | {gflops:.1} |",
        100.0 * gbs / roof
    );
}

fn small_ops(pool: &ThreadPool) {
    println!("\n| op (shape) | µs |\n|---|---:|");
    let row = |n: usize| {
        (0..n)
            .map(|i| (i as f32 * 0.013).sin() * 3.0)
            .collect::<Vec<f32>>()
    };
    let (x576, w576, mut o576) = (row(576), row(576), vec![0.0; 576]);
    let t = median_us(20_000, || ops::rms_norm(&x576, &w576, 1e-5, &mut o576));
    println!("| rms_norm (576) | {t:.3} |");
    let (g, u, mut o) = (row(1536), row(1536), vec![0.0; 1536]);
    let t = median_us(20_000, || ops::silu_mul(&g, &u, &mut o));
    println!("| silu_mul (1536) | {t:.3} |");
    let t = median_us(20_000, || ops::gelu_mul(&g, &u, &mut o));
    println!("| gelu_mul (1536) | {t:.3} |");
    let mut q = row(9 * 64);
    let rp = RopeParams::new(RopeStyle::Normal, 64, 100_000.0);
    let t = median_us(20_000, || ops::rope_inplace(&mut q, 9, 64, 77, &rp));
    println!("| rope (9 heads x 64) | {t:.3} |");
    let mut sm = row(1024);
    let t = median_us(20_000, || ops::softmax_inplace(&mut sm));
    println!("| softmax (1024) | {t:.3} |");
    for (name, nh, nkv, hd) in [("smollm2", 9, 3, 64), ("gemma3", 4, 1, 256)] {
        let ctx = 512;
        let p = AttentionParams {
            n_head: nh,
            n_kv_head: nkv,
            head_dim: hd,
            scale: 0.125,
            softcap: None,
            sinks: None,
        };
        let kv: Vec<f16> = row(ctx * nkv * hd)
            .iter()
            .map(|&v| f16::from_f32(v))
            .collect();
        let q = row(nh * hd);
        let (mut out, mut scratch) = (vec![0.0; nh * hd], Vec::new());
        let t = median_us(500, || {
            ops::attention_ext(&q, &kv, &kv, 0..ctx, &p, &mut out, &mut scratch)
        });
        println!(
            "| attention, 1 token vs {ctx} cached ({name}: {nh}/{nkv} heads x {hd}) | {t:.1} |"
        );
        let n = 128;
        let b = CausalBatch {
            first_pos: ctx - n,
            n_tokens: n,
            sliding_window: None,
        };
        let qs = row(n * nh * hd);
        let mut outs = vec![0.0; n * nh * hd];
        let t = median_us(5, || {
            ops::attention_batch(pool, &qs, &kv, &kv, &b, &p, &mut outs)
        });
        println!(
            "| attention_batch, {n} tokens at {}..{ctx} ({name}, {} threads) | {t:.0} |",
            ctx - n,
            pool.n_threads()
        );
    }
}

/// Attention through a paged cache (16-row blocks, in reverse order in the pool) against the same rows flat:
/// one decode token per sequence for 8 sequences at 2,048 positions, and a 128-token prefill chunk.
fn paged_attention(pool: &ThreadPool) {
    let row = |n: usize| {
        (0..n)
            .map(|i| (i as f32 * 0.013).sin() * 3.0)
            .collect::<Vec<f32>>()
    };
    let (nh, nkv, hd, ctx, bs) = (9, 3, 64, 2048, 16);
    let p = AttentionParams {
        n_head: nh,
        n_kv_head: nkv,
        head_dim: hd,
        scale: 0.125,
        softcap: None,
        sinks: None,
    };
    let kv: Vec<f16> = row(ctx * nkv * hd)
        .iter()
        .map(|&v| f16::from_f32(v))
        .collect();
    let table: Vec<u32> = (0..(ctx / bs) as u32).rev().collect();
    let mut pooled = vec![f16::ZERO; kv.len()];
    for (b, &at) in table.iter().enumerate() {
        let (src, dst) = (b * bs * nkv * hd, at as usize * bs * nkv * hd);
        pooled[dst..dst + bs * nkv * hd].copy_from_slice(&kv[src..src + bs * nkv * hd]);
    }
    let flat = |_| ops::KvView::contiguous(&kv, &kv);
    let paged = |_| ops::KvView::paged(&pooled, &pooled, &table, bs);
    let in_order: Vec<u32> = (0..(ctx / bs) as u32).collect();
    let paged_in_order = |_: usize| ops::KvView::paged(&kv, &kv, &in_order, bs);
    for (what, n_rows, first) in [
        ("decode, 8 sequences", 8, ctx - 1),
        ("prefill chunk", 128, ctx - 128),
    ] {
        let rows: Vec<ops::QueryRow> = (0..n_rows)
            .map(|i| {
                let pos = if n_rows == 8 { first } else { first + i };
                ops::QueryRow::causal(i % 8, pos, None)
            })
            .collect();
        let q = row(n_rows * nh * hd);
        let mut out = vec![0.0; q.len()];
        let reps = if n_rows == 8 { 200 } else { 10 };
        let t_flat = median_us(reps, || {
            ops::attention_rows(pool, &q, &rows, &flat, &p, &mut out)
        });
        let t_paged = median_us(reps, || {
            ops::attention_rows(pool, &q, &rows, &paged, &p, &mut out)
        });
        let t_in_order = median_us(reps, || {
            ops::attention_rows(pool, &q, &rows, &paged_in_order, &p, &mut out)
        });
        println!(
            "| attention {what} at {ctx} (smollm2 heads), flat / by {bs}: scattered, adjacent | {t_flat:.0} / {t_paged:.0}, {t_in_order:.0} |"
        );
    }
}

fn main() {
    let n = std::thread::available_parallelism().map_or(2, |n| n.get());
    let pool = ThreadPool::new(n);
    let isa = cria_kernels::isa::active();
    let roof = read_bandwidth(&pool);
    println!(
        "isa {isa:?} ({:?} op kernels), {n} threads, read bandwidth {roof:.1} GB/s (1 GiB, all threads)\n",
        ops::simd::testing::active_isa()
    );
    if std::env::args().any(|a| a == "--paged-only") {
        paged_attention(&pool);
        return;
    }
    if std::env::args().any(|a| a == "--ops-only") {
        small_ops(&pool);
        paged_attention(&pool);
        return;
    }
    formats(&pool, roof);
    small_ops(&pool);
}
