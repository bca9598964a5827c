"""An OpenAI-client run against `cria serve --device gpu` (started by tests/gpu/run.sh on lavapipe)."""

import os

import openai

BASE_URL = os.environ.get("CRIA_BASE_URL", "http://127.0.0.1:8080")
MODEL = os.environ.get("CRIA_MODEL_ID", "smollm2-135m-instruct")


def client():
    return openai.OpenAI(base_url=BASE_URL + "/v1", api_key="unused", max_retries=0, timeout=600)


def test_the_server_runs_on_the_gpu():
    with open(os.environ["CRIA_SERVE_LOG"]) as f:
        log = f.read()
    assert "on gpu:" in log, log


def test_chat_completion_on_the_gpu_answers_and_counts_tokens():
    r = client().chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "What is the capital of France?"}],
        max_tokens=8,
        temperature=0,
    )
    choice = r.choices[0]
    assert choice.finish_reason in ("stop", "length")
    assert choice.message.content.strip(), r
    assert r.usage.completion_tokens >= 1
    assert r.usage.prompt_tokens > 5


def test_two_streams_on_the_gpu_both_finish_and_greedy_repeats():
    # Two requests at once share the GPU's steps (a batch of two sequences, each with its own device KV).
    c = client()
    prompt = [{"role": "user", "content": "Count from one to five."}]

    def stream():
        chunks = c.chat.completions.create(
            model=MODEL, messages=prompt, max_tokens=6, temperature=0, stream=True
        )
        return "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(2) as pool:
        a, b = pool.map(lambda _: stream(), range(2))
    assert a and a == b, (a, b)
