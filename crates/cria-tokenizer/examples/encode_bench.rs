//! Encode throughput in-process: `encode_bench MODEL.gguf TEXT_FILE [RUNS] [IDS_OUT]`.
//! Prints the load time, the median encode time over RUNS and MB/s, as one JSON line; with IDS_OUT,
//! also writes the ids there as a JSON array (to compare with another tokenizer).
//! `bench/tokenize.py` runs it beside llama.cpp's `llama-tokenize` on the same text.

use std::time::Instant;

use cria_gguf::GgufFile;
use cria_tokenizer::Tokenizer;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(model), Some(text_path)) = (args.get(1), args.get(2)) else {
        return Err("usage: encode_bench MODEL.gguf TEXT_FILE [RUNS]".into());
    };
    let runs: usize = args.get(3).map(|r| r.parse()).transpose()?.unwrap_or(5);
    let text = std::fs::read_to_string(text_path)?;
    let t0 = Instant::now();
    let file = GgufFile::open(model)?;
    let tok = Tokenizer::from_gguf(&file)?;
    let load = t0.elapsed().as_secs_f64();
    let mut times = Vec::with_capacity(runs);
    let mut n_tokens = 0;
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        let ids = tok.encode(&text, true, true);
        times.push(t.elapsed().as_secs_f64());
        n_tokens = ids.len();
    }
    if let Some(out) = args.get(4) {
        let ids = tok.encode(&text, true, true);
        let list: Vec<String> = ids.iter().map(u32::to_string).collect();
        std::fs::write(out, format!("[{}]\n", list.join(", ")))?;
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let mb = text.len() as f64 / 1e6;
    println!(
        "{{\"bytes\": {}, \"tokens\": {n_tokens}, \"load_s\": {load:.4}, \"encode_s\": {median:.4}, \"mb_per_s\": {:.3}}}",
        text.len(),
        mb / median
    );
    Ok(())
}
