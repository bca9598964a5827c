#!/usr/bin/env python3
"""Golden vectors for cria-kernels' reference (de)quantizers, made with the `gguf` Python package
(gguf 0.19.0, numpy; `python3 -m pip install gguf numpy`), whose gguf/quants.py restates ggml's layouts.

Run from this folder: `python3 make_golden.py` writes golden.json. For every type the package can quantize
(F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0): seeded random rows `x`, their quantized bytes and the bytes'
dequantization. For the K-quants (which the package only dequantizes): random blocks with sane f16 scales and
their dequantization. All floats are stored as hex of little-endian f32 so the comparison is bit for bit.
"""
import json

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import quants

rng = np.random.default_rng(20261127)
out = {}


def hexf(a):
    return np.asarray(a, dtype="<f4").tobytes().hex()


def rows(n):
    # a mix of scales, a row with an exact zero block and outliers
    r = [rng.standard_normal(n).astype(np.float32) * s for s in (0.02, 1.0, 30.0)]
    z = rng.standard_normal(n).astype(np.float32)
    z[:64] = 0.0
    z[100] = 50.0
    r.append(z)
    return r


for name in ["F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0"]:
    t = T[name]
    cases = []
    for x in rows(512):
        q = quants.quantize(x.reshape(1, -1), t)
        d = quants.dequantize(q, t).reshape(-1)
        cases.append({"x": hexf(x), "q": q.tobytes().hex(), "deq": hexf(d)})
    out[name] = {"quantize": cases}

# K-quant blocks: random bytes with the f16 scale fields replaced by sane values.
layouts = {  # name: (block bytes, offsets of f16 scale fields)
    "Q2_K": (84, [80, 82]),
    "Q3_K": (110, [108]),
    "Q4_K": (144, [0, 2]),
    "Q5_K": (176, [0, 2]),
    "Q6_K": (210, [208]),
}
for name, (size, f16_at) in layouts.items():
    t = T[name]
    blocks = rng.integers(0, 256, size=(4, size), dtype=np.uint8)
    for b in blocks:
        for off in f16_at:
            b[off:off + 2] = np.frombuffer(np.float16(rng.uniform(-0.05, 0.05)).tobytes(), dtype=np.uint8)
    d = quants.dequantize(blocks.reshape(1, -1), t).reshape(-1)
    out[name] = {"dequantize": [{"q": blocks.tobytes().hex(), "deq": hexf(d)}]}

with open("golden.json", "w") as f:
    json.dump(out, f, indent=0)
