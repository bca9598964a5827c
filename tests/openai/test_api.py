"""The OpenAI Python client, unchanged, against `cria serve` on the real default model."""

import concurrent.futures
import time

import openai
import pytest

from conftest import error_body, http, metric

HELLO = [{"role": "user", "content": "Name three colors."}]


def chat(client, model, **kw):
    kw.setdefault("messages", HELLO)
    kw.setdefault("max_tokens", 24)
    return client.chat.completions.create(model=model, **kw)


def streamed_text(client, model, **kw):
    chunks = list(chat(client, model, stream=True, **kw))
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices), chunks


def test_models_lists_the_served_model(client, model):
    ids = [m.id for m in client.models.list().data]
    assert ids == [model]


def test_chat_completion(client, model):
    r = chat(client, model, temperature=0)
    assert r.object == "chat.completion" and r.model == model and r.id.startswith("chatcmpl-")
    c = r.choices[0]
    assert c.message.role == "assistant" and c.message.content.strip()
    assert c.finish_reason in ("stop", "length")
    assert r.usage.prompt_tokens > 5 and 0 < r.usage.completion_tokens <= 24
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    assert r.system_fingerprint


def test_content_parts_equal_string_content(client, model):
    parts = [{"role": "user", "content": [{"type": "text", "text": "Name three "}, {"type": "text", "text": "colors."}]}]
    a = chat(client, model, temperature=0, messages=parts).choices[0].message.content
    b = chat(client, model, temperature=0).choices[0].message.content
    assert a == b


def test_streaming_chat_matches_non_streaming(client, model):
    plain = chat(client, model, temperature=0, max_tokens=40).choices[0].message.content
    text, chunks = streamed_text(client, model, temperature=0, max_tokens=40)
    assert text == plain
    assert chunks[0].object == "chat.completion.chunk"
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")
    assert all(c.choices[0].finish_reason is None for c in chunks[:-1])


def test_stream_usage_chunk(client, model):
    chunks = list(chat(client, model, stream=True, stream_options={"include_usage": True}, max_tokens=8, temperature=0))
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens <= 8
    assert chunks[-1].usage.prompt_tokens > 0
    assert all(c.usage is None for c in chunks[:-1])


def test_completions_string_and_list(client, model):
    r = client.completions.create(model=model, prompt="The capital of France is", max_tokens=8, temperature=0)
    assert r.object == "text_completion" and r.choices[0].text
    r = client.completions.create(model=model, prompt=["One, two,", "A, B,"], max_tokens=6, temperature=0)
    assert [c.index for c in r.choices] == [0, 1]
    assert r.choices[0].text != r.choices[1].text


def test_streaming_completion_matches(client, model):
    kw = dict(model=model, prompt="Once upon a time", max_tokens=20, temperature=0)
    plain = client.completions.create(**kw).choices[0].text
    text = "".join(c.choices[0].text for c in client.completions.create(stream=True, **kw) if c.choices)
    assert text == plain


def test_n_two_choices(client, model):
    r = chat(client, model, n=2, temperature=1.0, seed=3, max_tokens=16)
    assert [c.index for c in r.choices] == [0, 1]
    assert all(c.message.content for c in r.choices)


def test_stop_strings(client, model):
    full = chat(client, model, temperature=0, max_tokens=40).choices[0].message.content
    words = full.split()
    assert len(words) > 3, full
    stop = words[2]
    r = chat(client, model, temperature=0, max_tokens=40, stop=[stop, "zzzz-never"])
    assert r.choices[0].message.content == full[: full.index(stop)]
    assert r.choices[0].finish_reason == "stop"
    text, _ = streamed_text(client, model, temperature=0, max_tokens=40, stop=stop)
    assert text == full[: full.index(stop)]


def test_seed_reproducibility(client, model):
    kw = dict(temperature=1.0, seed=1234, max_tokens=30)
    a = chat(client, model, **kw).choices[0].message.content
    b = chat(client, model, **kw).choices[0].message.content
    assert a == b
    others = {chat(client, model, temperature=1.0, seed=s, max_tokens=30).choices[0].message.content for s in range(4)}
    assert len(others) > 1


def test_chat_logprobs(client, model):
    r = chat(client, model, temperature=0, logprobs=True, top_logprobs=3, max_tokens=10)
    content = r.choices[0].logprobs.content
    assert len(content) == r.usage.completion_tokens or r.choices[0].finish_reason == "stop"
    for t in content:
        assert t.logprob <= 0 and len(t.top_logprobs) == 3
        assert t.top_logprobs[0].token == t.token  # greedy picks the most likely token
        assert abs(t.top_logprobs[0].logprob - t.logprob) < 1e-4


def test_completion_logprobs(client, model):
    r = client.completions.create(model=model, prompt="1, 2, 3,", max_tokens=5, temperature=0, logprobs=2)
    lp = r.choices[0].logprobs
    assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs) == 5
    assert "".join(lp.tokens) == r.choices[0].text


PROBE = [{"role": "user", "content": "Write a sentence about the sea."}]


def probe_tokens(client, model, stream):
    """The probe's greedy (token, logprob) pairs, streamed or not."""
    kw = dict(messages=PROBE, temperature=0, max_tokens=48, logprobs=True, top_logprobs=1)
    if not stream:
        return [(t.token, t.logprob) for t in chat(client, model, **kw).choices[0].logprobs.content]
    chunks = chat(client, model, stream=True, **kw)
    return [(t.token, t.logprob) for c in chunks if c.choices and c.choices[0].logprobs for t in c.choices[0].logprobs.content]


@pytest.mark.parametrize("probe_delay", [0.0, 0.3])
def test_greedy_text_is_the_same_alone_and_among_seven_others(client, model, probe_delay):
    """Bit-identical: the same tokens with the same log-probabilities (floats compared exactly), alone and among
    7 others arriving at staggered times around the probe, streamed and not."""
    alone = probe_tokens(client, model, stream=False)
    assert alone

    def other(i):
        time.sleep(0.1 * i)
        msg = [{"role": "user", "content": f"Count from {i} to {i + 10}."}]
        return chat(client, model, messages=msg, temperature=0, max_tokens=30 + i)

    for stream in (True, False):
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            futures = [pool.submit(other, i) for i in range(7)]
            time.sleep(probe_delay)
            together = pool.submit(probe_tokens, client, model, stream)
            for f in futures:
                f.result(timeout=300)
            assert together.result(timeout=300) == alone, f"stream={stream}"


@pytest.mark.parametrize(
    "kw,param",
    [
        ({"temperature": -1}, "temperature"),
        ({"top_p": 0}, "top_p"),
        ({"top_p": 1.5}, "top_p"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"n": 17}, "n"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"top_logprobs": 2}, "top_logprobs"),
    ],
)
def test_out_of_range_fields_are_400(client, model, kw, param):
    with pytest.raises(openai.BadRequestError) as e:
        chat(client, model, **kw)
    assert e.value.status_code == 400
    assert e.value.body["type"] == "invalid_request_error"
    if param:
        assert e.value.body["param"] == param


def test_context_length_exceeded(client, model):
    long = "word " * 5000
    with pytest.raises(openai.BadRequestError) as e:
        chat(client, model, messages=[{"role": "user", "content": long}])
    assert e.value.body["code"] == "context_length_exceeded"


def test_unknown_model_is_404(client):
    with pytest.raises(openai.NotFoundError) as e:
        chat(client, "no-such-model")
    assert e.value.body["code"] == "model_not_found"


def test_raw_http_errors(base_url):
    nan = '{"messages": [{"role": "user", "content": "x"}], "temperature": NaN}'
    status, _, text = http("POST", base_url + "/v1/chat/completions", nan, {"Content-Type": "application/json"})
    assert status == 400 and error_body(text)["type"] == "invalid_request_error"
    status, _, text = http("POST", base_url + "/v1/chat/completions", "{oops", {"Content-Type": "application/json"})
    assert status == 400 and error_body(text)["type"] == "invalid_request_error"
    status, _, text = http("GET", base_url + "/v1/nowhere")
    assert status == 404 and error_body(text)["code"] == "unknown_url"
    big = b'{"messages": [{"role": "user", "content": "' + b"x" * (5 << 20) + b'"}]}'
    status, _, text = http("POST", base_url + "/v1/chat/completions", big, {"Content-Type": "application/json"})
    assert status == 413 and error_body(text)
    assert http("GET", base_url + "/health")[0:3:2] == (200, '{"status":"ok"}')


def test_disconnect_mid_stream_frees_the_sequence(client, model, base_url):
    stream = chat(client, model, stream=True, max_tokens=2000, temperature=1.0, seed=1)
    for i, _ in enumerate(stream):
        if i == 3:
            break
    stream.close()
    import time

    for _ in range(100):
        if metric(base_url, "cria_running_sequences") == 0:
            break
        time.sleep(0.1)
    assert metric(base_url, "cria_running_sequences") == 0
    assert metric(base_url, "cria_kv_cache_tokens") == 0


def test_metrics(base_url, client, model):
    chat(client, model, max_tokens=4, temperature=0)
    _, _, text = http("GET", base_url + "/metrics")
    for name in [
        "cria_requests_total",
        "cria_prompt_tokens_total",
        "cria_generated_tokens_total",
        "cria_queue_depth",
        "cria_running_sequences",
        "cria_kv_cache_tokens",
        "cria_time_to_first_token_seconds_bucket",
        "cria_inter_token_latency_seconds_bucket",
    ]:
        assert name in text
