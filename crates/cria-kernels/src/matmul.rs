//! The multi-threaded matmul driver: `y = x · Wᵀ` for a quantized weight matrix `W`.
//!
//! It quantizes the activations once into the format the weight's dot product wants
//! ([`quant::activation_type`]), then splits the work across the pool:
//! - decode (`n_tok == 1`): weight rows in shrinking chunks ([`pool::guided_bounds`](crate::pool::guided_bounds),
//!   multiples of 16 rows) so uneven threads balance, each through [`dot::matvec_rows`];
//! - prefill (`n_tok > 1`), where there are tokens for [`TASKS_PER_THREAD`] tasks of at least [`TOK_BLOCK`]
//!   tokens per thread: every weight row × a block of tokens per task (cut into [`TOKEN_TASKS_PER_THREAD`]
//!   tasks per thread) through [`dot::matmul_rows`], written
//!   straight into `y` (a block of tokens is one contiguous run of `y`); each call prepares its tokens'
//!   activations once for all the rows, and the weights stay in cache from task to task.
//! - prefill with fewer tokens: tiles of [`ROW_BLOCK`]..[`ROW_BLOCK_MAX`] weight rows × [`TOK_BLOCK`] tokens;
//!   consecutive tasks share a row block, so threads work on weights that are hot in cache. Each tile is
//!   computed into a small per-thread buffer and copied into `y`.

use std::cell::RefCell;
use std::ops::Range;

use crate::GgmlType;
use crate::dot;
use crate::packed::{self, Layout};
use crate::pool::{SharedMut, ThreadPool};
use crate::quant::{self, activation_type};

/// Weight rows per prefill tile, at least.
pub const ROW_BLOCK: usize = 64;
/// Weight rows per prefill tile where there are enough tiles for the threads: a kernel call prepares each
/// token's activations once (the AVX-512 GEMM's per-token prepass), so more rows per call pay for it better
/// (+10-20% GEMM GFLOP/s there; the 256-bit kernels are indifferent).
pub const ROW_BLOCK_MAX: usize = 256;
/// Tokens per prefill tile, and per token task at the least.
pub const TOK_BLOCK: usize = 64;
/// Tokens per token task at the most.
pub const TOK_BLOCK_MAX: usize = 256;
/// Tasks per thread the prefill split aims for, so that uneven threads still balance.
pub const TASKS_PER_THREAD: usize = 4;
/// Tasks per thread of the token split ([`gemm_tokens`]): two, not [`TASKS_PER_THREAD`], because every task
/// reads (and the row-major K-quant GEMM unpacks) the whole matrix once for its tokens, so halving the tasks
/// halves that work: 1B-shape pp512 on 2 threads, 128 tokens a task instead of 64, measured 5-8% less CPU
/// time native (Q4_K_M, Q8_0) and no worse under `avx2-novnni` (loaded Zen 5, alternated runs).
pub const TOKEN_TASKS_PER_THREAD: usize = 2;
/// Activation elements below which quantizing is not worth a fork/join.
const PAR_QUANT_MIN: usize = 1 << 14;

/// A weight matrix: `rows` rows of `cols` elements of `ty`, row-major as stored in GGUF
/// ([`Layout::Rows`]) or repacked at load into 8-row groups ([`Layout::Groups8`], [`packed`]).
#[derive(Clone, Copy, Debug)]
pub struct WeightRef<'a> {
    pub ty: GgmlType,
    pub rows: usize,
    pub cols: usize,
    pub data: &'a [u8],
    pub layout: Layout,
}

impl WeightRef<'_> {
    /// Bytes per row, if `cols` is a whole number of blocks.
    pub fn row_bytes(&self) -> Option<usize> {
        self.ty.row_bytes(self.cols)
    }
}

/// For `n_tok` activation rows already quantized to [`activation_type`]`(w.ty)` and stored back to back:
/// `out[t * out_stride + i]` = dot(weight row `rows.start + i`, activation row t), single-threaded, on the
/// active path and in the order of `w`'s layout (one token through the decode kernels, more through the
/// tiled ones: the same bits either way).
pub fn matmul_rows(
    w: &WeightRef,
    acts: &[u8],
    n_tok: usize,
    rows: Range<usize>,
    out: &mut [f32],
    out_stride: usize,
) {
    match w.layout {
        Layout::Groups8 => packed::matmul_rows_with(
            crate::isa::active(),
            w.ty,
            w.data,
            w.cols,
            acts,
            n_tok,
            rows,
            out,
            out_stride,
        ),
        Layout::Rows if n_tok == 1 => dot::matvec_rows(w.ty, w.data, w.cols, acts, rows, out),
        Layout::Rows => dot::matmul_rows(w.ty, w.data, w.cols, acts, n_tok, rows, out, out_stride),
    }
}

/// `y (n_tok × w.rows) = x (n_tok × w.cols) · Wᵀ`, both row-major. `scratch` holds the quantized activations
/// and is reused across calls (it only grows).
///
/// # Panics
/// If the shapes disagree (`x`, `y` or `w.data` of the wrong size, `w.cols` not a whole number of blocks):
/// a caller's bug, as tensor sizes from files are validated before they reach a kernel.
pub fn matmul(
    pool: &ThreadPool,
    w: &WeightRef,
    x: &[f32],
    n_tok: usize,
    y: &mut [f32],
    scratch: &mut Vec<u8>,
) {
    check(w, x.len(), n_tok, y.len());
    if n_tok == 0 || w.rows == 0 {
        return;
    }
    let acts = quantize_acts(pool, w, x, n_tok, scratch);
    if n_tok == 1 {
        matvec(pool, w, acts, y);
    } else {
        gemm(pool, w, acts, n_tok, y);
    }
}

fn check(w: &WeightRef, x_len: usize, n_tok: usize, y_len: usize) {
    let Some(rb) = w.row_bytes() else {
        panic!(
            "matmul: {} columns is not a whole number of {:?} blocks",
            w.cols, w.ty
        );
    };
    let bytes = match w.layout {
        Layout::Rows => Some(w.rows * rb),
        Layout::Groups8 => packed::packed_len(w.ty, w.rows, w.cols),
    };
    assert!(
        bytes.is_some_and(|b| w.data.len() >= b),
        "matmul: {:?} data shorter than {}x{}",
        w.ty,
        w.rows,
        w.cols
    );
    assert_eq!(
        x_len,
        n_tok * w.cols,
        "matmul: x is not {n_tok} x {}",
        w.cols
    );
    assert_eq!(
        y_len,
        n_tok * w.rows,
        "matmul: y is not {n_tok} x {}",
        w.rows
    );
}

/// The activations in `activation_type(w.ty)`: `x` itself for f32, else quantized into `scratch`.
fn quantize_acts<'a>(
    pool: &ThreadPool,
    w: &WeightRef,
    x: &'a [f32],
    n_tok: usize,
    scratch: &'a mut Vec<u8>,
) -> &'a [u8] {
    let act_ty = activation_type(w.ty);
    if act_ty == GgmlType::F32 {
        return bytemuck::cast_slice(x);
    }
    let Some(a_row) = act_ty.row_bytes(w.cols) else {
        panic!(
            "matmul: {} columns is not a whole number of {act_ty:?} blocks",
            w.cols
        );
    };
    scratch.clear();
    scratch.resize(n_tok * a_row, 0);
    let cols = w.cols;
    let quantize = |t: usize, dst: &mut [u8]| {
        quant::quantize_activation(act_ty, &x[t * cols..(t + 1) * cols], dst)
    };
    if n_tok > 1 && n_tok * cols >= PAR_QUANT_MIN {
        pool.for_each_chunk_mut(scratch, a_row, &quantize);
    } else {
        scratch
            .chunks_exact_mut(a_row)
            .enumerate()
            .for_each(|(t, d)| quantize(t, d));
    }
    scratch
}

/// Weight rows a decode task takes at the least: one pass of the 16-row matvec kernels.
pub const MATVEC_ALIGN: usize = 16;

fn matvec(pool: &ThreadPool, w: &WeightRef, act: &[u8], y: &mut [f32]) {
    let mut bounds = Vec::new();
    crate::pool::guided_bounds(w.rows, pool.n_threads(), MATVEC_ALIGN, &mut bounds);
    pool.for_each_split_mut(y, &bounds, 1, &|rows, out| {
        matmul_rows(w, act, 1, rows, out, 0);
    });
}

thread_local! {
    static TILE: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

fn gemm(pool: &ThreadPool, w: &WeightRef, acts: &[u8], n_tok: usize, y: &mut [f32]) {
    match token_block(n_tok, pool.n_threads()) {
        Some(tb) => gemm_tokens(pool, w, acts, n_tok, y, tb),
        None => gemm_tiles(pool, w, acts, n_tok, y),
    }
}

/// Tokens per task of the token split ([`gemm_tokens`]), if there are enough tokens for it (for
/// [`TASKS_PER_THREAD`] tasks of [`TOK_BLOCK`] a thread): the [`TOKEN_TASKS_PER_THREAD`]·threads-th part of
/// the tokens, in whole panels of 16, within [`TOK_BLOCK`]..=[`TOK_BLOCK_MAX`].
fn token_block(n_tok: usize, n_threads: usize) -> Option<usize> {
    let tasks = TOKEN_TASKS_PER_THREAD * n_threads;
    (n_tok >= TASKS_PER_THREAD * n_threads * TOK_BLOCK).then(|| {
        n_tok
            .div_ceil(tasks)
            .next_multiple_of(16)
            .min(TOK_BLOCK_MAX)
    })
}

/// Every row × `tb` tokens per task, into `y` directly.
fn gemm_tokens(
    pool: &ThreadPool,
    w: &WeightRef,
    acts: &[u8],
    n_tok: usize,
    y: &mut [f32],
    tb: usize,
) {
    let a_row = acts.len() / n_tok;
    let out = SharedMut::new(y);
    pool.run(n_tok.div_ceil(tb), &|task| {
        let toks = block(task, tb, n_tok);
        // SAFETY: task `task` alone owns tokens `toks`, whose outputs are this one run of `y`.
        let seg = unsafe { out.range(toks.start * w.rows..toks.end * w.rows) };
        matmul_rows(
            w,
            &acts[toks.start * a_row..toks.end * a_row],
            toks.len(),
            0..w.rows,
            seg,
            w.rows,
        );
    });
}

/// Row blocks × [`TOK_BLOCK`] tokens per task, through a per-thread tile copied into `y`.
fn gemm_tiles(pool: &ThreadPool, w: &WeightRef, acts: &[u8], n_tok: usize, y: &mut [f32]) {
    let a_row = acts.len() / n_tok;
    let n_tb = n_tok.div_ceil(TOK_BLOCK);
    let row_block = row_block(w.rows, n_tb, pool.n_threads());
    let n_rb = w.rows.div_ceil(row_block);
    let out = SharedMut::new(y);
    pool.run(n_rb * n_tb, &|task| {
        let rows = block(task / n_tb, row_block, w.rows);
        let toks = block(task % n_tb, TOK_BLOCK, n_tok);
        TILE.with_borrow_mut(|tile| {
            tile.clear();
            tile.resize(rows.len() * toks.len(), 0.0);
            let a = &acts[toks.start * a_row..toks.end * a_row];
            matmul_rows(w, a, toks.len(), rows.clone(), tile, rows.len());
            for (i, t) in toks.enumerate() {
                let dst = t * w.rows + rows.start;
                // SAFETY: task `task` alone owns the tile (rows × toks) of `y`, so this token's row segment is
                // written by no other task.
                let seg = unsafe { out.range(dst..dst + rows.len()) };
                seg.copy_from_slice(&tile[i * rows.len()..(i + 1) * rows.len()]);
            }
        });
    });
}

/// Rows per prefill task: [`ROW_BLOCK_MAX`], halved down to [`ROW_BLOCK`] until there are at least
/// [`TASKS_PER_THREAD`] tasks per thread (few tokens, few rows), so that uneven threads still balance.
fn row_block(rows: usize, n_tok_blocks: usize, n_threads: usize) -> usize {
    let mut rb = ROW_BLOCK_MAX;
    while rb > ROW_BLOCK && rows.div_ceil(rb) * n_tok_blocks < TASKS_PER_THREAD * n_threads {
        rb /= 2;
    }
    rb
}

fn block(i: usize, size: usize, n: usize) -> Range<usize> {
    i * size..((i + 1) * size).min(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_blocks_come_at_four_blocks_a_thread_in_two_tasks() {
        // 512 tokens on 2 threads: 4 tasks of 128 tokens
        assert_eq!(token_block(512, 2), Some(128));
        assert_eq!(token_block(511, 2), None);
        assert_eq!(token_block(1000, 2), Some(256));
        assert_eq!(token_block(100_000, 2), Some(TOK_BLOCK_MAX));
        assert_eq!(token_block(256, 1), Some(128));
    }

    /// The token split and the tile split give the same bits (each output is one row's dot product with one
    /// token, whatever the tiling), across formats with and without a tiled kernel.
    #[test]
    fn token_split_equals_tile_split() {
        let pool = ThreadPool::new(2);
        for (ty, rows, cols) in [
            (GgmlType::Q5_0, 70, 96),
            (GgmlType::Q8_0, 33, 64),
            (GgmlType::Q4_K, 9, 256),
            (GgmlType::F32, 5, 40),
        ] {
            let rb = ty.row_bytes(cols).expect("whole blocks");
            let mut data = vec![0u8; rows * rb];
            for (r, dst) in data.chunks_exact_mut(rb).enumerate() {
                let x: Vec<f32> = (0..cols)
                    .map(|i| ((r * 31 + i * 7) % 23) as f32 / 23.0 - 0.5)
                    .collect();
                quant::quantize_row(ty, &x, dst).expect("quantize");
            }
            let w = WeightRef {
                ty,
                rows,
                cols,
                data: &data,
                layout: Layout::Rows,
            };
            let n_tok = 150;
            let x: Vec<f32> = (0..n_tok * cols)
                .map(|i| ((i * 13) % 37) as f32 / 37.0 - 0.5)
                .collect();
            let mut scratch = Vec::new();
            let acts = quantize_acts(&pool, &w, &x, n_tok, &mut scratch).to_vec();
            let (mut a, mut b) = (vec![f32::NAN; n_tok * rows], vec![f32::NAN; n_tok * rows]);
            gemm_tiles(&pool, &w, &acts, n_tok, &mut a);
            gemm_tokens(&pool, &w, &acts, n_tok, &mut b, 48);
            for (i, (x, y)) in a.iter().zip(&b).enumerate() {
                assert_eq!(x.to_bits(), y.to_bits(), "{ty:?}: output {i}");
            }
        }
    }

    #[test]
    fn row_blocks_grow_with_the_work() {
        // gemma's FFN at 512 tokens: 256 rows a task, 8 x 8 tasks
        assert_eq!(row_block(2048, 8, 2), 256);
        // a few tokens: down to 64 rows so that two threads get 4 tasks each
        assert_eq!(row_block(576, 1, 2), 64);
        assert_eq!(row_block(1024, 1, 2), 128);
        assert_eq!(row_block(10, 1, 8), ROW_BLOCK);
    }

    #[test]
    fn blocks_clip_at_the_end() {
        assert_eq!(block(0, 64, 100), 0..64);
        assert_eq!(block(1, 64, 100), 64..100);
    }
}
