#!/usr/bin/env python3
"""Encode throughput of cria's tokenizer beside llama.cpp's `llama-tokenize`, on ~1 MB of mixed text.

Usage: python3 bench/tokenize.py [--llama-tokenize PATH] [--runs N]

Builds the example `encode_bench` of cria-tokenizer (cargo, test profile: opt-level 2) and, if found,
uses a llama.cpp `llama-tokenize` (shared/tools/llama-cpp-ref.sh builds one; default path
~/.cache/llama-cpp-ref/llama.cpp/build/bin/llama-tokenize, or $LLAMA_TOKENIZE).

The text is built deterministically from testdata/reference (the Apache-2.0 licence, every text of
tokenize.jsonl -- English, Korean, Japanese, Chinese, Greek, Arabic, emoji, code, JSON, whitespace runs --
and the logits prompts), shuffled with a fixed seed and repeated up to 1 MB.

Both tokenize with BOS added as the model asks and special tokens parsed (llama-tokenize's defaults).
cria: median in-process encode time over N runs (model loading excluded). llama-tokenize: median over
N runs of (time on the 1 MB file) - (time on a one-line file), which also leaves loading out. The ids of
both are compared token for token.
"""
import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REF = ROOT / "testdata" / "reference"
MODELS = ["smollm2-135m-instruct", "gemma-3-270m"]
TARGET_BYTES = 1_000_000


def mixed_text() -> str:
    pieces = [(REF / "texts" / "apache-2.0.txt").read_text()]
    for name in ("tokenize.jsonl", "logits.jsonl"):
        for line in (REF / "smollm2-135m-instruct-q4_1" / name).read_text().splitlines():
            text = json.loads(line)["text"]
            if text:
                pieces.append(text)
    rng = random.Random(1234)
    out, size = [], 0
    while size < TARGET_BYTES:
        rng.shuffle(pieces)
        for p in pieces:
            out.append(p)
            size += len(p.encode()) + 1
            if size >= TARGET_BYTES:
                break
    return "\n".join(out)


def model_path(name: str) -> Path:
    home = Path(os.environ.get("CRIA_HOME", Path.home() / ".cache" / "cria"))
    return home / "models" / f"{name}.gguf"


def build_example() -> Path:
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    cmd = ["cargo", "build", "-q", "-p", "cria-tokenizer", "--profile", "test", "--example", "encode_bench"]
    subprocess.run(cmd, cwd=ROOT, check=True)
    return target / "debug" / "examples" / "encode_bench"


def llama_seconds(exe: str, model: Path, big: Path, small: Path, runs: int):
    def once(f):
        t0 = time.perf_counter()
        p = subprocess.run([exe, "-m", str(model), "-f", str(f), "--ids", "--no-escape", "--log-disable"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
        dt = time.perf_counter() - t0
        if p.returncode != 0:
            sys.exit(f"llama-tokenize failed: {p.stderr.decode(errors='replace')[-2000:]}")
        return dt, p.stdout.decode()
    net, out = [], ""
    for _ in range(runs):
        t_small, _ = once(small)
        t_big, out = once(big)
        net.append(t_big - t_small)
    return statistics.median(net), out


def parse_ids(text: str):
    start, end = text.find("["), text.rfind("]")
    return [int(x) for x in text[start + 1 : end].replace(",", " ").split()]


def main():
    ap = argparse.ArgumentParser()
    default_llama = Path.home() / ".cache/llama-cpp-ref/llama.cpp/build/bin/llama-tokenize"
    ap.add_argument("--llama-tokenize", default=os.environ.get("LLAMA_TOKENIZE", str(default_llama)))
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()

    bench = build_example()
    tmp = Path(tempfile.mkdtemp(prefix="cria-bench-"))
    big, small, ids_out = tmp / "mixed.txt", tmp / "small.txt", tmp / "cria-ids.json"
    big.write_text(mixed_text())
    small.write_text("Hello world\n")
    n_bytes = big.stat().st_size
    have_llama = Path(args.llama_tokenize).exists()
    print(f"text: {n_bytes} bytes; llama-tokenize: {args.llama_tokenize if have_llama else 'not found'}")
    print("| model | tokens | cria MB/s | llama-tokenize MB/s | ids equal |")
    print("| --- | ---: | ---: | ---: | --- |")
    for name in MODELS:
        model = model_path(name)
        run = subprocess.run([str(bench), str(model), str(big), str(args.runs), str(ids_out)],
                             stdout=subprocess.PIPE, check=True)
        stats = json.loads(run.stdout)
        llama_mbs, same = "-", "-"
        if have_llama:
            secs, out = llama_seconds(args.llama_tokenize, model, big, small, args.runs)
            llama_mbs = f"{n_bytes / secs / 1e6:.2f}"
            same = str(parse_ids(out) == parse_ids(ids_out.read_text()))
        print(f"| {name} | {stats['tokens']} | {stats['mb_per_s']:.2f} | {llama_mbs} | {same} |")


if __name__ == "__main__":
    main()
