//! The paged cache against the flat one: the same prompt through scattered blocks gives the same logits, bit
//! for bit, and a sequence that starts from another's blocks (a shared prefix) gets what computing the whole
//! prompt itself gives; sliding-window layers in a pool of their own, with the blocks behind the window given
//! back, give the same bits too.

#![allow(clippy::unwrap_used)] // tests fail loudly on bad fixtures

mod common;

use common::*;
use cria_model::{Logits, Model, PagedSeq, Runner, SeqBatch};

const BLOCK: usize = 4;

/// Every position's logits of `tokens` fed in `chunks` to a flat cache.
fn flat(model: &Model, runner: &mut Runner, tokens: &[u32], chunks: &[usize]) -> Vec<f32> {
    let mut cache = model.new_cache(tokens.len());
    let (mut start, mut all) = (0, Vec::new());
    for &n in chunks {
        let mut batch = [SeqBatch {
            cache: &mut cache,
            tokens: &tokens[start..start + n],
            logits: Logits::All,
        }];
        all.extend(runner.forward(model, &mut batch).unwrap().remove(0));
        start += n;
    }
    all
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn check(name: &str, folder: &str) {
    let Some(model) = load(name) else { return };
    let mut runner = Runner::new(&model, 2);
    let cases = read_jsonl(&reference_file(folder, "logits.jsonl"));
    let tokens: Vec<u32> = ids(&cases[3]["tokens"]).into_iter().take(40).collect();
    let n = tokens.len();
    let half = 20;
    let want = flat(&model, &mut runner, &tokens, &[half, n - half]);

    let mut pool = model.new_pool(BLOCK, 32);
    // Blocks out of order and far apart, so a wrong table lookup shows.
    let table_a: Vec<u32> = (0..n.div_ceil(BLOCK) as u32).map(|b| 31 - 3 * b).collect();
    let mut got = Vec::new();
    for (start, end) in [(0, half), (half, n)] {
        let seq = PagedSeq {
            window_blocks: None,
            blocks: &table_a,
            start,
            ctx: n,
            tokens: &tokens[start..end],
            logits: Logits::All,
        };
        got.extend(
            runner
                .forward_paged(&model, &mut pool, &[seq])
                .unwrap()
                .remove(0),
        );
    }
    assert_eq!(
        bits(&got),
        bits(&want),
        "{name}: paged logits differ from flat"
    );

    // Sequence B shares A's first five blocks (its first 20 positions) and computes only the rest, in its
    // own blocks, in one step beside a sequence that starts from scratch.
    let mut table_b: Vec<u32> = table_a[..half / BLOCK].to_vec();
    table_b.extend([2, 5, 8, 11, 14]);
    let other = &tokens[..7];
    let table_c = [0u32, 1];
    let batch = [
        PagedSeq {
            window_blocks: None,
            blocks: &table_c,
            start: 0,
            ctx: n,
            tokens: other,
            logits: Logits::Last,
        },
        PagedSeq {
            window_blocks: None,
            blocks: &table_b,
            start: half,
            ctx: n,
            tokens: &tokens[half..],
            logits: Logits::All,
        },
    ];
    let shared = runner
        .forward_paged(&model, &mut pool, &batch)
        .unwrap()
        .remove(1);
    let vocab = model.n_vocab();
    assert_eq!(
        bits(&shared),
        bits(&want[half * vocab..]),
        "{name}: a shared prefix changes the logits"
    );
}

#[test]
fn smollm2_paged_cache_equals_flat_bit_for_bit() {
    check(MODELS[0].0, MODELS[0].1);
}

#[test]
fn gemma3_paged_cache_equals_flat_bit_for_bit() {
    check(MODELS[1].0, MODELS[1].1);
}

#[test]
fn a_block_table_too_short_for_the_step_is_an_error() {
    let Some(model) = load(MODELS[0].0) else {
        return;
    };
    let mut runner = Runner::new(&model, 1);
    let mut pool = model.new_pool(BLOCK, 4);
    let seq = |blocks| PagedSeq {
        window_blocks: None,
        blocks,
        start: 0,
        ctx: 64,
        tokens: &[1, 2, 3, 4, 5],
        logits: Logits::Last,
    };
    assert!(
        runner
            .forward_paged(&model, &mut pool, &[seq(&[0])])
            .is_err()
    );
    assert!(
        runner
            .forward_paged(&model, &mut pool, &[seq(&[0, 9])])
            .is_err()
    );
    assert!(
        runner
            .forward_paged(&model, &mut pool, &[seq(&[0, 3])])
            .is_ok()
    );
}

/// Gemma 3's sliding-window layers (window 512) in a pool of their own that holds little more than a window,
/// the blocks behind the window given back (and reused) as the sequence grows past it: each prefill chunk's
/// and each decoded token's logits equal the flat cache's, bit for bit.
#[test]
fn gemma3_window_pool_giving_back_blocks_behind_the_window_equals_flat() {
    let Some(model) = load(MODELS[1].0) else {
        return;
    };
    let window = model.sliding_window().unwrap();
    let cases = read_jsonl(&reference_file(MODELS[1].1, "logits.jsonl"));
    let text = ids(&cases[3]["tokens"]);
    // Past the window: the license text's tokens over and over (its first token is BOS).
    let (prompt_len, decoded) = (window + 150, 20);
    let tokens: Vec<u32> = std::iter::once(text[0])
        .chain(text[1..].iter().copied().cycle())
        .take(prompt_len + decoded)
        .collect();
    let (bs, chunk) = (16, 64);
    let prefill = (0..prompt_len)
        .step_by(chunk)
        .map(|s| (s, chunk.min(prompt_len - s)));
    let steps: Vec<(usize, usize)> = prefill
        .chain((prompt_len..tokens.len()).map(|p| (p, 1)))
        .collect();
    let mut runner = Runner::new(&model, 2);
    let mut cache = model.new_cache(tokens.len());
    let window_pool = (window + chunk).div_ceil(bs) + 1;
    let mut pool = model.new_windowed_pool(bs, tokens.len().div_ceil(bs), Some(window_pool));
    let table: Vec<u32> = (0..tokens.len().div_ceil(bs) as u32).collect();
    let mut window_table: Vec<u32> = Vec::new();
    let mut free: Vec<u32> = (0..window_pool as u32).rev().collect();
    for (start, n) in steps {
        let feed = &tokens[start..start + n];
        let mut batch = [SeqBatch {
            cache: &mut cache,
            tokens: feed,
            logits: Logits::Last,
        }];
        let want = runner.forward(&model, &mut batch).unwrap().remove(0);
        // Give back the blocks no query from `start` on sees, then take blocks for the new positions.
        let first_seen = (start + 1).saturating_sub(window) / bs;
        for slot in window_table.iter_mut().take(first_seen) {
            if *slot != u32::MAX {
                free.push(std::mem::replace(slot, u32::MAX));
            }
        }
        while window_table.len() * bs < start + n {
            window_table.push(
                free.pop()
                    .expect("the window pool holds a window and a chunk"),
            );
        }
        let seq = PagedSeq {
            blocks: &table,
            window_blocks: Some(&window_table),
            start,
            ctx: tokens.len(),
            tokens: feed,
            logits: Logits::Last,
        };
        let got = runner
            .forward_paged(&model, &mut pool, &[seq])
            .unwrap()
            .remove(0);
        assert_eq!(bits(&got), bits(&want), "positions {start}..{}", start + n);
    }
    let given_back = window_table.iter().filter(|&&b| b == u32::MAX).count();
    assert!(given_back >= 8, "{given_back} blocks given back");
    // A table that gave back a block the next query still sees is refused, not read.
    let last = tokens.len() - 1;
    window_table[(last + 1 - window) / bs] = u32::MAX;
    let seq = PagedSeq {
        blocks: &table,
        window_blocks: Some(&window_table),
        start: last,
        ctx: tokens.len(),
        tokens: &tokens[last..],
        logits: Logits::Last,
    };
    let err = runner.forward_paged(&model, &mut pool, &[seq]).unwrap_err();
    assert!(err.to_string().contains("window"), "{err}");
}
