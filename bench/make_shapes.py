#!/usr/bin/env python3
"""Writes random-weight GGUF models with the shapes of real ones, for speed measurements that mean what users
see: random weights do not change how fast a matmul runs, only the shape and the block format do.

Each shape is written once as F16 (the `gguf` package, streamed tensor by tensor so an 8B file never sits in
memory) and then quantized by llama.cpp's `llama-quantize` to the requested types, so cria and llama.cpp read
the very same bytes. The tokenizer is a synthetic byte-level BPE with the shape's vocabulary size (the 256
bytes, every pair of common characters, then triples, and the Llama-3 special tokens at the end), so both
engines load it, tokenize a prompt and run a chat template.

Usage: bench/make_shapes.py [--shape 1b|8b] [--out DIR] [--types Q4_K_M,Q4_0,Q8_0] [--llama-bin DIR]
Prints one path per line: the quantized files (existing ones are kept). The 8B shape is ~16 GB as F16: make
it only on demand, outside the repository (the default folder is ~/.cache/cria-bench).
"""
import argparse
import os
import shutil
import subprocess
import sys

import numpy as np
from gguf import GGMLQuantizationType, GGUFWriter, TokenType

# Llama-3.2-1B and Llama-3.1-8B as their config.json give them.
SHAPES = {
    "1b": dict(name="llama-3.2-1b-shape", hidden=2048, layers=16, heads=32, kv_heads=8, ffn=8192,
               vocab=128256, tied=True),
    "8b": dict(name="llama-3.1-8b-shape", hidden=4096, layers=32, heads=32, kv_heads=8, ffn=14336,
               vocab=128256, tied=False),
}
N_SPECIAL = 256  # Llama 3: <|begin_of_text|> = 128000 ... <|reserved_special_token_247|> = 128255
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n"
    "{{ m['content'] | trim }}<|eot_id|>{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)


def byte_symbols():
    """GPT-2's byte-to-unicode table: the 256 single-byte tokens of a byte-level BPE vocabulary."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return [table[b] for b in range(256)]


def special_tokens():
    names = ["<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
             "<|reserved_special_token_1|>", "<|finetune_right_pad_id|>", "<|reserved_special_token_2|>",
             "<|start_header_id|>", "<|end_header_id|>", "<|eom_id|>", "<|eot_id|>", "<|python_tag|>"]
    names += [f"<|reserved_special_token_{i}|>" for i in range(3, 3 + N_SPECIAL - len(names))]
    return names


def vocabulary(size):
    """Tokens, types and merges of a valid byte-level BPE: bytes, then pairs, then triples of common
    characters (space-led words first, as in real vocabularies), then the special tokens."""
    n_normal = size - N_SPECIAL
    tokens = byte_symbols()
    space = tokens[ord(" ")]
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)] + [chr(c) for c in range(ord("A"), ord("Z") + 1)]
    firsts = [space] + letters
    merges, seen = [], set(tokens)

    def add(left, right):
        if len(tokens) < n_normal and left + right not in seen:
            seen.add(left + right)
            tokens.append(left + right)
            merges.append(f"{left} {right}")

    pairs = [a + b for a in firsts for b in letters]
    for p in pairs:
        add(p[0], p[1])
    for p in pairs:
        for c in letters:
            add(p, c)
    for t in list(tokens[256:]):  # quadruples, only if the vocabulary is still short
        for c in letters:
            add(t, c)
    if len(tokens) < n_normal:
        sys.exit(f"vocabulary of {size} is larger than this generator's {len(tokens) + N_SPECIAL}")
    types = [TokenType.NORMAL] * len(tokens) + [TokenType.CONTROL] * N_SPECIAL
    return tokens + special_tokens(), types, merges


def tensor_plan(s):
    """(name, shape as numpy rows x cols) of every tensor, in llama.cpp's naming."""
    d, f, hd = s["hidden"], s["ffn"], s["hidden"] // s["heads"]
    kv = s["kv_heads"] * hd
    plan = [("token_embd.weight", (s["vocab"], d))]
    for i in range(s["layers"]):
        b = f"blk.{i}."
        plan += [(b + "attn_norm.weight", (d,)), (b + "attn_q.weight", (d, d)), (b + "attn_k.weight", (kv, d)),
                 (b + "attn_v.weight", (kv, d)), (b + "attn_output.weight", (d, d)),
                 (b + "ffn_norm.weight", (d,)), (b + "ffn_gate.weight", (f, d)), (b + "ffn_up.weight", (f, d)),
                 (b + "ffn_down.weight", (d, f))]
    plan.append(("output_norm.weight", (d,)))
    if not s["tied"]:
        plan.append(("output.weight", (s["vocab"], d)))
    return plan


def add_metadata(w, s):
    w.add_name(s["name"])
    w.add_context_length(131072)
    w.add_embedding_length(s["hidden"])
    w.add_block_count(s["layers"])
    w.add_feed_forward_length(s["ffn"])
    w.add_head_count(s["heads"])
    w.add_head_count_kv(s["kv_heads"])
    w.add_rope_dimension_count(s["hidden"] // s["heads"])
    w.add_rope_freq_base(500000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(s["vocab"])
    w.add_file_type(1)  # mostly F16
    tokens, types, merges = vocabulary(s["vocab"])
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("llama-bpe")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    n_normal = s["vocab"] - N_SPECIAL
    w.add_bos_token_id(n_normal)  # <|begin_of_text|>
    w.add_eos_token_id(n_normal + 9)  # <|eot_id|>
    w.add_add_bos_token(True)
    w.add_chat_template(CHAT_TEMPLATE)


def write_f16(s, path, seed):
    w = GGUFWriter(path, "llama")
    add_metadata(w, s)
    plan = tensor_plan(s)
    for name, shape in plan:
        dtype = np.float32 if len(shape) == 1 else np.float16
        w.add_tensor_info(name, shape, np.dtype(dtype), int(np.prod(shape)) * np.dtype(dtype).itemsize,
                          GGMLQuantizationType.F32 if dtype == np.float32 else GGMLQuantizationType.F16)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    rng = np.random.default_rng(seed)
    for name, shape in plan:
        if len(shape) == 1:
            w.write_tensor_data(np.ones(shape, dtype=np.float32))
            continue
        # Scaled so activations stay finite through every layer: 1/sqrt(fan-in), like an initialised model.
        scale = np.float32(1.0 / np.sqrt(shape[1]))
        data = np.empty(shape, dtype=np.float16)
        for r in range(0, shape[0], 4096):
            data[r:r + 4096] = rng.standard_normal((min(4096, shape[0] - r), shape[1]), np.float32) * scale
        w.write_tensor_data(data)
        print(f"  {name} {shape}", file=sys.stderr)
    w.close()


def find_quantize(llama_bin):
    for d in [llama_bin, os.path.expanduser("~/.cache/llama-cpp-ref/llama.cpp/build/bin"),
              os.path.expanduser("~/.cache/llama-cpp-ref/llama.cpp/build-avx2/bin")]:
        if d and os.access(os.path.join(d, "llama-quantize"), os.X_OK):
            return os.path.join(d, "llama-quantize")
    return shutil.which("llama-quantize") or sys.exit(
        "no llama-quantize: build llama.cpp with ../shared/tools/llama-cpp-ref.sh or pass --llama-bin")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shape", choices=SHAPES, default="1b")
    ap.add_argument("--out", default=os.path.expanduser("~/.cache/cria-bench"))
    ap.add_argument("--types", default="Q4_K_M,Q4_0,Q8_0")
    ap.add_argument("--llama-bin", help="folder holding llama-quantize")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep-f16", action="store_true", help="keep the F16 file after quantizing")
    a = ap.parse_args()
    s = SHAPES[a.shape]
    os.makedirs(a.out, exist_ok=True)
    f16 = os.path.join(a.out, f"{s['name']}-f16.gguf")
    wanted = [(t, os.path.join(a.out, f"{s['name']}-{t.lower()}.gguf")) for t in a.types.split(",") if t]
    missing = [(t, p) for t, p in wanted if not os.path.exists(p)]
    if missing and not os.path.exists(f16):
        print(f"writing {f16}", file=sys.stderr)
        write_f16(s, f16 + ".part", a.seed)
        os.replace(f16 + ".part", f16)
    for t, p in missing:
        print(f"quantizing to {t}", file=sys.stderr)
        subprocess.run([find_quantize(a.llama_bin), f16, p + ".part", t], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.replace(p + ".part", p)
    if missing and not a.keep_f16 and os.path.exists(f16):
        os.remove(f16)
    for _, p in wanted:
        print(p)


if __name__ == "__main__":
    main()
