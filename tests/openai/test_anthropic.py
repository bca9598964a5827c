"""Anthropic's Messages API with the official `anthropic` Python client against the server run.sh started."""

import json

import anthropic
import pytest

from conftest import BASE_URL, MODEL, http

MESSAGES = [{"role": "user", "content": "Name three colours."}]
# This client version has no sampling arguments (newer Claude models take none); the API's fields go in the body.
GREEDY = {"extra_body": {"temperature": 0}}


@pytest.fixture(scope="module")
def ac():
    return anthropic.Anthropic(base_url=BASE_URL, api_key="unused", max_retries=0, timeout=120)


def test_message_whole(ac):
    r = ac.messages.create(model=MODEL, max_tokens=24, messages=MESSAGES, system="You answer briefly.",
                           **GREEDY)
    assert r.type == "message" and r.role == "assistant" and r.id.startswith("msg_")
    assert r.content[0].type == "text" and r.content[0].text
    assert r.stop_reason in ("end_turn", "max_tokens") and r.stop_sequence is None
    assert r.usage.input_tokens > 0 and 0 < r.usage.output_tokens <= 24


def test_streamed_events_in_order_and_equal_to_whole(ac):
    kwargs = dict(model=MODEL, max_tokens=24, messages=MESSAGES, **GREEDY)
    whole = ac.messages.create(**kwargs)
    events = list(ac.messages.create(stream=True, **kwargs))
    kinds = [e.type for e in events]
    assert kinds[:2] == ["message_start", "content_block_start"]
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(kinds[2:-3]) <= {"ping", "content_block_delta"}
    text = "".join(e.delta.text for e in events if e.type == "content_block_delta")
    assert text == whole.content[0].text
    delta = events[-2]
    assert delta.delta.stop_reason == whole.stop_reason and delta.usage.output_tokens == whole.usage.output_tokens
    assert events[0].message.usage.input_tokens == whole.usage.input_tokens
    # The client's stream helper assembles the same message.
    with ac.messages.stream(**kwargs) as s:
        final = s.get_final_message()
    assert final.content[0].text == whole.content[0].text


def test_multi_turn_system_blocks_and_stop_sequences(ac):
    messages = [
        {"role": "user", "content": "Count from 1 to 10."},
        {"role": "assistant", "content": [{"type": "text", "text": "1, 2, 3, 4"}]},
        {"role": "user", "content": [{"type": "text", "text": "Again, from 1 to 10, commas between."}]},
    ]
    system = [{"type": "text", "text": "You count."}, {"type": "text", "text": "Nothing else."}]
    free = ac.messages.create(model=MODEL, max_tokens=40, messages=messages, system=system, **GREEDY)
    assert "5" in free.content[0].text
    r = ac.messages.create(model=MODEL, max_tokens=40, messages=messages, system=system,
                           stop_sequences=["zzz", "5"], **GREEDY)
    assert r.stop_reason == "stop_sequence" and r.stop_sequence == "5"
    assert "5" not in r.content[0].text and free.content[0].text.startswith(r.content[0].text)
    capped = ac.messages.create(model=MODEL, max_tokens=3, messages=messages,
                                extra_body={"top_k": 10, "top_p": 0.9})
    assert capped.stop_reason == "max_tokens" and capped.usage.output_tokens == 3


def test_count_tokens(ac):
    whole = ac.messages.create(model=MODEL, max_tokens=1, messages=MESSAGES, system="Be brief.")
    counted = ac.messages.count_tokens(model=MODEL, messages=MESSAGES, system="Be brief.")
    assert counted.input_tokens == whole.usage.input_tokens


def test_errors_take_anthropics_shape(ac):
    with pytest.raises(anthropic.NotFoundError) as e:
        ac.messages.create(model="claude-none", max_tokens=5, messages=MESSAGES)
    assert e.value.body["type"] == "error" and e.value.body["error"]["type"] == "not_found_error"
    with pytest.raises(anthropic.BadRequestError) as e:
        ac.messages.create(model=MODEL, max_tokens=5, messages=MESSAGES,
                           extra_body={"temperature": 7})
    assert e.value.body["error"]["type"] == "invalid_request_error"
    status, _, text = http("POST", BASE_URL + "/v1/messages", json.dumps({"messages": MESSAGES}))
    body = json.loads(text)
    assert status == 400 and body["type"] == "error" and "max_tokens" in body["error"]["message"]


def test_x_api_key(server_factory):
    s = server_factory("--api-key", "s3cret", "--parallel", "1")
    with pytest.raises(anthropic.AuthenticationError) as e:
        anthropic.Anthropic(base_url=s.url, api_key="wrong", max_retries=0).messages.create(
            model=MODEL, max_tokens=2, messages=MESSAGES)
    assert e.value.body["error"]["type"] == "authentication_error"
    r = anthropic.Anthropic(base_url=s.url, api_key="s3cret", max_retries=0).messages.create(
        model=MODEL, max_tokens=2, messages=MESSAGES)
    assert r.usage.output_tokens >= 1


def test_a_last_assistant_message_is_continued(ac):
    ask = {"role": "user", "content": "Count from 1 to 10, commas between."}
    prefill = {"role": "assistant", "content": "1, 2, 3, 4,"}
    r = ac.messages.create(model=MODEL, max_tokens=8, messages=[ask, prefill], **GREEDY)
    # The answer goes on from the prefill (only the continuation comes back), not a new turn from scratch.
    assert r.content[0].text.lstrip().startswith("5"), r.content[0].text
    alone = ac.messages.count_tokens(model=MODEL, messages=[ask]).input_tokens
    assert r.usage.input_tokens > alone
