"""The prompt cache through the OpenAI client: usage.prompt_tokens_details.cached_tokens, cache_salt, a
multi-turn chat reusing its first turn, and the gateway metrics under vLLM's and Cria's names by default, Cria's
only with `--metrics-names cria` (checked by promtool when it is installed; CI installs it and sets
CRIA_REQUIRE_PROMTOOL=1)."""

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


# The endpoint picker's configuration for `--metrics-names cria`: which of our metrics it reads for the
# model-server protocol.
EPP_CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes" / "epp" / "endpoint-picker-config.yaml"

# The gateway set under vLLM's names (the picker's default mapping), each beside the Cria metric it copies.
VLLM_TWINS = {
    "vllm:num_requests_waiting": "cria_queue_depth",
    "vllm:num_requests_running": "cria_running_sequences",
    "vllm:kv_cache_usage_perc": "cria_kv_cache_usage_ratio",
    "vllm:prefix_cache_queries_total": "cria_prefix_cache_queries_total",
    "vllm:prefix_cache_hits_total": "cria_prefix_cache_hits_total",
}


def epp_metric_names():
    config = yaml.safe_load(EPP_CONFIG.read_text())
    [extractor] = [p for p in config["plugins"] if p["type"] == "model-server-protocol-metrics"]
    [engine] = extractor["parameters"]["engineConfigs"]
    assert engine["name"] == extractor["parameters"]["defaultEngine"] == "cria"
    return {key: spec for key, spec in engine.items() if key.endswith("Spec") and spec}


def samples(text):
    """name{labels} -> value of every sample in an exposition."""
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line and line[0] != "#"}


def cache_config(text, name):
    info = re.search("^" + re.escape(name) + r'\{block_size="(\d+)",num_gpu_blocks="(\d+)"\} 1$', text, re.M)
    assert info and int(info[1]) > 0 and int(info[2]) > 0, text
    return int(info[1]), int(info[2])


def check_cria_gateway_metrics(text):
    """The picker's protocol under Cria's names (as the `--metrics-names cria` configuration reads it)."""
    names = epp_metric_names()
    assert set(names) == {"queuedRequestsSpec", "runningRequestsSpec", "kvUsageSpec", "cacheInfoSpec"}
    values = samples(text)
    for key in ("queuedRequestsSpec", "runningRequestsSpec", "kvUsageSpec"):
        assert names[key] in values, (names[key], text)
    assert 0.0 <= values[names["kvUsageSpec"]] <= 1.0
    # The picker reads the cache configuration from these two labels, as it reads vLLM's.
    return cache_config(text, names["cacheInfoSpec"])


def test_gateway_metrics(client, model, base_url):
    messages = long_chat("the tide")
    ask(client, model, messages)
    before = metric(base_url, "vllm:prefix_cache_hits_total")
    ask(client, model, messages)
    assert metric(base_url, "vllm:prefix_cache_hits_total") > before
    assert metric(base_url, "cria_prefix_cache_hits_total") > before
    _, _, text = http("GET", base_url + "/metrics")
    config = check_cria_gateway_metrics(text)
    # By default the vLLM names are there too, with the values of Cria's in the same scrape.
    values = samples(text)
    for vllm, cria in VLLM_TWINS.items():
        assert values[vllm] == values[cria], (vllm, cria, text)
    assert 0.0 <= values["vllm:kv_cache_usage_perc"] <= 1.0
    assert cache_config(text, "vllm:cache_config_info") == config


def promtool(text):
    return subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)


def need_promtool():
    if shutil.which("promtool") is None:
        if os.environ.get("CRIA_REQUIRE_PROMTOOL") == "1":
            pytest.fail("promtool is not installed (Debian's prometheus package)")
        pytest.skip("promtool is not installed (Debian's prometheus package)")


def test_default_metrics_lint_only_vllms_colons(base_url):
    need_promtool()
    _, _, text = http("GET", base_url + "/metrics")
    # It parses, and the one lint is the colon in vLLM's names (exit code 3: lint problems only), on each of them.
    result = promtool(text)
    problems = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert result.returncode == 3, result.stdout + result.stderr
    assert all(re.fullmatch(r"vllm:\w+ metric names should not contain ':'", p) for p in problems), problems
    assert {p.split()[0] for p in problems} == {*VLLM_TWINS, "vllm:cache_config_info"}, problems


def test_cria_metric_names_pass_promtool(server_factory):
    s = server_factory("--metrics-names", "cria", "--parallel", "1", "--ctx", "512")
    _, _, text = http("GET", s.url + "/metrics")
    assert "vllm:" not in text, text
    check_cria_gateway_metrics(text)
    need_promtool()
    result = promtool(text)
    assert result.returncode == 0, result.stdout + result.stderr
