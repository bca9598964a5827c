#!/usr/bin/env python3
"""Reference tokenizations from llama.cpp for every pre-tokenizer Cria knows.

Trains one byte-level BPE vocabulary on a multilingual corpus (the reference texts plus edge cases) with merges
that may cross any word boundary, so that every pre-tokenizer split shows in the token ids. Then, for each
`tokenizer.ggml.pre` value, writes a tiny llama GGUF with that vocabulary and records llama.cpp's tokenization of
every text (`llama-ref-dump MODEL tok`). The vocabulary (vocab.json), the
cases (cases.jsonl) and llama.cpp's ids per pre-tokenizer (<pre>.ids, a line per case) go to testdata/tokenizer-parity/;
`crates/cria-tokenizer/tests/pre_tokenizers.rs` compares Cria's output with them.

Usage: scripts/tokenizer-parity/make.py LLAMA_BIN_DIR   (needs: pip install gguf tokenizers numpy)
"""
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import gguf
import numpy as np
from tokenizers import Tokenizer, models, pre_tokenizers, trainers, decoders

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "testdata" / "tokenizer-parity"

# One name per distinct regex list in llama.cpp's llama-vocab.cpp (aliases share their list and flags).
PRE_TYPES = [
    "default", "llama-bpe", "deepseek-llm", "deepseek-coder", "deepseek-v3", "spark2_5", "youtu", "falcon",
    "starcoder", "smollm", "gpt-2", "jais-2", "whitespace", "qwen2", "qwen35", "stablelm2", "dbrx", "poro-chat",
    "chatglm-bpe", "glm4", "viking", "tekken", "exaone", "exaone4", "exaone-moe", "chameleon", "gpt-4o",
    "granite-embed-multi-97m", "superbpe", "bailingmoe", "seed-coder", "ufakzeka", "grok-2", "laguna",
    "minicpm5", "command-r", "minerva-7b", "megrez",
]

EDGE_CASES = [
    "McDonald's HTTPServer iPhone XMLHttpRequest camelCaseWord snake_case_word",
    "Héllo WÖRLD ÀÉÎÕÜ àéîõü ÑAND ñand İstanbul ǅemal",
    "I'M HERE, YOU'RE THERE, WE'LL SEE, THEY'VE GONE, SHE'D SAY, DON'T",
    "1 12 123 1234 12345 123456 1234567 12345678 3.14159 1,000,000 ٣٤٥ １２３",
    "a\tb\t\tc \t d\r\ne\r\n\r\nf\n \n  \n   g",
    "wide\u3000space nbsp\u00a0here nel\u0085there thin\u2009space",
    "e\u0301 cafe\u0301 n\u0303 a\u0308\u0304 क्षत्रिय हिन्दी தமிழ் ภาษาไทย",
    "日本語のテキスト、カタカナ、ひらがな。中文，标点！한국어 문장입니다. 가나다라",
    "emoji 👩‍👩‍👧‍👦 🎉🎉 👍🏽 ❤️ flags 🇰🇷🇯🇵",
    "path/to/file.txt C:\\Users\\x https://example.com/a?b=c&d=e#frag <tag attr=\"v\">",
    "    indented code();\n\tif (x) { return y; }\n// comment /* block */",
    "trailing spaces   ",
    "   leading spaces",
    "UPPER lower Title MiXeD mIxEd ABCdef abcDEF",
    "Ελληνικά Русский текст עברית العربية",
    "a'b a's A'S a'll x'y '' ' s",
    "$100 + 50% = €150 ~ ^_^ | `code` @user #tag",
    "!!! ??? ... --- *** ___ +++ === ### $$$",
    "mixed123numbers456and789letters",
    "<|endoftext|>between<|endoftext|> text",
]


def corpus():
    texts = []
    for model in ["smollm2-135m-instruct-q4_1", "gemma-3-270m-q4_k_m"]:
        for line in (ROOT / "testdata" / "reference" / model / "tokenize.jsonl").read_text().splitlines():
            texts.append(json.loads(line)["text"])
    texts += EDGE_CASES
    seen, unique = set(), []
    for t in texts:
        if t not in seen:
            seen.add(t)
            unique.append(t)
    return unique


def train(texts):
    tok = Tokenizer(models.BPE())
    # No pre-splitting while training: merges may join across every boundary a pre-tokenizer might draw.
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=3000,
        min_frequency=2,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts * 3, trainer=trainer)
    state = json.loads(tok.to_str())
    vocab = state["model"]["vocab"]
    tokens = [None] * len(vocab)
    for piece, i in vocab.items():
        tokens[i] = piece
    merges = [m if isinstance(m, str) else " ".join(m) for m in state["model"]["merges"]]
    types = [3 if t == "<|endoftext|>" else 1 for t in tokens]
    return tokens, types, merges


def write_gguf(path, pre, tokens, types, merges):
    w = gguf.GGUFWriter(str(path), "llama")
    n_embd, n_ff = 16, 32
    w.add_context_length(64)
    w.add_embedding_length(n_embd)
    w.add_block_count(1)
    w.add_feed_forward_length(n_ff)
    w.add_head_count(2)
    w.add_head_count_kv(2)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(pre)
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    eot = tokens.index("<|endoftext|>")
    w.add_bos_token_id(eot)
    w.add_eos_token_id(eot)
    rng = np.random.default_rng(0)
    f32 = lambda *shape: rng.standard_normal(shape).astype(np.float32) * 0.1
    w.add_tensor("token_embd.weight", f32(len(tokens), n_embd))
    w.add_tensor("output_norm.weight", np.ones(n_embd, np.float32))
    for name, shape in [("attn_q", (n_embd, n_embd)), ("attn_k", (n_embd, n_embd)), ("attn_v", (n_embd, n_embd)),
                        ("attn_output", (n_embd, n_embd)), ("ffn_gate", (n_ff, n_embd)), ("ffn_up", (n_ff, n_embd)),
                        ("ffn_down", (n_embd, n_ff))]:
        w.add_tensor(f"blk.0.{name}.weight", f32(*shape))
    w.add_tensor("blk.0.attn_norm.weight", np.ones(n_embd, np.float32))
    w.add_tensor("blk.0.ffn_norm.weight", np.ones(n_embd, np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def cases_for(texts):
    """(text, add_special, parse_special): plain, and a few with specials added and parsed."""
    out = [(t, False, False) for t in texts]
    out += [(t, True, True) for t in texts if "<|endoftext|>" in t or len(t) < 12]
    return out


def llama_tokenize(dump, model, cases):
    stdin = b"".join(
        f"{int(a)} {int(p)} {len(t.encode())}\n".encode() + t.encode() + b"\n" for t, a, p in cases
    )
    res = subprocess.run([str(dump), str(model), "tok"], input=stdin, capture_output=True, check=True)
    lines = res.stdout.decode().splitlines()
    assert len(lines) == len(cases), (model, len(lines), len(cases))
    return [json.loads(line) for line in lines]


def main():
    dump = Path(sys.argv[1]) / "llama-ref-dump"
    texts = corpus()
    tokens, types, merges = train(texts)
    OUT.mkdir(parents=True, exist_ok=True)
    eot = tokens.index("<|endoftext|>")
    (OUT / "vocab.json").write_text(json.dumps(
        {"tokens": tokens, "token_types": types, "merges": merges, "bos": eot, "eos": eot}, ensure_ascii=False))
    cases = cases_for(texts)
    with open(OUT / "cases.jsonl", "w") as f:
        for t, a, p in cases:
            f.write(json.dumps({"text": t, "add_special": a, "parse_special": p}, ensure_ascii=False) + "\n")
    with tempfile.TemporaryDirectory() as tmp:
        for pre in PRE_TYPES:
            model = Path(tmp) / f"{pre}.gguf"
            write_gguf(model, pre, tokens, types, merges)
            try:
                ids = llama_tokenize(dump, model, cases)
            except subprocess.CalledProcessError as e:
                print(pre, "llama.cpp failed:", e.stderr.decode()[-300:], file=sys.stderr)
                continue
            (OUT / f"{pre}.ids").write_text("".join(json.dumps(i) + "\n" for i in ids))
            print(pre, len(cases), "cases", file=sys.stderr)


if __name__ == "__main__":
    main()
