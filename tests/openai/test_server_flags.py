"""Servers started with their own flags: API key, a tiny queue, shutdown on SIGTERM."""

import concurrent.futures
import signal
import time

import openai
import pytest

from conftest import MODEL, error_body, http


def client_for(server, key="unused"):
    return openai.OpenAI(base_url=server.url + "/v1", api_key=key, max_retries=0, timeout=120)


def test_api_key(server_factory):
    s = server_factory("--api-key", "s3cret", "--parallel", "1")
    with pytest.raises(openai.AuthenticationError) as e:
        client_for(s, "wrong").models.list()
    assert e.value.status_code == 401
    status, _, text = http("GET", s.url + "/v1/models")
    assert status == 401 and error_body(text)["code"] == "invalid_api_key"
    assert [m.id for m in client_for(s, "s3cret").models.list().data] == [MODEL]
    # The auth scheme is case-insensitive (issue 18: `bearer` was refused).
    assert http("GET", s.url + "/v1/models", headers={"Authorization": "bearer s3cret"})[0] == 200
    assert http("GET", s.url + "/health")[0] == 200


def test_full_queue_is_429_with_retry_after(server_factory):
    s = server_factory("--parallel", "1", "--max-queue", "1")
    c = client_for(s)
    # ignore_eos and many tokens: the running request must still be running 2 s later on a fast CPU
    # (CI failed when the model ended its story early and the queue emptied).
    long = dict(model=MODEL, messages=[{"role": "user", "content": "Tell a long story."}], max_tokens=1200,
                extra_body={"ignore_eos": True})
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        running = pool.submit(lambda: list(c.chat.completions.create(stream=True, **long)))
        time.sleep(1.0)
        queued = pool.submit(lambda: c.chat.completions.create(**long))
        time.sleep(1.0)
        with pytest.raises(openai.RateLimitError) as e:
            c.chat.completions.create(**long)
        assert e.value.status_code == 429
        assert e.value.response.headers.get("retry-after")
        running.result(timeout=300)
        queued.result(timeout=300)


def test_sigterm_finishes_running_requests_then_exits(server_factory):
    s = server_factory("--parallel", "2", "--shutdown-timeout", "60")
    c = client_for(s)
    req = dict(model=MODEL, messages=[{"role": "user", "content": "Count to fifty."}], max_tokens=60, temperature=0)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        running = pool.submit(lambda: c.chat.completions.create(**req))
        time.sleep(0.5)
        s.proc.send_signal(signal.SIGTERM)
        r = running.result(timeout=120)
        assert r.choices[0].message.content
    assert s.proc.wait(timeout=60) == 0


def test_sigterm_deadline_ends_a_running_stream_with_an_error_and_exit_code_4(server_factory):
    s = server_factory("--parallel", "2", "--shutdown-timeout", "1")
    stream = client_for(s).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Count to a thousand."}], max_tokens=100000,
        stream=True, extra_body={"ignore_eos": True})
    with pytest.raises(openai.APIError) as e:
        for n, _ in enumerate(stream):
            if n == 2:
                s.proc.send_signal(signal.SIGTERM)
    assert "shut down" in str(e.value)
    assert s.proc.wait(timeout=60) == 4
