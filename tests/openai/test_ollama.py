"""Ollama's API with the official `ollama` Python client against the server run.sh started."""

import json

import ollama
import pytest

from conftest import BASE_URL, MODEL, http

MESSAGES = [{"role": "user", "content": "Name three colours."}]
GREEDY = {"temperature": 0, "num_predict": 24}


@pytest.fixture(scope="module")
def oc():
    return ollama.Client(host=BASE_URL, timeout=120)


def test_chat_whole_and_streamed_agree(oc):
    whole = oc.chat(model=MODEL, messages=MESSAGES, options=GREEDY)
    assert whole.done and whole.message.role == "assistant" and whole.message.content
    assert whole.done_reason in ("stop", "length")
    assert whole.prompt_eval_count > 0 and 0 < whole.eval_count <= 24
    parts = list(oc.chat(model=MODEL, messages=MESSAGES, options=GREEDY, stream=True))
    assert all(not p.done for p in parts[:-1]) and parts[-1].done
    assert "".join(p.message.content for p in parts) == whole.message.content
    assert parts[-1].eval_count == whole.eval_count


def test_generate_and_options(oc):
    r = oc.generate(model=MODEL, prompt="Count: one, two,", options={**GREEDY, "num_predict": 5})
    assert r.done and r.done_reason == "length" and r.eval_count == 5 and r.response
    # A seed reproduces a sampled answer.
    opts = {"temperature": 0.9, "top_k": 40, "top_p": 0.9, "seed": 7, "num_predict": 12, "repeat_penalty": 1.1}
    a = oc.generate(model=MODEL, prompt="Tell me a story.", options=opts)
    b = oc.generate(model=MODEL, prompt="Tell me a story.", options=opts)
    assert a.response == b.response
    streamed = "".join(p.response for p in oc.generate(model=MODEL, prompt="Tell me a story.", options=opts,
                                                        stream=True))
    assert streamed == a.response


def test_stop_option_ends_before_the_stop_string(oc):
    free = oc.generate(model=MODEL, prompt="Count from 1 to 10: 1, 2,", options=GREEDY, raw=True)
    assert "5" in free.response
    stopped = oc.generate(model=MODEL, prompt="Count from 1 to 10: 1, 2,", options={**GREEDY, "stop": ["5"]},
                          raw=True)
    assert stopped.done_reason == "stop" and "5" not in stopped.response
    assert free.response.startswith(stopped.response)


def test_format_json_and_schema(oc):
    ask = 'Reply with a JSON object with one key, "ok", set to true.'
    r = oc.chat(model=MODEL, messages=[{"role": "user", "content": ask}], format="json",
                options={"temperature": 0, "num_predict": 300})
    assert r.done_reason == "stop" and isinstance(json.loads(r.message.content), dict)
    schema = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
              "required": ["name", "age"], "additionalProperties": False}
    r = oc.chat(model=MODEL, messages=[{"role": "user", "content": "A person."}], format=schema,
                options={"temperature": 0.7, "seed": 3, "num_predict": 200})
    obj = json.loads(r.message.content)
    assert set(obj) == {"name", "age"} and isinstance(obj["age"], int)


def test_tags_show_ps_version(oc):
    models = oc.list().models
    assert [m.model for m in models] == [MODEL + ":latest"]
    assert models[0].details.format == "gguf" and models[0].details.family == "llama"
    assert models[0].size > 0 and models[0].modified_at is not None
    shown = oc.show(MODEL + ":latest")
    assert "completion" in shown.capabilities and "embedding" in shown.capabilities
    assert shown.modelinfo["general.architecture"] == "llama"
    assert [m.model for m in oc.ps().models] == [MODEL + ":latest"]
    status, _, text = http("GET", BASE_URL + "/api/version")
    assert status == 200 and json.loads(text)["version"]


def test_embed_and_legacy_embeddings(oc):
    r = oc.embed(model=MODEL, input=["hello world", "goodbye"])
    assert len(r.embeddings) == 2 and abs(sum(x * x for x in r.embeddings[0]) - 1) < 1e-4
    legacy = oc.embeddings(model=MODEL, prompt="hello world")
    assert legacy.embedding == pytest.approx(r.embeddings[0], abs=1e-6)


def test_errors_take_ollamas_shape(oc):
    with pytest.raises(ollama.ResponseError) as e:
        oc.chat(model="no-such-model", messages=MESSAGES)
    assert e.value.status_code == 404 and "not found" in e.value.error
    with pytest.raises(ollama.ResponseError) as e:
        oc.chat(model=MODEL, messages=MESSAGES, options={"temperature": 5})
    assert e.value.status_code == 400 and "temperature" in e.value.error
    status, _, text = http("POST", BASE_URL + "/api/chat", "{not json")
    assert status == 400 and set(json.loads(text)) == {"error"}


def test_generate_context_continues_a_conversation(oc):
    opts = {"temperature": 0, "num_predict": 8}
    first = oc.generate(model=MODEL, prompt="My name is Ada.", options=opts)
    assert first.context and len(first.context) == first.prompt_eval_count + first.eval_count
    again = oc.generate(model=MODEL, prompt="My name is Ada.", options=opts, stream=True)
    assert list(again)[-1].context == first.context
    follow = oc.generate(model=MODEL, prompt="What is my name?", context=first.context, options=opts)
    alone = oc.generate(model=MODEL, prompt="What is my name?", options=opts)
    assert follow.prompt_eval_count == len(first.context) + alone.prompt_eval_count
