#!/usr/bin/env python3
"""Writes a random-weight mixture-of-experts model for speed comparisons: Qwen3-30B-A3B's per-layer shape
(hidden 2048, 32 query / 4 KV heads of 128, 128 experts of width 768, 8 chosen per token, vocabulary 151936)
with fewer layers so it fits a small machine. Matrices are Q4_0 with random nibbles and sane f16 scales (the
values do not matter for speed, only that they are finite); norms and the router are F32 as in real files.

    python3 bench/make_moe_model.py OUT.gguf [--layers 4]

Needs numpy and the `gguf` package (pip install gguf). About 0.35 GB a layer plus 0.35 GB of embeddings.
"""

from __future__ import annotations

import argparse

import numpy as np
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, GGUFWriter

EMBD, HEADS, KV_HEADS, HEAD_DIM = 2048, 32, 4, 128
EXPERTS, USED, EXPERT_FF = 128, 8, 768
VOCAB = 151936
Q4_0 = GGMLQuantizationType.Q4_0


def byte_tokens() -> list[str]:
    """GPT-2's byte-to-unicode table: one token string per byte."""
    bs = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    table = dict(zip(bs, map(chr, cs)))
    return [table[b] for b in range(256)]


def q4_0(rng: np.random.Generator, *shape: int) -> np.ndarray:
    """Random Q4_0 blocks for a ggml tensor of numpy shape `shape` (last dimension contiguous)."""
    block, size = GGML_QUANT_SIZES[Q4_0]
    *outer, cols = shape
    n_blocks = int(np.prod(outer)) * (cols // block)
    raw = rng.integers(0, 256, size=(n_blocks, size), dtype=np.uint8)
    # The f16 scale d of each block (bytes 0-1): about 1/(8 sqrt(cols)), so a row's dot stays O(1).
    scales = (rng.uniform(0.5, 1.5, n_blocks) / (8 * np.sqrt(cols))).astype(np.float16)
    raw[:, 0:2] = scales.view(np.uint8).reshape(n_blocks, 2)
    return raw.reshape(*outer, cols // block * size)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--layers", type=int, default=4)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    a = "qwen3moe"
    w = GGUFWriter(args.out, a)
    w.add_name("random Qwen3-30B-A3B-shaped MoE")
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("qwen2")
    # GPT-2's 256 byte tokens (so any text tokenizes), then fillers up to Qwen's vocabulary size.
    w.add_token_list(byte_tokens() + [f"<t{i}>" for i in range(VOCAB - 258)] + ["<|bos|>", "<|eos|>"])
    w.add_token_types([1] * (VOCAB - 2) + [3, 3])
    w.add_token_merges(["Ġ t"])
    w.add_bos_token_id(VOCAB - 2)
    w.add_eos_token_id(VOCAB - 1)
    for key, value in [
        ("context_length", 4096),
        ("embedding_length", EMBD),
        ("block_count", args.layers),
        ("feed_forward_length", 6144),
        ("attention.head_count", HEADS),
        ("attention.head_count_kv", KV_HEADS),
        ("attention.key_length", HEAD_DIM),
        ("attention.value_length", HEAD_DIM),
        ("expert_count", EXPERTS),
        ("expert_used_count", USED),
        ("expert_feed_forward_length", EXPERT_FF),
    ]:
        w.add_uint32(f"{a}.{key}", value)
    w.add_float32(f"{a}.rope.freq_base", 1e6)
    w.add_float32(f"{a}.attention.layer_norm_rms_epsilon", 1e-6)

    def ones(n: int) -> np.ndarray:
        return np.ones(n, dtype=np.float32)

    w.add_tensor("token_embd.weight", q4_0(rng, VOCAB, EMBD), raw_dtype=Q4_0)
    w.add_tensor("output_norm.weight", ones(EMBD))
    w.add_tensor("output.weight", q4_0(rng, VOCAB, EMBD), raw_dtype=Q4_0)
    q_dim, kv_dim = HEADS * HEAD_DIM, KV_HEADS * HEAD_DIM
    for il in range(args.layers):
        p = f"blk.{il}."
        w.add_tensor(p + "attn_norm.weight", ones(EMBD))
        w.add_tensor(p + "attn_q.weight", q4_0(rng, q_dim, EMBD), raw_dtype=Q4_0)
        w.add_tensor(p + "attn_k.weight", q4_0(rng, kv_dim, EMBD), raw_dtype=Q4_0)
        w.add_tensor(p + "attn_v.weight", q4_0(rng, kv_dim, EMBD), raw_dtype=Q4_0)
        w.add_tensor(p + "attn_q_norm.weight", ones(HEAD_DIM))
        w.add_tensor(p + "attn_k_norm.weight", ones(HEAD_DIM))
        w.add_tensor(p + "attn_output.weight", q4_0(rng, EMBD, q_dim), raw_dtype=Q4_0)
        w.add_tensor(p + "ffn_norm.weight", ones(EMBD))
        router = (rng.standard_normal((EXPERTS, EMBD)) / np.sqrt(EMBD)).astype(np.float32)
        w.add_tensor(p + "ffn_gate_inp.weight", router)
        w.add_tensor(p + "ffn_gate_exps.weight", q4_0(rng, EXPERTS, EXPERT_FF, EMBD), raw_dtype=Q4_0)
        w.add_tensor(p + "ffn_up_exps.weight", q4_0(rng, EXPERTS, EXPERT_FF, EMBD), raw_dtype=Q4_0)
        w.add_tensor(p + "ffn_down_exps.weight", q4_0(rng, EXPERTS, EMBD, EXPERT_FF), raw_dtype=Q4_0)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


if __name__ == "__main__":
    main()
