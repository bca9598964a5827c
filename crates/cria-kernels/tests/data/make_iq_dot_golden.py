#!/usr/bin/env python3
"""llama.cpp's own dot products of the IQ, ternary and MXFP4 formats on seeded random rows, for
tests/iq_dot_llama.rs to match bit for bit.

Usage (from this folder): `python3 make_iq_dot_golden.py LIBDIR` where LIBDIR holds llama.cpp's
libggml-base.so and libggml-cpu.so (this data: llama.cpp as unpacked by shared/tools/llama-cpp-ref.sh,
native build, GCC 12, x86-64 with AVX2/FMA/AVX-512, i.e. its AVX2 kernels of ggml-cpu/arch/x86/quants.c).
Writes iq_dot_golden.json: per format, rows of random blocks (as make_iq_golden.py makes them), activation
rows quantized by llama.cpp's `from_float` of the format's `vec_dot_type` (Q8_0 or Q8_K), and `vec_dot`'s
result for every (row, activation) pair as f32 bits.
"""
import ctypes
import json
import sys

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf.constants import GGML_QUANT_SIZES

import make_iq_golden as g


class Traits(ctypes.Structure):
    _fields_ = [("from_float", ctypes.c_void_p), ("vec_dot", ctypes.c_void_p),
                ("vec_dot_type", ctypes.c_int), ("nrows", ctypes.c_int64)]


FROM_FLOAT = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64)
VEC_DOT = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.POINTER(ctypes.c_float), ctypes.c_size_t, ctypes.c_void_p,
                           ctypes.c_size_t, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)


def activation(n, seed):
    # a residual-stream-like row: normal values and a few large outlier channels
    r = np.random.default_rng(seed)
    x = r.standard_normal(n).astype(np.float32)
    x[r.integers(0, n, 4)] *= 200.0
    return x


def main():
    libdir = sys.argv[1]
    ctypes.CDLL(f"{libdir}/libggml-base.so", mode=ctypes.RTLD_GLOBAL)
    cpu = ctypes.CDLL(f"{libdir}/libggml-cpu.so")
    cpu.ggml_cpu_init()
    cpu.ggml_get_type_traits_cpu.restype = ctypes.POINTER(Traits)
    out = {}
    for name in g.D_OFFSET:
        ty = T[name]
        block, size = GGML_QUANT_SIZES[ty]
        tr = cpu.ggml_get_type_traits_cpu(int(ty)).contents
        at = cpu.ggml_get_type_traits_cpu(tr.vec_dot_type).contents
        a_block, a_size = GGML_QUANT_SIZES[T(tr.vec_dot_type)]
        vec_dot = VEC_DOT(tr.vec_dot)
        from_float = FROM_FLOAT(at.from_float)
        cases = []
        # 32-element formats: an odd block count (llama.cpp's tail path) and an even one
        for n in ([288, 1024] if block == 32 else [512, 1536]):
            rows, _ = g.blocks(name, 3 * n // block)
            w = rows.reshape(3, -1)
            acts = []
            for t in range(2):
                x = activation(n, 1000 * n + t)
                buf = ctypes.create_string_buffer(n // a_block * a_size)
                from_float(x.ctypes.data, buf, n)
                acts.append(buf.raw)
            dots = []
            for t in range(2):
                for r in range(3):
                    s = ctypes.c_float()
                    wr = np.ascontiguousarray(w[r])
                    a = ctypes.create_string_buffer(acts[t], len(acts[t]))
                    vec_dot(n, ctypes.byref(s), 0, wr.ctypes.data, 0, a, 0, 1)
                    dots.append(np.float32(s.value).view(np.uint32).item())
            cases.append({"n": n, "w": w.tobytes().hex(), "a": [a.hex() for a in acts], "dots": dots})
        out[name] = cases
    with open("iq_dot_golden.json", "w") as f:
        json.dump(out, f, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
