//! The paged cache against the flat one: the same prompt through scattered blocks gives the same logits, bit
//! for bit, and a sequence that starts from another's blocks (a shared prefix) gets what computing the whole
//! prompt itself gives.

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
            blocks: &table_c,
            start: 0,
            ctx: n,
            tokens: other,
            logits: Logits::Last,
        },
        PagedSeq {
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
