"""The chat page at / in headless chromium, against the real model (run by tests/webui/run.sh).

The tests run in file order on one browser session: the second enters the API key the rest rely on.
"""

import json
import os
import re
import time

import pytest

from browser import API_KEY, ARTIFACTS, DESKTOP, MODEL, PHONE, Page, chromium_driver, http

HANGUL = re.compile(r"[\uac00-\ud7a3]+")


# Fixtures here, not in a conftest.py: tests/openai imports helpers `from conftest`, which a second conftest.py
# would shadow when both folders are collected together.
@pytest.fixture(scope="module")
def page():
    """The page in one browser for the whole file (the second test enters the API key the rest rely on)."""
    os.makedirs(ARTIFACTS, exist_ok=True)
    driver = chromium_driver()
    p = Page(driver)
    p.open()
    yield p
    driver.quit()


def test_page_and_its_files_load_without_the_key():
    status, headers, text = http("GET", "/", key=None)
    assert status == 200 and headers["content-type"] == "text/html; charset=utf-8"
    assert headers["cache-control"] == "no-cache" and headers["etag"].startswith('"')
    assert "/webui/app.js" in text
    status, again, text = http("GET", "/", key=None, extra={"If-None-Match": headers["etag"]})
    assert (status, again["etag"], text) == (304, headers["etag"], "")
    for path, kind in [("/webui/app.js", "text/javascript"), ("/webui/markdown.js", "text/javascript"),
                       ("/webui/app.css", "text/css")]:
        status, h, _ = http("GET", path, key=None)
        assert (status, h["content-type"]) == (200, kind + "; charset=utf-8"), path
        assert h["x-content-type-options"] == "nosniff"
    assert http("GET", "/v1/models", key=None)[0] == 401  # only the API needs the key


def test_page_asks_for_the_key_then_lists_the_model(page):
    page.wait(lambda: page.el("#notice").is_displayed() and "API key" in page.el("#notice").text,
              "the page to ask for the API key")
    page.set_field("api-key", API_KEY)
    page.wait(lambda: page.js("return [...document.getElementById('model').options].map(o => o.value)")
              == [MODEL], "the model picker to list the served model")
    assert not page.el("#notice").is_displayed()
    assert page.el("#title").text == MODEL


def test_markdown_is_rendered_as_nodes_never_as_html(page):
    reply = "\n".join([
        "## Title with `code`", "", "Underlined", "===", "", "Span `a ``b`` c` here", "", "Some **bold**, *italic*, ~~gone~~ and snake_case_name.",
        "<img src=x onerror=\"window.pwned=1\"><script>window.pwned=2</script>",
        "[safe](https://example.com) [unsafe](javascript:window.pwned=3)", "",
        "- one", "- two", "  - nested", "", "1. first", "2. second", "",
        "| a | b |", "|---|---|", "| 1 | 2 |", "", "> quoted", "",
        "```python", "print('<b>hi</b>')", "x = 1", "```", "", "```rust", "fn main() {",  # unclosed: streaming
    ])
    r = page.js("""
        const root = CriaMarkdown.render(arguments[0]);
        document.body.appendChild(root);  // attached, so an injected handler would run
        const q = (s) => [...root.querySelectorAll(s)].map((n) => n.textContent);
        const out = {
          h2: q('h2'), h1: q('h1'), spans: q('p > code'), inlineCode: q('h2 code'), strong: q('strong'), em: q('em'), del: q('del'),
          tags: root.querySelectorAll('img, script, iframe, [onerror]').length,
          links: [...root.querySelectorAll('a')].map((a) => [a.textContent, a.getAttribute('href')]),
          items: q(':scope > ul > li').length, nested: q('ul ul li'), ordered: q('ol li'),
          cells: q('td'), quote: q('blockquote'), langs: q('.code-lang'),
          code: q('pre code'), text: root.textContent,
        };
        root.remove();
        return out;""", reply)
    time.sleep(0.2)
    assert page.js("return window.pwned === undefined")
    assert r["tags"] == 0
    assert '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>' in r["text"]
    assert r["h2"] == ["Title with code"] and r["inlineCode"] == ["code"] and r["h1"] == ["Underlined"]
    assert r["spans"] == ["a ``b`` c"]
    assert (r["strong"], r["em"], r["del"]) == (["bold"], ["italic"], ["gone"])  # not snake_case_name
    assert r["links"] == [["safe", "https://example.com"]] and "unsafe" in r["text"]
    assert r["items"] == 2 and r["nested"] == ["nested"] and r["ordered"] == ["first", "second"]
    assert r["cells"] == ["1", "2"] and r["quote"] == ["quoted"]
    assert r["langs"] == ["python", "rust"]
    assert r["code"] == ["print('<b>hi</b>')\nx = 1", "fn main() {"]


def test_sse_parser_keeps_characters_split_across_network_chunks(page):
    """Every byte split of a Korean/emoji event decodes whole (the server's chunks are not TCP's)."""
    bad = page.js("""
        const text = '안녕하세요, 세계! 🌏 ünï';
        const wire = 'data: ' + JSON.stringify({choices: [{delta: {content: text}}]}) + '\\n\\n'
                   + ': keep-alive\\n\\ndata: [DONE]\\n\\n';
        const bytes = new TextEncoder().encode(wire);
        const bad = [];
        const check = (pieces, label) => {
          const p = new CriaApp.SseParser();
          const events = pieces.flatMap((b) => p.push(b)).concat(p.finish());
          if (events.length !== 2 || JSON.parse(events[0]).choices[0].delta.content !== text
              || events[1] !== '[DONE]') bad.push(label);
        };
        for (let i = 1; i < bytes.length; i++) check([bytes.slice(0, i), bytes.slice(i)], 'split at ' + i);
        check([...bytes].map((b) => Uint8Array.of(b)), 'byte by byte');
        return bad;""")
    assert bad == []


def test_reply_streams_incrementally_and_equals_the_api_answer(page):
    page.new_chat()
    page.set_field("temperature", 0)
    page.set_field("max_tokens", 64)
    prompt = "Translate to Korean: I love you."
    page.send(prompt)
    seen, (state, text, meta) = page.watch_reply()
    assert state == "done", meta
    assert len(seen) >= 3, f"the reply arrived in {len(seen)} visible steps: {seen}"
    assert re.search(r"\d+ tokens · [\d.]+ tok/s · first token \d+ ms", meta), meta
    status, _, body = http("POST", "/v1/chat/completions", {
        "model": MODEL, "messages": [{"role": "user", "content": prompt}], "temperature": 0, "max_tokens": 64})
    assert status == 200, body
    expected = json.loads(body)["choices"][0]["message"]["content"]
    stored = page.stored_chat()["messages"]
    assert [m["role"] for m in stored] == ["user", "assistant"]
    assert stored[1]["content"] == expected
    korean = HANGUL.findall(expected)
    assert korean, f"the model's answer has no Korean to check: {expected!r}"
    for word in korean:
        assert word in text, (word, text)
    page.screenshot("desktop.png")


def test_settings_reach_the_request(page):
    """System prompt, temperature, top_p, max tokens and seed: a seeded sampled reply equals the API's."""
    page.new_chat()
    system = "You are a pirate. Answer in one sentence."
    settings = {"temperature": 0.9, "top_p": 0.9, "max_tokens": 20, "seed": 7}
    page.set_field("system", system)
    for field, value in settings.items():
        page.set_field(field, value)
    page.send("Hello, who are you?")
    _, (state, _, meta) = page.watch_reply()
    assert state == "done", meta
    status, _, body = http("POST", "/v1/chat/completions", {
        "model": MODEL, "messages": [{"role": "system", "content": system},
                                     {"role": "user", "content": "Hello, who are you?"}], **settings})
    assert status == 200, body
    assert page.stored_chat()["messages"][1]["content"] == json.loads(body)["choices"][0]["message"]["content"]
    page.set_field("system", "")
    page.set_field("seed", "")
    page.set_field("temperature", 0)


def test_korean_input_is_shown_and_titled_as_typed(page):
    page.new_chat()
    words = "안녕하세요, 세계! 한국어 입력 시험입니다. 日本語も 中文也"
    page.send(words)
    page.wait(lambda: page.els("#messages .msg[data-role=user]"), "the user's message")
    assert page.el("#messages .msg[data-role=user] .body").text == words
    assert page.el("#conversations li.current .open-chat").text == words[:48]
    page.watch_reply()


def running_sequences():
    status, _, text = http("GET", "/metrics")
    assert status == 200, text
    return float(re.search(r"^cria_running_sequences (\S+)$", text, re.M).group(1))


def test_stop_ends_the_stream_and_frees_the_sequence(page):
    page.new_chat()
    page.set_field("max_tokens", 400)
    page.send("Count from 1 to 300, separated by commas.")
    page.wait(lambda: (r := page.last_reply()) and r[0] == "streaming" and len(r[1]) > 30,
              "30 characters of the reply")
    page.el("#stop").click()
    page.wait(lambda: page.last_reply()[0] != "streaming", "the reply to stop", timeout=5)
    state, text, meta = page.last_reply()
    assert state == "stopped" and "stopped" in meta, (state, meta)
    time.sleep(1.0)
    assert page.last_reply()[1] == text, "text kept arriving after stop"
    assert page.stored_chat()["messages"][-1]["state"] == "stopped"
    page.wait(lambda: running_sequences() == 0, "the server to drop the stopped request", timeout=10)
    assert page.el("#send").is_displayed() and not page.el("#stop").is_displayed()


def test_regenerate_replaces_the_last_reply(page):
    page.set_field("max_tokens", 24)
    page.el("#regenerate").click()
    page.wait(lambda: page.last_reply() and page.last_reply()[0] == "streaming", "a new reply", timeout=10)
    _, (state, text, _) = page.watch_reply()
    assert state == "done" and text
    stored = page.stored_chat()["messages"]
    assert [m["role"] for m in stored] == ["user", "assistant"]
    assert stored[1].get("state") == "done" and stored[1]["content"]


def conversations(page):
    return page.js("return [...document.querySelectorAll('#conversations li')].map((li) => li.dataset.id)")


def test_history_and_settings_survive_a_reload(page):
    ids = conversations(page)
    assert len(ids) >= 3
    before = page.stored_chat()
    page.open()
    page.wait(lambda: page.els("#messages .msg"), "the conversation to come back")
    assert conversations(page) == ids
    assert page.stored_chat() == before
    shown = [n.text for n in page.els("#messages .msg[data-role=user] .body")]
    assert shown == [m["content"] for m in before["messages"] if m["role"] == "user"]
    page.open_settings()
    assert page.el("#temperature").get_attribute("value") == "0"
    assert page.el("#max_tokens").get_attribute("value") == "24"
    assert page.el("#api-key").get_attribute("value") == API_KEY


def test_a_conversation_can_be_deleted(page):
    ids = conversations(page)
    page.open_settings()
    page.el(f"#conversations li[data-id='{ids[-1]}'] .delete").click()
    assert conversations(page) == ids[:-1]
    page.open()
    assert conversations(page) == ids[:-1]


def test_phone_width_layout(page):
    page.d.set_window_size(*PHONE)
    try:
        page.open()
        width = page.js("return window.innerWidth")
        assert width <= 420, width
        assert page.js("return document.documentElement.scrollWidth") <= width, "the page scrolls sideways"
        assert page.js("return document.getElementById('sidebar').getBoundingClientRect().right") <= 0
        composer = page.js("return document.getElementById('composer').getBoundingClientRect().toJSON()")
        assert composer["right"] <= width and composer["bottom"] <= page.js("return window.innerHeight")
        page.open_settings()  # the drawer slides in
        page.el("#close-sidebar").click()
        page.new_chat()  # closes the drawer
        page.set_field("max_tokens", 48)
        page.el("#close-sidebar").click()
        page.send("Write a Python function that adds two numbers.")
        _, (state, _, meta) = page.watch_reply()
        assert state == "done", meta
        assert page.js("return document.documentElement.scrollWidth") <= width
        page.screenshot("phone.png")
    finally:
        page.d.set_window_size(*DESKTOP)
