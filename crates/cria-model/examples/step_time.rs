//! Times a 512-token prefill and one decode step of 1 and of N sequences (what a server's batched step costs),
//! and checks that a sequence's logits are the same alone and batched.
//!
//! `cargo run --release -p cria-model --example step_time -- <model.gguf> [threads] [n_seq] [steps]`

use std::time::Instant;

use cria_model::{KvCache, Logits, Model, Runner, SeqBatch};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let path = args
        .get(1)
        .ok_or("usage: step_time <model.gguf> [threads] [n_seq] [steps]")?;
    let threads = args.get(2).map_or(Ok(2), |s| s.parse())?;
    let n_seq: usize = args.get(3).map_or(Ok(8), |s| s.parse())?;
    let steps: usize = args.get(4).map_or(Ok(32), |s| s.parse())?;
    let model = Model::load(std::path::Path::new(path))?;
    let mut runner = Runner::new(&model, threads);
    let long: Vec<u32> = (0..512)
        .map(|i| (100 + 7 * i) % model.n_vocab() as u32)
        .collect();
    let mut best_pp = f64::MAX;
    for _ in 0..3 {
        let mut cache = model.new_cache(long.len());
        let t0 = Instant::now();
        let mut b = [SeqBatch {
            cache: &mut cache,
            tokens: &long,
            logits: Logits::Last,
        }];
        runner.forward(&model, &mut b)?;
        best_pp = best_pp.min(t0.elapsed().as_secs_f64());
    }
    let prompt: Vec<u32> = (0..32).map(|i| 100 + 7 * i).collect();
    let ctx = prompt.len() + steps + 1;

    let mut caches: Vec<KvCache> = (0..n_seq).map(|_| model.new_cache(ctx)).collect();
    for (i, c) in caches.iter_mut().enumerate() {
        let p: Vec<u32> = prompt.iter().map(|&t| t + i as u32).collect();
        runner.forward(
            &model,
            &mut [SeqBatch {
                cache: c,
                tokens: &p,
                logits: Logits::None,
            }],
        )?;
    }
    let base: Vec<KvCache> = caches.clone();

    // One sequence alone.
    let mut alone = base[0].clone();
    let mut alone_logits = Vec::new();
    let mut one = Vec::with_capacity(steps);
    for s in 0..steps {
        let t0 = Instant::now();
        let tok = [300 + s as u32];
        let mut b = [SeqBatch {
            cache: &mut alone,
            tokens: &tok,
            logits: Logits::Last,
        }];
        alone_logits = runner.forward(&model, &mut b)?.remove(0);
        one.push(t0.elapsed().as_secs_f64());
    }
    let one = median(&mut one);

    // All sequences in one step; sequence 0 gets the same tokens as alone.
    let mut batched_logits = Vec::new();
    let mut many = Vec::with_capacity(steps);
    for s in 0..steps {
        let t0 = Instant::now();
        let toks: Vec<[u32; 1]> = (0..n_seq).map(|i| [300 + s as u32 + i as u32]).collect();
        let mut b: Vec<SeqBatch<'_>> = caches
            .iter_mut()
            .zip(&toks)
            .map(|(c, t)| SeqBatch {
                cache: c,
                tokens: t,
                logits: Logits::Last,
            })
            .collect();
        batched_logits = runner.forward(&model, &mut b)?.remove(0);
        many.push(t0.elapsed().as_secs_f64());
    }
    let many = median(&mut many);
    println!(
        "pp512: {:.1} t/s   1 seq: {:.2} ms/step (median)   {n_seq} seqs: {:.2} ms/step   ratio {:.2}   seq 0 alone == batched: {}",
        long.len() as f64 / best_pp,
        one * 1e3,
        many * 1e3,
        many / one,
        alone_logits == batched_logits
    );
    Ok(())
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
