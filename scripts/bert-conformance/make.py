#!/usr/bin/env python3
"""Conformance data for the encoders (`bert`, `nomic-bert`) and the WordPiece tokenizer, from llama.cpp.

1. Trains a small WordPiece vocabulary (the `tokenizers` package, BERT's normalizer and pre-tokenizer) on the
   tokenizer-parity corpus and writes it the way llama.cpp's converter does (`##x` -> `x`, a word start `x` ->
   `▁x`, `[CLS]`-style specials as control tokens).
2. Writes two tiny random-weight GGUF files with it, `bert.gguf` (separate Q/K/V with biases, absolute
   positions, GELU FFN, mean pooling) and `nomic-bert.gguf` (fused QKV, NEOX RoPE, SwiGLU, CLS pooling).
3. Records llama.cpp's tokenization of every case (`llama-ref-dump MODEL tok`) and its embeddings of a few
   token-id sequences under each pooling (`embed-dump MODEL POOLING`, built from embed-dump.cpp beside this).

Everything goes to testdata/bert/; `crates/cria-model/tests/encoder_conformance.rs` and
`crates/cria-tokenizer/tests/wpm.rs` compare Cria with it.

Usage: scripts/bert-conformance/make.py LLAMA_BIN_DIR EMBED_DUMP   (needs: pip install gguf tokenizers numpy)
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import gguf
import numpy as np
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "testdata" / "bert"
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
N_EMBD, N_HEAD, N_FF, N_LAYER, N_CTX = 32, 4, 64, 2, 64

EDGE_CASES = [
    "Héllo WÖRLD ÀÉÎÕÜ àéîõü cafe\u0301 İstanbul ǅemal",
    "unaffable unbelievable xyzzyqwv plugh",
    "a\tb\r\nc\u3000d\u00a0e\u0085f \u200bg",
    "日本語のテキスト、中文，标点！한국어 문장입니다.",
    "$100 + 50% = €150 ~ ^_^ | `code` @user #tag",
    "[CLS] in [SEP] text [MASK] and [UNK]",
    "control\u0000chars\u0007and\ufffdreplacement\u200d",
    "",
    "   ",
]


def corpus():
    texts = [json.loads(line)["text"]
             for line in (ROOT / "testdata" / "tokenizer-parity" / "cases.jsonl").read_text().split("\n") if line]
    texts += EDGE_CASES
    seen, unique = set(), []
    for t in texts:
        if t not in seen:
            seen.add(t)
            unique.append(t)
    return unique


def train(texts):
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(vocab_size=800, min_frequency=2, special_tokens=SPECIALS,
                                        show_progress=False)
    tok.train_from_iterator(texts * 2, trainer=trainer)
    vocab = json.loads(tok.to_str())["model"]["vocab"]
    tokens = [None] * len(vocab)
    for piece, i in vocab.items():
        tokens[i] = piece
    # llama.cpp's converter: continuation pieces lose "##", word starts gain "▁"
    tokens = [t if t in SPECIALS else t[2:] if t.startswith("##") else "\u2581" + t for t in tokens]
    types = [3 if t in SPECIALS else 1 for t in tokens]
    return tokens, types


def rand(rng, *shape, scale=0.3):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def write_model(path, arch, tokens, types, seed):
    rng = np.random.default_rng(seed)
    w = gguf.GGUFWriter(str(path), arch)
    w.add_context_length(N_CTX)
    w.add_embedding_length(N_EMBD)
    w.add_block_count(N_LAYER)
    w.add_feed_forward_length(N_FF)
    w.add_head_count(N_HEAD)
    w.add_layer_norm_eps(1e-12)
    w.add_causal_attention(False)
    w.add_pooling_type(gguf.PoolingType.MEAN if arch == "bert" else gguf.PoolingType.CLS)
    if arch == "nomic-bert":
        w.add_rope_freq_base(1000.0)
    w.add_tokenizer_model("bert")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_type_count(2)
    w.add_bos_token_id(tokens.index("[CLS]"))
    w.add_sep_token_id(tokens.index("[SEP]"))
    w.add_unk_token_id(tokens.index("[UNK]"))
    w.add_pad_token_id(tokens.index("[PAD]"))
    w.add_mask_token_id(tokens.index("[MASK]"))
    w.add_bool("tokenizer.ggml.normalizer.lowercase", True)
    E, F = N_EMBD, N_FF
    w.add_tensor("token_embd.weight", rand(rng, len(tokens), E, scale=1.0))
    w.add_tensor("token_types.weight", rand(rng, 2, E, scale=0.5))
    if arch == "bert":
        w.add_tensor("position_embd.weight", rand(rng, N_CTX, E, scale=0.5))
    w.add_tensor("token_embd_norm.weight", 1.0 + rand(rng, E, scale=0.1))
    w.add_tensor("token_embd_norm.bias", rand(rng, E, scale=0.1))
    for i in range(N_LAYER):
        b = f"blk.{i}"
        if arch == "bert":
            for n in ["attn_q", "attn_k", "attn_v"]:
                w.add_tensor(f"{b}.{n}.weight", rand(rng, E, E))
                w.add_tensor(f"{b}.{n}.bias", rand(rng, E, scale=0.1))
        else:
            w.add_tensor(f"{b}.attn_qkv.weight", rand(rng, 3 * E, E))
        w.add_tensor(f"{b}.attn_output.weight", rand(rng, E, E))
        w.add_tensor(f"{b}.attn_output.bias", rand(rng, E, scale=0.1))
        w.add_tensor(f"{b}.attn_output_norm.weight", 1.0 + rand(rng, E, scale=0.1))
        w.add_tensor(f"{b}.attn_output_norm.bias", rand(rng, E, scale=0.1))
        w.add_tensor(f"{b}.ffn_up.weight", rand(rng, F, E))
        if arch == "bert":
            w.add_tensor(f"{b}.ffn_up.bias", rand(rng, F, scale=0.1))
            w.add_tensor(f"{b}.ffn_down.bias", rand(rng, E, scale=0.1))
        else:
            w.add_tensor(f"{b}.ffn_gate.weight", rand(rng, F, E))
        w.add_tensor(f"{b}.ffn_down.weight", rand(rng, E, F, scale=0.2))
        w.add_tensor(f"{b}.layer_output_norm.weight", 1.0 + rand(rng, E, scale=0.1))
        w.add_tensor(f"{b}.layer_output_norm.bias", rand(rng, E, scale=0.1))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def tokenize_cases(dump, model, texts):
    cases = [(t, False, False) for t in texts] + [(t, True, False) for t in texts if len(t) < 40]
    cases += [(t, True, True) for t in texts if "[" in t]
    stdin = b"".join(f"{int(a)} {int(p)} {len(t.encode())}\n".encode() + t.encode() + b"\n" for t, a, p in cases)
    res = subprocess.run([str(dump), str(model), "tok"], input=stdin, capture_output=True, check=True)
    lines = res.stdout.decode().split("\n")[:-1]
    assert len(lines) == len(cases), (len(lines), len(cases))
    return [{"text": t, "add_special": a, "parse_special": p, "ids": json.loads(ids)}
            for (t, a, p), ids in zip(cases, lines)]


def id_cases(tokens):
    """Token-id sequences: CLS ... SEP of lengths 1 to the full context, ids drawn at random."""
    rng = np.random.default_rng(7)
    cls, sep = tokens.index("[CLS]"), tokens.index("[SEP]")
    cases = [[cls]]
    for n in [3, 9, 30, N_CTX - 2]:
        cases.append([cls] + rng.integers(5, len(tokens), n).tolist() + [sep])
    return cases


def embed(embed_dump, model, pooling, cases, flash_attn):
    stdin = "".join(" ".join(map(str, c)) + "\n" for c in cases).encode()
    env = dict(os.environ)
    if not flash_attn:
        env["EMBED_DUMP_NO_FA"] = "1"
    res = subprocess.run([str(embed_dump), str(model), pooling], input=stdin, capture_output=True, check=True,
                         env=env)
    return [json.loads(line) for line in res.stdout.decode().split("\n") if line]


CLI_TEXTS = [
    "Hello world, this is a test.",
    "Café au lait! DON'T SHOUT.",
    "日本語のテキスト and numbers 12345",
    "",
    "[CLS] parsed specials [SEP]",
]


def llama_embedding(bin_dir, model, texts):
    """`llama-embedding` itself on the texts (one prompt a line), L2-normalised, its JSON output's vectors."""
    res = subprocess.run([str(bin_dir / "llama-embedding"), "-m", str(model), "-p", "\n".join(texts),
                          "--embd-output-format", "json", "--embd-normalize", "2", "-t", "1"],
                         capture_output=True, check=True)
    data = json.loads(res.stdout.decode())["data"]
    return [d["embedding"] for d in sorted(data, key=lambda d: d["index"])]


def main():
    bin_dir = Path(sys.argv[1])
    ref_dump = bin_dir / "llama-ref-dump"
    embed_dump = Path(sys.argv[2])
    OUT.mkdir(parents=True, exist_ok=True)
    texts = corpus()
    tokens, types = train(texts)
    for arch, seed in [("bert", 1), ("nomic-bert", 2)]:
        write_model(OUT / f"{arch}.gguf", arch, tokens, types, seed)
    tok_cases = tokenize_cases(ref_dump, OUT / "bert.gguf", texts)
    with open(OUT / "wpm-cases.jsonl", "w") as f:
        for c in tok_cases:
            f.write(json.dumps(c, ensure_ascii=False) + "\n")
    ids = id_cases(tokens)
    for arch in ["bert", "nomic-bert"]:
        out = {"cases": ids, "pooled": {}, "pooled_no_flash_attn": {}}
        for pooling in ["mean", "cls", "last", "none"]:
            out["pooled"][pooling] = embed(embed_dump, OUT / f"{arch}.gguf", pooling, ids, True)
            out["pooled_no_flash_attn"][pooling] = embed(embed_dump, OUT / f"{arch}.gguf", pooling, ids, False)
        out["llama_embedding"] = {"texts": CLI_TEXTS,
                                  "embeddings": llama_embedding(bin_dir, OUT / f"{arch}.gguf", CLI_TEXTS)}
        (OUT / f"{arch}.embeddings.json").write_text(json.dumps(out))
        print(arch, len(ids), "cases", file=sys.stderr)
    print(len(tokens), "tokens,", len(tok_cases), "tokenizer cases", file=sys.stderr)


if __name__ == "__main__":
    main()
