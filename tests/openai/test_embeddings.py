"""`/v1/embeddings` with the OpenAI client, against llama.cpp's `llama-embedding` on the same files
(testdata/embeddings/, testdata/bert/; see their PROVENANCE.md). run.sh starts the main server with
`--pooling mean`."""

import json
import math
from pathlib import Path

import openai
import pytest

from conftest import MODEL, error_body, http

ROOT = Path(__file__).resolve().parents[2]


def cosine(a, b):
    dot = sum(x * y for x, y in zip(a, b))
    return dot / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


def reference(path):
    return json.loads((ROOT / path).read_text())


def client_for(url):
    return openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=120)


def test_decoder_embeddings_equal_llama_embedding(client):
    ref = reference(f"testdata/embeddings/{MODEL}.json")
    # The client asks for base64 by default and decodes it.
    r = client.embeddings.create(model=MODEL, input=ref["texts"])
    assert [d.index for d in r.data] == list(range(len(ref["texts"])))
    for got, want in zip(r.data, ref["pooled"]["mean"]):
        assert len(got.embedding) == len(want)
        assert cosine(got.embedding, want) >= 0.999
    assert r.usage.prompt_tokens == r.usage.total_tokens > len(ref["texts"])
    floats = client.embeddings.create(model=MODEL, input=ref["texts"][0], encoding_format="float")
    assert floats.data[0].embedding == pytest.approx(r.data[0].embedding, abs=1e-7)


def test_token_ids_and_dimensions(client):
    by_ids = client.embeddings.create(model=MODEL, input=[[1, 2, 3], [4, 5]])
    assert len(by_ids.data) == 2 and by_ids.usage.prompt_tokens == 5
    n = len(by_ids.data[0].embedding)
    assert abs(sum(x * x for x in by_ids.data[0].embedding) - 1) < 1e-4
    assert len(client.embeddings.create(model=MODEL, input="hi", dimensions=n).data[0].embedding) == n
    with pytest.raises(openai.BadRequestError) as e:
        client.embeddings.create(model=MODEL, input="hi", dimensions=n // 2)
    assert e.value.body["param"] == "dimensions"


def test_model_without_pooling_refuses_embeddings(server_factory):
    s = server_factory("--parallel", "1")
    status, _, text = http("POST", s.url + "/v1/embeddings", json.dumps({"input": "hi"}))
    assert status == 400 and "--pooling" in error_body(text)["message"]


@pytest.mark.parametrize("arch", ["bert", "nomic-bert"])
def test_encoder_serves_embeddings_and_refuses_chat(server_factory, arch):
    s = server_factory("-t", "1", model=str(ROOT / f"testdata/bert/{arch}.gguf"))
    c = client_for(s.url)
    ref = reference(f"testdata/bert/{arch}.embeddings.json")["llama_embedding"]
    r = c.embeddings.create(model=arch, input=ref["texts"])
    for got, want in zip(r.data, ref["embeddings"]):
        assert cosine(got.embedding, want) >= 0.999
    with pytest.raises(openai.BadRequestError) as e:
        c.chat.completions.create(model=arch, messages=[{"role": "user", "content": "hi"}])
    assert e.value.body["code"] == "model_cannot_generate"
