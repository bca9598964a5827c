//! A KV cache costs resident memory for the positions written, not for its capacity: `cria run --ctx 4096`
//! on a short prompt must not hold a 4096-position cache in RAM (issue 7: peak RSS no higher than
//! llama.cpp's for the same context). Its own test binary, so no other test changes the process's RSS while
//! this one measures.

#![allow(clippy::unwrap_used)] // tests fail loudly on bad fixtures

mod common;

use common::*;
use cria_model::{Logits, Runner, SeqBatch};

/// Resident set size of this process in bytes (Linux), from `/proc/self/statm`.
fn rss_bytes() -> Option<usize> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: usize = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

#[test]
fn kv_cache_pages_are_resident_only_once_written() {
    let Some(model) = load("smollm2-135m-instruct") else {
        return;
    };
    let mut runner = Runner::new(&model, 1);
    // warm up the runner's scratch and the weights' pages, so the measurement below sees the cache alone
    let mut warm = model.new_cache(8);
    let mut batch = [SeqBatch {
        cache: &mut warm,
        tokens: &[1, 2, 3, 4],
        logits: Logits::Last,
    }];
    runner.forward(&model, &mut batch).unwrap();
    drop(warm);

    let Some(before) = rss_bytes() else {
        eprintln!("skipping: no /proc/self/statm");
        return;
    };
    let mut cache = model.new_cache(32_768);
    let capacity_bytes = cache.bytes();
    assert!(capacity_bytes > 500 << 20, "smollm2 at 32k positions");
    let mut batch = [SeqBatch {
        cache: &mut cache,
        tokens: &[1, 2, 3, 4],
        logits: Logits::Last,
    }];
    let logits = runner.forward(&model, &mut batch).unwrap();
    assert!(logits[0].iter().all(|l| l.is_finite()));
    let grown = rss_bytes().unwrap().saturating_sub(before);
    // 4 positions touch one page per layer and K/V (60 pages); allow generous slack for the allocator
    assert!(
        grown < 32 << 20,
        "a {} MiB cache with 4 positions written grew RSS by {} MiB",
        capacity_bytes >> 20,
        grown >> 20
    );
}
