#!/usr/bin/env bash
# The Python module against `scorediff sample` on one checkpoint (issue 27): the same samples bit for bit, and
# the sampling time of each (the command's own "seconds", the module's call), interleaved, median of REPEATS.
#   bench/python_module.sh [N] [THREADS]     default 20000 Swiss-roll samples, 1 thread; REPEATS (5)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-20000}
threads=${2:-1}
repeats=${REPEATS:-5}
ls build/python/scorediff.*.so > /dev/null 2>&1 || { echo "python_module: build/python missing (pybind11-dev, make build)" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
build/scorediff train --config swiss-roll --threads "$threads" --seed 1 --no-sample -q --out "$tmp/run" \
  --set train.steps=3000 > /dev/null
PYTHONPATH=build/python /usr/bin/python3 - "$tmp" "$n" "$threads" "$repeats" <<'PY'
import json, statistics, subprocess, sys, time
import numpy as np
import scorediff
tmp, n, threads, repeats = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
ckpt = f"{tmp}/run/last.safetensors"
model = scorediff.load(ckpt, threads=threads)
cli_s, py_s, same = [], [], True
for r in range(repeats):
    out = subprocess.run(["build/scorediff", "sample", "--ckpt", ckpt, "--seed", "3", "-n", str(n), "--threads",
                          str(threads), "-q", "-o", f"{tmp}/cli.npy"], capture_output=True, text=True, check=True)
    cli_s.append(json.loads(out.stdout)["seconds"])
    start = time.perf_counter()
    x = model.sample(n=n, seed=3)
    py_s.append(time.perf_counter() - start)
    same = same and np.array_equal(x, np.load(f"{tmp}/cli.npy").astype(np.float32))
c, p = statistics.median(cli_s), statistics.median(py_s)
print(f"| samples | threads | scorediff sample, s | Python module, s | module / command | bit for bit |")
print(f"|---|---|---|---|---|---|")
print(f"| {n} | {threads} | {c:.3f} | {p:.3f} | {p / c:.3f} | {'yes' if same else 'NO'} |")
print("runs (command):", " ".join(f"{v:.3f}" for v in cli_s), " (module):", " ".join(f"{v:.3f}" for v in py_s))
PY
