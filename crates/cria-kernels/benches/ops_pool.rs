//! The thread pool against rayon on decode's workload: fork/join of an empty loop, single matvecs of the
//! smollm2-135m shapes, and one token's worth of them back to back (30 layers × 7 matvecs).
//!
//! Variants are measured interleaved, round after round, keeping each one's best round: on a shared
//! machine load comes and goes, and this way every variant sees the same weather.
//!
//! `cargo bench -p cria-kernels --bench ops_pool` (set `CRIA_ISA` to pick the dot-product path).

use std::hint::black_box;
use std::time::{Duration, Instant};

use cria_kernels::matmul::{WeightRef, matmul};
use cria_kernels::packed::Layout;
use cria_kernels::pool::ThreadPool;
use cria_kernels::quant::{activation_type, quantize_activation, quantize_row};
use cria_kernels::{GgmlType, dot};
use rayon::prelude::*;

type Variant<'a> = (String, Box<dyn FnMut() + 'a>);

/// µs per call of each variant: best of `rounds` interleaved batches of `iters` calls.
fn compare(rounds: usize, iters: usize, variants: &mut [Variant]) -> Vec<f64> {
    let mut best = vec![f64::INFINITY; variants.len()];
    for _ in 0..rounds {
        for (i, (_, f)) in variants.iter_mut().enumerate() {
            let t = Instant::now();
            for _ in 0..iters {
                f();
            }
            best[i] = best[i].min(t.elapsed().as_secs_f64() * 1e6 / iters as f64);
        }
    }
    best
}

struct Mat {
    rows: usize,
    cols: usize,
    data: Vec<u8>,
}

fn weights(ty: GgmlType, rows: usize, cols: usize, seed: usize) -> Mat {
    let rb = ty.row_bytes(cols).expect("whole blocks");
    let mut data = vec![0u8; rows * rb];
    let src: Vec<f32> = (0..cols)
        .map(|i| (((i * 7919 + seed * 31) % 1000) as f32 / 500.0) - 1.0)
        .collect();
    for dst in data.chunks_exact_mut(rb) {
        quantize_row(ty, &src, dst).expect("quantize");
    }
    Mat { rows, cols, data }
}

/// The same split as `matmul`'s decode path, driven by rayon.
fn rayon_matvec(
    rp: &rayon::ThreadPool,
    ty: GgmlType,
    m: &Mat,
    x: &[f32],
    act: &mut [u8],
    y: &mut [f32],
) {
    let at = activation_type(ty);
    let act = &mut act[..at.row_bytes(m.cols).expect("blocks")];
    quantize_activation(at, x, act);
    let chunk = m
        .rows
        .div_ceil(4 * rp.current_num_threads())
        .next_multiple_of(16)
        .max(16);
    let act = &*act;
    rp.install(|| {
        y.par_chunks_mut(chunk).enumerate().for_each(|(t, out)| {
            let r0 = t * chunk;
            dot::matvec_rows(ty, &m.data, m.cols, act, r0..r0 + out.len(), out);
        })
    });
}

fn cria_matvec(
    pool: &ThreadPool,
    ty: GgmlType,
    m: &Mat,
    x: &[f32],
    scratch: &mut Vec<u8>,
    y: &mut [f32],
) {
    let w = WeightRef {
        ty,
        rows: m.rows,
        cols: m.cols,
        data: &m.data,
        layout: Layout::Rows,
    };
    matmul(pool, &w, x, 1, y, scratch);
}

fn main() {
    let ty = GgmlType::Q4_1;
    let n = std::thread::available_parallelism().map_or(2, |n| n.get());
    let one = ThreadPool::new(1);
    let spins = [0u64, 50, 1000];
    let pools: Vec<ThreadPool> = spins
        .iter()
        .map(|&us| ThreadPool::with_spin(n, Duration::from_micros(us)))
        .collect();
    let rp = rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build()
        .expect("rayon pool");
    println!(
        "isa {:?}, {n} threads, weights {ty:?}; best of interleaved rounds, µs\n",
        cria_kernels::isa::active()
    );
    let names: Vec<String> = ["1 thread".to_string()]
        .into_iter()
        .chain(spins.iter().map(|us| format!("cria spin {us}µs")))
        .chain(["rayon".to_string()])
        .collect();
    println!("| workload | {} |", names.join(" | "));
    println!("|---|{}", "---:|".repeat(names.len()));

    let mut v: Vec<Variant> = vec![(
        "1 thread".into(),
        Box::new(|| {
            (0..n).for_each(|i| {
                black_box(i);
            })
        }),
    )];
    for p in &pools {
        v.push((
            String::new(),
            Box::new(move || {
                p.run(n, &|i| {
                    black_box(i);
                })
            }),
        ));
    }
    v.push((
        String::new(),
        Box::new(|| {
            rp.install(|| {
                (0..n).into_par_iter().for_each(|i| {
                    black_box(i);
                })
            })
        }),
    ));
    row(
        &format!("fork/join, {n} empty tasks"),
        &compare(15, 2000, &mut v),
    );

    let shapes = [
        (576, 576),
        (192, 576),
        (1536, 576),
        (576, 1536),
        (49152, 576),
    ];
    for (i, &(rows, cols)) in shapes.iter().enumerate() {
        let m = weights(ty, rows, cols, i);
        let x: Vec<f32> = (0..cols).map(|j| (j as f32 * 0.01).sin()).collect();
        let iters = (400_000 / (rows * cols / 64)).clamp(3, 2000);
        let bufs = std::cell::RefCell::new((vec![0.0f32; rows], Vec::new(), vec![0u8; 4096]));
        let mut v: Vec<Variant> = Vec::new();
        for p in std::iter::once(&one).chain(&pools) {
            let (m, x, b) = (&m, &x, &bufs);
            v.push((
                String::new(),
                Box::new(move || {
                    let (y, s, _) = &mut *b.borrow_mut();
                    cria_matvec(p, ty, m, x, s, y)
                }),
            ));
        }
        let (m2, x2, b2, rp2) = (&m, &x, &bufs, &rp);
        v.push((
            String::new(),
            Box::new(move || {
                let (y, _, a) = &mut *b2.borrow_mut();
                rayon_matvec(rp2, ty, m2, x2, a, y)
            }),
        ));
        row(
            &format!("matvec {rows}x{cols}"),
            &compare(15, iters, &mut v),
        );
    }

    // One decode token of smollm2-135m's 30 layers: q, k, v, o, gate, up, down.
    let layer = [
        (576, 576),
        (192, 576),
        (192, 576),
        (576, 576),
        (1536, 576),
        (1536, 576),
        (576, 1536),
    ];
    let mats: Vec<Mat> = layer
        .iter()
        .enumerate()
        .map(|(i, &(r, c))| weights(ty, r, c, i))
        .collect();
    let x: Vec<f32> = (0..1536).map(|j| (j as f32 * 0.01).cos()).collect();
    let bufs = std::cell::RefCell::new((vec![0.0f32; 1536], Vec::new(), vec![0u8; 4096]));
    let mut v: Vec<Variant> = Vec::new();
    for p in std::iter::once(&one).chain(&pools) {
        let (mats, x, b) = (&mats, &x, &bufs);
        v.push((
            String::new(),
            Box::new(move || {
                let (y, s, _) = &mut *b.borrow_mut();
                for _ in 0..30 {
                    for m in mats {
                        cria_matvec(p, ty, m, &x[..m.cols], s, &mut y[..m.rows]);
                    }
                }
            }),
        ));
    }
    let (mats2, x2, b2, rp2) = (&mats, &x, &bufs, &rp);
    v.push((
        String::new(),
        Box::new(move || {
            let (y, _, a) = &mut *b2.borrow_mut();
            for _ in 0..30 {
                for m in mats2 {
                    rayon_matvec(rp2, ty, m, &x2[..m.cols], a, &mut y[..m.rows]);
                }
            }
        }),
    ));
    row(
        "one smollm2 token: 30 layers x 7 matvecs",
        &compare(15, 1, &mut v),
    );
}

fn row(name: &str, us: &[f64]) {
    let cells: Vec<String> = us.iter().map(|t| format!("{t:.1}")).collect();
    println!("| {name} | {} |", cells.join(" | "));
}
