#!/usr/bin/env python3
"""Golden dequantizations of the IQ, ternary and MXFP4 formats, made with the `gguf` Python package
(gguf 0.19.0, numpy; `python3 -m pip install gguf numpy`), whose gguf/quants.py restates ggml's layouts.

Run from this folder: `python3 make_iq_golden.py` writes iq_golden.json. For every format: seeded random
blocks (random bytes, with the f16 / E8M0 scales overwritten by sane values, plus MXFP4's subnormal exponents
0 and 1) and gguf-py's `dequantize` of them. Floats are hex of little-endian f32, compared bit for bit by
tests/quant_iq_golden.rs.
"""
import json

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import quants
from gguf.constants import GGML_QUANT_SIZES

rng = np.random.default_rng(20261206)

# byte offset of the f16 super-block scale in each block (None: stored otherwise)
D_OFFSET = {
    "IQ4_NL": 0, "IQ4_XS": 0, "TQ1_0": 52, "TQ2_0": 64, "IQ2_XXS": 0, "IQ2_XS": 0, "IQ2_S": 0,
    "IQ3_XXS": 0, "IQ3_S": 0, "IQ1_S": 0, "IQ1_M": None, "MXFP4": None,
}


def sane_f16(n):
    mag = np.exp(rng.uniform(np.log(1e-4), np.log(0.5), n))
    return (mag * rng.choice([-1.0, 1.0], n)).astype(np.float16)


def blocks(name, n_blocks):
    block, size = GGML_QUANT_SIZES[T[name]]
    b = rng.integers(0, 256, (n_blocks, size), dtype=np.uint8)
    off = D_OFFSET[name]
    if off is not None:
        b[:, off:off + 2] = sane_f16(n_blocks).view(np.uint8).reshape(n_blocks, 2)
    elif name == "MXFP4":
        b[:, 0] = rng.integers(100, 140, n_blocks)
        b[:2, 0] = [0, 1]  # subnormal halves
    elif name == "IQ1_M":
        d = sane_f16(n_blocks).view(np.uint16)
        sc = b[:, 48:56].copy().view("<u2").reshape(n_blocks, 4)
        for k in range(4):
            sc[:, k] = (sc[:, k] & 0x0FFF) | (((d >> (4 * k)) & 0xF) << 12)
        b[:, 48:56] = sc.view(np.uint8).reshape(n_blocks, 8)
    return b, block


def main():
    out = {}
    for name in D_OFFSET:
        n_blocks = 9 if GGML_QUANT_SIZES[T[name]][0] == 32 else 5
        b, block = blocks(name, n_blocks)
        deq = quants.dequantize(b.reshape(-1), T[name]).astype(np.float32)
        assert deq.size == n_blocks * block and np.all(np.isfinite(deq))
        out[name] = {"q": b.tobytes().hex(), "deq": deq.astype("<f4").tobytes().hex()}
    with open("iq_golden.json", "w") as f:
        json.dump(out, f, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
