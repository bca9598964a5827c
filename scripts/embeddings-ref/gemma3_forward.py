#!/usr/bin/env python3
"""gemma-3's pooled embeddings from a numpy forward pass, exact or with llama.cpp's CPU roundings, against
llama-embedding's vectors in testdata/embeddings/ (how far rounding alone moves them).

Usage: gemma3_forward.py LLAMA_BIN_DIR [--model PATH] [--out FILE]
Tokenizes testdata/embeddings/gemma-3-270m.json's texts with llama-ref-dump (../shared/tools/), runs each text
through the model with weights dequantized by the gguf package and, in turn:
  exact        float64 activations;
  q8           matmul inputs quantized as ggml's CPU backend does (Q8_0 beside Q5_0/Q8_0 weights, Q8_K beside
               Q4_K/Q6_K), float32 elsewhere;
  q8+f16       and Q, K, V rounded to f16 (the f16 KV cache; flash attention turns Q into K's type);
  q8+f16+gelu  and GELU through ggml's f16 table, f16(gelu(f16(x))): llama.cpp's roundings, summed in another
               order.
Pools result_norm (mean, cls, last), L2-normalises, prints each cosine against llama.cpp's and the exact
forward's. Texts are shorter than the sliding window (512), so every layer sees the whole causal prefix.
"""
import argparse
import json
import subprocess
from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType, GGUFReader
from gguf.quants import dequantize

ROOT = Path(__file__).resolve().parents[2]
REF = ROOT / "testdata" / "embeddings" / "gemma-3-270m.json"
ROUNDINGS = {"exact": (0, 0, 0), "q8": (1, 0, 0), "q8+f16": (1, 1, 0), "q8+f16+gelu": (1, 1, 1)}


def q8_0(x):
    """ggml's quantize_row_q8_0 and back: blocks of 32, scale amax/127 stored as f16."""
    b = x.reshape(-1, 32).astype(np.float32)
    d = (np.abs(b).max(1, keepdims=True) / 127).astype(np.float32)
    q = np.rint(b * np.where(d > 0, 1 / np.where(d > 0, d, 1), 0).astype(np.float32))
    return (q * d.astype(np.float16).astype(np.float32)).reshape(x.shape)


def q8_k(x):
    """ggml's quantize_row_q8_K and back: blocks of 256, scale from the signed largest value, f32."""
    b = x.reshape(-1, 256).astype(np.float32)
    mx = b[np.arange(len(b)), np.abs(b).argmax(1)][:, None]
    iscale = np.where(mx != 0, -127.0 / np.where(mx != 0, mx, 1), 0).astype(np.float32)
    q = np.minimum(127, np.rint(iscale * b))
    return (q * np.where(iscale != 0, 1 / np.where(iscale != 0, iscale, 1), 0).astype(np.float32)).reshape(x.shape)


def gelu(g, table):
    tanh_gelu = lambda v: 0.5 * v * (1 + np.tanh(np.sqrt(2 / np.pi) * (v + 0.044715 * v**3)))
    if not table:
        return tanh_gelu(g)
    y = tanh_gelu(g.astype(np.float16).astype(np.float64)).astype(np.float32).astype(np.float16)
    return np.where(g <= -10, 0, np.where(g >= 10, g, y.astype(np.float64)))


class Gemma3:
    def __init__(self, path):
        r = GGUFReader(path)
        self.meta = {k: f.contents() for k, f in r.fields.items() if not k.startswith("tokenizer.ggml.")}
        self.tensors = {t.name: t for t in r.tensors}
        self.cache = {}

    def w(self, name):
        if name not in self.cache:
            t = self.tensors[name]
            a = dequantize(t.data, t.tensor_type).astype(np.float64)
            self.cache[name] = a.reshape([int(x) for x in reversed(t.shape)])
        return self.cache[name]

    def embed_rows(self, toks):
        t = self.tensors["token_embd.weight"]
        return dequantize(np.asarray(t.data)[toks], t.tensor_type).astype(np.float64).reshape(len(toks), -1)

    def result_norm(self, toks, q8, f16, gelu_table):
        m, a = self.meta, "gemma3"
        n_head, n_kv = m[f"{a}.attention.head_count"], m[f"{a}.attention.head_count_kv"]
        hd, eps = m[f"{a}.attention.key_length"], m[f"{a}.attention.layer_norm_rms_epsilon"]
        T = len(toks)
        k_quant = (GGMLQuantizationType.Q4_K, GGMLQuantizationType.Q6_K)

        def mm(x, name):
            if q8:
                x = q8_k(x) if self.tensors[name].tensor_type in k_quant else q8_0(x)
            return x @ self.w(name).T

        rms = lambda x, g: x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * self.w(g)
        r16 = (lambda v: v.astype(np.float16).astype(np.float64)) if f16 else (lambda v: v)

        def rope(x, base):  # NEOX order: rotates (x[i], x[i + hd/2])
            ang = np.outer(np.arange(T), base ** (-np.arange(0, hd, 2) / hd))
            cos, sin, h = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :], hd // 2
            return np.concatenate([x[..., :h] * cos - x[..., h:] * sin, x[..., :h] * sin + x[..., h:] * cos], -1)

        x = self.embed_rows(toks) * np.sqrt(m[f"{a}.embedding_length"])
        causal = np.triu(np.ones((T, T), bool), 1)
        for l in range(m[f"{a}.block_count"]):
            p = f"blk.{l}."
            # Every sixth layer is global (the file's base); the sliding-window ones use llama.cpp's 10000.
            base = m[f"{a}.rope.freq_base"] if l % 6 == 5 else 10000.0
            h = rms(x, p + "attn_norm.weight")
            q = rms(mm(h, p + "attn_q.weight").reshape(T, n_head, hd), p + "attn_q_norm.weight")
            k = rms(mm(h, p + "attn_k.weight").reshape(T, n_kv, hd), p + "attn_k_norm.weight")
            v = r16(mm(h, p + "attn_v.weight").reshape(T, n_kv, hd))
            q, k = r16(rope(q, base) / np.sqrt(hd)), r16(rope(k, base))
            k, v = np.repeat(k, n_head // n_kv, axis=1), np.repeat(v, n_head // n_kv, axis=1)
            s = np.einsum("thd,shd->hts", q, k)
            s[:, causal] = -np.inf
            s = np.exp(s - s.max(-1, keepdims=True))
            s /= s.sum(-1, keepdims=True)
            o = mm(np.einsum("hts,shd->thd", s, v).reshape(T, n_head * hd), p + "attn_output.weight")
            x = x + rms(o, p + "post_attention_norm.weight")
            h = rms(x, p + "ffn_norm.weight")
            g, u = mm(h, p + "ffn_gate.weight"), mm(h, p + "ffn_up.weight")
            x = x + rms(mm(gelu(g, gelu_table) * u, p + "ffn_down.weight"), p + "post_ffw_norm.weight")
        return rms(x, "output_norm.weight")


def tokenize(bin_dir, model, text):
    data = text.encode()
    record = b"1 1 %d\n" % len(data) + data + b"\n"  # special tokens added and parsed, as llama-embedding
    out = subprocess.run([str(bin_dir / "llama-ref-dump"), str(model), "tok"], input=record, capture_output=True, check=True)
    return json.loads(out.stdout)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bin_dir", type=Path)
    ap.add_argument("--model", type=Path, default=Path.home() / ".cache/cria/models/gemma-3-270m.gguf")
    ap.add_argument("--out", type=Path, help="write every rounding's pooled vectors here (JSON)")
    args = ap.parse_args()
    ref = json.loads(REF.read_text())
    model = Gemma3(args.model)
    toks = [tokenize(args.bin_dir, args.model, t) for t in ref["texts"]]
    pooled = {}
    for name, flags in ROUNDINGS.items():
        pooled[name] = {"mean": [], "cls": [], "last": []}
        for t in toks:
            rn = model.result_norm(t, *flags)
            for p, v in (("mean", rn.mean(0)), ("cls", rn[0]), ("last", rn[-1])):
                pooled[name][p].append((v / np.linalg.norm(v)).tolist())
    cos = lambda a, b: float(np.dot(a, b) / np.linalg.norm(a) / np.linalg.norm(b))
    row = lambda xs, ys: " ".join(f"{cos(a, b):.5f}" for a, b in zip(xs, ys))
    for name, vecs in pooled.items():
        for p in ("mean", "cls", "last"):
            print(f"{name:12s} {p:5s} vs llama.cpp {row(vecs[p], ref['pooled'][p])}   vs exact {row(vecs[p], pooled['exact'][p])}")
    if args.out:
        args.out.write_text(json.dumps(pooled))


if __name__ == "__main__":
    main()
