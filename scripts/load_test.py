#!/usr/bin/env python3
"""Load test for `cria serve`: rounds of 16 concurrent streaming clients, some of which disconnect mid-stream.

Checks, and exits non-zero unless all hold:
  - every client that does not disconnect gets a complete stream (finish_reason, then [DONE]) and no error;
  - after each round /metrics shows 0 running sequences, 0 queued requests and 0 KV tokens in use;
  - the server's RSS after the last round is within --rss-slack MiB of its RSS after the first round.

It starts its own server (--bin, -m) unless --url is given (then --pid gives the process to watch for RSS).
Usage: scripts/load_test.py --bin target/release/cria [-m smollm2-135m-instruct] [--rounds 5] [--clients 16]
"""

import argparse
import concurrent.futures
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request


def http_json(url, body, timeout):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    return urllib.request.urlopen(req, timeout=timeout)


def stream_client(url, model, i, disconnect_after, max_tokens, timeout):
    """One streaming chat; returns (ok, detail)."""
    body = {
        "model": model,
        "messages": [{"role": "user", "content": f"Client {i}: write a short story about the number {i}."}],
        "max_tokens": max_tokens,
        "stream": True,
        "temperature": 0.8,
        "seed": i,
    }
    try:
        with http_json(url + "/v1/chat/completions", body, timeout) as r:
            chunks, finished = 0, False
            for raw in r:
                line = raw.decode().strip()
                if not line.startswith("data: "):
                    continue
                data = line[6:]
                if data == "[DONE]":
                    return (finished, "ok" if finished else "[DONE] before finish_reason")
                chunk = json.loads(data)
                if "error" in chunk:
                    return (False, f"error event: {chunk['error']}")
                chunks += 1
                if chunk["choices"] and chunk["choices"][0].get("finish_reason"):
                    finished = True
                if disconnect_after is not None and chunks >= disconnect_after:
                    return (True, "disconnected on purpose")
            return (False, "stream ended without [DONE]")
    except Exception as e:  # noqa: BLE001 -- any failure of a client is reported, not raised
        return (False, f"{type(e).__name__}: {e}")


def metrics(url):
    with urllib.request.urlopen(url + "/metrics", timeout=10) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#") and " " in line:
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def wait_idle(url, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        m = metrics(url)
        if m.get("cria_running_sequences") == 0 and m.get("cria_queue_depth") == 0:
            return m
        time.sleep(0.1)
    return metrics(url)


def start_server(binary, model, parallel):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [binary, "serve", "-m", model, "--port", str(port), "--parallel", str(parallel), "--max-queue", "64"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if urllib.request.urlopen(url + "/health", timeout=2).status == 200:
                return proc, url
        except OSError:
            pass
        if proc.poll() is not None:
            sys.exit("server died while starting")
        time.sleep(0.2)
    proc.kill()
    sys.exit("server not healthy after 120 s")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release/cria")
    ap.add_argument("-m", "--model", default="smollm2-135m-instruct")
    ap.add_argument("--url")
    ap.add_argument("--pid", type=int)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--parallel", type=int, default=8)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--rss-slack", type=float, default=32.0, help="MiB of RSS growth allowed from round 1 to the last")
    args = ap.parse_args()

    proc = None
    if args.url:
        url, pid = args.url, args.pid
    else:
        proc, url = start_server(args.bin, args.model, args.parallel)
        pid = proc.pid
    failures, rss = [], []
    try:
        for rnd in range(args.rounds):
            t0 = time.time()
            with concurrent.futures.ThreadPoolExecutor(args.clients) as pool:
                # Every fourth client leaves after a few chunks.
                futs = {
                    pool.submit(stream_client, url, args.model, i, 3 + i % 5 if i % 4 == 3 else None, args.max_tokens, 600): i
                    for i in range(args.clients)
                }
                results = {futs[f]: f.result() for f in concurrent.futures.as_completed(futs)}
            bad = {i: d for i, (ok, d) in results.items() if not ok}
            failures += [f"round {rnd} client {i}: {d}" for i, d in bad.items()]
            m = wait_idle(url)
            idle = m.get("cria_running_sequences") == 0 and m.get("cria_kv_cache_tokens") == 0 and m.get("cria_queue_depth") == 0
            if not idle:
                failures.append(f"round {rnd}: not idle afterwards: running={m.get('cria_running_sequences')} "
                                f"kv_tokens={m.get('cria_kv_cache_tokens')} queue={m.get('cria_queue_depth')}")
            rss.append(rss_mib(pid) if pid else float("nan"))
            print(f"round {rnd}: {len(results) - len(bad)}/{len(results)} ok, {time.time() - t0:.1f} s, "
                  f"running after={m.get('cria_running_sequences')}, RSS {rss[-1]:.1f} MiB", flush=True)
        if pid and rss[-1] - rss[0] > args.rss_slack:
            failures.append(f"RSS grew from {rss[0]:.1f} to {rss[-1]:.1f} MiB")
    finally:
        if proc:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
    for f in failures:
        print("FAIL", f)
    print("load test:", "OK" if not failures else f"{len(failures)} failures")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
