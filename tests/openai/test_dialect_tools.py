"""Tool calling through Anthropic's Messages API and Ollama's /api/chat, with the official clients, on the
default small model with Qwen2.5's chat template (Hermes-style `<tool_call>`), as test_tools.py does for
OpenAI's API."""

import json

import anthropic
import ollama
import openai
import pytest

from test_tools import ASK, TIME, WEATHER, check_weather_arguments, server_with

# Anthropic's tool shape: name, description, input_schema.
A_WEATHER = {
    "name": WEATHER["function"]["name"],
    "description": WEATHER["function"]["description"],
    "input_schema": WEATHER["function"]["parameters"],
}
A_TIME = {
    "name": TIME["function"]["name"],
    "description": TIME["function"]["description"],
    "input_schema": TIME["function"]["parameters"],
}
GREEDY = {"temperature": 0, "seed": 7}
# The ollama client keeps only type, description, enum and items of a schema's properties (and drops
# additionalProperties), so the OpenAI request it is compared with gets the same tool.
O_WEATHER = {"type": "function", "function": {
    **WEATHER["function"],
    "parameters": {k: v for k, v in WEATHER["function"]["parameters"].items() if k != "additionalProperties"},
}}


@pytest.fixture(scope="module")
def qwen25_server():
    s = server_with("qwen2.5-instruct.jinja")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def ac(qwen25_server):
    return anthropic.Anthropic(base_url=qwen25_server.url, api_key="unused", max_retries=0, timeout=300)


@pytest.fixture(scope="module")
def oc(qwen25_server):
    return ollama.Client(host=qwen25_server.url, timeout=300)


def create(ac, model, **kw):
    kw.setdefault("messages", ASK)
    kw.setdefault("max_tokens", 200)
    return ac.messages.create(model=model, extra_body=GREEDY, **kw)


def test_tool_choice_any_returns_tool_use_blocks(ac, model):
    r = create(ac, model, tools=[A_WEATHER], tool_choice={"type": "any"})
    assert r.stop_reason == "tool_use"
    uses = [b for b in r.content if b.type == "tool_use"]
    assert uses, r.content
    for use in uses:
        assert use.id.startswith("toolu_") and use.name == "get_weather"
        check_weather_arguments(json.dumps(use.input))
    assert len({u.id for u in uses}) == len(uses)


def test_a_named_tool_and_no_parallel_calls(ac, model):
    r = create(ac, model, tools=[A_WEATHER, A_TIME],
               tool_choice={"type": "tool", "name": "get_time", "disable_parallel_tool_use": True})
    uses = [b for b in r.content if b.type == "tool_use"]
    assert [u.name for u in uses] == ["get_time"] and isinstance(uses[0].input["city"], str)


def test_streamed_tool_use_assembles_to_the_whole_message(ac, model):
    kw = dict(tools=[A_WEATHER, A_TIME], tool_choice={"type": "any"})
    whole = create(ac, model, **kw)
    events = list(create(ac, model, stream=True, **kw))
    kinds = [e.type for e in events]
    assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"]
    blocks, current = [], None
    for e in events:
        if e.type == "content_block_start":
            assert current is None and e.index == len(blocks)
            current = {"type": e.content_block.type, "text": "", "json": ""}
            if e.content_block.type == "tool_use":
                assert e.content_block.id.startswith("toolu_")
                current["name"] = e.content_block.name
        elif e.type == "content_block_delta":
            assert e.index == len(blocks)
            if e.delta.type == "text_delta":
                current["text"] += e.delta.text
            else:
                assert e.delta.type == "input_json_delta"
                current["json"] += e.delta.partial_json
        elif e.type == "content_block_stop":
            blocks.append(current)
            current = None
    assert any(b["type"] == "tool_use" for b in blocks)
    expected = [
        {"type": "text", "text": b.text} if b.type == "text" else {"type": "tool_use", "name": b.name, "input": b.input}
        for b in whole.content
    ]
    got = [
        {"type": "text", "text": b["text"]} if b["type"] == "text"
        else {"type": "tool_use", "name": b["name"], "input": json.loads(b["json"])}
        for b in blocks
    ]
    assert got == expected
    assert events[-2].delta.stop_reason == whole.stop_reason == "tool_use"
    # The client's own stream helper builds the same message.
    with ac.messages.stream(model=model, max_tokens=200, messages=ASK, extra_body=GREEDY, **kw) as s:
        final = s.get_final_message()
    assert [(b.type, getattr(b, "input", None)) for b in final.content] == \
        [(b.type, getattr(b, "input", None)) for b in whole.content]


def test_tool_result_sent_back_yields_a_text_answer(ac, model):
    first = create(ac, model, tools=[A_WEATHER],
                   tool_choice={"type": "any", "disable_parallel_tool_use": True})
    (use,) = [b for b in first.content if b.type == "tool_use"]
    result = json.dumps({"temperature": 18, "sky": "sunny"})
    messages = ASK + [
        {"role": "assistant", "content": [b.model_dump() for b in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": result}]},
    ]
    r = create(ac, model, messages=messages, tools=[A_WEATHER], tool_choice={"type": "none"}, max_tokens=40)
    assert r.stop_reason in ("end_turn", "max_tokens")
    assert [b.type for b in r.content] == ["text"] and r.content[0].text.strip()
    # The call and its result went through the template.
    asked = ac.messages.count_tokens(model=model, messages=ASK, tools=[A_WEATHER]).input_tokens
    answered = ac.messages.count_tokens(model=model, messages=messages, tools=[A_WEATHER]).input_tokens
    assert answered > asked + 20


def test_bad_tool_choice_is_anthropics_400(ac, model):
    with pytest.raises(anthropic.BadRequestError) as e:
        create(ac, model, tools=[A_WEATHER], tool_choice={"type": "tool", "name": "nope"})
    assert e.value.body["error"]["type"] == "invalid_request_error"


def few_shot(dialect):
    """Three earlier rounds of calling get_weather, then a new question: the 135M model calls by itself
    only after such examples. `dialect` is "openai" or "ollama" (their call and tool-message shapes)."""
    messages = []
    for k, city in enumerate(["Oslo", "Rome", "Lima"]):
        arguments = {"city": city, "unit": "celsius"}
        if dialect == "openai":
            calls = [{"id": f"c{k}", "type": "function",
                      "function": {"name": "get_weather", "arguments": json.dumps(arguments)}}]
            result = {"role": "tool", "tool_call_id": f"c{k}", "content": json.dumps({"temperature": 20})}
        else:
            calls = [{"function": {"name": "get_weather", "arguments": arguments}}]
            result = {"role": "tool", "tool_name": "get_weather", "content": json.dumps({"temperature": 20})}
        messages += [
            {"role": "user", "content": f"What is the weather in {city}?"},
            {"role": "assistant", "content": "", "tool_calls": calls},
            result,
            {"role": "assistant", "content": f"It is 20 degrees in {city}."},
        ]
    return messages + [{"role": "user", "content": "What is the weather in Paris?"}]


def test_ollama_tool_calls_match_the_openai_ones(qwen25_server, oc, model):
    """Ollama has no tool_choice (auto): its calls are the ones the OpenAI route makes at temperature 0, and
    its assistant `tool_calls` and `tool` messages go back through the template as OpenAI's do."""
    client = openai.OpenAI(base_url=qwen25_server.url + "/v1", api_key="unused", max_retries=0, timeout=300)
    o = client.chat.completions.create(model=model, messages=few_shot("openai"), tools=[O_WEATHER],
                                       temperature=0, seed=7, max_tokens=120)
    expected = [(c.function.name, json.loads(c.function.arguments)) for c in o.choices[0].message.tool_calls or []]
    assert expected, o.choices[0].message
    opts = {"temperature": 0, "seed": 7, "num_predict": 120}
    ask = few_shot("ollama")
    r = oc.chat(model=model, messages=ask, tools=[O_WEATHER], options=opts)
    assert [(c.function.name, dict(c.function.arguments)) for c in r.message.tool_calls] == expected
    for name, arguments in expected:
        assert name == "get_weather" and isinstance(arguments["city"], str), expected
    streamed = list(oc.chat(model=model, messages=ask, tools=[O_WEATHER], options=opts, stream=True))
    calls = [(c.function.name, dict(c.function.arguments)) for part in streamed for c in part.message.tool_calls or []]
    assert calls == expected and streamed[-1].done
    content = "".join(part.message.content or "" for part in streamed)
    assert content == (r.message.content or "")
