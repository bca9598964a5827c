#!/usr/bin/env python3
"""Writes the conformance suite: tiny random-weight GGUF files, one per architecture feature, and llama.cpp's
teacher-forced logits for a fixed prompt beside each.

    python3 scripts/conformance/make_cases.py [--ref-dump PATH] [--only NAME ...] [--out testdata/conformance]

Each case is a folder `testdata/conformance/<name>/` holding
  model.gguf      the weights (written with the `gguf` package, llama.cpp's own writer),
  tokens.txt      the prompt, token ids separated by spaces,
  reference.json  `llama-ref-dump model.gguf logits 20 < tokens.txt`: per position the log-sum-exp of the
                  logits and llama.cpp's top-20 `[id, logit]` pairs.
`cargo test -p cria-model --release --test conformance` compares Cria's logits with them.

This is a development-time script: the files it writes are checked in, so tests never run it. It needs numpy,
`gguf` (pip install gguf) and a built `llama-ref-dump` (../shared/tools/llama-cpp-ref.sh builds one).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType, GGUFWriter, quants

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO / "testdata" / "conformance"
DEFAULT_REF_DUMP = Path.home() / ".cache/llama-cpp-ref/llama.cpp/build/bin/llama-ref-dump"
PROMPT_LEN = 48
TOP_K = 20


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


# A minimal byte-level BPE vocabulary, so text tools can open the files too.
TOKENS = byte_vocab() + ["Ġt", "<|bos|>", "<|eos|>"]
N_VOCAB = len(TOKENS)


@dataclass
class Case:
    """One conformance file: an architecture, its shape and the features it switches on."""

    name: str
    arch: str
    n_layer: int = 2
    n_embd: int = 64
    n_head: int = 4
    n_head_kv: int = 2
    head_dim: int = 16
    n_ff: int = 128
    n_rot: int | None = None
    tied: bool = False
    qkv_bias: bool = False
    # "head": per-head RMS norm on Q and K (qwen3, gemma, exaone4); "full": over the whole projection (olmo2).
    qk_norm: str | None = None
    pre_norms: bool = True
    post_norms: bool = False
    # Mean of the post-norm weights: above 1, the layers outweigh the (scaled) input embedding.
    post_norm_gain: float = 1.0
    fused_qkv: bool = False
    # phi3: one `ffn_up` of 2*n_ff rows (gate first), no `ffn_gate`.
    fused_up: bool = False
    # Mixture of experts: `n_expert` stacked experts of width `n_ff_exp`, `n_expert_used` chosen per token;
    # `n_ff_shared`: Qwen2-MoE's shared expert behind a sigmoid gate.
    n_expert: int = 0
    n_expert_used: int = 0
    n_ff_exp: int | None = None
    n_ff_shared: int | None = None
    # The experts' matrices in this format (quantized by the `gguf` package), else F32.
    expert_type: str | None = None
    # gpt-oss: a bias on every expert's gate/up/down and on the router; the gate and up matrices this many times
    # the usual scale (so the clamped SwiGLU's limits are reached).
    expert_biases: bool = False
    expert_gain: float = 1.0
    # gpt-oss: a bias on the attention output, one sink logit per head, and the FFN's pre-norm under this name.
    o_bias: bool = False
    attn_sinks: bool = False
    ffn_norm_name: str = "ffn_norm"
    rope_freqs: bool = False
    long_rope: bool = False
    seed: int = 0
    keys: dict = field(default_factory=dict)


def llama3_rope_factors(n_rot: int, base: float, factor: float = 8.0, orig: float = 8192.0) -> np.ndarray:
    """The factors Llama 3.1's converter bakes into `rope_freqs.weight` (lo 1, hi 4)."""
    lo, hi = 1.0, 4.0
    out = []
    for i in range(n_rot // 2):
        wavelen = 2 * math.pi / base ** (-2 * i / n_rot)
        if wavelen < orig / hi:
            out.append(1.0)
        elif wavelen > orig / lo:
            out.append(factor)
        else:
            smooth = (orig / wavelen - lo) / (hi - lo)
            out.append(1.0 / ((1 - smooth) / factor + smooth))
    return np.array(out, dtype=np.float32)


def write_case(case: Case, path: Path) -> None:
    rng = np.random.default_rng(case.seed or sum(map(ord, case.name)))
    e, hd, nh, nkv, ff = case.n_embd, case.head_dim, case.n_head, case.n_head_kv, case.n_ff
    q_dim, kv_dim = nh * hd, nkv * hd
    n_rot = case.n_rot or hd
    a = case.arch

    def mat(rows: int, cols: int) -> np.ndarray:
        # ~N(0, 1/fan_in): activations keep their scale through the layers.
        return (rng.standard_normal((rows, cols)) / math.sqrt(cols)).astype(np.float32)

    def norm(n: int, gain: float = 1.0) -> np.ndarray:
        return (gain * (1.0 + 0.2 * rng.standard_normal(n))).astype(np.float32)

    def vec(n: int, scale: float = 0.5) -> np.ndarray:
        return (scale * rng.standard_normal(n)).astype(np.float32)

    w = GGUFWriter(str(path), a)
    # Not the case's name: llama.cpp keys vocabulary fixes on model names ("phi3" wants Phi-3's tokens).
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
    w.add_uint32(f"{a}.embedding_length", e)
    w.add_uint32(f"{a}.block_count", case.n_layer)
    w.add_uint32(f"{a}.feed_forward_length", ff)
    w.add_uint32(f"{a}.attention.head_count", nh)
    w.add_uint32(f"{a}.attention.head_count_kv", nkv)
    w.add_uint32(f"{a}.attention.key_length", hd)
    w.add_uint32(f"{a}.attention.value_length", hd)
    w.add_uint32(f"{a}.rope.dimension_count", n_rot)
    w.add_float32(f"{a}.attention.layer_norm_rms_epsilon", 1e-6)
    if case.n_expert:
        w.add_uint32(f"{a}.expert_count", case.n_expert)
        w.add_uint32(f"{a}.expert_used_count", case.n_expert_used)
    if case.n_ff_exp:
        w.add_uint32(f"{a}.expert_feed_forward_length", case.n_ff_exp)
    if case.n_ff_shared:
        w.add_uint32(f"{a}.expert_shared_feed_forward_length", case.n_ff_shared)
    for key, value in case.keys.items():
        full = key if key.startswith(("general.", "tokenizer.")) else f"{a}.{key}"
        if isinstance(value, list):
            w.add_array(full, value)
        elif isinstance(value, str):
            w.add_string(full, value)
        elif isinstance(value, bool):
            w.add_bool(full, value)
        elif isinstance(value, int):
            w.add_uint32(full, value)
        else:
            w.add_float32(full, float(value))

    # Embeddings ~N(0, 1) and an untied output, so the last layer's output, not the input token, picks the
    # top-1. Tied, the embeddings are the output too: small ones keep the input token from dominating.
    embd_std = 0.25 if case.tied else 1.0
    w.add_tensor("token_embd.weight", (embd_std * rng.standard_normal((N_VOCAB, e))).astype(np.float32))
    w.add_tensor("output_norm.weight", norm(e))
    if not case.tied:
        w.add_tensor("output.weight", mat(N_VOCAB, e))
    if case.rope_freqs:
        base = case.keys.get("rope.freq_base", 10000.0)
        w.add_tensor("rope_freqs.weight", llama3_rope_factors(n_rot, base))
    if case.long_rope:
        w.add_tensor("rope_factors_long.weight", (1.0 + 15.0 * rng.random(n_rot // 2)).astype(np.float32))
        w.add_tensor("rope_factors_short.weight", (1.0 + rng.random(n_rot // 2)).astype(np.float32))
    for il in range(case.n_layer):
        p = f"blk.{il}."
        if case.pre_norms:
            w.add_tensor(p + "attn_norm.weight", norm(e))
        if case.fused_qkv:
            w.add_tensor(p + "attn_qkv.weight", mat(q_dim + 2 * kv_dim, e))
        else:
            w.add_tensor(p + "attn_q.weight", mat(q_dim, e))
            w.add_tensor(p + "attn_k.weight", mat(kv_dim, e))
            w.add_tensor(p + "attn_v.weight", mat(kv_dim, e))
        if case.qkv_bias:
            w.add_tensor(p + "attn_q.bias", vec(q_dim))
            w.add_tensor(p + "attn_k.bias", vec(kv_dim))
            w.add_tensor(p + "attn_v.bias", vec(kv_dim))
        if case.qk_norm == "head":
            w.add_tensor(p + "attn_q_norm.weight", norm(hd))
            w.add_tensor(p + "attn_k_norm.weight", norm(hd))
        elif case.qk_norm == "full":
            w.add_tensor(p + "attn_q_norm.weight", norm(q_dim))
            w.add_tensor(p + "attn_k_norm.weight", norm(kv_dim))
        w.add_tensor(p + "attn_output.weight", mat(e, q_dim))
        if case.o_bias:
            w.add_tensor(p + "attn_output.bias", vec(e))
        if case.attn_sinks:
            w.add_tensor(p + "attn_sinks.weight", vec(nh, 1.5))
        if case.post_norms:
            w.add_tensor(p + "post_attention_norm.weight", norm(e, case.post_norm_gain))
            w.add_tensor(p + "post_ffw_norm.weight", norm(e, case.post_norm_gain))
        if case.pre_norms:
            w.add_tensor(p + f"{case.ffn_norm_name}.weight", norm(e))
        if case.n_expert:
            add_experts(w, p, case, mat, vec)
        elif case.fused_up:
            w.add_tensor(p + "ffn_up.weight", mat(2 * ff, e))
        else:
            w.add_tensor(p + "ffn_gate.weight", mat(ff, e))
            w.add_tensor(p + "ffn_up.weight", mat(ff, e))
        if not case.n_expert:
            w.add_tensor(p + "ffn_down.weight", mat(e, ff))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def add_experts(w: GGUFWriter, p: str, case: Case, mat, vec) -> None:
    """The router (F32, as in real files), the stacked experts and the shared expert of one layer."""
    e, x = case.n_embd, case.n_expert
    ff = case.n_ff_exp or case.n_ff
    # A router 4x the usual scale: clear choices, so a rounding difference rarely swaps an expert.
    w.add_tensor(p + "ffn_gate_inp.weight", 4.0 * mat(x, e))
    if case.expert_biases:
        w.add_tensor(p + "ffn_gate_inp.bias", vec(x))
    for name, rows, cols in [("gate", ff, e), ("up", ff, e), ("down", e, ff)]:
        gain = case.expert_gain if name != "down" else 1.0
        stacked = np.stack([gain * mat(rows, cols) for _ in range(x)])
        if case.expert_type:
            qtype = GGMLQuantizationType[case.expert_type]
            w.add_tensor(p + f"ffn_{name}_exps.weight", quants.quantize(stacked, qtype), raw_dtype=qtype)
        else:
            w.add_tensor(p + f"ffn_{name}_exps.weight", stacked)
        if case.expert_biases:
            w.add_tensor(p + f"ffn_{name}_exps.bias", np.stack([vec(rows) for _ in range(x)]))
    if case.n_ff_shared:
        sff = case.n_ff_shared
        w.add_tensor(p + "ffn_gate_inp_shexp.weight", mat(1, e)[0])
        w.add_tensor(p + "ffn_gate_shexp.weight", mat(sff, e))
        w.add_tensor(p + "ffn_up_shexp.weight", mat(sff, e))
        w.add_tensor(p + "ffn_down_shexp.weight", mat(e, sff))


def cases() -> list[Case]:
    """The suite. Windows are shorter than the prompt, original contexts below llama-ref-dump's 4096."""
    return [
        Case("llama_f32", "llama"),
        Case("llama_rope_freqs", "llama", rope_freqs=True, keys={"rope.freq_base": 500000.0}),
        Case("llama_linear_rope", "llama", keys={"rope.scaling.type": "linear", "rope.scaling.factor": 4.0}),
        Case(
            "llama_yarn",
            "llama",
            keys={
                "rope.scaling.type": "yarn",
                "rope.scaling.factor": 4.0,
                "rope.scaling.original_context_length": 32,
            },
        ),
        Case("qwen2", "qwen2", qkv_bias=True),
        Case("qwen3", "qwen3", head_dim=32, qk_norm="head", tied=True, keys={"rope.freq_base": 1e6}),
        Case(
            "qwen3_yarn",
            "qwen3",
            head_dim=32,
            qk_norm="head",
            keys={
                "rope.freq_base": 1e6,
                "rope.scaling.type": "yarn",
                "rope.scaling.factor": 8.0,
                "rope.scaling.original_context_length": 16,
                "rope.scaling.attn_factor": 1.1,
            },
        ),
        Case(
            "gemma2",
            "gemma2",
            n_layer=4,
            head_dim=32,
            tied=True,
            post_norms=True,
            post_norm_gain=4.0,
            keys={
                "attention.sliding_window": 8,
                "attn_logit_softcapping": 2.0,
                "final_logit_softcapping": 8.0,
            },
        ),
        Case(
            "phi3",
            "phi3",
            n_head_kv=4,
            n_rot=8,
            fused_qkv=True,
            fused_up=True,
            long_rope=True,
            keys={
                "rope.scaling.original_context_length": 128,
                "rope.scaling.attn_factor": 1.19,
            },
        ),
        Case(
            "granite",
            "granite",
            keys={
                "embedding_scale": 3.0,
                "attention.scale": 0.1,
                "residual_scale": 0.5,
                "logit_scale": 2.0,
            },
        ),
        Case("olmo2", "olmo2", n_head_kv=4, qk_norm="full", pre_norms=False, post_norms=True),
        # OLMo 3 (arch olmo2 with a window): sliding layers 0-2 with plain RoPE, layer 3 global with YaRN.
        Case(
            "olmo3_swa_yarn",
            "olmo2",
            n_layer=4,
            n_head_kv=4,
            qk_norm="full",
            pre_norms=False,
            post_norms=True,
            keys={
                "attention.sliding_window": 8,
                "rope.scaling.type": "yarn",
                "rope.scaling.factor": 8.0,
                "rope.scaling.original_context_length": 16,
            },
        ),
        Case("smollm3", "smollm3", n_layer=4, tied=True),
        Case("exaone", "exaone", rope_freqs=True, keys={"rope.freq_base": 1e6}),
        Case("exaone4", "exaone4", n_head_kv=2, qk_norm="head", pre_norms=False, post_norms=True, n_head=4),
        # Mixtral: llama with 8 experts as wide as feed_forward_length, 2 chosen and renormalized.
        Case("llama_moe", "llama", n_ff=64, n_expert=8, n_expert_used=2),
        Case(
            "qwen3moe",
            "qwen3moe",
            head_dim=32,
            qk_norm="head",
            n_expert=8,
            n_expert_used=2,
            n_ff_exp=64,
            keys={"rope.freq_base": 1e6},
        ),
        # Quantized experts: each expert is a row range of a Q8_0 / Q4_0 3-D tensor.
        Case(
            "qwen3moe_q8_0",
            "qwen3moe",
            head_dim=32,
            qk_norm="head",
            n_expert=8,
            n_expert_used=2,
            n_ff_exp=64,
            expert_type="Q8_0",
        ),
        Case("llama_moe_q4_0", "llama", n_ff=64, n_expert=8, n_expert_used=2, expert_type="Q4_0"),
        # Qwen2-MoE: weights not renormalized, a shared expert behind a sigmoid gate; attn_output {E, E}.
        Case(
            "qwen2moe",
            "qwen2moe",
            qkv_bias=True,
            n_expert=4,
            n_expert_used=2,
            n_ff_exp=64,
            n_ff_shared=96,
        ),
        # llama.cpp turns on EXAONE 4's hybrid attention at 64 layers only: 3 sliding layers with RoPE, then a
        # global one without, from the per-layer flags. Narrow so 64 layers stay small.
        Case(
            "exaone4_hybrid",
            "exaone4",
            n_layer=64,
            n_embd=16,
            n_head=2,
            n_head_kv=1,
            head_dim=8,
            n_ff=32,
            qk_norm="head",
            pre_norms=False,
            post_norms=True,
            keys={
                "attention.sliding_window": 8,
                "attention.sliding_window_pattern": [True, True, True, False] * 16,
            },
        ),
        # gpt-oss: 4 experts in MXFP4 (as the real files), 2 chosen by raw router logit + bias and weighted by a
        # softmax over the two; biased experts with the clamped SwiGLU (gate/up x4: the clamps are reached);
        # Q/K/V/O biases, a sink per head; window 8 on the even layers; YaRN factor 8 from an original context
        # of 16; Q width 128 != E.
        Case(
            "gpt_oss",
            "gpt-oss",
            n_layer=4,
            head_dim=32,
            qkv_bias=True,
            o_bias=True,
            attn_sinks=True,
            ffn_norm_name="post_attention_norm",
            n_expert=4,
            n_expert_used=2,
            n_ff_exp=64,
            expert_type="MXFP4",
            expert_biases=True,
            expert_gain=4.0,
            keys={
                "attention.sliding_window": 8,
                "rope.freq_base": 150000.0,
                "rope.scaling.type": "yarn",
                "rope.scaling.factor": 8.0,
                "rope.scaling.original_context_length": 16,
            },
        ),
    ]


def reference_logits(ref_dump: Path, model: Path, tokens: str) -> str:
    env = dict(os.environ, OMP_NUM_THREADS="2")
    out = subprocess.run(
        [str(ref_dump), str(model), "logits", str(TOP_K)],
        input=tokens + "\n",
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
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
    ap.add_argument("--only", nargs="*", help="case names to (re)write; all when absent")
    ap.add_argument("--models-only", action="store_true", help="write the GGUF files and prompts, not the references")
    args = ap.parse_args()
    for case in cases():
        if args.only and case.name not in args.only:
            continue
        folder = args.out / case.name
        folder.mkdir(parents=True, exist_ok=True)
        model = folder / "model.gguf"
        write_case(case, model)
        ids = [int(t) for t in np.random.default_rng(1234).integers(0, 256, PROMPT_LEN)]
        tokens = " ".join(map(str, ids))
        (folder / "tokens.txt").write_text(tokens + "\n")
        stats = ""
        if not args.models_only:
            reference = reference_logits(args.ref_dump, model, tokens)
            (folder / "reference.json").write_text(reference + "\n")
            stats = describe(reference, ids)
        print(f"{case.name}: {model.stat().st_size} bytes; {stats}")


if __name__ == "__main__":
    main()
