#!/usr/bin/env python3
"""Dequantized rows of real tensors of the two reference models, made with the `gguf` Python package
(gguf 0.19.0: GGUFReader + gguf/quants.py). For each model and each tensor type it holds (first 2-D tensor of
that type): rows 0, 1 and the last row, as hex of little-endian f32.

Run from this folder with the models in ${CRIA_HOME:-~/.cache/cria}/models: `python3 make_model_rows.py`
writes model_rows.json.
"""
import json
import os

import numpy as np
from gguf import GGUFReader, quants

home = os.environ.get("CRIA_HOME", os.path.expanduser("~/.cache/cria"))
out = []
for model in ["smollm2-135m-instruct", "gemma-3-270m"]:
    r = GGUFReader(os.path.join(home, "models", model + ".gguf"))
    seen = set()
    for t in r.tensors:
        if len(t.shape) != 2 or t.tensor_type.name in seen:
            continue
        seen.add(t.tensor_type.name)
        n_rows = int(t.shape[1])
        for row in [0, 1, n_rows - 1]:
            d = quants.dequantize(t.data[row:row + 1], t.tensor_type).reshape(-1)
            out.append({"model": model, "tensor": t.name, "type": t.tensor_type.name, "row": row,
                        "deq": np.asarray(d, dtype="<f4").tobytes().hex()})
with open("model_rows.json", "w") as f:
    json.dump(out, f, indent=0)
