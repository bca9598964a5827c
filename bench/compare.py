#!/usr/bin/env python3
"""Summarises a bench/compare.sh results folder: llama-bench vs `cria bench` per model and test, the ratios
against the issue's targets, decode's share of the roofline, and peak RSS / launch-to-first-token of one
`run`. Optionally writes an SVG chart of the ratios.

Usage: bench/compare.py RESULTS_DIR [--svg PATH]

t/s are the mean ± sd of every repetition of every round (llama-bench's samples_ts); the ratio is of the
means, and "rounds" gives the lowest and highest per-round ratio (each round ran both engines back to back).
Targets: prefill (pp) >= 2x; decode (tg) >= 1.5x or >= 85% of the roofline (in-process read bandwidth, the
best of plain, prefetching and streaming reads, / weight bytes per token, measured by cria bench).
"""
import argparse
import glob
import json
import os
import re
import statistics
from collections import defaultdict

PP_TARGET, TG_TARGET, TG_ROOF_TARGET = 2.0, 1.5, 0.85


def mean_sd(v):
    if not v:
        return 0.0, 0.0
    return statistics.fmean(v), (statistics.stdev(v) if len(v) > 1 else 0.0)


def model_name(path):
    return os.path.basename(path).removesuffix(".gguf")


def load(results):
    """{(model, test): {"llama": {round: [ts]}, "cria": {round: [ts]}}} and cria's extras per model."""
    runs = defaultdict(lambda: {"llama": {}, "cria": {}})
    extras = {}
    for path in sorted(glob.glob(os.path.join(results, "*-*-*.json"))):
        m = re.match(r"(llama|cria)-(.+)-(\d+)\.json$", os.path.basename(path))
        if not m:
            continue
        engine, name, rnd = m.group(1), m.group(2), int(m.group(3))
        with open(path) as f:
            text = f.read().strip()
        if not text:
            continue
        data = json.loads(text)
        tests = data if engine == "llama" else data["tests"]
        for t in tests:
            test = f"pp{t['n_prompt']}" if t["n_gen"] == 0 else f"tg{t['n_gen']}"
            runs[(name, test)][engine][rnd] = t["samples_ts"]
        if engine == "cria":
            e = extras.setdefault(name, {"bw": [], "bytes": data["weight_bytes_per_token"]})
            if data.get("bandwidth"):
                e["bw"].append(data["bandwidth"]["gb_per_s"])
    return runs, extras


def load_range(results, name):
    """The lowest and highest 1-minute load average seen as a run of `name` started (load-*-NAME-N.txt)."""
    vals = []
    for path in glob.glob(os.path.join(results, f"load-*-{glob.escape(name)}-*.txt")):
        if re.match(rf"load-(llama|cria)-{re.escape(name)}-\d+\.txt$", os.path.basename(path)):
            with open(path) as f:
                vals += [float(v) for v in f.read().split()]
    return f"{min(vals):.1f}-{max(vals):.1f}" if vals else "-"


def row(name, test, r, extra):
    llama = [x for v in r["llama"].values() for x in v]
    cria = [x for v in r["cria"].values() for x in v]
    (lm, ls), (cm, cs) = mean_sd(llama), mean_sd(cria)
    ratio = cm / lm if lm else 0.0
    paired = [mean_sd(r["cria"][k])[0] / mean_sd(r["llama"][k])[0]
              for k in r["cria"] if k in r["llama"] and r["llama"][k]]
    roof = ""
    met = ratio >= PP_TARGET
    target = f">= {PP_TARGET}x"
    if test.startswith("tg"):
        target = f">= {TG_TARGET}x or {TG_ROOF_TARGET:.0%} roof"
        bw = max(extra["bw"]) if extra and extra["bw"] else 0.0
        if bw:
            roof_ts = bw * 1e9 / extra["bytes"]
            roof = f"{cm / roof_ts:.0%} / {lm / roof_ts:.0%} of {roof_ts:.0f}"
            met = ratio >= TG_TARGET or cm / roof_ts >= TG_ROOF_TARGET
        else:
            met = ratio >= TG_TARGET
    rounds = f"{min(paired):.2f}-{max(paired):.2f}" if paired else "-"
    return {"model": name, "test": test, "llama": (lm, ls), "cria": (cm, cs), "ratio": ratio,
            "rounds": rounds, "roof": roof, "target": target, "met": met, "load": "-"}


def run_models(results):
    """Models that have one-token `run` timings (run-ENGINE-MODEL-ROUND.time)."""
    names = set()
    for path in glob.glob(os.path.join(results, "run-cria-*-*.time")):
        m = re.match(r"run-cria-(.+)-\d+\.time$", os.path.basename(path))
        if m:
            names.add(m.group(1))
    return sorted(names)


def run_stats(results, engine, model):
    """Mean wall seconds and peak RSS (MiB) of the one-token `run`s of one model."""
    secs, rss = [], []
    for path in glob.glob(os.path.join(results, f"run-{engine}-{model}-*.time")):
        if not re.match(rf"run-{engine}-{re.escape(model)}-\d+\.time$", os.path.basename(path)):
            continue
        with open(path) as f:
            text = f.read()
        if "non-zero status" in text or "terminated by signal" in text:
            continue  # a failed run is no measurement
        last = text.strip().splitlines()[-1:]
        parts = last[0].split() if last else []
        if len(parts) == 2:
            secs.append(float(parts[0]))
            rss.append(int(parts[1]) / 1024)
    return (mean_sd(secs)[0], max(rss)) if secs else None


def markdown(results, rows):
    out = []
    machine = os.path.join(results, "machine.txt")
    if os.path.exists(machine):
        with open(machine) as f:
            out += [f"- {line.strip()}" for line in f if line.strip()]
        out.append("")
    out.append("| model | test | llama.cpp t/s | cria t/s | cria / llama.cpp | per round | "
               "decode: % of roofline (cria / llama.cpp of t/s) | target | met | load at start |")
    out.append("| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | --- | ---: |")
    for r in rows:
        out.append(f"| {r['model']} | {r['test']} | {r['llama'][0]:.1f} ± {r['llama'][1]:.1f} | "
                   f"{r['cria'][0]:.1f} ± {r['cria'][1]:.1f} | **{r['ratio']:.2f}x** | {r['rounds']} | "
                   f"{r['roof']} | {r['target']} | {'yes' if r['met'] else 'no'} | {r['load']} |")
    runs = [(m, run_stats(results, "cria", m), run_stats(results, "llama", m)) for m in run_models(results)]
    runs = [(m, c, l) for m, c, l in runs if c and l]
    if runs:
        out += ["", "| one-token `run` (4096 context) | llama.cpp (llama-completion) | cria run | cria / llama.cpp |",
                "| --- | ---: | ---: | ---: |"]
        for m, c, l in runs:
            out += [f"| {m}: launch to first token, wall s | {l[0]:.2f} | {c[0]:.2f} | {c[0] / l[0]:.2f} |",
                    f"| {m}: peak RSS, MiB | {l[1]:.0f} | {c[1]:.0f} | {c[1] / l[1]:.2f} |"]
    return "\n".join(out)


def svg(rows):
    """Horizontal bars of cria / llama.cpp per model and test, with 1x and each target marked."""
    left, width, bar, gap, top = 260, 420, 22, 14, 50
    xmax = max([3.0] + [r["ratio"] * 1.1 for r in rows])
    x = lambda v: left + v / xmax * width
    h = top + len(rows) * (bar + gap) + 40
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 80}" height="{h}" '
             'font-family="sans-serif" font-size="13">',
             '<rect width="100%" height="100%" fill="white"/>',
             f'<text x="10" y="22" font-size="15" font-weight="bold">cria / llama.cpp speed, 2 threads '
             '(bar: ratio; tick: target)</text>']
    for i, r in enumerate(rows):
        y = top + i * (bar + gap)
        target = PP_TARGET if r["test"].startswith("pp") else TG_TARGET
        colour = "#2a9d3f" if r["met"] else "#d1495b"
        parts += [f'<text x="{left - 8}" y="{y + bar * 0.7}" text-anchor="end">{r["model"]} {r["test"]}</text>',
                  f'<rect x="{left}" y="{y}" width="{x(r["ratio"]) - left:.1f}" height="{bar}" fill="{colour}"/>',
                  f'<text x="{x(r["ratio"]) + 4:.1f}" y="{y + bar * 0.7}">{r["ratio"]:.2f}x</text>',
                  f'<line x1="{x(target):.1f}" x2="{x(target):.1f}" y1="{y - 3}" y2="{y + bar + 3}" '
                  'stroke="black" stroke-width="2"/>']
    y_end = top + len(rows) * (bar + gap)
    parts += [f'<line x1="{x(1):.1f}" x2="{x(1):.1f}" y1="{top - 6}" y2="{y_end}" stroke="#555" '
              'stroke-dasharray="4 3"/>',
              f'<text x="{x(1):.1f}" y="{y_end + 16}" text-anchor="middle">1x (llama.cpp)</text>',
              '</svg>']
    return "\n".join(parts) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results")
    ap.add_argument("--svg")
    args = ap.parse_args()
    runs, extras = load(args.results)
    rows = [row(n, t, r, extras.get(n)) for (n, t), r in sorted(runs.items()) if r["llama"] and r["cria"]]
    for r in rows:
        r["load"] = load_range(args.results, r["model"])
    print(markdown(args.results, rows))
    if args.svg:
        with open(args.svg, "w") as f:
            f.write(svg(rows))


if __name__ == "__main__":
    main()
