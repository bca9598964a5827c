#!/usr/bin/env python3
"""Writes the weight-format part of the conformance suite: one tiny random-weight `llama` GGUF per IQ, ternary
and MXFP4 format, with llama.cpp's teacher-forced logits beside each.

    python3 scripts/conformance/make_format_cases.py [--ref-dump PATH] [--only NAME ...]

Each case is a folder `testdata/conformance-formats/<format>/` holding
  model.gguf      the weights (written with the `gguf` package, llama.cpp's own writer): every matrix (the
                  embedding, attention, feed-forward and output) in the format, the norms in F32;
  tokens.txt      the prompt, token ids separated by spaces;
  reference.json  `llama-ref-dump model.gguf logits 20 < tokens.txt`: per position the log-sum-exp of the
                  logits and llama.cpp's top-20 `[id, logit]` pairs.
`cargo test -p cria-model --release --test conformance` compares Cria's logits with them.

The matrices: TQ1_0, TQ2_0 and MXFP4 are quantized from N(0, 1/fan_in) floats by the `gguf` package's own
quantizers; the IQ formats (which the package cannot quantize to) are random blocks, each block's scale set so
that its dequantized values have the same spread (the package's dequantizers measure it). Same layout as
scripts/conformance/make_cases.py (the architecture suite).

A development-time script: its output is checked in, so tests never run it. Needs numpy, `gguf`
(pip install gguf) and a built `llama-ref-dump` (../shared/tools/llama-cpp-ref.sh builds one).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import GGUFWriter, quants
from gguf.constants import GGML_QUANT_SIZES

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO / "testdata" / "conformance-formats"
DEFAULT_REF_DUMP = Path.home() / ".cache/llama-cpp-ref/llama.cpp/build/bin/llama-ref-dump"
PROMPT_LEN = 48
TOP_K = 20
N_EMBD, N_HEAD, N_HEAD_KV, N_FF, N_LAYER = 256, 4, 2, 512, 2
HEAD_DIM = N_EMBD // N_HEAD

FORMATS = ["IQ4_NL", "IQ4_XS", "MXFP4", "TQ2_0", "TQ1_0", "IQ3_S", "IQ3_XXS", "IQ2_XXS", "IQ2_XS", "IQ2_S",
           "IQ1_S", "IQ1_M", "Q4_0", "Q4_K"]
QUANTIZED_BY_GGUF = {"TQ1_0", "TQ2_0", "MXFP4", "Q4_0"}
# Q4_0 and Q4_K: formats llama.cpp repacks on x86 (8-row groups, its own summation order: gemm for the first
# n - n % 4 tokens, gemv for the rest), so their prompts leave a remainder of 3 tokens to cover both orders
PROMPT_LEN_OF = {"Q4_0": 47, "Q4_K": 47}
# byte offset of each IQ block's f16 scale (IQ1_M spreads it over the top nibbles of its last 8 bytes)
D_OFFSET = {"IQ4_NL": 0, "IQ4_XS": 0, "IQ2_XXS": 0, "IQ2_XS": 0, "IQ2_S": 0, "IQ3_XXS": 0, "IQ3_S": 0,
            "IQ1_S": 0, "IQ1_M": None, "Q4_K": 0}


def byte_vocab() -> list[str]:
    """GPT-2's byte-to-unicode table: 256 unique token strings, one per byte."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    table = dict(zip(bs, map(chr, cs)))
    return [table[b] for b in range(256)]


TOKENS = byte_vocab() + ["Ġt", "<|bos|>", "<|eos|>"]
N_VOCAB = len(TOKENS)


def set_d(blocks: np.ndarray, name: str, d: np.ndarray) -> None:
    """Writes the f16 scales `d` (one per block) into `blocks` in place."""
    bits = d.astype(np.float16).view(np.uint16)
    off = D_OFFSET[name]
    if off is not None:
        blocks[:, off:off + 2] = bits.view(np.uint8).reshape(-1, 2)
        return
    sc = blocks[:, -8:].copy().view("<u2").reshape(-1, 4)
    for k in range(4):
        sc[:, k] = (sc[:, k] & 0x0FFF) | (((bits >> (4 * k)) & 0xF) << 12)
    blocks[:, -8:] = sc.view(np.uint8).reshape(-1, 8)


def random_iq(rng: np.random.Generator, name: str, rows: int, cols: int, std: float) -> np.ndarray:
    """Random blocks of an IQ format whose dequantized values have standard deviation ~`std`."""
    block, size = GGML_QUANT_SIZES[T[name]]
    n_blocks = rows * cols // block
    b = rng.integers(0, 256, (n_blocks, size), dtype=np.uint8)
    set_d(b, name, np.ones(n_blocks, dtype=np.float32))
    unit = quants.dequantize(b.reshape(-1), T[name]).reshape(n_blocks, block).std(axis=1)
    set_d(b, name, std / np.maximum(unit, 1e-3))
    return b.reshape(rows, cols // block * size)


def random_q4_k(rng: np.random.Generator, rows: int, cols: int, std: float) -> np.ndarray:
    """Random Q4_K blocks (which the package cannot quantize to): d and dmin set alike so that the dequantized
    values have standard deviation ~`std`."""
    block, size = GGML_QUANT_SIZES[T.Q4_K]
    n_blocks = rows * cols // block
    b = rng.integers(0, 256, (n_blocks, size), dtype=np.uint8)

    def set_scales(d: np.ndarray) -> None:
        bits = d.astype(np.float16).view(np.uint8).reshape(-1, 2)
        b[:, 0:2], b[:, 2:4] = bits, bits

    set_scales(np.ones(n_blocks, dtype=np.float32))
    unit = quants.dequantize(b.reshape(-1), T.Q4_K).reshape(n_blocks, block).std(axis=1)
    set_scales(std / np.maximum(unit, 1e-3))
    return b.reshape(rows, cols // block * size)


def matrix(rng: np.random.Generator, name: str, rows: int, cols: int, std: float) -> np.ndarray:
    """A `rows x cols` matrix in format `name`, as the bytes the writer stores (rows x row bytes)."""
    if name == "Q4_K":
        return random_q4_k(rng, rows, cols, std)
    if name in QUANTIZED_BY_GGUF:
        x = (std * rng.standard_normal((rows, cols))).astype(np.float32)
        return quants.quantize(x, T[name])
    return random_iq(rng, name, rows, cols, std)


def write_case(name: str, path: Path) -> None:
    rng = np.random.default_rng(sum(map(ord, name)))
    qt = T[name]
    a = "llama"
    w = GGUFWriter(str(path), a)
    w.add_name("cria-conformance")
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("qwen2")
    w.add_token_list(TOKENS)
    w.add_token_types([1] * 257 + [3, 3])
    w.add_token_merges(["Ġ t"])
    w.add_bos_token_id(257)
    w.add_eos_token_id(258)
    w.add_add_bos_token(False)
    w.add_uint32(f"{a}.context_length", 256)
    w.add_uint32(f"{a}.embedding_length", N_EMBD)
    w.add_uint32(f"{a}.block_count", N_LAYER)
    w.add_uint32(f"{a}.feed_forward_length", N_FF)
    w.add_uint32(f"{a}.attention.head_count", N_HEAD)
    w.add_uint32(f"{a}.attention.head_count_kv", N_HEAD_KV)
    w.add_uint32(f"{a}.rope.dimension_count", HEAD_DIM)
    w.add_float32(f"{a}.attention.layer_norm_rms_epsilon", 1e-6)

    def add(tensor: str, rows: int, cols: int, std: float) -> None:
        w.add_tensor(tensor, matrix(rng, name, rows, cols, std), raw_dtype=qt)

    def norm(n: int) -> np.ndarray:
        return (1.0 + 0.2 * rng.standard_normal(n)).astype(np.float32)

    # ~N(0, 1/fan_in) matrices keep the activations' scale; an N(0, 1) embedding and an untied output, so the
    # layers, not the input token, pick the top-1
    add("token_embd.weight", N_VOCAB, N_EMBD, 1.0)
    w.add_tensor("output_norm.weight", norm(N_EMBD))
    add("output.weight", N_VOCAB, N_EMBD, 1.0 / math.sqrt(N_EMBD))
    kv = N_HEAD_KV * HEAD_DIM
    for il in range(N_LAYER):
        p = f"blk.{il}."
        w.add_tensor(p + "attn_norm.weight", norm(N_EMBD))
        add(p + "attn_q.weight", N_EMBD, N_EMBD, 1.0 / math.sqrt(N_EMBD))
        add(p + "attn_k.weight", kv, N_EMBD, 1.0 / math.sqrt(N_EMBD))
        add(p + "attn_v.weight", kv, N_EMBD, 1.0 / math.sqrt(N_EMBD))
        add(p + "attn_output.weight", N_EMBD, N_EMBD, 1.0 / math.sqrt(N_EMBD))
        w.add_tensor(p + "ffn_norm.weight", norm(N_EMBD))
        add(p + "ffn_gate.weight", N_FF, N_EMBD, 1.0 / math.sqrt(N_EMBD))
        add(p + "ffn_up.weight", N_FF, N_EMBD, 1.0 / math.sqrt(N_EMBD))
        add(p + "ffn_down.weight", N_EMBD, N_FF, 1.0 / math.sqrt(N_FF))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def reference_logits(ref_dump: Path, model: Path, tokens: str) -> str:
    env = dict(os.environ, OMP_NUM_THREADS="2")
    out = subprocess.run([str(ref_dump), str(model), "logits", str(TOP_K)], input=tokens + "\n",
                         capture_output=True, text=True, env=env, check=False)
    if out.returncode != 0:
        sys.exit(f"llama-ref-dump failed on {model}: {out.stderr.strip()}")
    return out.stdout.strip()


def describe(reference: str, tokens: list[int]) -> str:
    """How informative a reference is: a top-1 that is merely the input token, or ties, test little."""
    rows = json.loads(reference)
    same = sum(r["top"][0][0] == t for r, t in zip(rows, tokens)) / len(rows)
    margins = [r["top"][0][1] - r["top"][1][1] for r in rows]
    confident = sum(m >= 0.1 for m in margins) / len(rows)
    spread = sum(r["top"][0][1] - r["top"][-1][1] for r in rows) / len(rows)
    return f"top-1 = input {same:.0%}, margin >= 0.1 at {confident:.0%}, top-20 spread {spread:.2f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--ref-dump", type=Path, default=DEFAULT_REF_DUMP)
    ap.add_argument("--only", nargs="*", help="formats to (re)write; all when absent")
    ap.add_argument("--models-only", action="store_true", help="write the GGUF files and prompts, not the references")
    args = ap.parse_args()
    for name in FORMATS:
        if args.only and name not in args.only:
            continue
        folder = args.out / name.lower()
        folder.mkdir(parents=True, exist_ok=True)
        model = folder / "model.gguf"
        write_case(name, model)
        ids = [int(t) for t in np.random.default_rng(1234).integers(0, 256, PROMPT_LEN_OF.get(name, PROMPT_LEN))]
        tokens = " ".join(map(str, ids))
        (folder / "tokens.txt").write_text(tokens + "\n")
        stats = ""
        if not args.models_only:
            reference = reference_logits(args.ref_dump, model, tokens)
            (folder / "reference.json").write_text(reference + "\n")
            stats = describe(reference, ids)
        print(f"{name}: {model.stat().st_size} bytes; {stats}")


if __name__ == "__main__":
    main()
