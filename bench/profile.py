#!/usr/bin/env python3
"""Where cria's time goes: samples `cria bench` under `perf record` (decode and prefill of each model) and
folds the symbols into ops (matmul per weight format, activation quantization, attention, norms, rope,
FFN activation, thread-pool sync, copies/allocation), as shares of all on-CPU samples of both threads.

Usage: bench/profile.py [--cria PATH] [--models a b] [-t 2] [--svg docs/benchmarks-profile.svg] [--keep DIR]
Needs `perf` (Debian: linux-perf). Symbols come from the release build's debug info (profile.release has
debug = 1). Shares are of CPU samples: on a loaded machine a descheduled thread simply has fewer samples.
"""
import argparse
import os
import re
import subprocess
import tempfile
from collections import defaultdict

# (category, regex on the symbol); first match wins.
CATEGORIES = [
    ("matvec Q4_0/Q4_1/Q5_0/Q5_1 (zmm)", r"legacy_zmm::"),
    ("matmul {fmt}", r"(?:dot|gemm|blk|tile)_(q\d_k|q\d_\d|q\d_k|f16|bf16|f32)\b"),
    ("quantize activations", r"q8k?_block|quantize"),
    ("attention", r"dot_rows_f16|axpy_rows_f16|softmax|attention|exp_"),
    ("norms", r"sum_sq|rms_norm"),
    ("rope", r"rope|sincos|sinf|cosf"),
    ("ffn activation", r"gated_mul|gelu|silu"),
    ("pool spin / sync", r"__rust_begin_short_backtrace|backoff|wait_for_job|sched_yield|futex|clock_gettime|CloseOnDrop"),
    ("copies / allocation", r"memmove|memset|memcpy|malloc|_int_free|free\b|realloc"),
]


def categorize(symbol):
    for name, pat in CATEGORIES:
        m = re.search(pat, symbol)
        if m:
            return name.format(fmt=m.group(1).upper()) if "{fmt}" in name else name
    return "other"


def profile(cria, model, test, threads, data):
    p, n = ("512", "0") if test == "pp" else ("0", "64")
    subprocess.run(["perf", "record", "-q", "-F", "499", "-o", data, cria, "bench", "-m", model, "-t",
                    str(threads), "-p", p, "-n", n, "-r", "1", "--bandwidth-mib", "0"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rep = subprocess.run(["perf", "report", "-i", data, "--no-children", "--sort", "symbol", "--stdio",
                          "--percent-limit", "0"], check=True, capture_output=True, text=True).stdout
    shares = defaultdict(float)
    for line in rep.splitlines():
        m = re.match(r"\s*([\d.]+)%\s+\[\.\]\s+(.*?)\s*(?:-\s+-\s*)?$", line)
        if m:
            shares[categorize(m.group(2))] += float(m.group(1))
    return dict(shares)


def markdown(results):
    cats = sorted({c for r in results.values() for c in r}, key=lambda c: -sum(r.get(c, 0) for r in results.values()))
    cols = list(results)
    out = ["| op (share of CPU samples, both threads) | " + " | ".join(cols) + " |",
           "| --- |" + " ---: |" * len(cols)]
    for c in cats:
        out.append(f"| {c} | " + " | ".join(f"{results[k].get(c, 0):.1f}%" for k in cols) + " |")
    return "\n".join(out)


def svg(results):
    colours = ["#264653", "#2a9d8f", "#e9c46a", "#f4a261", "#e76f51", "#8ab17d", "#6d597a", "#b56576",
               "#355070", "#adb5bd", "#9c6644", "#588157"]
    cats = sorted({c for r in results.values() for c in r}, key=lambda c: -sum(r.get(c, 0) for r in results.values()))
    colour = {c: colours[i % len(colours)] for i, c in enumerate(cats)}
    left, width, bar, gap, top = 170, 520, 26, 14, 44
    h = top + len(results) * (bar + gap) + 24 + 18 * ((len(cats) + 2) // 3)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 30}" height="{h}" '
             'font-family="sans-serif" font-size="12">', '<rect width="100%" height="100%" fill="white"/>',
             '<text x="10" y="22" font-size="15" font-weight="bold">Where cria spends its CPU time '
             '(perf samples, 2 threads)</text>']
    for i, (name, r) in enumerate(results.items()):
        y, x = top + i * (bar + gap), float(left)
        parts.append(f'<text x="{left - 8}" y="{y + bar * 0.7}" text-anchor="end">{name}</text>')
        total = sum(r.values()) or 1.0
        for c in cats:
            w = r.get(c, 0) / total * width
            if w > 0:
                parts.append(f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{bar}" fill="{colour[c]}">'
                             f'<title>{c}: {r.get(c, 0):.1f}%</title></rect>')
                x += w
    y0 = top + len(results) * (bar + gap) + 8
    for i, c in enumerate(cats):
        x, y = 10 + (i % 3) * 240, y0 + (i // 3) * 18
        parts += [f'<rect x="{x}" y="{y}" width="12" height="12" fill="{colour[c]}"/>',
                  f'<text x="{x + 16}" y="{y + 10}">{c}</text>']
    return "\n".join(parts + ["</svg>"]) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(root, "target"))
    ap.add_argument("--cria", default=os.path.join(target, "release", "cria"))
    ap.add_argument("--models", nargs="+", default=["smollm2-135m-instruct", "gemma-3-270m"])
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("--svg")
    ap.add_argument("--keep", help="folder for the perf.data files (default: a temp folder)")
    args = ap.parse_args()
    home = os.environ.get("CRIA_HOME", os.path.expanduser("~/.cache/cria"))
    folder = args.keep or tempfile.mkdtemp(prefix="cria-profile-")
    os.makedirs(folder, exist_ok=True)
    results = {}
    for name in args.models:
        model = os.path.join(home, "models", name + ".gguf")
        for test in ("tg", "pp"):
            label = f"{name.split('-')[0]} {'tg64' if test == 'tg' else 'pp512'}"
            results[label] = profile(args.cria, model, test, args.threads, os.path.join(folder, f"{name}-{test}.data"))
    print(markdown(results))
    if args.svg:
        with open(args.svg, "w") as f:
            f.write(svg(results))


if __name__ == "__main__":
    main()
