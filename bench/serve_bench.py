#!/usr/bin/env python3
"""Serving benchmark: aggregate generated tokens/s and mean time-to-first-token for 1, 4 and 8 concurrent
streaming clients, against any OpenAI-compatible server (cria serve, llama-server).

Each client sends the same fixed prompts in turn (streaming chat, temperature 0, --max-tokens, ignore_eos); tokens are
counted from the usage chunk when the server sends one, else one per content chunk.

One server:   bench/serve_bench.py --url http://127.0.0.1:8080 [--model NAME] [--max-tokens 128] [--requests 2]
Side by side: bench/serve_bench.py --compare --cria-bin target/release/cria --llama-server PATH/llama-server
              [--model-file ~/.cache/cria/models/smollm2-135m-instruct.gguf] [--parallel 8] [--ctx 2048] [--rounds 2]
              [--cria-isa avx2-novnni]  (CRIA_ISA for cria serve alone; default: inherited)
  starts `cria serve --parallel P --ctx C` and `llama-server -np P -c P*C` (same threads, same model file), then
  for each round and level runs both, alternating which goes first, and prints a markdown table of the means.
"""

import argparse
import concurrent.futures
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
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
        # both cria and llama-server honour it: every request generates exactly max_tokens
        "ignore_eos": True,
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


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url, proc, log, timeout=180):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit(f"server exited while starting:\n{open(log).read()[-3000:]}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    sys.exit(f"{url} not healthy after {timeout} s")


def start_servers(args):
    """(label, url, process) for cria and llama-server, both on free ports, both healthy."""
    threads = str(args.threads)
    cria_port, llama_port = free_port(), free_port()
    commands = [
        ("cria", cria_port, [args.cria_bin, "serve", "-m", args.model_file, "--port", str(cria_port),
                             "--parallel", str(args.parallel), "--ctx", str(args.ctx), "-t", threads,
                             "--max-queue", "64"]),
        ("llama-server", llama_port, [args.llama_server, "-m", args.model_file, "--port", str(llama_port),
                                      "-np", str(args.parallel), "-c", str(args.parallel * args.ctx),
                                      "-t", threads, "-tb", threads]),
    ]
    servers = []
    for label, port, cmd in commands:
        log = tempfile.NamedTemporaryFile(prefix=f"bench-{label}-", suffix=".log", delete=False).name
        env = dict(os.environ)
        if label == "cria" and args.cria_isa:
            env["CRIA_ISA"] = args.cria_isa
        proc = subprocess.Popen(cmd, stdout=open(log, "w"), stderr=subprocess.STDOUT, env=env)
        servers.append((label, f"http://127.0.0.1:{port}", proc, log))
    for _, url, proc, log in servers:
        wait_healthy(url, proc, log)
    return servers


def compare(args):
    levels = [int(x) for x in args.levels.split(",")]
    servers = start_servers(args)
    load_start = os.getloadavg()[0]
    results = {}  # (label, level) -> [(tps, ttft, tokens)]
    try:
        for _, url, _, _ in servers:
            one_request(url, args.model, "Hello", 8)  # warm-up
        for rnd in range(args.rounds):
            for level in levels:
                order = servers if (rnd + level) % 2 == 0 else servers[::-1]
                for label, url, _, _ in order:
                    tps, ttft, tokens, wall = run_level(url, args.model, level, args.requests, args.max_tokens)
                    results.setdefault((label, level), []).append((tps, ttft, tokens))
                    print(f"round {rnd}\t{label}\tclients={level}\t{tps:.1f} tok/s\tmean TTFT {ttft * 1000:.0f} ms"
                          f"\t({tokens} tokens in {wall:.1f} s)\tload average {os.getloadavg()[0]:.1f}", flush=True)
    finally:
        for _, _, proc, _ in servers:
            proc.terminate()
        for _, _, proc, _ in servers:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
    print()
    print(f"load average (1 min) {load_start:.1f} at the start, {os.getloadavg()[0]:.1f} at the end")
    print("| clients | cria tok/s | llama-server tok/s | cria / llama | cria mean TTFT | llama-server mean TTFT | tokens (cria / llama) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for level in levels:
        c, l = results[("cria", level)], results[("llama-server", level)]
        ctps, ltps = statistics.mean(r[0] for r in c), statistics.mean(r[0] for r in l)
        cttft, lttft = statistics.mean(r[1] for r in c), statistics.mean(r[1] for r in l)
        ctok, ltok = sum(r[2] for r in c), sum(r[2] for r in l)
        print(f"| {level} | {ctps:.1f} | {ltps:.1f} | {ctps / ltps:.2f}x | {cttft * 1000:.0f} ms | {lttft * 1000:.0f} ms"
              f" | {ctok} / {ltok} |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default="http://127.0.0.1:8080")
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--requests", type=int, default=2, help="requests per client per level")
    ap.add_argument("--levels", default="1,4,8")
    ap.add_argument("--label", default="server")
    ap.add_argument("--compare", action="store_true", help="start cria serve and llama-server and run both")
    ap.add_argument("--cria-bin", default="target/release/cria")
    ap.add_argument("--llama-server", default="/root/.cache/llama-cpp-ref/llama.cpp/build/bin/llama-server")
    ap.add_argument("--model-file", default=os.path.expanduser("~/.cache/cria/models/smollm2-135m-instruct.gguf"))
    ap.add_argument("--parallel", type=int, default=8)
    ap.add_argument("--ctx", type=int, default=2048, help="tokens per sequence (llama-server gets parallel * ctx)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--cria-isa", default=None,
                    help="CRIA_ISA for cria serve only (e.g. avx2-novnni, against an AVX2 build of llama-server)")
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    if args.compare:
        return compare(args)
    one_request(args.url, args.model, "Hello", 8)  # warm-up
    for level in [int(x) for x in args.levels.split(",")]:
        tps, ttft, tokens, wall = run_level(args.url, args.model, level, args.requests, args.max_tokens)
        print(f"{args.label}\tclients={level}\t{tps:.1f} tok/s\tmean TTFT {ttft * 1000:.0f} ms\t({tokens} tokens in {wall:.1f} s)", flush=True)


if __name__ == "__main__":
    main()
