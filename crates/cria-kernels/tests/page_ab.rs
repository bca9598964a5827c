//! Does decode read weights faster from 2 MiB pages? An in-process A/B on one thread (ignored by default;
//! timings, not a check):
//! `cargo test --release -p cria-kernels --test page_ab -- --ignored --nocapture`.
//!
//! The one-token kernels (`dot::matvec_rows` for Q8_0, `packed::matmul_rows_with` at one token for the repacked
//! Q4_0 groups) sweep the same ~1 GiB of a 1B-shape model's layer matrices, once per "token", from
//! (a) a plain `Vec` (4 KiB anonymous pages: THP mode `madvise` does not give a `Vec` huge pages),
//! (b) a 2 MiB-aligned anonymous mapping advised `MADV_HUGEPAGE` (its `AnonHugePages` in /proc/self/smaps is
//! printed to show the pages were granted), and, for Q8_0, (c) the GGUF's own read-only file map (4 KiB
//! page-cache pages; what the loader reads the not-repacked weights through). The cases alternate round by
//! round; each sweep is timed in this thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`), so time the loaded
//! machine spends on other processes is not counted. GB/s = weight bytes / CPU seconds.
//!
//! Result on the shared 2-core AMD EPYC (Zen 4, AVX-512 path; three builds beside it, load average ~6;
//! 2026-12-07), CPU-time GB/s median of 24 sweeps, two runs:
//!
//! | weights                          | (a) Vec 4 KiB | (b) MADV_HUGEPAGE | (c) file map |
//! |----------------------------------|---------------|-------------------|--------------|
//! | Q8_0 matvec, 1034 MB             | 26.5 / 22.6   | 28.8 / 28.5       | 25.6 / 25.2  |
//! | Q4_0 repacked gemv, 547 MB       | 27.1 / 25.1   | 31.5 / 32.0       | -            |
//!
//! Huge pages: +9% / +26% (Q8_0), +16% / +27% (Q4_0); the file map reads like a `Vec`. Hence
//! `cria_kernels::pages` and the loader's copy on 2 MiB pages (cria-model `weights::resident_copy`).

use std::time::Instant;

use cria_gguf::{GgufFile, TensorInfo};
use cria_kernels::GgmlType;
use cria_kernels::isa;
use cria_kernels::pages::{self, HugeBytes};
use cria_kernels::quant::{activation_type, quantize_activation};

/// Stop adding matrices past this many bytes (both files' layer matrices are larger).
const BUDGET: usize = 1 << 30;

/// This thread's CPU time in seconds.
fn thread_cpu_s() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for the call to fill.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0);
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// One matrix of the sweep: where it sits in the copies, its bytes in the file, its shape.
struct Mat {
    at: usize,
    info: TensorInfo,
    rows: usize,
    cols: usize,
}

/// The file's 2-D layer matrices of type `ty` (not the embedding table: decode reads one row of it), up to
/// BUDGET bytes, laid end to end with each matrix's size in `len(info)` bytes.
fn pick(file: &GgufFile, ty: GgmlType, len: impl Fn(&TensorInfo) -> usize) -> (Vec<Mat>, usize) {
    let mut mats = Vec::new();
    let mut at = 0;
    for info in file.tensors() {
        if info.ty != ty || info.shape.len() != 2 || info.name.starts_with("token_embd") {
            continue;
        }
        let (cols, rows) = (info.shape[0] as usize, info.shape[1] as usize);
        if at + len(info) > BUDGET {
            break;
        }
        mats.push(Mat {
            at,
            info: info.clone(),
            rows,
            cols,
        });
        at += len(info);
    }
    (mats, at)
}

/// One activation row per distinct column count, quantized for `ty`.
fn activation(ty: GgmlType, cols: usize) -> Vec<u8> {
    let at = activation_type(ty);
    let x: Vec<f32> = (0..cols).map(|i| (i as f32 * 0.37).sin()).collect();
    let mut a = vec![0u8; at.row_bytes(cols).expect("activation row")];
    quantize_activation(at, &x, &mut a);
    a
}

/// Alternates the cases `rounds` times, `per` sweeps each; prints min / median GB/s per CPU-second and the
/// best wall-clock GB/s.
fn race(title: &str, bytes: usize, cases: &[(&str, &dyn Fn() -> f64)], rounds: usize, per: usize) {
    let mut cpu: Vec<Vec<f64>> = vec![Vec::new(); cases.len()];
    let mut wall = vec![f64::MAX; cases.len()];
    for (_, sweep) in cases {
        sweep(); // touch every page once (faults, page cache) before timing
    }
    for _ in 0..rounds {
        for (i, (_, sweep)) in cases.iter().enumerate() {
            for _ in 0..per {
                let t = Instant::now();
                cpu[i].push(sweep());
                wall[i] = wall[i].min(t.elapsed().as_secs_f64());
            }
        }
    }
    println!(
        "{title}: {:.0} MB per sweep, {rounds} rounds x {per} sweeps, one thread, isa {:?}",
        bytes as f64 / 1e6,
        isa::active()
    );
    for (i, (name, _)) in cases.iter().enumerate() {
        let mut s = cpu[i].clone();
        s.sort_by(f64::total_cmp);
        let gb = |t: f64| bytes as f64 / t / 1e9;
        println!(
            "  {name:<28} CPU-time GB/s best {:5.1}  median {:5.1}  worst {:5.1} | wall best {:5.1}",
            gb(s[0]),
            gb(s[s.len() / 2]),
            gb(s[s.len() - 1]),
            gb(wall[i])
        );
    }
}

fn model(name: &str) -> Option<GgufFile> {
    let home = std::env::var("HOME").ok()?;
    let path = format!("{home}/.cache/cria-bench/llama-3.2-1b-shape-{name}.gguf");
    GgufFile::open(&path)
        .map_err(|e| println!("skipping {name}: {e}"))
        .ok()
}

fn report_pages(name: &str, bytes: &[u8]) {
    println!("  {name}: AnonHugePages {} kB", pages::huge_kb(bytes));
}

#[test]
#[ignore]
fn q8_0_decode_from_vec_huge_pages_and_file_map() {
    let Some(file) = model("q8_0") else { return };
    let ty = GgmlType::Q8_0;
    let (mats, total) = pick(&file, ty, |i| i.n_bytes as usize);
    let mut plain = vec![0u8; total];
    let mut huge = HugeBytes::zeroed(total).expect("mmap");
    for m in &mats {
        let src = file.tensor_data(&m.info);
        plain[m.at..m.at + src.len()].copy_from_slice(src);
        huge[m.at..m.at + src.len()].copy_from_slice(src);
    }
    report_pages("vec", &plain);
    report_pages("huge", &huge);
    let acts: Vec<(usize, Vec<u8>)> = [2048, 8192].map(|c| (c, activation(ty, c))).to_vec();
    let act = |cols: usize| &acts.iter().find(|(c, _)| *c == cols).expect("cols").1;
    let mut out = vec![0f32; 1 << 17];
    let out = std::cell::RefCell::new(&mut out);
    let kernel = |w: &[u8], m: &Mat| {
        let mut o = out.borrow_mut();
        cria_kernels::dot::matvec_rows(ty, w, m.cols, act(m.cols), 0..m.rows, &mut o[..m.rows]);
    };
    let sweep_copy = |buf: &[u8]| {
        let t = thread_cpu_s();
        for m in &mats {
            kernel(&buf[m.at..m.at + m.info.n_bytes as usize], m);
        }
        thread_cpu_s() - t
    };
    let sweep_map = || {
        let t = thread_cpu_s();
        for m in &mats {
            kernel(file.tensor_data(&m.info), m);
        }
        thread_cpu_s() - t
    };
    let (a, b) = (|| sweep_copy(&plain), || sweep_copy(&huge));
    let cases: [(&str, &dyn Fn() -> f64); 3] = [
        ("(a) Vec, 4 KiB pages", &a),
        ("(b) anon, MADV_HUGEPAGE", &b),
        ("(c) file map (page cache)", &sweep_map),
    ];
    race("Q8_0 one-token matvec", total, &cases, 8, 3);
    report_pages("huge after", &huge);
}

#[test]
#[ignore]
fn q4_0_repacked_decode_from_vec_and_huge_pages() {
    let Some(file) = model("q4_0") else { return };
    let ty = GgmlType::Q4_0;
    let packed_len = |i: &TensorInfo| {
        cria_kernels::packed::packed_len(ty, i.shape[1] as usize, i.shape[0] as usize).unwrap_or(0)
    };
    let (mats, total) = pick(&file, ty, packed_len);
    let mats: Vec<Mat> = mats
        .into_iter()
        .filter(|m| cria_kernels::packed::packs(ty, m.rows, m.cols))
        .collect();
    let mut plain = vec![0u8; total];
    let mut huge = HugeBytes::zeroed(total).expect("mmap");
    for m in &mats {
        let p = cria_kernels::packed::pack(ty, m.rows, m.cols, file.tensor_data(&m.info))
            .expect("pack");
        plain[m.at..m.at + p.len()].copy_from_slice(&p);
        huge[m.at..m.at + p.len()].copy_from_slice(&p);
    }
    let bytes: usize = mats.iter().map(|m| packed_len(&m.info)).sum();
    report_pages("vec", &plain);
    report_pages("huge", &huge);
    let acts: Vec<(usize, Vec<u8>)> = [2048, 8192].map(|c| (c, activation(ty, c))).to_vec();
    let act = |cols: usize| &acts.iter().find(|(c, _)| *c == cols).expect("cols").1;
    let out = std::cell::RefCell::new(vec![0f32; 1 << 17]);
    let sweep = |buf: &[u8]| {
        let t = thread_cpu_s();
        for m in &mats {
            let w = &buf[m.at..m.at + packed_len(&m.info)];
            let mut o = out.borrow_mut();
            cria_kernels::packed::matmul_rows_with(
                isa::active(),
                ty,
                w,
                m.cols,
                act(m.cols),
                1,
                0..m.rows,
                &mut o[..m.rows],
                m.rows,
            );
        }
        thread_cpu_s() - t
    };
    let (a, b) = (|| sweep(&plain), || sweep(&huge));
    let cases: [(&str, &dyn Fn() -> f64); 2] = [
        ("(a) Vec, 4 KiB pages", &a),
        ("(b) anon, MADV_HUGEPAGE", &b),
    ];
    race("Q4_0 repacked one-token gemv", bytes, &cases, 8, 3);
    report_pages("huge after", &huge);
}
