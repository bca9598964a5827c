#!/usr/bin/env python3
"""Serving benchmark: aggregate generated tokens/s and mean time-to-first-token for 1, 4 and 8 concurrent
streaming clients, against any OpenAI-compatible server (cria serve, llama-server).

Each client sends the same fixed prompts in turn (streaming chat, temperature 0, --max-tokens); tokens are
counted from the usage chunk when the server sends one, else one per content chunk.
Usage: bench/serve_bench.py --url http://127.0.0.1:8080 [--model NAME] [--max-tokens 128] [--requests 2]
"""

import argparse
import concurrent.futures
import json
import time
import urllib.request

PROMPTS = [
    "Explain how a bicycle works.",
    "Write a short poem about autumn leaves.",
    "What are the main causes of ocean tides?",
    "Describe the water cycle for a child.",
    "Give three tips for learning a new language.",
    "Why is the sky blue?",
    "Summarize the plot of a heist movie you invent.",
    "List some uses of a paperclip.",
]


def one_request(url, model, prompt, max_tokens):
    body = {
        "model": model,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    req = urllib.request.Request(url + "/v1/chat/completions", json.dumps(body).encode(), {"Content-Type": "application/json"})
    t0 = time.perf_counter()
    ttft, chunks, usage = None, 0, None
    with urllib.request.urlopen(req, timeout=600) as r:
        for raw in r:
            line = raw.decode().strip()
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if chunk.get("usage"):
                usage = chunk["usage"]["completion_tokens"]
            for c in chunk.get("choices", []):
                if c.get("delta", {}).get("content"):
                    chunks += 1
                    if ttft is None:
                        ttft = time.perf_counter() - t0
    return (usage if usage is not None else chunks), ttft if ttft is not None else float("nan")


def run_level(url, model, clients, requests_per_client, max_tokens):
    def client(i):
        out = []
        for k in range(requests_per_client):
            out.append(one_request(url, model, PROMPTS[(i + k) % len(PROMPTS)], max_tokens))
        return out

    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        results = [r for rs in pool.map(client, range(clients)) for r in rs]
    wall = time.perf_counter() - t0
    tokens = sum(r[0] for r in results)
    ttfts = [r[1] for r in results]
    return tokens / wall, sum(ttfts) / len(ttfts), tokens, wall


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default="http://127.0.0.1:8080")
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--requests", type=int, default=2, help="requests per client per level")
    ap.add_argument("--levels", default="1,4,8")
    ap.add_argument("--label", default="server")
    args = ap.parse_args()
    one_request(args.url, args.model, "Hello", 8)  # warm-up
    for level in [int(x) for x in args.levels.split(",")]:
        tps, ttft, tokens, wall = run_level(args.url, args.model, level, args.requests, args.max_tokens)
        print(f"{args.label}\tclients={level}\t{tps:.1f} tok/s\tmean TTFT {ttft * 1000:.0f} ms\t({tokens} tokens in {wall:.1f} s)", flush=True)


if __name__ == "__main__":
    main()
