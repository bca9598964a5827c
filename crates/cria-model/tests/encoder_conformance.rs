//! The encoders against llama.cpp: tiny random-weight `bert` and `nomic-bert` GGUF files and llama.cpp's
//! embeddings of five token-id sequences under each pooling (testdata/bert/, made by
//! scripts/bert-conformance/make.py; see PROVENANCE.md there).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cria_model::{Encoder, Pooling};
use serde::Deserialize;

#[derive(Deserialize)]
struct Reference {
    cases: Vec<Vec<u32>>,
    /// llama.cpp's default (flash attention on: K, V and Q rounded to f16 inside attention).
    pooled: BTreeMap<String, Vec<Vec<f32>>>,
    /// Flash attention off: attention in f32, as Cria computes it.
    pooled_no_flash_attn: BTreeMap<String, Vec<Vec<f32>>>,
}

/// Cosine similarity each pooled vector (each token's for `none`) must reach against llama.cpp's default
/// (flash attention, K/V in f16 as in Cria).
const MIN_COSINE: f64 = 0.9999;
/// Largest |Δ| allowed on any value there (values of order 1, LayerNorm outputs; the tiny files' peaked
/// attention makes f16 rounding show more than in real-sized models).
const MAX_ABS_DIFF: f32 = 2.5e-2;
/// Against llama.cpp with f32 attention, whose results differ from its own default by ~3e-3.
const MIN_COSINE_F32: f64 = 0.9995;
const MAX_ABS_DIFF_F32: f32 = 5e-2;

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/bert")
}

fn load(arch: &str) -> (Encoder, Reference) {
    let file = cria_gguf::GgufFile::open(data_dir().join(format!("{arch}.gguf"))).expect("gguf");
    let enc = Encoder::from_gguf(file, 2).expect("encoder loads");
    let text = std::fs::read_to_string(data_dir().join(format!("{arch}.embeddings.json")))
        .expect("reference embeddings");
    (enc, serde_json::from_str(&text).expect("reference parses"))
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| f64::from(x) * f64::from(y))
        .sum();
    let na: f64 = a.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

fn pooling(name: &str) -> Pooling {
    match name {
        "none" => Pooling::None,
        "mean" => Pooling::Mean,
        "cls" => Pooling::Cls,
        "last" => Pooling::Last,
        other => panic!("unknown pooling {other}"),
    }
}

/// Every case under every pooling: worst cosine and worst |Δ| against one of llama.cpp's results.
fn worst(
    enc: &Encoder,
    cases: &[Vec<u32>],
    pooled: &BTreeMap<String, Vec<Vec<f32>>>,
) -> (f64, f32) {
    let d = enc.n_embd();
    let (mut worst_cos, mut worst_diff) = (1.0f64, 0.0f32);
    for (name, expected) in pooled {
        for (ids, want) in cases.iter().zip(expected) {
            let got = enc.embed_with(ids, pooling(name)).expect("embeds");
            assert_eq!(got.len(), want.len(), "{name} {} tokens", ids.len());
            for (g, w) in got.chunks(d).zip(want.chunks(d)) {
                worst_cos = worst_cos.min(cosine(g, w));
            }
            let diff = got
                .iter()
                .zip(want)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            worst_diff = worst_diff.max(diff);
        }
    }
    (worst_cos, worst_diff)
}

fn check_arch(arch: &str) {
    let (enc, reference) = load(arch);
    let (cos_fa, diff_fa) = worst(&enc, &reference.cases, &reference.pooled);
    eprintln!(
        "{arch} vs llama.cpp flash attention: worst cosine {cos_fa:.7}, worst |delta| {diff_fa:.2e}"
    );
    let (cos, diff) = worst(&enc, &reference.cases, &reference.pooled_no_flash_attn);
    eprintln!("{arch} vs llama.cpp f32 attention: worst cosine {cos:.7}, worst |delta| {diff:.2e}");
    assert!(
        cos_fa >= MIN_COSINE && diff_fa <= MAX_ABS_DIFF,
        "{arch}: cosine {cos_fa}, |delta| {diff_fa}"
    );
    assert!(
        cos >= MIN_COSINE_F32 && diff <= MAX_ABS_DIFF_F32,
        "{arch}: cosine {cos}, |delta| {diff}"
    );
}

#[test]
fn bert_embeddings_match_llama_cpp() {
    check_arch("bert");
}

#[test]
fn nomic_bert_embeddings_match_llama_cpp() {
    check_arch("nomic-bert");
}

#[test]
fn embed_uses_the_model_pooling_and_unit_length() {
    for (arch, model_pooling) in [("bert", "mean"), ("nomic-bert", "cls")] {
        let (enc, reference) = load(arch);
        let ids = &reference.cases[2];
        let got = enc.embed(ids).expect("embeds");
        let norm: f32 = got.iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "{arch}: norm {norm}");
        let want = &reference.pooled[model_pooling][2];
        assert!(cosine(&got, want) >= MIN_COSINE, "{arch}");
    }
}

#[test]
fn encoder_refuses_a_decoder_file_and_bad_ids() {
    let (enc, _) = load("bert");
    let n_vocab = u32::try_from(enc.spec().n_vocab).expect("small vocab");
    assert!(enc.embed(&[2, n_vocab]).is_err());
    // absolute positions: no more tokens than position rows
    let too_long = vec![5u32; enc.spec().n_ctx_train + 1];
    assert!(enc.embed(&too_long).is_err());
    assert!(enc.embed(&[]).expect("empty input").is_empty());
}
