//! The engine on the real default model: a sequence's logits and greedy text do not depend on what else is
//! in the batch.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use cria_engine::{Backend, Engine, EngineConfig, Event, ModelBackend, Request, Step};
use cria_model::Model;
use cria_sampling::SamplingParams;
use cria_tokenizer::Tokenizer;

const NAME: &str = "smollm2-135m-instruct";

/// The reference model with repacked Q4_K matrices on x86-64 (and Q5_0, Q6_K, Q8_0 ones).
const GEMMA: &str = "gemma-3-270m";

fn model_path(name: &str) -> Option<PathBuf> {
    if std::env::var("CRIA_SKIP_MODEL_TESTS").is_ok_and(|v| v == "1") {
        return None;
    }
    let home = std::env::var("CRIA_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/cria")
        });
    let path = home.join("models").join(format!("{name}.gguf"));
    assert!(
        path.exists(),
        "{} is missing: run `cargo run --release -- pull {name}`",
        path.display()
    );
    Some(path)
}

fn load() -> Option<(Arc<Model>, Arc<Tokenizer>)> {
    load_named(NAME)
}

fn load_named(name: &str) -> Option<(Arc<Model>, Arc<Tokenizer>)> {
    let model = Arc::new(Model::load(&model_path(name)?).unwrap());
    let tok = Arc::new(Tokenizer::from_gguf(model.gguf()).unwrap());
    Some((model, tok))
}

fn argmax(v: &[f32]) -> u32 {
    cria_sampling::Sampler::new(SamplingParams::greedy())
        .sample(v, &[])
        .expect("no constraint")
}

const BLOCK: usize = 16;

/// A backend for direct calls with fixed block tables: slot `s` owns the blocks `s * per_slot ..`.
struct Direct {
    backend: ModelBackend,
    tables: Vec<Vec<u32>>,
    fed: Vec<usize>,
}

impl Direct {
    fn new(model: Arc<Model>, slots: usize, ctx: usize) -> Self {
        let per_slot = ctx.div_ceil(BLOCK);
        let tables = (0..slots)
            .map(|s| {
                (s * per_slot..(s + 1) * per_slot)
                    .map(|b| b as u32)
                    .collect()
            })
            .collect();
        Direct {
            backend: ModelBackend::new(model, slots * per_slot, BLOCK, ctx, 2),
            tables,
            fed: vec![0; slots],
        }
    }

    fn reset(&mut self, slot: usize) {
        self.fed[slot] = 0;
    }

    /// One step: (slot, tokens, want logits) each.
    fn forward(&mut self, parts: &[(usize, &[u32], bool)]) -> Vec<Vec<f32>> {
        let steps: Vec<Step<'_>> = parts
            .iter()
            .map(|&(slot, tokens, want_logits)| Step {
                slot,
                blocks: &self.tables[slot],
                window_blocks: None,
                start: self.fed[slot],
                tokens,
                want_logits,
            })
            .collect();
        let out = self.backend.forward(&steps).unwrap();
        for &(slot, tokens, _) in parts {
            self.fed[slot] += tokens.len();
        }
        out
    }
}

/// Decodes `steps` greedy tokens for slot 0, alone or alongside other slots that decode or prefill.
fn decode(
    backend: &mut Direct,
    prompt: &[u32],
    others: &[Vec<u32>],
    steps: usize,
) -> Vec<Vec<f32>> {
    for slot in 0..=others.len() {
        backend.reset(slot);
    }
    let mut rows = Vec::new();
    let mut next = prompt.to_vec();
    let mut other_next: Vec<Vec<u32>> = others.to_vec();
    for _ in 0..steps {
        let mut batch = vec![(0, &next[..], true)];
        for (i, t) in other_next.iter().enumerate() {
            batch.push((i + 1, &t[..], true));
        }
        let out = backend.forward(&batch);
        let fresh: Vec<Vec<u32>> = out[1..].iter().map(|l| vec![argmax(l)]).collect();
        next = vec![argmax(&out[0])];
        rows.push(out.into_iter().next().unwrap());
        other_next = fresh;
    }
    rows
}

#[test]
fn logits_do_not_depend_on_the_rest_of_the_batch() {
    let Some((model, tok)) = load() else { return };
    let mut backend = Direct::new(model, 8, 256);
    let prompt = tok.encode("The sea is", true, false);
    let alone = decode(&mut backend, &prompt, &[], 6);
    let others: Vec<Vec<u32>> = (0..7)
        .map(|i| tok.encode(&format!("Count from {i} to twenty:"), true, false))
        .collect();
    let batched = decode(&mut backend, &prompt, &others, 6);
    for (step, (a, b)) in alone.iter().zip(&batched).enumerate() {
        let max_diff = a
            .iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, f32::max);
        assert_eq!(
            a, b,
            "step {step}: logits differ in a batch (max diff {max_diff})"
        );
    }
}

/// Feeds `prompt` to slot 0 in chunks of the given sizes (the rest of the batch: another slot's prompt, fed
/// whole on the first step) and returns the logits after the last chunk.
fn prefill_in_chunks(
    backend: &mut Direct,
    prompt: &[u32],
    chunks: &[usize],
    other: &[u32],
) -> Vec<f32> {
    backend.reset(0);
    backend.reset(1);
    let mut fed = 0;
    let mut last = Vec::new();
    for (i, &n) in chunks.iter().enumerate() {
        let mut batch = vec![(0, &prompt[fed..fed + n], fed + n == prompt.len())];
        if i == 0 && !other.is_empty() {
            batch.push((1, other, true));
        }
        fed += n;
        last = backend.forward(&batch).swap_remove(0);
    }
    assert_eq!(fed, prompt.len());
    last
}

/// The runner's side of chunked prefill and of the prompt cache (which resumes a prompt at any block): a
/// prompt's logits are bit-identical however it is cut into chunks (attention over cached keys against
/// in-step ones, gemm tiles over different token counts, 4x4 tiles against remainders) and whatever shares
/// the first step, on both reference models.
#[test]
fn prompt_logits_do_not_depend_on_chunk_boundaries() {
    cut_anywhere(NAME);
}

/// Regression (issue 15): gemma's repacked Q4_K matrices summed 4-token tiles in another order than the
/// rest, so its logits changed with the cut and the prompt cache could resume only at chunk boundaries.
#[test]
fn gemma3_prompt_logits_do_not_depend_on_chunk_boundaries() {
    cut_anywhere(GEMMA);
}

fn cut_anywhere(name: &str) {
    let Some((model, tok)) = load_named(name) else {
        return;
    };
    let mut backend = Direct::new(model, 2, 256);
    let prompt = tok.encode(
        "The lighthouse keeper climbed the stairs every evening, counting each step as the storm rolled in",
        true,
        false,
    );
    let n = prompt.len();
    let whole = prefill_in_chunks(&mut backend, &prompt, &[n], &[]);
    let other = tok.encode(
        "A completely different prompt of another length.",
        true,
        false,
    );
    let cuts: [Vec<usize>; 4] = [
        vec![1, n - 1],
        vec![5, 3, 7, n - 15],
        vec![n - 1, 1],
        (0..n).map(|_| 1).collect(),
    ];
    for chunks in &cuts {
        for other in [&[][..], &other[..]] {
            let got = prefill_in_chunks(&mut backend, &prompt, chunks, other);
            let max_diff = whole
                .iter()
                .zip(&got)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0f32, f32::max);
            assert!(
                whole
                    .iter()
                    .zip(&got)
                    .all(|(x, y)| x.to_bits() == y.to_bits()),
                "{name}: chunks {chunks:?}, other {}: logits differ (max diff {max_diff})",
                other.len()
            );
        }
    }
}

fn greedy_text(engine: &Engine, prompt: &[u32], max_tokens: usize) -> String {
    let req = Request {
        prompt: prompt.to_vec(),
        sampling: SamplingParams::greedy(),
        max_tokens,
        stop: vec![],
        logprobs: None,
        ignore_eos: false,
        constraint: None,
        cache_salt: None,
    };
    let mut rx = engine.submit(req).unwrap();
    let mut text = String::new();
    while let Some(ev) = rx.blocking_recv() {
        match ev {
            Event::Token { text: t, .. } => text.push_str(&t),
            Event::Done { .. } => break,
            Event::Failed(m) => panic!("{m}"),
        }
    }
    text
}

/// What one sequence fed into its slot and every logits row it got back, in order.
#[derive(Default, Clone, Debug)]
struct Record {
    fed: Vec<u32>,
    chunks: Vec<usize>,
    logits: Vec<Vec<f32>>,
}

/// The open record of each slot; a slot's reset closes it (the engine resets a slot on admit and release).
#[derive(Default)]
struct Tape {
    open: Vec<Record>,
    closed: Vec<Record>,
}

/// The real backend, recording each sequence's feeding and logits.
struct Recording {
    inner: ModelBackend,
    tape: Arc<Mutex<Tape>>,
}

impl Backend for Recording {
    fn reset_slot(&mut self, slot: usize) {
        self.inner.reset_slot(slot);
        let mut tape = self.tape.lock().unwrap();
        let record = std::mem::take(&mut tape.open[slot]);
        if !record.fed.is_empty() {
            tape.closed.push(record);
        }
    }

    fn forward(&mut self, steps: &[Step<'_>]) -> Result<Vec<Vec<f32>>, cria_engine::EngineError> {
        let out = self.inner.forward(steps)?;
        let mut tape = self.tape.lock().unwrap();
        for (step, logits) in steps.iter().zip(&out) {
            let record = &mut tape.open[step.slot];
            record.fed.extend_from_slice(step.tokens);
            record.chunks.push(step.tokens.len());
            if step.want_logits {
                record.logits.push(logits.clone());
            }
        }
        Ok(out)
    }

    fn kv_bytes(&self) -> usize {
        self.inner.kv_bytes()
    }
}

const PARALLEL: usize = 8;
const CTX: usize = 512;

/// An engine on the recording backend with a small step budget and prefill chunk, so that prompts are
/// chunked and steps are often full.
fn recording_engine(model: Arc<Model>, tok: Arc<Tokenizer>) -> (Arc<Engine>, Arc<Mutex<Tape>>) {
    let tape = Arc::new(Mutex::new(Tape {
        open: vec![Record::default(); PARALLEL],
        closed: Vec::new(),
    }));
    let backend_tape = Arc::clone(&tape);
    let config = EngineConfig {
        parallel: PARALLEL,
        ctx: CTX,
        step_tokens: 24,
        prefill_chunk: 8,
        // Every record feeds its whole prompt.
        prompt_cache: false,
        ..EngineConfig::default()
    };
    let backend_config = config.clone();
    let engine = Engine::start(config, tok, move || {
        Ok(Recording {
            inner: ModelBackend::for_config(model, &backend_config, 2),
            tape: backend_tape,
        })
    })
    .unwrap();
    (Arc::new(engine), tape)
}

/// Waits until the engine has released every slot (a record closes when its slot is released, just after
/// the request's last event).
fn wait_idle(engine: &Engine) {
    for _ in 0..1000 {
        if engine.stats().running == 0 {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("engine still running: {:?}", engine.stats());
}

/// The closed record of the sequence that fed `prompt` (prompts in a run are distinct).
fn record_of(engine: &Engine, tape: &Mutex<Tape>, prompt: &[u32]) -> Record {
    wait_idle(engine);
    let tape = tape.lock().unwrap();
    let found: Vec<&Record> = tape
        .closed
        .iter()
        .filter(|r| r.fed.starts_with(prompt) && r.fed.len() > prompt.len())
        .collect();
    assert_eq!(found.len(), 1, "one record for the probe");
    found[0].clone()
}

/// Runs `probe` while 7 other requests arrive at staggered times, `probe_delay` after the first of them.
fn run_among_others(
    engine: &Arc<Engine>,
    tok: &Tokenizer,
    probe: &[u32],
    probe_delay_ms: u64,
) -> String {
    let handles: Vec<_> = (0..7u64)
        .map(|i| {
            let engine = Arc::clone(engine);
            let p = tok.encode(
                &format!("Here is a list of {i} fruits and their colors, one per line:"),
                true,
                false,
            );
            std::thread::spawn(move || {
                std::thread::sleep(std::time::Duration::from_millis(60 * i));
                greedy_text(&engine, &p, 12 + 2 * i as usize)
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(probe_delay_ms));
    let text = greedy_text(engine, probe, 24);
    for h in handles {
        h.join().unwrap();
    }
    text
}

/// The determinism check on the engine itself: a request alone and among 7 others (arriving before,
/// during and after its prefill, so its batches and steps differ) generates the same tokens from bit-identical
/// logits, with its prompt cut at the same chunk boundaries.
#[test]
fn request_alone_and_among_seven_others_gives_bit_identical_logits() {
    let Some((model, tok)) = load() else { return };
    let probe = tok.encode(
        "Once upon a time, in a small village by the sea, there lived an old fisherman who every morning",
        true,
        false,
    );
    assert!(probe.len() > 16, "the probe's prompt spans several chunks");

    let (engine, tape) = recording_engine(Arc::clone(&model), Arc::clone(&tok));
    let alone_text = greedy_text(&engine, &probe, 24);
    let alone = record_of(&engine, &tape, &probe);
    drop(engine);

    for probe_delay_ms in [0, 150, 400] {
        let (engine, tape) = recording_engine(Arc::clone(&model), Arc::clone(&tok));
        let text = run_among_others(&engine, &tok, &probe, probe_delay_ms);
        let together = record_of(&engine, &tape, &probe);
        let widths: Vec<usize> = tape
            .lock()
            .unwrap()
            .closed
            .iter()
            .map(|r| r.chunks.len())
            .collect();
        assert_eq!(widths.len(), 8, "all 8 requests ran");
        assert_eq!(
            together.fed, alone.fed,
            "delay {probe_delay_ms} ms: fed tokens differ"
        );
        assert_eq!(
            together.chunks, alone.chunks,
            "delay {probe_delay_ms} ms: chunks differ"
        );
        assert_eq!(together.logits.len(), alone.logits.len());
        for (step, (a, b)) in alone.logits.iter().zip(&together.logits).enumerate() {
            let max_diff = a
                .iter()
                .zip(b)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0f32, f32::max);
            assert!(
                a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits()),
                "delay {probe_delay_ms} ms, row {step}: logits differ (max diff {max_diff})"
            );
        }
        assert_eq!(text, alone_text, "delay {probe_delay_ms} ms: text differs");
    }
    assert!(!alone_text.is_empty());
}

#[test]
fn engine_text_equals_direct_greedy_decoding_and_cancellation_frees_the_slot() {
    let Some((model, tok)) = load() else { return };
    let template = cria_tokenizer::ChatTemplate::for_model(&tok, "llama", None).unwrap();
    let messages = [cria_tokenizer::ChatMessage {
        role: "user".into(),
        content: "Name three colors.".into(),
    }];
    let prompt = tok.encode(&template.render(&messages, true).unwrap(), true, true);
    let mut backend = Direct::new(Arc::clone(&model), 1, 512);
    let ids: Vec<u32> = decode(&mut backend, &prompt, &[], 40)
        .iter()
        .map(|row| argmax(row))
        .collect();
    let end = ids
        .iter()
        .position(|&id| tok.is_end_of_generation(id))
        .unwrap_or(ids.len());
    let expected = tok.decode(&ids[..end]);
    drop(backend);

    let config = EngineConfig {
        parallel: 2,
        ctx: 512,
        ..EngineConfig::default()
    };
    let backend_config = config.clone();
    let engine = Engine::start(config, tok.clone(), move || {
        Ok(ModelBackend::for_config(model, &backend_config, 2))
    })
    .unwrap();
    let text = greedy_text(&engine, &prompt, 40);
    assert_eq!(text, expected);
    assert!(!text.is_empty());

    let req = Request {
        prompt,
        sampling: SamplingParams::greedy(),
        max_tokens: 400,
        stop: vec![],
        logprobs: None,
        ignore_eos: false,
        constraint: None,
        cache_salt: None,
    };
    let mut rx = engine.submit(req).unwrap();
    assert!(matches!(rx.blocking_recv(), Some(Event::Token { .. })));
    drop(rx);
    for _ in 0..500 {
        if engine.stats().running == 0 && engine.stats().kv_tokens == 0 {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("cancelled sequence still running: {:?}", engine.stats());
}
