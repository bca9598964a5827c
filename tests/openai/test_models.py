"""Several models behind one `cria serve` (SmolLM2 135M and Gemma 3 270M) through the OpenAI, Ollama and
Anthropic clients, and the CLI's `cria list`, `cria rm` and `cria ps`."""

import os
import subprocess

import anthropic
import ollama
import openai
import pytest

from conftest import MODEL, Server

GEMMA = "gemma-3-270m"
ASK = [{"role": "user", "content": "Name three colours."}]


@pytest.fixture(scope="module")
def two():
    """SmolLM2 (the default, loaded at start) and Gemma 3 (loaded on first use), one loaded at a time."""
    s = Server("-m", GEMMA, "--max-loaded", "1", "--parallel", "2", "--ctx", "1024")
    yield s
    s.stop()


def oai(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0, timeout=300)


def answer(server, model):
    r = oai(server).chat.completions.create(model=model, messages=ASK, temperature=0, max_tokens=12)
    assert r.model == model
    return r.choices[0].message.content


def statuses(server):
    models = oai(server).models.list().data
    return {m.id: m.model_extra["status"]["value"] for m in models}


def cria(*args, env=None):
    return subprocess.run([os.environ["CRIA_BIN"], *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


def test_two_models_listed_each_answers_by_name_and_lru_unloads(two, client):
    assert statuses(two) == {MODEL: "loaded", GEMMA: "unloaded"}
    tags = ollama.Client(host=two.url).list()
    assert [m.model for m in tags.models] == [MODEL + ":latest", GEMMA + ":latest"]
    smol = answer(two, MODEL)
    # The same model alone (run.sh's server) answers the same at temperature 0.
    alone = client.chat.completions.create(model=MODEL, messages=ASK, temperature=0, max_tokens=12)
    assert smol == alone.choices[0].message.content
    gemma = answer(two, GEMMA)
    assert gemma != smol
    # --max-loaded 1: loading Gemma unloaded SmolLM2, the least recently used.
    assert statuses(two) == {MODEL: "unloaded", GEMMA: "loaded"}
    ps = ollama.Client(host=two.url).ps()
    assert [m.model for m in ps.models] == [GEMMA + ":latest"]
    out = cria("ps", "--url", two.url)
    assert out.returncode == 0 and GEMMA + ":latest" in out.stdout and MODEL not in out.stdout, out
    # A request without a model goes to the first one, loading it again; its answer is unchanged.
    r = oai(two).chat.completions.create(model="", messages=ASK, temperature=0, max_tokens=12)
    assert r.model == MODEL and r.choices[0].message.content == smol
    assert statuses(two) == {MODEL: "loaded", GEMMA: "unloaded"}
    assert answer(two, GEMMA) == gemma
    # Each dialect picks by name.
    o = ollama.Client(host=two.url).chat(model=MODEL, messages=ASK, options={"temperature": 0, "num_predict": 12})
    assert o.model == MODEL and o.message.content == smol
    ac = anthropic.Anthropic(base_url=two.url, api_key="unused", max_retries=0, timeout=300)
    a = ac.messages.create(model=GEMMA, max_tokens=12, messages=ASK, extra_body={"temperature": 0})
    assert a.model == GEMMA and a.content[0].text == gemma


def test_an_unknown_model_is_each_clients_not_found(two):
    with pytest.raises(openai.NotFoundError) as e:
        oai(two).chat.completions.create(model="nope", messages=ASK, max_tokens=2)
    assert e.value.body["code"] == "model_not_found"
    with pytest.raises(ollama.ResponseError) as e:
        ollama.Client(host=two.url).chat(model="nope", messages=ASK)
    assert e.value.status_code == 404 and "not found" in e.value.error
    ac = anthropic.Anthropic(base_url=two.url, api_key="unused", max_retries=0)
    with pytest.raises(anthropic.NotFoundError):
        ac.messages.create(model="nope", max_tokens=2, messages=ASK)


def test_a_model_over_the_memory_budget_is_a_503(server_factory):
    # Gemma's file alone (253 MB) is over a 200 MB budget; SmolLM2's (about 100 MB, and a small KV) is not.
    s = server_factory("-m", GEMMA, "--memory-budget", "200MB", "--parallel", "1", "--ctx", "256")
    with pytest.raises(openai.InternalServerError) as e:
        oai(s).chat.completions.create(model=GEMMA, messages=ASK, max_tokens=2)
    assert e.value.status_code == 503 and e.value.body["code"] == "model_does_not_fit"
    assert "memory budget" in e.value.body["message"]
    # The default model still answers.
    assert oai(s).chat.completions.create(model=MODEL, messages=ASK, max_tokens=2).choices


def test_list_and_rm_work_on_the_store_and_refuse_paths_outside_it(tmp_path):
    home = tmp_path / "home"
    models = home / "models"
    (models / "hf" / "owner" / "repo").mkdir(parents=True)
    (models / "scratch.gguf").write_bytes(b"not a gguf")
    (models / "hf" / "owner" / "repo" / "tiny.gguf").write_bytes(b"x" * 3000)
    outside = tmp_path / "keep.gguf"
    outside.write_bytes(b"x")
    env = {"CRIA_HOME": str(home)}
    listed = cria("list", env=env)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["NAME", "SIZE", "FORMAT", "MODIFIED"]
    assert [line.split()[0] for line in lines[1:]] == ["hf/owner/repo/tiny", "scratch"]
    assert "unreadable" in lines[2] and lines[2].endswith("UTC")
    refused = cria("rm", str(outside), env=env)
    assert refused.returncode == 2 and "not a model in cria's store" in refused.stderr, refused
    assert outside.exists()
    assert cria("rm", "nothing-here", env=env).returncode == 2
    removed = cria("rm", "scratch", env=env)
    assert removed.returncode == 0, removed.stderr
    assert not (models / "scratch.gguf").exists()
    assert [line.split()[0] for line in cria("list", env=env).stdout.splitlines()[1:]] == ["hf/owner/repo/tiny"]


def test_the_real_store_lists_the_pulled_models():
    listed = cria("list")
    assert listed.returncode == 0, listed.stderr
    names = {line.split()[0]: line for line in listed.stdout.splitlines()[1:]}
    assert MODEL in names and "GGUF" in names[MODEL], listed.stdout


def test_ps_without_a_server_fails_cleanly():
    out = cria("ps", "--url", "http://127.0.0.1:9")
    assert out.returncode == 1 and out.stderr.startswith("cria: error:"), out
