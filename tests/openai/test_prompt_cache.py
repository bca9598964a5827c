"""The prompt cache through the OpenAI client: usage.prompt_tokens_details.cached_tokens, cache_salt, a
multi-turn chat reusing its first turn, and the gateway metrics (checked by promtool when it is installed;
CI installs it and sets CRIA_REQUIRE_PROMTOOL=1)."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import http, metric

NOTES = "The harbour was quiet, the boats were tied up and the gulls circled over the nets. " * 30


def ask(client, model, messages, **kw):
    return client.chat.completions.create(
        model=model, messages=messages, max_tokens=8, temperature=0, **kw
    )


def long_chat(topic):
    # The topic opens the prompt, so each test's prompt shares no cached block with another's.
    return [
        {"role": "system", "content": f"Topic: {topic}. You answer in one sentence. Notes: " + NOTES},
        {"role": "user", "content": f"Say something about {topic}."},
    ]


def test_a_repeated_prompt_reports_cached_tokens_and_the_same_text(client, model):
    messages = long_chat("the harbour")
    first = ask(client, model, messages)
    second = ask(client, model, messages)
    prompt = first.usage.prompt_tokens
    assert prompt > 500
    assert first.usage.prompt_tokens_details.cached_tokens == 0
    cached = second.usage.prompt_tokens_details.cached_tokens
    assert 0 < cached < prompt and cached >= prompt - 128, (cached, prompt)
    assert second.choices[0].message.content == first.choices[0].message.content


def test_a_different_cache_salt_never_hits(client, model):
    messages = long_chat("the gulls")
    salted = ask(client, model, messages, extra_body={"cache_salt": "tenant-a"})
    assert salted.usage.prompt_tokens_details.cached_tokens == 0
    other = ask(client, model, messages, extra_body={"cache_salt": "tenant-b"})
    assert other.usage.prompt_tokens_details.cached_tokens == 0
    unsalted = ask(client, model, messages)
    assert unsalted.usage.prompt_tokens_details.cached_tokens == 0
    again = ask(client, model, messages, extra_body={"cache_salt": "tenant-a"})
    assert again.usage.prompt_tokens_details.cached_tokens > 0
    texts = {r.choices[0].message.content for r in (salted, other, unsalted, again)}
    assert len(texts) == 1


def test_a_conversation_with_one_more_turn_reuses_the_first(client, model):
    messages = long_chat("the boats")
    first = ask(client, model, messages)
    messages += [
        {"role": "assistant", "content": first.choices[0].message.content},
        {"role": "user", "content": "And one more sentence?"},
    ]
    second = ask(client, model, messages)
    cached = second.usage.prompt_tokens_details.cached_tokens
    assert cached >= first.usage.prompt_tokens - 128, (cached, first.usage.prompt_tokens)


def test_streamed_usage_reports_cached_tokens(client, model):
    messages = long_chat("the nets")
    ask(client, model, messages)
    stream = client.chat.completions.create(
        model=model, messages=messages, max_tokens=4, temperature=0, stream=True,
        stream_options={"include_usage": True},
    )
    usage = [c.usage for c in stream if c.usage is not None]
    assert len(usage) == 1 and usage[0].prompt_tokens_details.cached_tokens > 0


# The endpoint picker's configuration: which of our metrics it reads for the model-server protocol.
EPP_CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes" / "epp" / "endpoint-picker-config.yaml"


def epp_metric_names():
    config = yaml.safe_load(EPP_CONFIG.read_text())
    [extractor] = [p for p in config["plugins"] if p["type"] == "model-server-protocol-metrics"]
    [engine] = extractor["parameters"]["engineConfigs"]
    assert engine["name"] == extractor["parameters"]["defaultEngine"] == "cria"
    return {key: spec for key, spec in engine.items() if key.endswith("Spec") and spec}


def test_gateway_metrics(client, model, base_url):
    messages = long_chat("the tide")
    ask(client, model, messages)
    before = metric(base_url, "cria_prefix_cache_hits_total")
    ask(client, model, messages)
    assert metric(base_url, "cria_prefix_cache_hits_total") > before
    assert metric(base_url, "cria_prefix_cache_queries_total") > before
    names = epp_metric_names()
    assert set(names) == {"queuedRequestsSpec", "runningRequestsSpec", "kvUsageSpec", "cacheInfoSpec"}
    for key in ("queuedRequestsSpec", "runningRequestsSpec", "kvUsageSpec"):
        metric(base_url, names[key])
    assert 0.0 <= metric(base_url, names["kvUsageSpec"]) <= 1.0
    _, _, text = http("GET", base_url + "/metrics")
    # The picker reads the cache configuration from these two labels, as it reads vLLM's.
    info = re.search(
        "^" + names["cacheInfoSpec"] + r'\{block_size="(\d+)",num_gpu_blocks="(\d+)"\} 1$', text, re.M
    )
    assert info and int(info[1]) > 0 and int(info[2]) > 0, text


def test_metrics_pass_promtool(base_url):
    if shutil.which("promtool") is None:
        if os.environ.get("CRIA_REQUIRE_PROMTOOL") == "1":
            pytest.fail("promtool is not installed (Debian's prometheus package)")
        pytest.skip("promtool is not installed (Debian's prometheus package)")
    _, _, text = http("GET", base_url + "/metrics")
    result = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
