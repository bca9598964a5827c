"""Tool calling and reasoning output with the OpenAI client, on the default small model with chat templates
that teach tools (Qwen2.5's, Hermes-style `<tool_call>`) and thinking (Qwen3's), given by --chat-template."""

import json
import os

import openai
import pytest

from conftest import Server

TEMPLATES = os.path.join(os.path.dirname(__file__), "..", "..", "testdata", "templates")

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "The city"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city", "unit"],
            "additionalProperties": False,
        },
    },
}
TIME = {
    "type": "function",
    "function": {
        "name": "get_time",
        "description": "Get the local time in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
ASK = [{"role": "user", "content": "What is the weather like in Paris and in London?"}]


def server_with(template):
    return Server("--chat-template", os.path.join(TEMPLATES, template), "--parallel", "4", "--ctx", "2048")


@pytest.fixture(scope="module")
def qwen25():
    s = server_with("qwen2.5-instruct.jinja")
    yield openai.OpenAI(base_url=s.url + "/v1", api_key="unused", max_retries=0, timeout=120)
    s.stop()


@pytest.fixture(scope="module")
def qwen3():
    s = server_with("qwen3.jinja")
    yield openai.OpenAI(base_url=s.url + "/v1", api_key="unused", max_retries=0, timeout=120)
    s.stop()


def check_weather_arguments(arguments):
    """The arguments validate against WEATHER's schema (required keys, types, enum, nothing else)."""
    args = json.loads(arguments)
    schema = WEATHER["function"]["parameters"]
    assert set(args) == set(schema["required"]), args
    assert isinstance(args["city"], str)
    assert args["unit"] in schema["properties"]["unit"]["enum"]
    return args


def create(client, model, **kw):
    kw.setdefault("messages", ASK)
    kw.setdefault("temperature", 0)
    kw.setdefault("seed", 7)
    kw.setdefault("max_tokens", 200)
    return client.chat.completions.create(model=model, **kw)


def assembled(stream):
    """A stream's deltas assembled as a client does: content, reasoning, and calls by index."""
    content, reasoning, calls, finish, order = "", "", {}, None, []
    for chunk in stream:
        for choice in chunk.choices:
            d = choice.delta
            if d.content:
                content += d.content
                order.append("content")
            r = getattr(d, "reasoning_content", None)
            if r:
                reasoning += r
                order.append("reasoning")
            for tc in d.tool_calls or []:
                if tc.index not in calls:
                    assert tc.id and tc.id.startswith("call_") and tc.function.name, tc
                    calls[tc.index] = {"name": tc.function.name, "arguments": ""}
                else:
                    assert tc.id is None and tc.function.name is None, "id and name come once"
                calls[tc.index]["arguments"] += tc.function.arguments or ""
            finish = choice.finish_reason or finish
    return content, reasoning, calls, finish, order


def test_required_returns_get_weather_with_valid_arguments(qwen25, model):
    r = create(qwen25, model, tools=[WEATHER], tool_choice="required")
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls
    assert calls, choice.message
    for call in calls:
        assert call.type == "function" and call.id.startswith("call_")
        assert call.function.name == "get_weather"
        check_weather_arguments(call.function.arguments)


def test_named_function_is_the_one_called(qwen25, model):
    r = create(
        qwen25,
        model,
        tools=[WEATHER, TIME],
        tool_choice={"type": "function", "function": {"name": "get_time"}},
        parallel_tool_calls=False,
    )
    calls = r.choices[0].message.tool_calls
    assert [c.function.name for c in calls] == ["get_time"]
    assert isinstance(json.loads(calls[0].function.arguments)["city"], str)


def test_two_parallel_calls_come_back_as_index_0_and_1(qwen25, model):
    r = create(qwen25, model, tools=[WEATHER], tool_choice="required")
    calls = r.choices[0].message.tool_calls
    assert len(calls) == 2, calls
    assert len({c.id for c in calls}) == 2
    _, _, streamed, finish, _ = assembled(create(qwen25, model, tools=[WEATHER], tool_choice="required", stream=True))
    assert sorted(streamed) == [0, 1] and finish == "tool_calls"
    single = create(qwen25, model, tools=[WEATHER], tool_choice="required", parallel_tool_calls=False)
    assert len(single.choices[0].message.tool_calls) == 1


def test_streamed_calls_assemble_to_the_non_streamed_ones(qwen25, model):
    for choice in ["required", "auto"]:
        whole = create(qwen25, model, tools=[WEATHER, TIME], tool_choice=choice).choices[0]
        content, _, calls, finish, _ = assembled(
            create(qwen25, model, tools=[WEATHER, TIME], tool_choice=choice, stream=True)
        )
        expected = [{"name": c.function.name, "arguments": c.function.arguments} for c in whole.message.tool_calls or []]
        assert [calls[i] for i in sorted(calls)] == expected
        assert content == (whole.message.content or "")
        assert finish == whole.finish_reason


def test_tool_result_sent_back_yields_a_text_answer(qwen25, model):
    first = create(qwen25, model, tools=[WEATHER], tool_choice="required", parallel_tool_calls=False)
    call = first.choices[0].message.tool_calls[0]
    messages = ASK[:1] + [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": call.id, "type": "function", "function": {"name": call.function.name, "arguments": call.function.arguments}}
            ],
        },
        {"role": "tool", "tool_call_id": call.id, "content": json.dumps({"temperature": 18, "sky": "sunny"})},
    ]
    r = create(qwen25, model, messages=messages, tools=[WEATHER], max_tokens=60)
    choice = r.choices[0]
    assert choice.message.tool_calls is None, choice.message
    assert choice.message.content.strip(), choice
    assert choice.finish_reason in ("stop", "length")
    # The call and its result went through the template: the prompt is longer than the question alone.
    plain = create(qwen25, model, tools=[WEATHER], max_tokens=1)
    assert r.usage.prompt_tokens > plain.usage.prompt_tokens + 20


def test_tools_with_another_constraint_or_unknown_choice_is_a_400(qwen25, model):
    with pytest.raises(openai.BadRequestError) as e:
        create(qwen25, model, tools=[WEATHER], tool_choice={"type": "function", "function": {"name": "nope"}})
    assert e.value.body["param"] == "tool_choice"
    with pytest.raises(openai.BadRequestError) as e:
        create(qwen25, model, tools=[WEATHER], response_format={"type": "json_object"})
    assert e.value.body["param"] == "response_format"


def test_default_template_without_tools_gets_them_described(client, model):
    """smollm2's own template renders no tools: the generic fallback still returns a valid call."""
    r = create(client, model, tools=[WEATHER], tool_choice="required", parallel_tool_calls=False)
    (call,) = r.choices[0].message.tool_calls
    assert call.function.name == "get_weather"
    check_weather_arguments(call.function.arguments)


# A think block forced by a regex, since the small model does not think by itself.
THINK = {"regex": "<think>[a-z ]{1,40}</think>\n\n[A-Z][a-z ]{0,30}"}


def test_think_block_goes_to_reasoning_content(qwen3, model):
    r = create(qwen3, model, messages=[{"role": "user", "content": "Say hi"}], extra_body=THINK)
    m = r.choices[0].message
    assert m.reasoning_content and m.reasoning == m.reasoning_content, m
    assert "<think>" not in m.content and "</think>" not in m.content and m.content.strip(), m
    content, reasoning, _, _, order = assembled(
        create(qwen3, model, messages=[{"role": "user", "content": "Say hi"}], extra_body=THINK, stream=True)
    )
    assert (content, reasoning) == (m.content, m.reasoning_content)
    assert order.index("content") > max(i for i, k in enumerate(order) if k == "reasoning")
    inline = create(
        qwen3, model, messages=[{"role": "user", "content": "Say hi"}], extra_body={**THINK, "reasoning_format": "none"}
    ).choices[0].message
    assert inline.content == f"<think>{m.reasoning_content}</think>\n\n{m.content}"
    assert getattr(inline, "reasoning_content", None) is None


def test_chat_template_kwargs_reach_the_template(qwen3, model):
    """Qwen3's template writes an empty think block into the prompt when enable_thinking is false."""
    ask = [{"role": "user", "content": "Say hi"}]
    on = create(qwen3, model, messages=ask, max_tokens=1, extra_body={"chat_template_kwargs": {"enable_thinking": True}})
    off = create(qwen3, model, messages=ask, max_tokens=1, extra_body={"chat_template_kwargs": {"enable_thinking": False}})
    assert off.usage.prompt_tokens > on.usage.prompt_tokens
