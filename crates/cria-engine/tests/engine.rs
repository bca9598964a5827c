//! The engine on a fake model: scheduling, determinism, stop rules, cancellation, limits.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cria_engine::{
    Backend, Engine, EngineConfig, EngineError, Event, FaultPlan, FinishReason, Request, Step,
    SubmitError, Vocab,
};
use cria_sampling::SamplingParams;
use tokio::sync::mpsc::UnboundedReceiver;

const VOCAB: usize = 64;
const EOG: u32 = 63;

/// Next-token logits depend only on the sequence's own history, like a real model's.
type StepLog = Arc<Mutex<Vec<Vec<(usize, usize)>>>>;

/// A paged KV pool of token ids: each step stores its tokens through the block table and reads the whole
/// history back through it, so a wrong table or a wrongly reused block changes the logits.
struct FakeBackend {
    pool: HashMap<(u32, usize), u32>,
    block_size: usize,
    log: StepLog,
    delay: Duration,
}

impl Backend for FakeBackend {
    fn reset_slot(&mut self, _slot: usize) {}

    fn forward(&mut self, steps: &[Step<'_>]) -> Result<Vec<Vec<f32>>, EngineError> {
        std::thread::sleep(self.delay);
        self.log
            .lock()
            .unwrap()
            .push(steps.iter().map(|s| (s.slot, s.tokens.len())).collect());
        Ok(steps.iter().map(|s| self.feed(s)).collect())
    }

    fn kv_bytes(&self) -> usize {
        self.pool.len() * 4
    }
}

impl FakeBackend {
    fn feed(&mut self, step: &Step<'_>) -> Vec<f32> {
        let bs = self.block_size;
        let at = |pos: usize| (step.blocks[pos / bs], pos % bs);
        for (i, &t) in step.tokens.iter().enumerate() {
            self.pool.insert(at(step.start + i), t);
        }
        if !step.want_logits {
            return Vec::new();
        }
        let history: Vec<u32> = (0..step.start + step.tokens.len())
            .map(|pos| self.pool[&at(pos)])
            .collect();
        let h = history
            .iter()
            .fold(7u64, |h, &t| h.wrapping_mul(31).wrapping_add(u64::from(t)));
        (0..VOCAB as u64)
            .map(|i| {
                ((h ^ (i * 2654435761)) % 1000) as f32 / 100.0 - if i == 63 { 20.0 } else { 0.0 }
            })
            .collect()
    }
}

/// Tokens are letters, but 26 and 27 are the two halves of "é", 28 a space and 63 the end of generation.
struct FakeVocab(Vec<Vec<u8>>);

impl FakeVocab {
    fn new() -> Self {
        let mut v: Vec<Vec<u8>> = (0..VOCAB as u8).map(|i| vec![b'a' + (i % 26)]).collect();
        v[26] = vec![0xC3];
        v[27] = vec![0xA9];
        v[28] = b" ".to_vec();
        v[63] = Vec::new();
        FakeVocab(v)
    }
}

impl Vocab for FakeVocab {
    fn token_bytes(&self, id: u32) -> &[u8] {
        &self.0[id as usize]
    }

    fn is_eog(&self, id: u32) -> bool {
        id == EOG
    }

    fn end_of_generation_ids(&self) -> Vec<u32> {
        vec![EOG]
    }
}

struct Harness {
    engine: Engine,
    log: StepLog,
}

fn start(config: EngineConfig, delay: Duration) -> Harness {
    let log = Arc::new(Mutex::new(Vec::new()));
    let backend_log = Arc::clone(&log);
    let block_size = config.block_size;
    let engine = Engine::start(config, Arc::new(FakeVocab::new()), move || {
        Ok(FakeBackend {
            pool: HashMap::new(),
            block_size,
            log: backend_log,
            delay,
        })
    })
    .unwrap();
    Harness { engine, log }
}

fn request(prompt: &[u32], max_tokens: usize) -> Request {
    Request {
        prompt: prompt.to_vec(),
        sampling: SamplingParams::greedy(),
        max_tokens,
        stop: vec![],
        logprobs: None,
        ignore_eos: false,
        constraint: None,
        cache_salt: None,
    }
}

/// Collects a request's text and how it finished.
fn collect(mut rx: UnboundedReceiver<Event>) -> (String, FinishReason, usize) {
    let mut text = String::new();
    while let Some(ev) = rx.blocking_recv() {
        match ev {
            Event::Token { text: t, .. } => text.push_str(&t),
            Event::Done {
                reason,
                completion_tokens,
                ..
            } => return (text, reason, completion_tokens),
            Event::Failed(m) => panic!("request failed: {m}"),
        }
    }
    panic!("events ended without Done");
}

fn wait_until(engine: &Engine, what: impl Fn(&cria_engine::StatsSnapshot) -> bool) {
    for _ in 0..500 {
        if what(&engine.stats()) {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!(
        "engine never reached the expected state: {:?}",
        engine.stats()
    );
}

#[test]
fn generates_max_tokens_then_stops_with_length() {
    let h = start(EngineConfig::default(), Duration::ZERO);
    let (text, reason, n) = collect(h.engine.submit(request(&[1, 2, 3], 12)).unwrap());
    assert_eq!((reason, n), (FinishReason::Length, 12));
    assert!(!text.is_empty());
}

#[test]
fn greedy_text_is_the_same_alone_and_among_seven_others() {
    let h = start(
        EngineConfig {
            step_tokens: 16,
            ..EngineConfig::default()
        },
        Duration::ZERO,
    );
    let prompt: Vec<u32> = (0..40).collect();
    let alone = collect(h.engine.submit(request(&prompt, 30)).unwrap());
    let others: Vec<_> = (0..7u32)
        .map(|i| {
            h.engine
                .submit(request(&[i, i + 1, 5, 9], 25 + i as usize))
                .unwrap()
        })
        .collect();
    let again = collect(h.engine.submit(request(&prompt, 30)).unwrap());
    for rx in others {
        collect(rx);
    }
    assert_eq!(alone, again);
}

#[test]
fn seeded_sampling_is_reproducible() {
    let h = start(EngineConfig::default(), Duration::ZERO);
    let sampled = |seed| {
        let sampling = SamplingParams {
            temperature: 1.5,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.0,
            seed: Some(seed),
            ..Default::default()
        };
        collect(
            h.engine
                .submit(Request {
                    sampling,
                    ..request(&[4, 5], 40)
                })
                .unwrap(),
        )
        .0
    };
    assert_eq!(sampled(11), sampled(11));
    assert_ne!(sampled(11), sampled(12));
}

#[test]
fn stop_string_ends_generation_before_it() {
    let h = start(EngineConfig::default(), Duration::ZERO);
    let (full, _, _) = collect(h.engine.submit(request(&[9, 9], 40)).unwrap());
    let stop: String = full.chars().skip(10).take(3).collect();
    let expected = &full[..full.find(&stop).unwrap()];
    let req = Request {
        stop: vec![stop.clone(), "unlikely-zzz".into()],
        ..request(&[9, 9], 40)
    };
    let (text, reason, _) = collect(h.engine.submit(req).unwrap());
    assert_eq!(
        (text.as_str(), reason),
        (expected, FinishReason::StopSequence(0))
    );
}

#[test]
fn end_of_generation_token_stops_without_text() {
    let h = start(EngineConfig::default(), Duration::ZERO);
    let sampling = SamplingParams {
        logit_bias: vec![(EOG, 1000.0)],
        ..SamplingParams::greedy()
    };
    let (text, reason, n) = collect(
        h.engine
            .submit(Request {
                sampling,
                ..request(&[1], 10)
            })
            .unwrap(),
    );
    assert_eq!((text.as_str(), reason, n), ("", FinishReason::Stop, 1));
}

#[test]
fn logprobs_are_reported_per_token() {
    let h = start(EngineConfig::default(), Duration::ZERO);
    let mut rx = h
        .engine
        .submit(Request {
            logprobs: Some(3),
            ignore_eos: false,
            ..request(&[2, 3], 5)
        })
        .unwrap();
    let mut seen = 0;
    while let Some(Event::Token {
        logprob: Some(lp), ..
    }) = rx.blocking_recv()
    {
        assert_eq!(lp.top.len(), 3);
        assert_eq!(lp.top[0].0, lp.id, "greedy picks the most likely token");
        assert!(lp.logprob <= 0.0 && lp.top[0].1 >= lp.top[1].1);
        seen += 1;
    }
    assert_eq!(seen, 5);
}

#[test]
fn long_prompt_is_chunked_and_decoding_goes_on_meanwhile() {
    let h = start(
        EngineConfig {
            step_tokens: 16,
            prefill_chunk: 4,
            ..EngineConfig::default()
        },
        Duration::ZERO,
    );
    // Decodes until dropped, so it is still decoding in slot 0 while the long prompt prefills in slot 1.
    let mut first = h.engine.submit(request(&[1, 2], 100_000)).unwrap();
    assert!(matches!(first.blocking_recv(), Some(Event::Token { .. })));
    let long: Vec<u32> = (0..100).map(|i| i % 60).collect();
    collect(h.engine.submit(request(&long, 2)).unwrap());
    drop(first);
    let log = h.log.lock().unwrap();
    let prefill_steps: Vec<_> = log
        .iter()
        .filter(|s| s.iter().any(|&(slot, n)| slot == 1 && n > 1))
        .collect();
    assert_eq!(
        prefill_steps.len(),
        100 / 4,
        "chunks of 4: {prefill_steps:?}"
    );
    for step in prefill_steps {
        assert!(
            step.iter().map(|&(_, n)| n).sum::<usize>() <= 16,
            "{step:?}"
        );
        assert!(
            step.contains(&(0, 1)),
            "the decoding sequence fed a token in every prefill step: {step:?}"
        );
    }
}

#[test]
fn dropped_receiver_cancels_and_frees_the_slot() {
    let h = start(
        EngineConfig {
            parallel: 2,
            ..EngineConfig::default()
        },
        Duration::from_millis(2),
    );
    let mut rx = h.engine.submit(request(&[1, 2], 100_000)).unwrap();
    assert!(rx.blocking_recv().is_some());
    wait_until(&h.engine, |s| s.running == 1 && s.kv_tokens > 0);
    drop(rx);
    wait_until(&h.engine, |s| s.running == 0 && s.kv_tokens == 0);
}

#[test]
fn full_queue_refuses_new_requests() {
    let h = start(
        EngineConfig {
            parallel: 1,
            max_queue: 1,
            ..EngineConfig::default()
        },
        Duration::from_millis(5),
    );
    let _running = h.engine.submit(request(&[1], 10_000)).unwrap();
    wait_until(&h.engine, |s| s.running == 1 && s.waiting == 0);
    let _queued = h.engine.submit(request(&[1], 5)).unwrap();
    assert_eq!(h.engine.stats().waiting, 1);
    let refused = h.engine.submit(request(&[1], 5)).unwrap_err();
    assert_eq!(refused, SubmitError::QueueFull { limit: 1 });
}

/// Issue 18: the 429 said "15 requests are already waiting" when `--max-queue 8` held 8 (it counted the
/// requests bound for free slots too); it names the queue's limit now.
#[test]
fn queue_full_message_names_the_queue_limit() {
    let message = SubmitError::QueueFull { limit: 8 }.to_string();
    assert!(message.contains("queue of 8 waiting requests"), "{message}");
}

/// Everything a request received: its text and, at the end, how it finished or why it failed.
fn outcome(mut rx: UnboundedReceiver<Event>) -> (String, Result<FinishReason, String>) {
    let mut text = String::new();
    while let Some(ev) = rx.blocking_recv() {
        match ev {
            Event::Token { text: t, .. } => text.push_str(&t),
            Event::Done { reason, .. } => return (text, Ok(reason)),
            Event::Failed(m) => return (text, Err(m)),
        }
    }
    (text, Err("events ended without Done or Failed".into()))
}

fn faulty(at: u64, repeat: bool, parallel: usize) -> EngineConfig {
    EngineConfig {
        parallel,
        fault: Some(FaultPlan { at, repeat }),
        ..EngineConfig::default()
    }
}

/// Issue 18: a panic in a step fails the requests of that step, frees their slot and cache, and the engine
/// serves the next request as if nothing had happened.
#[test]
fn a_panic_in_a_step_fails_its_requests_and_the_engine_goes_on() {
    let req = request(&[5, 6, 7], 12);
    let reference = collect(
        start(EngineConfig::default(), Duration::ZERO)
            .engine
            .submit(req.clone())
            .unwrap(),
    );
    let h = start(faulty(3, false, 1), Duration::ZERO);
    let (_, failed) = outcome(h.engine.submit(req.clone()).unwrap());
    let message = failed.unwrap_err();
    assert!(
        message.contains("internal error") && message.contains("injected fault at step 3"),
        "{message}"
    );
    wait_until(&h.engine, |s| {
        s.running == 0 && s.kv_tokens == 0 && s.waiting == 0
    });
    assert_eq!(h.engine.failure(), None);
    // Same slot, same request: had the panicked step's cache been kept, the text would differ.
    assert_eq!(collect(h.engine.submit(req).unwrap()), reference);
    let steps = h.log.lock().unwrap().len();
    assert!(
        steps > 3,
        "the engine stepped on after the fault: {steps} steps"
    );
}

/// Issue 18: an engine that keeps panicking gives up: every request it holds fails, new ones are refused
/// with the reason, the gauges show nothing running, and `failure()` says why (the server's /health).
#[test]
fn an_engine_that_cannot_go_on_fails_everything_and_says_why() {
    let h = start(
        EngineConfig {
            max_consecutive_faults: 3,
            ..faulty(1, true, 1)
        },
        Duration::from_millis(2),
    );
    let receivers: Vec<_> = (0..5)
        .map(|i| h.engine.submit(request(&[1 + i], 50)).unwrap())
        .collect();
    for rx in receivers {
        let (_, result) = outcome(rx);
        assert!(result.is_err(), "every request fails: {result:?}");
    }
    wait_until(&h.engine, |s| {
        s.running == 0 && s.waiting == 0 && s.kv_tokens == 0
    });
    let failure = h.engine.failure().expect("the engine reports its failure");
    assert!(failure.contains("3 steps in a row panicked"), "{failure}");
    match h.engine.submit(request(&[1], 5)) {
        Err(SubmitError::EngineFailed(reason)) => assert_eq!(reason, failure),
        other => panic!("expected EngineFailed, got {other:?}"),
    }
}

/// A panic outside a step (here: while emptying a slot for a new request) cannot be pinned on one
/// request, so the engine stops at once rather than serve from a state it does not know.
#[test]
fn a_panic_outside_a_step_stops_the_engine() {
    struct PanicsOnReset;
    impl Backend for PanicsOnReset {
        fn reset_slot(&mut self, _slot: usize) {
            panic!("reset failed");
        }
        fn forward(&mut self, steps: &[Step<'_>]) -> Result<Vec<Vec<f32>>, EngineError> {
            Ok(steps.iter().map(|_| vec![0.0; VOCAB]).collect())
        }
        fn kv_bytes(&self) -> usize {
            0
        }
    }
    let engine = Engine::start(EngineConfig::default(), Arc::new(FakeVocab::new()), || {
        Ok(PanicsOnReset)
    })
    .unwrap();
    let (_, result) = outcome(engine.submit(request(&[1], 5)).unwrap());
    assert!(result.unwrap_err().contains("reset failed"));
    wait_until(&engine, |s| s.waiting == 0 && s.running == 0);
    assert!(engine.failure().unwrap().contains("outside a step"));
}

#[test]
fn prompts_that_cannot_run_are_refused() {
    let h = start(
        EngineConfig {
            ctx: 8,
            ..EngineConfig::default()
        },
        Duration::ZERO,
    );
    assert_eq!(
        h.engine.submit(request(&[], 5)).err(),
        Some(SubmitError::EmptyPrompt)
    );
    let too_long = h.engine.submit(request(&[1; 8], 5)).err();
    assert_eq!(
        too_long,
        Some(SubmitError::PromptTooLong { prompt: 8, ctx: 8 })
    );
}

#[test]
fn generation_is_clipped_to_the_context() {
    let h = start(
        EngineConfig {
            ctx: 10,
            ..EngineConfig::default()
        },
        Duration::ZERO,
    );
    let (_, reason, n) = collect(h.engine.submit(request(&[1; 6], 100)).unwrap());
    assert_eq!((reason, n), (FinishReason::Length, 4));
}

#[test]
fn shutdown_finishes_running_requests_and_refuses_new_ones() {
    let h = start(
        EngineConfig {
            parallel: 1,
            ..EngineConfig::default()
        },
        Duration::from_millis(1),
    );
    let running = h.engine.submit(request(&[1], 20)).unwrap();
    wait_until(&h.engine, |s| s.running == 1);
    let queued = h.engine.submit(request(&[2], 20)).unwrap();
    h.engine.shutdown();
    assert_eq!(collect(running).2, 20);
    let mut queued = queued;
    assert!(matches!(queued.blocking_recv(), Some(Event::Failed(_))));
    assert_eq!(
        h.engine.submit(request(&[1], 5)).err(),
        Some(SubmitError::ShuttingDown)
    );
    assert!(h.engine.join(Duration::from_secs(5)));
}

#[test]
fn a_burst_for_free_slots_is_not_refused_while_a_step_runs() {
    let h = start(
        EngineConfig {
            parallel: 8,
            max_queue: 1,
            ..EngineConfig::default()
        },
        Duration::from_millis(50),
    );
    let mut held = vec![h.engine.submit(request(&[1], 100_000)).unwrap()];
    wait_until(&h.engine, |s| s.running == 1 && s.waiting == 0);
    // 7 free slots and a queue of 1: 8 more are accepted, whether or not a step ends meanwhile.
    for i in 0..8 {
        match h.engine.submit(request(&[1, 2], 100_000)) {
            Ok(rx) => held.push(rx),
            Err(e) => panic!("request {i} refused: {e}"),
        }
    }
    let refused = h.engine.submit(request(&[1], 5)).unwrap_err();
    assert_eq!(refused, SubmitError::QueueFull { limit: 1 });
}

#[test]
fn ignore_eos_generates_max_tokens_past_the_end_of_generation_token() {
    let h = start(EngineConfig::default(), Duration::ZERO);
    let mut req = request(&[1, 2], 10);
    req.sampling.logit_bias = vec![(EOG, 100.0)];
    let (_, reason, n) = collect(h.engine.submit(req.clone()).unwrap());
    assert_eq!((reason, n), (FinishReason::Stop, 1), "EOG is favoured");
    req.ignore_eos = true;
    let (_, reason, n) = collect(h.engine.submit(req).unwrap());
    assert_eq!((reason, n), (FinishReason::Length, 10));
}

/// Text, finish reason and cached prompt tokens of a request.
fn collect_cached(mut rx: UnboundedReceiver<Event>) -> (String, usize) {
    let mut text = String::new();
    while let Some(ev) = rx.blocking_recv() {
        match ev {
            Event::Token { text: t, .. } => text.push_str(&t),
            Event::Done { cached_tokens, .. } => return (text, cached_tokens),
            Event::Failed(m) => panic!("request failed: {m}"),
        }
    }
    panic!("events ended without Done");
}

fn cache_config(prompt_cache: bool) -> EngineConfig {
    EngineConfig {
        block_size: 4,
        prefill_chunk: 4,
        prompt_cache,
        ..EngineConfig::default()
    }
}

fn salted(prompt: &[u32], salt: Option<&str>) -> Request {
    Request {
        cache_salt: salt.map(str::to_string),
        ..request(prompt, 12)
    }
}

/// A prompt sent again starts from its cached blocks (all but the last block, which holds the token whose
/// logits are needed) and generates what computing it all gives.
#[test]
fn a_repeated_prompt_starts_from_cached_blocks_with_the_same_output() {
    let prompt: Vec<u32> = (0..40).map(|i| i % 50).collect();
    let cold = start(cache_config(false), Duration::ZERO);
    let (want, none) = collect_cached(cold.engine.submit(salted(&prompt, None)).unwrap());
    assert_eq!(none, 0);
    let h = start(cache_config(true), Duration::ZERO);
    let (first, cached) = collect_cached(h.engine.submit(salted(&prompt, None)).unwrap());
    assert_eq!((first.as_str(), cached), (want.as_str(), 0));
    h.log.lock().unwrap().clear();
    let (second, cached) = collect_cached(h.engine.submit(salted(&prompt, None)).unwrap());
    assert_eq!((second.as_str(), cached), (want.as_str(), 36));
    let first_step = h.log.lock().unwrap()[0].clone();
    assert_eq!(first_step, vec![(0, 4)], "only the last block is computed");
    let stats = h.engine.stats();
    assert_eq!(
        (stats.prefix_cache_queries, stats.prefix_cache_hits),
        (80, 36)
    );
}

/// n > 1: the same prompt several times at once (and again after) gives the same greedy text as no cache.
#[test]
fn parallel_copies_of_a_prompt_agree_with_the_cache_on_and_off() {
    let prompt: Vec<u32> = (0..30).map(|i| (i * 7) % 50).collect();
    let texts = |prompt_cache: bool| -> Vec<String> {
        let h = start(cache_config(prompt_cache), Duration::ZERO);
        let rxs: Vec<_> = (0..3)
            .map(|_| h.engine.submit(salted(&prompt, None)).unwrap())
            .collect();
        let mut texts: Vec<String> = rxs.into_iter().map(|rx| collect_cached(rx).0).collect();
        texts.push(collect_cached(h.engine.submit(salted(&prompt, None)).unwrap()).0);
        texts
    };
    let on = texts(true);
    assert!(on.iter().all(|t| t == &on[0]));
    assert_eq!(on, texts(false));
}

#[test]
fn a_different_cache_salt_never_hits() {
    let prompt: Vec<u32> = (0..40).collect();
    let h = start(cache_config(true), Duration::ZERO);
    let (a, _) = collect_cached(h.engine.submit(salted(&prompt, Some("a"))).unwrap());
    for salt in [Some("b"), None] {
        let (text, cached) = collect_cached(h.engine.submit(salted(&prompt, salt)).unwrap());
        assert_eq!((text.as_str(), cached), (a.as_str(), 0), "salt {salt:?}");
    }
    let (_, cached) = collect_cached(h.engine.submit(salted(&prompt, Some("a"))).unwrap());
    assert_eq!(cached, 36);
}

/// With a pool of one context, another prompt evicts most of the first one's blocks (the tail first): the
/// first prompt sent again reuses what is left and still generates the same text.
#[test]
fn output_is_unchanged_after_eviction_from_a_small_pool() {
    let config = EngineConfig {
        parallel: 1,
        ctx: 64,
        ..cache_config(true)
    };
    let h = start(config, Duration::ZERO);
    let a: Vec<u32> = (0..40).map(|i| i % 50).collect();
    let b: Vec<u32> = (0..40).map(|i| (i * 3 + 1) % 50).collect();
    let (want, _) = collect_cached(h.engine.submit(salted(&a, None)).unwrap());
    collect_cached(h.engine.submit(salted(&b, None)).unwrap());
    let (again, cached) = collect_cached(h.engine.submit(salted(&a, None)).unwrap());
    assert_eq!(again, want);
    assert!(cached > 0 && cached < 36, "partly evicted: {cached} cached");
}

/// A request's generated token ids (from their logprobs) and its cached prompt tokens.
fn collect_ids(mut rx: UnboundedReceiver<Event>) -> (Vec<u32>, usize) {
    let mut ids = Vec::new();
    while let Some(ev) = rx.blocking_recv() {
        match ev {
            Event::Token { logprob, .. } => ids.extend(logprob.map(|lp| lp.id)),
            Event::Done { cached_tokens, .. } => return (ids, cached_tokens),
            Event::Failed(m) => panic!("request failed: {m}"),
        }
    }
    panic!("events ended without Done");
}

/// Regression (chat turn 2): reuse was cut at prefill-chunk boundaries (so that a prompt was always computed
/// in the same chunks), and a conversation's next turn recomputed up to a chunk of what it already had. Now
/// the next turn, sent back with the reply and a few more tokens, computes only those and the reply's last
/// token (sampled, never fed): the full blocks and the part-filled one the reply ended in are reused; and its
/// text is a cold run's.
#[test]
fn a_next_turn_computes_only_its_new_tokens() {
    let config = |prompt_cache| EngineConfig {
        prefill_chunk: 64,
        ..cache_config(prompt_cache)
    };
    let h = start(config(true), Duration::ZERO);
    let turn1: Vec<u32> = (0..22).map(|i| (i * 5) % 50).collect();
    let with_ids = |prompt: &[u32]| Request {
        logprobs: Some(0),
        ..salted(prompt, None)
    };
    let (reply, _) = collect_ids(h.engine.submit(with_ids(&turn1)).unwrap());
    assert!(!reply.is_empty());
    let mut turn2 = [turn1.as_slice(), &reply].concat();
    let fed = turn2.len() - 1;
    turn2.extend([40, 41, 42, 43, 44]);
    let (text, cached) = collect_cached(h.engine.submit(salted(&turn2, None)).unwrap());
    let (computed, new) = (turn2.len() - cached, turn2.len() - fed);
    assert!(
        cached > 0 && computed <= new,
        "{computed} of {} tokens computed, {new} new",
        turn2.len()
    );
    let cold = start(config(false), Duration::ZERO);
    let (want, _) = collect_cached(cold.engine.submit(salted(&turn2, None)).unwrap());
    assert_eq!(text, want);
}
