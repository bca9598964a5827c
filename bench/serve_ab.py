#!/usr/bin/env python3
"""cria serve against cria serve: two builds, alternating, on the same model and clients; prints each run's
generated tok/s, mean TTFT and the server's CPU seconds per 1000 generated tokens (user + system time of the
server process over the level, from /proc: robust to a loaded machine, where tok/s is not).

bench/serve_ab.py --bin A=target-a/cria --bin B=target/release/cria [--isa avx2-novnni] [--clients 8]
                  [--requests 2] [--max-tokens 128] [--rounds 3] [--threads 2] [--parallel 8]
                  [--model-file ~/.cache/cria/models/smollm2-135m-instruct.gguf]

Each round starts every build's server in turn (the order swaps every round), warms it up, runs the clients
(bench/serve_bench.py's requests: streaming chat, temperature 0, ignore_eos) and stops it.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve_bench import free_port, one_request, run_level, wait_healthy  # noqa: E402


def cpu_seconds(pid):
    """User + system CPU seconds of process `pid` (all its threads)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # utime and stime are fields 14 and 15 of stat(5); after the ")" the third field is number 3
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_one(label, binary, args):
    port = free_port()
    cmd = [binary, "serve", "-m", args.model_file, "--port", str(port), "--parallel", str(args.parallel),
           "--ctx", str(args.ctx), "-t", str(args.threads), "--max-queue", "64"]
    env = dict(os.environ)
    if args.isa:
        env["CRIA_ISA"] = args.isa
    log = tempfile.NamedTemporaryFile(prefix=f"serve-ab-{label}-", suffix=".log", delete=False).name
    proc = subprocess.Popen(cmd, stdout=open(log, "w"), stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, log)
        one_request(url, args.model, "Hello", 8)
        load = os.getloadavg()[0]
        cpu0 = cpu_seconds(proc.pid)
        tps, ttft, tokens, wall = run_level(url, args.model, args.clients, args.requests, args.max_tokens)
        cpu = cpu_seconds(proc.pid) - cpu0
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
    return {"tps": tps, "ttft": ttft, "tokens": tokens, "cpu_per_k": 1000 * cpu / max(tokens, 1), "load": load}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", action="append", required=True, help="LABEL=PATH, two or more")
    ap.add_argument("--isa", default=None, help="CRIA_ISA for the servers")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--requests", type=int, default=2)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--parallel", type=int, default=8)
    ap.add_argument("--ctx", type=int, default=2048)
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--model-file", default=os.path.expanduser("~/.cache/cria/models/smollm2-135m-instruct.gguf"))
    args = ap.parse_args()
    bins = [b.split("=", 1) for b in args.bin]
    if any(len(b) != 2 for b in bins):
        sys.exit("--bin takes LABEL=PATH")
    results = {label: [] for label, _ in bins}
    for rnd in range(args.rounds):
        order = bins if rnd % 2 == 0 else bins[::-1]
        for label, binary in order:
            r = run_one(label, binary, args)
            results[label].append(r)
            print(f"round {rnd}\t{label}\t{r['tps']:.1f} tok/s\tTTFT {r['ttft'] * 1000:.0f} ms\t"
                  f"{r['cpu_per_k']:.3f} CPU-s / 1000 tokens\t({r['tokens']} tokens)\tload {r['load']:.1f}",
                  flush=True)
    print()
    print("| build | CPU-s / 1000 tokens (median) | tok/s (median) | TTFT ms (median) |")
    print("| --- | --- | --- | --- |")
    for label, _ in bins:
        rs = results[label]
        med = lambda k: statistics.median(r[k] for r in rs)  # noqa: E731
        print(f"| {label} | {med('cpu_per_k'):.3f} | {med('tps'):.1f} | {med('ttft') * 1000:.0f} |")


if __name__ == "__main__":
    main()
