#!/usr/bin/python3
"""The largest absolute difference between the tensors of two safetensors checkpoints whose names start with
PREFIX ("" for all), as float64; exits 1 when the two do not hold the same such tensors.
    max_difference.py A B PREFIX"""
import json, struct, sys
import numpy as np

def tensors(path):
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    kinds = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32}  # others: byte by byte
    out = {}
    for key, v in header.items():
        if key == "__metadata__":
            continue
        a, b = v["data_offsets"]
        kind = kinds.get(v["dtype"], np.uint8)
        out[key] = np.frombuffer(raw[8 + n + a:8 + n + b], dtype=kind).astype(np.float64)
    return out

x, y, prefix = tensors(sys.argv[1]), tensors(sys.argv[2]), sys.argv[3]
keys = sorted(k for k in x if k.startswith(prefix))
if not keys or keys != sorted(k for k in y if k.startswith(prefix)) or any(x[k].shape != y[k].shape for k in keys):
    sys.exit(f"checkpoints differ in their tensors named {prefix}*")
print(max(float(np.abs(x[k] - y[k]).max(initial=0.0)) for k in keys))
