"""Tool calling in the Llama 3.x and Mistral syntaxes with the OpenAI client, on the default small model with
each family's real chat template given by --chat-template (the small model's own renders no tools):
Llama 3.2's bare `{"name": ..., "parameters": ...}` replies under `tool_choice: "auto"`, Mistral Nemo's
`[TOOL_CALLS][{...}]` and Mistral Small 3.2's `[TOOL_CALLS]name[ARGS]{...}`."""

import json
import os
import subprocess

import openai
import pytest

from test_tools import ASK, TEMPLATES, TIME, WEATHER, assembled, check_weather_arguments, create, server_with


def token_id(model, text):
    """The one token the model's tokenizer makes of `text` (through `cria tokenize`)."""
    out = subprocess.run([os.environ["CRIA_BIN"], "tokenize", "-m", model], input=text, capture_output=True,
                         text=True, timeout=120, check=True).stdout
    (tid,) = json.loads(out)
    return tid


def client_for(template):
    s = server_with(template)
    return s, openai.OpenAI(base_url=s.url + "/v1", api_key="unused", max_retries=0, timeout=120)


@pytest.fixture(scope="module")
def llama32():
    s, c = client_for("llama-3.2-instruct.jinja")
    yield c
    s.stop()


@pytest.fixture(scope="module", params=["mistral-nemo-instruct.jinja", "mistral-small-3.2-instruct.jinja"])
def mistral(request):
    s, c = client_for(request.param)
    yield c
    s.stop()


def test_llama3_reply_opening_with_json_is_held_to_a_call(llama32, model):
    """Under `auto`, a reply that opens with `{"` is a call from there on: the grammar starts at the trigger, so
    the name is a tool's and the arguments validate (the small model alone writes neither)."""
    # The bias makes the reply open with `{"`; from there the grammar decides what is allowed.
    bias = {str(token_id(model, '{"')): 100}
    kw = dict(tools=[WEATHER, TIME], tool_choice="auto", logit_bias=bias, parallel_tool_calls=False)
    r = create(llama32, model, **kw)
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls", choice
    calls = choice.message.tool_calls
    assert len(calls) == 1 and choice.message.content is None, choice.message
    for call in calls:
        assert call.function.name in ("get_weather", "get_time"), call
        if call.function.name == "get_weather":
            check_weather_arguments(call.function.arguments)
        else:
            assert isinstance(json.loads(call.function.arguments)["city"], str)
    content, _, streamed, finish, _ = assembled(
        create(llama32, model, stream=True, **kw)
    )
    assert [streamed[i] for i in sorted(streamed)] == [
        {"name": c.function.name, "arguments": c.function.arguments} for c in calls
    ]
    assert content == "" and finish == "tool_calls"


def test_llama3_reply_in_words_stays_text(llama32, model):
    bias = {str(token_id(model, '{"')): -100, str(token_id(model, "{")): -100}
    r = create(llama32, model, tools=[WEATHER], tool_choice="auto", logit_bias=bias, max_tokens=30)
    choice = r.choices[0]
    assert choice.message.tool_calls is None and choice.message.content, choice.message
    assert choice.finish_reason in ("stop", "length")


def test_llama3_required_call(llama32, model):
    r = create(llama32, model, tools=[WEATHER], tool_choice="required", parallel_tool_calls=False)
    (call,) = r.choices[0].message.tool_calls
    assert call.function.name == "get_weather"
    check_weather_arguments(call.function.arguments)


def test_mistral_required_call_and_its_result_back_through_the_template(mistral, model):
    """Both Mistral syntaxes constrain a required call; Mistral's templates refuse ids other than nine letters
    and digits, so the `call_...` id the client sends back is mapped for them."""
    first = create(mistral, model, tools=[WEATHER], tool_choice="required", parallel_tool_calls=False)
    (call,) = first.choices[0].message.tool_calls
    assert first.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather" and call.id.startswith("call_")
    check_weather_arguments(call.function.arguments)
    messages = ASK[:1] + [
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": call.id, "type": "function",
             "function": {"name": call.function.name, "arguments": call.function.arguments}}]},
        {"role": "tool", "tool_call_id": call.id, "content": json.dumps({"temperature": 18, "sky": "sunny"})},
    ]
    r = create(mistral, model, messages=messages, tools=[WEATHER], max_tokens=40)
    assert r.choices[0].message.content is not None, r.choices[0]
    plain = create(mistral, model, tools=[WEATHER], max_tokens=1)
    assert r.usage.prompt_tokens > plain.usage.prompt_tokens + 20


def test_mistral_named_and_parallel_calls_stream_as_they_return(mistral, model):
    named = create(mistral, model, tools=[WEATHER, TIME], parallel_tool_calls=False,
                   tool_choice={"type": "function", "function": {"name": "get_time"}})
    assert [c.function.name for c in named.choices[0].message.tool_calls] == ["get_time"]
    whole = create(mistral, model, tools=[WEATHER, TIME], tool_choice="required").choices[0]
    content, _, streamed, finish, _ = assembled(
        create(mistral, model, tools=[WEATHER, TIME], tool_choice="required", stream=True)
    )
    expected = [{"name": c.function.name, "arguments": c.function.arguments} for c in whole.message.tool_calls]
    assert expected and sorted(streamed) == list(range(len(expected)))
    assert [streamed[i] for i in sorted(streamed)] == expected
    assert (content, finish) == (whole.message.content or "", whole.finish_reason)
