//! Times `GgufFile::open` on the files given: `cargo run --release -p cria-gguf --example open_time -- FILE...`

use std::time::Instant;

fn main() -> Result<(), cria_gguf::GgufError> {
    for path in std::env::args().skip(1) {
        let mut best = f64::INFINITY;
        let mut summary = String::new();
        for _ in 0..10 {
            let start = Instant::now();
            let f = cria_gguf::GgufFile::open(&path)?;
            best = best.min(start.elapsed().as_secs_f64() * 1e3);
            summary = format!("{} keys, {} tensors", f.metadata().len(), f.tensors().len());
        }
        println!("{path}: {summary}; open best of 10: {best:.1} ms");
    }
    Ok(())
}
