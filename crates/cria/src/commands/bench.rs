//! `cria bench`: prompt processing (`pp`) and generation (`tg`) speed with llama-bench's method, and decode's
//! share of the machine's read bandwidth (its roofline).
//!
//! As in llama-bench: `ppN` is one batch of N prompt tokens (BOS then random ids) with logits for the last
//! token only; `tgN` is N single-token steps from an empty cache (BOS then random ids, so no sampling is
//! timed); each test runs once untimed as a warm-up, then `-r` times; t/s is reported as mean ± sample sd
//! over the repetitions. Loading and tokenization are never timed.
//!
//! `--device gpu` runs both tests on the GPU (the same runner `run` and `eval` use; the time of a step
//! includes reading its logits back); the read-bandwidth roofline is the CPU's, so it is skipped there.

use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use cria_kernels::bandwidth::{Bandwidth, ReadMethod, read_bandwidth};
use cria_model::{DeviceRunner, Logits, Model};
use serde::Serialize;

use super::load::{ModelArgs, device_runner, load_model};

/// Arguments of `cria bench`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: ModelArgs,
    /// Prompt tokens processed as one batch (the `pp` test); 0 skips it.
    #[arg(short = 'p', long = "n-prompt", default_value_t = 512)]
    n_prompt: usize,
    /// Tokens generated one at a time (the `tg` test); 0 skips it.
    #[arg(short = 'n', long = "n-gen", default_value_t = 128)]
    n_gen: usize,
    /// Timed repetitions of each test (after one warm-up).
    #[arg(short = 'r', long = "repetitions", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    repetitions: u32,
    /// Buffer read to measure the machine's read bandwidth, in MiB (0 skips the measurement).
    #[arg(long, default_value_t = 1024)]
    bandwidth_mib: usize,
    /// Print one JSON object instead of the markdown table.
    #[arg(long)]
    json: bool,
}

/// The whole report, as `--json` prints it.
#[derive(Serialize)]
struct Report {
    model_filename: String,
    model_type: String,
    model_size: u64,
    model_n_params: u64,
    /// What ran the tests: "cpu", or the GPU adapter as `gpu:N (name)`.
    device: String,
    n_threads: usize,
    /// Weight bytes decode reads per token (every matrix once).
    weight_bytes_per_token: usize,
    tests: Vec<TestResult>,
    bandwidth: Option<BandwidthReport>,
    decode: Option<DecodeReport>,
}

/// One test, with llama-bench's JSON field names.
#[derive(Serialize)]
struct TestResult {
    test: String,
    n_prompt: usize,
    n_gen: usize,
    avg_ns: f64,
    stddev_ns: f64,
    avg_ts: f64,
    stddev_ts: f64,
    samples_ns: Vec<f64>,
    samples_ts: Vec<f64>,
}

#[derive(Serialize)]
struct BandwidthReport {
    /// The best of every method: the ceiling decode is measured against.
    gb_per_s: f64,
    bytes: usize,
    threads: usize,
    /// The method of the best pass.
    method: &'static str,
    plain_gb_per_s: f64,
    prefetch_gb_per_s: f64,
    streaming_gb_per_s: f64,
}

/// Decode against its roofline: bytes per token × t/s, and bandwidth ÷ bytes per token.
#[derive(Serialize)]
struct DecodeReport {
    test: String,
    achieved_gb_per_s: f64,
    roofline_ts: f64,
    roofline_fraction: f64,
}

/// Runs `cria bench`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let threads = args.model.check()?;
    let path = super::pull::resolve_model(&args.model.model)?;
    let model = load_model(&args.model)?;
    let mut runner = device_runner(&args.model, &model, threads);
    let device = runner.device_name();
    eprintln!("cria bench: running on {device}");
    let mut tokens = TokenSource::new(&model);
    let reps = args.repetitions as usize;
    let mut tests = Vec::new();
    if args.n_prompt > 0 {
        eprintln!("cria bench: pp{} x {reps} ...", args.n_prompt);
        let samples = time_reps(reps, || {
            prompt_once(&model, &mut runner, &mut tokens, args.n_prompt)
        })?;
        tests.push(TestResult::new(
            format!("pp{}", args.n_prompt),
            args.n_prompt,
            0,
            &samples,
        ));
    }
    if args.n_gen > 0 {
        eprintln!("cria bench: tg{} x {reps} ...", args.n_gen);
        let samples = time_reps(reps, || {
            gen_once(&model, &mut runner, &mut tokens, args.n_gen)
        })?;
        tests.push(TestResult::new(
            format!("tg{}", args.n_gen),
            0,
            args.n_gen,
            &samples,
        ));
    }
    // The host's read bandwidth bounds decode on the CPU only.
    let bandwidth = match &runner {
        DeviceRunner::Cpu(cpu) if args.bandwidth_mib > 0 => {
            eprintln!(
                "cria bench: read bandwidth over {} MiB ...",
                args.bandwidth_mib
            );
            Some(read_bandwidth(cpu.pool(), args.bandwidth_mib << 20, 5))
        }
        _ => None,
    };
    let report = Report::new(&path, &model, (device, threads), tests, bandwidth);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.markdown());
    }
    Ok(())
}

/// Seconds of `reps` timed runs of `once` (which returns its own timed seconds), after one warm-up run.
fn time_reps(
    reps: usize,
    mut once: impl FnMut() -> anyhow::Result<f64>,
) -> anyhow::Result<Vec<f64>> {
    once()?;
    (0..reps).map(|_| once()).collect()
}

/// One `pp` run: a fresh cache, one batch of `n` tokens, logits for the last one. Returns its seconds.
fn prompt_once(
    model: &Model,
    runner: &mut DeviceRunner,
    tokens: &mut TokenSource,
    n: usize,
) -> anyhow::Result<f64> {
    let mut cache = runner.new_cache(model, n)?;
    let prompt = tokens.prompt(n);
    let t = Instant::now();
    step(model, runner, &mut cache, &prompt)?;
    Ok(t.elapsed().as_secs_f64())
}

/// One `tg` run: a fresh cache, `n` single-token steps. Returns its seconds (token choice included: a few ns).
fn gen_once(
    model: &Model,
    runner: &mut DeviceRunner,
    tokens: &mut TokenSource,
    n: usize,
) -> anyhow::Result<f64> {
    let mut cache = runner.new_cache(model, n)?;
    let t = Instant::now();
    let mut tok = tokens.first();
    for _ in 0..n {
        step(model, runner, &mut cache, &[tok])?;
        tok = tokens.next_id();
    }
    Ok(t.elapsed().as_secs_f64())
}

fn step(
    model: &Model,
    runner: &mut DeviceRunner,
    cache: &mut cria_model::DeviceCache,
    toks: &[u32],
) -> anyhow::Result<()> {
    let logits = runner
        .forward(model, cache, toks, Logits::Last)
        .context("forward pass")?;
    std::hint::black_box(logits);
    Ok(())
}

/// llama-bench's inputs: BOS (when the model adds one) then pseudo-random ids, from a fixed seed.
struct TokenSource {
    bos: Option<u32>,
    n_vocab: u64,
    state: u64,
}

impl TokenSource {
    fn new(model: &Model) -> Self {
        Self {
            // llama-bench starts with BOS only when the vocabulary adds one (absent key: it does).
            bos: match model.gguf().bool("tokenizer.ggml.add_bos_token") {
                Ok(false) => None,
                _ => model.gguf().u32("tokenizer.ggml.bos_token_id").ok(),
            },
            n_vocab: model.n_vocab().max(1) as u64,
            state: 0x9E37_79B9_7F4A_7C15,
        }
    }

    fn first(&mut self) -> u32 {
        match self.bos {
            Some(b) if (b as u64) < self.n_vocab => b,
            _ => self.next_id(),
        }
    }

    /// splitmix64, reduced to the vocabulary.
    fn next_id(&mut self) -> u32 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) % self.n_vocab) as u32
    }

    fn prompt(&mut self, n: usize) -> Vec<u32> {
        let first = self.first();
        std::iter::once(first)
            .chain(std::iter::repeat_with(|| self.next_id()))
            .take(n)
            .collect()
    }
}

/// Mean and sample standard deviation (0 for fewer than two values).
fn mean_sd(v: &[f64]) -> (f64, f64) {
    if v.is_empty() {
        return (0.0, 0.0);
    }
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    if v.len() < 2 {
        return (mean, 0.0);
    }
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

impl TestResult {
    fn new(test: String, n_prompt: usize, n_gen: usize, seconds: &[f64]) -> Self {
        let n_tok = (n_prompt + n_gen) as f64;
        let samples_ns: Vec<f64> = seconds.iter().map(|s| s * 1e9).collect();
        let samples_ts: Vec<f64> = seconds
            .iter()
            .map(|&s| if s > 0.0 { n_tok / s } else { 0.0 })
            .collect();
        let (avg_ns, stddev_ns) = mean_sd(&samples_ns);
        let (avg_ts, stddev_ts) = mean_sd(&samples_ts);
        Self {
            test,
            n_prompt,
            n_gen,
            avg_ns,
            stddev_ns,
            avg_ts,
            stddev_ts,
            samples_ns,
            samples_ts,
        }
    }
}

impl Report {
    fn new(
        path: &Path,
        model: &Model,
        (device, n_threads): (String, usize),
        tests: Vec<TestResult>,
        bandwidth: Option<Bandwidth>,
    ) -> Self {
        let infos = model.gguf().tensors();
        let bytes_per_token = model.weight_bytes_per_token();
        let decode = match (&bandwidth, tests.iter().find(|t| t.n_gen > 0)) {
            (Some(bw), Some(tg)) => Some(DecodeReport::new(bw, tg, bytes_per_token)),
            _ => None,
        };
        Self {
            model_filename: path.display().to_string(),
            model_type: model_type(model),
            model_size: infos.iter().map(|t| t.n_bytes).sum(),
            model_n_params: infos.iter().map(|t| t.n_elements()).sum(),
            device,
            n_threads,
            weight_bytes_per_token: bytes_per_token,
            tests,
            bandwidth: bandwidth.map(|b| BandwidthReport {
                gb_per_s: b.gb_per_s(),
                bytes: b.bytes,
                threads: b.threads,
                method: b.method.name(),
                plain_gb_per_s: b.gb_per_s_of(ReadMethod::Plain),
                prefetch_gb_per_s: b.gb_per_s_of(ReadMethod::Prefetch),
                streaming_gb_per_s: b.gb_per_s_of(ReadMethod::Streaming),
            }),
            decode,
        }
    }

    /// llama-bench's table, then the roofline lines.
    fn markdown(&self) -> String {
        let mut s = String::from(
            "| model | size | params | backend | threads | test | t/s |\n\
             | --- | ---: | ---: | --- | ---: | ---: | ---: |\n",
        );
        for t in &self.tests {
            s += &format!(
                "| {} | {:.2} MiB | {:.2} M | {} | {} | {} | {:.2} ± {:.2} |\n",
                self.model_type,
                self.model_size as f64 / (1u64 << 20) as f64,
                self.model_n_params as f64 / 1e6,
                if self.device == "cpu" { "CPU" } else { "GPU" },
                self.n_threads,
                t.test,
                t.avg_ts,
                t.stddev_ts
            );
        }
        s += &format!(
            "\ndevice: {}\nweights read per generated token: {:.1} MB\n",
            self.device,
            self.weight_bytes_per_token as f64 / 1e6
        );
        if let Some(bw) = &self.bandwidth {
            s += &format!(
                "read bandwidth (in-process, {} MiB, {} threads, best of 5 passes each of plain / prefetching / \
                 streaming reads: {:.1} / {:.1} / {:.1}): {:.1} GB/s ({})\n",
                bw.bytes >> 20,
                bw.threads,
                bw.plain_gb_per_s,
                bw.prefetch_gb_per_s,
                bw.streaming_gb_per_s,
                bw.gb_per_s,
                bw.method
            );
        }
        if let Some(d) = &self.decode {
            s += &format!(
                "decode {}: {:.1} GB/s of weights = {:.0}% of the roofline ({:.1} t/s)\n",
                d.test,
                d.achieved_gb_per_s,
                d.roofline_fraction * 100.0,
                d.roofline_ts
            );
        }
        s
    }
}

impl DecodeReport {
    fn new(bw: &Bandwidth, tg: &TestResult, bytes_per_token: usize) -> Self {
        let achieved = bytes_per_token as f64 * tg.avg_ts / 1e9;
        let peak = bw.gb_per_s();
        Self {
            test: tg.test.clone(),
            achieved_gb_per_s: achieved,
            roofline_ts: if bytes_per_token > 0 {
                peak * 1e9 / bytes_per_token as f64
            } else {
                0.0
            },
            roofline_fraction: if peak > 0.0 { achieved / peak } else { 0.0 },
        }
    }
}

/// "llama Q4_1"-like: the architecture and the file's quantization (`general.file_type`, as llama.cpp names
/// it), else the weight type holding the most bytes.
fn model_type(model: &Model) -> String {
    let ftype = model
        .gguf()
        .u32("general.file_type")
        .ok()
        .and_then(file_type_name);
    let main = ftype.map_or_else(|| dominant_type(model), str::to_string);
    format!("{} {}", model.spec().arch, main)
}

/// llama.cpp's `llama_ftype` names for the common values.
fn file_type_name(ftype: u32) -> Option<&'static str> {
    Some(match ftype {
        0 => "F32",
        1 => "F16",
        2 => "Q4_0",
        3 => "Q4_1",
        7 => "Q8_0",
        8 => "Q5_0",
        9 => "Q5_1",
        10 => "Q2_K",
        11 => "Q3_K_S",
        12 => "Q3_K_M",
        13 => "Q3_K_L",
        14 => "Q4_K_S",
        15 => "Q4_K_M",
        16 => "Q5_K_S",
        17 => "Q5_K_M",
        18 => "Q6_K",
        32 => "BF16",
        _ => return None,
    })
}

fn dominant_type(model: &Model) -> String {
    let mut by_type: Vec<(String, u64)> = Vec::new();
    for t in model.gguf().tensors() {
        let name = format!("{:?}", t.ty);
        match by_type.iter_mut().find(|(n, _)| *n == name) {
            Some((_, b)) => *b += t.n_bytes,
            None => by_type.push((name, t.n_bytes)),
        }
    }
    by_type
        .into_iter()
        .max_by_key(|(_, b)| *b)
        .map_or_else(String::new, |(n, _)| n)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn mean_and_sample_sd() {
        let (m, sd) = mean_sd(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]);
        assert!((m - 5.0).abs() < 1e-12);
        assert!((sd - (32.0f64 / 7.0).sqrt()).abs() < 1e-12);
        assert_eq!(mean_sd(&[3.0]), (3.0, 0.0));
        assert_eq!(mean_sd(&[]), (0.0, 0.0));
    }

    #[test]
    fn rates_are_tokens_over_seconds() {
        let r = TestResult::new("tg4".into(), 0, 4, &[1.0, 0.5]);
        assert_eq!(r.samples_ts, vec![4.0, 8.0]);
        assert!((r.avg_ts - 6.0).abs() < 1e-12);
        assert!((r.avg_ns - 0.75e9).abs() < 1e-3);
    }

    #[test]
    fn roofline_is_bandwidth_over_bytes() {
        let bw = Bandwidth {
            bytes: 1_000_000_000,
            best_seconds: 0.05,
            threads: 2,
            method: ReadMethod::Prefetch,
            seconds_by_method: [0.06, 0.05, 0.07],
        };
        let tg = TestResult::new("tg1".into(), 0, 1, &[0.01]);
        let d = DecodeReport::new(&bw, &tg, 100_000_000);
        assert!((d.roofline_ts - 200.0).abs() < 1e-9);
        assert!((d.achieved_gb_per_s - 10.0).abs() < 1e-9);
        assert!((d.roofline_fraction - 0.5).abs() < 1e-9);
    }

    /// The reference model `name`, or `None` when CRIA_SKIP_MODEL_TESTS=1; fails with how to pull it otherwise.
    fn real_model(name: &str) -> Option<std::path::PathBuf> {
        let home = std::env::var_os("CRIA_HOME").map_or_else(
            || std::path::PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/cria"),
            std::path::PathBuf::from,
        );
        let path = home.join("models").join(format!("{name}.gguf"));
        if path.exists() {
            return Some(path);
        }
        if std::env::var("CRIA_SKIP_MODEL_TESTS").as_deref() == Ok("1") {
            return None;
        }
        panic!(
            "{} is missing: run `cargo run --release -- pull {name}` (or set CRIA_SKIP_MODEL_TESTS=1)",
            path.display()
        );
    }

    #[test]
    fn tiny_bench_on_smollm2_reports_both_tests_and_the_roofline() {
        let Some(path) = real_model("smollm2-135m-instruct") else {
            return;
        };
        let model = Model::load(&path).unwrap();
        let (mut runner, fallback) = DeviceRunner::open(&model, 2, cria_model::DeviceChoice::Cpu);
        assert!(fallback.is_none());
        let mut tokens = TokenSource::new(&model);
        let pp = time_reps(2, || prompt_once(&model, &mut runner, &mut tokens, 8)).unwrap();
        let tg = time_reps(2, || gen_once(&model, &mut runner, &mut tokens, 4)).unwrap();
        let tests = vec![
            TestResult::new("pp8".into(), 8, 0, &pp),
            TestResult::new("tg4".into(), 0, 4, &tg),
        ];
        let DeviceRunner::Cpu(cpu) = &runner else {
            panic!("--device cpu runs on the CPU")
        };
        let bw = read_bandwidth(cpu.pool(), 8 << 20, 1);
        let report = Report::new(&path, &model, ("cpu".into(), 2), tests, Some(bw));
        assert_eq!(report.model_type, "llama Q4_1");
        // SmolLM2-135M: about 135 M parameters.
        assert!((130e6..140e6).contains(&(report.model_n_params as f64)));
        assert!(
            report
                .tests
                .iter()
                .all(|t| t.samples_ts.len() == 2 && t.avg_ts > 0.0)
        );
        let d = report.decode.as_ref().unwrap();
        assert!(d.roofline_ts > 0.0 && d.roofline_fraction > 0.0);
        let md = report.markdown();
        assert!(md.contains("| pp8 |") && md.contains("| tg4 |"), "{md}");
        assert!(md.contains("% of the roofline"), "{md}");
        assert!(md.contains("| CPU |") && md.contains("device: cpu"), "{md}");
        let json: serde_json::Value = serde_json::to_value(&report).unwrap();
        assert_eq!(json["tests"][1]["n_gen"], 4);
        assert_eq!(
            json["weight_bytes_per_token"],
            model.weight_bytes_per_token()
        );
    }

    #[test]
    fn token_source_starts_with_bos_and_stays_in_the_vocabulary() {
        let Some(path) = real_model("gemma-3-270m") else {
            return;
        };
        let model = Model::load(&path).unwrap();
        assert_eq!(model_type(&model), "gemma3 Q4_K_M");
        let mut src = TokenSource::new(&model);
        // Gemma adds BOS (id 2).
        let p = src.prompt(300);
        assert_eq!(p[0], 2);
        assert!(p.iter().all(|&t| (t as usize) < model.n_vocab()));
        // Random ids, not a constant.
        assert!(p[1..].windows(2).any(|w| w[0] != w[1]));
    }
}
