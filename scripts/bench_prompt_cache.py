#!/usr/bin/env python3
"""Time to first token of the same ~2,000-token chat prompt sent twice to a running `cria serve`: the second
starts from the first one's cached KV blocks. Prints both times, their ratio and the reported cached_tokens.

    cria serve -m smollm2-135m-instruct --ctx 4096 &
    python3 scripts/bench_prompt_cache.py --url http://127.0.0.1:8080 [--words 1500] [--rounds 3]
"""

import argparse
import time
import uuid

import openai


def ttft(client, model, messages):
    """Seconds to the first streamed content, and the usage of the request."""
    start = time.perf_counter()
    first, usage = None, None
    stream = client.chat.completions.create(
        model=model, messages=messages, max_tokens=8, temperature=0, stream=True,
        stream_options={"include_usage": True},
    )
    for chunk in stream:
        if first is None and chunk.choices and chunk.choices[0].delta.content:
            first = time.perf_counter() - start
        if chunk.usage is not None:
            usage = chunk.usage
    return first, usage


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default="http://127.0.0.1:8080")
    ap.add_argument("--words", type=int, default=1500, help="words of filler (about 1.3 tokens each)")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    client = openai.OpenAI(base_url=args.url + "/v1", api_key="unused", timeout=600)
    model = client.models.list().data[0].id
    words = "the quick brown fox jumps over a lazy dog near river banks".split()
    for _ in range(args.rounds):
        # A fresh opening each round, so the first request of the round is cold.
        filler = " ".join(words[i % len(words)] for i in range(args.words))
        messages = [
            {"role": "system", "content": f"Session {uuid.uuid4()}. Summarise the notes. {filler}"},
            {"role": "user", "content": "Summarise in one sentence."},
        ]
        cold, usage = ttft(client, model, messages)
        warm, usage2 = ttft(client, model, messages)
        print(
            f"prompt {usage.prompt_tokens} tokens: cold TTFT {cold * 1000:.0f} ms, "
            f"cached TTFT {warm * 1000:.0f} ms ({cold / warm:.1f}x lower), "
            f"cached_tokens {usage2.prompt_tokens_details.cached_tokens}"
        )


if __name__ == "__main__":
    main()
