#!/usr/bin/env python3
"""Soak test for `cria serve` against hostile clients and a crashing step (issue 18). Stdlib only.

It starts `cria serve` with short connection timeouts and a test fault (CRIA_FAULT_STEP: one step panics
mid-run), then runs rounds in which, at the same time:
  - streaming chat clients read to the end, and every fourth disconnects after a few chunks;
  - non-streamed completion clients wait for their answer;
  - bad requests (malformed JSON, wrong types, out-of-range fields, unknown routes, an oversized body) arrive;
  - slow clients send a request head a line at a time, or a body a byte at a time, too slowly.

Checks, and exits non-zero unless all hold:
  - every good request either succeeded (finish_reason, then [DONE] on a stream) or got a clean error (an
    OpenAI-shaped 500, or an error event then [DONE]), and at least one got the injected fault's error;
  - every bad request got a 4xx in the OpenAI shape (never a 500, never a dropped connection);
  - every slow client was closed by the server (a slow body after a 408) within its timeout plus slack;
  - after each round /metrics shows 0 running, 0 queued, 0 KV tokens and 1 open connection (its own);
  - /health is 200 after the fault (the engine went on), and SIGTERM at the end exits 0;
  - RSS after the last round is within --rss-slack MiB of RSS after the second (the first round is a warm-up:
    the KV caches' pages are first touched there), and open file descriptors within 4 of it.

Usage: scripts/soak.py --bin target/release/cria [-m smollm2-135m-instruct] [--rounds 10] [--fault-step 200]
About a minute on 2 cores with the default model (10 rounds).
"""

import argparse
import concurrent.futures
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

HEADER_TIMEOUT, BODY_TIMEOUT, BODY_TOTAL_TIMEOUT, KEEP_ALIVE_TIMEOUT = 2, 2, 6, 5


def post(url, path, body, timeout=300):
    """(status, parsed JSON or raw text) of a POST; never raises on an HTTP status."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(url + path, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            status, text = r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read().decode()
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


def is_error_shape(body):
    return isinstance(body, dict) and {"message", "type", "param", "code"} <= set(body.get("error", {}))


def stream_client(url, i, max_tokens, disconnect_after):
    """One streaming chat: 'ok', 'left', 'fault' (a clean error) or a failure description."""
    body = {
        "messages": [{"role": "user", "content": f"Client {i}: tell a short story about the number {i}."}],
        "max_tokens": max_tokens, "stream": True, "seed": i,
    }
    req = urllib.request.Request(url + "/v1/chat/completions", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=600) as r:
            chunks, finished, error = 0, False, None
            for raw in r:
                line = raw.decode().strip()
                if not line.startswith("data: "):
                    continue
                data = line[6:]
                if data == "[DONE]":
                    if error is not None:
                        return "fault" if is_error_shape(error) else f"malformed error event {error}"
                    return "ok" if finished else "[DONE] before finish_reason"
                if error is not None:
                    return "an event after the error event"
                chunk = json.loads(data)
                if "error" in chunk:
                    error = chunk
                    continue
                chunks += 1
                finished = finished or bool(chunk["choices"] and chunk["choices"][0].get("finish_reason"))
                if disconnect_after is not None and chunks >= disconnect_after:
                    return "left"
            return "stream ended without [DONE]"
    except urllib.error.HTTPError as e:
        body = json.loads(e.read().decode() or "{}")
        return "fault" if e.code == 500 and is_error_shape(body) else f"HTTP {e.code}: {body}"
    except Exception as e:  # noqa: BLE001 -- a client's failure is reported, not raised
        return f"{type(e).__name__}: {e}"


def plain_client(url, i, max_tokens):
    status, body = post(url, "/v1/completions", {"prompt": f"Number {i} is", "max_tokens": max_tokens, "seed": i})
    if status == 200 and body["choices"][0]["finish_reason"] in ("stop", "length"):
        return "ok"
    if status == 500 and is_error_shape(body):
        return "fault"
    return f"HTTP {status}: {body}"


BAD_REQUESTS = [
    ("/v1/chat/completions", b"{not json"),
    ("/v1/chat/completions", {"messages": "hi"}),
    ("/v1/chat/completions", {"messages": []}),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "max_tokens": -1}),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "temperature": 9}),
    ("/v1/completions", {"prompt": [[10**9]]}),
    ("/v1/completions", {"prompt": "hi", "n": 1000}),
    ("/v1/nowhere", {}),
    ("/v1/completions", b"x" * (128 << 10)),  # over the soak's --body-limit
]


def bad_client(url, k):
    path, body = BAD_REQUESTS[k % len(BAD_REQUESTS)]
    try:
        status, answer = post(url, path, body, timeout=30)
    except Exception as e:  # noqa: BLE001
        return f"{path}: {type(e).__name__}: {e}"
    return "ok" if 400 <= status < 500 and is_error_shape(answer) else f"{path}: HTTP {status}: {answer}"


def slow_client(port, kind, gap, limit):
    """A client too slow on purpose; 'ok' once the server closes it within `limit` s (a body after a 408)."""
    t0 = time.time()
    s = socket.create_connection(("127.0.0.1", port))
    head = b"POST /v1/completions HTTP/1.1\r\nHost: soak\r\n"
    if kind == "head":
        s.sendall(head)
    else:
        s.sendall(head + b"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{")
    s.settimeout(gap)
    got = b""
    try:
        while time.time() - t0 < limit + 10:
            try:
                data = s.recv(4096)
                if not data:
                    break
                got += data
            except socket.timeout:
                if not got:
                    s.sendall(b"X-Soak: 1\r\n" if kind == "head" else b" ")
    except OSError:
        pass  # reset by the server: closed too
    finally:
        s.close()
    took = time.time() - t0
    if took > limit:
        return f"slow {kind} open for {took:.1f} s (limit {limit} s)"
    if kind == "body" and not got.startswith(b"HTTP/1.1 408"):
        return f"slow body closed without a 408: {got[:40]!r}"
    return "ok"


def metrics(url):
    with urllib.request.urlopen(url + "/metrics", timeout=10) as r:
        text = r.read().decode()
    return {n: float(v) for n, v in (l.rsplit(" ", 1) for l in text.splitlines() if l and l[0] != "#")}


def wait_idle(url, timeout=60):
    deadline = time.time() + timeout
    while True:
        m = metrics(url)
        quiet = m.get("cria_running_sequences") == 0 and m.get("cria_queue_depth") == 0
        if (quiet and m.get("cria_open_connections") == 1) or time.time() > deadline:
            return m
        time.sleep(0.2)


def proc_stat(pid):
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(l.split()[1]) / 1024 for l in f if l.startswith("VmRSS:"))
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


def start_server(args):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [args.bin, "serve", "-m", args.model, "--port", str(port), "--parallel", str(args.parallel),
           "--ctx", "1024", "--max-queue", "64", "--body-limit", str(64 << 10),
           "--header-timeout", str(HEADER_TIMEOUT), "--body-timeout", str(BODY_TIMEOUT),
           "--body-total-timeout", str(BODY_TOTAL_TIMEOUT), "--keep-alive-timeout", str(KEEP_ALIVE_TIMEOUT),
           "--max-connections", "256", "--shutdown-timeout", "10"]
    env = dict(os.environ, CRIA_FAULT_STEP=str(args.fault_step))
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if urllib.request.urlopen(url + "/health", timeout=2).status == 200:
                return proc, url, port
        except OSError:
            pass
        if proc.poll() is not None:
            sys.exit("server died while starting")
        time.sleep(0.2)
    proc.kill()
    sys.exit("server not healthy after 120 s")


def run_round(pool, url, port, rnd, args):
    jobs = []
    for i in range(args.streams):
        leave = 3 + i % 5 if i % 4 == 3 else None
        jobs.append(("stream", pool.submit(stream_client, url, rnd * 100 + i, args.max_tokens, leave)))
    for i in range(args.plain):
        jobs.append(("plain", pool.submit(plain_client, url, rnd * 100 + i, args.max_tokens)))
    for k in range(len(BAD_REQUESTS)):
        jobs.append(("bad", pool.submit(bad_client, url, k)))
    for _ in range(args.slow):
        jobs.append(("slow", pool.submit(slow_client, port, "head", 0.7, HEADER_TIMEOUT + 3)))
    for _ in range(max(1, args.slow // 4)):
        jobs.append(("slow", pool.submit(slow_client, port, "body", BODY_TIMEOUT + 1, BODY_TOTAL_TIMEOUT + 3)))
    counts, failures = {}, []
    for kind, fut in jobs:
        outcome = fut.result()
        key = f"{kind}:{outcome}" if outcome in ("ok", "left", "fault") else f"{kind}:FAIL"
        counts[key] = counts.get(key, 0) + 1
        if key.endswith("FAIL"):
            failures.append(f"round {rnd} {kind}: {outcome}")
    return counts, failures


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release/cria")
    ap.add_argument("-m", "--model", default="smollm2-135m-instruct")
    ap.add_argument("--rounds", type=int, default=10, help="rounds (at least 2; the first is a warm-up)")
    ap.add_argument("--parallel", type=int, default=4)
    ap.add_argument("--streams", type=int, default=8, help="streaming clients per round (every 4th leaves early)")
    ap.add_argument("--plain", type=int, default=4, help="non-streamed clients per round")
    ap.add_argument("--slow", type=int, default=40, help="slow-head clients per round (and a quarter as many slow bodies)")
    ap.add_argument("--max-tokens", type=int, default=48)
    ap.add_argument("--fault-step", type=int, default=200, help="the engine step that panics (CRIA_FAULT_STEP)")
    ap.add_argument("--rss-slack", type=float, default=32.0, help="MiB of RSS growth allowed from round 1 to the last")
    args = ap.parse_args()

    proc, url, port = start_server(args)
    failures, stats, faults = [], [], 0
    started = time.time()
    try:
        workers = args.streams + args.plain + len(BAD_REQUESTS) + args.slow + args.slow // 4 + 1
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            for rnd in range(args.rounds):
                t0 = time.time()
                counts, bad = run_round(pool, url, port, rnd, args)
                failures += bad
                faults += sum(n for k, n in counts.items() if k.endswith(":fault"))
                m = wait_idle(url)
                if (m.get("cria_running_sequences"), m.get("cria_queue_depth"), m.get("cria_kv_cache_tokens"),
                        m.get("cria_open_connections")) != (0, 0, 0, 1):
                    failures.append(f"round {rnd}: not idle afterwards: {m}")
                stats.append(proc_stat(proc.pid))
                closed = {k.split('"')[1]: int(v) for k, v in m.items() if k.startswith("cria_connections_closed_total")}
                print(f"round {rnd}: {time.time() - t0:.1f} s, {dict(sorted(counts.items()))}, "
                      f"running={m['cria_running_sequences']:.0f} kv_tokens={m['cria_kv_cache_tokens']:.0f} "
                      f"open_connections={m['cria_open_connections']:.0f} closed={closed} "
                      f"RSS={stats[-1][0]:.1f} MiB fds={stats[-1][1]}", flush=True)
        health = urllib.request.urlopen(url + "/health", timeout=5).status
        if health != 200:
            failures.append(f"/health is {health} after the run")
        if faults == 0:
            failures.append(f"no request met the injected fault (step {args.fault_step}): raise --rounds or lower --fault-step")
        (rss0, fds0), (rss1, fds1) = stats[min(1, len(stats) - 1)], stats[-1]
        if rss1 - rss0 > args.rss_slack:
            failures.append(f"RSS grew from {rss0:.1f} to {rss1:.1f} MiB")
        if fds1 > fds0 + 4:
            failures.append(f"open file descriptors grew from {fds0} to {fds1}")
    finally:
        proc.terminate()
        try:
            code = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = "killed after 30 s"
    if code != 0:
        failures.append(f"SIGTERM at the end: exit code {code}")
    for f in failures:
        print("FAIL", f)
    print(f"soak: {args.rounds} rounds in {time.time() - started:.0f} s, {faults} requests met the injected fault, "
          f"RSS after each round {[round(r) for r, _ in stats]} MiB, fds {[f for _, f in stats]}:",
          "OK" if not failures else f"{len(failures)} failures")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
