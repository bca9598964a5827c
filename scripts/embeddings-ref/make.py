#!/usr/bin/env python3
"""Reference embeddings of decoder models from llama.cpp's `llama-embedding`, for `/v1/embeddings`.

Usage: make.py LLAMA_BIN_DIR [MODEL_NAME ...]   (models from ~/.cache/cria/models, default: the two reference
models). Writes testdata/embeddings/<model>.json: the texts, and for each pooling (mean, cls, last) the
L2-normalised vectors `llama-embedding -p TEXTS --pooling P --embd-normalize 2 -t 1` prints (its other defaults:
special tokens added and parsed, one prompt a line, the whole line in one batch). For a decoder model llama.cpp
pools `result_norm`, the last layer's output after the output norm (`res->t_embd` in src/models/*.cpp).
"""
import hashlib
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "testdata" / "embeddings"
MODELS = Path.home() / ".cache" / "cria" / "models"
POOLINGS = ["mean", "cls", "last"]
TEXTS = [
    "Hello world, this is a test.",
    "Café au lait! DON'T SHOUT.",
    "日本語のテキスト and numbers 12345",
    "The quick brown fox jumps over the lazy dog. " * 12,
]


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def llama_embedding(bin_dir, model, pooling):
    cmd = [str(bin_dir / "llama-embedding"), "-m", str(model), "-p", "\n".join(t.strip() for t in TEXTS),
           "--pooling", pooling, "--embd-output-format", "json", "--embd-normalize", "2", "-t", "1"]
    res = subprocess.run(cmd, capture_output=True, check=True)
    data = json.loads(res.stdout.decode())["data"]
    return [d["embedding"] for d in sorted(data, key=lambda d: d["index"])]


def main():
    bin_dir = Path(sys.argv[1])
    names = sys.argv[2:] or ["smollm2-135m-instruct", "gemma-3-270m"]
    OUT.mkdir(parents=True, exist_ok=True)
    for name in names:
        model = MODELS / f"{name}.gguf"
        out = {
            "model": name,
            "sha256": sha256(model),
            "texts": [t.strip() for t in TEXTS],
            "pooled": {p: llama_embedding(bin_dir, model, p) for p in POOLINGS},
        }
        (OUT / f"{name}.json").write_text(json.dumps(out))
        print(name, "done", file=sys.stderr)


if __name__ == "__main__":
    main()
